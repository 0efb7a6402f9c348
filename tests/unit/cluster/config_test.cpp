// `leader_election:` as the configuration file reads it.
#include "config/config.hpp"

#include <gtest/gtest.h>

namespace runbookd::cluster {
namespace {

using namespace std::chrono_literals;
namespace rc = runbookd::config;

const std::string base = "pagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\n";

rc::load_result parse(const std::string& section) {
    return rc::parse(base + "leader_election:\n" + section, "inline.yaml", [](std::string_view) {
        return std::optional<std::string>{};
    });
}

std::string messages(const rc::load_result& r) {
    std::string out;
    for (const auto& p : r.problems) {
        out += p.to_string() + "\n";
    }
    return out;
}

TEST(leader_election_config, is_off_with_client_go_defaults_when_absent) {
    const auto r =
        rc::parse(base, "inline.yaml", [](std::string_view) { return std::optional<std::string>{}; });
    ASSERT_TRUE(r.ok()) << messages(r);
    const auto& c = r.value->leader_election;
    EXPECT_FALSE(c.enabled);
    EXPECT_EQ(c.name, "runbookd");
    EXPECT_EQ(c.ns, "");
    EXPECT_EQ(c.identity, "");
    EXPECT_EQ(c.lease_duration, 15s);
    EXPECT_EQ(c.renew_deadline, 10s);
    EXPECT_EQ(c.retry_period, 2s);
    EXPECT_TRUE(c.release_on_shutdown);
}

TEST(leader_election_config, reads_every_key) {
    const auto r = parse(
        "  enabled: true\n  namespace: ops\n  name: runbookd.leader\n  identity: runbookd-0\n"
        "  lease_duration: 30s\n  renew_deadline: 20s\n  retry_period: 4s\n  release_on_shutdown: false\n"
    );
    ASSERT_TRUE(r.ok()) << messages(r);
    const auto& c = r.value->leader_election;
    EXPECT_TRUE(c.enabled);
    EXPECT_EQ(c.ns, "ops");
    EXPECT_EQ(c.name, "runbookd.leader");
    EXPECT_EQ(c.identity, "runbookd-0");
    EXPECT_EQ(c.lease_duration, 30s);
    EXPECT_EQ(c.renew_deadline, 20s);
    EXPECT_EQ(c.retry_period, 4s);
    EXPECT_FALSE(c.release_on_shutdown);
}

TEST(leader_election_config, empty_namespace_and_identity_keep_their_defaults) {
    const auto r = parse("  enabled: true\n  namespace: \"\"\n  identity: \"\"\n");
    ASSERT_TRUE(r.ok()) << messages(r);
    EXPECT_EQ(r.value->leader_election.ns, "");
    EXPECT_EQ(r.value->leader_election.identity, "");
}

TEST(leader_election_config, the_renew_deadline_must_be_shorter_than_the_lease) {
    const auto r = parse("  lease_duration: 10s\n  renew_deadline: 10s\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(
        messages(r).find("leader_election.renew_deadline: must be shorter than lease_duration"),
        std::string::npos
    ) << messages(r);
}

TEST(leader_election_config, the_retry_period_must_fit_in_the_renew_deadline_with_jitter) {
    const auto r = parse("  retry_period: 9s\n");  // 9 s × 1.2 > 10 s
    ASSERT_FALSE(r.ok());
    EXPECT_NE(
        messages(r).find("leader_election.retry_period: must be shorter than renew_deadline / 1.2"),
        std::string::npos
    ) << messages(r);
}

TEST(leader_election_config, the_lease_duration_is_whole_seconds) {
    const auto r = parse("  lease_duration: 1500ms\n  renew_deadline: 1s\n  retry_period: 100ms\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(messages(r).find("leader_election.lease_duration: must be whole seconds"), std::string::npos)
        << messages(r);
}

TEST(leader_election_config, names_are_checked_and_unknown_keys_suggested) {
    const auto r = parse("  namespace: Ops\n  name: -x\n  lease_duraton: 15s\n");
    ASSERT_FALSE(r.ok());
    const auto m = messages(r);
    EXPECT_NE(m.find("leader_election.namespace"), std::string::npos) << m;
    EXPECT_NE(m.find("not a namespace name"), std::string::npos) << m;
    EXPECT_NE(m.find("not a Kubernetes object name"), std::string::npos) << m;
    EXPECT_NE(m.find("lease_duration"), std::string::npos) << m;  // did you mean
}

}  // namespace
}  // namespace runbookd::cluster
