#pragma once
// Everything that changes the engine, as a value: the daemon feeds these to
// engine::apply one at a time, `runbookd replay` reads them from scenario files, and the
// state store will journal them. One vocabulary for the live shell, replay and recovery.

#include "core/event.hpp"
#include "core/signal.hpp"
#include "core/source_health.hpp"
#include "core/time.hpp"

#include <string>
#include <variant>

namespace runbookd {

/// Time passing: the engine posts the #status updates and #operations refreshes due.
struct tick {
    friend bool operator==(const tick&, const tick&) = default;
};

/// The page-time gathering of an incident's epoch is over: every source has answered (the
/// decisions' `gather` asked for it). Its first #operations summary may go out now.
struct evidence_gathered {
    std::string incident;
    int epoch = 0;
};

/// A source reporting on itself (healthy or failing, and why).
struct source_report {
    std::string source;
    source_status status;
};

/// One input of the engine, applied at `at` (the engine's `now` for it).
struct input {
    wall_time at;
    std::variant<incident_event, signal, source_report, tick, evidence_gathered> what;
};

}  // namespace runbookd
