#pragma once
// The daemon's only access to real time. Everything else takes time as an argument
// or reads it here; tests take both clocks over with fakes::manual_time.

#include "core/time.hpp"

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/wait_traits.hpp>

#include <chrono>

namespace runbookd::loop {

/// The daemon's steady clock: real time, unless manual time is active.
struct steady_clock {
    using duration = std::chrono::steady_clock::duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<steady_clock>;
    static constexpr bool is_steady = true;
    static time_point now() noexcept;
};

/// Wall-clock time for timestamps in posts and logs (same manual-time rule).
wall_time wall_now() noexcept;

/// True while a test drives time by hand.
bool manual_time_active() noexcept;

/// While time is manual, asks the OS to wait zero so io_context::poll() finds due
/// timers; otherwise behaves exactly like asio::wait_traits.
struct wait_traits {
    static steady_clock::duration to_wait_duration(const steady_clock::duration& d) {
        return manual_time_active() ? steady_clock::duration::zero() : d;
    }
    static steady_clock::duration to_wait_duration(const steady_clock::time_point& t) {
        return to_wait_duration(t - steady_clock::now());
    }
};

/// The timer every shell component uses.
using timer = boost::asio::basic_waitable_timer<steady_clock, wait_traits>;

/// Converts a wall time the engine asked for into a steady deadline from now.
steady_clock::time_point deadline_for(wall_time when) noexcept;

namespace manual {
/// Test hooks (used by tests/fakes/manual_time): freeze both clocks at `wall`.
void start(wall_time wall) noexcept;
/// Moves both clocks forward.
void advance(std::chrono::nanoseconds d) noexcept;
/// Returns to real time.
void stop() noexcept;
}  // namespace manual

}  // namespace runbookd::loop
