#pragma once
// The one shape of an intake (docs/architecture.md, "Adding an integration"): an
// authenticated webhook route, made from its own config and a context that is the same
// for every intake. It hands incident events (a page) and signals (a deploy) to the sinks.

#include "core/event.hpp"
#include "core/signal.hpp"
#include "log/log.hpp"
#include "net/router.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace runbookd::intake {

/// Where an intake's findings go. Called on the loop thread only.
struct sinks {
    std::function<void(incident_event&&)> on_event;
    std::function<void(signal)> on_signal;
};

/// What every intake is given, the same for all.
struct context {
    log::logger log;  ///< already carries component=<name>
    prometheus::Registry& metrics;
    sinks to;
    /// A secret value (a signing secret) that the log sink must never print.
    std::function<void(std::string)> redact;
};

/// One webhook route (POST `path()`). Runs on the loop thread and answers at once: what it
/// accepts goes to the sinks, whose work is synchronous and whose posts are asynchronous.
class endpoint {
public:
    virtual ~endpoint() = default;
    virtual std::string_view path() const noexcept = 0;  ///< "/webhooks/pagerduty"
    virtual net::response handle(const net::request& req) = 0;
    /// An event this daemon accepted before a restart, replayed from the state store: an
    /// intake that de-duplicates remembers it, so a redelivery is still a duplicate.
    virtual void recovered(const incident_event& ev) { (void)ev; }
};

}  // namespace runbookd::intake
