#pragma once
// Cloud SQL's JSON -> values and signals, pure (api-facts §3): Cloud Monitoring's
// timeSeries.list pages and the Cloud SQL Admin instance. No sockets, no clock.

#include "core/error.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::sources::cloudsql {

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

}  // namespace runbookd::sources::cloudsql
