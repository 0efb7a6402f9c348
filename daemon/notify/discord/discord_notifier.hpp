#pragma once
// Discord #status / #operations through execute-webhook (api-facts §2.2):
// https://discord.com/developers/docs/resources/webhook#execute-webhook

#include "config/config.hpp"
#include "log/log.hpp"
#include "net/http_client.hpp"
#include "notify/notifier.hpp"

namespace runbookd::notify::discord {

/// Sends one message per call with `?wait=true`, so the message id comes back for later
/// edits. Reads rate-limit headers and 429 bodies into the delivery; never retries.
class discord_notifier final : public notifier {
public:
    discord_notifier(net::http_client& http, config::discord_config settings, log::logger log);

    std::string_view kind() const noexcept override { return "discord"; }
    bool has_channel(channel to) const noexcept override;
    std::size_t fit(std::span<const post> posts) const override;
    boost::asio::awaitable<delivery> send(channel to, std::span<const post> posts) override;
    boost::asio::awaitable<delivery> edit(channel to, const std::string& message_id, const post& p) override;

private:
    const config::discord_webhook& webhook(channel to) const noexcept;
    /// One request to the webhook (`suffix` after the token), its answer classified.
    boost::asio::awaitable<delivery> call(
        channel to, std::string method, std::string suffix, std::string body
    );

    net::http_client& http_;
    config::discord_config settings_;
    log::logger log_;
};

}  // namespace runbookd::notify::discord
