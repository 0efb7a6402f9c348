#pragma once
// The probes source (docs/sources/probes.md): each target checked every `interval`
// (jittered) on its own, at most `concurrency` checks at once, so a slow target holds up no
// other; a target that fails `failures_before_alert` checks in a row (or flaps) gives
// probe.failure signals, and probe.recovered when it passes again.

#include "sources/probes/config.hpp"
#include "sources/source.hpp"

#include <memory>

namespace runbookd::sources::probes {

/// nullptr while no target is listed. Throws std::runtime_error when a CA file cannot be
/// loaded or a URL cannot be read (both checked by the config reader first).
std::unique_ptr<sources::source> make(const config& cfg, context& cx);

}  // namespace runbookd::sources::probes
