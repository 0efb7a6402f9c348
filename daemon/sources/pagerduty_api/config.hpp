#pragma once
// `pagerduty_api:` (docs/sources/pagerduty_api.md): PagerDuty's REST API, polled to reconcile
// open incidents with what the webhooks told (api-facts §1.2). Off while no token is given.

#include "core/secret.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::pagerduty_api {

struct config {
    /// A REST API key (`Authorization: Token token=...`): `token` or `token_file`.
    secret<std::string> token;
    std::string url = "https://api.pagerduty.com";
    /// Between reconciliations (jittered); one runs at start.
    std::chrono::milliseconds interval = std::chrono::minutes{3};
    std::chrono::milliseconds timeout = std::chrono::seconds{10};  ///< per request
    std::vector<std::string> service_ids;  ///< `service_ids[]`: only these services; empty: all
    /// Lookups per reconciliation besides the listing: GET /incidents/{id} of incidents
    /// open here but not listed there, then the first alert of new incidents. Bounds the
    /// requests against PagerDuty's 960/min; the rest wait for the next reconciliation.
    std::size_t lookups_per_poll = 50;
    /// Log entries (`GET /log_entries`) read per reconciliation, at most: notes, acknowledgements
    /// and resolutions whose webhook was lost. 0: the log is not read.
    std::size_t log_entries_per_poll = 1000;
    /// How far back the log is read: at start, and after failures longer than this. Otherwise
    /// it is read from the last reconciliation that read it.
    std::chrono::milliseconds log_lookback = std::chrono::hours{1};
    bool alerts = true;  ///< fetch each open incident's first alert (summary, custom details)
    /// Read the maintenance windows (`GET /maintenance_windows`) every `interval`: planned
    /// work, as pagerduty.maintenance signals.
    bool maintenance_windows = true;
    std::string ca_file;  ///< trust this CA bundle instead of the system store (tests)

    bool enabled() const noexcept { return !token.empty(); }
    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position.
void read(yaml::section& s, config& out);

}  // namespace runbookd::sources::pagerduty_api
