#include "notify/discord/config.hpp"

#include "core/chars.hpp"
#include "yaml/section.hpp"

#include <algorithm>

namespace runbookd::notify::discord {
namespace {

constexpr std::string_view webhook_url_hint = "expected https://discord.com/api/webhooks/<id>/<token>";

/// Webhook names are 1-80 characters; a longer `username` override is rejected with a 400:
/// https://discord.com/developers/docs/resources/webhook#create-webhook
constexpr std::size_t username_max = 80;

std::string lower(std::string_view s) {
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

// Reads `key` or `key_file`. An empty value means "not configured". Messages never
// contain the URL or its token; a file's path is shown, its contents never.
webhook read_webhook(yaml::section& s, const std::string& key) {
    secret<std::string> url;
    const std::string file = s.secret(key, url);
    if (url.empty()) {
        return {};
    }
    auto parts = parse_webhook_url(url.reveal());
    if (!parts.reason.empty()) {
        const std::string where = file.empty() ? "not a Discord webhook URL: "
                                               : "'" + file + "' does not hold a Discord webhook URL: ";
        s.report(
            file.empty() ? key : key + "_file",
            where + parts.reason + " (" + std::string{webhook_url_hint} + ")"
        );
        return {};
    }
    return webhook{std::move(parts.id), secret<std::string>{std::move(parts.token)}};
}

}  // namespace

webhook_parts parse_webhook_url(std::string_view url) {
    constexpr std::string_view scheme = "https://";
    if (url.size() < scheme.size() || lower(url.substr(0, scheme.size())) != scheme) {
        return {{}, {}, "the scheme must be https"};
    }
    url.remove_prefix(scheme.size());
    const auto slash = url.find('/');
    const std::string host = lower(url.substr(0, slash));
    if (host != "discord.com" && host != "discordapp.com" && host != "canary.discord.com" &&
        host != "ptb.discord.com") {
        return {
            {}, {}, "the host must be discord.com, discordapp.com, canary.discord.com or ptb.discord.com"};
    }
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
    constexpr std::string_view bad_path = "the path must be /api/webhooks/<id>/<token>";
    if (!path.starts_with("/api/")) {
        return {{}, {}, std::string{bad_path}};
    }
    path.remove_prefix(5);
    // An optional API version segment: /api/v10/webhooks/...
    if (path.starts_with("v")) {
        const auto end = path.find('/');
        if (end == std::string_view::npos || !all_digits(path.substr(1, end - 1))) {
            return {{}, {}, std::string{bad_path}};
        }
        path.remove_prefix(end + 1);
    }
    if (!path.starts_with("webhooks/")) {
        return {{}, {}, std::string{bad_path}};
    }
    path.remove_prefix(9);
    const auto sep = path.find('/');
    if (sep == std::string_view::npos) {
        return {{}, {}, std::string{bad_path}};
    }
    const auto id = path.substr(0, sep);
    const auto token = path.substr(sep + 1);
    if (!all_digits(id)) {
        return {{}, {}, "the webhook id must be all digits"};
    }
    const auto token_char = [](char c) { return is_alpha(c) || is_digit(c) || c == '_' || c == '-'; };
    if (token.empty() || !std::all_of(token.begin(), token.end(), token_char)) {
        return {{}, {}, "the webhook token must be letters, digits, '_' or '-'"};
    }
    return {std::string{id}, std::string{token}, {}};
}

void read(yaml::section& s, config& out) {
    s.keys(
        {"base_url",
         "ca_file",
         "username",
         "request_timeout",
         "status_webhook_url",
         "status_webhook_url_file",
         "operations_webhook_url",
         "operations_webhook_url_file"}
    );
    s.url("base_url", out.base_url);
    s.file("ca_file", out.ca_file, "CA file");
    if (auto v = s.string("username", true)) {
        // Discord counts characters, not bytes: skip UTF-8 continuation bytes.
        const auto chars = std::count_if(v->begin(), v->end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        });
        if (static_cast<std::size_t>(chars) > username_max) {
            s.report(
                "username",
                "must be at most " + std::to_string(username_max) + " characters (Discord's limit)"
            );
        } else {
            out.username = std::move(*v);
        }
    }
    s.get("request_timeout", out.request_timeout, std::chrono::milliseconds{1});
    out.status = read_webhook(s, "status_webhook_url");
    out.operations = read_webhook(s, "operations_webhook_url");
}

}  // namespace runbookd::notify::discord
