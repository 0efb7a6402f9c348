#pragma once
// Names as rule files and the configuration write them: shared by the rules readers
// (rules, calendars, tuning). Private to runbookd::rules and config.

#include <algorithm>
#include <span>
#include <string>
#include <string_view>

namespace runbookd::rules {

/// An id as rules, warnings, effects, leaves and calendars have one: lower-case letters,
/// digits, '-' and '_'.
inline bool valid_id(std::string_view id) {
    return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

/// "a, b, c", for messages.
inline std::string words(std::span<const std::string_view> ws) {
    std::string out;
    for (const auto w : ws) {
        out += (out.empty() ? "" : ", ") + std::string{w};
    }
    return out;
}

}  // namespace runbookd::rules
