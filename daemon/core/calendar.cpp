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

}  // namespace

local_moment to_local(const local_window& w, wall_time t) {
    local_moment m;
    std::chrono::sys_seconds secs = std::chrono::floor<std::chrono::seconds>(t);
    date::local_seconds local{secs.time_since_epoch()};
    std::string abbrev = "UTC";
    if (w.zone != nullptr) {
        const auto info = w.zone->get_info(secs);
        local = date::local_seconds{secs.time_since_epoch() + info.offset};
        abbrev = info.abbrev;
    }
    const auto day = date::floor<date::days>(local);
    const date::year_month_day ymd{day};
    m.weekday = static_cast<int>(date::weekday{day}.c_encoding());
    m.month = static_cast<int>(static_cast<unsigned>(ymd.month())) - 1;
    m.time_of_day = std::chrono::duration_cast<std::chrono::minutes>(local - day);
    m.text = std::string{day_names[static_cast<std::size_t>(m.weekday)]} + " " + clock_text(m.time_of_day) +
             " " + abbrev;
    return m;
}

bool contains(const local_window& w, wall_time t) {
    const auto m = to_local(w, t);
    const auto day_ok = [&](int d) { return w.days.none() || w.days.test(static_cast<std::size_t>(d)); };
    if (w.months.any() && !w.months.test(static_cast<std::size_t>(m.month))) {
        return false;
    }
    if (w.from <= w.to) {
        return day_ok(m.weekday) && m.time_of_day >= w.from && m.time_of_day < w.to;
    }
    // Overnight (22:00-02:00): the evening belongs to its own day, the small hours to the
    // day before.
    if (m.time_of_day >= w.from) {
        return day_ok(m.weekday);
    }
    return m.time_of_day < w.to && day_ok((m.weekday + 6) % 7);
}

std::string describe(const local_window& w) {
    std::string out;
    for (std::size_t d = 0; d < 7; ++d) {
        if (w.days.test(d)) {
            out += (out.empty() ? "" : "/") + std::string{day_names[d]};
        }
    }
    if (out.empty()) {
        out = "every day";
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
