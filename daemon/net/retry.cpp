#include "net/retry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace runbookd::net {

verdict classify(unsigned status) noexcept {
    if (status >= 200 && status < 300) {
        return verdict::ok;
    }
    if (status == 429) {
        return verdict::rate_limited;
    }
    if (status == 408 || (status >= 500 && status < 600)) {
        return verdict::retryable;
    }
    return verdict::final;
}

std::optional<std::chrono::milliseconds> parse_seconds(std::string_view text) {
    while (!text.empty() && text.front() == ' ') {
        text.remove_prefix(1);
    }
    while (!text.empty() && text.back() == ' ') {
        text.remove_suffix(1);
    }
    double seconds = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc{} || ptr != text.data() + text.size()) {
        return std::nullopt;
    }
    return seconds_to_millis(seconds);
}

std::optional<std::chrono::milliseconds> seconds_to_millis(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) {
        return std::nullopt;
    }
    // A day is far beyond any sane Retry-After; clamp rather than overflow.
    seconds = std::min(seconds, 86400.0);
    return std::chrono::milliseconds{static_cast<long long>(std::ceil(seconds * 1000.0))};
}

retry_after_cap::retry_after_cap(prometheus::Registry& metrics, log::logger log, std::string client)
    : log_(std::move(log)),
      client_(std::move(client)),
      capped_(
          prometheus::BuildCounter()
              .Name("runbookd_retry_after_capped_total")
              .Help(
                  "Upstream waits (Retry-After, a 429's retry_after) cut to the longest honoured, by client."
              )
              .Register(metrics)
              .Add({{"client", client_}})
      ) {}

std::optional<std::chrono::milliseconds> retry_after_cap::operator()(
    std::optional<std::chrono::milliseconds> asked, std::string_view what
) {
    if (!asked || *asked <= max_retry_after) {
        return asked;
    }
    capped_.Increment();
    log_.warn(
        "upstream wait capped",
        {{"client", client_},
         {"field", what},
         {"asked_s", static_cast<double>(asked->count()) / 1000.0},
         {"waiting_s", static_cast<double>(max_retry_after.count()) / 1000.0}}
    );
    return max_retry_after;
}

std::chrono::milliseconds backoff::delay(int attempt, std::mt19937_64& rng) const {
    const int exponent = std::clamp(attempt - 1, 0, 20);
    const auto base = std::min<long long>(cap.count(), initial.count() << exponent);
    // Half fixed, half random: retries spread out but never come back at once.
    std::uniform_int_distribution<long long> jitter{base / 2, base};
    return std::chrono::milliseconds{jitter(rng)};
}

}  // namespace runbookd::net
