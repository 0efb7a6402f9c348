// The first #operations summary of an incident and the page-time gathering: it waits for
// evidence_gathered or the deadline, whichever comes first, and late evidence edits it.
// Virtual time throughout.
#include "core/engine.hpp"
#include "engine_fixtures.hpp"
#include "rules/rules.hpp"

#include <gtest/gtest.h>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

using namespace engine_fixtures;

engine_settings settings(millis gather_deadline) {
    engine_settings s = api_settings();
    s.operations.gather_deadline = gather_deadline;
    return s;
}

incident_event page(incident_event_type type) {
    incident_event ev;
    ev.type = type;
    ev.event_id = std::string{to_string(type)} + "-" + std::to_string(static_cast<int>(type));
    ev.incident.id = "PINC1";
    ev.incident.title = "API 5xx";
    ev.incident.service_id = "PAPI";
    ev.incident.status = type == incident_event_type::resolved ? "resolved" : "triggered";
    return ev;
}

struct first_summary : ::testing::Test {
    engine e{settings(3s)};

    void SetUp() override { e.on_source_status("kubernetes", source_status{}, t0 - 1h); }
};

TEST_F(first_summary, the_page_asks_for_evidence_and_the_summary_waits_for_it) {
    const auto d = e.on_event(page(incident_event_type::triggered), t0);
    ASSERT_EQ(d.posts.size(), 1u) << "the #status notice does not wait";
    EXPECT_EQ(d.posts[0].to, channel::status);
    ASSERT_EQ(d.gather.size(), 1u);
    EXPECT_EQ(d.gather[0].incident_id, "PINC1");
    EXPECT_EQ(d.gather[0].epoch, 0);
    EXPECT_EQ(d.gather[0].to, t0);
    EXPECT_LT(d.gather[0].from, t0) << "the window reaches back as far as any rule looks";
    EXPECT_EQ(d.gather[0].deadline, t0 + 3s);
    EXPECT_EQ(d.next_wake, t0 + 3s);
}

TEST_F(first_summary, evidence_in_before_the_deadline_posts_it_at_once_with_that_evidence) {
    e.on_event(page(incident_event_type::triggered), t0);
    // What the sources found while looking again: no post of its own.
    EXPECT_TRUE(e.on_signal(crashloop(t0 - 20s, "api-1"), t0 + 400ms).posts.empty());
    EXPECT_TRUE(e.on_signal(crashloop(t0 - 10s, "api-2"), t0 + 500ms).posts.empty());
    const auto d = e.apply(input{t0 + 600ms, evidence_gathered{"PINC1", 0}});
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0]->key, "PINC1/0/summary/1");
    EXPECT_TRUE(ops[0]->edit_of.empty());
    EXPECT_EQ(ops[0]->at, t0 + 600ms);
    EXPECT_NE(ops[0]->text.body.find("CrashLoopBackOff"), std::string::npos);
    // The deadline's wake-up is gone with it: next is the #status update.
    EXPECT_EQ(e.next_wake(), t0 + 30min);
    EXPECT_TRUE(e.on_tick(t0 + 3s).posts.empty());
}

TEST_F(first_summary, evidence_never_in_posts_it_at_the_deadline) {
    e.on_event(page(incident_event_type::triggered), t0);
    e.on_signal(crashloop(t0 - 20s, "api-1"), t0 + 1s);
    EXPECT_TRUE(e.on_tick(t0 + 3s - 1ms).posts.empty());
    EXPECT_EQ(e.next_wake(), t0 + 3s);
    const auto d = e.on_tick(t0 + 3s);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0]->key, "PINC1/0/summary/1");
    EXPECT_NE(ops[0]->text.body.find("CrashLoopBackOff"), std::string::npos);
}

TEST_F(first_summary, late_evidence_edits_the_summary_and_a_late_gathered_changes_nothing) {
    e.on_signal(rollout(t0 - 3min), t0 - 3min);  // the same top suspect before and after
    e.on_event(page(incident_event_type::triggered), t0);
    ASSERT_EQ(operations(e.on_tick(t0 + 3s)).size(), 1u);
    // A slow source answers after the deadline: its signal edits the summary, coalesced.
    EXPECT_TRUE(e.on_signal(crashloop(t0 - 20s, "api-1"), t0 + 5s).posts.empty());
    EXPECT_TRUE(e.apply(input{t0 + 5s, evidence_gathered{"PINC1", 0}}).posts.empty());
    EXPECT_EQ(e.next_wake(), t0 + 33s);
    const auto d = e.on_tick(t0 + 33s);
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0]->edit_of, "PINC1/0/summary/1");
    EXPECT_NE(ops[0]->text.body.find("CrashLoopBackOff"), std::string::npos);
}

TEST_F(first_summary, a_gathering_of_an_earlier_epoch_does_not_release_a_reopened_incident) {
    e.on_event(page(incident_event_type::triggered), t0);
    e.apply(input{t0 + 1s, evidence_gathered{"PINC1", 0}});
    e.on_event(page(incident_event_type::resolved), t0 + 10min);
    const auto reopened = e.on_event(page(incident_event_type::reopened), t0 + 20min);
    ASSERT_EQ(reopened.gather.size(), 1u);
    EXPECT_EQ(reopened.gather[0].epoch, 1);
    EXPECT_TRUE(operations(reopened).empty());
    EXPECT_TRUE(operations(e.apply(input{t0 + 20min + 1s, evidence_gathered{"PINC1", 0}})).empty());
    const auto d = e.apply(input{t0 + 20min + 2s, evidence_gathered{"PINC1", 1}});
    const auto ops = operations(d);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0]->key, "PINC1/1/summary/1");
}

TEST(first_summary_off, a_zero_deadline_posts_with_the_notice_and_gathers_nothing) {
    engine e{settings(0s)};
    const auto d = e.on_event(page(incident_event_type::triggered), t0);
    EXPECT_TRUE(d.gather.empty());
    ASSERT_EQ(operations(d).size(), 1u);
}

TEST(first_summary_off, without_an_operations_channel_nothing_is_gathered) {
    auto s = settings(3s);
    s.operations.enabled = false;
    engine e{s};
    const auto d = e.on_event(page(incident_event_type::triggered), t0);
    EXPECT_TRUE(d.gather.empty());
    EXPECT_TRUE(operations(d).empty());
    EXPECT_EQ(e.next_wake(), t0 + 30min);
}

}  // namespace
}  // namespace runbookd
