#pragma once
// POST /webhooks/pagerduty: authenticate, parse, de-duplicate, hand to the engine, answer.

#include "core/event.hpp"
#include "core/secret.hpp"
#include "intake/endpoint.hpp"
#include "intake/pagerduty/config.hpp"
#include "intake/recent_keys.hpp"
#include "log/log.hpp"
#include "net/router.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace runbookd::intake::pagerduty {

/// The webhook endpoint. Runs on the loop thread; answers within microseconds because
/// the engine call it makes is synchronous and posting is asynchronous (the outbox).
class webhook_handler final : public endpoint {
public:
    using event_sink = std::function<void(incident_event&&)>;

    /// `max_age`: how old an event (by its occurred_at) may be and still be acted on.
    webhook_handler(
        std::vector<secret<std::string>> secrets,
        std::size_t dedupe_capacity,
        std::chrono::milliseconds max_age,
        event_sink sink,
        log::logger log,
        prometheus::Registry& metrics
    );

    std::string_view path() const noexcept override { return "/webhooks/pagerduty"; }
    /// Judges an event's age against the daemon's wall clock (loop/clock.hpp).
    net::response handle(const net::request& req) override;
    /// Remembers the event's id: PagerDuty's redelivery after a restart is a duplicate.
    void recovered(const incident_event& ev) override;
    net::response operator()(const net::request& req) { return handle(req); }
    /// The same at `now`: the whole of the endpoint's logic, for tests in virtual time.
    net::response handle_at(const net::request& req, wall_time now);

    /// Reload: new secrets apply to the next request.
    void set_secrets(std::vector<secret<std::string>> secrets) { secrets_ = std::move(secrets); }

private:
    prometheus::Counter& counter(std::string_view result);

    std::vector<secret<std::string>> secrets_;
    std::chrono::milliseconds max_age_;
    recent_keys seen_;
    event_sink sink_;
    log::logger log_;
    prometheus::Family<prometheus::Counter>& results_;
    prometheus::Family<prometheus::Counter>& events_;
    // The hot path's counters, looked up once (a Family lookup hashes its labels).
    prometheus::Counter* accepted_ = nullptr;
    prometheus::Counter* duplicate_ = nullptr;
    std::vector<prometheus::Counter*> by_type_;  ///< indexed by incident_event_type
};

/// The endpoint for `cfg`, its signing secrets registered for redaction.
std::unique_ptr<webhook_handler> make(const config& cfg, context& cx);

}  // namespace runbookd::intake::pagerduty
