#include "notify/discord/config.hpp"

#include "core/chars.hpp"
#include "yaml/section.hpp"

#include <algorithm>

namespace runbookd::notify::discord {
namespace {

constexpr std::string_view webhook_url_hint =
    "expected https://discord.com/api/webhooks/<id>/<token>, or "
    "https://HOST[:PORT][/PATH]/webhooks/<id>/<token>";

bool discord_host(std::string_view host) {
    return host == "discord.com" || host == "discordapp.com" || host == "canary.discord.com" ||
           host == "ptb.discord.com";
}

/// The host of https://host[:port]..., lower-cased, without its port.
std::string host_of(std::string_view url) {
    url.remove_prefix(std::min(url.size(), url.find("://") + 3));
    std::string_view authority = url.substr(0, url.find('/'));
    if (!authority.starts_with('[')) {
        authority = authority.substr(0, authority.find(':'));
    }
    std::string out{authority};
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

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
    return webhook{std::move(parts.root), std::move(parts.id), secret<std::string>{std::move(parts.token)}};
}

}  // namespace

std::string webhook_root(const config& c, const webhook& w) {
    return c.base_url.empty() ? w.root : c.base_url;
}

webhook_parts parse_webhook_url(std::string_view url) {
    constexpr std::string_view scheme = "https://";
    if (url.size() < scheme.size() || lower(url.substr(0, scheme.size())) != scheme) {
        return {{}, {}, {}, "the scheme must be https"};
    }
    if (url.find_first_of("?#") != std::string_view::npos) {
        return {{}, {}, {}, "a query or fragment is not allowed"};
    }
    constexpr std::string_view bad_path = "the path must end in /webhooks/<id>/<token>";
    const auto path_start = url.find('/', scheme.size());
    const auto hook = url.rfind("/webhooks/");
    if (path_start == std::string_view::npos || hook == std::string_view::npos || hook < path_start) {
        return {{}, {}, {}, std::string{bad_path}};
    }
    // The host, port and path before /webhooks/ are checked as any base URL is; plain http
    // is refused even for a loopback host: the token must never travel in clear.
    const auto checked = yaml::parse_base_url(url.substr(0, hook));
    if (!checked.reason.empty()) {
        return {{}, {}, {}, checked.reason};
    }
    std::string root = checked.url;
    const auto path_at = root.find('/', scheme.size());
    const std::string path = path_at == std::string::npos ? std::string{} : root.substr(path_at);
    if (discord_host(host_of(root))) {
        // Discord's own URLs: /api/webhooks/... or /api/v<N>/webhooks/...
        const bool versioned = path.starts_with("/api/v") && path.size() > 6 && all_digits(path.substr(6));
        if (path != "/api" && !versioned) {
            return {{}, {}, {}, "on Discord's hosts the path must be /api[/v<N>]/webhooks/<id>/<token>"};
        }
    }
    if (path.ends_with("/api")) {
        root += "/v10";  // the unversioned API is Discord's deprecated default (api-facts §2.1)
    }
    const std::string_view rest = url.substr(hook + 10);
    const auto sep = rest.find('/');
    if (sep == std::string_view::npos) {
        return {{}, {}, {}, std::string{bad_path}};
    }
    const auto id = rest.substr(0, sep);
    const auto token = rest.substr(sep + 1);
    if (!all_digits(id)) {
        return {{}, {}, {}, "the webhook id must be all digits"};
    }
    const auto token_char = [](char c) { return is_alpha(c) || is_digit(c) || c == '_' || c == '-'; };
    if (token.empty() || !std::all_of(token.begin(), token.end(), token_char)) {
        return {{}, {}, {}, "the webhook token must be letters, digits, '_' or '-'"};
    }
    return {std::move(root), std::string{id}, std::string{token}, {}};
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
    if (!out.base_url.empty()) {
        // Kept for existing configurations (a proxy or a test server named apart from the
        // URLs); it would silently send a URL naming its own host elsewhere.
        for (const webhook* w : {&out.status, &out.operations}) {
            if (w->configured() && !discord_host(host_of(w->root))) {
                s.report(
                    "base_url",
                    "deprecated, and the webhook URLs name their own host: remove base_url (requests "
                    "go to each webhook URL's host and port)"
                );
                break;
            }
        }
    }
}

}  // namespace runbookd::notify::discord
