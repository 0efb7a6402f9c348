#pragma once
// RAII manual time: freezes the daemon's steady and wall clocks at a chosen instant.

#include "core/time.hpp"
#include "loop/clock.hpp"

#include <chrono>
#include <string_view>

namespace runbookd::fakes {

/// "2026-03-04T16:00:00Z" as a wall_time; aborts the test binary on a typo.
wall_time at(std::string_view rfc3339);

/// While alive, loop::steady_clock and loop::wall_now() stand still until advance().
/// Never call io_context::run() meanwhile (zero OS waits would spin): use drain().
class manual_time {
public:
    explicit manual_time(wall_time start) { loop::manual::start(start); }
    ~manual_time() { loop::manual::stop(); }
    manual_time(const manual_time&) = delete;
    manual_time& operator=(const manual_time&) = delete;

    void advance(std::chrono::nanoseconds d) { loop::manual::advance(d); }
    wall_time now() const { return loop::wall_now(); }
};

}  // namespace runbookd::fakes
