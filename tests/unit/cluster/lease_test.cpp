// Leader election on a Lease under manual time: against a scripted client (the requests
// as sent) and against an in-memory API server shared by two replicas (who leads when).
#include "cluster/lease.hpp"

#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "fakes/scripted_http.hpp"
#include "sources/kubernetes/credentials.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <regex>
#include <set>

namespace runbookd::cluster {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = loop::steady_clock;

constexpr const char* lease_path = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/runbookd";

std::string path_of(const std::string& url) {
    const auto scheme = url.find("://");
    return url.substr(url.find('/', scheme + 3));
}

/// The Lease part of an API server, in memory: GET, POST and PUT with resourceVersion
/// checks, as the real one answers them (api-facts §4.9). Requests carrying a partitioned
/// token fail as a dropped connection would; a hung token's requests never answer.
class lease_api final : public net::http_client {
public:
    boost::asio::awaitable<boost::system::result<net::http_reply, net::transport_failure>> send(
        net::http_call call
    ) override {
        const std::string token = call.headers["Authorization"];
        calls.push_back(call);
        if (hung.count(token) != 0) {
            loop::timer never{co_await boost::asio::this_coro::executor};
            never.expires_after(24h);
            co_await never.async_wait(boost::asio::use_awaitable);
        }
        if (partitioned.count(token) != 0) {
            co_return net::transport_failure{
                make_failure(errc::upstream_unavailable, "connection reset", true), true};
        }
        co_return answer(call, token);
    }

    boost::asio::awaitable<boost::system::result<net::http_reply, net::transport_failure>> stream(
        net::http_call call, body_sink /*sink*/
    ) override {
        co_return co_await send(std::move(call));
    }

    /// Another writer (a replica not under test): sets the spec, as a PUT would.
    void write(const json& spec) {
        if (!lease) {
            lease = json{
                {"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", "runbookd"}, {"namespace", "ops"}}}};
        }
        (*lease)["spec"] = spec;
        bump();
    }
    /// A change that leaves the spec as it is (a label added by someone).
    void touch() { bump(); }

    json spec() const { return lease ? (*lease)["spec"] : json{}; }

    std::optional<json> lease;
    std::set<std::string> partitioned;  ///< Authorization headers refused
    std::set<std::string> hung;         ///< Authorization headers never answered
    std::vector<net::http_call> calls;
    /// When each token's last successful write was answered.
    std::map<std::string, steady::time_point> last_write;

private:
    void bump() { (*lease)["metadata"]["resourceVersion"] = std::to_string(++version_); }

    net::http_reply answer(const net::http_call& call, const std::string& token) {
        const std::string path = path_of(call.url);
        if (call.method == "GET" && path == lease_path) {
            return lease ? net::http_reply{200, {}, lease->dump()} : status(404, "NotFound");
        }
        if (call.method == "POST" && path == "/apis/coordination.k8s.io/v1/namespaces/ops/leases") {
            if (lease) {
                return status(409, "AlreadyExists");
            }
            lease = json::parse(call.body);
            bump();
            last_write[token] = steady::now();
            return net::http_reply{201, {}, lease->dump()};
        }
        if (call.method == "PUT" && path == lease_path) {
            if (!lease) {
                return status(404, "NotFound");
            }
            const auto sent = json::parse(call.body);
            if (sent["metadata"].value("resourceVersion", "") != (*lease)["metadata"]["resourceVersion"]) {
                return status(409, "Conflict");
            }
            (*lease)["spec"] = sent["spec"];
            bump();
            last_write[token] = steady::now();
            return net::http_reply{200, {}, lease->dump()};
        }
        return status(405, "MethodNotAllowed");
    }

    static net::http_reply status(unsigned code, const std::string& why) {
        return net::http_reply{
            code, {}, json{{"kind", "Status"}, {"reason", why}, {"message", why}, {"code", code}}.dump()};
    }

    long long version_ = 0;
};

double metric(prometheus::Registry& registry, const std::string& name, const std::string& label = {}) {
    for (const auto& family : registry.Collect()) {
        if (family.name != name) {
            continue;
        }
        for (const auto& m : family.metric) {
            if (label.empty() || (m.label.size() == 1 && m.label[0].value == label)) {
                return family.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
            }
        }
    }
    return -1;
}

/// One replica: its credentials (a fixed token), elector, registry and what it was told.
struct replica {
    replica(boost::asio::io_context& ioc, net::http_client& http, std::string id, lease_settings base = {}) {
        sources::kubernetes::cluster_access access;
        access.server = "https://127.0.0.1:6443";
        access.token = "token-" + id;
        creds = std::make_unique<sources::kubernetes::credentials>(ioc.get_executor(), access);
        base.server = access.server;
        base.ns = "ops";
        base.identity = id;
        base.jitter = 0;
        leader_callbacks cb;
        cb.on_started_leading = [this](std::uint64_t token) {
            tokens.push_back(token);
            started_at.push_back(steady::now());
        };
        cb.on_stopped_leading = [this] { stopped_at.push_back(steady::now()); };
        elector = std::make_unique<lease_elector>(
            ioc.get_executor(),
            http,
            *creds,
            base,
            cb,
            log::logger{
                std::make_shared<log::sink>([this](std::string_view l) { log_lines.emplace_back(l); }),
                log::level::debug},
            registry
        );
    }

    bool logged(std::string_view text) const {
        for (const auto& l : log_lines) {
            if (l.find(text) != std::string::npos) {
                return true;
            }
        }
        return false;
    }

    prometheus::Registry registry;
    std::unique_ptr<sources::kubernetes::credentials> creds;
    std::unique_ptr<lease_elector> elector;
    std::vector<std::uint64_t> tokens;
    std::vector<steady::time_point> started_at;
    std::vector<steady::time_point> stopped_at;
    std::vector<std::string> log_lines;
};

struct election : ::testing::Test {
    /// Advances virtual time by `total` in steps of `step`, running what falls due.
    void run_for(std::chrono::milliseconds total, std::chrono::milliseconds step = 100ms) {
        for (auto t = 0ms; t < total; t += step) {
            clock.advance(step);
            fakes::drain(ioc);
        }
    }

    /// A replica on `api`, stopped at the end of the test.
    replica* make(const std::string& id, lease_settings s = {}) {
        replicas.push_back(std::make_unique<replica>(ioc, api, id, s));
        return replicas.back().get();
    }

    /// a (started first) leads, b follows; both have run for `settle`.
    std::pair<replica*, replica*> leader_and_follower(std::chrono::milliseconds settle = 4s) {
        auto* a = make("a");
        auto* b = make("b");
        a->elector->start();
        fakes::drain(ioc);
        b->elector->start();
        run_for(settle);
        EXPECT_TRUE(a->elector->is_leader());
        EXPECT_FALSE(b->elector->is_leader());
        return {a, b};
    }

    void TearDown() override {
        for (auto& r : replicas) {
            r->elector->stop();
        }
        fakes::drain(ioc);
    }

    fakes::manual_time clock{fakes::at("2026-12-03T18:00:00Z")};
    boost::asio::io_context ioc;
    lease_api api;
    std::vector<std::unique_ptr<replica>> replicas;
};

json held_by(const std::string& holder, long long transitions, const std::string& renew) {
    return json{
        {"holderIdentity", holder},
        {"leaseDurationSeconds", 15},
        {"acquireTime", "2026-12-03T17:00:00.000000Z"},
        {"renewTime", renew},
        {"leaseTransitions", transitions}};
}

// --- the requests, as sent ---------------------------------------------------------------------

TEST(micro_time, has_six_fractional_digits) {
    EXPECT_EQ(format_micro_time(fakes::at("2026-12-03T18:00:00.250Z")), "2026-12-03T18:00:00.250000Z");
    EXPECT_EQ(format_micro_time(fakes::at("2024-02-29T23:59:59Z")), "2024-02-29T23:59:59.000000Z");
}

TEST(scripted_election, an_absent_lease_is_created_with_this_replica_as_holder) {
    fakes::manual_time clock{fakes::at("2026-12-03T18:00:00.125Z")};
    boost::asio::io_context ioc;
    fakes::scripted_http http;
    http.push_reply(404, R"({"kind":"Status","reason":"NotFound","code":404})");
    http.push_reply(
        201,
        R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"runbookd","namespace":"ops","resourceVersion":"7"},
            "spec":{"holderIdentity":"a","leaseDurationSeconds":15,"acquireTime":"2026-12-03T18:00:00.125000Z",
                    "renewTime":"2026-12-03T18:00:00.125000Z","leaseTransitions":0}})"
    );
    replica a{ioc, http, "a"};
    a.elector->start();
    fakes::drain(ioc);

    ASSERT_EQ(http.calls.size(), 2u);
    EXPECT_EQ(http.calls[0].method, "GET");
    EXPECT_EQ(http.calls[0].url, std::string{"https://127.0.0.1:6443"} + lease_path);
    EXPECT_EQ(http.calls[0].headers["Authorization"], "Bearer token-a");
    EXPECT_EQ(http.calls[1].method, "POST");
    EXPECT_EQ(http.calls[1].url, "https://127.0.0.1:6443/apis/coordination.k8s.io/v1/namespaces/ops/leases");
    const auto body = json::parse(http.calls[1].body);
    EXPECT_EQ(body["apiVersion"], "coordination.k8s.io/v1");
    EXPECT_EQ(body["kind"], "Lease");
    EXPECT_EQ(body["metadata"]["name"], "runbookd");
    EXPECT_EQ(body["metadata"]["namespace"], "ops");
    EXPECT_EQ(body["spec"]["holderIdentity"], "a");
    EXPECT_EQ(body["spec"]["leaseDurationSeconds"], 15);
    EXPECT_EQ(body["spec"]["leaseTransitions"], 0);
    EXPECT_EQ(body["spec"]["acquireTime"], "2026-12-03T18:00:00.125000Z");
    EXPECT_EQ(body["spec"]["renewTime"], "2026-12-03T18:00:00.125000Z");

    EXPECT_TRUE(a.elector->is_leader());
    EXPECT_EQ(a.tokens, std::vector<std::uint64_t>{0});
    EXPECT_EQ(metric(a.registry, "runbookd_leader"), 1);
    EXPECT_EQ(metric(a.registry, "runbookd_leader_transitions_total", "started"), 1);
    EXPECT_TRUE(a.logged("started leading"));

    // The renewal 2 s later PUTs the object back with the resourceVersion it was given.
    http.push_reply(200, http.calls[1].body);
    clock.advance(2s);
    fakes::drain(ioc);
    ASSERT_EQ(http.calls.size(), 3u);
    EXPECT_EQ(http.calls[2].method, "PUT");
    EXPECT_EQ(http.calls[2].url, std::string{"https://127.0.0.1:6443"} + lease_path);
    const auto renewal = json::parse(http.calls[2].body);
    EXPECT_EQ(renewal["metadata"]["resourceVersion"], "7");
    EXPECT_EQ(renewal["spec"]["renewTime"], "2026-12-03T18:00:02.125000Z");
    EXPECT_EQ(renewal["spec"]["acquireTime"], "2026-12-03T18:00:00.125000Z");
    EXPECT_EQ(renewal["spec"]["leaseTransitions"], 0);
    a.elector->stop();
    http.push_reply(200, http.calls[2].body);
    fakes::drain(ioc);
}

TEST(scripted_election, a_failed_get_is_counted_and_nothing_is_written) {
    fakes::manual_time clock{fakes::at("2026-12-03T18:00:00Z")};
    boost::asio::io_context ioc;
    fakes::scripted_http http;
    http.push_reply(
        403, R"({"kind":"Status","message":"leases.coordination.k8s.io \"runbookd\" is forbidden"})"
    );
    http.push_reply(503, "");
    replica a{ioc, http, "a"};
    a.elector->start();
    fakes::drain(ioc);
    clock.advance(2s);
    fakes::drain(ioc);
    ASSERT_EQ(http.calls.size(), 2u);
    EXPECT_EQ(http.calls[1].method, "GET");
    EXPECT_FALSE(a.elector->is_leader());
    EXPECT_EQ(metric(a.registry, "runbookd_leader_lease_failures_total", "forbidden"), 1);
    EXPECT_EQ(metric(a.registry, "runbookd_leader_lease_failures_total", "server_error"), 1);
    EXPECT_EQ(
        metric(a.registry, "runbookd_leader_lease_failures_total", "conflict"), 0
    );  // at zero from the start
    EXPECT_TRUE(a.logged("is forbidden"));
    a.elector->stop();
    fakes::drain(ioc);
}

// --- two replicas on one API server ------------------------------------------------------------

TEST_F(election, a_replica_waits_while_another_holder_renews) {
    api.write(held_by("b", 4, "2026-12-03T18:00:00.000000Z"));
    auto a = make("a");
    a->elector->start();
    fakes::drain(ioc);
    // b renews every 2 s for a minute: a never takes over, and sees b as the leader.
    for (int i = 1; i <= 30; ++i) {
        run_for(2s);
        api.write(held_by("b", 4, format_micro_time(clock.now())));
    }
    EXPECT_FALSE(a->elector->is_leader());
    EXPECT_TRUE(a->tokens.empty());
    EXPECT_EQ(a->elector->leader(), "b");
    EXPECT_EQ(api.spec()["holderIdentity"], "b");
    for (const auto& c : api.calls) {
        EXPECT_EQ(c.method, "GET");  // nothing written while the lease is b's
    }
}

TEST_F(election, a_lease_not_renewed_is_taken_over_lease_duration_after_it_was_seen_to_change) {
    // b's renewTime is an hour in the future (b's clock is skewed): expiry is measured from
    // when a saw the record change, never from renewTime.
    api.write(held_by("b", 4, "2026-12-03T19:00:00.000000Z"));
    auto a = make("a");
    a->elector->start();
    fakes::drain(ioc);  // a sees the record at t = 0
    run_for(14900ms);
    EXPECT_FALSE(a->elector->is_leader());
    // Attempts at t = 14 s and 16 s: the lease expires at 15 s by a's clock.
    run_for(1200ms);
    EXPECT_TRUE(a->elector->is_leader());
    const auto spec = api.spec();
    EXPECT_EQ(spec["holderIdentity"], "a");
    EXPECT_EQ(spec["leaseTransitions"], 5);
    EXPECT_EQ(spec["acquireTime"], "2026-12-03T18:00:16.000000Z");
    EXPECT_EQ(a->tokens, std::vector<std::uint64_t>{5});
    EXPECT_EQ(a->elector->fencing_token(), 5u);
}

TEST_F(election, a_lease_renewed_in_the_past_by_renew_time_is_still_waited_for) {
    // renewTime a day old (a's clock ahead of b's): still valid for 15 s from a's first look.
    api.write(held_by("b", 1, "2026-12-02T18:00:00.000000Z"));
    auto a = make("a");
    a->elector->start();
    fakes::drain(ioc);  // a sees the record at t = 0
    run_for(14s);       // the attempt at 14 s finds it valid until 15 s
    EXPECT_FALSE(a->elector->is_leader());
    run_for(2s);
    EXPECT_TRUE(a->elector->is_leader());
}

TEST_F(election, a_lease_with_no_holder_is_taken_at_once) {
    api.write(json{{"holderIdentity", ""}, {"leaseDurationSeconds", 1}, {"leaseTransitions", 3}});
    auto a = make("a");
    a->elector->start();
    fakes::drain(ioc);
    EXPECT_TRUE(a->elector->is_leader());
    EXPECT_EQ(a->tokens, std::vector<std::uint64_t>{4});
}

TEST_F(election, a_conflict_on_renew_with_another_holder_steps_down_at_once) {
    auto a = make("a");
    a->elector->start();
    fakes::drain(ioc);
    ASSERT_TRUE(a->elector->is_leader());
    // b wrote in between (an operator forced it): a's cached resourceVersion is stale.
    api.write(held_by("b", 1, "2026-12-03T18:00:01.000000Z"));
    run_for(2s);
    EXPECT_FALSE(a->elector->is_leader());
    EXPECT_EQ(a->stopped_at.size(), 1u);
    EXPECT_EQ(metric(a->registry, "runbookd_leader_lease_failures_total", "conflict"), 1);
    EXPECT_EQ(metric(a->registry, "runbookd_leader"), 0);
    EXPECT_EQ(metric(a->registry, "runbookd_leader_transitions_total", "stopped"), 1);
    EXPECT_TRUE(a->logged("another replica holds the lease"));
    EXPECT_EQ(api.spec()["holderIdentity"], "b");  // and a did not write over it
}

TEST_F(election, a_conflict_on_renew_with_the_same_holder_reads_and_renews) {
    auto a = make("a");
    a->elector->start();
    fakes::drain(ioc);
    ASSERT_TRUE(a->elector->is_leader());
    api.touch();  // someone labelled the Lease: a new resourceVersion, the same spec
    run_for(2s);
    EXPECT_TRUE(a->elector->is_leader());
    EXPECT_TRUE(a->stopped_at.empty());
    EXPECT_EQ(metric(a->registry, "runbookd_leader_lease_failures_total", "conflict"), 1);
    EXPECT_EQ(api.spec()["renewTime"], "2026-12-03T18:00:02.000000Z");
    EXPECT_EQ(api.spec()["leaseTransitions"], 0);
}

TEST_F(election, two_replicas_race_for_an_absent_lease_and_one_wins) {
    auto a = make("a");
    auto b = make("b");
    a->elector->start();
    b->elector->start();
    run_for(30s);
    EXPECT_NE(a->elector->is_leader(), b->elector->is_leader());
    EXPECT_EQ(a->tokens.size() + b->tokens.size(), 1u);
}

/// The partition case: a leads, b follows; a's requests fail (or hang) from `cut` on.
void partition_test(election& t, bool hang) {
    auto [a, b] = t.leader_and_follower(10s);

    t.run_for(500ms);  // between two renewals
    (hang ? t.api.hung : t.api.partitioned).insert("Bearer token-a");
    const auto last_renewal = t.api.last_write.at("Bearer token-a");
    t.run_for(30s);

    ASSERT_EQ(a->stopped_at.size(), 1u);
    ASSERT_EQ(b->started_at.size(), 1u);
    // a stopped within renew_deadline of its last renewal, and before b started.
    EXPECT_LE(a->stopped_at[0] - last_renewal, 10s);
    EXPECT_LT(a->stopped_at[0], b->started_at[0]);
    // b waited the lease out: lease_duration after it last saw a's renewal.
    EXPECT_GE(b->started_at[0] - last_renewal, 15s);
    EXPECT_EQ(b->tokens, std::vector<std::uint64_t>{1});
    EXPECT_FALSE(a->elector->is_leader());
    EXPECT_TRUE(b->elector->is_leader());
    EXPECT_TRUE(a->logged("renew deadline passed"));
    t.api.partitioned.clear();
    t.api.hung.clear();
}

TEST_F(election, a_partitioned_leader_steps_down_before_the_follower_takes_over) {
    partition_test(*this, false);
    EXPECT_GT(metric(replicas[0]->registry, "runbookd_leader_lease_failures_total", "transport"), 0);
}

TEST_F(election, a_leader_whose_requests_hang_steps_down_on_time) {
    partition_test(*this, true);
}

TEST_F(election, leader_transitions_are_counted_and_each_term_has_a_larger_fencing_token) {
    auto [a, b] = leader_and_follower();
    api.partitioned.insert("Bearer token-a");
    run_for(20s);  // b takes over
    api.partitioned.clear();
    run_for(4s);  // a sees b, follows
    api.partitioned.insert("Bearer token-b");
    run_for(20s);  // a takes it back
    api.partitioned.clear();
    run_for(4s);
    EXPECT_EQ(a->tokens, (std::vector<std::uint64_t>{0, 2}));
    EXPECT_EQ(b->tokens, std::vector<std::uint64_t>{1});
    EXPECT_TRUE(a->elector->is_leader());
    EXPECT_FALSE(b->elector->is_leader());
    EXPECT_EQ(api.spec()["leaseTransitions"], 2);
    EXPECT_EQ(metric(a->registry, "runbookd_leader_transitions_total", "started"), 2);
    EXPECT_EQ(metric(a->registry, "runbookd_leader_transitions_total", "stopped"), 1);
    EXPECT_EQ(metric(b->registry, "runbookd_leader_transitions_total", "started"), 1);
    EXPECT_EQ(metric(b->registry, "runbookd_leader_transitions_total", "stopped"), 1);
    EXPECT_EQ(metric(b->registry, "runbookd_leader_lease_transitions"), 2);
}

TEST_F(election, a_replica_finding_its_own_name_on_a_lease_it_does_not_lead_starts_a_new_term) {
    // A restarted pod with the same name: the lease still names it.
    api.write(held_by("a", 6, "2026-12-03T17:59:59.000000Z"));
    auto a = make("a");
    a->elector->start();
    fakes::drain(ioc);
    EXPECT_TRUE(a->elector->is_leader());
    EXPECT_EQ(a->tokens, std::vector<std::uint64_t>{7});
    EXPECT_EQ(api.spec()["acquireTime"], "2026-12-03T18:00:00.000000Z");
}

TEST_F(election, stop_releases_the_lease_and_the_follower_takes_it_at_its_next_retry) {
    auto [a, b] = leader_and_follower(5s);
    bool done = false;
    a->elector->stop([&] { done = true; });
    EXPECT_FALSE(a->elector->is_leader());  // at once, before the release is written
    EXPECT_EQ(a->stopped_at.size(), 1u);
    fakes::drain(ioc);
    EXPECT_TRUE(done);
    EXPECT_EQ(api.spec()["holderIdentity"], "");
    EXPECT_EQ(api.spec()["leaseDurationSeconds"], 1);
    EXPECT_EQ(api.spec()["leaseTransitions"], 0);
    EXPECT_TRUE(a->logged("lease released"));
    run_for(2s);
    EXPECT_TRUE(b->elector->is_leader());
    EXPECT_EQ(b->tokens, std::vector<std::uint64_t>{1});
}

TEST_F(election, without_release_a_stopped_leader_leaves_the_lease_to_expire) {
    lease_settings s;
    s.release_on_stop = false;
    auto a = make("a", s);
    a->elector->start();
    fakes::drain(ioc);
    ASSERT_TRUE(a->elector->is_leader());
    a->elector->stop();
    fakes::drain(ioc);
    EXPECT_FALSE(a->elector->is_leader());
    EXPECT_EQ(api.spec()["holderIdentity"], "a");
}

}  // namespace
}  // namespace runbookd::cluster
