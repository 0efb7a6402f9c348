#include "rules/calendars.hpp"

#include "core/suggest.hpp"
#include "rules/names.hpp"
#include "rules/zones.hpp"

#include <algorithm>
#include <cctype>

namespace runbookd::rules {
namespace {

constexpr std::array<std::string_view, 7> day_names{
    "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};
constexpr std::array<std::string_view, 12> month_names{
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december"};

std::optional<std::chrono::minutes> clock_time(yaml::walker& wk, const yaml::entry& e) {
    auto text = wk.string(e);
    if (!text) {
        return std::nullopt;
    }
    const auto& s = *text;
    const auto digit = [&](std::size_t i) { return std::isdigit(static_cast<unsigned char>(s[i])) != 0; };
    const bool shape = s.size() == 5 && s[2] == ':' && digit(0) && digit(1) && digit(3) && digit(4);
    const int h = shape ? (s[0] - '0') * 10 + (s[1] - '0') : 99;
    const int m = shape ? (s[3] - '0') * 10 + (s[4] - '0') : 99;
    if (!shape || h > 24 || m > 59 || (h == 24 && m != 0)) {
        wk.report(e, "'" + s + "' is not a local time HH:MM (00:00 to 24:00)");
        return std::nullopt;
    }
    return std::chrono::minutes{h * 60 + m};
}

/// Day or month names: the whole name or any prefix of at least three letters ("tue",
/// "Tues", "Tuesday"), as bits.
template <std::size_t N>
std::optional<std::bitset<N>> name_bits(
    yaml::walker& wk, const yaml::entry& e, const std::array<std::string_view, N>& choices
) {
    const auto items = wk.list(e);
    if (!items) {
        return std::nullopt;
    }
    std::bitset<N> out;
    bool ok = true;
    for (const auto& item : *items) {
        auto v = wk.string(item);
        if (!v) {
            ok = false;
            continue;
        }
        std::string lower = *v;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
            return std::tolower(c);
        });
        const auto it = std::find_if(choices.begin(), choices.end(), [&](std::string_view c) {
            return lower.size() >= 3 && c.starts_with(lower);
        });
        if (it == choices.end()) {
            std::string shortest;
            for (const auto c : choices) {
                shortest += (shortest.empty() ? "" : ", ") + std::string{c.substr(0, 3)};
            }
            wk.report(item, "'" + *v + "' is not one of " + shortest + " (or their full names)");
            ok = false;
            continue;
        }
        out.set(static_cast<std::size_t>(it - choices.begin()));
    }
    return ok ? std::optional{out} : std::nullopt;
}

/// `weeks: [1, 2, last]`: which occurrences of the weekday in the month.
std::optional<std::bitset<6>> week_bits(yaml::walker& wk, const yaml::entry& e) {
    const auto items = wk.list(e);
    if (!items) {
        return std::nullopt;
    }
    std::bitset<6> out;
    bool ok = true;
    for (const auto& item : *items) {
        auto v = wk.string(item);
        if (v && *v == "last") {
            out.set(last_week);
        } else if (v && v->size() == 1 && (*v)[0] >= '1' && (*v)[0] <= '5') {
            out.set(static_cast<std::size_t>((*v)[0] - '1'));
        } else {
            if (v) {
                wk.report(
                    item, "'" + *v + "' is not a week of the month (1 to 5: the nth such weekday; or last)"
                );
            }
            ok = false;
        }
    }
    return ok ? std::optional{out} : std::nullopt;
}

std::string clock_text(std::chrono::minutes m) {
    const auto two = [](long v) { return std::string{v < 10 ? "0" : ""} + std::to_string(v); };
    return two(m.count() / 60) + ":" + two(m.count() % 60);
}

}  // namespace

bool read_window(yaml::walker& wk, const yaml::entry& e, local_window& w) {
    const std::size_t before = wk.problem_count();
    const auto m = wk.map(e.value, e.path, calendar_keys);
    if (!m) {
        return false;
    }
    if (const auto* d = yaml::find(*m, "days")) {
        if (auto bits = name_bits(wk, *d, day_names)) {
            w.days = *bits;
        }
    }
    if (const auto* d = yaml::find(*m, "weeks")) {
        if (auto bits = week_bits(wk, *d)) {
            w.weeks = *bits;
        }
    }
    if (const auto* d = yaml::find(*m, "months")) {
        if (auto bits = name_bits(wk, *d, month_names)) {
            w.months = *bits;
        }
    }
    if (const auto* f = yaml::find(*m, "from")) {
        if (auto v = clock_time(wk, *f)) {
            w.from = *v;
        }
    }
    if (const auto* t = yaml::find(*m, "to")) {
        if (auto v = clock_time(wk, *t)) {
            w.to = *v;
        }
    }
    if (const auto* z = yaml::find(*m, "tz")) {
        if (auto name = wk.string(*z)) {
            w.zone = locate_zone(*name);
            w.zone_name = *name;
            if (w.zone == nullptr) {
                wk.report(*z, "unknown time zone '" + *name + "' (an IANA name, e.g. America/New_York)");
            }
        }
    }
    return wk.problem_count() == before;
}

bool check_window(yaml::walker& wk, const yaml::entry& e, const local_window& w) {
    if (w.from == w.to || w.from == std::chrono::hours{24}) {
        wk.report(
            e,
            "the window from " + clock_text(w.from) +
                " never holds (from must be before 24:00 and differ from to)"
        );
        return false;
    }
    return true;
}

void named_calendars::read(yaml::walker& wk, const yaml::entry& e) {
    const auto m = wk.map(e.value, e.path, {});
    if (!m) {
        return;
    }
    for (const auto& c : *m) {
        // Kept even when invalid, so that the leaves naming it report nothing more.
        list_.push_back(named{local_window{}, c, false, false});
        local_window& w = list_.back().window;
        w.name = c.name;
        if (!valid_id(c.name)) {
            wk.report(
                c.key.Mark(),
                c.path,
                "'" + c.name + "' is not a calendar name (lower-case letters, digits, '-' and '_')"
            );
            continue;
        }
        if (!c.value.IsMap()) {
            wk.report(c, std::string{"expected a map, got "} + yaml::kind_of(c.value));
            continue;
        }
        if (!read_window(wk, c, w) || !check_window(wk, c, w)) {
            continue;
        }
        if (w.zone_name.empty()) {
            wk.report(
                c.key.Mark(), c.path + ".tz", "required: the zone the window is in, e.g. America/New_York"
            );
            continue;
        }
        list_.back().valid = true;
    }
}

std::optional<local_window> named_calendars::leaf(yaml::walker& wk, const yaml::entry& e) {
    if (e.value.IsScalar()) {
        const std::string& name = e.value.Scalar();
        const auto it =
            std::find_if(list_.begin(), list_.end(), [&](const named& n) { return n.window.name == name; });
        if (it == list_.end()) {
            std::vector<std::string_view> known;
            for (const auto& n : list_) {
                known.push_back(n.window.name);
            }
            wk.report(
                e,
                "'" + name + "' is not one of this file's calendars" + suggestion(name, known) +
                    (known.empty() ? " (it has none: define it under calendars:)" : "")
            );
            unresolved_ = true;
            return std::nullopt;
        }
        it->used = true;
        if (!it->valid) {
            return std::nullopt;  // reported where it is defined
        }
        return it->window;
    }
    local_window w;
    if (!read_window(wk, e, w)) {
        return std::nullopt;
    }
    if (!check_window(wk, e, w)) {
        return std::nullopt;
    }
    if (w.zone_name.empty()) {
        wk.report(
            e.value.Mark(), e.path + ".tz", "required: the zone the window is in, e.g. America/New_York"
        );
        return std::nullopt;
    }
    return w;
}

void named_calendars::report_unused(yaml::walker& wk) const {
    for (const auto& n : list_) {
        // A leaf that misspelt a name has been told which one it may have meant.
        if (!n.used && n.valid && !unresolved_) {
            wk.report(
                n.at.key.Mark(),
                n.at.path,
                "calendar '" + n.window.name + "' is not used by any calendar leaf"
            );
        }
    }
}

}  // namespace runbookd::rules
