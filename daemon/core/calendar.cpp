#include "core/calendar.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <cstdio>

namespace runbookd {
namespace {

constexpr std::array<std::string_view, 7> day_names{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> month_names{
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 6> week_names{"1st", "2nd", "3rd", "4th", "5th", "last"};

std::string clock_text(std::chrono::minutes m) {
    std::array<char, 8> buf{};
    std::snprintf(
        buf.data(),
        buf.size(),
        "%02d:%02d",
        static_cast<int>(m.count() / 60),
        static_cast<int>(m.count() % 60)
    );
    return buf.data();
}

/// The local date and time of day of `t` in the window's zone, and the zone's abbreviation.
struct local_parts {
    date::local_days day;
    std::chrono::minutes time_of_day{0};
    std::string abbrev = "UTC";
};

local_parts split(const local_window& w, wall_time t) {
    std::chrono::sys_seconds secs = std::chrono::floor<std::chrono::seconds>(t);
    date::local_seconds local{secs.time_since_epoch()};
    local_parts out;
    if (w.zone != nullptr) {
        const auto info = w.zone->get_info(secs);
        local = date::local_seconds{secs.time_since_epoch() + info.offset};
        out.abbrev = info.abbrev;
    }
    out.day = date::floor<date::days>(local);
    out.time_of_day = std::chrono::duration_cast<std::chrono::minutes>(local - out.day);
    return out;
}

unsigned last_day_of(const date::year_month_day& ymd) {
    return static_cast<unsigned>(date::year_month_day_last{ymd.year(), date::month_day_last{ymd.month()}}.day(
    ));
}

/// Whether the window may open on local date `d`: its weekday, its week of the month, its month.
bool opens_on(const local_window& w, date::local_days d) {
    const date::year_month_day ymd{d};
    const auto weekday = date::weekday{d}.c_encoding();
    const auto month = static_cast<unsigned>(ymd.month()) - 1;
    const auto day = static_cast<unsigned>(ymd.day());
    if (w.days.any() && !w.days.test(weekday)) {
        return false;
    }
    if (w.months.any() && !w.months.test(month)) {
        return false;
    }
    if (w.weeks.none()) {
        return true;
    }
    // The nth occurrence of a weekday falls on days 7n-6 to 7n; the last one within the
    // month's final seven days. A day may be both (the 4th and last Tuesday of February).
    const bool nth = w.weeks.test((day - 1) / 7);
    const bool last = w.weeks.test(last_week) && day + 7 > last_day_of(ymd);
    return nth || last;
}

}  // namespace

local_moment to_local(const local_window& w, wall_time t) {
    const auto parts = split(w, t);
    const date::year_month_day ymd{parts.day};
    local_moment m;
    m.weekday = static_cast<int>(date::weekday{parts.day}.c_encoding());
    m.month = static_cast<int>(static_cast<unsigned>(ymd.month())) - 1;
    m.time_of_day = parts.time_of_day;
    m.text = std::string{day_names[static_cast<std::size_t>(m.weekday)]} + " " + clock_text(m.time_of_day) +
             " " + parts.abbrev;
    return m;
}

bool contains(const local_window& w, wall_time t) {
    const auto p = split(w, t);
    if (w.from <= w.to) {
        return p.time_of_day >= w.from && p.time_of_day < w.to && opens_on(w, p.day);
    }
    // Overnight (22:00-02:00): the evening belongs to its own day, the small hours to the
    // day before, whose weekday, week and month are the ones that count.
    if (p.time_of_day >= w.from) {
        return opens_on(w, p.day);
    }
    return p.time_of_day < w.to && opens_on(w, p.day - date::days{1});
}

std::string describe(const local_window& w) {
    std::string days;
    for (std::size_t d = 0; d < 7; ++d) {
        if (w.days.test(d)) {
            days += (days.empty() ? "" : "/") + std::string{day_names[d]};
        }
    }
    std::string weeks;
    for (std::size_t i = 0; i < w.weeks.size(); ++i) {
        if (w.weeks.test(i)) {
            weeks += (weeks.empty() ? "" : "/") + std::string{week_names[i]};
        }
    }
    std::string out;
    if (weeks.empty()) {
        out = days.empty() ? "every day" : days;
    } else {
        out = days.empty() ? "every day of the " + weeks + " week" : weeks + " " + days;
    }
    out +=
        " " + clock_text(w.from) + "-" + clock_text(w.to) + " " + (w.zone_name.empty() ? "UTC" : w.zone_name);
    if (w.months.any()) {
        std::string months;
        for (std::size_t i = 0; i < 12; ++i) {
            if (w.months.test(i)) {
                months += (months.empty() ? "" : "/") + std::string{month_names[i]};
            }
        }
        out += " in " + months;
    }
    return out;
}

}  // namespace runbookd
