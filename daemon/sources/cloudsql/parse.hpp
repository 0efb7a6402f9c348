#pragma once
// Cloud SQL's JSON -> values and signals, pure (api-facts §3): Cloud Monitoring's
// timeSeries.list pages and the Cloud SQL Admin instance. No sockets, no clock.

#include "core/error.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::sources::cloudsql {

/// One point of a GAUGE series: the end of its interval, its value, and which series it
/// belongs to (its resource and metric labels, as one canonical JSON text).
struct point {
    wall_time at;
    double value = 0;
    std::string series;
};

/// One page of `projects.timeSeries.list`: every series' points, newest first as the API
/// sends them. No series at all (`{}`) is "no data", never zero.
struct series_page {
    std::vector<point> points;
    std::string next_page_token;
    std::size_t skipped = 0;  ///< points without a time or a numeric value
};

result<series_page> parse_time_series(std::string_view body);

/// The points the monitoring job has handed over, by metric, series and point time, kept
/// while a later read can return them again. A read re-reads a trailing window, so a point
/// already handed over comes back, and a late one (Cloud SQL's appear minutes after their
/// time) appears among them: each is handed over once, the late one when it first appears.
class handed_over {
public:
    bool contains(std::string_view metric, const point& p) const;
    void remember(std::string_view metric, const point& p);
    /// Forgets the points before `t`, which no later read looks back to: what is kept is
    /// bounded by the re-read window.
    void forget_before(wall_time t);
    std::size_t size() const noexcept { return seen_.size(); }

private:
    /// Ordered by time first: forgetting is erasing a prefix.
    std::set<std::pair<wall_time, std::string>, std::less<>> seen_;
};

/// A Cloud SQL Admin `instances.get` answer, as far as ranking needs it (api-facts §3.3).
struct sql_instance {
    std::string name;
    std::string state;                           ///< RUNNABLE, MAINTENANCE, FAILED, SUSPENDED...
    std::string activation_policy;               ///< ALWAYS, NEVER (RUNNABLE + NEVER is stopped)
    std::optional<int> window_day;               ///< settings.maintenanceWindow.day: 1 = Monday, UTC
    std::optional<int> window_hour;              ///< 0-23 UTC
    std::string update_track;                    ///< canary, stable, week5
    std::optional<wall_time> scheduled_start;    ///< scheduledMaintenance.startTime, when upcoming
    std::optional<bool> can_reschedule;          ///< scheduledMaintenance.canReschedule
    std::optional<wall_time> schedule_deadline;  ///< scheduledMaintenance.scheduleDeadlineTime
};

result<sql_instance> parse_sql_instance(std::string_view body);

/// What the instance job remembers from read to read: since when the instance has been in
/// its current state. The API gives no time for a state, so it is when a read first saw it.
struct instance_memory {
    std::string state;  ///< as db.unavailable labels it ("STOPPED" for RUNNABLE + NEVER)
    wall_time since{};
};

/// How long Cloud SQL's maintenance window lasts from its start.
constexpr auto maintenance_window_length = std::chrono::hours{1};

/// The start of the weekly window (`day` 1 = Monday .. 7, `hour` UTC) that began last at or
/// before `now`.
wall_time last_window_start(int day, int hour, wall_time now);

/// The instance's signals read at `now`, each dated from the world where it gives a time:
/// - db.unavailable while it is not serving (any state but RUNNABLE, or RUNNABLE with
///   activationPolicy NEVER: "STOPPED"), dated when a read first saw that state (`seen`);
/// - db.maintenance `which: scheduled` for scheduledMaintenance, dated at its startTime
///   (counted by ranking only once that time has come);
/// - db.maintenance `which: window` for the weekly maintenance window: its last start and
///   its next, each dated at its start (Cloud SQL maintains an instance only inside it);
/// - db.maintenance `which: running` while the state is MAINTENANCE, dated at the scheduled
///   start when it has passed, else at the window's start while inside it, else when first
///   seen (`seen`, no `end`).
/// `start`/`end` are "15:30 UTC" (a window lasts an hour); `instance` names it in the
/// labels and as the subject. `memory` carries the state's first sighting between reads.
std::vector<signal> instance_signals(
    const sql_instance& inst, std::string_view instance, wall_time now, instance_memory& memory
);

}  // namespace runbookd::sources::cloudsql
