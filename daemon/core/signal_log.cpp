#include "core/signal_log.hpp"

#include <algorithm>

namespace runbookd {
namespace {

bool earlier(const signal& s, wall_time t) {
    return s.at < t;
}
bool later(wall_time t, const signal& s) {
    return t < s.at;
}

/// The same fact: a source that re-reads a trailing window, or refreshes when a page
/// arrives, hands over again what it already handed over.
bool same_fact(const signal& a, const signal& b) {
    return a.at == b.at && a.subject == b.subject && a.value == b.value && a.values == b.values &&
           a.seen == b.seen && a.source == b.source;
}

}  // namespace

bool signal_log::add(signal s, wall_time now) {
    if (s.at < now - settings_.retention || settings_.max_signals == 0) {
        return false;
    }
    auto& q = by_kind_[s.kind];
    // Signals of one instant are few: compare with each of them.
    const auto same_instant = std::lower_bound(q.begin(), q.end(), s.at, earlier);
    for (auto it = same_instant; it != q.end() && it->at == s.at; ++it) {
        if (same_fact(*it, s)) {
            return false;
        }
    }
    if (q.empty() || q.back().at <= s.at) {
        q.push_back(std::move(s));  // the usual case: signals arrive in time order
    } else {
        q.insert(std::upper_bound(q.begin(), q.end(), s.at, later), std::move(s));
    }
    size_ += 1;
    while (size_ > settings_.max_signals) {
        evict_oldest();
    }
    return true;
}

void signal_log::evict_oldest() {
    // Kinds are few (the catalogue's), so a scan of their fronts is cheap.
    series* oldest = nullptr;
    for (auto& [kind, q] : by_kind_) {
        if (!q.empty() && (oldest == nullptr || q.front().at < oldest->front().at)) {
            oldest = &q;
        }
    }
    if (oldest == nullptr) {
        return;
    }
    oldest->pop_front();
    size_ -= 1;
    evicted_ += 1;
}

void signal_log::expire(wall_time now) {
    const auto horizon = now - settings_.retention;
    for (auto& [kind, q] : by_kind_) {
        while (!q.empty() && q.front().at < horizon) {
            q.pop_front();
            size_ -= 1;
        }
    }
}

const signal_log::series& signal_log::all_of(std::string_view kind) const {
    const auto it = by_kind_.find(kind);
    return it == by_kind_.end() ? none_ : it->second;
}

signal_log::range signal_log::between(std::string_view kind, wall_time from, wall_time to) const {
    const auto it = by_kind_.find(kind);
    if (it == by_kind_.end() || to < from) {
        return {};
    }
    const auto& q = it->second;
    const auto first = std::lower_bound(q.begin(), q.end(), from, earlier);
    const auto last = std::upper_bound(first, q.end(), to, later);
    return {first, last};
}

}  // namespace runbookd
