#pragma once
// The Google Cloud status feed (incidents.json) -> incidents and signals, pure (api-facts
// §3). No sockets, no clock.

#include "core/error.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::sources::gcp_status {

/// An incident of the status feed, as far as ranking needs it.
struct status_incident {
    std::string id;
    std::string title;     ///< external_desc
    std::string severity;  ///< low, medium, high
    std::string impact;    ///< status_impact: SERVICE_DISRUPTION, SERVICE_OUTAGE...
    std::optional<wall_time> begin;
    bool open = false;                   ///< no `end`
    std::vector<std::string> products;   ///< affected_products[].title
    std::vector<std::string> locations;  ///< currently_affected_locations[].id (or the latest update's)
    std::string url;                     ///< absolute
};

/// The feed is a bare array, parsed tolerantly: an entry without an id is skipped.
result<std::vector<status_incident>> parse_status_feed(std::string_view body);

/// Open incidents touching one of `products` (matched case-insensitively against the
/// titles, "Cloud SQL") and, when `locations` is not empty, one of them (or `global`),
/// as gcp.incident signals dated `now`: each poll samples the incidents open then.
std::vector<signal> incident_signals(
    const std::vector<status_incident>& incidents,
    const std::vector<std::string>& products,
    const std::vector<std::string>& locations,
    wall_time now
);

}  // namespace runbookd::sources::gcp_status
