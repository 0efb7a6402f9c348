#pragma once
// The one shape of a source (docs/architecture.md, "Adding an integration"): a configured
// source is made from its own config and a context that is the same for every source,
// started, and stopped. It owns its clients, credentials and loops, runs on the loop
// executor, and hands what it finds to the sinks.

#include "core/event.hpp"
#include "core/incident.hpp"
#include "core/signal.hpp"
#include "core/source_health.hpp"
#include "core/time.hpp"
#include "log/log.hpp"
#include "loop/clock.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}

namespace runbookd::sources {

/// Where a source's findings go. Called on the loop executor only.
struct sinks {
    std::function<void(signal)> on_signal;
    /// The source's health, already bound to its name; also sets runbookd_source_up{source}.
    std::function<void(source_status)> on_status;
    /// Incident events of a pull intake (PagerDuty's REST API): the same path as webhooks.
    std::function<void(incident_event&&)> on_event = {};
};

/// What every source is given, the same for all.
struct context {
    boost::asio::any_io_executor loop;
    log::logger log;  ///< already carries component=<name>
    prometheus::Registry& metrics;
    sinks to;
    /// A secret value (a token, a DSN's password) that the log sink must never print.
    std::function<void(std::string)> redact;
    /// What the engine believes of every incident it knows, for a source that reconciles.
    std::function<std::vector<incident_view>()> incidents = {};
};

/// What a page-time refresh is about: an incident's window, from the widest lookback of any
/// rule before the incident started, to the page.
struct refresh_window {
    wall_time from;
    wall_time to;
};

/// Said once when a refresh is over (what it found has gone to the sinks, or it gave up).
using refresh_done = std::function<void()>;

/// A configured source.
class source {
public:
    virtual ~source() = default;
    /// For the "source started" log line: what it reads and how it authenticates (no secrets).
    virtual std::string describe() const = 0;
    virtual void start() = 0;
    /// Ends pending waits at once and aborts requests in flight; never blocks. A call
    /// already running on a worker thread finishes there, and its outcome is dropped.
    virtual void stop() = 0;
    /// When an incident opens: look again now, at what bears on `window`, so that the
    /// first #operations summary has it, and call `done` once, on the loop executor, when
    /// it is in. `deadline` is when the daemon stops waiting (the summary goes out without
    /// it); work past it is wasted, not harmful, and `done` may still come. It may be called
    /// from inside refresh(). It must not disturb the source's own cadence or backoff; a
    /// stopped source answers at once. The default has nothing to look at and answers at once.
    virtual void refresh(
        const refresh_window& /*window*/, loop::steady_clock::time_point /*deadline*/, refresh_done done
    ) {
        done();
    }
};

}  // namespace runbookd::sources
