#pragma once
// The engine: incident lifecycle and the #status schedule. Pure: no I/O, no clock.
// Every call takes `now` and returns what to post and when to be woken next.

#include "core/event.hpp"
#include "core/incident.hpp"
#include "core/post.hpp"
#include "core/time.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace runbookd {

/// What users see of a PagerDuty service.
struct service_info {
    std::string name;    ///< display name in posts ("Editor")
    std::string impact;  ///< user-visible impact sentence ("Saving in the editor may fail.")
};

/// The part of the configuration the engine reads.
struct engine_settings {
    std::chrono::milliseconds reminder_interval = std::chrono::minutes{30};
    /// How long a resolved incident is remembered (late events, reopen).
    std::chrono::milliseconds resolved_retention = std::chrono::hours{24};
    /// Impact sentence for a service with none configured.
    std::string default_impact = "Some users may see errors or slowness.";
    std::map<std::string, service_info, std::less<>> services;  ///< by PagerDuty service id
};

/// Owns every known incident. Runs on the loop thread only; not thread-safe by design.
class engine {
public:
    explicit engine(engine_settings settings);

    /// Applies one intake event; returns the posts it causes.
    decisions on_event(const incident_event& ev, wall_time now);

    /// Posts every #status update that is due at `now` and forgets old resolved incidents.
    decisions on_tick(wall_time now);

    /// The earliest time the engine wants on_tick, or nullopt when nothing is scheduled.
    std::optional<wall_time> next_wake() const;

    /// Replaces the settings (reload). Open incidents keep their schedule; a shorter
    /// interval takes effect after the next update.
    void reconfigure(engine_settings settings);

    const incident* find(std::string_view id) const;
    std::size_t open_count() const noexcept;
    std::size_t known_count() const noexcept { return incidents_.size(); }

private:
    using slot = std::pair<wall_time, std::string>;

    decisions finish(decisions d) const;
    void open_epoch(incident& inc, wall_time now, decisions& out, post_kind kind);
    /// Moves an open incident's next update; keeps `due_` in step.
    void reschedule(incident& inc, wall_time next);
    /// Marks an incident resolved at `at`; moves it from `due_` to `expiry_`.
    void close(incident& inc, wall_time at);
    void forget_expired(wall_time now);

    engine_settings settings_;
    std::map<std::string, incident, std::less<>> incidents_;
    // Indexes, so that every call costs O(log n) in the number of incidents, not O(n):
    std::set<slot> due_;     ///< (next_update, id) of every open incident
    std::set<slot> expiry_;  ///< (when to forget, id) of every resolved incident
    std::size_t open_ = 0;
};

}  // namespace runbookd
