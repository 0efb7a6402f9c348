// The shared poller under manual time: cadence, backoff, 429 waits, health over all jobs.
#include "sources/poller.hpp"

#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <deque>

namespace runbookd::sources {
namespace {

using namespace std::chrono_literals;

/// A job whose outcomes come from a queue (empty: a success with one signal); it records
/// when it ran.
struct scripted_job {
    std::deque<poll_outcome> script;
    std::vector<wall_time> runs;

    poll_job job(std::string name, std::chrono::milliseconds interval) {
        return {std::move(name), interval, [this]() -> boost::asio::awaitable<poll_outcome> {
                    runs.push_back(loop::wall_now());
                    if (script.empty()) {
                        signal s;
                        s.set_kind("db.connections");
                        s.subject = "ran";
                        co_return poll_result{{s}};
                    }
                    auto next = std::move(script.front());
                    script.pop_front();
                    co_return next;
                }};
    }
};

poll_failure failure_of(std::string why, std::optional<std::chrono::milliseconds> after = std::nullopt) {
    return poll_failure{make_failure(errc::upstream_unavailable, std::move(why)), after, {}};
}

struct harness {
    fakes::manual_time clock{fakes::at("2026-03-05T16:00:00Z")};
    boost::asio::io_context ioc;
    prometheus::Registry registry;
    std::vector<signal> signals;
    std::vector<source_status> statuses;
    std::vector<std::string> order;  ///< "signal" / "status", as they came

    std::unique_ptr<poller> make(std::vector<poll_job> jobs) {
        return std::make_unique<poller>(
            ioc.get_executor(),
            "cloudsql",
            std::move(jobs),
            [this](signal s) {
                order.push_back("signal");
                signals.push_back(std::move(s));
            },
            [this](source_status s) {
                order.push_back("status");
                statuses.push_back(std::move(s));
            },
            log::discard(),
            registry,
            net::backoff{1s, 60s}
        );
    }

    /// Lets `seconds` pass one second at a time, running what falls due.
    void run_for(int seconds) {
        for (int i = 0; i < seconds; ++i) {
            clock.advance(std::chrono::seconds{1});
            fakes::drain(ioc);
        }
    }

    double seconds_since_start(wall_time t) const {
        return std::chrono::duration<double>(t - fakes::at("2026-03-05T16:00:00Z")).count();
    }
};

TEST(Poller, RunsAtStartThenEveryIntervalWithTheFirstWaitJittered) {
    harness h;
    scripted_job j;
    auto p = h.make({j.job("monitoring", 60s)});
    p->start();
    fakes::drain(h.ioc);
    ASSERT_EQ(j.runs.size(), 1u);
    EXPECT_EQ(h.seconds_since_start(j.runs[0]), 0);
    for (int i = 0; i < 59; ++i) {
        h.clock.advance(1s);
        fakes::drain(h.ioc);
    }
    EXPECT_EQ(j.runs.size(), 1u);
    for (int i = 0; i < 7; ++i) {
        h.clock.advance(1s);
        fakes::drain(h.ioc);
    }
    EXPECT_EQ(j.runs.size(), 2u) << "the first wait is 60 to 66 s";
    for (int i = 0; i < 60; ++i) {
        h.clock.advance(1s);
        fakes::drain(h.ioc);
    }
    ASSERT_EQ(j.runs.size(), 3u);
    EXPECT_NEAR(h.seconds_since_start(j.runs[2]) - h.seconds_since_start(j.runs[1]), 60, 1);
    EXPECT_EQ(h.signals.size(), 3u);
    p->stop();
    fakes::drain(h.ioc);
}

TEST(Poller, HealthWaitsForEveryJobThenFollowsTheirLastRuns) {
    harness h;
    scripted_job monitoring;
    scripted_job instance;
    instance.script.push_back(poll_result{});
    instance.script.push_back(failure_of("cloud sql admin: 403 PERMISSION_DENIED: no"));
    auto p = h.make({monitoring.job("monitoring", 60s), instance.job("instance", 10s)});
    p->start();
    ASSERT_GE(h.statuses.size(), 1u);
    EXPECT_EQ(h.statuses[0].state, source_state::failing);
    EXPECT_EQ(h.statuses[0].error, "waiting for the first instance poll");
    fakes::drain(h.ioc);
    ASSERT_EQ(h.statuses.back().state, source_state::healthy);
    for (int i = 0; i < 12 && instance.runs.size() < 2; ++i) {
        h.clock.advance(1s);
        fakes::drain(h.ioc);
    }
    ASSERT_EQ(h.statuses.back().state, source_state::failing);
    EXPECT_EQ(h.statuses.back().error, "instance: cloud sql admin: 403 PERMISSION_DENIED: no");
    const std::size_t reports = h.statuses.size();
    // Retried after a backoff of 0.5 to 1 s, well before the interval; it succeeds.
    h.clock.advance(1s);
    fakes::drain(h.ioc);
    EXPECT_EQ(instance.runs.size(), 3u);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
    EXPECT_EQ(h.statuses.size(), reports + 1) << "only changes are reported";
    p->stop();
    fakes::drain(h.ioc);
}

TEST(Poller, BackoffGrowsButNeverPastTheIntervalAnd429WaitsAsTold) {
    harness h;
    scripted_job j;
    for (int i = 0; i < 8; ++i) {
        j.script.push_back(failure_of("down"));
    }
    j.script.push_back(failure_of("429 RESOURCE_EXHAUSTED", 45s));
    j.script.push_back(failure_of("429 RESOURCE_EXHAUSTED", 24h));
    auto p = h.make({j.job("feed", 20s)});
    p->start();
    fakes::drain(h.ioc);
    for (int i = 0; i < 800 && j.runs.size() < 12; ++i) {
        h.clock.advance(500ms);
        fakes::drain(h.ioc);
    }
    ASSERT_EQ(j.runs.size(), 12u);
    std::vector<double> gaps;
    for (std::size_t i = 1; i < j.runs.size(); ++i) {
        gaps.push_back(h.seconds_since_start(j.runs[i]) - h.seconds_since_start(j.runs[i - 1]));
    }
    EXPECT_LE(gaps[0], 1.5);
    EXPECT_GE(gaps[4], 4);  // 16 s cap-free backoff: [8, 16]
    for (std::size_t i = 0; i < 8; ++i) {
        EXPECT_LE(gaps[i], 20.5) << "never later than the interval, gap " << i;
    }
    EXPECT_GE(gaps[8], 45) << "a 429's retry-after is honoured";
    EXPECT_LE(gaps[10], 80.5) << "within reason: at most four intervals";
    p->stop();
    fakes::drain(h.ioc);
}

TEST(Poller, EvidenceOfAFailureComesBeforeTheFailingStatus) {
    harness h;
    scripted_job j;
    signal unreachable;
    unreachable.set_kind("db.unreachable");
    j.script.push_back(poll_failure{
        make_failure(errc::upstream_unavailable, "cannot connect"), {}, {unreachable}});
    auto p = h.make({j.job("activity", 15s)});
    p->start();
    fakes::drain(h.ioc);
    ASSERT_EQ(h.order, (std::vector<std::string>{"status", "signal", "status"}));
    EXPECT_EQ(h.statuses.back().error, "cannot connect");  // one job: no job prefix
    EXPECT_EQ(h.signals[0].kind, "db.unreachable");
    p->stop();
    fakes::drain(h.ioc);
}

TEST(Poller, AJobThatThrowsIsAFailureAndTheLoopGoesOn) {
    harness h;
    int calls = 0;
    poll_job bad{"feed", 10s, [&calls]() -> boost::asio::awaitable<poll_outcome> {
                     if (++calls == 1) {
                         throw std::runtime_error("bug");
                     }
                     co_return poll_result{};
                 }};
    auto p = h.make({std::move(bad)});
    p->start();
    fakes::drain(h.ioc);
    EXPECT_EQ(h.statuses.back().error, "internal error: bug");
    h.clock.advance(2s);
    fakes::drain(h.ioc);
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
    p->stop();
    fakes::drain(h.ioc);
}

TEST(Poller, ASinkThatThrowsMakesTheSourceFailingAndTheLoopGoesOn) {
    harness h;
    scripted_job j;
    int delivered = 0;
    auto p = std::make_unique<poller>(
        h.ioc.get_executor(),
        "postgres",
        std::vector<poll_job>{j.job("activity", 10s)},
        [&](signal) {
            if (++delivered == 1) {
                throw std::runtime_error("engine bug");
            }
        },
        [&](source_status s) { h.statuses.push_back(std::move(s)); },
        log::discard(),
        h.registry
    );
    p->start();
    fakes::drain(h.ioc);
    EXPECT_EQ(h.statuses.back().state, source_state::failing);
    EXPECT_EQ(h.statuses.back().error, "internal error: engine bug");
    h.clock.advance(2s);
    fakes::drain(h.ioc);
    EXPECT_EQ(j.runs.size(), 2u);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
    p->stop();
    fakes::drain(h.ioc);
}

TEST(Poller, StopEndsThePendingWait) {
    harness h;
    scripted_job j;
    auto p = h.make({j.job("feed", 300s)});
    p->start();
    fakes::drain(h.ioc);
    p->stop();
    fakes::drain(h.ioc);
    h.clock.advance(600s);
    fakes::drain(h.ioc);
    EXPECT_EQ(j.runs.size(), 1u);
    EXPECT_TRUE(h.ioc.stopped() || h.ioc.poll() == 0);
}

// --- page-time refresh ----------------------------------------------------------------------

/// A job that takes `takes` of (manual) time to run, and records when each run started.
poll_job slow_job(
    std::string name,
    std::chrono::milliseconds interval,
    std::chrono::milliseconds takes,
    std::vector<wall_time>& runs
) {
    return {std::move(name), interval, [&runs, takes]() -> boost::asio::awaitable<poll_outcome> {
                runs.push_back(loop::wall_now());
                loop::timer t{co_await boost::asio::this_coro::executor};
                t.expires_after(takes);
                co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
                co_return poll_result{};
            }};
}

TEST(PollerRefresh, RunsEveryJobNowAndAnswersWhenAllHaveRunLeavingTheCadenceAlone) {
    harness h;
    scripted_job monitoring;
    std::vector<wall_time> instance_runs;
    auto p = h.make({monitoring.job("monitoring", 60s), slow_job("instance", 60s, 2s, instance_runs)});
    p->start();
    h.run_for(3);
    ASSERT_EQ(monitoring.runs.size(), 1u);
    ASSERT_EQ(instance_runs.size(), 1u);

    h.clock.advance(7s);  // 10 s after start, both jobs waiting
    fakes::drain(h.ioc);
    int answered = 0;
    p->refresh([&] { ++answered; });
    fakes::drain(h.ioc);
    EXPECT_EQ(monitoring.runs.size(), 2u);
    EXPECT_EQ(h.seconds_since_start(monitoring.runs[1]), 10);
    ASSERT_EQ(instance_runs.size(), 2u);
    EXPECT_EQ(answered, 0) << "the instance job's run takes 2 s";
    h.run_for(1);
    EXPECT_EQ(answered, 0);
    h.run_for(1);
    EXPECT_EQ(answered, 1);
    EXPECT_EQ(h.signals.size(), 2u) << "the refresh's findings are handed over like a poll's";

    // The periodic runs come when they would have without the refresh: 60 to 66 s after the
    // first run ended, not 60 s after the refresh.
    h.run_for(48);
    EXPECT_EQ(monitoring.runs.size(), 2u) << "60 s after start";
    h.run_for(7);
    EXPECT_EQ(monitoring.runs.size(), 3u) << "67 s after start";
    EXPECT_EQ(answered, 1);
    p->stop();
    fakes::drain(h.ioc);
}

TEST(PollerRefresh, ARunInFlightIsFollowedByAnotherThatStartsAfterTheRequest) {
    harness h;
    std::vector<wall_time> runs;
    auto p = h.make({slow_job("activity", 60s, 4s, runs)});
    p->start();
    fakes::drain(h.ioc);
    h.run_for(1);
    ASSERT_EQ(runs.size(), 1u);
    int answered = 0;
    p->refresh([&] { ++answered; });  // the first run is 1 s in, 3 s to go
    h.run_for(3);
    ASSERT_EQ(runs.size(), 2u) << "one more run, right after the one in flight";
    EXPECT_EQ(h.seconds_since_start(runs[1]), 4);
    EXPECT_EQ(answered, 0) << "the run in flight may have read before the request";
    h.run_for(4);
    EXPECT_EQ(answered, 1);
    EXPECT_EQ(runs.size(), 2u) << "jobs never run concurrently with themselves";
    p->stop();
    fakes::drain(h.ioc);
}

TEST(PollerRefresh, AFailedRefreshTurnsTheSourceFailingButKeepsTheSchedule) {
    harness h;
    scripted_job j;
    j.script.push_back(poll_result{});
    j.script.push_back(failure_of("connection refused"));
    auto p = h.make({j.job("feed", 30s)});
    p->start();
    fakes::drain(h.ioc);
    h.clock.advance(5s);
    fakes::drain(h.ioc);
    int answered = 0;
    p->refresh([&] { ++answered; });
    fakes::drain(h.ioc);
    EXPECT_EQ(answered, 1) << "a failure is an answer too";
    EXPECT_EQ(h.statuses.back().state, source_state::failing);
    EXPECT_EQ(h.statuses.back().error, "connection refused");
    EXPECT_FALSE(h.statuses.back().pending);
    // No backoff retry within seconds: the next run is the periodic one, 30 to 33 s after start.
    h.run_for(24);
    EXPECT_EQ(j.runs.size(), 2u);
    h.run_for(4);
    EXPECT_EQ(j.runs.size(), 3u);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
    p->stop();
    fakes::drain(h.ioc);
}

TEST(PollerRefresh, BeforeStartAndAfterStopItAnswersAtOnceAndStopAnswersWhatIsQueued) {
    harness h;
    std::vector<wall_time> runs;
    auto p = h.make({slow_job("feed", 60s, 10s, runs)});
    int answered = 0;
    p->refresh([&] { ++answered; });
    EXPECT_EQ(answered, 1);
    p->start();
    fakes::drain(h.ioc);
    p->refresh([&] { ++answered; });  // queued behind the first run
    p->stop();
    EXPECT_EQ(answered, 2);
    p->refresh([&] { ++answered; });
    EXPECT_EQ(answered, 3);
    h.clock.advance(10s);
    fakes::drain(h.ioc);
    EXPECT_EQ(answered, 3);
    EXPECT_EQ(runs.size(), 1u);
}

TEST(PollerRefresh, TheFirstReportIsPendingUntilEveryJobHasRunOrOneFailed) {
    harness h;
    scripted_job a;
    std::vector<wall_time> b_runs;
    a.script.push_back(failure_of("403 PERMISSION_DENIED"));
    auto p = h.make({slow_job("instance", 60s, 5s, b_runs), a.job("monitoring", 60s)});
    p->start();
    ASSERT_EQ(h.statuses.size(), 1u);
    EXPECT_TRUE(h.statuses[0].pending);
    EXPECT_EQ(h.statuses[0].error, "waiting for the first monitoring poll");
    fakes::drain(h.ioc);
    ASSERT_EQ(h.statuses.size(), 2u);
    EXPECT_FALSE(h.statuses[1].pending) << "a reason it cannot look is an answer";
    EXPECT_EQ(h.statuses[1].error, "monitoring: 403 PERMISSION_DENIED");
    p->stop();
    fakes::drain(h.ioc);
}

}  // namespace
}  // namespace runbookd::sources
