#pragma once
// Discord #status / #operations through execute-webhook (api-facts §2.2):
// https://discord.com/developers/docs/resources/webhook#execute-webhook

#include "log/log.hpp"
#include "net/http_client.hpp"
#include "net/retry.hpp"
#include "notify/discord/config.hpp"
#include "notify/notifier.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>

namespace runbookd::notify::discord {

/// Sends one message per call with `?wait=true`, so the message id comes back for later
/// edits. Reads rate-limit headers and 429 bodies into the delivery, every wait cut to
/// net::max_retry_after (counted in `metrics` as client="discord"); never retries.
class discord_notifier final : public notifier {
public:
    discord_notifier(net::http_client& http, config settings, log::logger log, prometheus::Registry& metrics);
    /// The same over a client it owns.
    discord_notifier(
        std::unique_ptr<net::http_client> http,
        config settings,
        log::logger log,
        prometheus::Registry& metrics
    );

    std::string_view kind() const noexcept override { return "discord"; }
    bool has_channel(channel to) const noexcept override;
    std::size_t fit(std::span<const post> posts) const override;
    boost::asio::awaitable<delivery> send(channel to, std::span<const post> posts) override;
    boost::asio::awaitable<delivery> edit(channel to, const std::string& message_id, const post& p) override;
    void abort() noexcept override { http_.shutdown(); }

private:
    const discord::webhook& webhook(channel to) const noexcept;
    /// One request to the webhook (`suffix` after the token), its answer classified.
    boost::asio::awaitable<delivery> call(
        channel to, std::string method, std::string suffix, std::string body
    );

    std::unique_ptr<net::http_client> owned_;
    net::http_client& http_;
    config settings_;
    log::logger log_;
    net::retry_after_cap cap_;
};

/// The Discord notifier for `cfg`, over its own HTTPS client (trusting `cfg.ca_file`).
std::unique_ptr<notifier> make(
    const config& cfg, boost::asio::any_io_executor ex, const log::logger& log, prometheus::Registry& metrics
);

}  // namespace runbookd::notify::discord
