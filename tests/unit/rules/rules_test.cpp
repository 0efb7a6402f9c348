#include "rules/rules.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <ostream>

namespace runbookd::rules {
namespace {

// ctest runs tests from the repository root (tests/CMakeLists.txt).
const std::string fixtures = "tests/data/rules/";

TEST(rules, the_embedded_pack_loads_and_covers_the_runbook) {
    const auto r = load({});
    ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
    EXPECT_EQ(r.value->origin, "embedded runbook pack");
    std::vector<std::string> ids;
    for (const auto& rule : r.value->rules) {
        ids.push_back(rule.id);
        EXPECT_FALSE(rule.title.empty()) << rule.id;
    }
    for (const char* id :
         {"bad-deploy",
          "bad-k8s-config",
          "server-wont-restart",
          "user-gone-wild",
          "dos-attack",
          "db-trouble",
          "bad-migration-or-query",
          "db-maintenance",
          "gcp-outage",
          "ops-canvas",
          "gke-upgrade",
          "ci-deploy-trouble",
          "cert-expired",
          "cert-not-yet-valid"}) {
        EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id;
    }
    ASSERT_EQ(r.value->warnings.size(), 2u);
    EXPECT_EQ(r.value->warnings[0].id, "cert-expires-soon");
    EXPECT_EQ(r.value->warnings[1].id, "pagerduty-maintenance");
}

TEST(rules, the_file_in_the_repository_is_the_embedded_pack) {
    std::ifstream in("rules/runbook.yaml", std::ios::binary);
    ASSERT_TRUE(in);
    const std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
    EXPECT_EQ(text, embedded_pack());
    const auto from_file = load({"rules/runbook.yaml"});
    ASSERT_TRUE(from_file.ok());
    EXPECT_EQ(from_file.value->rules.size(), load({}).value->rules.size());
    EXPECT_EQ(from_file.value->warnings.size(), load({}).value->warnings.size());
}

TEST(rules, every_construct_parses_into_the_model) {
    const auto r = load({fixtures + "good_small.yaml"});
    ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
    const rule& d = r.value->rules.at(0);
    EXPECT_EQ(d.id, "deploy");
    EXPECT_DOUBLE_EQ(d.prior, 0.3);
    ASSERT_EQ(d.when.what, condition::op::any);
    ASSERT_EQ(d.when.children.size(), 3u);
    const auto& all = d.when.children[0];
    ASSERT_EQ(all.what, condition::op::all);
    EXPECT_EQ(all.children[0].signal.where.size(), 3u);
    EXPECT_TRUE(all.children[0].signal.related);
    EXPECT_EQ(all.children[0].signal.window.before, std::chrono::hours{2});
    EXPECT_EQ(all.children[1].what, condition::op::none);
    const auto& cpu = d.when.children[1].signal;
    EXPECT_EQ(cpu.above, 0.9);
    EXPECT_EQ(cpu.at_least, 2u);
    EXPECT_EQ(cpu.sustained, std::chrono::minutes{5});
    const auto& cal = d.when.children[2].calendar;
    EXPECT_TRUE(cal.window.days.test(2));
    EXPECT_TRUE(cal.window.days.test(3));
    EXPECT_TRUE(cal.window.months.test(3));
    EXPECT_NE(cal.window.zone, nullptr);
    ASSERT_TRUE(d.recent);
    EXPECT_EQ(d.recent->half_life, std::chrono::minutes{15});
    EXPECT_EQ(d.actions.size(), 2u);
    EXPECT_EQ(d.status_text, "a bad deploy caused this");
}

struct bad_case {
    std::string file;
    int line;
    int column;
    std::string path;
    std::string message;  ///< a substring of the problem's message
};

class bad_rules : public ::testing::TestWithParam<bad_case> {};

TEST_P(bad_rules, is_refused_with_position_path_and_reason) {
    const auto& c = GetParam();
    const auto r = load({fixtures + c.file});
    ASSERT_FALSE(r.ok());
    ASSERT_FALSE(r.problems.empty());
    const auto& p = r.problems.front();
    EXPECT_EQ(p.file, fixtures + c.file);
    EXPECT_EQ(p.line, c.line) << p.to_string();
    EXPECT_EQ(p.column, c.column) << p.to_string();
    EXPECT_EQ(p.path, c.path) << p.to_string();
    EXPECT_NE(p.message.find(c.message), std::string::npos) << p.to_string();
}

INSTANTIATE_TEST_SUITE_P(
    fixtures,
    bad_rules,
    ::testing::Values(
        bad_case{
            "bad_unknown_kind.yaml",
            6,
            15,
            "rules[0].when.signal",
            "unknown signal kind 'k8s.rolout'; did you mean 'k8s.rollout'?"},
        bad_case{
            "bad_unknown_key.yaml",
            6,
            5,
            "rules[0].evidense",
            "unknown key 'evidense'; did you mean 'evidence'?"},
        bad_case{
            "bad_unknown_label.yaml",
            7,
            15,
            "rules[0].when.where.imag_changed",
            "did you mean 'image_changed'?"},
        bad_case{
            "bad_placeholder.yaml",
            8,
            9,
            "rules[0].actions[0]",
            "unknown placeholder '{deploymnt}'; did you mean 'deployment'?"},
        bad_case{"bad_leaf_placeholder.yaml", 7, 17, "rules[0].when.evidence", "unknown placeholder '{pid}'"},
        bad_case{"bad_regex.yaml", 7, 33, "rules[0].when.where.target.matches", "invalid regular expression"},
        bad_case{"bad_prior.yaml", 5, 12, "rules[0].prior", "must be from"},
        bad_case{"bad_duplicate_id.yaml", 6, 9, "rules[1].id", "duplicate rule id 'deploy'"},
        bad_case{
            "bad_two_conditions.yaml",
            6,
            7,
            "rules[0].when",
            "exactly one of signal, calendar, all, any or none, not 2"},
        bad_case{
            "bad_value_on_valueless.yaml",
            7,
            14,
            "rules[0].when.value",
            "'k8s.rollout' signals carry no value"},
        bad_case{"bad_related.yaml", 7, 16, "rules[0].when.related", "cannot be related"},
        bad_case{
            "bad_rollout.yaml", 7, 16, "rules[0].when.rollout", "carry no commit to match against a rollout"},
        bad_case{
            "bad_rollout_value.yaml",
            7,
            16,
            "rules[0].when.rollout",
            "is not one of rolled_out, elsewhere, not_elsewhere; did you mean 'elsewhere'?"},
        bad_case{
            "bad_timezone.yaml", 6, 63, "rules[0].when.calendar.tz", "unknown time zone 'America/New_Yrok'"},
        bad_case{"bad_clock.yaml", 6, 37, "rules[0].when.calendar.from", "'10am' is not a local time HH:MM"},
        bad_case{
            "bad_day.yaml", 6, 30, "rules[0].when.calendar.days[1]", "'thurs-ish' is not one of sun, mon"},
        bad_case{"bad_status_text.yaml", 6, 18, "rules[0].status_text", "takes no placeholders"},
        bad_case{"bad_template_syntax.yaml", 6, 15, "rules[0].evidence", "unclosed '{'"},
        bad_case{"bad_duration.yaml", 7, 24, "rules[0].when.window.before", "'two hours' is not a duration"},
        bad_case{"bad_missing_when.yaml", 3, 5, "rules[0].when", "required"},
        bad_case{"bad_empty_any.yaml", 6, 12, "rules[0].when.any", "any needs at least one condition"},
        bad_case{"bad_syntax.yaml", 5, 1, "", "YAML syntax error"},
        bad_case{"bad_half_life.yaml", 6, 26, "rules[0].recency.half_life", "must be greater than 0"},
        bad_case{
            "bad_recency_of.yaml",
            6,
            20,
            "rules[0].recency.of[0]",
            "'deploy.ci' is not a kind this rule's conditions read"},
        bad_case{"bad_empty_rules.yaml", 2, 8, "rules", "a rules file needs at least one rule"},
        bad_case{"bad_calendar_never.yaml", 6, 17, "rules[0].when.calendar", "never holds"},
        bad_case{
            "bad_clear_placeholder.yaml", 7, 14, "rules[0].when.clear", "unknown placeholder '{instance}'"},
        bad_case{
            "bad_effect_join.yaml",
            5,
            12,
            "effects[0].join[0]",
            "'k8s.config_change' has no label 'replicaset' to join on"},
        bad_case{
            "bad_effect_kind.yaml",
            3,
            16,
            "effects[0].explains[0]",
            "unknown signal kind 'k8s.restrat'; did you mean 'k8s.restart'?"},
        bad_case{"bad_effect_duplicate.yaml", 6, 9, "effects[1].id", "duplicate effect id 'node-change'"},
        bad_case{
            "bad_explained_by.yaml",
            11,
            21,
            "rules[0].when.explained_by",
            "no effect 'new-replicaste' in this file; did you mean 'new-replicaset'?"},
        bad_case{
            "bad_explained_by_kind.yaml",
            11,
            22,
            "rules[0].when.explained_by[0]",
            "effect 'new-replicaset' does not explain k8s.restart signals"},
        bad_case{"bad_explained_both.yaml", 12, 21, "rules[0].when.explained_by", "give one of them"}
    ),
    [](const ::testing::TestParamInfo<bad_case>& param_info) {
        return param_info.param.file.substr(0, param_info.param.file.find('.'));
    }
);

TEST(rules, a_warning_parses_into_the_model_and_may_stand_alone) {
    const auto r = parse(
        R"yaml(warnings:
  - id: cert-expires-soon
    when:
      signal: cert.expiry
      where: {expires_soon: "true"}
      related: service
      window: {before: 30m}
    text: "the certificate of {host} expires in {value|days} (not after {not_after})"
)yaml",
        "warnings.yaml"
    );
    ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
    EXPECT_TRUE(r.value->rules.empty());
    ASSERT_EQ(r.value->warnings.size(), 1u);
    const warning& w = r.value->warnings[0];
    EXPECT_EQ(w.id, "cert-expires-soon");
    EXPECT_EQ(w.file, "warnings.yaml");
    EXPECT_EQ(w.line, 2);
    ASSERT_EQ(w.when.what, condition::op::signal);
    EXPECT_TRUE(w.when.signal.related);
    EXPECT_EQ(w.when.signal.window.before, std::chrono::minutes{30});
    EXPECT_EQ(w.text.source(), "the certificate of {host} expires in {value|days} (not after {not_after})");
}

struct inline_case {
    std::string name;
    std::string yaml;
    int line;
    int column;
    std::string path;
    std::string message;  ///< a substring of the first problem's message
};

// Names the case in ctest's listing, rather than gtest's dump of its bytes.
void PrintTo(const inline_case& c, std::ostream* os) {
    *os << c.name;
}

class bad_warnings : public ::testing::TestWithParam<inline_case> {};

TEST_P(bad_warnings, is_refused_with_position_path_and_reason) {
    const auto& c = GetParam();
    const auto r = parse(c.yaml, "w.yaml");
    ASSERT_FALSE(r.ok());
    const auto& p = r.problems.front();
    EXPECT_EQ(p.line, c.line) << p.to_string();
    EXPECT_EQ(p.column, c.column) << p.to_string();
    EXPECT_EQ(p.path, c.path) << p.to_string();
    EXPECT_NE(p.message.find(c.message), std::string::npos) << p.to_string();
}

// One warning whose single line is replaced per case.
std::string warning_with(std::string_view line) {
    return "warnings:\n  - id: soon\n    when: {signal: cert.expiry, where: {expires_soon: \"true\"}}\n" +
           std::string{line} + "\n";
}

INSTANTIATE_TEST_SUITE_P(
    inline_yaml,
    bad_warnings,
    ::testing::Values(
        inline_case{
            "missing_text",
            "warnings:\n  - id: soon\n    when: {signal: cert.expiry}\n",
            2,
            5,
            "warnings[0].text",
            "required: the line shown in #operations"},
        inline_case{
            "unknown_key",
            warning_with("    text: x\n    prior: 0.1"),
            5,
            5,
            "warnings[0].prior",
            "unknown key 'prior'"},
        inline_case{
            "strength_in_a_warning",
            "warnings:\n  - id: soon\n    when: {signal: cert.expiry, strength: 0.5}\n    text: x\n",
            3,
            33,
            "warnings[0].when.strength",
            "'strength' does not apply in a warning"},
        inline_case{
            "evidence_deep_in_a_warning",
            "warnings:\n  - id: soon\n    when:\n      any:\n        - {signal: cert.expiry, evidence: "
            "\"{host}\"}\n"
            "    text: x\n",
            5,
            33,
            "warnings[0].when.any[0].evidence",
            "'evidence' does not apply in a warning"},
        inline_case{
            "unknown_placeholder",
            warning_with("    text: \"{hots} expires\""),
            4,
            11,
            "warnings[0].text",
            "unknown placeholder '{hots}'; did you mean 'host'?"},
        inline_case{
            "unknown_filter",
            warning_with("    text: \"{value|weeks}\""),
            4,
            11,
            "warnings[0].text",
            "unknown filter 'weeks' (known: percent, duration, days, round)"},
        inline_case{
            "id_of_a_rule",
            "rules:\n  - {id: soon, title: S, when: {signal: cert.expiry}}\nwarnings:\n  - id: soon\n"
            "    when: {signal: cert.expiry}\n    text: x\n",
            4,
            9,
            "warnings[0].id",
            "id 'soon' is already a rule's"},
        inline_case{
            "duplicate_warning",
            "warnings:\n  - {id: soon, when: {signal: cert.expiry}, text: x}\n"
            "  - {id: soon, when: {signal: cert.expiry}, text: y}\n",
            3,
            10,
            "warnings[1].id",
            "duplicate warning id 'soon'"},
        inline_case{
            "empty_list",
            "rules:\n  - {id: a, title: A, when: {signal: cert.expiry}}\nwarnings: []\n",
            3,
            11,
            "warnings",
            "warnings needs at least one warning"},
        inline_case{"neither_list", "{}\n", 1, 1, "rules", "required: a list of rules (or of warnings)"},
        inline_case{
            "related_without_services",
            "warnings:\n  - {id: cpu, when: {signal: db.cpu, related: service}, text: x}\n",
            2,
            47,
            "warnings[0].when.related",
            "cannot be related"}
    ),
    [](const ::testing::TestParamInfo<inline_case>& param_info) { return param_info.param.name; }
);

TEST(rules, cert_signals_may_be_related_to_a_service_through_their_services_label) {
    const auto r = parse(
        "rules:\n  - {id: expired, title: E, when: {signal: cert.expiry, value: {below: 0}, related: "
        "service}}\n",
        "r.yaml"
    );
    ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
    EXPECT_TRUE(r.value->rules[0].when.signal.related);
}

TEST(rules, an_id_is_one_rule_or_warning_across_files) {
    const std::string dir = ::testing::TempDir();
    const auto write = [&](const std::string& name, std::string_view text) {
        std::ofstream(dir + name, std::ios::binary) << text;
        return dir + name;
    };
    const auto a = write("a_rules.yaml", "rules:\n  - {id: soon, title: S, when: {signal: cert.expiry}}\n");
    const auto b =
        write("b_warnings.yaml", "warnings:\n  - {id: soon, when: {signal: cert.expiry}, text: x}\n");
    const auto r = load({a, b});
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_EQ(
        r.problems[0].to_string(), b + ":2:1: warnings: warning id 'soon' is also defined at " + a + ":2"
    );
    const auto c =
        write("c_warnings.yaml", "warnings:\n  - {id: later, when: {signal: cert.expiry}, text: x}\n");
    const auto merged = load({a, c});
    ASSERT_TRUE(merged.ok()) << merged.problems.front().to_string();
    EXPECT_EQ(merged.value->rules.size(), 1u);
    EXPECT_EQ(merged.value->warnings.size(), 1u);
}

TEST(rules, every_problem_is_reported_not_just_the_first) {
    const auto r = parse(
        R"(rules:
  - id: Bad Id
    title: x
    prior: 2
    when: {signal: nope}
)",
        "multi.yaml"
    );
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.problems.size(), 3u);
    EXPECT_EQ(r.problems[0].to_string().substr(0, 15), "multi.yaml:2:9:");
}

TEST(rules, an_unreadable_file_is_one_problem_without_a_position) {
    const auto r = load({fixtures + "does_not_exist.yaml"});
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_EQ(r.problems[0].line, 0);
    EXPECT_EQ(r.problems[0].to_string(), fixtures + "does_not_exist.yaml: cannot read the rules file");
}

TEST(rules, an_id_defined_in_two_files_is_refused) {
    const auto r = load({fixtures + "good_small.yaml", fixtures + "good_small.yaml"});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.problems.front().message.find("rule id 'deploy' is also defined at"), std::string::npos);
}

}  // namespace
}  // namespace runbookd::rules
