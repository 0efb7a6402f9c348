#pragma once
// `discord:` (docs/configuration.md#discord): where and how the Discord notifier posts.

#include "core/secret.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace runbookd::yaml {
class section;
}

namespace runbookd::notify::discord {

/// An execute-webhook target, parsed from its URL: the one Discord shows, or one on any
/// HTTPS host and port (a proxy, a test server) ending in /webhooks/<id>/<token>.
struct webhook {
    /// https://host[:port][/path] before "/webhooks/", "/api" made "/api/v10" (the
    /// unversioned API is a deprecated one). Not a secret, but not logged either.
    std::string root;
    std::string id;
    secret<std::string> token;
    bool configured() const noexcept { return !id.empty(); }

    friend bool operator==(const webhook&, const webhook&) = default;
};

/// `status` is required whenever notify.kind is discord (a check of the config root).
struct config {
    /// Deprecated: empty (the default) sends each webhook's requests to its own URL. Set,
    /// requests go to base_url + "/webhooks/<id>/<token>" whatever the URLs' hosts, as they
    /// used to (scheme://host[:port][/path], no trailing slash; http only for a loopback host).
    std::string base_url;
    std::string ca_file;  ///< empty: the system trust store
    std::string username = "runbookd";
    std::chrono::milliseconds request_timeout = std::chrono::seconds{10};
    webhook status;
    webhook operations;

    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position, never a URL or token.
void read(yaml::section& s, config& out);

/// Where requests to the webhook go: `base_url` when it is set, else the webhook's own root.
std::string webhook_root(const config& c, const webhook& w);

/// The root, id and token of a webhook URL, or why it is not one (without the URL).
struct webhook_parts {
    std::string root;
    std::string id;
    std::string token;
    std::string reason;  ///< empty when valid
};
webhook_parts parse_webhook_url(std::string_view url);

}  // namespace runbookd::notify::discord
