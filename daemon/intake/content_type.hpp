#pragma once
// The one media type every webhook intake reads: JSON.

#include "net/router.hpp"

#include <boost/beast/http/field.hpp>

#include <string_view>

namespace runbookd::intake {

/// Whether a Content-Type header value is `application/json`, in any case, with or without
/// parameters (`application/json; charset=utf-8`, RFC 9110 §8.3.1). Anything else, an
/// absent header included, is not: a form-encoded or text body is not what we parse.
inline bool is_json_media_type(std::string_view value) noexcept {
    constexpr std::string_view json = "application/json";
    const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!value.empty() && is_space(value.front())) {
        value.remove_prefix(1);
    }
    const auto semicolon = value.find(';');
    std::string_view type = value.substr(0, semicolon);
    while (!type.empty() && is_space(type.back())) {
        type.remove_suffix(1);
    }
    if (type.size() != json.size()) {
        return false;
    }
    for (std::size_t i = 0; i < json.size(); ++i) {
        char c = type[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != json[i]) {
            return false;
        }
    }
    return true;
}

/// Whether `req` says its body is JSON (is_json_media_type of its Content-Type).
inline bool has_json_body(const net::request& req) {
    return is_json_media_type(req[boost::beast::http::field::content_type]);
}

}  // namespace runbookd::intake
