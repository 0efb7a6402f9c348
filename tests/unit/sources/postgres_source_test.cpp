// The Postgres source's loop with a scripted monitor, under manual time: snapshots become
// signals, an unreachable database is evidence and a failing source, and it recovers.
#include "core/engine.hpp"
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "sources/postgres/source.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <stdexcept>
#include <thread>

namespace runbookd::sources::postgres {
namespace {

using namespace std::chrono_literals;

TEST(PostgresSource, SnapshotsAreSignalsAndAnUnreachableDatabaseIsEvidenceAndFailure) {
    fakes::manual_time clock{fakes::at("2026-03-05T16:00:00Z")};
    boost::asio::io_context ioc;
    prometheus::Registry registry;
    std::deque<monitor_outcome> script;
    snapshot busy;
    session s;
    s.pid = 4123;
    s.state = "active";
    s.query_age = 400;
    s.query = "ALTER TABLE events ADD COLUMN x int";
    busy.sessions = {s};
    busy.client_connections = 12;
    busy.max_connections = 100;
    script.push_back(busy);
    script.push_back(monitor_failure{
        make_failure(errc::upstream_unavailable, "cannot connect: refused"), true});
    script.push_back(monitor_failure{
        make_failure(errc::upstream_rejected, "query failed: canceling statement"), false});
    script.push_back(snapshot{});
    int polls = 0;
    std::vector<signal> signals;
    std::vector<source_status> statuses;
    source_settings settings;
    settings.activity.instance = "dark-west";
    settings.interval = 15s;
    // The worker is the loop itself here: the poll runs inline, in order.
    monitor_poller src{
        ioc.get_executor(),
        ioc.get_executor(),
        [&] {
            ++polls;
            auto next = std::move(script.front());
            script.pop_front();
            return next;
        },
        settings,
        [&](signal sig) { signals.push_back(std::move(sig)); },
        [&](source_status st) { statuses.push_back(std::move(st)); },
        log::discard(),
        registry};
    src.start();
    fakes::drain(ioc);
    ASSERT_EQ(polls, 1);
    ASSERT_EQ(signals.size(), 2u);
    EXPECT_EQ(signals[0].kind, "db.long_query");
    EXPECT_EQ(*signals[0].find("is_ddl"), "true");
    EXPECT_EQ(signals[1].kind, "db.connections");
    EXPECT_EQ(statuses.back().state, source_state::healthy);

    clock.advance(17s);
    fakes::drain(ioc);
    ASSERT_EQ(polls, 2);
    ASSERT_EQ(signals.size(), 3u);
    EXPECT_EQ(signals[2].kind, "db.unreachable");
    EXPECT_EQ(*signals[2].find("error"), "cannot connect: refused");
    EXPECT_EQ(statuses.back().state, source_state::failing);
    EXPECT_EQ(statuses.back().error, "cannot connect: refused");

    clock.advance(1s);  // retried after a backoff, not a whole interval
    fakes::drain(ioc);
    ASSERT_EQ(polls, 3);
    EXPECT_EQ(signals.size(), 3u) << "a failed query is not db.unreachable";
    EXPECT_EQ(statuses.back().error, "query failed: canceling statement");

    clock.advance(2s);
    fakes::drain(ioc);
    ASSERT_EQ(polls, 4);
    EXPECT_EQ(statuses.back().state, source_state::healthy);
    src.stop();
    fakes::drain(ioc);
}

/// Drains the loop until `pred` holds, giving a real worker thread up to 5 s to post back.
bool drain_until(boost::asio::io_context& ioc, const std::function<bool()>& pred) {
    for (int i = 0; i < 5000 && !pred(); ++i) {
        fakes::drain(ioc);
        std::this_thread::sleep_for(1ms);
    }
    fakes::drain(ioc);
    return pred();
}

TEST(PostgresSource, ADatabaseThatStopsAnsweringFailsThePollAtItsDeadlineWithoutWaitingForTcp) {
    fakes::manual_time clock{fakes::at("2026-03-05T16:00:00Z")};
    boost::asio::io_context ioc;
    boost::asio::thread_pool worker{1};
    prometheus::Registry registry;
    std::promise<void> answer;
    std::shared_future<void> answered = answer.get_future().share();
    std::atomic<int> polls = 0;
    std::vector<signal> signals;
    std::vector<source_status> statuses;
    source_settings settings;
    settings.activity.instance = "dark-west";
    settings.interval = 15s;
    settings.deadline = 12s;
    monitor_poller src{
        ioc.get_executor(),
        worker.get_executor(),
        [&]() -> monitor_outcome {
            if (++polls == 1) {
                answered.wait();  // the first poll hangs, as on a silent network
            }
            return snapshot{};
        },
        settings,
        [&](signal sig) { signals.push_back(std::move(sig)); },
        [&](source_status st) { statuses.push_back(std::move(st)); },
        log::discard(),
        registry};
    src.start();
    ASSERT_TRUE(drain_until(ioc, [&] { return polls == 1; }));
    clock.advance(12s);
    fakes::drain(ioc);
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(signals[0].kind, "db.unreachable");
    EXPECT_EQ(*signals[0].find("error"), "no answer from the database within 12s");
    EXPECT_EQ(statuses.back().error, "no answer from the database within 12s");
    // The retry finds the worker still busy: it fails at once, without queueing a poll.
    clock.advance(1s);
    fakes::drain(ioc);
    EXPECT_EQ(polls, 1);
    EXPECT_EQ(statuses.back().error, "the previous poll has not finished: the database does not answer");
    // The database answers at last: the late outcome is dropped, the next poll runs.
    answer.set_value();
    ASSERT_TRUE(drain_until(ioc, [&] {
        clock.advance(1s);
        return statuses.back().state == source_state::healthy;
    }));
    EXPECT_EQ(polls, 2);
    src.stop();
    fakes::drain(ioc);
    worker.join();
}

TEST(PostgresSource, StopEndsAPollInFlightAtOnce) {
    fakes::manual_time clock{fakes::at("2026-03-05T16:00:00Z")};
    boost::asio::io_context ioc;
    boost::asio::thread_pool worker{1};
    prometheus::Registry registry;
    std::promise<void> answer;
    std::shared_future<void> answered = answer.get_future().share();
    std::atomic<bool> polling = false;
    monitor_poller src{
        ioc.get_executor(),
        worker.get_executor(),
        [&]() -> monitor_outcome {
            polling = true;
            answered.wait();
            return snapshot{};
        },
        source_settings{},
        [](signal) {},
        [](source_status) {},
        log::discard(),
        registry};
    src.start();
    ASSERT_TRUE(drain_until(ioc, [&] { return polling.load(); }));
    src.stop();
    fakes::drain(ioc);
    EXPECT_TRUE(ioc.poll() == 0) << "nothing left on the loop: shutdown does not wait for the database";
    answer.set_value();
    worker.join();
}

/// A context whose redact hook and status sink record what they are given.
struct made {
    boost::asio::io_context ioc;
    prometheus::Registry registry;
    std::vector<std::string> secrets;
    std::vector<source_status> statuses;
    context cx{
        ioc.get_executor(),
        log::discard(),
        registry,
        sinks{[](signal) {}, [this](source_status st) { statuses.push_back(std::move(st)); }},
        [this](std::string s) { secrets.push_back(std::move(s)); }};
};

config with_dsn(std::string dsn) {
    config c;
    c.dsn = secret<std::string>{std::move(dsn)};
    c.instance = "dark-west";
    return c;
}

const std::map<std::string, service_info, std::less<>> no_services;

TEST(PostgresMake, ServicesNamingTheirSessionsAreReadInIdOrder) {
    std::map<std::string, service_info, std::less<>> services;
    services["PWEB"] = service_info{"Web", "", {}, {}, {}, {"web-*"}, {}};
    services["PAPI"] = service_info{"API", "", {}, {}, {}, {}, {"api"}};
    services["PDOC"] = service_info{"Docs", "", {}, {}, {}, {}, {}};  // no sessions of its own
    const auto got = sessions_of(services);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].id, "PAPI");
    EXPECT_EQ(got[0].users, std::vector<std::string>{"api"});
    EXPECT_EQ(got[1].id, "PWEB");
    EXPECT_EQ(got[1].applications, std::vector<std::string>{"web-*"});
}

TEST(PostgresMake, OffWithoutADsn) {
    made m;
    EXPECT_EQ(make(config{}, no_services, m.cx), nullptr);
    EXPECT_TRUE(m.secrets.empty());
}

TEST(PostgresMake, AnUnreadableDsnIsAStartUpErrorThatDoesNotRepeatIt) {
    made m;
    try {
        make(with_dsn("host=x password=hunter2 nonsense"), no_services, m.cx);
        ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(
            e.what(),
            "postgres.dsn: not a libpq connection string (keyword=value pairs, or a postgresql:// URI)"
        );
    }
}

TEST(PostgresMake, TheDsnAndALongPasswordAreRedactedAndDescribeNamesNeither) {
    made m;
    const std::string dsn = "postgresql://monitor:s3cret-long@db.internal:6432/dark";
    const auto src = make(with_dsn(dsn), no_services, m.cx);
    ASSERT_NE(src, nullptr);
    EXPECT_EQ(m.secrets, (std::vector<std::string>{"s3cret-long", dsn}));
    EXPECT_EQ(src->describe(), "dark on db.internal:6432 as dark-west");
    // A password under 8 characters is likely a common word: only the whole DSN is redacted.
    made short_password;
    const std::string weak = "postgresql://monitor:pg@db.internal:6432/dark";
    ASSERT_NE(make(with_dsn(weak), no_services, short_password.cx), nullptr);
    EXPECT_EQ(short_password.secrets, std::vector<std::string>{weak});
}

TEST(PostgresMake, ARefusedConnectionFailsTheSourceOnItsOwnThreadAndStopEndsIt) {
    made m;
    // Nothing listens on port 1: libpq's connect is refused at once, on the source's worker.
    const auto src =
        make(with_dsn("host=127.0.0.1 port=1 dbname=dark user=monitor sslmode=disable"), no_services, m.cx);
    ASSERT_NE(src, nullptr);
    src->start();
    // Failing from the start ("waiting for the first activity poll"), then for the database's reason.
    ASSERT_TRUE(fakes::run_until(
        m.ioc,
        [&] { return !m.statuses.empty() && m.statuses.back().error.starts_with("cannot connect: "); },
        5s
    ));
    EXPECT_EQ(m.statuses.back().state, source_state::failing);
    src->stop();
    m.ioc.restart();
    m.ioc.run_for(5s);
    EXPECT_TRUE(m.ioc.stopped()) << "no wait outlives stop(); the worker is joined by the destructor";
}

}  // namespace
}  // namespace runbookd::sources::postgres
