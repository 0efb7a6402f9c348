#pragma once
// The one interface every notifier implements: deliver one message to one channel and
// classify the outcome. Retries, rate limits, coalescing and metrics belong to the outbox.

#include "core/post.hpp"
#include "core/time.hpp"
#include "net/retry.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace runbookd::notify {

/// The outcome of one delivery attempt.
struct delivery {
    net::verdict outcome = net::verdict::ok;
    std::string message_id;             ///< the vendor's id of the created message (ok)
    std::optional<millis> retry_after;  ///< rate_limited: how long to wait
    bool global = false;                ///< rate_limited: the limit covers every channel
    std::optional<millis> pause;        ///< ok: the route's budget is spent for this long
    bool maybe_delivered = false;       ///< retryable: the request may have reached the vendor
    /// final: the destination itself is refused (unknown webhook, bad token, no access):
    /// every post to this channel would fail the same way, and repeating it earns a ban.
    bool channel_broken = false;
    /// final, on an edit: the message to edit no longer exists (deleted by a person); the
    /// outbox posts the edit as a new message instead.
    bool message_gone = false;
    std::string reason;  ///< redacted, safe to log
};

/// Delivers one rendered message. Must not retry or sleep. Runs on the loop executor.
class notifier {
public:
    virtual ~notifier() = default;
    /// "discord", "console": a metrics label.
    virtual std::string_view kind() const noexcept = 0;
    /// Whether `to` has a destination; posts to an unconfigured channel are dropped with a log line.
    virtual bool has_channel(channel to) const noexcept = 0;
    /// How many leading posts of `posts` fit in one message (at least 1).
    virtual std::size_t fit(std::span<const post> posts) const = 0;
    /// Sends `posts` (as returned by fit) as one message to `to`.
    virtual boost::asio::awaitable<delivery> send(channel to, std::span<const post> posts) = 0;
    /// Replaces the content of the message `message_id` (an id an earlier send returned)
    /// with `p`, in place.
    virtual boost::asio::awaitable<delivery> edit(
        channel to, const std::string& message_id, const post& p
    ) = 0;
    /// Aborts requests in flight (a send past the drain deadline at shutdown).
    virtual void abort() noexcept {}
};

}  // namespace runbookd::notify
