#include "rules/rules.hpp"
#include "rules/scenario.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace runbookd::rules {
namespace {

std::string problems_text(const std::vector<problem>& ps) {
    std::string out;
    for (const auto& p : ps) {
        out += p.to_string() + "\n";
    }
    return out;
}

const char* const bad_deploy = R"(name: a rollout, then a crash loop
reason: the rollout 4 minutes before the page is the change, and its pods crash
services:
  PBWD001: {name: Builtwithdark, kubernetes: [darklang/bwdserver-deployment]}
timeline:
  - at: -4m
    signal:
      kind: k8s.rollout
      labels: {namespace: darklang, deployment: bwdserver-deployment, image_changed: "true",
               image: "gcr.io/dark/bwdserver:4f2a", previous_image: "gcr.io/dark/bwdserver:9c1e"}
  - at: -1m
    signal:
      kind: k8s.waiting
      labels: {namespace: darklang, deployment: bwdserver-deployment, pod: bwdserver-deployment-7d9f-x2x,
               container: bwdserver-ctr, reason: CrashLoopBackOff}
  - at: 0s
    page: triggered
    incident: {id: Q1, title: "BwdServer 5xx", service: PBWD001}
until: 5m
expect:
  top: bad-deploy
  top3: [server-wont-restart, bad-deploy]
)";

TEST(scenario_score, reason_and_top3_are_read) {
    const auto r = parse_scenario("s.yaml", bad_deploy);
    ASSERT_TRUE(r.value) << problems_text(r.problems);
    EXPECT_EQ(r.value->reason, "the rollout 4 minutes before the page is the change, and its pods crash");
    ASSERT_TRUE(r.value->expect && r.value->expect->top3);
    EXPECT_EQ(*r.value->expect->top3, (std::vector<std::string>{"server-wont-restart", "bad-deploy"}));
    ASSERT_EQ(r.value->named.size(), 3u);
    EXPECT_EQ(r.value->named[0].id, "bad-deploy");
    EXPECT_EQ(r.value->named[0].where.line, 21);
}

TEST(scenario_score, a_bad_top3_or_reason_is_reported_where_it_is) {
    const auto r = parse_scenario("s.yaml", R"(reason: "two\nlines"
timeline:
  - {at: 0s, page: triggered, incident: {id: Q1}}
expect:
  top: bad-deploy
  top3: [db-trouble, none, db-trouble, gcp-outage]
)");
    ASSERT_FALSE(r.value);
    EXPECT_EQ(
        problems_text(r.problems),
        "s.yaml:1:9: reason: the reasoning is one line\n"
        "s.yaml:6:9: expect.top3: at most three causes, not 4\n"
        "s.yaml:6:9: expect.top3: the acceptable top three leave out top 'bad-deploy'\n"
        "s.yaml:6:22: expect.top3[1]: 'none' is not a cause: leave it out (top3: [] when no cause is "
        "acceptable)\n"
        "s.yaml:6:28: expect.top3[2]: 'db-trouble' is already listed\n"
    );
}

TEST(scenario_score, top3_needs_top) {
    const auto r = parse_scenario("s.yaml", "timeline: []\nexpect: {top3: [db-trouble]}\n");
    ASSERT_FALSE(r.value);
    EXPECT_EQ(
        problems_text(r.problems), "s.yaml:2:16: expect.top3: top3 needs top: the cause expected first\n"
    );
}

TEST(scenario_score, ids_the_rules_do_not_define_are_reported) {
    const auto r = parse_scenario("s.yaml", R"(timeline: []
expect:
  top: bad-deploi
  top3: [bad-deploi, cert-expires-soon]
)");
    ASSERT_TRUE(r.value) << problems_text(r.problems);
    const auto rules = load({});
    ASSERT_TRUE(rules.ok());
    EXPECT_EQ(
        problems_text(unknown_rule_ids(*r.value, *rules.value)),
        "s.yaml:3:8: expect.top: no rule 'bad-deploi' in the rules (embedded runbook pack)\n"
        "s.yaml:4:10: expect.top3[0]: no rule 'bad-deploi' in the rules (embedded runbook pack)\n"
        "s.yaml:4:22: expect.top3[1]: 'cert-expires-soon' is a warning, and a warning is never a cause\n"
    );
}

/// A scenario's text, parsed and replayed with the embedded pack.
struct replayed {
    scenario s;
    replay_result r;
};

replayed replay_text(const std::string& text) {
    const auto loaded = parse_scenario("s.yaml", text);
    EXPECT_TRUE(loaded.value) << problems_text(loaded.problems);
    const auto rules = load({});
    EXPECT_TRUE(rules.ok());
    replayed out{loaded.value.value_or(scenario{}), {}};
    out.r = replay(out.s, rules.value);
    return out;
}

TEST(scenario_score, a_replayed_scenario_is_judged_on_its_last_summary) {
    const auto [sc, result] = replay_text(bad_deploy);
    ASSERT_FALSE(result.found.suspects.empty());
    EXPECT_EQ(result.found.top, "bad-deploy");
    EXPECT_EQ(result.found.suspects.front().id, "bad-deploy");
    EXPECT_GT(result.found.suspects.front().evidence, 0u);
    EXPECT_TRUE(result.found.named);
    EXPECT_TRUE(result.misses.empty());
    const auto s = judge(sc, result);
    EXPECT_TRUE(s.top1);
    EXPECT_TRUE(s.top3);
    EXPECT_EQ(s.overconfident, "");
    EXPECT_EQ(s.reason, sc.reason);
}

TEST(scenario_score, a_page_with_no_evidence_names_no_cause) {
    const auto [sc, result] = replay_text(R"(timeline:
  - {at: 0s, page: triggered, incident: {id: Q1, title: "BwdServer 5xx"}}
until: 5m
expect: {top: none, top3: []}
)");
    EXPECT_EQ(result.found.top, "none");
    EXPECT_FALSE(result.found.named);
    EXPECT_TRUE(result.misses.empty());
    const auto s = judge(sc, result);
    EXPECT_TRUE(s.top1);
    EXPECT_TRUE(s.top3);
}

TEST(scenario_score, a_weak_lead_is_listed_but_not_named) {
    // Tuesday 11:00 in New York, inside the usual maintenance window, and nothing else.
    const auto [sc, result] = replay_text(R"(start: 2026-03-10T15:00:00Z
timeline:
  - {at: 0s, page: triggered, incident: {id: Q1, title: "ApiServer p99 latency"}}
until: 5m
expect: {top: none, top3: [db-maintenance]}
)");
    EXPECT_EQ(result.found.top, "db-maintenance");
    EXPECT_FALSE(result.found.named);
    EXPECT_TRUE(result.misses.empty());
    EXPECT_TRUE(judge(sc, result).top3);
    // With a floor low enough, the same lead is named.
    auto low = sc;
    low.settings.operations.min_share = 0.01;
    const auto named = replay(low, load({}).value);
    EXPECT_TRUE(named.found.named);
    EXPECT_FALSE(judge(low, named).top1);
}

// Judging, on rankings written out.
scenario with(std::string top, std::optional<std::vector<std::string>> top3 = std::nullopt) {
    scenario s;
    s.file = "x.yaml";
    s.expect = scenario_expectation{};
    s.expect->top = std::move(top);
    s.expect->top3 = std::move(top3);
    s.settings.operations.dominance_share = 0.6;
    return s;
}

/// A summary that names its first suspect (or has none, with "none").
replay_result found(std::string top, std::vector<ranked> suspects) {
    replay_result r;
    const bool named = top != "none";
    r.found = diagnosis{std::move(top), named, std::move(suspects)};
    return r;
}

/// A summary that lists its suspects as weak leads and names no likely cause.
replay_result weak(std::vector<ranked> suspects) {
    replay_result r;
    r.found = diagnosis{suspects.front().id, false, std::move(suspects)};
    return r;
}

TEST(scenario_score, the_expected_cause_first_is_a_top1_hit) {
    const auto s = judge(
        with("db-maintenance", std::vector<std::string>{"db-maintenance", "db-trouble"}),
        found("db-maintenance", {{"db-maintenance", 0.7, 2}, {"db-trouble", 0.3, 1}})
    );
    EXPECT_TRUE(s.top1);
    EXPECT_TRUE(s.top3);
    EXPECT_EQ(s.overconfident, "");
}

TEST(scenario_score, second_place_is_a_top3_hit_but_a_miss) {
    const auto s = judge(
        with("db-maintenance"), found("db-trouble", {{"db-trouble", 0.5, 2}, {"db-maintenance", 0.4, 1}})
    );
    EXPECT_FALSE(s.top1);
    EXPECT_TRUE(s.top3);
    EXPECT_EQ(s.overconfident, "");  // 50% is below the dominance share
}

TEST(scenario_score, fourth_place_is_a_top3_miss) {
    const auto s = judge(
        with("gcp-outage"),
        found(
            "bad-deploy",
            {{"bad-deploy", 0.4, 1}, {"db-trouble", 0.3, 1}, {"dos-attack", 0.2, 1}, {"gcp-outage", 0.1, 1}}
        )
    );
    EXPECT_FALSE(s.top1);
    EXPECT_FALSE(s.top3);
}

TEST(scenario_score, a_suspect_outside_the_acceptable_three_is_a_top3_miss) {
    const auto s = judge(
        with("bad-deploy", std::vector<std::string>{"bad-deploy", "server-wont-restart"}),
        found(
            "bad-deploy", {{"bad-deploy", 0.6, 2}, {"gke-upgrade", 0.3, 1}, {"server-wont-restart", 0.1, 1}}
        )
    );
    EXPECT_TRUE(s.top1);
    EXPECT_FALSE(s.top3);
    // The fourth is not looked at.
    EXPECT_TRUE(
        judge(
            with("bad-deploy", std::vector<std::string>{"bad-deploy", "server-wont-restart", "db-trouble"}),
            found(
                "bad-deploy",
                {{"bad-deploy", 0.5, 2},
                 {"server-wont-restart", 0.2, 1},
                 {"db-trouble", 0.2, 1},
                 {"gke-upgrade", 0.1, 1}}
            )
        ).top3
    );
}

TEST(scenario_score, no_likely_cause_is_judged_as_none) {
    auto s = judge(with("none", std::vector<std::string>{}), found("none", {}));
    EXPECT_TRUE(s.top1);
    EXPECT_TRUE(s.top3);
    // Weak leads are listed, not named; for the top three they must be acceptable.
    s = judge(with("none", std::vector<std::string>{}), weak({{"user-gone-wild", 0.2, 1}}));
    EXPECT_TRUE(s.top1);
    EXPECT_FALSE(s.top3);
    EXPECT_EQ(s.overconfident, "");  // nothing was named
    s = judge(with("none", std::vector<std::string>{"user-gone-wild"}), weak({{"user-gone-wild", 0.2, 1}}));
    EXPECT_TRUE(s.top3);
    // A weak lead that is the expected cause is still first.
    EXPECT_TRUE(judge(with("user-gone-wild"), weak({{"user-gone-wild", 0.2, 1}})).top1);
    s = judge(with("none"), found("db-maintenance", {{"db-maintenance", 1.0, 1}}));
    EXPECT_FALSE(s.top1);
    EXPECT_FALSE(s.top3);
    EXPECT_EQ(s.overconfident, "names db-maintenance at 100% (dominance 60%), expected none");
}

TEST(scenario_score, a_wrong_top_at_the_dominance_share_is_overconfident) {
    EXPECT_EQ(
        judge(
            with("gke-upgrade"), found("bad-deploy", {{"bad-deploy", 0.6, 1}, {"gke-upgrade", 0.4, 1}})
        ).overconfident,
        "names bad-deploy at 60% (dominance 60%), expected gke-upgrade"
    );
    EXPECT_EQ(
        judge(
            with("gke-upgrade"), found("bad-deploy", {{"bad-deploy", 0.59, 1}, {"gke-upgrade", 0.41, 1}})
        ).overconfident,
        ""
    );
}

TEST(scenario_score, a_right_top_with_no_evidence_is_overconfident) {
    EXPECT_EQ(
        judge(with("db-maintenance"), found("db-maintenance", {{"db-maintenance", 0.3, 0}})).overconfident,
        "names db-maintenance at 30% with no evidence"
    );
}

TEST(scenario_score, the_tally_counts_and_orders_the_shares) {
    std::vector<scenario_score> xs;
    xs.push_back(judge(with("a"), found("a", {{"a", 0.9, 1}})));
    xs.push_back(judge(with("b"), found("b", {{"b", 0.5, 1}})));
    xs.push_back(judge(with("c"), found("a", {{"a", 0.7, 1}, {"c", 0.3, 1}})));
    xs.push_back(judge(with("none"), found("none", {})));
    xs.push_back(judge(with("d"), found("none", {})));
    const auto c = tally(std::move(xs));
    EXPECT_EQ(c.scenarios.size(), 5u);
    EXPECT_EQ(c.top1, 3u);
    EXPECT_EQ(c.top3, 4u);
    EXPECT_EQ(c.right_shares, (std::vector<double>{0.5, 0.9}));
    EXPECT_EQ(c.wrong_shares, (std::vector<double>{0.7}));
    EXPECT_EQ(c.overconfident, 1u);
    EXPECT_DOUBLE_EQ(median(c.right_shares), 0.7);
    EXPECT_DOUBLE_EQ(median(c.wrong_shares), 0.7);
    EXPECT_DOUBLE_EQ(median({0.1, 0.2, 0.9}), 0.2);
    EXPECT_DOUBLE_EQ(median({}), 0);
}

TEST(scenario_score, the_report_shows_each_miss_with_its_ranking_and_reason) {
    std::vector<scenario_score> xs;
    xs.push_back(
        judge(with("bad-deploy"), found("bad-deploy", {{"bad-deploy", 0.8, 2}, {"db-trouble", 0.2, 1}}))
    );
    auto miss = with("db-maintenance", std::vector<std::string>{"db-maintenance", "db-trouble"});
    miss.file = "y.yaml";
    miss.reason = "Cloud SQL says the instance is in maintenance";
    xs.push_back(judge(miss, found("db-trouble", {{"db-trouble", 0.65, 2}, {"db-maintenance", 0.35, 1}})));
    auto quiet = with("none", std::vector<std::string>{"db-maintenance"});
    quiet.file = "z.yaml";
    xs.push_back(judge(quiet, weak({{"db-maintenance", 0.24, 1}})));
    std::ostringstream out;
    write_score(tally(std::move(xs)), out);
    EXPECT_EQ(
        out.str(),
        "ok    x.yaml: bad-deploy 80%\n"
        "MISS  y.yaml: expected db-maintenance, got db-trouble 65%\n"
        "    ranking: 1. db-trouble 65%, 2. db-maintenance 35%\n"
        "    acceptable top three: db-maintenance, db-trouble\n"
        "    reason: Cloud SQL says the instance is in maintenance\n"
        "ok    z.yaml: none (weak lead db-maintenance 24%)\n"
        "\n"
        "top-1: 2/3 (67%)\n"
        "top-3: 3/3 (100%)\n"
        "correct top suspects: 1, median share 80%, max 80%\n"
        "wrong top suspects: 1, median share 65%, max 65%\n"
        "overconfident: 1\n"
        "    y.yaml: names db-trouble at 65% (dominance 60%), expected db-maintenance\n"
    );
}

}  // namespace
}  // namespace runbookd::rules
