#pragma once
// What each source says of itself, so a rule can say "not checkable" instead of "clear".

#include "core/time.hpp"

#include <map>
#include <string>
#include <string_view>

namespace runbookd {

enum class source_state { healthy, failing };

/// The last word of one configured source. A source that never reported is not configured.
struct source_status {
    source_state state = source_state::healthy;
    std::string error;  ///< why it is failing (redacted); empty when healthy
    wall_time since;    ///< when it entered this state
    /// Failing only because its first look is not over yet ("waiting for the first poll"),
    /// not for a reason it cannot look: /readyz waits for it. Any later report clears it.
    bool pending = false;
};

/// By source name ("kubernetes", "cloudsql", "postgres", ...).
using source_map = std::map<std::string, source_status, std::less<>>;

std::string_view to_string(source_state s) noexcept;

}  // namespace runbookd
