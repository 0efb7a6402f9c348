#include "notify/discord/discord_notifier.hpp"

#include "core/version.hpp"
#include "net/https_client.hpp"
#include "notify/discord/payload.hpp"

namespace runbookd::notify::discord {

namespace asio = boost::asio;

discord_notifier::discord_notifier(
    net::http_client& http, config settings, log::logger log, prometheus::Registry& metrics
)
    : http_(http), settings_(std::move(settings)), log_(std::move(log)), cap_(metrics, log_, "discord") {}

discord_notifier::discord_notifier(
    std::unique_ptr<net::http_client> http, config settings, log::logger log, prometheus::Registry& metrics
)
    : owned_(std::move(http)),
      http_(*owned_),
      settings_(std::move(settings)),
      log_(std::move(log)),
      cap_(metrics, log_, "discord") {}

std::unique_ptr<notifier> make(
    const config& cfg, boost::asio::any_io_executor ex, const log::logger& log, prometheus::Registry& metrics
) {
    if (!cfg.base_url.empty()) {
        log.with("component", "discord")
            .warn(
                "discord.base_url is deprecated: requests go to it, not to the webhook URLs' host; put "
                "the host and port in the webhook URLs and remove base_url"
            );
    }
    // Verification is always on, whatever host the URLs name: ca_file or the system store.
    net::tls_options tls;
    tls.ca_file = cfg.ca_file;
    return std::make_unique<discord_notifier>(
        std::make_unique<net::https_client>(std::move(ex), tls, log.with("component", "http_client")),
        cfg,
        log.with("component", "discord"),
        metrics
    );
}

const webhook& discord_notifier::webhook(channel to) const noexcept {
    return to == channel::status ? settings_.status : settings_.operations;
}

bool discord_notifier::has_channel(channel to) const noexcept {
    return webhook(to).configured();
}

std::size_t discord_notifier::fit(std::span<const post> posts) const {
    return discord::fit(posts);
}

asio::awaitable<delivery> discord_notifier::send(channel to, std::span<const post> posts) {
    co_return co_await call(to, "POST", "?wait=true", execute_body(posts, settings_.username));
}

asio::awaitable<delivery> discord_notifier::edit(channel to, const std::string& message_id, const post& p) {
    // https://discord.com/developers/docs/resources/webhook#edit-webhook-message
    co_return co_await call(to, "PATCH", "/messages/" + message_id, edit_body(p));
}

asio::awaitable<delivery> discord_notifier::call(
    channel to, std::string method, std::string suffix, std::string body
) {
    const auto& hook = webhook(to);
    net::http_call request;
    request.method = std::move(method);
    // The token is in the path: the URL is a secret and is never logged or returned.
    request.url = webhook_root(settings_, hook) + "/webhooks/" + hook.id + "/" + hook.token.reveal() + suffix;
    request.headers = {
        {"Content-Type", "application/json"},
        {"User-Agent", "DiscordBot (https://github.com/runbookd/runbookd, " + std::string{version()} + ")"},
    };
    request.body = std::move(body);
    request.timeout = settings_.request_timeout;

    auto reply = co_await http_.send(std::move(request));
    delivery d;
    if (!reply) {
        d.outcome = reply.error().error.retryable ? net::verdict::retryable : net::verdict::final;
        d.maybe_delivered = reply.error().sent;
        d.reason = reply.error().error.detail;
        co_return d;
    }
    const auto facts = read_response(reply->body);
    d.outcome = net::classify(reply->status);
    switch (d.outcome) {
        case net::verdict::ok:
            d.message_id = facts.message_id;
            // Out of budget on this route: wait for the reset before the next request
            // rather than earn a 429 (api-facts §2.8: parse the headers, never hard-code).
            if (reply->header("x-ratelimit-remaining") == "0") {
                d.pause = cap_(
                    net::parse_seconds(reply->header("x-ratelimit-reset-after")), "x-ratelimit-reset-after"
                );
            }
            break;
        case net::verdict::rate_limited: {
            // The body's retry_after first (it has the decimals), else the header; either is
            // honoured up to net::max_retry_after only, so one bad answer cannot silence a
            // channel for a day.
            if (facts.retry_after) {
                d.retry_after = cap_(net::seconds_to_millis(*facts.retry_after), "retry_after");
            }
            if (!d.retry_after) {
                d.retry_after = cap_(net::parse_seconds(reply->header("retry-after")), "retry-after");
            }
            d.global = facts.global || !reply->header("x-ratelimit-global").empty() ||
                       reply->header("x-ratelimit-scope") == "global";
            d.reason = "discord answered 429";
            break;
        }
        case net::verdict::retryable:
        case net::verdict::final:
            d.reason = "discord answered " + std::to_string(reply->status) +
                       (facts.error.empty() ? std::string{} : ": " + facts.error);
            // 404 Unknown Message (10008) on an edit: someone deleted the message; the webhook
            // itself is fine.
            d.message_gone = reply->status == 404 && facts.code == unknown_message;
            // 401 Invalid Webhook Token (50027), 403 Missing Access, 404 Unknown Webhook
            // (10015): "stop using that webhook" (api-facts §2.8); they also count towards
            // Cloudflare's invalid-request ban.
            d.channel_broken =
                !d.message_gone && (reply->status == 401 || reply->status == 403 || reply->status == 404);
            break;
    }
    co_return d;
}

}  // namespace runbookd::notify::discord
