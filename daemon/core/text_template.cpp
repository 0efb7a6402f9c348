#include "core/text_template.hpp"

#include "core/time.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

namespace runbookd {
namespace {

constexpr std::array<std::string_view, 4> filters{"percent", "duration", "days", "round"};

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

std::optional<double> number(std::string_view s) {
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v)) {
        return std::nullopt;
    }
    return v;
}

std::string apply_filter(std::string_view filter, std::string value) {
    const auto v = number(value);
    if (filter.empty() || !v) {
        return value;  // a filter on text that is not a number leaves it as it is
    }
    if (filter == "percent") {
        return percent_text(*v);
    }
    if (filter == "duration" || filter == "days") {
        const auto ms = static_cast<long long>(std::llround(std::abs(*v) * 1000));
        return filter == "days" ? human_days(millis{ms}) : human_duration(millis{ms});
    }
    return std::to_string(std::llround(*v));  // round
}

}  // namespace

bool known_filter(std::string_view name) noexcept {
    for (const auto f : filters) {
        if (f == name) {
            return true;
        }
    }
    return false;
}

std::optional<text_template> text_template::parse(std::string_view text, std::string& error) {
    text_template t;
    t.source_ = std::string{text};
    std::string literal;
    const auto flush = [&] {
        if (!literal.empty()) {
            t.parts_.push_back(part{std::move(literal), {}, false});
            literal.clear();
        }
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '}') {
            if (i + 1 < text.size() && text[i + 1] == '}') {
                literal += '}';
                ++i;
                continue;
            }
            error = "unmatched '}' (write '}}' for a literal brace)";
            return std::nullopt;
        }
        if (c != '{') {
            literal += c;
            continue;
        }
        if (i + 1 < text.size() && text[i + 1] == '{') {
            literal += '{';
            ++i;
            continue;
        }
        const auto close = text.find('}', i);
        if (close == std::string_view::npos) {
            error = "unclosed '{' (write '{{' for a literal brace)";
            return std::nullopt;
        }
        std::string_view inner = text.substr(i + 1, close - i - 1);
        std::string_view filter;
        if (const auto bar = inner.find('|'); bar != std::string_view::npos) {
            filter = inner.substr(bar + 1);
            inner = inner.substr(0, bar);
        }
        if (inner.empty() || !std::all_of(inner.begin(), inner.end(), name_char)) {
            error = "'{" + std::string{text.substr(i + 1, close - i - 1)} +
                    "}' is not a placeholder (letters, digits and '_', optionally '|filter')";
            return std::nullopt;
        }
        if (!filter.empty() && !known_filter(filter)) {
            error = "unknown filter '" + std::string{filter} + "' (known: percent, duration, days, round)";
            return std::nullopt;
        }
        flush();
        t.parts_.push_back(part{std::string{inner}, std::string{filter}, true});
        i = close;
    }
    flush();
    return t;
}

std::string text_template::render(const lookup& values) const {
    std::string out;
    for (const auto& p : parts_) {
        if (!p.placeholder) {
            out += p.text;
            continue;
        }
        auto v = values(p.text);
        out += v ? apply_filter(p.filter, std::move(*v)) : std::string{"?"};
    }
    return out;
}

}  // namespace runbookd
