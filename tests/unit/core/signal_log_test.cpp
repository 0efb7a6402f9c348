#include "core/signal_log.hpp"

#include <gtest/gtest.h>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

const wall_time t0 = *parse_rfc3339("2026-03-05T16:00:00Z");

signal make(std::string kind, wall_time at, std::string subject = "s") {
    signal s;
    s.kind = std::move(kind);
    s.at = at;
    s.subject = std::move(subject);
    return s;
}

std::vector<std::string> subjects(signal_log::range r) {
    std::vector<std::string> out;
    for (const auto& s : r) {
        out.push_back(s.subject);
    }
    return out;
}

TEST(signal, labels_are_the_catalogues_and_are_found_by_name_or_position) {
    signal s;
    ASSERT_TRUE(s.set_kind("k8s.restart"));
    EXPECT_TRUE(s.set("pod", "p"));
    EXPECT_TRUE(s.set("namespace", "ns"));
    EXPECT_TRUE(s.set("pod", "p2"));
    EXPECT_FALSE(s.set("image", "x"));  // not a label of k8s.restart
    ASSERT_NE(s.find("pod"), nullptr);
    EXPECT_EQ(*s.find("pod"), "p2");
    ASSERT_NE(s.find("container"), nullptr);
    EXPECT_EQ(*s.find("container"), "");  // a label of the kind, not set: empty
    EXPECT_EQ(s.find("image"), nullptr);
    EXPECT_EQ(*s.label_at(label_index(*s.info, "namespace")), "ns");
    EXPECT_EQ(s.label_at(99), nullptr);
}

TEST(signal, a_kind_assigned_directly_is_resolved_on_the_first_label) {
    signal s;
    s.kind = "db.cpu";
    EXPECT_TRUE(s.set("instance", "dark-west"));
    EXPECT_EQ(s.info, find_signal_kind("db.cpu"));
    signal unknown;
    EXPECT_FALSE(unknown.set_kind("db.cpux"));
    EXPECT_FALSE(unknown.set("instance", "x"));
    EXPECT_EQ(unknown.find("instance"), nullptr);
}

TEST(signal, catalogue_names_are_unique_and_findable) {
    for (const auto& k : signal_catalogue()) {
        EXPECT_EQ(find_signal_kind(k.name), &k) << k.name;
        EXPECT_FALSE(k.source.empty()) << k.name;
        EXPECT_FALSE(k.labels.empty()) << k.name;
    }
    EXPECT_EQ(find_signal_kind("k8s.rolout"), nullptr);
}

TEST(signal_log, the_same_fact_again_is_kept_once) {
    signal_log log;
    signal a = make("db.cpu", t0 - 2min, "dark-west");
    a.value = 0.97;
    EXPECT_TRUE(log.add(a, t0));
    EXPECT_TRUE(log.add(make("db.cpu", t0 - 1min, "dark-west"), t0));
    // A trailing window read again hands the older point over a second time.
    EXPECT_FALSE(log.add(a, t0));
    EXPECT_EQ(log.size(), 2U);
    // Another value, subject or label at the same instant is another fact.
    signal other_value = a;
    other_value.value = 0.5;
    EXPECT_TRUE(log.add(other_value, t0));
    EXPECT_TRUE(log.add(make("db.cpu", t0 - 2min, "dark-east"), t0));
    signal labelled = make("k8s.restart", t0 - 2min, "pod");
    ASSERT_TRUE(labelled.set("container", "api"));
    EXPECT_TRUE(log.add(labelled, t0));
    ASSERT_TRUE(labelled.set("container", "worker"));
    EXPECT_TRUE(log.add(labelled, t0));
    EXPECT_FALSE(log.add(labelled, t0));
    // What was seen is not the same fact as what the world dated at that instant.
    signal seen = make("k8s.restart", t0 - 3min, "pod");
    EXPECT_TRUE(log.add(seen, t0));
    seen.seen = true;
    EXPECT_TRUE(log.add(seen, t0));
    EXPECT_EQ(log.size(), 8U);
}

TEST(signal_log, between_is_inclusive_and_per_kind) {
    signal_log log;
    log.add(make("k8s.rollout", t0 - 10min, "a"), t0);
    log.add(make("k8s.rollout", t0 - 5min, "b"), t0);
    log.add(make("k8s.rollout", t0, "c"), t0);
    log.add(make("db.cpu", t0 - 5min, "x"), t0);
    EXPECT_EQ(subjects(log.between("k8s.rollout", t0 - 5min, t0)), (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(
        subjects(log.between("k8s.rollout", t0 - 5min - 1ms, t0 - 1ms)), (std::vector<std::string>{"b"})
    );
    EXPECT_TRUE(log.between("k8s.restart", t0 - 1h, t0).empty());
    EXPECT_TRUE(log.between("k8s.rollout", t0, t0 - 1h).empty());
    EXPECT_EQ(log.size(), 4u);
}

TEST(signal_log, a_late_signal_is_placed_in_time_order) {
    signal_log log;
    log.add(make("db.cpu", t0, "third"), t0);
    log.add(make("db.cpu", t0 - 2min, "first"), t0);
    log.add(make("db.cpu", t0 - 1min, "second"), t0);
    EXPECT_EQ(
        subjects(log.between("db.cpu", t0 - 1h, t0)), (std::vector<std::string>{"first", "second", "third"})
    );
}

TEST(signal_log, retention_drops_old_signals_and_refuses_stale_ones) {
    signal_log log{signal_log_settings{1h, 100}};
    EXPECT_FALSE(log.add(make("db.cpu", t0 - 1h - 1ms), t0));
    EXPECT_TRUE(log.add(make("db.cpu", t0 - 1h), t0));
    EXPECT_TRUE(log.add(make("db.cpu", t0 - 30min), t0));
    log.expire(t0 + 1min);
    EXPECT_EQ(log.size(), 1u);
    log.expire(t0 + 31min);
    EXPECT_EQ(log.size(), 0u);
}

TEST(signal_log, a_full_log_evicts_the_oldest_signal_of_any_kind) {
    signal_log log{signal_log_settings{6h, 3}};
    log.add(make("db.cpu", t0 - 3min, "cpu-old"), t0);
    log.add(make("k8s.rollout", t0 - 4min, "rollout-oldest"), t0);
    log.add(make("db.cpu", t0 - 1min, "cpu-new"), t0);
    log.add(make("k8s.rollout", t0, "rollout-new"), t0);
    EXPECT_EQ(log.size(), 3u);
    EXPECT_EQ(log.evicted(), 1u);
    EXPECT_EQ(subjects(log.between("k8s.rollout", t0 - 1h, t0)), (std::vector<std::string>{"rollout-new"}));
    EXPECT_EQ(subjects(log.between("db.cpu", t0 - 1h, t0)), (std::vector<std::string>{"cpu-old", "cpu-new"}));
}

}  // namespace
}  // namespace runbookd
