#include "core/time.hpp"

#include <date/date.h>

#include <charconv>
#include <cmath>
#include <cstdio>

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

std::string human_days(millis d) {
    using days = std::chrono::duration<long long, std::ratio<86400>>;
    const auto n = std::chrono::duration_cast<days>(d < millis{0} ? -d : d).count();
    if (n == 0) {
        return human_duration(d);
    }
    return std::to_string(n) + (n == 1 ? " day" : " days");
}

std::string clock_utc(wall_time t) {
    return format_rfc3339(t).substr(11, 5) + " UTC";
}

std::string percent_text(double ratio) {
    return std::to_string(std::lround(ratio * 100)) + "%";
}

std::string format_rfc3339(wall_time t) {
    // Hand-rolled for the same reason as the parser: every log line carries a timestamp.
    const auto day = std::chrono::floor<date::days>(t);
    const date::year_month_day ymd{day};
    const date::hh_mm_ss<millis> hms{t - day};
    char buf[32];
    const int n = std::snprintf(
        buf,
        sizeof buf,
        "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
        static_cast<int>(ymd.year()),
        static_cast<unsigned>(ymd.month()),
        static_cast<unsigned>(ymd.day()),
        static_cast<int>(hms.hours().count()),
        static_cast<int>(hms.minutes().count()),
        static_cast<int>(hms.seconds().count()),
        static_cast<int>(hms.subseconds().count())
    );
    return std::string(buf, static_cast<std::size_t>(n));
}

std::string format_rfc3339_seconds(wall_time t) {
    std::string text = format_rfc3339(t);
    text.erase(19, 4);  // ".mmm" before the "Z"
    return text;
}

namespace {

/// Reads exactly `n` digits at `pos`; nullopt otherwise.
std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t n) {
    if (pos + n > text.size()) {
        return std::nullopt;
    }
    int value = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return std::nullopt;
        }
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

}  // namespace

std::optional<wall_time> parse_rfc3339(std::string_view text) {
    // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM); hand-rolled because it runs on
    // every webhook and a stream-based parse costs more than the rest of the intake.
    const auto year = digits(text, 0, 4);
    const auto month = digits(text, 5, 2);
    const auto day = digits(text, 8, 2);
    const auto hour = digits(text, 11, 2);
    const auto minute = digits(text, 14, 2);
    const auto second = digits(text, 17, 2);
    if (!year || !month || !day || !hour || !minute || !second || text[4] != '-' || text[7] != '-' ||
        (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
        return std::nullopt;
    }
    const date::year_month_day ymd{
        date::year{*year},
        date::month(static_cast<unsigned>(*month)),
        date::day(static_cast<unsigned>(*day))};
    if (!ymd.ok() || *hour > 23 || *minute > 59 || *second > 60) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    millis fraction{0};
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        int scale = 100;
        const auto first = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            fraction += millis{(text[pos] - '0') * scale};
            scale /= 10;
            ++pos;
        }
        if (pos == first) {
            return std::nullopt;
        }
    }
    std::chrono::minutes offset{0};
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
        ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        const auto oh = digits(text, pos + 1, 2);
        const auto om = digits(text, pos + 4, 2);
        if (!oh || !om || text[pos + 3] != ':' || *oh > 23 || *om > 59) {
            return std::nullopt;
        }
        offset = std::chrono::hours{*oh} + std::chrono::minutes{*om};
        if (text[pos] == '-') {
            offset = -offset;
        }
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != text.size()) {
        return std::nullopt;
    }
    const auto local = date::sys_days{ymd} + std::chrono::hours{*hour} + std::chrono::minutes{*minute} +
                       std::chrono::seconds{*second};
    return std::chrono::time_point_cast<millis>(local - offset) + fraction;
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
