// engine::reconcile: PagerDuty's REST state (sources/pagerduty_api) against what the
// webhooks told, in virtual time: late posts, de-duplication and the races.
#include "core/engine.hpp"
#include "core/render.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

const wall_time t0 = *parse_rfc3339("2026-03-04T14:02:00Z");

engine_settings settings() {
    engine_settings s;
    s.reminder_interval = 30min;
    s.late_after = 2min;
    s.services.emplace("PF9KMXH", service_info{"Editor", "Saving canvases may fail.", {}});
    return s;
}

incident_facts facts(std::string id, std::string status, wall_time created) {
    incident_facts f;
    f.id = std::move(id);
    f.number = 7;
    f.title = "API latency is high";
    f.service_id = "PF9KMXH";
    f.status = std::move(status);
    f.created_at = created;
    return f;
}

/// What a reconciliation reads: `status` since `changed`, by a request sent at `as_of`.
incident_event polled(
    std::string id, std::string status, wall_time changed, wall_time as_of, wall_time created = t0
) {
    incident_event ev;
    ev.origin = event_origin::reconciliation;
    ev.as_of = as_of;
    ev.type = status == "resolved"       ? incident_event_type::resolved
              : status == "acknowledged" ? incident_event_type::acknowledged
                                         : incident_event_type::triggered;
    ev.occurred_at = changed;
    ev.agent = status == "acknowledged" ? "Ana" : "";
    ev.incident = facts(std::move(id), std::move(status), created);
    return ev;
}

incident_event webhook(incident_event_type type, std::string id, wall_time at) {
    incident_event ev;
    ev.type = type;
    ev.event_id = id + "-" + std::string{to_string(type)};
    ev.occurred_at = at;
    ev.incident = facts(
        std::move(id),
        type == incident_event_type::resolved       ? "resolved"
        : type == incident_event_type::acknowledged ? "acknowledged"
                                                    : "triggered",
        t0
    );
    return ev;
}

std::vector<post_kind> kinds(const decisions& d) {
    std::vector<post_kind> out;
    for (const auto& p : d.posts) {
        out.push_back(p.kind);
    }
    return out;
}

TEST(reconcile, incident_triggered_while_down_gets_a_late_notice_then_reminders) {
    engine e{settings()};
    const auto now = t0 + 10min;  // the daemon came back ten minutes after the page
    auto d = e.on_event(polled("PINC1", "triggered", t0, now), now);
    ASSERT_EQ(kinds(d), std::vector{post_kind::notice});
    EXPECT_NE(d.posts[0].text.body.find("(posted late: triggered at 14:02 UTC)"), std::string::npos)
        << d.posts[0].text.body;
    EXPECT_EQ(e.find("PINC1")->started, t0);
    EXPECT_EQ(d.next_wake, now + 30min);
    // The next reconciliation reads the same: nothing new to say.
    EXPECT_TRUE(e.on_event(polled("PINC1", "triggered", t0, now + 3min), now + 3min).posts.empty());
    // The webhook that was late after all: already known.
    EXPECT_TRUE(e.on_event(webhook(incident_event_type::triggered, "PINC1", t0), now + 4min).posts.empty());
    d = e.on_tick(now + 30min);
    EXPECT_EQ(kinds(d), std::vector{post_kind::update});
}

TEST(reconcile, found_within_late_after_is_not_marked_late) {
    engine e{settings()};
    const auto now = t0 + 2min;  // exactly at the threshold: not late
    auto d = e.on_event(polled("PINC1", "triggered", t0, now), now);
    ASSERT_EQ(kinds(d), std::vector{post_kind::notice});
    EXPECT_EQ(d.posts[0].text.body.find("posted late"), std::string::npos);
}

TEST(reconcile, late_note_carries_the_date_when_another_day) {
    EXPECT_EQ(render::late_note("triggered", t0, t0 + 1h), "(posted late: triggered at 14:02 UTC)");
    EXPECT_EQ(
        render::late_note("triggered", t0, t0 + 24h), "(posted late: triggered at 2026-03-04 14:02 UTC)"
    );
}

TEST(reconcile, acknowledged_while_down_opens_acknowledged) {
    engine e{settings()};
    const auto now = t0 + 10min;
    auto d = e.on_event(polled("PINC1", "acknowledged", t0 + 1min, now), now);
    ASSERT_EQ(kinds(d), std::vector{post_kind::notice});
    EXPECT_EQ(e.find("PINC1")->state, incident_state::acknowledged);
    EXPECT_EQ(e.find("PINC1")->acknowledged_by, "Ana");
    d = e.on_tick(now + 30min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_NE(d.posts[0].text.body.find("Ana is working on it"), std::string::npos) << d.posts[0].text.body;
}

TEST(reconcile, resolved_with_webhook_lost_gets_a_late_resolved_post_once) {
    engine e{settings()};
    e.on_event(webhook(incident_event_type::triggered, "PINC1", t0), t0);
    const auto resolved = t0 + 20min;
    const auto now = t0 + 26min;  // the webhook never came; the reconciliation finds it
    auto d = e.on_event(polled("PINC1", "resolved", resolved, now - 1s), now);
    ASSERT_EQ(kinds(d), std::vector{post_kind::resolved});
    EXPECT_NE(d.posts[0].text.body.find("It lasted 20m"), std::string::npos) << d.posts[0].text.body;
    EXPECT_NE(d.posts[0].text.body.find("(posted late: resolved at 14:22 UTC)"), std::string::npos);
    EXPECT_FALSE(e.find("PINC1")->open());
    // The webhook arrives after all, then the next reconciliation: no second post.
    EXPECT_TRUE(
        e.on_event(webhook(incident_event_type::resolved, "PINC1", resolved), now + 1min).posts.empty()
    );
    EXPECT_TRUE(e.on_event(polled("PINC1", "resolved", resolved, now + 3min), now + 3min).posts.empty());
    EXPECT_FALSE(e.next_wake().has_value());
}

TEST(reconcile, a_poll_answered_before_a_resolved_webhook_does_not_reopen) {
    engine e{settings()};
    e.on_event(webhook(incident_event_type::triggered, "PINC1", t0), t0);
    const auto sent = t0 + 5min;
    // The resolved webhook lands while the request is in flight...
    auto d = e.on_event(webhook(incident_event_type::resolved, "PINC1", t0 + 5min), sent + 100ms);
    ASSERT_EQ(kinds(d), std::vector{post_kind::resolved});
    // ...and the answer, read before it, says triggered: stale, ignored.
    d = e.on_event(polled("PINC1", "triggered", t0, sent), sent + 200ms);
    EXPECT_TRUE(d.posts.empty());
    EXPECT_FALSE(e.find("PINC1")->open());
}

TEST(reconcile, a_poll_answered_before_an_ack_webhook_does_not_unacknowledge) {
    engine e{settings()};
    e.on_event(webhook(incident_event_type::triggered, "PINC1", t0), t0);
    const auto sent = t0 + 5min;
    auto ack = webhook(incident_event_type::acknowledged, "PINC1", sent);
    ack.agent = "Bo";
    e.on_event(ack, sent + 100ms);
    e.on_event(polled("PINC1", "triggered", t0, sent), sent + 200ms);
    EXPECT_EQ(e.find("PINC1")->state, incident_state::acknowledged);
    EXPECT_EQ(e.find("PINC1")->acknowledged_by, "Bo");
    // A fresh read that agrees changes nothing, and adds no second "acknowledged" line.
    const auto lines = e.find("PINC1")->timeline.size();
    auto fresh = polled("PINC1", "acknowledged", sent, sent + 3min);
    fresh.agent = "Bo";
    e.on_event(fresh, sent + 3min);
    EXPECT_EQ(e.find("PINC1")->timeline.size(), lines);
}

TEST(reconcile, unknown_incident_resolved_by_webhook_is_not_opened_by_a_stale_poll) {
    engine e{settings()};
    const auto sent = t0 + 1min;
    // Never seen; its resolved webhook comes while the request is in flight.
    EXPECT_TRUE(
        e.on_event(webhook(incident_event_type::resolved, "PINC9", t0 + 1min), sent + 1s).posts.empty()
    );
    EXPECT_TRUE(e.on_event(polled("PINC9", "triggered", t0, sent), sent + 2s).posts.empty());
    EXPECT_EQ(e.find("PINC9"), nullptr);
    // Read after the webhook: PagerDuty says it is open again, so it is.
    EXPECT_EQ(
        kinds(e.on_event(polled("PINC9", "triggered", t0 + 2min, sent + 3s), sent + 3s)),
        std::vector{post_kind::notice}
    );
}

TEST(reconcile, reopened_while_the_webhook_was_lost_is_reopened_late) {
    engine e{settings()};
    e.on_event(webhook(incident_event_type::triggered, "PINC1", t0), t0);
    e.on_event(webhook(incident_event_type::resolved, "PINC1", t0 + 10min), t0 + 10min);
    // Open at PagerDuty since 14:20, after it resolved here: a reopen we were not told of.
    const auto now = t0 + 30min;
    auto d = e.on_event(polled("PINC1", "triggered", t0 + 18min, now), now);
    ASSERT_EQ(kinds(d), std::vector{post_kind::reopened});
    EXPECT_NE(d.posts[0].text.body.find("(posted late: reopened at 14:20 UTC)"), std::string::npos)
        << d.posts[0].text.body;
    EXPECT_EQ(d.posts[0].key, "PINC1/1/reopened");
    // Open at PagerDuty since before it resolved here: an old read, not a reopen.
    e.on_event(webhook(incident_event_type::resolved, "PINC1", now + 1min), now + 1min);
    EXPECT_TRUE(e.on_event(polled("PINC1", "triggered", t0 + 18min, now + 2min), now + 2min).posts.empty());
}

TEST(reconcile, resolved_incident_never_seen_is_ignored_and_bad_events_are_dropped) {
    engine e{settings()};
    EXPECT_TRUE(e.on_event(polled("PINC1", "resolved", t0, t0 + 1min), t0 + 1min).posts.empty());
    auto no_status = polled("PINC2", "triggered", t0, t0 + 1min);
    no_status.incident.status.reset();
    EXPECT_TRUE(e.on_event(no_status, t0 + 1min).posts.empty());
    auto odd = polled("PINC3", "snoozed", t0, t0 + 1min);
    EXPECT_TRUE(e.on_event(odd, t0 + 1min).posts.empty());
    EXPECT_EQ(e.known_count(), 0u);
}

TEST(reconcile, alert_details_enrich_the_incident_and_bound_the_view) {
    engine e{settings()};
    e.on_event(webhook(incident_event_type::triggered, "PINC1", t0), t0);
    auto views = e.incidents_view();
    ASSERT_EQ(views.size(), 1u);
    EXPECT_FALSE(views[0].enriched);
    auto ev = polled("PINC1", "triggered", t0, t0 + 1min);
    ev.incident.alert_summary = "p99 latency 2.3s on api";
    ev.incident.alert_details = std::vector<std::pair<std::string, std::string>>{{"pod", "api-7f"}};
    ev.incident.urgency = "high";
    ev.incident.assignees = std::vector<std::string>{"Ana", "Bo"};
    EXPECT_TRUE(e.on_event(ev, t0 + 1min).posts.empty());  // no rules: no #operations
    const incident* inc = e.find("PINC1");
    EXPECT_EQ(inc->alert_summary, "p99 latency 2.3s on api");
    EXPECT_EQ(inc->urgency, "high");
    EXPECT_TRUE(e.incidents_view()[0].enriched);
    // A stale read still brings its alert (it does not change with state).
    auto stale = polled("PINC1", "triggered", t0, t0 - 1min);
    stale.incident.alert_summary = "p99 latency 2.4s on api";
    e.on_event(stale, t0 + 2min);
    EXPECT_EQ(e.find("PINC1")->alert_summary, "p99 latency 2.4s on api");
}

/// A note read from PagerDuty's log (sources/pagerduty_api): written at `at`, read at `as_of`.
incident_event logged_note(std::string id, std::string text, wall_time at, wall_time as_of) {
    incident_event ev;
    ev.origin = event_origin::reconciliation;
    ev.as_of = as_of;
    ev.type = incident_event_type::annotated;
    ev.event_id = "log:R" + id;
    ev.occurred_at = at;
    ev.agent = "Ana";
    ev.message = std::move(text);
    ev.incident.id = std::move(id);
    return ev;
}

TEST(reconcile, a_note_whose_webhook_was_lost_is_the_next_updates_news_once) {
    engine e{settings()};
    e.on_event(webhook(incident_event_type::triggered, "PINC1", t0), t0);
    // Written at +5m, its webhook lost; the reconciliation at +10m reads it from the log.
    auto d = e.on_event(logged_note("PINC1", "Rolled back api to v41", t0 + 5min, t0 + 10min), t0 + 10min);
    EXPECT_TRUE(d.posts.empty());  // as a note by webhook: news for the next update, no post
    ASSERT_EQ(e.find("PINC1")->latest_news, "Rolled back api to v41");
    EXPECT_EQ(e.find("PINC1")->latest_news_at, t0 + 5min);  // when it was written
    // The next reconciliation reads it again (the windows overlap): nothing changes.
    e.on_event(logged_note("PINC1", "Rolled back api to v41", t0 + 5min, t0 + 13min), t0 + 13min);
    EXPECT_EQ(e.find("PINC1")->latest_news_at, t0 + 5min);
    d = e.on_tick(t0 + 30min);
    ASSERT_EQ(kinds(d), std::vector{post_kind::update});
    EXPECT_NE(d.posts[0].text.body.find("Latest (25m ago): Rolled back api to v41"), std::string::npos)
        << d.posts[0].text.body;
}

TEST(reconcile, a_note_the_webhook_delivered_or_older_than_the_news_is_not_taken) {
    engine e{settings()};
    e.on_event(webhook(incident_event_type::triggered, "PINC1", t0), t0);
    auto note = webhook(incident_event_type::annotated, "PINC1", t0 + 5min);
    note.message = "Rolled back api to v41";
    e.on_event(note, t0 + 5min + 2s);  // the webhook came, stamped when it arrived
    e.on_event(logged_note("PINC1", "Rolled back api to v41", t0 + 5min, t0 + 10min), t0 + 10min);
    EXPECT_EQ(e.find("PINC1")->latest_news_at, t0 + 5min + 2s);
    // An older note (read late) does not replace newer news.
    e.on_event(logged_note("PINC1", "Looking into it", t0 + 4min, t0 + 11min), t0 + 11min);
    EXPECT_EQ(e.find("PINC1")->latest_news, "Rolled back api to v41");
    // A newer one does, even if the engine's clock is a little behind PagerDuty's.
    e.on_event(logged_note("PINC1", "Error rate back to normal", t0 + 12min, t0 + 12min), t0 + 11min + 59s);
    EXPECT_EQ(e.find("PINC1")->latest_news, "Error rate back to normal");
    EXPECT_EQ(e.find("PINC1")->latest_news_at, t0 + 11min + 59s);  // never in the future
    // Notes on incidents unknown or resolved here change nothing.
    EXPECT_TRUE(e.on_event(logged_note("PNONE", "x", t0 + 5min, t0 + 12min), t0 + 12min).posts.empty());
    EXPECT_EQ(e.find("PNONE"), nullptr);
    e.on_event(webhook(incident_event_type::resolved, "PINC1", t0 + 13min), t0 + 13min);
    e.on_event(logged_note("PINC1", "Postmortem Friday", t0 + 14min, t0 + 15min), t0 + 15min);
    EXPECT_EQ(e.find("PINC1")->latest_news, "Error rate back to normal");
}

TEST(reconcile, operations_summary_shows_the_page_and_its_indicator_bounded) {
    engine_settings s = settings();
    incident inc;
    inc.id = "PINC1";
    inc.title = "API latency is high";
    inc.service_id = "PF9KMXH";
    inc.priority = "P1";
    inc.urgency = "high";
    inc.assignees = {"Ana", "Bo", "Cy", "Di"};
    inc.alert_summary = "p99 latency *2.3s* on api";
    for (int i = 0; i < 7; ++i) {
        inc.alert_details.emplace_back("k" + std::to_string(i), std::string(300, 'v'));
    }
    inc.started = t0;
    const auto m = render::operations_summary(inc, ranking{}, s, t0 + 1min);
    EXPECT_NE(m.body.find("P1 \u00b7 high urgency \u00b7 assigned to Ana, Bo, Cy +1"), std::string::npos)
        << m.body;
    EXPECT_NE(m.body.find("**Indicator:** p99 latency \\*2.3s\\* on api"), std::string::npos) << m.body;
    EXPECT_NE(m.body.find("k4: "), std::string::npos);
    EXPECT_EQ(m.body.find("k5: "), std::string::npos);
    EXPECT_NE(m.body.find("+2 more details"), std::string::npos);
    EXPECT_EQ(m.body.find(std::string(201, 'v')), std::string::npos);  // values clipped
}

}  // namespace
}  // namespace runbookd
