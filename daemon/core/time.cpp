#include "core/time.hpp"

#include <date/date.h>

#include <charconv>
#include <sstream>

namespace runbookd {

std::string human_duration(millis d) {
    using namespace std::chrono;
    if (d < 0ms) {
        d = -d;
    }
    const auto total_s = duration_cast<seconds>(d).count();
    const auto h = total_s / 3600;
    const auto m = (total_s % 3600) / 60;
    const auto s = total_s % 60;
    std::string out;
    if (h > 0) {
        out = std::to_string(h) + "h " + (m < 10 ? "0" : "") + std::to_string(m) + "m";
    } else if (m > 0) {
        out = std::to_string(m) + "m";
    } else {
        out = std::to_string(s) + "s";
    }
    return out;
}

std::string format_rfc3339(wall_time t) {
    return date::format("%FT%TZ", t);
}

std::optional<wall_time> parse_rfc3339(std::string_view text) {
    std::string s{text};
    if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) {
        s.pop_back();
        s += "+00:00";
    }
    std::istringstream in{s};
    wall_time tp;
    in >> date::parse("%FT%T%Ez", tp);
    if (in.fail() || in.peek() != std::char_traits<char>::eof()) {
        return std::nullopt;
    }
    return tp;
}

std::optional<millis> parse_duration(std::string_view text) {
    using namespace std::chrono;
    if (text.empty()) {
        return std::nullopt;
    }
    millis total{0};
    while (!text.empty()) {
        long long n = 0;
        const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc{} || n < 0) {
            return std::nullopt;
        }
        text.remove_prefix(static_cast<std::size_t>(ptr - text.data()));
        std::size_t unit_len = 0;
        millis unit{0};
        if (text.starts_with("ms")) {
            unit = 1ms;
            unit_len = 2;
        } else if (text.starts_with("s")) {
            unit = 1s;
            unit_len = 1;
        } else if (text.starts_with("m")) {
            unit = minutes{1};
            unit_len = 1;
        } else if (text.starts_with("h")) {
            unit = hours{1};
            unit_len = 1;
        } else if (text.starts_with("d")) {
            unit = hours{24};
            unit_len = 1;
        } else {
            return std::nullopt;  // a bare number is ambiguous: the unit is required
        }
        constexpr long long max_ms = 366LL * 24 * 3600 * 1000;
        if (n > max_ms / unit.count()) {
            return std::nullopt;
        }
        total += n * unit;
        if (total.count() > max_ms) {
            return std::nullopt;
        }
        text.remove_prefix(unit_len);
    }
    return total;
}

std::string format_duration(millis d) {
    using namespace std::chrono;
    if (d.count() == 0) {
        return "0s";
    }
    std::string out;
    auto rest = d;
    const auto emit = [&](millis unit, const char* suffix) {
        if (rest >= unit) {
            out += std::to_string(rest / unit) + suffix;
            rest %= unit;
        }
    };
    emit(hours{1}, "h");
    emit(minutes{1}, "m");
    emit(seconds{1}, "s");
    emit(1ms, "ms");
    return out;
}

}  // namespace runbookd
