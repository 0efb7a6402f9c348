// The engine's #operations side: the summary at the page, edits in place (coalesced), a
// new message when the top suspect changes, the timeline on resolve, and what #status says
// when one cause dominates. Virtual time throughout.
#include "core/engine.hpp"
#include "engine_fixtures.hpp"
#include "rules/rules.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

using namespace engine_fixtures;

engine_settings settings(millis edit_interval = 30s) {
    engine_settings s = api_settings(edit_interval);
    s.operations.dominance_share = 0.6;
    return s;
}

incident_event page(incident_event_type type) {
    incident_event ev;
    ev.type = type;
    ev.event_id = std::string{to_string(type)};
    ev.incident.id = "PINC1";
    ev.incident.title = "API 5xx";
    ev.incident.service_id = "PAPI";
    ev.incident.status = type == incident_event_type::resolved ? "resolved" : "triggered";
    return ev;
}

signal cpu(wall_time at, double v) {
    signal s;
    s.kind = "db.cpu";
    s.at = at;
    s.subject = "dark-west";
    s.source = "cloudsql";
    s.set("instance", "dark-west");
    s.value = v;
    return s;
}

signal certificate(wall_time at, std::string host, double value, std::string outcome, std::string soon) {
    signal s;
    s.kind = "cert.expiry";
    s.at = at;
    s.subject = host;
    s.source = "certs";
    s.value = value;
    s.set("host", host);
    s.set("port", "8443");
    s.set("outcome", std::move(outcome));
    s.set("not_after", "2026-03-14T16:00:00Z");
    s.set("which", "leaf");
    s.set("cert_subject", "CN=" + host);
    s.set("services", "PAPI,PWWW");
    s.set("expires_soon", std::move(soon));
    return s;
}

struct engine_ops : ::testing::Test {
    engine e{settings()};

    void healthy(std::initializer_list<const char*> names) {
        for (const char* n : names) {
            e.on_source_status(n, source_status{}, t0 - 1h);
        }
    }
};

TEST_F(engine_ops, the_page_posts_a_summary_with_the_status_notice) {
    healthy({"kubernetes"});
    e.on_signal(rollout(t0 - 3min), t0 - 3min);
    const auto d = e.on_event(page(incident_event_type::triggered), t0);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0]->kind, post_kind::summary);
    EXPECT_EQ(ops[0]->key, "PINC1/0/summary/1");
    EXPECT_TRUE(ops[0]->edit_of.empty());
    EXPECT_FALSE(ops[0]->coalescible);
    EXPECT_NE(ops[0]->text.body.find("`kubectl rollout undo -n prod deploy/api`"), std::string::npos);
    EXPECT_NE(
        ops[0]->text.body.find("**Not checkable**"), std::string::npos
    );  // cloudsql etc. not configured
    EXPECT_EQ(d.posts.front().to, channel::status);
}

TEST_F(engine_ops, a_burst_of_signals_makes_at_most_one_edit_per_interval) {
    healthy({"kubernetes"});
    e.on_signal(rollout(t0 - 3min), t0 - 3min);
    e.on_event(page(incident_event_type::triggered), t0);
    // The first new evidence 5 s after the summary waits for the interval to pass.
    auto d = e.on_signal(crashloop(t0 + 5s, "api-1"), t0 + 5s);
    EXPECT_TRUE(operations(d).empty());
    EXPECT_EQ(e.next_wake(), t0 + 30s);
    for (int i = 2; i <= 20; ++i) {
        d = e.on_signal(
            crashloop(t0 + 5s + std::chrono::seconds{i}, "api-" + std::to_string(i)),
            t0 + 5s + std::chrono::seconds{i}
        );
        EXPECT_TRUE(operations(d).empty());
    }
    EXPECT_TRUE(e.on_tick(t0 + 30s - 1ms).posts.empty());
    d = e.on_tick(t0 + 30s);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0]->edit_of, "PINC1/0/summary/1");
    EXPECT_EQ(ops[0]->key, "PINC1/0/summary/1/edit/1");
    EXPECT_NE(ops[0]->text.body.find("CrashLoopBackOff"), std::string::npos);
    // Nothing new: no edit, and no wake-up for #operations.
    EXPECT_EQ(e.next_wake(), t0 + 30min);
}

TEST_F(engine_ops, an_unchanged_ranking_sends_nothing) {
    healthy({"kubernetes"});
    e.on_signal(rollout(t0 - 3min), t0 - 3min);
    e.on_event(page(incident_event_type::triggered), t0);
    // The same deployment rolling out the same image again changes no line of the summary.
    e.on_signal(rollout(t0 - 3min), t0 + 1min);
    EXPECT_TRUE(e.on_tick(t0 + 1min).posts.empty());
}

TEST_F(engine_ops, a_new_top_suspect_gets_a_new_message) {
    healthy({"kubernetes", "cloudsql"});
    e.on_signal(rollout(t0 - 100min), t0 - 100min);  // old: weak
    const auto first = e.on_event(page(incident_event_type::triggered), t0);
    EXPECT_EQ(
        operations(first).at(0)->text.body.find("**1. Bad or broken code got deployed"),
        operations(first).at(0)->text.body.find("**1. ")
    );
    std::vector<post> ops;
    for (int m = 0; m <= 6; ++m) {
        const auto now = t0 + std::chrono::minutes{m};
        for (auto& p : e.on_signal(cpu(now, 0.98), now).posts) {
            ops.push_back(p);
        }
        for (auto& p : e.on_tick(now).posts) {
            ops.push_back(p);
        }
    }
    // CPU above 90% for 5 minutes (from T+0 to T+5m) makes the DB the top suspect: a new
    // message, not an edit; before that, the summary was edited in place.
    const auto it =
        std::find_if(ops.begin(), ops.end(), [](const post& p) { return p.key == "PINC1/0/summary/2"; });
    ASSERT_NE(it, ops.end());
    EXPECT_TRUE(it->edit_of.empty());
    EXPECT_EQ(it->at, t0 + 5min);
    for (auto p = ops.begin(); p != it; ++p) {
        EXPECT_EQ(p->edit_of, "PINC1/0/summary/1") << p->key;
    }
    EXPECT_NE(it->text.body.find("**1. Something is going wrong with the DB"), std::string::npos);
    EXPECT_EQ(e.find("PINC1")->ops.top, "db-trouble");
}

TEST_F(engine_ops, a_failing_source_is_reported_as_not_checkable) {
    healthy({"kubernetes"});
    e.on_event(page(incident_event_type::triggered), t0);
    auto d = e.on_source_status(
        "kubernetes", source_status{source_state::failing, "connection refused", {}}, t0 + 1min
    );
    auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_NE(
        ops[0]->text.body.find("the kubernetes source is failing: connection refused"), std::string::npos
    );
    EXPECT_EQ(e.sources().at("kubernetes").since, t0 + 1min);
}

TEST_F(engine_ops, a_dominant_cause_is_named_in_the_next_status_update) {
    healthy({"kubernetes", "cloudsql", "postgres", "gcp_status", "deploys", "certs", "probes", "promql"});
    e.on_signal(rollout(t0 - 2min), t0 - 2min);
    e.on_signal(crashloop(t0 - 1min, "api-1"), t0 - 1min);
    e.on_event(page(incident_event_type::triggered), t0);
    const auto d = e.on_tick(t0 + 30min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_EQ(d.posts[0].kind, post_kind::update);
    EXPECT_NE(
        d.posts[0].text.body.find("We believe a bad deploy caused this and we are rolling it back."),
        std::string::npos
    );
}

TEST_F(engine_ops, stale_evidence_is_not_dominant_while_other_causes_cannot_be_checked) {
    healthy({"kubernetes"});  // every other source is not configured
    // Nearly 2 hours old: likely, but what could not be checked outweighs it.
    e.on_signal(rollout(t0 - 110min), t0 - 110min);
    e.on_event(page(incident_event_type::triggered), t0);
    const auto d = e.on_tick(t0 + 30min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_EQ(d.posts[0].text.body.find("We believe"), std::string::npos);
}

TEST_F(engine_ops, fresh_strong_evidence_is_not_drowned_by_what_cannot_be_checked) {
    healthy({"kubernetes"});
    e.on_signal(rollout(t0 - 2min), t0 - 2min);
    e.on_event(page(incident_event_type::triggered), t0);
    const auto d = e.on_tick(t0 + 30min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_NE(d.posts[0].text.body.find("We believe a bad deploy"), std::string::npos);
}

TEST_F(engine_ops, a_weak_lead_is_listed_but_no_cause_is_named) {
    healthy({"kubernetes", "cloudsql", "postgres", "gcp_status", "deploys", "certs", "probes", "promql"});
    signal spike;
    spike.kind = "traffic.spike";
    spike.at = t0 - 3min;
    spike.subject = "api";
    spike.source = "promql";
    spike.set("target", "api");
    spike.set("counts", "requests");
    spike.value = 4;
    e.on_signal(spike, spike.at);
    auto d = e.on_event(page(incident_event_type::triggered), t0);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_NE(ops[0]->text.title.find(": no likely cause yet"), std::string::npos) << ops[0]->text.title;
    EXPECT_NE(ops[0]->text.body.find("No cause has enough evidence yet"), std::string::npos);
    EXPECT_NE(ops[0]->text.body.find("**Unknown \u2014 "), std::string::npos);
    const auto later = e.on_tick(t0 + 30min);
    ASSERT_EQ(later.posts.size(), 1u);
    EXPECT_EQ(later.posts[0].text.body.find("We believe"), std::string::npos);
}

TEST_F(engine_ops, no_dominant_cause_no_belief_in_status) {
    healthy({"kubernetes"});
    e.on_event(page(incident_event_type::triggered), t0);
    const auto d = e.on_tick(t0 + 30min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_EQ(d.posts[0].text.body.find("We believe"), std::string::npos);
}

TEST_F(engine_ops, resolve_posts_a_timeline_and_stops_refreshing) {
    healthy({"kubernetes"});
    e.on_signal(rollout(t0 - 2min), t0 - 2min);
    e.on_event(page(incident_event_type::triggered), t0);
    e.on_tick(t0 + 30min);
    auto d = e.on_event(page(incident_event_type::resolved), t0 + 40min);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0]->kind, post_kind::timeline);
    EXPECT_EQ(ops[0]->key, "PINC1/0/timeline");
    const auto& body = ops[0]->text.body;
    EXPECT_NE(body.find("`16:00 UTC` triggered"), std::string::npos);
    EXPECT_NE(body.find("top suspect Bad or broken code got deployed"), std::string::npos);
    EXPECT_NE(body.find("update 1 posted"), std::string::npos);
    EXPECT_NE(body.find("resolved after 40m"), std::string::npos);
    d = e.on_signal(crashloop(t0 + 41min, "api-9"), t0 + 41min);
    EXPECT_TRUE(d.posts.empty());
}

TEST_F(engine_ops, no_destination_no_operations_posts) {
    auto s = settings();
    s.operations.enabled = false;
    engine quiet{s};
    const auto d = quiet.on_event(page(incident_event_type::triggered), t0);
    EXPECT_TRUE(operations(d).empty());
    const auto resolved = quiet.on_event(page(incident_event_type::resolved), t0 + 1min);
    EXPECT_TRUE(operations(resolved).empty());
}

TEST_F(engine_ops, a_reload_with_new_rules_refreshes_open_summaries) {
    healthy({"kubernetes"});
    e.on_event(page(incident_event_type::triggered), t0);
    auto s = settings();
    auto r =
        rules::parse("rules:\n  - {id: only, title: Only rule, when: {signal: k8s.rollout}}\n", "new.yaml");
    ASSERT_TRUE(r.ok());
    s.rules = r.value;
    e.reconfigure(s);
    ASSERT_EQ(e.next_wake(), t0 + 30s);  // the edit interval still holds
    const auto d = e.on_tick(t0 + 30s);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0]->edit_of, "PINC1/0/summary/1");
    EXPECT_EQ(ops[0]->text.body.find("Google Cloud"), std::string::npos);
}

TEST_F(engine_ops, a_warning_is_one_line_outside_the_cause_blocks) {
    healthy({"kubernetes", "certs"});
    e.on_signal(certificate(t0 - 2min, "www.test", 9 * 86400.0, "ok", "true"), t0 - 2min);
    const auto d = e.on_event(page(incident_event_type::triggered), t0);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    const auto& body = ops[0]->text.body;
    EXPECT_NE(ops[0]->text.title.find("no likely cause found yet"), std::string::npos);
    EXPECT_EQ(body.find("**1. "), std::string::npos) << body;
    EXPECT_NE(
        body.find(
            "\n\n\u26a0 the certificate of www.test expires in 9 days \\(not after 2026-03-14T16:00:00Z\\)\n"
        ),
        std::string::npos
    ) << body;
    // Not a cause, so not among what was checked either.
    const auto clear = body.find("**Checked, clear**");
    ASSERT_NE(clear, std::string::npos);
    EXPECT_LT(body.find("\u26a0"), clear);
    EXPECT_EQ(body.find("expires in", clear), std::string::npos) << body;
    EXPECT_NE(
        body.find("\u2022 A cert ran out: no expired certificate seen for API", clear), std::string::npos
    ) << body;
}

TEST_F(engine_ops, an_expired_certificate_ranks_with_its_openssl_check_and_its_warning_goes) {
    healthy({"kubernetes", "certs"});
    e.on_signal(certificate(t0 - 2min, "expired.test", -7500, "expired", "false"), t0 - 2min);
    const auto d = e.on_event(page(incident_event_type::triggered), t0);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    const auto& body = ops[0]->text.body;
    EXPECT_NE(body.find("**1. A cert ran out"), std::string::npos) << body;
    EXPECT_NE(body.find("the certificate of expired.test expired 2h 05m ago"), std::string::npos) << body;
    EXPECT_NE(
        body.find("`openssl s_client -connect expired.test:8443 -servername expired.test`"), std::string::npos
    ) << body;
    EXPECT_EQ(body.find("\u26a0"), std::string::npos) << body;
}

TEST_F(engine_ops, old_signals_cannot_change_a_summary) {
    healthy({"kubernetes"});
    e.on_event(page(incident_event_type::triggered), t0);
    // Older than any rule's window before the alert: the incident is not even marked.
    e.on_signal(rollout(t0 - 5h), t0 + 1min);
    EXPECT_EQ(e.next_wake(), t0 + 30min);
}

}  // namespace
}  // namespace runbookd
