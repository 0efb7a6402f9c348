#pragma once
// The periodic half every polling source shares (Cloud SQL, the status feed, Postgres):
// cadence with jitter, backoff after a failure, the source's health over all its jobs,
// and the poll metrics. A job only fetches and parses; it never sleeps or retries.

#include "core/error.hpp"
#include "core/event.hpp"
#include "core/signal.hpp"
#include "core/source_health.hpp"
#include "log/log.hpp"
#include "net/retry.hpp"
#include "sources/source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace runbookd::sources {

using signal_sink = std::function<void(signal)>;
using status_sink = std::function<void(source_status)>;

/// What one run of a job found. `events` (a pull intake's incident events) are handed over
/// after the signals, in order.
struct poll_result {
    std::vector<signal> signals;
    std::vector<incident_event> events = {};
};
/// Why it failed. `retry_after` (a 429's) lengthens the next wait; `signals` are evidence of
/// the failure itself (db.unreachable), handed over before the source turns failing.
struct poll_failure {
    failure error;
    std::optional<std::chrono::milliseconds> retry_after;
    std::vector<signal> signals;
};
using poll_outcome = boost::system::result<poll_result, poll_failure>;

/// One periodic job of a source ("monitoring", "instance", "activity").
struct poll_job {
    std::string name;
    std::chrono::milliseconds interval{std::chrono::minutes{1}};
    std::function<boost::asio::awaitable<poll_outcome>()> run;
};

/// Runs a source's jobs on the loop executor; not thread-safe. Each job runs at start, then
/// every `interval` (the first wait jittered by up to 10% so that sources do not poll in
/// step); after a failure it runs again after a backoff (never later than `interval`). The
/// source is healthy once every job has succeeded since its last failure, failing while any
/// job's last run failed (with that job's error), and reported only on a change; until every
/// job has run once with none failing, its failing report is `pending`.
class poller {
public:
    poller(
        boost::asio::any_io_executor ex,
        std::string source,
        std::vector<poll_job> jobs,
        signal_sink on_signal,
        status_sink on_status,
        log::logger log,
        prometheus::Registry& registry,
        net::backoff backoff = {std::chrono::seconds{1}, std::chrono::minutes{1}}
    );
    /// The same, with every sink of the source (its incident events too).
    poller(
        boost::asio::any_io_executor ex,
        std::string source,
        std::vector<poll_job> jobs,
        const sinks& to,
        log::logger log,
        prometheus::Registry& registry,
        net::backoff backoff = {std::chrono::seconds{1}, std::chrono::minutes{1}}
    );
    ~poller();
    poller(const poller&) = delete;
    poller& operator=(const poller&) = delete;

    void start();
    /// Pending waits end at once; a run in flight finishes (or fails when its client is shut down).
    void stop();
    /// The page-time refresh of a polling source (sources::source::refresh): every job runs
    /// once more as soon as it can (at once unless it is running; then right after, as that
    /// run may have read before the request), and `done` is called when all of them have.
    /// The periodic schedule and the backoff stay as they were; a run's outcome is settled
    /// like any other (signals, health, metrics). Before start or after stop: `done` at once.
    void refresh(refresh_done done);

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace runbookd::sources
