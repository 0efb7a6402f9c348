#pragma once
// The de-duplication memory of the webhook intakes (pagerduty, deploys): a delivery is
// at-least-once, so each remembers the keys of what it accepted (a delivery id, an event id)
// and answers a repeat as a duplicate.

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_set>
#include <utility>

namespace runbookd::intake {

/// Remembers the last `capacity` keys; the oldest is forgotten first. A capacity of 0
/// remembers nothing.
class recent_keys {
public:
    explicit recent_keys(std::size_t capacity) : capacity_(capacity) { set_.reserve(capacity); }
    bool contains(const std::string& key) const { return set_.contains(key); }
    std::size_t size() const noexcept { return order_.size(); }

    void insert(std::string key) {
        if (capacity_ == 0 || set_.contains(key)) {
            return;
        }
        if (order_.size() == capacity_) {
            set_.erase(order_.front());
            order_.pop_front();
        }
        set_.insert(key);
        order_.push_back(std::move(key));
    }

private:
    std::size_t capacity_;
    std::deque<std::string> order_;
    std::unordered_set<std::string> set_;
};

}  // namespace runbookd::intake
