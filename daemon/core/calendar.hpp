#pragma once
// Recurring local-time windows ("the 1st and 2nd Tuesday or Wednesday of Jan, Apr, Jul and
// Oct, 10:00-13:00 America/New_York"), as pure predicates of an instant. Time zones come
// from the system's tz database, looked up where rules load (rules/zones.hpp).

#include "core/time.hpp"

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace runbookd {

/// A weekly window in a named zone, optionally limited to some weeks of the month and to
/// some months. Every limit applies to the day the window opens, so an overnight window
/// (22:00-02:00) that opens on the last day of a month stays in that month's window.
struct local_window {
    std::bitset<7> days;     ///< bit 0 = Sunday ... bit 6 = Saturday; none set = every day
    std::bitset<12> months;  ///< bit 0 = January; none set = every month
    /// Which occurrence of its weekday in the month the day is: bit n-1 = the nth (1-5,
    /// days 7n-6 to 7n of the month), bit `last_week` = the last (within the month's last
    /// seven days). None set = every week. "weeks: [1, 2]" of a Tuesday: the first two.
    std::bitset<6> weeks;
    std::chrono::minutes from{0};      ///< local time of day the window opens
    std::chrono::minutes to{24 * 60};  ///< local time of day it closes (exclusive); may be < from (overnight)
    std::string zone_name;             ///< "America/New_York"
    const date::time_zone* zone =
        nullptr;  ///< resolved where rules load (rules/zones.hpp); nullptr means UTC
    /// The pack's name for it ("maintenance"), by which configuration replaces it; "" for
    /// a window written in its rule.
    std::string name;
};

/// The bit of local_window::weeks that stands for "the last such weekday of the month".
inline constexpr std::size_t last_week = 5;

/// Local wall time of `t` in the window's zone, broken down.
struct local_moment {
    int weekday = 0;  ///< 0 = Sunday
    int month = 0;    ///< 0 = January
    std::chrono::minutes time_of_day{0};
    std::string text;  ///< "Tue 11:05 EST"
};

/// `t` as a local moment in the window's zone.
local_moment to_local(const local_window& w, wall_time t);

/// Whether `t` falls inside the window (DST-correct: local wall time is what counts).
bool contains(const local_window& w, wall_time t);

/// "Tue/Wed 10:00-13:00 America/New_York", "1st/2nd Tue 10:00-13:00 UTC in Jan/Jul": the
/// window as people read it.
std::string describe(const local_window& w);

}  // namespace runbookd
