#pragma once
// POST /webhooks/deploys: authenticate (GitHub's or the generic signature), refuse what is
// stale or already seen, parse, hand a `deploy.ci` signal to the engine, answer.

#include "core/secret.hpp"
#include "core/time.hpp"
#include "intake/deploys/config.hpp"
#include "intake/deploys/parse.hpp"
#include "intake/endpoint.hpp"
#include "intake/recent_keys.hpp"
#include "log/log.hpp"
#include "net/router.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace runbookd {
struct service_info;
}

namespace runbookd::intake::deploys {

/// The deploy webhook endpoint. Runs on the loop thread and answers at once. All it keeps
/// is the de-duplication memory: how long a deploy has been running comes from the payload's
/// own times, and a deploy whose statuses stopped is judged by the ranking from the signal
/// log (`quiet_for`, docs/rules.md), so that it replays and is tested in virtual time.
class webhook_handler final : public endpoint {
public:
    using signal_sink = std::function<void(signal)>;

    webhook_handler(
        const config& cfg,
        service_routes routes,
        signal_sink sink,
        log::logger log,
        prometheus::Registry& metrics
    );

    std::string_view path() const noexcept override { return "/webhooks/deploys"; }
    /// Judges freshness against the daemon's wall clock (loop/clock.hpp).
    net::response handle(const net::request& req) override;
    /// The same at `now`: the whole of the endpoint's logic, for tests in virtual time.
    net::response handle_at(const net::request& req, wall_time now);

private:
    prometheus::Counter& counter(std::string_view result);
    net::response refuse(const net::request& req, std::string_view result, int status, std::string message);
    net::response github(const net::request& req, wall_time now);
    net::response generic(const net::request& req, wall_time now);
    /// The common end: ping/ignored answers, the event de-duplication, the signal.
    net::response settle(const net::request& req, parsed_delivery&& p, std::string_view delivery);

    config cfg_;
    service_routes routes_;
    recent_keys seen_;
    signal_sink sink_;
    log::logger log_;
    prometheus::Family<prometheus::Counter>& results_;
    prometheus::Family<prometheus::Counter>& events_;
};

/// The endpoint for `cfg` (nullptr when it is off), its secrets registered for redaction;
/// repositories map to services through `services.<id>.github`.
std::unique_ptr<webhook_handler> make(
    const config& cfg, const std::map<std::string, service_info, std::less<>>& services, context& cx
);

}  // namespace runbookd::intake::deploys
