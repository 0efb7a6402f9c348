#include "sources/poller.hpp"

#include "loop/clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <random>
#include <utility>

namespace runbookd::sources {
namespace {
namespace asio = boost::asio;
}  // namespace

struct poller::impl : std::enable_shared_from_this<impl> {
    impl(
        asio::any_io_executor ex,
        std::string source_name,
        std::vector<poll_job> job_list,
        signal_sink signals,
        status_sink status,
        std::function<void(incident_event&&)> events,
        log::logger logger,
        prometheus::Registry& registry,
        net::backoff back
    )
        : executor(std::move(ex)),
          source(std::move(source_name)),
          jobs(std::move(job_list)),
          on_signal(std::move(signals)),
          on_status(std::move(status)),
          on_event(std::move(events)),
          log(std::move(logger)),
          backoff(back),
          rng(std::random_device{}()),
          polls(prometheus::BuildCounter()
                    .Name("runbookd_source_polls_total")
                    .Help("Runs of each polling job, by outcome (ok or error)")
                    .Register(registry)),
          last_success(prometheus::BuildGauge()
                           .Name("runbookd_source_last_success_timestamp_seconds")
                           .Help("Unix time of each polling job's last successful run (0: never)")
                           .Register(registry)),
          cap(registry, log, source),
          errors(jobs.size()),
          succeeded(jobs.size(), false),
          refreshes(jobs.size()),
          sleeping(jobs.size(), nullptr) {
        for (const auto& j : jobs) {
            polls.Add({{"source", source}, {"job", j.name}, {"outcome", "ok"}});
            polls.Add({{"source", source}, {"job", j.name}, {"outcome", "error"}});
            last_success.Add({{"source", source}, {"job", j.name}});
        }
    }

    asio::any_io_executor executor;
    std::string source;
    std::vector<poll_job> jobs;
    signal_sink on_signal;
    status_sink on_status;
    std::function<void(incident_event&&)> on_event;  ///< may be empty: a source without events
    log::logger log;
    net::backoff backoff;
    std::mt19937_64 rng;
    prometheus::Family<prometheus::Counter>& polls;
    prometheus::Family<prometheus::Gauge>& last_success;
    net::retry_after_cap cap;         ///< a Retry-After past net::max_retry_after: cut, counted, logged
    std::vector<std::string> errors;  ///< per job: its last run's error, "" when it succeeded
    std::vector<bool> succeeded;      ///< per job: it has succeeded at least once
    std::optional<source_status> reported;
    std::vector<loop::timer*> waits;
    /// Per job: refresh requests waiting for a run that starts after they were made.
    std::vector<std::vector<std::function<void()>>> refreshes;
    std::vector<loop::timer*> sleeping;  ///< per job: its wait, while it waits
    bool started = false;
    bool stopping = false;

    /// Sleeps until `until`, a refresh request for job `index`, or stop.
    asio::awaitable<void> rest_until(std::size_t index, loop::steady_clock::time_point until) {
        loop::timer t{executor};
        waits.push_back(&t);
        sleeping[index] = &t;
        t.expires_at(until);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        sleeping[index] = nullptr;
        waits.erase(std::find(waits.begin(), waits.end(), &t));
    }

    void report() {
        source_status s;
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            if (!errors[i].empty()) {
                s.state = source_state::failing;
                s.error = jobs.size() == 1 ? errors[i] : jobs[i].name + ": " + errors[i];
                s.pending = false;
                break;
            }
            if (!succeeded[i]) {
                s.state = source_state::failing;
                s.error = "waiting for the first " + jobs[i].name + " poll";
                s.pending = true;
            }
        }
        if (reported && reported->state == s.state && reported->error == s.error) {
            return;
        }
        s.since = loop::wall_now();
        reported = s;
        on_status(std::move(s));
    }

    /// What one outcome means: metrics, signals, the job's error and the wait before the
    /// next run. `failures` counts the job's failures in a row.
    std::chrono::milliseconds settle(std::size_t index, poll_outcome& outcome, int& failures, bool first) {
        const poll_job& job = jobs[index];
        std::chrono::milliseconds next = job.interval;
        if (outcome) {
            polls.Add({{"source", source}, {"job", job.name}, {"outcome", "ok"}}).Increment();
            last_success.Add({{"source", source}, {"job", job.name}})
                .Set(static_cast<double>(
                    std::chrono::duration_cast<std::chrono::seconds>(loop::wall_now().time_since_epoch())
                        .count()
                ));
            if (!errors[index].empty()) {
                log.info("source recovered", {{"source", source}, {"job", job.name}});
            }
            errors[index].clear();
            succeeded[index] = true;
            failures = 0;
            for (auto& s : outcome->signals) {
                on_signal(std::move(s));
            }
            if (on_event) {
                for (auto& e : outcome->events) {
                    on_event(std::move(e));
                }
            }
            if (first) {
                // The first wait is jittered so that jobs of one interval spread out.
                next += std::chrono::milliseconds{
                    std::uniform_int_distribution<long long>{0, job.interval.count() / 10}(rng)};
            }
        } else {
            polls.Add({{"source", source}, {"job", job.name}, {"outcome", "error"}}).Increment();
            for (auto& s : outcome.error().signals) {
                on_signal(std::move(s));
            }
            const std::string why =
                outcome.error().error.detail.empty() ? std::string{"failed"} : outcome.error().error.detail;
            if (errors[index] != why) {
                log.warn("source failing", {{"source", source}, {"job", job.name}, {"error", why}});
            }
            errors[index] = why;
            next = std::min(job.interval, backoff.delay(++failures, rng));
            if (const auto after = cap(outcome.error().retry_after, "retry-after")) {
                // Honoured, within reason: a proxy's Retry-After of a day must not silence a source.
                next = std::max(next, std::min(*after, job.interval * 4));
            }
        }
        report();
        return next;
    }

    /// One run of job `index`: its outcome settled (signals, health, metrics). `failures`
    /// and `first` as for settle(); the wait before the next periodic run is returned.
    static asio::awaitable<std::optional<std::chrono::milliseconds>> run_once(
        std::shared_ptr<impl> self, std::size_t index, int& failures, bool first
    ) {
        const poll_job& job = self->jobs[index];
        try {
            poll_outcome outcome = co_await job.run();
            if (self->stopping) {
                co_return std::nullopt;
            }
            co_return self->settle(index, outcome, failures, first);
        } catch (const std::exception& e) {
            // A bug (in the job, or in what its signals set off), not the upstream's fault:
            // kept visible as a failing source, and the loop carries on.
            self->log.error("poll threw", {{"source", self->source}, {"job", job.name}, {"error", e.what()}});
            self->errors[index] = std::string{"internal error: "} + e.what();
            self->report();
            co_return std::min(job.interval, self->backoff.delay(++failures, self->rng));
        }
    }

    /// One job's loop: a periodic run when it is due, and a run as soon as a refresh asks
    /// for one. A refresh's run settles its outcome like any other but leaves the periodic
    /// schedule and the backoff as they were. `self` keeps the poller's state alive until
    /// the loop ends (it is a parameter, so it is held from the moment the coroutine is made).
    static asio::awaitable<void> run(std::shared_ptr<impl> self, std::size_t index) {
        int failures = 0;
        bool first = true;
        auto due = loop::steady_clock::now();
        while (!self->stopping) {
            if (loop::steady_clock::now() < due && self->refreshes[index].empty()) {
                co_await self->rest_until(index, due);
                continue;
            }
            const bool periodic = loop::steady_clock::now() >= due;
            // Requests made from now on wait for the next run: this one may have read before them.
            auto answering = std::exchange(self->refreshes[index], {});
            int scratch = failures;
            const auto next =
                co_await run_once(self, index, periodic ? failures : scratch, periodic && first);
            if (periodic && next) {
                first = false;
                due = loop::steady_clock::now() + *next;
            }
            for (auto& done : answering) {
                done();
            }
        }
        for (auto& done : std::exchange(self->refreshes[index], {})) {
            done();
        }
    }

    /// Asks every job for a run now; `done` once all of them have run.
    void refresh(refresh_done done) {
        if (!started || stopping || jobs.empty()) {
            done();
            return;
        }
        auto left = std::make_shared<std::size_t>(jobs.size());
        auto all = std::make_shared<refresh_done>(std::move(done));
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            refreshes[i].push_back([left, all] {
                if (--*left == 0) {
                    (*all)();
                }
            });
            if (sleeping[i] != nullptr) {
                sleeping[i]->cancel();
            }
        }
    }
};

poller::poller(
    asio::any_io_executor ex,
    std::string source,
    std::vector<poll_job> jobs,
    signal_sink on_signal,
    status_sink on_status,
    log::logger log,
    prometheus::Registry& registry,
    net::backoff backoff
)
    : impl_(std::make_shared<impl>(
          std::move(ex),
          std::move(source),
          std::move(jobs),
          std::move(on_signal),
          std::move(on_status),
          nullptr,
          std::move(log),
          registry,
          backoff
      )) {}

poller::poller(
    asio::any_io_executor ex,
    std::string source,
    std::vector<poll_job> jobs,
    const sinks& to,
    log::logger log,
    prometheus::Registry& registry,
    net::backoff backoff
)
    : impl_(std::make_shared<impl>(
          std::move(ex),
          std::move(source),
          std::move(jobs),
          to.on_signal,
          to.on_status,
          to.on_event,
          std::move(log),
          registry,
          backoff
      )) {}

poller::~poller() {
    stop();
}

void poller::start() {
    impl_->started = true;
    impl_->report();  // failing until every job has run once: not "clear" before it looked
    for (std::size_t i = 0; i < impl_->jobs.size(); ++i) {
        // Detached: each loop holds the impl alive and ends at its next wake after stop().
        asio::co_spawn(impl_->executor, impl::run(impl_, i), asio::detached);
    }
}

void poller::stop() {
    impl_->stopping = true;
    for (auto* t : impl_->waits) {
        t->cancel();
    }
    // Nothing more will run for the refreshes still queued: they are over.
    for (auto& queued : impl_->refreshes) {
        for (auto& done : std::exchange(queued, {})) {
            done();
        }
    }
}

void poller::refresh(refresh_done done) {
    impl_->refresh(std::move(done));
}

}  // namespace runbookd::sources
