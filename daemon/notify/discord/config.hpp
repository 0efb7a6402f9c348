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

/// An execute-webhook target: id and token parsed from the URL Discord shows.
struct webhook {
    std::string id;
    secret<std::string> token;
    bool configured() const noexcept { return !id.empty(); }

    friend bool operator==(const webhook&, const webhook&) = default;
};

/// `status` is required whenever notify.kind is discord (a check of the config root).
struct config {
    /// scheme://host[:port][/path] without a trailing slash; http only for a loopback host.
    std::string base_url = "https://discord.com/api/v10";
    std::string ca_file;  ///< empty: the system trust store
    std::string username = "runbookd";
    std::chrono::milliseconds request_timeout = std::chrono::seconds{10};
    webhook status;
    webhook operations;

    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position, never a URL or token.
void read(yaml::section& s, config& out);

/// The id and token of a Discord webhook URL, or why it is not one (without the URL).
struct webhook_parts {
    std::string id;
    std::string token;
    std::string reason;  ///< empty when valid
};
webhook_parts parse_webhook_url(std::string_view url);

}  // namespace runbookd::notify::discord
