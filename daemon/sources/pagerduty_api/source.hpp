#pragma once
// The pagerduty_api source (docs/sources/pagerduty_api.md): at start and every `interval`, a
// reconciliation of the incidents PagerDuty has open with those the engine knows. Its incident
// events take the webhooks' path (sinks::on_event) and the engine de-duplicates them against
// the webhooks by state and time (engine::reconcile): an incident triggered, acknowledged or
// resolved while the daemon was down or a webhook was lost gets its post, marked late.

#include "net/http_client.hpp"
#include "sources/pagerduty_api/config.hpp"
#include "sources/poller.hpp"
#include "sources/source.hpp"

#include <functional>
#include <memory>
#include <vector>

namespace prometheus {
class Registry;
}

namespace runbookd::sources::pagerduty_api {

/// One reconciliation, as a poll job:
/// 1. `GET /incidents` (triggered and acknowledged, date_range=all, newest first), page by
///    page up to the offset bound;
/// 2. `GET /incidents/{id}` of each incident the engine believes open that the listing
///    lacks (resolved while we were not told?);
/// 3. `GET /incidents/{id}/alerts` (the first alert) of listed incidents the engine has no
///    alert for; 2 and 3 share `lookups_per_poll`.
/// Events go out only for what differs from the engine's view (`incidents`), or brings an
/// alert. A 429 or `ratelimit-remaining: 0` ends the listing as a failure that waits for
/// the reset, and ends the lookups quietly (the rest wait for the next run).
poll_job reconcile_job(
    net::http_client& http,
    const config& cfg,
    std::function<std::vector<incident_view>()> incidents,
    prometheus::Registry& metrics,
    log::logger log
);

/// nullptr while no token is set. Throws std::runtime_error when the CA file cannot be loaded.
std::unique_ptr<sources::source> make(const config& cfg, context& cx);

}  // namespace runbookd::sources::pagerduty_api
