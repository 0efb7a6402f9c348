// Storms: a burst of new incidents is one post per channel, edited as it grows (engine.cpp).
#include "core/engine.hpp"
#include "drive.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

const wall_time t0 = *parse_rfc3339("2026-03-04T16:00:00Z");

engine_settings settings() {
    engine_settings s;
    s.reminder_interval = 30min;
    s.services.emplace("PF9KMXH", service_info{"Editor", "Saving canvases may fail.", {}});
    s.services.emplace("PCHKOUT", service_info{"Checkout", "Payments may fail.", {}});
    s.operations.enabled = false;
    s.limits.storm_threshold = 10;
    s.limits.storm_window = 5min;
    s.limits.storm_edit_interval = 10s;
    s.limits.max_open_incidents = 1000;
    return s;
}

/// The same, with an #operations destination and a (empty) rule pack: summaries are posted.
engine_settings with_operations() {
    auto s = settings();
    s.operations.enabled = true;
    s.operations.gather_deadline = 0ms;
    s.rules = std::make_shared<rule_set>();
    return s;
}

incident_event event(incident_event_type type, const std::string& id, std::string service = "PF9KMXH") {
    incident_event ev;
    ev.type = type;
    ev.event_id = id + "-" + std::string{to_string(type)};
    ev.incident.id = id;
    ev.incident.title = "API latency is high (" + id + ")";
    ev.incident.service_id = std::move(service);
    ev.incident.status = type == incident_event_type::resolved       ? "resolved"
                         : type == incident_event_type::acknowledged ? "acknowledged"
                                                                     : "triggered";
    return ev;
}

decisions trigger(engine& e, const std::string& id, wall_time at, std::string service = "PF9KMXH") {
    return e.on_event(event(incident_event_type::triggered, id, std::move(service)), at);
}

std::vector<post> on(const decisions& d, channel c) {
    std::vector<post> out;
    for (const auto& p : d.posts) {
        if (p.to == c) {
            out.push_back(p);
        }
    }
    return out;
}

using test::run_until;

std::size_t merged(const post& p, post_kind kind, merge_reason reason) {
    for (const auto& m : p.merged) {
        if (m.kind == kind && m.reason == reason) {
            return m.count;
        }
    }
    return 0;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(storm, up_to_the_threshold_each_incident_gets_its_notice) {
    engine e{settings()};
    for (int i = 0; i < 10; ++i) {
        const auto d = trigger(e, "P" + std::to_string(i), t0 + i * 20s);
        ASSERT_EQ(d.posts.size(), 1u);
        EXPECT_EQ(d.posts[0].kind, post_kind::notice);
    }
    EXPECT_EQ(e.current_storm(), nullptr);
    // Ten more, each after the window of the ones before it has moved on: still no storm.
    for (int i = 10; i < 20; ++i) {
        const auto d = trigger(e, "P" + std::to_string(i), t0 + 5min + i * 20s);
        ASSERT_EQ(d.posts.size(), 1u) << i;
        EXPECT_EQ(d.posts[0].kind, post_kind::notice);
    }
    EXPECT_EQ(e.current_storm(), nullptr);
}

TEST(storm, one_too_many_in_the_window_starts_one_storm_post_instead_of_a_notice) {
    engine e{settings()};
    for (int i = 0; i < 10; ++i) {
        trigger(e, "P" + std::to_string(i), t0 + i * 1s);
    }
    const auto d = trigger(e, "P10", t0 + 10s);
    ASSERT_EQ(d.posts.size(), 1u);
    const post& p = d.posts[0];
    EXPECT_EQ(p.kind, post_kind::storm);
    EXPECT_EQ(p.to, channel::status);
    EXPECT_TRUE(p.edit_of.empty());
    EXPECT_FALSE(p.coalescible);  // it is edited in place, alone in its message
    const std::string base = "storm/" + std::to_string((t0 + 10s).time_since_epoch().count());
    EXPECT_EQ(p.key, base + "/status");
    EXPECT_EQ(merged(p, post_kind::notice, merge_reason::storm), 1u);
    EXPECT_TRUE(contains(p.text.title, "11 incidents opened since 16:00 UTC")) << p.text.title;
    EXPECT_TRUE(contains(p.text.body, "More than 10 incidents opened within 5m")) << p.text.body;
    EXPECT_TRUE(contains(p.text.body, "Editor: 11 incidents")) << p.text.body;
    EXPECT_TRUE(contains(p.text.body, "10 of them had a post of their own")) << p.text.body;
    ASSERT_NE(e.current_storm(), nullptr);
    EXPECT_EQ(e.current_storm()->open, 11u);
    EXPECT_EQ(e.find("P10")->storm, base);
    EXPECT_EQ(e.find("P0")->storm, base);  // the earlier ones joined it
}

TEST(storm, the_post_is_edited_at_most_once_per_interval_with_what_was_merged) {
    engine e{settings()};
    for (int i = 0; i <= 10; ++i) {
        trigger(e, "P" + std::to_string(i), t0 + i * 100ms);
    }
    const std::string base = e.current_storm()->key + "/status";
    // 26 more within the edit interval: nothing posted at once.
    for (int i = 11; i < 37; ++i) {
        const auto d = trigger(e, "P" + std::to_string(i), t0 + 2s + i * 100ms);
        EXPECT_TRUE(d.posts.empty()) << i;
    }
    EXPECT_EQ(e.next_wake(), t0 + 1s + 10s);  // the first storm post + the edit interval
    auto posts = run_until(e, t0 + 11s - 1ms);
    EXPECT_TRUE(posts.empty());  // one tick before: nothing
    posts = run_until(e, t0 + 11s);
    ASSERT_EQ(posts.size(), 1u);
    const post& edit = posts[0];
    EXPECT_EQ(edit.kind, post_kind::storm);
    EXPECT_EQ(edit.edit_of, base);
    EXPECT_EQ(edit.key, base + "/edit/1");
    EXPECT_EQ(merged(edit, post_kind::notice, merge_reason::storm), 26u);
    EXPECT_TRUE(contains(edit.text.title, "37 incidents opened")) << edit.text.title;
    // Nothing new: no edit.
    EXPECT_TRUE(run_until(e, t0 + 2min).empty());
}

TEST(storm, its_incidents_have_no_reminders_and_their_resolutions_fold_into_the_post) {
    engine e{settings()};
    for (int i = 0; i < 15; ++i) {
        trigger(e, "P" + std::to_string(i), t0 + i * 1s);
    }
    run_until(e, t0 + 1min);
    // The storm post is the only thing on #status: no reminder for any of its incidents.
    for (const auto& p : run_until(e, t0 + 4min)) {
        EXPECT_EQ(p.kind, post_kind::storm);
    }
    // No resolved post: the storm post's edit (due at once, its last edit being long ago).
    const auto posts = e.on_event(event(incident_event_type::resolved, "P3"), t0 + 4min).posts;
    ASSERT_EQ(posts.size(), 1u);
    EXPECT_EQ(posts[0].kind, post_kind::storm);
    EXPECT_EQ(merged(posts[0], post_kind::resolved, merge_reason::storm), 1u);
    EXPECT_TRUE(contains(posts[0].text.body, "1 resolved, 14 still open")) << posts[0].text.body;
    EXPECT_FALSE(e.find("P3")->open());
    // Half an hour on, the burst is over and its incidents still post no reminder.
    for (const auto& p : run_until(e, t0 + 2h)) {
        EXPECT_EQ(p.kind, post_kind::storm) << p.key;
    }
}

TEST(storm, ends_when_fewer_than_the_threshold_opened_in_a_window_then_notices_resume) {
    engine e{settings()};
    for (int i = 0; i < 30; ++i) {
        trigger(e, "P" + std::to_string(i), t0 + i * 1s);
    }
    ASSERT_NE(e.current_storm(), nullptr);
    // The 20th open was at t0+20s: from t0+20s+5min fewer than 10 opened in the last 5 minutes.
    const wall_time end = t0 + 20s + 5min;
    run_until(e, end - 1ms);
    EXPECT_NE(e.current_storm(), nullptr);
    const auto posts = run_until(e, end);
    EXPECT_EQ(e.current_storm(), nullptr);
    ASSERT_EQ(posts.size(), 1u);
    EXPECT_TRUE(contains(posts[0].text.body, "The burst ended at 16:05 UTC")) << posts[0].text.body;
    EXPECT_TRUE(contains(posts[0].text.title, "30 incidents opened 16:00 UTC to 16:00 UTC"))
        << posts[0].text.title;

    const auto d = trigger(e, "NEXT", end + 1s);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_EQ(d.posts[0].kind, post_kind::notice);
    EXPECT_EQ(d.posts[0].key, "NEXT/0/notice");
    EXPECT_TRUE(e.find("NEXT")->storm.empty());

    // Resolving every storm incident edits the post a last time, then the storm is forgotten.
    for (int i = 0; i < 30; ++i) {
        EXPECT_TRUE(
            e.on_event(event(incident_event_type::resolved, "P" + std::to_string(i)), end + 2s).posts.empty()
        );
    }
    const auto last = run_until(e, end + 1min);
    ASSERT_EQ(last.size(), 1u);
    EXPECT_TRUE(contains(last[0].text.title, ": all resolved")) << last[0].text.title;
    EXPECT_EQ(merged(last[0], post_kind::resolved, merge_reason::storm), 30u);
    EXPECT_TRUE(e.storms().empty());
}

TEST(storm, a_second_storm_is_a_new_post) {
    engine e{settings()};
    for (int i = 0; i < 12; ++i) {
        trigger(e, "A" + std::to_string(i), t0 + i * 1s);
    }
    const std::string first = e.current_storm()->key;
    run_until(e, t0 + 1h);
    EXPECT_EQ(e.current_storm(), nullptr);
    std::vector<post> posts;
    for (int i = 0; i < 12; ++i) {
        const auto d = trigger(e, "B" + std::to_string(i), t0 + 1h + i * 1s);
        posts.insert(posts.end(), d.posts.begin(), d.posts.end());
    }
    ASSERT_NE(e.current_storm(), nullptr);
    EXPECT_NE(e.current_storm()->key, first);
    ASSERT_EQ(posts.size(), 11u);  // ten notices, then the new storm's post
    EXPECT_EQ(posts.back().key, e.current_storm()->key + "/status");
    EXPECT_TRUE(posts.back().edit_of.empty());
}

TEST(storm, the_list_of_services_is_bounded) {
    engine e{settings()};
    std::vector<post> posts;
    for (int i = 0; i < 300; ++i) {
        const auto d = trigger(e, "P" + std::to_string(i), t0 + i * 10ms, "SVC" + std::to_string(i % 100));
        posts.insert(posts.end(), d.posts.begin(), d.posts.end());
    }
    const auto later = run_until(e, t0 + 1min);
    ASSERT_FALSE(later.empty());
    const auto& body = later.back().text.body;
    std::size_t bullets = 0;
    for (std::size_t at = body.find("\u2022"); at != std::string::npos; at = body.find("\u2022", at + 1)) {
        ++bullets;
    }
    EXPECT_EQ(bullets, 9u) << body;  // 8 services, and one line for the rest
    EXPECT_TRUE(contains(body, "\u2026and 276 more incidents on other services")) << body;
    EXPECT_LT(body.size(), 2000u);
    EXPECT_EQ(e.current_storm()->services.size(), 50u);
}

TEST(storm, past_the_open_limit_incidents_are_counted_not_tracked) {
    auto s = settings();
    s.limits.max_open_incidents = 3;
    s.limits.storm_threshold = 0;  // only the limit starts a storm
    engine e{s};
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(trigger(e, "P" + std::to_string(i), t0 + i * 1min).posts.size(), 1u);
    }
    const auto d = trigger(e, "OVER1", t0 + 3min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_EQ(d.posts[0].kind, post_kind::storm);
    EXPECT_EQ(merged(d.posts[0], post_kind::notice, merge_reason::untracked), 1u);
    EXPECT_TRUE(contains(d.posts[0].text.body, "More than 3 incidents are open at once"))
        << d.posts[0].text.body;
    EXPECT_EQ(e.find("OVER1"), nullptr);
    EXPECT_EQ(e.open_count(), 3u);
    // Its later events are not counted again.
    e.on_event(event(incident_event_type::acknowledged, "OVER1"), t0 + 3min + 1s);
    trigger(e, "OVER1", t0 + 3min + 2s);
    trigger(e, "OVER2", t0 + 3min + 3s);
    const auto posts = run_until(e, t0 + 3min + 20s);
    ASSERT_EQ(posts.size(), 1u);
    EXPECT_EQ(merged(posts[0], post_kind::notice, merge_reason::untracked), 1u);  // OVER2 only
    EXPECT_EQ(e.current_storm()->opened, 2u);
    EXPECT_EQ(e.current_storm()->untracked, 2u);
    EXPECT_TRUE(contains(posts[0].text.body, "2 are only counted here, past the limit of 3"))
        << posts[0].text.body;
    // The incidents posted alone before the limit keep their own lifecycle.
    const auto r = e.on_event(event(incident_event_type::resolved, "P1"), t0 + 4min);
    ASSERT_EQ(r.posts.size(), 1u);
    EXPECT_EQ(r.posts[0].kind, post_kind::resolved);
    // A window after the last one past the limit, the storm is over; with room again, a new
    // incident is tracked and posted alone.
    run_until(e, t0 + 3min + 3s + 5min);
    EXPECT_EQ(e.current_storm(), nullptr);
    const auto n = trigger(e, "NEW", t0 + 9min);
    ASSERT_EQ(n.posts.size(), 1u);
    EXPECT_EQ(n.posts[0].kind, post_kind::notice);
}

TEST(storm, after_a_storm_a_new_incident_past_the_limit_takes_the_place_of_a_storm_incident) {
    auto s = settings();
    s.limits.max_open_incidents = 5;
    s.limits.storm_threshold = 3;
    s.limits.storm_window = 1min;
    engine e{s};
    for (int i = 0; i < 6; ++i) {
        trigger(e, "P" + std::to_string(i), t0 + i * 1s);
    }
    ASSERT_NE(e.current_storm(), nullptr);
    EXPECT_EQ(e.open_count(), 5u);
    EXPECT_EQ(e.current_storm()->untracked, 1u);  // P5, past the limit
    run_until(e, t0 + 10min);
    ASSERT_EQ(e.current_storm(), nullptr);
    // Still 5 open, all in the storm: the oldest stops being followed, the new one is posted.
    const auto d = trigger(e, "NEW", t0 + 10min);
    ASSERT_EQ(d.posts.size(), 2u);
    EXPECT_EQ(d.posts[0].kind, post_kind::notice);
    EXPECT_EQ(d.posts[1].kind, post_kind::storm);  // one more only counted
    EXPECT_TRUE(contains(d.posts[1].text.body, "0 resolved, 4 still open")) << d.posts[1].text.body;
    EXPECT_EQ(e.open_count(), 5u);
    EXPECT_EQ(e.find("P0"), nullptr);
    ASSERT_EQ(e.storms().size(), 1u);
    const auto& storm = e.storms().begin()->second;
    EXPECT_EQ(storm.untracked, 2u);
    EXPECT_EQ(storm.open, 4u);
    // P0's resolution is not counted again, and posts nothing.
    EXPECT_TRUE(e.on_event(event(incident_event_type::resolved, "P0"), t0 + 11min).posts.empty());
    EXPECT_TRUE(run_until(e, t0 + 12min).empty());
    // Once the storm incidents are all gone, past the limit a new incident is counted in a storm.
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(
            trigger(e, "MORE" + std::to_string(i), t0 + 20min + i * 10min).posts[0].kind, post_kind::notice
        );
    }
    EXPECT_EQ(e.open_count(), 5u);
    EXPECT_EQ(e.find("P1"), nullptr);
    EXPECT_EQ(e.find("P2"), nullptr);
    EXPECT_EQ(e.find("P3"), nullptr);
    EXPECT_EQ(e.find("P4"), nullptr);  // the last storm incident
    EXPECT_TRUE(e.storms().empty());   // ended, and none of its incidents followed any more
    const auto over = trigger(e, "OVER", t0 + 70min);
    ASSERT_EQ(over.posts.size(), 1u);
    EXPECT_EQ(over.posts[0].kind, post_kind::storm);
    EXPECT_EQ(e.find("OVER"), nullptr);
}

TEST(storm, the_first_incident_after_a_storm_past_the_limit_gets_its_notice) {
    auto s = settings();
    s.limits.max_open_incidents = 50;
    s.limits.storm_window = 10s;
    engine e{s};
    for (int i = 0; i < 400; ++i) {
        trigger(e, "P" + std::to_string(i), t0 + i * 5ms);
    }
    EXPECT_EQ(e.open_count(), 50u);
    run_until(e, t0 + 1min);
    ASSERT_EQ(e.current_storm(), nullptr);
    const auto d = trigger(e, "NEW", t0 + 1min);
    ASSERT_FALSE(d.posts.empty());
    EXPECT_EQ(d.posts[0].kind, post_kind::notice);
    EXPECT_EQ(d.posts[0].key, "NEW/0/notice");
}

TEST(storm, operations_gets_one_storm_post_and_no_summary_per_incident) {
    engine e{with_operations()};
    std::vector<post> posts;
    for (int i = 0; i < 25; ++i) {
        const auto d = trigger(e, "P" + std::to_string(i), t0 + i * 1s);
        posts.insert(posts.end(), d.posts.begin(), d.posts.end());
    }
    const auto more = run_until(e, t0 + 1min);
    posts.insert(posts.end(), more.begin(), more.end());
    std::size_t summaries = 0;
    std::vector<post> storm_ops;
    for (const auto& p : posts) {
        if (p.kind == post_kind::summary) {
            ++summaries;
        }
        if (p.kind == post_kind::storm && p.to == channel::operations) {
            storm_ops.push_back(p);
        }
    }
    EXPECT_EQ(summaries, 10u);  // the ten before the storm, each with its notice
    // The first at t0+10s, edits at t0+20s and t0+30s (one per 10s interval).
    ASSERT_EQ(storm_ops.size(), 3u);
    EXPECT_EQ(storm_ops[0].key, e.current_storm()->key + "/operations");
    std::size_t summaries_merged = 0;
    for (std::size_t i = 0; i < storm_ops.size(); ++i) {
        EXPECT_EQ(storm_ops[i].edit_of, i == 0 ? std::string{} : storm_ops[0].key);
        summaries_merged += merged(storm_ops[i], post_kind::summary, merge_reason::storm);
    }
    EXPECT_EQ(summaries_merged, 15u);
    EXPECT_TRUE(contains(storm_ops[2].text.body, "summaries and timelines are paused"))
        << storm_ops[2].text.body;
    // A storm incident's resolution posts no timeline: it is counted in the edit.
    const auto edits =
        on(e.on_event(event(incident_event_type::resolved, "P20"), t0 + 2min), channel::operations);
    ASSERT_EQ(edits.size(), 1u);
    EXPECT_EQ(edits[0].kind, post_kind::storm);
    EXPECT_EQ(merged(edits[0], post_kind::timeline, merge_reason::storm), 1u);
    // No refresh of a storm incident's summary when signals come.
    signal sig;
    sig.kind = "k8s.rollout";
    sig.subject = "x";
    sig.source = "kubernetes";
    sig.at = t0 + 3min;
    e.on_signal(sig, t0 + 3min);
    for (const auto& p : run_until(e, t0 + 4min)) {
        EXPECT_EQ(p.kind, post_kind::storm);
    }
}

TEST(storm, a_relay_of_a_storm_incident_is_posted_but_schedules_nothing) {
    engine e{settings()};
    for (int i = 0; i < 11; ++i) {
        trigger(e, "P" + std::to_string(i), t0 + i * 1s);
    }
    auto ev = event(incident_event_type::status_update_published, "P10");
    ev.message = "We rolled back the deploy.";
    const auto d = e.on_event(ev, t0 + 1min);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_EQ(d.posts[0].kind, post_kind::relay);
    for (const auto& p : run_until(e, t0 + 1h)) {
        EXPECT_EQ(p.kind, post_kind::storm) << p.key;
    }
}

TEST(storm, a_storm_incident_that_reopens_after_the_storm_is_posted_alone) {
    engine e{settings()};
    for (int i = 0; i < 11; ++i) {
        trigger(e, "P" + std::to_string(i), t0 + i * 1s);
    }
    e.on_event(event(incident_event_type::resolved, "P10"), t0 + 1min);
    run_until(e, t0 + 1h);
    EXPECT_EQ(e.current_storm(), nullptr);
    const auto d = e.on_event(event(incident_event_type::reopened, "P10"), t0 + 1h);
    ASSERT_EQ(d.posts.size(), 1u);
    EXPECT_EQ(d.posts[0].kind, post_kind::reopened);
    EXPECT_TRUE(e.find("P10")->storm.empty());
    EXPECT_EQ(e.next_wake(), t0 + 1h + 30min);
}

TEST(storm, a_reconciliation_that_finds_new_incidents_counts_them_too) {
    engine e{settings()};
    for (int i = 0; i < 12; ++i) {
        auto ev = event(incident_event_type::triggered, "P" + std::to_string(i));
        ev.origin = event_origin::reconciliation;
        ev.as_of = t0 + i * 1s;
        e.on_event(ev, t0 + i * 1s);
    }
    ASSERT_NE(e.current_storm(), nullptr);
    EXPECT_EQ(e.current_storm()->opened, 12u);
    auto resolved = event(incident_event_type::resolved, "P11");
    resolved.origin = event_origin::reconciliation;
    resolved.as_of = t0 + 1min;
    for (const auto& p : e.on_event(resolved, t0 + 1min).posts) {
        EXPECT_EQ(p.kind, post_kind::storm);  // no resolved post of its own
    }
    EXPECT_EQ(e.current_storm()->resolved, 1u);
}

}  // namespace
}  // namespace runbookd
