#pragma once
// Post text. Channel-neutral markdown; every piece of outside text is escaped here.

#include "core/engine.hpp"
#include "core/incident.hpp"
#include "core/post.hpp"
#include "core/rank.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace runbookd::render {

/// The first #status post: impact, "we are investigating", the PagerDuty reference. `late`:
/// when it triggered, for a notice posted long after it (found by a reconciliation), which
/// then ends "(posted late: triggered at 14:02 UTC)".
message status_notice(
    const incident& inc, const engine_settings& s, wall_time now, std::optional<wall_time> late = {}
);

/// The #status post after an incident reopened; `late` as for the notice ("reopened at").
message status_reopened(
    const incident& inc, const engine_settings& s, wall_time now, std::optional<wall_time> late = {}
);

/// The periodic #status update, even with no news. `believed` is the status_text of a
/// dominant suspect ("a bad deploy caused this and we are rolling it back"), or empty.
message status_update(
    const incident& inc, const engine_settings& s, wall_time now, std::string_view believed = {}
);

/// A PagerDuty status update relayed to #status.
message status_relay(const incident& inc, const engine_settings& s, wall_time now);

/// The #status post when the incident resolved, with its duration; `late` as for the notice
/// ("resolved at").
message status_resolved(
    const incident& inc, const engine_settings& s, wall_time now, std::optional<wall_time> late = {}
);

/// "(posted late: triggered at 14:02 UTC)"; the date too when `at` is not on `now`'s day.
std::string late_note(std::string_view what, wall_time at, wall_time now);

/// The #operations summary: the alert (title, start), what PagerDuty says of the page
/// (service, priority, urgency, assignees) and its indicator (the first alert's summary and
/// a few of its custom details); top suspects with share, evidence and next actions; the other
/// suspects in one line; one "⚠" line per warning line, outside the suspects' blocks; what
/// was checked and is clear; what could not be checked.
message operations_summary(const incident& inc, const ranking& r, const engine_settings& s, wall_time now);

/// The #operations timeline on resolve: trigger, suspects over time, what was posted,
/// resolution, and the final ranking's top suspect.
message operations_timeline(const incident& inc, const ranking& r, const engine_settings& s, wall_time now);

/// The #status post of a storm: how many incidents opened since when, the services they
/// are on (a bounded list, the first incident's title each), how many resolved, and whether
/// the burst is over. Edited in place as it changes.
message status_storm(const storm_state& storm, const engine_settings& s, wall_time now);

/// The #operations post of a storm: the same figures, and that per-incident summaries and
/// timelines are paused for its incidents.
message operations_storm(const storm_state& storm, const engine_settings& s, wall_time now);

}  // namespace runbookd::render
