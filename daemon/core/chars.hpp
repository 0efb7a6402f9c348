#pragma once
// ASCII character classes for the readers of config, rules and vendor ids: never
// locale-dependent, unlike <cctype>.

#include <algorithm>
#include <string_view>

namespace runbookd {

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}
constexpr bool is_alpha(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_alnum(char c) noexcept {
    return is_digit(c) || is_alpha(c);
}
/// `s` without leading and trailing spaces and tabs (HTTP's optional whitespace, and the
/// blanks around a label matcher's parts).
constexpr std::string_view trim_blanks(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}
/// Non-empty and only 0-9.
inline bool all_digits(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

}  // namespace runbookd
