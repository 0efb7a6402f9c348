#pragma once
// How to react to an upstream's answer: shared by every notifier and poller.

#include "log/log.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace runbookd::net {

enum class verdict { ok, retryable, rate_limited, final };

/// 2xx ok; 429 rate_limited; 408, 5xx retryable; other 4xx (and 1xx/3xx) final.
verdict classify(unsigned status) noexcept;

/// Parses a seconds value with optional decimals ("2", "64.57") into milliseconds,
/// rounded up; nullopt when not a non-negative number.
std::optional<std::chrono::milliseconds> parse_seconds(std::string_view text);

/// A seconds value (a 429 body's retry_after) in milliseconds, rounded up and clamped to a
/// day; nullopt when negative or not finite.
std::optional<std::chrono::milliseconds> seconds_to_millis(double seconds);

/// The longest wait an upstream may impose with a `Retry-After` header or a 429's
/// `retry_after`: a longer one is cut to it (docs/operations.md). A global 429 from Discord
/// saying 86400 would otherwise silence both channels for a day.
inline constexpr std::chrono::milliseconds max_retry_after = std::chrono::minutes{10};

/// Applies max_retry_after for one client ("discord", a source's name): each wait cut
/// short is counted in `runbookd_retry_after_capped_total{client}` and logged (warn) with
/// what the upstream asked. Runs on the loop thread; not thread-safe.
class retry_after_cap {
public:
    retry_after_cap(prometheus::Registry& metrics, log::logger log, std::string client);

    /// `asked` cut to max_retry_after; nullopt stays nullopt. `what` names the value in the
    /// log line ("retry_after", "retry-after", "x-ratelimit-reset-after").
    std::optional<std::chrono::milliseconds> operator()(
        std::optional<std::chrono::milliseconds> asked, std::string_view what
    );

private:
    log::logger log_;
    std::string client_;
    prometheus::Counter& capped_;
};

/// Exponential backoff with jitter: with d = min(cap, initial * 2^(attempt-1)), a
/// uniformly random wait in [d/2, d].
struct backoff {
    std::chrono::milliseconds initial = std::chrono::milliseconds{500};
    std::chrono::milliseconds cap = std::chrono::seconds{30};

    /// The wait before attempt number `attempt` (1 = first retry).
    std::chrono::milliseconds delay(int attempt, std::mt19937_64& rng) const;
};

}  // namespace runbookd::net
