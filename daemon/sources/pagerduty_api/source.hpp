#pragma once
// The pagerduty_api source (docs/sources/pagerduty_api.md): at start and every `interval`, a
// reconciliation of the incidents PagerDuty has open with those the engine knows, and a
// read of its maintenance windows (pagerduty.maintenance signals). Its incident
// events take the webhooks' path (sinks::on_event) and the engine de-duplicates them against
// the webhooks by state and time (engine::reconcile): an incident triggered, acknowledged or
// resolved while the daemon was down or a webhook was lost gets its post, marked late; a
// note whose webhook was lost, read from PagerDuty's log, becomes the incident's latest news.

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
/// 2. `GET /log_entries` from the last reconciliation that read it (less a minute; at most
///    `log_lookback` ago) until this one's as_of, up to `log_entries_per_poll` entries: the
///    latest acknowledgement/unacknowledgement/resolution and the latest note per incident;
/// 3. `GET /incidents/{id}` of each incident the engine believes open that the listing lacks
///    and the log did not show resolved (resolved while we were not told?);
/// 4. `GET /incidents/{id}/alerts` (the first alert) of listed incidents the engine has no
///    alert for, then `GET /incidents/{id}/notes` for notes whose text the log entry lacks;
///    3 and 4 share `lookups_per_poll`.
/// Events go out only for what differs from the engine's view (`incidents`), brings an
/// alert, or is a note not handed over before (the engine compares it with its news).
/// A 429 or `ratelimit-remaining: 0` ends the listing as a failure that waits for the
/// reset, and ends the log read and the lookups quietly (the rest wait for the next run).
poll_job reconcile_job(
    net::http_client& http,
    const config& cfg,
    std::function<std::vector<incident_view>()> incidents,
    prometheus::Registry& metrics,
    log::logger log
);

/// The source's jobs, sharing one client and its counters: "reconcile" (reconcile_job) and,
/// with `cfg.maintenance_windows`, "maintenance": every `interval`, `GET /maintenance_windows
/// ?filter=open` page by page, each ongoing window and each starting within
/// maintenance_horizon a pagerduty.maintenance signal dated at its start. A failure (401,
/// 429, 5xx) fails the job, as the listing of incidents does.
std::vector<poll_job> poll_jobs(
    net::http_client& http,
    const config& cfg,
    std::function<std::vector<incident_view>()> incidents,
    prometheus::Registry& metrics,
    log::logger log
);

/// nullptr while no token is set. Throws std::runtime_error when the CA file cannot be loaded.
std::unique_ptr<sources::source> make(const config& cfg, context& cx);

}  // namespace runbookd::sources::pagerduty_api
