#pragma once
// The time-indexed log of recent signals that rules read. Bounded in time (retention) and
// in size (max_signals): the oldest signals go first.

#include "core/signal.hpp"
#include "core/time.hpp"

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <ranges>
#include <string>
#include <string_view>

namespace runbookd {

struct signal_log_settings {
    millis retention = std::chrono::hours{12};
    std::size_t max_signals = 200000;
};

/// Signals by kind, each kind's in time order. Runs on the loop thread; not thread-safe.
class signal_log {
public:
    using series = std::deque<signal>;
    using range = std::ranges::subrange<series::const_iterator>;

    explicit signal_log(signal_log_settings settings = {}) : settings_(settings) {}

    /// Adds a signal. Returns false (and keeps nothing) when it is already older than the
    /// retention at `now`, or when the log holds the same fact (kind, subject, time, value,
    /// labels): re-reading a window re-emits nothing. A late signal is placed in time order.
    bool add(signal s, wall_time now);

    /// Drops every signal older than the retention at `now`.
    void expire(wall_time now);

    /// Signals of `kind` with `from <= at <= to`, oldest first.
    range between(std::string_view kind, wall_time from, wall_time to) const;

    /// Every signal of `kind`, oldest first (empty when none): the series between() returns
    /// ranges of, so that a position in it can key a per-ranking memo.
    const series& all_of(std::string_view kind) const;

    std::size_t size() const noexcept { return size_; }
    /// Signals dropped because the log was full (not because they aged out).
    std::size_t evicted() const noexcept { return evicted_; }

    void reconfigure(signal_log_settings settings) { settings_ = settings; }
    const signal_log_settings& settings() const noexcept { return settings_; }

private:
    void evict_oldest();

    signal_log_settings settings_;
    std::map<std::string, series, std::less<>> by_kind_;
    series none_;
    std::size_t size_ = 0;
    std::size_t evicted_ = 0;
};

}  // namespace runbookd
