#pragma once
// Reading Google's JSON answers, for the parse halves of the Google sources only (it
// includes nlohmann/json: never include it from a header others include).

#include "core/error.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace runbookd::sources::google::json_read {

using json = nlohmann::json;

/// A parse failure about a Google answer.
inline failure bad(std::string what) {
    return make_failure(errc::parse_failed, "google cloud: " + std::move(what));
}

/// The string at `key`, or "" when it is absent or not a string.
inline std::string text(const json& j, std::string_view key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

/// The value at `key`, or null when absent.
inline const json& field(const json& j, std::string_view key) {
    static const json none;
    const auto it = j.find(key);
    return it != j.end() ? *it : none;
}

}  // namespace runbookd::sources::google::json_read
