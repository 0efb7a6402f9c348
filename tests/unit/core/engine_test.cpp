#include "core/engine.hpp"

#include "drive.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

const wall_time t0 = *parse_rfc3339("2026-03-04T16:00:00Z");

engine_settings settings() {
    engine_settings s;
    s.reminder_interval = 30min;
    s.services.emplace("PF9KMXH", service_info{"Editor", "Saving canvases may fail.", {}});
    return s;
}

incident_event event(incident_event_type type, std::string id, std::string event_id = {}) {
    incident_event ev;
    ev.type = type;
    ev.event_id = event_id.empty() ? id + "-" + std::string{to_string(type)} : event_id;
    ev.incident.id = std::move(id);
    ev.incident.number = 42;
    ev.incident.title = "API latency is high";
    ev.incident.service_id = "PF9KMXH";
    ev.incident.priority = "P1";
    ev.incident.url = "https://acme.pagerduty.com/incidents/" + ev.incident.id;
    ev.incident.status = type == incident_event_type::resolved       ? "resolved"
                         : type == incident_event_type::acknowledged ? "acknowledged"
                                                                     : "triggered";
    return ev;
}

std::vector<post_kind> kinds(const decisions& d) {
    std::vector<post_kind> out;
    for (const auto& p : d.posts) {
        out.push_back(p.kind);
    }
    return out;
}

using test::run_until;

TEST(engine, two_hour_incident_posts_notice_three_updates_and_resolved) {
    engine e{settings()};
    auto d = e.on_event(event(incident_event_type::triggered, "PINC1"), t0);
    ASSERT_EQ(kinds(d), std::vector{post_kind::notice});
    EXPECT_EQ(d.posts[0].to, channel::status);
    EXPECT_EQ(d.next_wake, t0 + 30min);

    auto updates = run_until(e, t0 + 2h - 1ms);
    ASSERT_EQ(updates.size(), 3u);
    EXPECT_EQ(updates[0].at, t0 + 30min);
    EXPECT_EQ(updates[1].at, t0 + 60min);
    EXPECT_EQ(updates[2].at, t0 + 90min);
    for (const auto& p : updates) {
        EXPECT_EQ(p.kind, post_kind::update);
    }
    EXPECT_EQ(updates[2].key, "PINC1/0/update/3");

    d = e.on_event(event(incident_event_type::resolved, "PINC1"), t0 + 2h - 1ms);
    ASSERT_EQ(kinds(d), std::vector{post_kind::resolved});
    EXPECT_FALSE(d.next_wake.has_value());
    EXPECT_NE(d.posts[0].text.body.find("1h 59m"), std::string::npos) << d.posts[0].text.body;
    EXPECT_TRUE(run_until(e, t0 + 10h).empty());
}

TEST(engine, one_tick_before_a_deadline_posts_nothing_and_the_tick_at_it_posts) {
    engine e{settings()};
    e.on_event(event(incident_event_type::triggered, "PINC1"), t0);
    EXPECT_TRUE(e.on_tick(t0 + 30min - 1ms).posts.empty());
    EXPECT_EQ(kinds(e.on_tick(t0 + 30min)), std::vector{post_kind::update});
    EXPECT_TRUE(e.on_tick(t0 + 30min).posts.empty());
}

TEST(engine, overlapping_incidents_keep_separate_schedules) {
    engine e{settings()};
    e.on_event(event(incident_event_type::triggered, "PA"), t0);
    e.on_event(event(incident_event_type::triggered, "PB"), t0 + 10min);
    EXPECT_EQ(e.open_count(), 2u);
    auto posts = run_until(e, t0 + 61min);
    ASSERT_EQ(posts.size(), 3u);
    EXPECT_EQ(posts[0].incident_id, "PA");
    EXPECT_EQ(posts[0].at, t0 + 30min);
    EXPECT_EQ(posts[1].incident_id, "PB");
    EXPECT_EQ(posts[1].at, t0 + 40min);
    EXPECT_EQ(posts[2].incident_id, "PA");
    EXPECT_EQ(posts[2].at, t0 + 60min);
    e.on_event(event(incident_event_type::resolved, "PA"), t0 + 61min);
    posts = run_until(e, t0 + 71min);
    ASSERT_EQ(posts.size(), 1u);
    EXPECT_EQ(posts[0].incident_id, "PB");
    EXPECT_EQ(posts[0].at, t0 + 70min);
}

TEST(engine, repeated_trigger_posts_once) {
    engine e{settings()};
    EXPECT_EQ(e.on_event(event(incident_event_type::triggered, "PA", "e1"), t0).posts.size(), 1u);
    EXPECT_TRUE(e.on_event(event(incident_event_type::triggered, "PA", "e2"), t0 + 1s).posts.empty());
}

TEST(engine, reopened_restarts_the_schedule_with_a_new_epoch) {
    engine e{settings()};
    e.on_event(event(incident_event_type::triggered, "PA"), t0);
    e.on_event(event(incident_event_type::resolved, "PA"), t0 + 10min);
    auto d = e.on_event(event(incident_event_type::reopened, "PA"), t0 + 20min);
    ASSERT_EQ(kinds(d), std::vector{post_kind::reopened});
    EXPECT_EQ(d.posts[0].key, "PA/1/reopened");
    EXPECT_EQ(d.next_wake, t0 + 50min);
    auto posts = run_until(e, t0 + 50min);
    ASSERT_EQ(posts.size(), 1u);
    EXPECT_EQ(posts[0].key, "PA/1/update/1");
}

TEST(engine, status_update_is_relayed_and_resets_the_timer) {
    engine e{settings()};
    e.on_event(event(incident_event_type::triggered, "PA"), t0);
    auto ev = event(incident_event_type::status_update_published, "PA");
    ev.message = "We found the bad deploy and are rolling it back.";
    auto d = e.on_event(ev, t0 + 20min);
    ASSERT_EQ(kinds(d), std::vector{post_kind::relay});
    EXPECT_NE(d.posts[0].text.body.find("rolling it back"), std::string::npos);
    EXPECT_EQ(d.next_wake, t0 + 50min);
    EXPECT_TRUE(e.on_tick(t0 + 30min).posts.empty());
    auto update = e.on_tick(t0 + 50min);
    ASSERT_EQ(update.posts.size(), 1u);
    EXPECT_NE(update.posts[0].text.body.find("rolling it back"), std::string::npos);
}

TEST(engine, update_says_who_acknowledged_and_the_latest_note) {
    engine e{settings()};
    e.on_event(event(incident_event_type::triggered, "PA"), t0);
    auto d = e.on_tick(t0 + 30min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_NE(d.posts[0].text.body.find("has been paged"), std::string::npos);
    EXPECT_NE(d.posts[0].text.body.find("No new information"), std::string::npos);

    auto ack = event(incident_event_type::acknowledged, "PA");
    ack.agent = "Jane Doe";
    EXPECT_TRUE(e.on_event(ack, t0 + 35min).posts.empty());
    auto note = event(incident_event_type::annotated, "PA");
    note.message = "Looking at the DB CPU graph.";
    EXPECT_TRUE(e.on_event(note, t0 + 40min).posts.empty());
    d = e.on_tick(t0 + 60min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_NE(d.posts[0].text.body.find("Jane Doe is working on it"), std::string::npos);
    EXPECT_NE(d.posts[0].text.body.find("Looking at the DB CPU graph."), std::string::npos);
    EXPECT_NE(d.posts[0].text.body.find("This started 1h 00m ago"), std::string::npos);
    EXPECT_NE(d.posts[0].text.title.find("working on it"), std::string::npos);
}

TEST(engine, first_event_of_an_unseen_incident_posts_the_notice) {
    engine e{settings()};
    auto d = e.on_event(event(incident_event_type::acknowledged, "PA"), t0);
    EXPECT_EQ(kinds(d), std::vector{post_kind::notice});
    EXPECT_EQ(e.find("PA")->state, incident_state::acknowledged);
}

TEST(engine, late_events_for_a_forgotten_incident_open_nothing) {
    engine e{settings()};
    auto note = event(incident_event_type::annotated, "PA");
    note.incident = incident_facts{};  // a note carries only a reference
    note.incident.id = "PA";
    note.message = "postmortem: see doc";
    EXPECT_TRUE(e.on_event(note, t0).posts.empty());
    auto update = event(incident_event_type::status_update_published, "PA");
    update.incident = incident_facts{};
    update.incident.id = "PA";
    EXPECT_TRUE(e.on_event(update, t0).posts.empty());
    auto priority = event(incident_event_type::priority_updated, "PA");
    priority.incident.status = "resolved";
    EXPECT_TRUE(e.on_event(priority, t0).posts.empty());
    auto unknown_status = event(incident_event_type::escalated, "PA");
    unknown_status.incident.status.reset();
    EXPECT_TRUE(e.on_event(unknown_status, t0).posts.empty());
    EXPECT_EQ(e.known_count(), 0u);
    EXPECT_FALSE(e.next_wake());
}

TEST(engine, resolved_for_an_unseen_incident_posts_nothing) {
    engine e{settings()};
    EXPECT_TRUE(e.on_event(event(incident_event_type::resolved, "PA"), t0).posts.empty());
    EXPECT_EQ(e.known_count(), 0u);
}

TEST(engine, late_events_after_resolve_post_nothing) {
    engine e{settings()};
    e.on_event(event(incident_event_type::triggered, "PA"), t0);
    e.on_event(event(incident_event_type::resolved, "PA"), t0 + 5min);
    EXPECT_TRUE(e.on_event(event(incident_event_type::acknowledged, "PA"), t0 + 6min).posts.empty());
    EXPECT_TRUE(e.on_event(event(incident_event_type::resolved, "PA"), t0 + 6min).posts.empty());
}

TEST(engine, a_missed_wakeup_posts_one_update_not_a_burst) {
    engine e{settings()};
    e.on_event(event(incident_event_type::triggered, "PA"), t0);
    auto d = e.on_tick(t0 + 3h);
    EXPECT_EQ(d.posts.size(), 1u);
    EXPECT_EQ(d.next_wake, t0 + 3h + 30min);
}

TEST(engine, resolved_incidents_are_forgotten_after_retention) {
    auto s = settings();
    s.resolved_retention = 1h;
    engine e{s};
    e.on_event(event(incident_event_type::triggered, "PA"), t0);
    e.on_event(event(incident_event_type::resolved, "PA"), t0 + 1min);
    e.on_tick(t0 + 61min - 1ms);
    EXPECT_EQ(e.known_count(), 1u);
    e.on_tick(t0 + 61min);
    EXPECT_EQ(e.known_count(), 0u);
}

TEST(engine, outside_text_is_escaped_in_posts) {
    engine e{settings()};
    auto ev = event(incident_event_type::triggered, "PA");
    ev.incident.title = "@everyone **boom** <@123>";
    auto d = e.on_event(ev, t0);
    ASSERT_EQ(d.posts.size(), 1u);
    // The footer is plain text (Discord renders no markdown there), mentions defused.
    const auto& footer = d.posts[0].text.footer;
    EXPECT_EQ(footer.find("@everyone"), std::string::npos) << footer;
    EXPECT_NE(footer.find("@\u200beveryone **boom** <@\u200b123>"), std::string::npos) << footer;
    // Markdown fields escape everything that came from outside.
    auto note = event(incident_event_type::status_update_published, "PA");
    note.message = "@here **fixed** [x](https://evil)";
    d = e.on_event(note, t0 + 1min);
    ASSERT_EQ(d.posts.size(), 1u);
    const auto& body = d.posts[0].text.body;
    EXPECT_EQ(body.find("@here"), std::string::npos) << body;
    EXPECT_NE(body.find("\\*\\*fixed\\*\\* \\[x\\]\\(https://evil\\)"), std::string::npos) << body;
}

TEST(engine, notice_uses_the_configured_service_name_and_impact) {
    engine e{settings()};
    auto d = e.on_event(event(incident_event_type::triggered, "PA"), t0);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_NE(d.posts[0].text.title.find("Editor"), std::string::npos);
    EXPECT_NE(d.posts[0].text.body.find("Saving canvases may fail."), std::string::npos);
    EXPECT_NE(d.posts[0].text.footer.find("#42"), std::string::npos);
    EXPECT_EQ(d.posts[0].text.url, "https://acme.pagerduty.com/incidents/PA");
}

TEST(engine, the_pager_and_the_alerts_own_impact_are_shown) {
    engine e{settings()};
    auto ev = event(incident_event_type::triggered, "PA");
    ev.incident.pager = "Alertmanager";
    ev.incident.impact = "Canvases **may** not save.";
    auto d = e.on_event(ev, t0);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_TRUE(d.posts[0].text.footer.starts_with("Alertmanager #42")) << d.posts[0].text.footer;
    // The alert's words win over the service's configured impact, escaped like all outside text.
    EXPECT_TRUE(d.posts[0].text.body.starts_with("Canvases \\*\\*may\\*\\* not save."))
        << d.posts[0].text.body;
    EXPECT_EQ(d.posts[0].text.body.find("Saving canvases may fail."), std::string::npos);
    // A later event that does not name them changes neither.
    auto ack = event(incident_event_type::acknowledged, "PA");
    e.on_event(ack, t0 + 1min);
    d = e.on_tick(t0 + 31min);
    ASSERT_FALSE(d.posts.empty());
    EXPECT_TRUE(d.posts[0].text.footer.starts_with("Alertmanager")) << d.posts[0].text.footer;
    EXPECT_TRUE(d.posts[0].text.body.starts_with("Canvases")) << d.posts[0].text.body;
}

TEST(engine, non_https_links_are_dropped) {
    engine e{settings()};
    auto ev = event(incident_event_type::triggered, "PA");
    ev.incident.url = "javascript:alert(1)";
    EXPECT_EQ(e.on_event(ev, t0).posts[0].text.url, "");
}

TEST(engine, a_reopened_incident_outlives_its_old_retention) {
    auto s = settings();
    s.resolved_retention = 1h;
    engine e{s};
    e.on_event(event(incident_event_type::triggered, "PA"), t0);
    e.on_event(event(incident_event_type::resolved, "PA"), t0 + 1min);
    e.on_event(event(incident_event_type::reopened, "PA"), t0 + 2min);
    e.on_tick(t0 + 61min);  // the first resolution's retention has passed
    ASSERT_NE(e.find("PA"), nullptr);
    EXPECT_TRUE(e.find("PA")->open());
    EXPECT_EQ(e.open_count(), 1u);
    e.on_event(event(incident_event_type::resolved, "PA"), t0 + 70min);
    EXPECT_EQ(e.open_count(), 0u);
    e.on_tick(t0 + 130min - 1ms);
    EXPECT_NE(e.find("PA"), nullptr);
    e.on_tick(t0 + 130min);
    EXPECT_EQ(e.find("PA"), nullptr);
}

TEST(engine, many_incidents_each_get_their_update_once_in_time_order) {
    auto s = settings();
    s.limits.storm_threshold = 0;  // a storm would report them together (storm_test.cpp)
    engine e{s};
    for (int i = 0; i < 500; ++i) {
        e.on_event(event(incident_event_type::triggered, "P" + std::to_string(i)), t0 + i * 1s);
    }
    EXPECT_EQ(e.open_count(), 500u);
    EXPECT_EQ(e.next_wake(), t0 + 30min);
    auto posts = run_until(e, t0 + 30min + 499s);
    ASSERT_EQ(posts.size(), 500u);
    for (std::size_t i = 0; i < posts.size(); ++i) {
        EXPECT_EQ(posts[i].incident_id, "P" + std::to_string(i));
        EXPECT_EQ(posts[i].at, t0 + 30min + std::chrono::seconds{i});
    }
    EXPECT_EQ(e.next_wake(), t0 + 60min);
}

}  // namespace
}  // namespace runbookd
