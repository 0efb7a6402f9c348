#pragma once
// The outbox: every post the engine decides goes through here. Per channel, posts go
// out in order, one request at a time, paced, rate-limited and retried until delivered;
// posts that queue up meanwhile are coalesced into one message.

#include "core/post.hpp"
#include "log/log.hpp"
#include "loop/clock.hpp"
#include "net/retry.hpp"
#include "notify/change.hpp"
#include "notify/notifier.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

namespace runbookd::notify {

struct outbox_settings {
    /// Minimum spacing between two messages to one channel; posts queued meanwhile are
    /// coalesced (Discord's advice: about one message per 2 s per channel).
    millis min_spacing = std::chrono::seconds{2};
    net::backoff retry;
    /// At most this many posts are offered to the notifier's fit() for one message
    /// (Discord: 10 embeds).
    std::size_t max_batch = 10;
    /// Message ids remembered for later edits.
    std::size_t remembered_ids = 10000;
    /// Posts queued per channel (notify.max_queued_posts). Past it the oldest queued
    /// reminder is dropped first, then the oldest relay, then the oldest post; each drop is
    /// counted (runbookd_posts_dropped_total) and logged.
    std::size_t max_queued = 1000;
};

/// How the outbox's state reaches the state store: every change as a value, and a wait
/// before a request leaves until what was recorded is durable, so a crash can repeat at
/// most the send that was on the wire.
struct journal_hooks {
    std::function<void(const change&)> record;
    std::function<boost::asio::awaitable<void>()> before_send;
};

/// Runs on the loop executor only; not thread-safe.
class outbox {
public:
    outbox(
        boost::asio::any_io_executor ex,
        notifier& n,
        outbox_settings settings,
        log::logger log,
        prometheus::Registry& metrics
    );
    ~outbox();
    outbox(const outbox&) = delete;
    outbox& operator=(const outbox&) = delete;

    /// Reports every change of the queues and message ids to `hooks` from now on.
    void journal(journal_hooks hooks);

    /// Applies a change recorded before a restart (before start(); nothing is recorded).
    /// Posts that were on the wire when the daemon stopped are sent again, one by one,
    /// and counted: each is at most one duplicate.
    void restore(const change& c);

    /// The outbox's state as changes that restore() rebuilds it from: each queued post
    /// (with `sending` for one that may have arrived) and each remembered message id. What
    /// a compaction of the state store keeps of the outbox.
    std::vector<change> state() const;

    /// Starts one delivery worker per channel.
    void start();

    /// Queues a post. Never blocks; the post stays queued until delivered, final or dropped
    /// past settings.max_queued. An edit (post::edit_of) supersedes a queued edit of the same
    /// message, or is folded into the queued post it edits, so an outage leaves at most one
    /// pending edit per message. A reminder (post_kind::update) replaces the same incident's
    /// queued reminder. A notice, reopened or storm post goes before the queued reminders.
    /// The posts a post stands for (post::merged) are counted and logged.
    void enqueue(post p);

    /// Waits until every queue is empty or `budget` has passed; true when empty.
    /// Undelivered posts are logged one by one when it gives up.
    boost::asio::awaitable<bool> drain(millis budget);

    /// Stops the workers (after drain).
    void stop();

    std::size_t depth(channel c) const noexcept;
    /// Why the channel is disabled (its destination was refused for good), or "" when it works.
    const std::string& disabled_reason(channel c) const noexcept;
    /// The vendor's message id for a delivered post key.
    std::optional<std::string> message_id(const std::string& key) const;

private:
    struct queued {
        post p;
        loop::steady_clock::time_point enqueued;
        /// It may have arrived already (its answer was lost, or the daemon stopped while it
        /// was on the wire): it goes alone, and a repeat is counted.
        bool maybe_sent = false;
    };
    struct lane;

    boost::asio::awaitable<void> run(lane& l);
    /// Records the first `n` queued posts as on the wire and waits until that is durable.
    boost::asio::awaitable<void> before_send(lane& l, std::size_t n);
    void spawn_worker(lane& l);
    void settle(lane& l, std::size_t n, const delivery& d);
    void fail_front(lane& l, std::size_t n, const std::string& reason);
    void disable(lane& l, const std::string& reason);
    void remember(const std::string& key, const std::string& id, bool replace = false);
    void record(change c) const;
    /// Removes the queued post `key`, wherever it is; false when it is not queued.
    static bool remove(lane& l, const std::string& key);
    /// Sends an edit in place, or as a new message when the edited one is unknown.
    boost::asio::awaitable<void> deliver_edit(lane& l);
    /// Folds `p` (an edit) into a queued post of the same message; true when it did.
    bool supersede(lane& l, post& p);
    /// Puts `p` (a reminder) in the place of its incident's queued reminder; true when it did.
    bool replace_reminder(lane& l, post& p);
    /// Where a new post joins the queue: before the first queued reminder not on the wire
    /// for a notice, reopened or storm post; at the back for any other.
    static std::size_t place(const lane& l, const post& p);
    /// Drops queued posts past settings.max_queued: reminders first, then relays, then the oldest.
    void bound(lane& l);
    /// Counts and logs the posts `p` stands for (post::merged).
    void count_merged(const lane& l, const post& p);

    boost::asio::any_io_executor executor_;
    notifier& notifier_;
    outbox_settings settings_;
    log::logger log_;
    std::array<std::unique_ptr<lane>, 2> lanes_;
    loop::steady_clock::time_point global_not_before_{};
    std::mt19937_64 rng_;
    bool stopping_ = false;
    std::map<std::string, std::string> message_ids_;
    journal_hooks journal_;
    std::deque<std::string> id_order_;

    prometheus::Family<prometheus::Counter>& posts_;
    prometheus::Family<prometheus::Counter>& attempts_;
    prometheus::Family<prometheus::Counter>& rate_limit_waits_;
    prometheus::Family<prometheus::Counter>& rate_limit_seconds_;
    prometheus::Family<prometheus::Gauge>& depth_;
    prometheus::Family<prometheus::Histogram>& latency_;
    prometheus::Family<prometheus::Gauge>& disabled_;
    prometheus::Family<prometheus::Counter>& superseded_;
    prometheus::Family<prometheus::Counter>& repeats_;
    prometheus::Family<prometheus::Counter>& merged_;
    prometheus::Family<prometheus::Counter>& dropped_;
    prometheus::Counter& untracked_;
    prometheus::Counter& bugs_;
};

}  // namespace runbookd::notify
