#pragma once
// Google Cloud JSON -> values and signals, pure (api-facts §3): Cloud Monitoring's
// timeSeries.list pages and the status feed (incidents.json). No sockets, no clock.

#include "core/error.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::sources::gcp {

/// The fields of a service-account key file that the grant needs. `private_key` is a secret.
struct service_account_key {
    std::string client_email;
    std::string private_key_id;
    std::string private_key;
    std::string token_uri;
    std::string project_id;
};

/// Reads a key file's JSON. Errors name the missing field, never a value.
result<service_account_key> parse_key_file(std::string_view text);

/// One point of a GAUGE series: the end of its interval and its value.
struct point {
    wall_time at;
    double value = 0;
};

/// One page of `projects.timeSeries.list`: every series' points, newest first as the API
/// sends them. No series at all (`{}`) is "no data", never zero.
struct series_page {
    std::vector<point> points;
    std::string next_page_token;
    std::size_t skipped = 0;  ///< points without a time or a numeric value
};

result<series_page> parse_time_series(std::string_view body);

/// A Google error answer in a few words: "403 PERMISSION_DENIED: <message>" from a
/// google.rpc.Status body, "400 invalid_grant: <description>" from an OAuth one, else the
/// status alone. The message is cut to 200 characters.
std::string api_error_text(unsigned status, std::string_view body);

/// A Cloud SQL Admin `instances.get` answer, as far as ranking needs it (api-facts §3.3).
struct sql_instance {
    std::string name;
    std::string state;                         ///< RUNNABLE, MAINTENANCE, FAILED, SUSPENDED...
    std::string activation_policy;             ///< ALWAYS, NEVER (RUNNABLE + NEVER is stopped)
    std::optional<int> window_day;             ///< settings.maintenanceWindow.day: 1 = Monday, UTC
    std::optional<int> window_hour;            ///< 0-23 UTC
    std::string update_track;                  ///< canary, stable, week5
    std::optional<wall_time> scheduled_start;  ///< scheduledMaintenance.startTime, when upcoming
};

result<sql_instance> parse_sql_instance(std::string_view body);

/// db.unavailable while the instance is not serving (any state but RUNNABLE, or RUNNABLE
/// with activationPolicy NEVER), and db.maintenance for scheduled maintenance that starts
/// within the hour or has started (Cloud SQL windows last an hour: `end` is start + 1h).
/// `instance` names it in the labels (the instance ID, "dark-west").
std::vector<signal> instance_signals(const sql_instance& inst, std::string_view instance, wall_time now);

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

}  // namespace runbookd::sources::gcp
