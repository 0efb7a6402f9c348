#pragma once
// How to react to an upstream's answer: shared by every notifier and poller.

#include <chrono>
#include <optional>
#include <random>
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

/// Exponential backoff with jitter: with d = min(cap, initial * 2^(attempt-1)), a
/// uniformly random wait in [d/2, d].
struct backoff {
    std::chrono::milliseconds initial = std::chrono::milliseconds{500};
    std::chrono::milliseconds cap = std::chrono::seconds{30};

    /// The wait before attempt number `attempt` (1 = first retry).
    std::chrono::milliseconds delay(int attempt, std::mt19937_64& rng) const;
};

}  // namespace runbookd::net
