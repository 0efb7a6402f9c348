#include "store/record.hpp"

#include <gtest/gtest.h>

namespace runbookd::store {
namespace {

const wall_time t0 = *parse_rfc3339("2026-03-04T16:00:00Z");

record round_trip(const record& r) {
    const std::string text = encode(r);
    auto d = decode(text);
    EXPECT_EQ(d.error, "") << text;
    EXPECT_TRUE(d.value.has_value()) << text;
    EXPECT_EQ(encode(*d.value), text);  // stable: what is read encodes the same
    return *d.value;
}

TEST(codec, an_incident_event_keeps_every_fact) {
    incident_event ev;
    ev.type = incident_event_type::status_update_published;
    ev.event_id = "01DEN6";
    ev.occurred_at = t0 - std::chrono::seconds{3};
    ev.agent = "Ana";
    ev.message = "Rolling back \"bwdserver\"\n— ünïcode";
    ev.origin = event_origin::reconciliation;
    ev.as_of = t0;
    ev.incident.id = "Q1";
    ev.incident.number = 42;
    ev.incident.title = "API latency";
    ev.incident.service_id = "PF9KMXH";
    ev.incident.created_at = t0 - std::chrono::minutes{5};
    ev.incident.assignees = std::vector<std::string>{"Ana", "Bo"};
    ev.incident.alert_details = std::vector<std::pair<std::string, std::string>>{{"pod", "api-1"}};
    ev.incident.impact = "Saving fails.";
    const auto back = std::get<incident_event>(std::get<input>(round_trip(input{t0, ev})).what);
    EXPECT_EQ(back.type, ev.type);
    EXPECT_EQ(back.message, ev.message);
    EXPECT_EQ(back.origin, event_origin::reconciliation);
    EXPECT_EQ(back.as_of, ev.as_of);
    EXPECT_EQ(back.incident.number, 42);
    EXPECT_EQ(back.incident.assignees, ev.incident.assignees);
    EXPECT_EQ(back.incident.alert_details, ev.incident.alert_details);
    EXPECT_EQ(back.incident.created_at, ev.incident.created_at);
    EXPECT_FALSE(back.incident.priority.has_value());  // unknown stays unknown
}

TEST(codec, a_signal_keeps_its_kind_labels_and_time) {
    signal s;
    ASSERT_TRUE(s.set_kind("k8s.rollout"));
    ASSERT_TRUE(s.set("namespace", "prod"));
    s.at = t0 - std::chrono::minutes{3};
    s.value = 0.5;
    s.subject = "prod/bwdserver";
    s.source = "kubernetes";
    s.seen = true;
    const auto back = std::get<signal>(std::get<input>(round_trip(input{t0, s})).what);
    EXPECT_EQ(back.kind, "k8s.rollout");
    ASSERT_NE(back.info, nullptr);
    EXPECT_EQ(*back.find("namespace"), "prod");
    EXPECT_EQ(back.values.size(), s.values.size());
    EXPECT_EQ(back.at, s.at);
    EXPECT_EQ(back.value, 0.5);
    EXPECT_TRUE(back.seen);
}

TEST(codec, reports_ticks_and_gathered_round_trip) {
    source_report r{"postgres", source_status{source_state::failing, "connection refused", t0, true}};
    const auto back = std::get<source_report>(std::get<input>(round_trip(input{t0, r})).what);
    EXPECT_EQ(back.status.state, source_state::failing);
    EXPECT_EQ(back.status.error, "connection refused");
    EXPECT_TRUE(back.status.pending);
    EXPECT_TRUE(std::holds_alternative<tick>(std::get<input>(round_trip(input{t0, tick{}})).what));
    const auto g =
        std::get<evidence_gathered>(std::get<input>(round_trip(input{t0, evidence_gathered{"Q1", 2}})).what);
    EXPECT_EQ(g.incident, "Q1");
    EXPECT_EQ(g.epoch, 2);
}

TEST(codec, an_outbox_change_keeps_its_post) {
    post p;
    p.to = channel::operations;
    p.kind = post_kind::summary;
    p.incident_id = "Q1";
    p.key = "Q1/0/summary/1";
    p.at = t0;
    p.text = message{"Likely causes", "1. **rollout** <@&1>", "https://x", 0xff0000, "runbookd"};
    p.coalescible = true;
    p.edit_of = "Q1/0/summary/0";
    p.merged.push_back(merged_posts{post_kind::notice, merge_reason::untracked, 37});
    notify::change c{
        .what = notify::change::kind::replaced, .to = channel::operations, .keys = {"k"}, .p = p};
    const auto back = std::get<notify::change>(round_trip(c));
    EXPECT_EQ(back.what, notify::change::kind::replaced);
    ASSERT_TRUE(back.p);
    EXPECT_EQ(back.p->text.body, p.text.body);
    EXPECT_EQ(back.p->text.color, 0xff0000u);
    EXPECT_EQ(back.p->edit_of, p.edit_of);
    EXPECT_TRUE(back.p->coalescible);
    EXPECT_EQ(back.p->merged, p.merged);
    notify::change d{
        .what = notify::change::kind::delivered,
        .to = channel::status,
        .keys = {"a", "b"},
        .message_id = "123"};
    EXPECT_EQ(std::get<notify::change>(round_trip(d)).keys, (std::vector<std::string>{"a", "b"}));
}

TEST(codec, what_is_not_a_record_says_why) {
    EXPECT_NE(decode("{\"at\": 1}").error, "");
    EXPECT_NE(decode("[1,2]").error, "");
    EXPECT_NE(
        decode("{\"at\":1,\"event\":\"exploded\",\"incident\":{\"id\":\"x\"}}")
            .error.find("unknown event type"),
        std::string::npos
    );
    EXPECT_NE(
        decode("{\"at\":1,\"signal\":\"no.such\",\"labels\":[],\"signal_at\":1}")
            .error.find("unknown signal kind"),
        std::string::npos
    );
    EXPECT_NE(
        decode("{\"change\":\"teleported\",\"to\":\"status\"}").error.find("unknown outbox change"),
        std::string::npos
    );
    EXPECT_NE(decode("not json").error, "");
}

}  // namespace
}  // namespace runbookd::store
