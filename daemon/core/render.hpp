#pragma once
// Post text. Channel-neutral markdown; every piece of outside text is escaped here.

#include "core/engine.hpp"
#include "core/incident.hpp"
#include "core/post.hpp"

namespace runbookd::render {

/// The first #status post: impact, "we are investigating", the PagerDuty reference.
message status_notice(const incident& inc, const engine_settings& s, wall_time now);

/// The #status post after an incident reopened.
message status_reopened(const incident& inc, const engine_settings& s, wall_time now);

/// The periodic #status update, even with no news.
message status_update(const incident& inc, const engine_settings& s, wall_time now);

/// A PagerDuty status update relayed to #status.
message status_relay(const incident& inc, const engine_settings& s, wall_time now);

/// The #status post when the incident resolved, with its duration.
message status_resolved(const incident& inc, const engine_settings& s, wall_time now);

}  // namespace runbookd::render
