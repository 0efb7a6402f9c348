#pragma once
// A notifier that answers from a script and records what it was asked to send.

#include "notify/notifier.hpp"

#include <deque>
#include <vector>

namespace runbookd::fakes {

class scripted_notifier final : public notify::notifier {
public:
    struct call {
        channel to;
        std::vector<std::string> keys;
        std::string edited;  ///< the message id an edit replaced; empty for a send
    };

    /// Answers in order; once the script is used up every call succeeds.
    explicit scripted_notifier(std::deque<notify::delivery> script = {}, std::size_t batch = 10)
        : script_(std::move(script)), batch_(batch) {}

    std::string_view kind() const noexcept override { return "scripted"; }
    bool has_channel(channel to) const noexcept override { return to == channel::status || operations_; }
    std::size_t fit(std::span<const post> posts) const override {
        return std::max<std::size_t>(1, std::min(posts.size(), batch_));
    }
    boost::asio::awaitable<notify::delivery> send(channel to, std::span<const post> posts) override {
        call c{to, {}, {}};
        for (const auto& p : posts) {
            c.keys.push_back(p.key);
        }
        calls.push_back(std::move(c));
        notify::delivery d;
        if (!script_.empty()) {
            d = script_.front();
            script_.pop_front();
        }
        if (d.outcome == net::verdict::ok && d.message_id.empty()) {
            d.message_id = "m" + std::to_string(calls.size());
        }
        co_return d;
    }

    boost::asio::awaitable<notify::delivery> edit(channel to, const std::string& message_id, const post& p)
        override {
        calls.push_back(call{to, {p.key}, message_id});
        notify::delivery d;
        if (!script_.empty()) {
            d = script_.front();
            script_.pop_front();
        }
        if (d.outcome == net::verdict::ok && d.message_id.empty()) {
            d.message_id = message_id;
        }
        co_return d;
    }

    void push(notify::delivery d) { script_.push_back(std::move(d)); }
    void enable_operations(bool on) { operations_ = on; }

    std::vector<call> calls;

private:
    std::deque<notify::delivery> script_;
    std::size_t batch_;
    bool operations_ = false;
};

}  // namespace runbookd::fakes
