// The configuration's calendars: and rules.overrides:, read with the configuration and
// applied to the rule pack it names (rules/tuning.hpp). Fixtures: tests/data/config/
// (tuning_pack.yaml is the pack they tune).

#include "rules/tuning.hpp"

#include "config/config.hpp"
#include "core/calendar.hpp"
#include "core/rank.hpp"
#include "core/signal_log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

const std::string fixtures = "tests/data/config/";
const std::string tuned_pack = "tests/data/config/tuning_pack.yaml";

const rule& rule_of(const rule_set& set, const std::string& id) {
    for (const auto& r : set.rules) {
        if (r.id == id) {
            return r;
        }
    }
    throw std::out_of_range(id);
}

/// The problems of a configuration file and, when it loads, of its rules tuned by it.
std::vector<problem> problems_of(const std::string& file) {
    const auto cfg = config::load(fixtures + file, [](std::string_view) { return std::nullopt; });
    if (!cfg.ok()) {
        return cfg.problems;
    }
    return rules::load(cfg.value->rules.files, cfg.value->rules.tuning).problems;
}

TEST(tuning, every_override_key_reaches_its_rule_or_leaf) {
    const auto cfg = config::load(fixtures + "good_tuning.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.problems.front().to_string();
    const auto& t = cfg.value->rules.tuning;
    EXPECT_EQ(t.overrides.size(), 5u);
    EXPECT_EQ(t.calendars.size(), 1u);
    const auto tuned = rules::load(cfg.value->rules.files, t);
    ASSERT_TRUE(tuned.ok()) << tuned.problems.front().to_string();
    const auto& set = *tuned.value;

    const auto& deploy = rule_of(set, "deploy");
    EXPECT_DOUBLE_EQ(deploy.prior, 0.35);
    ASSERT_TRUE(deploy.recent);
    EXPECT_EQ(deploy.recent->half_life, 20min);
    EXPECT_DOUBLE_EQ(deploy.recent->floor, 0.2);
    EXPECT_EQ(deploy.when.signal.window.before, 3h);
    EXPECT_EQ(deploy.when.signal.window.after, 30min);
    EXPECT_DOUBLE_EQ(deploy.when.signal.strength, 0.8);

    const auto& db = rule_of(set, "db-trouble");
    EXPECT_DOUBLE_EQ(db.prior, 0.2);  // not overridden: as the pack says
    const auto& cpu = db.when.children.at(0).signal;
    EXPECT_EQ(cpu.above, 0.85);
    EXPECT_EQ(cpu.below, 1.5);
    EXPECT_EQ(cpu.at_least, 2u);
    EXPECT_EQ(cpu.sustained, 10min);
    EXPECT_EQ(cpu.quiet_for, 1min);
    EXPECT_EQ(db.when.children.at(1).signal.above, 0.95);  // the unnamed leaf is untouched

    const auto& window = rule_of(set, "maint").when.calendar;
    EXPECT_DOUBLE_EQ(window.strength, 0.4);
    EXPECT_EQ(set.warnings.at(0).when.signal.below, 604800);
}

TEST(tuning, a_calendar_override_replaces_only_the_keys_it_sets) {
    const auto cfg = config::load(fixtures + "good_tuning.yaml");
    ASSERT_TRUE(cfg.ok());
    const auto tuned = rules::load(cfg.value->rules.files, cfg.value->rules.tuning);
    ASSERT_TRUE(tuned.ok());
    const auto& w = rule_of(*tuned.value, "maint").when.calendar.window;
    // The pack's Tue/Wed 10:00-13:00 New York, now only in the first two weeks of each quarter.
    EXPECT_EQ(describe(w), "1st/2nd Tue/Wed 10:00-13:00 America/New_York in Jan/Apr/Jul/Oct");
    const auto at = [](const char* text) { return *parse_rfc3339(text); };
    EXPECT_TRUE(contains(w, at("2026-07-07T15:00:00Z")));   // Tue 7 Jul 11:00 EDT, the 1st Tuesday
    EXPECT_TRUE(contains(w, at("2026-01-14T16:00:00Z")));   // Wed 14 Jan 11:00 EST, the 2nd Wednesday
    EXPECT_FALSE(contains(w, at("2026-07-21T15:00:00Z")));  // the 3rd Tuesday
    EXPECT_FALSE(contains(w, at("2026-03-03T16:00:00Z")));  // March
}

TEST(tuning, without_configuration_the_pack_is_as_written) {
    const auto pack = rules::load({tuned_pack});
    ASSERT_TRUE(pack.ok()) << pack.problems.front().to_string();
    EXPECT_DOUBLE_EQ(rule_of(*pack.value, "deploy").prior, 0.3);
    EXPECT_EQ(
        describe(rule_of(*pack.value, "maint").when.calendar.window), "Tue/Wed 10:00-13:00 America/New_York"
    );
    // A configuration without the sections leaves the very same pack.
    const auto cfg = config::load(fixtures + "good_minimal.yaml");
    ASSERT_TRUE(cfg.ok());
    EXPECT_TRUE(cfg.value->rules.tuning.empty());
    const auto same = rules::apply(pack.value, cfg.value->rules.tuning);
    EXPECT_EQ(same.value, pack.value);
}

TEST(tuning, a_changed_override_changes_the_packs_hash_so_a_reload_swaps_it) {
    const auto text = [](const std::string& prior) {
        return "notify: {kind: console}\npagerduty: {webhook_secrets: [s3cret]}\nrules:\n  files: [" +
               tuned_pack + "]\n  overrides:\n    deploy: {prior: " + prior + "}\n";
    };
    const auto a = config::parse(text("0.4"), "a.yaml");
    const auto a_again = config::parse(text("0.4"), "a.yaml");
    const auto b = config::parse(text("0.5"), "b.yaml");
    ASSERT_TRUE(a.ok() && a_again.ok() && b.ok()) << a.problems.front().to_string();
    EXPECT_EQ(a.value->rules, a_again.value->rules);
    EXPECT_FALSE(a.value->rules == b.value->rules);
    const auto pack = rules::load({tuned_pack});
    const auto ta = rules::apply(pack.value, a.value->rules.tuning);
    const auto ta_again = rules::apply(pack.value, a_again.value->rules.tuning);
    const auto tb = rules::apply(pack.value, b.value->rules.tuning);
    ASSERT_TRUE(ta.ok() && ta_again.ok() && tb.ok());
    EXPECT_NE(ta.value->hash, pack.value->hash);
    EXPECT_EQ(ta.value->hash, ta_again.value->hash);
    EXPECT_NE(ta.value->hash, tb.value->hash);
    EXPECT_DOUBLE_EQ(rule_of(*tb.value, "deploy").prior, 0.5);
    EXPECT_EQ(ta.value->origin, tuned_pack + ", tuned by a.yaml");
}

TEST(tuning, the_tuned_runbook_pack_ranks_as_its_overrides_say) {
    // Tuesday 21 July 2026, 11:00 in New York: the 3rd Tuesday, inside the pack's weekly
    // window but not the first week of the quarter; the DB's CPU at 87% for 10 minutes.
    const wall_time start = *parse_rfc3339("2026-07-21T15:00:00Z");
    signal_log log;
    for (int m = -10; m <= 0; ++m) {
        signal s;
        s.kind = "db.cpu";
        s.subject = "dark-west";
        s.source = "cloudsql";
        s.at = start + std::chrono::minutes{m};
        s.set("instance", "dark-west");
        s.value = 0.87;
        log.add(s, start);
    }
    source_map healthy;
    for (const auto& k : signal_catalogue()) {
        healthy.try_emplace(std::string{k.source}, source_status{});
    }
    rank_input in;
    in.start = start;
    in.now = start + 1min;
    in.service = service_scope{"PAPI", "API", {}};
    const auto ids = [](const ranking& r) {
        std::vector<std::string> out;
        for (const auto& s : r.suspects) {
            out.push_back(s.id);
        }
        return out;
    };

    const auto written = rules::load({});
    ASSERT_TRUE(written.ok());
    const auto before = rank(*written.value, log, healthy, in);
    EXPECT_EQ(ids(before), std::vector<std::string>{"db-maintenance"});  // the calendar alone

    const auto cfg = config::parse(
        "notify: {kind: console}\npagerduty: {webhook_secrets: [s3cret]}\n"
        "rules:\n  overrides:\n    db-trouble.cpu: {value: {above: 0.85}}\n"
        "calendars:\n  maintenance: {weeks: [1], months: [jan, apr, jul, oct]}\n",
        "tuned.yaml"
    );
    ASSERT_TRUE(cfg.ok()) << cfg.problems.front().to_string();
    const auto tuned = rules::load({}, cfg.value->rules.tuning);
    ASSERT_TRUE(tuned.ok()) << tuned.problems.front().to_string();
    const auto after = rank(*tuned.value, log, healthy, in);
    EXPECT_EQ(ids(after), std::vector<std::string>{"db-trouble"});
    const auto maintenance = std::find_if(after.clear.begin(), after.clear.end(), [](const checked& c) {
        return c.id == "db-maintenance";
    });
    ASSERT_NE(maintenance, after.clear.end());
    EXPECT_NE(
        maintenance->detail.find("outside 1st Tue/Wed 10:00-13:00 America/New_York in Jan/Apr/Jul/Oct"),
        std::string::npos
    ) << maintenance->detail;
}

// --- one fixture per validation rule ---------------------------------------------------------

struct bad_case {
    std::string file;
    int line;
    int column;
    std::string path;
    std::string message;

    friend std::ostream& operator<<(std::ostream& os, const bad_case& c) { return os << c.file; }
};

class tuning_bad : public ::testing::TestWithParam<bad_case> {};

TEST_P(tuning_bad, reports_one_problem_at_the_offending_key) {
    const bad_case& c = GetParam();
    const auto problems = problems_of(c.file);
    ASSERT_EQ(problems.size(), 1u) << (problems.empty() ? "none" : problems.front().to_string());
    const problem& p = problems[0];
    EXPECT_EQ(p.file, fixtures + c.file);
    EXPECT_EQ(p.line, c.line) << p.to_string();
    EXPECT_EQ(p.column, c.column) << p.to_string();
    EXPECT_EQ(p.path, c.path);
    EXPECT_EQ(p.message, c.message);
}

INSTANTIATE_TEST_SUITE_P(
    rules,
    tuning_bad,
    ::testing::Values(
        bad_case{
            "bad_override_address.yaml",
            9,
            5,
            "rules.overrides.Deploy.Rollout",
            "'Deploy.Rollout' is not a rule id or <rule id>.<leaf name> (lower-case letters, digits, '-' and "
            "'_')"},
        bad_case{
            "bad_override_unknown_key.yaml",
            10,
            7,
            "rules.overrides.deploy.priro",
            "unknown key 'priro'; did you mean 'prior'? (one of prior, recency)"},
        bad_case{
            "bad_override_leaf_key_on_rule.yaml",
            10,
            7,
            "rules.overrides.deploy.window",
            "'window' is a leaf's: address the leaf as deploy.<leaf name>"},
        bad_case{
            "bad_override_type.yaml",
            10,
            17,
            "rules.overrides.db-trouble.cpu.strength",
            "'high' is not a number"},
        bad_case{
            "bad_override_range.yaml", 10, 14, "rules.overrides.deploy.prior", "must be from 0.00 to 1.00"},
        bad_case{
            "bad_override_empty.yaml",
            9,
            13,
            "rules.overrides.deploy",
            "sets nothing: give one of prior, recency"},
        bad_case{
            "bad_override_unknown_rule.yaml",
            9,
            5,
            "rules.overrides.db-troubel",
            "the rule pack has no rule or warning 'db-troubel'; did you mean 'db-trouble'?"},
        bad_case{
            "bad_override_unknown_leaf.yaml",
            9,
            5,
            "rules.overrides.db-trouble.cpuu",
            "'db-trouble' has no leaf named 'cpuu'; did you mean 'cpu'?"},
        bad_case{
            "bad_override_no_value.yaml",
            10,
            22,
            "rules.overrides.deploy.rollout.value.above",
            "'k8s.rollout' signals carry no value"},
        bad_case{
            "bad_override_warning_prior.yaml",
            9,
            5,
            "rules.overrides.cert-soon",
            "'cert-soon' is a warning: it has no prior or recency"},
        bad_case{
            "bad_override_calendar_leaf.yaml",
            10,
            24,
            "rules.overrides.maint.window.window.before",
            "a calendar leaf takes only strength here; its window is set under calendars:"},
        bad_case{
            "bad_calendar_override_unknown.yaml",
            9,
            3,
            "calendars.maintenanse",
            "the rule pack has no calendar 'maintenanse'; did you mean 'maintenance'?"},
        bad_case{
            "bad_calendar_override_never.yaml",
            9,
            3,
            "calendars.maintenance",
            "calendar 'maintenance' would never hold (from must be before 24:00 and differ from to)"},
        bad_case{
            "bad_calendar_override_day.yaml",
            10,
            17,
            "calendars.maintenance.days[1]",
            "'thurs-ish' is not one of sun, mon, tue, wed, thu, fri, sat (or their full names)"},
        bad_case{
            "bad_calendar_override_week.yaml",
            10,
            16,
            "calendars.maintenance.weeks[1]",
            "'6' is not a week of the month (1 to 5: the nth such weekday; or last)"},
        bad_case{
            "bad_calendar_override_zone.yaml",
            10,
            9,
            "calendars.maintenance.tz",
            "unknown time zone 'America/New_Yrok' (an IANA name, e.g. America/New_York)"},
        bad_case{
            "bad_calendar_override_empty.yaml",
            9,
            16,
            "calendars.maintenance",
            "sets nothing: give one of days, weeks, months, from, to, tz"},
        bad_case{
            "bad_calendar_override_unknown_key.yaml",
            10,
            5,
            "calendars.maintenance.month",
            "unknown key 'month'; did you mean 'months'?"}
    ),
    [](const ::testing::TestParamInfo<bad_case>& param) {
        return param.param.file.substr(0, param.param.file.find('.'));
    }
);

}  // namespace
}  // namespace runbookd
