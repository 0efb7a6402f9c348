#pragma once
// Recurring local-time windows ("Tuesday or Wednesday, 10:00-13:00 America/New_York"), as
// pure predicates of an instant. Time zones come from the system's tz database.

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

/// A weekly window in a named zone, optionally limited to some months.
struct local_window {
    std::bitset<7> days;               ///< bit 0 = Sunday ... bit 6 = Saturday; none set = every day
    std::bitset<12> months;            ///< bit 0 = January; none set = every month
    std::chrono::minutes from{0};      ///< local time of day the window opens
    std::chrono::minutes to{24 * 60};  ///< local time of day it closes (exclusive); may be < from (overnight)
    std::string zone_name;             ///< "America/New_York"
    const date::time_zone* zone =
        nullptr;  ///< resolved where rules load (rules/zones.hpp); nullptr means UTC
};

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

/// "Tue/Wed 10:00-13:00 America/New_York": the window as people read it.
std::string describe(const local_window& w);

}  // namespace runbookd
