// Ranking semantics, with small rule packs written as YAML (the way operators write them).
#include "core/rank.hpp"

#include "rules/rules.hpp"

#include <gtest/gtest.h>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

const wall_time t0 = *parse_rfc3339("2026-03-05T16:00:00Z");  // Thu 11:00 New York

std::shared_ptr<const rule_set> pack(std::string_view yaml) {
    auto r = rules::parse(yaml, "test.yaml");
    EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems.front().to_string());
    return r.value;
}

signal sig(
    std::string kind,
    millis offset,
    std::vector<std::pair<std::string, std::string>> labels,
    std::optional<double> value = {}
) {
    signal s;
    s.kind = std::move(kind);
    s.at = t0 + offset;
    for (auto& [k, v] : labels) {
        s.set(k, v);
    }
    s.subject = s.find("deployment") != nullptr ? *s.find("deployment") : "x";
    s.value = value;
    s.source = "test";
    return s;
}

source_map all_healthy() {
    source_map m;
    for (const auto& k : signal_catalogue()) {
        m.try_emplace(std::string{k.source}, source_status{});
    }
    return m;
}

rank_input at(millis offset, std::vector<std::string> workloads = {}) {
    rank_input in;
    in.start = t0;
    in.now = t0 + offset;
    in.service = service_scope{"PAPI", "API", std::move(workloads)};
    return in;
}

constexpr std::string_view deploy_and_db = R"(
rules:
  - id: deploy
    title: Bad deploy
    prior: 0.3
    when:
      signal: k8s.rollout
      where: {image_changed: "true"}
      window: {before: 3h, after: 10m}
      related: service
    recency: {half_life: 15m, floor: 0.1}
    evidence: "{deployment} rolled out {image} {ago}"
    actions: ["kubectl rollout undo -n {namespace} deploy/{deployment}"]
  - id: db
    title: DB CPU
    prior: 0.2
    when:
      signal: db.cpu
      value: {above: 0.9}
      sustained: 5m
      window: {before: 1h, after: 1h}
      clear: "CPU peaked at {max|percent}"
    evidence: "{instance} CPU {value|percent}"
)";

signal rollout(millis offset, std::string deployment = "api", std::string image_changed = "true") {
    return sig(
        "k8s.rollout",
        offset,
        {{"namespace", "prod"},
         {"deployment", deployment},
         {"image", "api:2"},
         {"image_changed", image_changed}}
    );
}

signal cpu(millis offset, double v) {
    return sig("db.cpu", offset, {{"instance", "dark-west"}}, v);
}

TEST(rank, a_recent_deploy_beats_sustained_db_cpu_and_an_old_one_does_not) {
    const auto rules = pack(deploy_and_db);
    for (const auto& [when, expected_top] :
         std::vector<std::pair<millis, std::string>>{{-3min, "deploy"}, {-2h, "db"}}) {
        signal_log log;
        log.add(rollout(when), t0);
        for (int m = -10; m <= 0; ++m) {
            log.add(cpu(std::chrono::minutes{m}, 0.97), t0);
        }
        const auto r = rank(*rules, log, all_healthy(), at(5min));
        ASSERT_EQ(r.suspects.size(), 2u);
        EXPECT_EQ(r.top()->id, expected_top) << format_duration(when);
        EXPECT_NEAR(r.suspects[0].share + r.suspects[1].share + r.unknown, 1.0, 1e-9);
    }
}

TEST(rank, evidence_and_actions_name_the_real_objects) {
    const auto rules = pack(deploy_and_db);
    signal_log log;
    log.add(rollout(-4min), t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_NE(r.top(), nullptr);
    EXPECT_EQ(r.top()->evidence, std::vector<std::string>{"api rolled out api:2 4m before the alert"});
    EXPECT_EQ(r.top()->actions, std::vector<std::string>{"kubectl rollout undo -n prod deploy/api"});
    // Alone, fresh and full: all but the unknown mass (the pack's priors, 0.5).
    EXPECT_NEAR(r.top()->share, r.top()->score / (r.top()->score + 0.5), 1e-9);
    EXPECT_GT(r.top()->share, 0.95);
    ASSERT_EQ(r.clear.size(), 1u);
    EXPECT_EQ(r.clear[0].id, "db");
    EXPECT_EQ(r.clear[0].detail, "no db.cpu data from 1h before to 1h after the alert");
}

TEST(rank, a_signal_the_world_did_not_date_says_when_it_was_seen) {
    const auto rules = pack(deploy_and_db);
    signal_log log;
    signal s = rollout(-4min);
    s.seen = true;
    log.add(s, t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_NE(r.top(), nullptr);
    EXPECT_EQ(r.top()->evidence, std::vector<std::string>{"api rolled out api:2 seen 4m before the alert"});
}

TEST(rank, related_service_ignores_other_workloads_and_globs_match) {
    const auto rules = pack(deploy_and_db);
    signal_log log;
    log.add(rollout(-4min, "billing"), t0);
    EXPECT_EQ(rank(*rules, log, all_healthy(), at(1min, {"prod/api*"})).top(), nullptr);
    log.add(rollout(-3min, "api-canary"), t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min, {"prod/api*"}));
    ASSERT_NE(r.top(), nullptr);
    EXPECT_EQ(r.top()->actions.front(), "kubectl rollout undo -n prod deploy/api-canary");
    // Unknown workloads: nothing can be excluded.
    EXPECT_NE(rank(*rules, log, all_healthy(), at(1min)).top(), nullptr);
}

TEST(rank, windows_bound_what_counts_and_nothing_after_now_is_seen) {
    const auto rules = pack(deploy_and_db);
    signal_log log;
    log.add(rollout(-3h - 1s), t0 + 1h);
    log.add(rollout(11min), t0 + 1h);
    EXPECT_EQ(rank(*rules, log, all_healthy(), at(1h)).top(), nullptr);
    log.add(rollout(9min), t0 + 1h);
    EXPECT_EQ(rank(*rules, log, all_healthy(), at(8min)).top(), nullptr);  // not yet happened
    EXPECT_NE(rank(*rules, log, all_healthy(), at(10min)).top(), nullptr);
}

TEST(rank, sustained_needs_an_unbroken_run_of_matching_samples) {
    const auto rules = pack(deploy_and_db);
    signal_log log;
    // 97% for 4 minutes, a dip, 97% for 4 minutes: never 5 minutes in a row.
    for (int m = -10; m <= -6; ++m) {
        log.add(cpu(std::chrono::minutes{m}, 0.97), t0);
    }
    log.add(cpu(-5min, 0.40), t0);
    for (int m = -4; m <= 0; ++m) {
        log.add(cpu(std::chrono::minutes{m}, 0.97), t0);
    }
    auto r = rank(*rules, log, all_healthy(), at(0min));
    EXPECT_EQ(r.top(), nullptr);
    ASSERT_EQ(r.clear.size(), 2u);
    EXPECT_EQ(r.clear[1].detail, "CPU peaked at 97%");
    log.add(cpu(1min, 0.97), t0 + 1min);
    r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_NE(r.top(), nullptr);
    EXPECT_EQ(r.top()->id, "db");
}

TEST(rank, a_failing_or_missing_source_makes_a_rule_not_checkable) {
    const auto rules = pack(deploy_and_db);
    signal_log log;
    source_map sources;
    sources.emplace("kubernetes", source_status{source_state::failing, "connection refused", t0});
    const auto r = rank(*rules, log, sources, at(1min));
    ASSERT_EQ(r.not_checkable.size(), 2u);
    EXPECT_EQ(
        r.not_checkable[0].detail, "the kubernetes source is failing: connection refused (k8s.rollout)"
    );
    EXPECT_EQ(r.not_checkable[1].detail, "the cloudsql source is not configured (db.cpu)");
    EXPECT_TRUE(r.clear.empty());
}

TEST(rank, the_kind_that_tells_of_a_failure_stays_checkable_while_its_source_fails) {
    const auto rules = pack(R"(
rules:
  - id: db
    title: DB trouble
    when:
      any:
        - signal: db.unreachable
          evidence: "the database refused the monitor: {error}"
        - signal: db.long_query
          evidence: "pid {pid} ran long"
)");
    signal_log log;
    log.add(sig("db.unreachable", -1min, {{"instance", "dark-west"}, {"error", "connection refused"}}), t0);
    source_map sources = all_healthy();
    sources["postgres"] = source_status{source_state::failing, "cannot connect: connection refused", t0};
    const auto r = rank(*rules, log, sources, at(1min));
    ASSERT_NE(r.top(), nullptr);
    EXPECT_EQ(r.top()->id, "db");
    EXPECT_EQ(r.top()->evidence.at(0), "the database refused the monitor: connection refused");
    // The source's other kinds are not checkable: its failure hides them.
    ASSERT_EQ(r.not_checkable.size(), 0u) << "a matched rule is not listed as not checkable";
    signal_log empty;
    const auto none = rank(*rules, empty, sources, at(1min));
    ASSERT_EQ(none.not_checkable.size(), 1u);
    EXPECT_EQ(
        none.not_checkable[0].detail,
        "the postgres source is failing: cannot connect: connection refused (db.long_query)"
    );
}

TEST(rank, a_positive_finding_stands_even_when_another_branch_cannot_be_checked) {
    const auto rules = pack(R"(
rules:
  - id: either
    title: Either
    when:
      any:
        - signal: k8s.rollout
        - signal: db.cpu
)");
    signal_log log;
    log.add(rollout(-1min), t0);
    source_map sources;
    sources.emplace("kubernetes", source_status{});
    const auto r = rank(*rules, log, sources, at(1min));
    ASSERT_NE(r.top(), nullptr);
    EXPECT_EQ(r.top()->id, "either");
}

TEST(rank, combinators_combine_strength) {
    const auto rules = pack(R"(
rules:
  - id: both
    title: Both
    prior: 1
    when:
      all:
        - {signal: k8s.rollout, strength: 0.5}
        - {signal: k8s.restart, strength: 0.8}
  - id: either
    title: Either
    prior: 1
    when:
      any:
        - {signal: k8s.rollout, strength: 0.5}
        - {signal: k8s.restart, strength: 0.8}
  - id: neither-waiting
    title: No crash loop
    prior: 1
    when:
      all:
        - {signal: k8s.rollout, strength: 0.3}
        - none:
            - signal: k8s.waiting
)");
    signal_log log;
    log.add(rollout(-2min), t0);
    log.add(sig("k8s.restart", -1min, {{"deployment", "api"}}), t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_EQ(r.suspects.size(), 3u);
    EXPECT_EQ(r.suspects[0].id, "either");
    EXPECT_NEAR(r.suspects[0].strength, 1 - 0.5 * 0.2, 1e-9);  // noisy-or
    EXPECT_EQ(r.suspects[1].id, "both");
    EXPECT_NEAR(r.suspects[1].strength, 0.5, 1e-9);  // the weakest link
    EXPECT_EQ(r.suspects[2].id, "neither-waiting");
    log.add(sig("k8s.waiting", 0min, {{"deployment", "api"}}), t0);
    const auto r2 = rank(*rules, log, all_healthy(), at(1min));
    EXPECT_EQ(r2.suspects.size(), 2u);  // none: no longer holds
}

TEST(rank, ties_break_by_evidence_and_a_true_tie_is_one) {
    const auto rules = pack(R"(
rules:
  - {id: zeta, title: Z, prior: 0.2, when: {signal: k8s.rollout}}
  - {id: alpha, title: A, prior: 0.2, when: {signal: k8s.rollout}}
  - {id: mid, title: M, prior: 0.2, when: {signal: k8s.rollout, strength: 0.5}}
  - {id: specific, title: S, prior: 0.2, when: {signal: k8s.rollout, where: {image_changed: "true"}}}
)");
    signal_log log;
    log.add(rollout(-1min), t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_EQ(r.suspects.size(), 4u);
    // Same score: the one whose evidence is more specific first; then a true tie, in the
    // pack's order, never by id.
    EXPECT_EQ(r.suspects[0].id, "specific");
    EXPECT_FALSE(r.suspects[0].tied);
    EXPECT_EQ(r.suspects[1].id, "zeta");
    EXPECT_FALSE(r.suspects[1].tied);
    EXPECT_EQ(r.suspects[2].id, "alpha");
    EXPECT_TRUE(r.suspects[2].tied);
    EXPECT_EQ(r.suspects[3].id, "mid");
    EXPECT_FALSE(r.suspects[3].tied);
    EXPECT_EQ(r.suspects[0].specificity, 2u);
    EXPECT_EQ(r.suspects[1].specificity, 1u);
    EXPECT_EQ(r.likely(0.1), &r.suspects[0]);
}

TEST(rank, a_tie_at_the_top_names_no_likely_cause) {
    const auto rules = pack(R"(
rules:
  - {id: zeta, title: Z, prior: 0.2, when: {signal: k8s.rollout}}
  - {id: alpha, title: A, prior: 0.2, when: {signal: k8s.rollout}}
)");
    signal_log log;
    log.add(rollout(-1min), t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_EQ(r.suspects.size(), 2u);
    EXPECT_TRUE(r.suspects[1].tied);
    EXPECT_EQ(r.likely(0), nullptr);
}

TEST(rank, closer_evidence_breaks_a_tie_of_score_and_specificity) {
    const auto rules = pack(R"(
rules:
  - {id: far, title: F, prior: 0.2, when: {signal: k8s.rollout, window: {before: 2h}}}
  - {id: near, title: N, prior: 0.2, when: {signal: k8s.config_change, window: {before: 2h}}}
)");
    signal_log log;
    log.add(rollout(-50min), t0);
    log.add(sig("k8s.config_change", -5min, {{"deployment", "api"}}), t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_EQ(r.suspects.size(), 2u);
    EXPECT_EQ(r.suspects[0].id, "near");
    EXPECT_FALSE(r.suspects[1].tied);
}

TEST(rank, a_share_is_a_posterior_with_one_unknown_mass) {
    const auto rules = pack(R"(
rules:
  - {id: strong, title: S, prior: 0.1, when: {signal: k8s.rollout}}
  - {id: weak, title: W, prior: 0.3, when: {signal: k8s.restart, strength: 0.5}}
  - {id: clear, title: C, prior: 0.4, when: {signal: k8s.waiting}}
  - {id: unchecked, title: U, prior: 0.2, when: {signal: db.cpu}}
)");
    signal_log log;
    log.add(rollout(-1min), t0);
    log.add(sig("k8s.restart", -1min, {{"deployment", "api"}}), t0);
    source_map sources;
    sources.emplace("kubernetes", source_status{});
    const auto r = rank(*rules, log, sources, at(1min));
    ASSERT_EQ(r.suspects.size(), 2u);
    // Scores: prior x 100^evidence. The unknown mass: the priors of what could not be
    // checked, plus as much as every prior together for a cause the pack does not name.
    const double strong = 0.1 * 100;
    const double weak = 0.3 * 10;
    const double unknown = 0.2 + (0.1 + 0.3 + 0.4 + 0.2);
    const double total = strong + weak + unknown;
    EXPECT_EQ(r.suspects[0].id, "strong");
    EXPECT_NEAR(r.suspects[0].score, strong, 1e-9);
    EXPECT_NEAR(r.suspects[0].share, strong / total, 1e-9);
    EXPECT_NEAR(r.suspects[1].share, weak / total, 1e-9);
    EXPECT_NEAR(r.unknown, unknown / total, 1e-9);
    EXPECT_NEAR(r.suspects[0].share + r.suspects[1].share + r.unknown, 1.0, 1e-9);
    // A checked-and-clear cause is not in the total: removing it changes no share but the
    // unlisted part of the unknown (which follows the pack's priors).
    ASSERT_EQ(r.clear.size(), 1u);
    EXPECT_EQ(r.likely(0.5), &r.suspects[0]);
    EXPECT_EQ(r.likely(0.9), nullptr);  // under the floor: not named
}

constexpr std::string_view effects_pack = R"(
effects:
  - id: node-change
    explains: [k8s.restart]
    by: [k8s.version_change]
    join: [node]
    window: {before: 5m, after: 1h}
rules:
  - id: upgrade
    title: Upgrade
    prior: 0.3
    when:
      all:
        - signal: k8s.version_change
        - signal: k8s.restart
          explained_by: node-change
          evidence: "{count} restarts on nodes replaced by the upgrade"
  - id: restarts
    title: Won't restart
    prior: 0.2
    when:
      signal: k8s.restart
      clear: "no restart"
  - id: every-restart
    title: Every restart
    prior: 0.01
    when:
      signal: k8s.restart
      explained: include
)";

signal restart_on(millis offset, std::string node, std::string pod) {
    return sig(
        "k8s.restart", offset, {{"deployment", "api"}, {"pod", std::move(pod)}, {"node", std::move(node)}}
    );
}

TEST(rank, an_effect_is_skipped_unless_a_condition_asks_for_it) {
    const auto rules = pack(effects_pack);
    signal_log log;
    log.add(sig("k8s.version_change", -30min, {{"object", "node/n1"}, {"node", "n1"}}), t0);
    log.add(restart_on(-20min, "n1", "api-1"), t0);
    log.add(restart_on(-10min, "n1", "api-2"), t0);
    // Before the change by more than the window's 5m, and on an empty node: not explained.
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_EQ(r.suspects.size(), 2u);
    EXPECT_EQ(r.suspects[0].id, "upgrade");
    EXPECT_EQ(
        r.suspects[0].evidence,
        (std::vector<std::string>{
            "2 restarts on nodes replaced by the upgrade", "k8s.version_change x 30m before the alert"})
    );
    EXPECT_EQ(r.suspects[1].id, "every-restart");
    ASSERT_EQ(r.clear.size(), 1u);
    EXPECT_EQ(r.clear[0].id, "restarts");
    EXPECT_EQ(r.clear[0].detail, "no restart (2 k8s.restart explained by node-change)");
}

TEST(rank, an_effect_joins_on_equal_non_empty_labels_within_its_window) {
    const auto rules = pack(effects_pack);
    signal_log log;
    log.add(sig("k8s.version_change", -30min, {{"object", "node/n1"}, {"node", "n1"}}), t0);
    log.add(restart_on(-40min, "n1", "api-1"), t0);  // 10m before the change: not its effect
    log.add(restart_on(-10min, "n2", "api-2"), t0);  // another node
    log.add(restart_on(-5min, "", "api-3"), t0);     // no node known: joins nothing
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_EQ(r.suspects.size(), 2u);
    EXPECT_EQ(r.suspects[0].id, "restarts");
    EXPECT_EQ(r.suspects[1].id, "every-restart");
    EXPECT_EQ(r.clear.at(0).id, "upgrade");
    // Within 5m before the change counts (the drain began before the node's version moved).
    log.add(restart_on(-33min, "n1", "api-4"), t0);
    const auto r2 = rank(*rules, log, all_healthy(), at(1min));
    EXPECT_EQ(r2.top()->id, "upgrade");
}

TEST(rank, count_at_least_and_value_thresholds) {
    const auto rules = pack(R"(
rules:
  - id: restarts
    title: Restarts
    when: {signal: k8s.restart, count: {at_least: 3}}
    evidence: "{count} restarts of {pod}"
  - id: long
    title: Long query
    when: {signal: db.long_query, value: {above: 300}}
    actions: ["SELECT pg_cancel_backend({pid});"]
)");
    signal_log log;
    log.add(sig("k8s.restart", -3min, {{"pod", "p1"}}), t0);
    log.add(sig("k8s.restart", -2min, {{"pod", "p1"}}), t0);
    log.add(sig("db.long_query", -1min, {{"pid", "4123"}}, 299.0), t0);
    EXPECT_EQ(rank(*rules, log, all_healthy(), at(1min)).top(), nullptr);
    log.add(sig("k8s.restart", -1min, {{"pod", "p1"}}), t0);
    log.add(sig("db.long_query", 0min, {{"pid", "4123"}}, 840.0), t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_EQ(r.suspects.size(), 2u);
    const auto& restarts = r.suspects[0].id == "restarts" ? r.suspects[0] : r.suspects[1];
    const auto& query = r.suspects[0].id == "long" ? r.suspects[0] : r.suspects[1];
    EXPECT_EQ(restarts.evidence.front(), "3 restarts of p1");
    EXPECT_EQ(query.actions, std::vector<std::string>{"SELECT pg_cancel_backend(4123);"});
}

TEST(rank, calendar_windows_use_the_incident_start_in_local_time) {
    const auto rules = pack(R"(
rules:
  - id: maintenance
    title: Maintenance
    when:
      calendar: {days: [tue, wed], from: "10:00", to: "13:00", tz: America/New_York}
    actions: ["Check the maintenance status of {service}"]
)");
    signal_log log;
    auto in = at(1min);
    EXPECT_EQ(rank(*rules, log, {}, in).top(), nullptr);  // Thursday
    in.start = *parse_rfc3339("2026-03-03T16:10:00Z");    // Tuesday 11:10 EST
    in.now = in.start;
    const auto r = rank(*rules, log, {}, in);
    ASSERT_NE(r.top(), nullptr);
    EXPECT_EQ(
        r.top()->evidence.front(),
        "the alert came at Tue 11:10 EST, inside Tue/Wed 10:00-13:00 America/New_York"
    );
    EXPECT_EQ(r.top()->actions.front(), "Check the maintenance status of API");
}

signal cert(
    millis offset,
    std::string host,
    std::string services,
    std::optional<double> value,
    std::string outcome = "ok",
    std::string expires_soon = "false"
) {
    auto s =
        sig("cert.expiry",
            offset,
            {{"host", host},
             {"port", "443"},
             {"outcome", std::move(outcome)},
             {"not_after", "2026-03-14T16:00:00Z"},
             {"services", std::move(services)},
             {"expires_soon", std::move(expires_soon)}},
            value);
    s.subject = std::move(host);
    return s;
}

constexpr std::string_view cert_pack = R"yaml(
rules:
  - id: expired
    title: A cert ran out
    when:
      signal: cert.expiry
      value: {below: 0}
      related: service
    evidence: "the certificate of {host} expired {value|duration} ago"
warnings:
  - id: expires-soon
    when:
      signal: cert.expiry
      where: {expires_soon: "true"}
      related: service
    text: "the certificate of {host} expires in {value|days} (not after {not_after})"
)yaml";

TEST(rank, related_service_reads_the_services_a_signal_names) {
    const auto rules = pack(cert_pack);
    const auto top_for = [&](std::string services, std::vector<std::string> workloads = {"prod/api*"}) {
        signal_log log;
        log.add(cert(-1min, "api.test", std::move(services), -7500), t0);
        const auto r = rank(*rules, log, all_healthy(), at(1min, std::move(workloads)));
        return r.top() == nullptr ? std::string{"none"} : r.top()->id;
    };
    EXPECT_EQ(top_for("PAPI"), "expired");
    EXPECT_EQ(top_for("PWWW,PAPI"), "expired");
    EXPECT_EQ(top_for("PWWW, PAPI "), "expired");
    EXPECT_EQ(top_for("*"), "expired");
    EXPECT_EQ(top_for("PWWW"), "none");
    EXPECT_EQ(top_for("PAPI001"), "none") << "ids are compared whole, not as prefixes";
    // The label is taken at its word even when the service's workloads are not known.
    EXPECT_EQ(top_for("PWWW", {}), "none");
    // A signal that names no service at all cannot be excluded.
    EXPECT_EQ(top_for(""), "expired");
    // With no paged service id, nothing can exclude a signal either.
    signal_log log;
    log.add(cert(-1min, "api.test", "PWWW", -7500), t0);
    auto in = at(1min, {"prod/api*"});
    in.service.id.clear();
    ASSERT_NE(rank(*rules, log, all_healthy(), in).top(), nullptr);
}

TEST(rank, a_kind_without_a_services_label_is_still_related_by_its_service_label) {
    // deploy.ci's services label is empty here: its service label still matches the paged id.
    const auto rules = pack(R"(
rules:
  - id: deploy
    title: Deploy
    when: {signal: deploy.ci, related: service}
)");
    signal_log log;
    log.add(sig("deploy.ci", -1min, {{"service", "PAPI"}, {"status", "success"}}), t0);
    EXPECT_NE(rank(*rules, log, all_healthy(), at(1min, {"prod/api"})).top(), nullptr);
}

TEST(rank, a_warning_is_a_line_and_never_a_cause) {
    const auto rules = pack(cert_pack);
    signal_log log;
    log.add(cert(-2min, "www.test", "PAPI", 9 * 86400.0 + 3600, "ok", "true"), t0);
    log.add(cert(-1min, "other.test", "PWWW", 3 * 86400.0, "ok", "true"), t0);  // another service's
    const auto r = rank(*rules, log, all_healthy(), at(1min, {"prod/api"}));
    EXPECT_EQ(r.top(), nullptr);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_EQ(r.warnings[0].id, "expires-soon");
    EXPECT_EQ(
        r.warnings[0].text, "the certificate of www.test expires in 9 days (not after 2026-03-14T16:00:00Z)"
    );
    // Not a cause, so not "checked, clear" either: only the rule is.
    ASSERT_EQ(r.clear.size(), 1u);
    EXPECT_EQ(r.clear[0].id, "expired");
    EXPECT_TRUE(r.not_checkable.empty());
}

TEST(rank, a_warning_has_one_line_per_subject_and_looks_only_in_its_window) {
    const auto rules = pack(cert_pack);
    signal_log log;
    // Every 5 minutes, as the certs source checks: one line per host, from the closest check.
    for (int m = -30; m <= 0; m += 5) {
        log.add(cert(std::chrono::minutes{m}, "www.test", "*", 86400.0 - m * 60, "ok", "true"), t0);
    }
    log.add(cert(-3min, "cdn.test", "*", 12 * 3600.0, "ok", "true"), t0);
    log.add(cert(-2h, "old.test", "*", 86400.0, "ok", "true"), t0);  // outside the default 1h
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    ASSERT_EQ(r.warnings.size(), 2u);
    EXPECT_EQ(
        r.warnings[0].text, "the certificate of www.test expires in 1 day (not after 2026-03-14T16:00:00Z)"
    );
    EXPECT_EQ(
        r.warnings[1].text, "the certificate of cdn.test expires in 12h 00m (not after 2026-03-14T16:00:00Z)"
    );
}

TEST(rank, a_warning_whose_source_is_down_is_silent_not_unchecked) {
    const auto rules = pack(cert_pack);
    signal_log log;
    log.add(cert(-1min, "www.test", "*", 9 * 86400.0, "ok", "true"), t0);
    source_map sources = all_healthy();
    sources["certs"] = source_status{source_state::failing, "timed out", t0};
    const auto r = rank(*rules, log, sources, at(1min));
    EXPECT_TRUE(r.warnings.empty());
    ASSERT_EQ(r.not_checkable.size(), 1u);
    EXPECT_EQ(r.not_checkable[0].id, "expired");
}

TEST(rank, a_check_that_read_no_certificate_is_no_cause_and_no_warning) {
    const auto rules = pack(cert_pack);
    signal_log log;
    log.add(cert(-1min, "gone.test", "*", std::nullopt, "refused"), t0);
    log.add(cert(-1min, "slow.test", "*", std::nullopt, "timed_out"), t0);
    const auto r = rank(*rules, log, all_healthy(), at(1min));
    EXPECT_EQ(r.top(), nullptr);
    EXPECT_TRUE(r.warnings.empty());
}

TEST(rank, is_deterministic) {
    const auto rules = rules::load({});
    ASSERT_TRUE(rules.ok());
    signal_log log;
    log.add(rollout(-4min), t0);
    log.add(cpu(-1min, 0.95), t0);
    const auto a = rank(*rules.value, log, all_healthy(), at(2min));
    const auto b = rank(*rules.value, log, all_healthy(), at(2min));
    ASSERT_EQ(a.suspects.size(), b.suspects.size());
    for (std::size_t i = 0; i < a.suspects.size(); ++i) {
        EXPECT_EQ(a.suspects[i].id, b.suspects[i].id);
        EXPECT_EQ(a.suspects[i].score, b.suspects[i].score);
        EXPECT_EQ(a.suspects[i].evidence, b.suspects[i].evidence);
    }
}

TEST(rank, an_image_tag_carries_a_commit_by_a_token_of_seven_hex_digits_or_more) {
    const std::string c = "4f2a9c1e0b7d3a5f00112233445566778899aabb";
    EXPECT_TRUE(image_carries("gcr.io/dark/api:4f2a9c1", c));
    EXPECT_TRUE(image_carries("gcr.io/dark/api:v1.4-4f2a9c1e", c));
    EXPECT_TRUE(image_carries("api:main_4F2A9C1E0B", c));  // upper-case hex in a tag
    EXPECT_TRUE(image_carries("localhost:5000/api:" + c + "@sha256:00ff", c));
    EXPECT_FALSE(image_carries("gcr.io/dark/api:4f2a", c));          // too short to tell
    EXPECT_FALSE(image_carries("gcr.io/dark/api:4f2a9c2", c));       // another commit
    EXPECT_FALSE(image_carries("localhost:5000/api", c));            // no tag; the port is not one
    EXPECT_FALSE(image_carries("gcr.io/dark/api:4f2a9c1", "4f2a"));  // a commit too short to match
}

constexpr std::string_view deploy_story = R"(
rules:
  - id: deploy
    title: Bad deploy
    prior: 0.3
    when:
      any:
        - {signal: k8s.rollout, related: service, strength: 0.9}
        - {signal: deploy.ci, related: service, strength: 0.6}
)";

TEST(rank, a_ci_deploy_and_the_rollout_carrying_its_commit_count_once) {
    const auto rules = pack(deploy_story);
    const auto ranked = [&](std::string image) {
        signal_log log;
        log.add(
            sig("deploy.ci",
                -6min,
                {{"service", "api"}, {"status", "success"}, {"commit", "4f2a9c1e0b7d3a5f"}}),
            t0
        );
        log.add(
            sig("k8s.rollout", -5min, {{"namespace", "prod"}, {"deployment", "api"}, {"image", image}}), t0
        );
        const auto r = rank(*rules, log, all_healthy(), at(1min, {"prod/api"}));
        EXPECT_NE(r.top(), nullptr);
        return r.top() == nullptr ? suspect{} : *r.top();
    };
    const auto one = ranked("gcr.io/x/api:4f2a9c1");
    EXPECT_DOUBLE_EQ(one.strength, 0.9);  // one story, at its stronger evidence
    EXPECT_EQ(one.evidence.size(), 2u);   // both still tell it
    const auto two = ranked("gcr.io/x/api:77bb0aa");
    EXPECT_DOUBLE_EQ(two.strength, 1 - 0.1 * 0.4);  // two deploys: independent evidence
}

TEST(rank, quiet_for_counts_a_subjects_last_signal_once_it_is_old_enough) {
    const auto rules = pack(R"(
rules:
  - id: stalled
    title: Stalled
    when: {signal: deploy.ci, where: {status: in_progress}, quiet_for: 30m, window: {before: 2h, after: 2h}}
)");
    signal_log log;
    auto s = sig("deploy.ci", -5min, {{"status", "in_progress"}});
    s.subject = "run 1";
    log.add(s, t0);
    EXPECT_EQ(rank(*rules, log, all_healthy(), at(25min - 1ms)).top(), nullptr);
    EXPECT_NE(rank(*rules, log, all_healthy(), at(25min)).top(), nullptr);
    // A later status of the same run: it did not go quiet at in_progress.
    auto later = sig("deploy.ci", 10min, {{"status", "success"}});
    later.subject = "run 1";
    log.add(later, t0 + 10min);
    EXPECT_EQ(rank(*rules, log, all_healthy(), at(60min)).top(), nullptr);
}

TEST(rank, rollout_elsewhere_needs_kubernetes_and_not_elsewhere_excludes_only_what_it_knows) {
    const auto rules = pack(R"(
rules:
  - id: partial
    title: Partial
    when: {signal: deploy.ci, rollout: elsewhere}
  - id: deployed
    title: Deployed
    when: {signal: deploy.ci, rollout: not_elsewhere}
)");
    signal_log log;
    log.add(sig("deploy.ci", -6min, {{"status", "success"}, {"commit", "5e6f7a8b9c0d"}}), t0);
    log.add(
        sig("k8s.rollout", -7min, {{"namespace", "prod"}, {"deployment", "web"}, {"image", "web:5e6f7a8"}}),
        t0
    );
    const auto r = rank(*rules, log, all_healthy(), at(1min, {"prod/api"}));
    ASSERT_EQ(r.suspects.size(), 1u);
    EXPECT_EQ(r.suspects[0].id, "partial");
    // The paged service's own rollout carries it too: not partial.
    log.add(
        sig("k8s.rollout", -6min, {{"namespace", "prod"}, {"deployment", "api"}, {"image", "api:5e6f7a8"}}),
        t0
    );
    const auto both = rank(*rules, log, all_healthy(), at(1min, {"prod/api"}));
    ASSERT_EQ(both.suspects.size(), 1u);
    EXPECT_EQ(both.suspects[0].id, "deployed");
    // Without Kubernetes: partial cannot be told; nothing is excluded.
    auto no_k8s = all_healthy();
    no_k8s.erase("kubernetes");
    const auto blind = rank(*rules, log, no_k8s, at(1min, {"prod/api"}));
    ASSERT_EQ(blind.suspects.size(), 1u);
    EXPECT_EQ(blind.suspects[0].id, "deployed");
    ASSERT_EQ(blind.not_checkable.size(), 1u);
    EXPECT_EQ(blind.not_checkable[0].id, "partial");
}

}  // namespace
}  // namespace runbookd
