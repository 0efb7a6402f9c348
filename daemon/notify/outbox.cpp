#include "notify/outbox.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <span>
#include <vector>

namespace runbookd::notify {

namespace asio = boost::asio;
using loop::steady_clock;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct outbox::lane {
    lane(asio::any_io_executor ex, channel c) : to(c), timer(ex), idle_timer(ex) {}

    channel to;
    std::deque<queued> queue;
    loop::timer timer;       ///< pacing, backoff and rate-limit waits
    loop::timer idle_timer;  ///< parked here while the queue is empty; enqueue cancels it
    steady_clock::time_point not_before{};
    int attempt = 0;
    std::string disabled;  ///< non-empty once the destination was refused for good
    std::size_t solo = 0;  ///< after a batch failed for good, its posts are retried one by one
    bool idle = false;
    bool in_flight = false;
    std::size_t on_wire = 0;  ///< leading posts of `queue` in the request in flight

    prometheus::Gauge* depth = nullptr;
    prometheus::Counter* delivered = nullptr;
    prometheus::Counter* failed = nullptr;
    prometheus::Histogram* latency = nullptr;
    prometheus::Gauge* disabled_gauge = nullptr;
    prometheus::Counter* route_waits = nullptr;
    prometheus::Counter* global_waits = nullptr;
    prometheus::Counter* wait_seconds = nullptr;
    prometheus::Counter* superseded = nullptr;
    prometheus::Counter* repeats = nullptr;
    prometheus::Counter* replaced = nullptr;  ///< reminders replaced by a newer one
    std::map<post_kind, prometheus::Counter*> dropped;

    /// Counts a wait imposed by a rate limit.
    void record_wait(bool global, millis wait) const {
        (global ? global_waits : route_waits)->Increment();
        wait_seconds->Increment(std::chrono::duration<double>(wait).count());
    }
    std::map<net::verdict, prometheus::Counter*> attempts;
};

namespace {

std::string_view verdict_name(net::verdict v) {
    switch (v) {
        case net::verdict::ok: return "ok";
        case net::verdict::retryable: return "retryable";
        case net::verdict::rate_limited: return "rate_limited";
        case net::verdict::final: return "final";
    }
    return "final";
}

}  // namespace

outbox::outbox(
    asio::any_io_executor ex,
    notifier& n,
    outbox_settings settings,
    log::logger log,
    prometheus::Registry& metrics
)
    : executor_(std::move(ex)),
      notifier_(n),
      settings_(settings),
      log_(std::move(log)),
      rng_(std::random_device{}()),
      posts_(prometheus::BuildCounter()
                 .Name("runbookd_posts_total")
                 .Help("Posts by channel and final result (delivered or failed).")
                 .Register(metrics)),
      attempts_(prometheus::BuildCounter()
                    .Name("runbookd_post_attempts_total")
                    .Help("Delivery attempts by channel and outcome.")
                    .Register(metrics)),
      rate_limit_waits_(prometheus::BuildCounter()
                            .Name("runbookd_rate_limit_waits_total")
                            .Help("Waits imposed by the notifier's rate limits, by channel and scope.")
                            .Register(metrics)),
      rate_limit_seconds_(prometheus::BuildCounter()
                              .Name("runbookd_rate_limit_wait_seconds_total")
                              .Help("Seconds spent waiting on rate limits, by channel.")
                              .Register(metrics)),
      depth_(prometheus::BuildGauge()
                 .Name("runbookd_outbox_depth")
                 .Help("Posts queued and not yet delivered, by channel.")
                 .Register(metrics)),
      latency_(prometheus::BuildHistogram()
                   .Name("runbookd_post_delivery_seconds")
                   .Help("Time from a post's decision to its delivery, by channel.")
                   .Register(metrics)),
      disabled_(prometheus::BuildGauge()
                    .Name("runbookd_channel_disabled")
                    .Help("1 when a channel's destination was refused for good (unknown webhook, bad token).")
                    .Register(metrics)),
      superseded_(
          prometheus::BuildCounter()
              .Name("runbookd_posts_superseded_total")
              .Help("Queued edits replaced by a newer edit of the same message before being sent, by channel."
              )
              .Register(metrics)
      ),
      repeats_(prometheus::BuildCounter()
                   .Name("runbookd_posts_repeated_total")
                   .Help("Posts sent again although they may have arrived (an answer lost, or on the "
                         "wire at a crash): each at most one duplicate, by channel.")
                   .Register(metrics)),
      merged_(prometheus::BuildCounter()
                  .Name("runbookd_posts_merged_total")
                  .Help("Posts not sent on their own: folded into a storm post (reason storm), an "
                        "incident past limits.max_open_incidents (untracked), or a reminder replaced "
                        "by the same incident's newer one (replaced); by channel, kind and reason.")
                  .Register(metrics)),
      dropped_(prometheus::BuildCounter()
                   .Name("runbookd_posts_dropped_total")
                   .Help("Queued posts dropped because their channel's queue was full "
                         "(notify.max_queued_posts), by channel and kind.")
                   .Register(metrics)),
      untracked_(prometheus::BuildCounter()
                     .Name("runbookd_incidents_untracked_total")
                     .Help("New incidents past limits.max_open_incidents: counted in the storm post, "
                           "not followed one by one.")
                     .Register(metrics)
                     .Add({})),
      bugs_(prometheus::BuildCounter()
                .Name("runbookd_bugs_total")
                .Help("Internal invariant violations (RUNBOOKD_BUG); should stay 0.")
                .Register(metrics)
                .Add({})) {
    const std::string kind{notifier_.kind()};
    for (const channel c : {channel::status, channel::operations}) {
        auto l = std::make_unique<lane>(executor_, c);
        const std::string name{to_string(c)};
        l->depth = &depth_.Add({{"channel", name}});
        l->disabled_gauge = &disabled_.Add({{"channel", name}});
        l->delivered = &posts_.Add({{"channel", name}, {"result", "delivered"}});
        l->failed = &posts_.Add({{"channel", name}, {"result", "failed"}});
        l->latency = &latency_.Add(
            {{"channel", name}},
            prometheus::Histogram::BucketBoundaries{
                0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30, 120, 600}
        );
        for (const auto v :
             {net::verdict::ok, net::verdict::retryable, net::verdict::rate_limited, net::verdict::final}) {
            l->attempts[v] = &attempts_.Add(
                {{"channel", name}, {"outcome", std::string{verdict_name(v)}}, {"notifier", kind}}
            );
        }
        l->route_waits = &rate_limit_waits_.Add({{"channel", name}, {"scope", "route"}});
        l->global_waits = &rate_limit_waits_.Add({{"channel", name}, {"scope", "global"}});
        l->wait_seconds = &rate_limit_seconds_.Add({{"channel", name}});
        l->superseded = &superseded_.Add({{"channel", name}});
        l->repeats = &repeats_.Add({{"channel", name}});
        l->replaced = &merged_.Add({{"channel", name}, {"kind", "update"}, {"reason", "replaced"}});
        for (const auto k :
             {post_kind::notice,
              post_kind::update,
              post_kind::relay,
              post_kind::resolved,
              post_kind::reopened,
              post_kind::summary,
              post_kind::timeline,
              post_kind::storm}) {
            l->dropped[k] = &dropped_.Add({{"channel", name}, {"kind", std::string{to_string(k)}}});
        }
        lanes_[static_cast<std::size_t>(c)] = std::move(l);
    }
}

outbox::~outbox() {
    stop();
}

void outbox::start() {
    for (auto& l : lanes_) {
        spawn_worker(*l);
    }
}

void outbox::spawn_worker(lane& l) {
    // An exception escaping a worker is a bug (every expected failure is a value): it is
    // logged and counted, and the lane restarts a second later rather than go silent.
    asio::co_spawn(executor_, run(l), [this, &l](const std::exception_ptr& e) {
        if (!e || stopping_) {
            return;
        }
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log_.error(
                "outbox worker failed", {{"channel", std::string{to_string(l.to)}}, {"error", ex.what()}}
            );
        } catch (...) {
            log_.error("outbox worker failed", {{"channel", std::string{to_string(l.to)}}});
        }
        bugs_.Increment();
        l.in_flight = false;
        l.on_wire = 0;
        l.idle = false;
        l.not_before = steady_clock::now() + std::chrono::seconds{1};
        spawn_worker(l);
    });
}

const std::string& outbox::disabled_reason(channel c) const noexcept {
    return lanes_[static_cast<std::size_t>(c)]->disabled;
}

void outbox::stop() {
    stopping_ = true;
    for (auto& l : lanes_) {
        l->timer.cancel();
        l->idle_timer.cancel();
    }
}

std::size_t outbox::depth(channel c) const noexcept {
    return lanes_[static_cast<std::size_t>(c)]->queue.size();
}

std::optional<std::string> outbox::message_id(const std::string& key) const {
    const auto it = message_ids_.find(key);
    return it == message_ids_.end() ? std::nullopt : std::optional{it->second};
}

void outbox::remember(const std::string& key, const std::string& id, bool replace) {
    if (id.empty() || settings_.remembered_ids == 0) {
        return;
    }
    if (replace) {
        if (const auto it = message_ids_.find(key); it != message_ids_.end()) {
            it->second = id;
            return;
        }
    }
    if (message_ids_.emplace(key, id).second) {
        id_order_.push_back(key);
        if (id_order_.size() > settings_.remembered_ids) {
            message_ids_.erase(id_order_.front());
            id_order_.pop_front();
        }
    }
}

void outbox::journal(journal_hooks hooks) {
    journal_ = std::move(hooks);
}

void outbox::record(change c) const {
    if (journal_.record) {
        journal_.record(c);
    }
}

bool outbox::remove(lane& l, const std::string& key) {
    const auto it =
        std::find_if(l.queue.begin(), l.queue.end(), [&](const queued& q) { return q.p.key == key; });
    if (it == l.queue.end()) {
        return false;
    }
    l.queue.erase(it);
    return true;
}

void outbox::restore(const change& c) {
    auto& l = *lanes_[static_cast<std::size_t>(c.to)];
    const auto find = [&l](const std::string& key) {
        return std::find_if(l.queue.begin(), l.queue.end(), [&](const queued& q) { return q.p.key == key; });
    };
    switch (c.what) {
        case change::kind::enqueued:
            if (c.p) {
                // At the place enqueue gave it: the same rule over the same queue.
                const auto at = static_cast<std::ptrdiff_t>(place(l, *c.p));
                l.queue.insert(l.queue.begin() + at, queued{*c.p, steady_clock::now()});
            }
            break;
        case change::kind::replaced:
            if (const auto it = c.keys.empty() ? l.queue.end() : find(c.keys.front());
                it != l.queue.end() && c.p) {
                it->p = *c.p;
            }
            break;
        case change::kind::sending:
            for (const auto& key : c.keys) {
                if (const auto it = find(key); it != l.queue.end()) {
                    it->maybe_sent = true;
                }
            }
            break;
        case change::kind::refused:
            for (const auto& key : c.keys) {
                if (const auto it = find(key); it != l.queue.end()) {
                    it->maybe_sent = false;
                }
            }
            break;
        case change::kind::delivered:
            for (const auto& key : c.keys) {
                remove(l, key);
                remember(key, c.message_id);
            }
            break;
        case change::kind::failed:
            for (const auto& key : c.keys) {
                remove(l, key);
            }
            break;
        case change::kind::remember:
            if (!c.keys.empty()) {
                remember(c.keys.front(), c.message_id, true);
            }
            break;
        case change::kind::forget:
            if (!c.keys.empty()) {
                message_ids_.erase(c.keys.front());
            }
            break;
    }
    l.depth->Set(static_cast<double>(l.queue.size()));
}

std::vector<change> outbox::state() const {
    std::vector<change> out;
    for (const auto& key : id_order_) {
        if (const auto it = message_ids_.find(key); it != message_ids_.end()) {
            out.push_back(change{
                .what = change::kind::remember,
                .to = channel::status,
                .keys = {key},
                .message_id = it->second});
        }
    }
    for (const auto& l : lanes_) {
        for (std::size_t i = 0; i < l->queue.size(); ++i) {
            const auto& q = l->queue[i];
            out.push_back(change{.what = change::kind::enqueued, .to = l->to, .p = q.p});
            // On the wire now: after a restart it may have arrived.
            if (q.maybe_sent || i < l->on_wire) {
                out.push_back(change{.what = change::kind::sending, .to = l->to, .keys = {q.p.key}});
            }
        }
    }
    return out;
}

void outbox::enqueue(post p) {
    auto& l = *lanes_[static_cast<std::size_t>(p.to)];
    count_merged(l, p);
    if (!notifier_.has_channel(p.to)) {
        log_.warn(
            "post dropped: channel not configured",
            {{"channel", std::string{to_string(p.to)}}, {"key", p.key}}
        );
        l.failed->Increment();
        return;
    }
    if (!l.disabled.empty()) {
        l.failed->Increment();
        log_.error(
            "post failed",
            {{"channel", std::string{to_string(p.to)}},
             {"key", p.key},
             {"error", "channel disabled: " + l.disabled}}
        );
        return;
    }
    if (!p.edit_of.empty() && supersede(l, p)) {
        return;
    }
    if (p.kind == post_kind::update && replace_reminder(l, p)) {
        return;
    }
    record(change{.what = change::kind::enqueued, .to = p.to, .keys = {}, .p = p});
    const auto at = static_cast<std::ptrdiff_t>(place(l, p));
    l.queue.insert(l.queue.begin() + at, queued{std::move(p), steady_clock::now()});
    bound(l);
    l.depth->Set(static_cast<double>(l.queue.size()));
    if (l.idle) {
        l.idle_timer.cancel();
    }
}

bool outbox::supersede(lane& l, post& p) {
    // The posts on the wire are never changed.
    const std::size_t first = l.on_wire;
    for (std::size_t i = l.queue.size(); i-- > first;) {
        post& queued_post = l.queue[i].p;
        const bool same_edit = queued_post.edit_of == p.edit_of;
        const bool original = queued_post.key == p.edit_of;
        if (!same_edit && !original) {
            continue;
        }
        log_.debug(
            "post superseded",
            {{"channel", std::string{to_string(l.to)}}, {"key", queued_post.key}, {"by", p.key}}
        );
        l.superseded->Increment();
        const std::string replaced = queued_post.key;
        if (original) {
            queued_post.text = std::move(p.text);  // the original goes out with the newest text
        } else {
            queued_post = std::move(p);
        }
        record(change{.what = change::kind::replaced, .to = l.to, .keys = {replaced}, .p = queued_post});
        return true;
    }
    return false;
}

bool outbox::replace_reminder(lane& l, post& p) {
    for (std::size_t i = l.on_wire; i < l.queue.size(); ++i) {
        post& older = l.queue[i].p;
        if (older.kind != post_kind::update || older.incident_id != p.incident_id || !older.edit_of.empty()) {
            continue;
        }
        // Its turn in the queue, the newest text: an outage leaves one reminder per incident.
        const std::string replaced = older.key;
        l.replaced->Increment();
        log_.info(
            "post merged",
            {{"channel", std::string{to_string(l.to)}},
             {"key", replaced},
             {"into", p.key},
             {"reason", "replaced"}}
        );
        older = std::move(p);
        record(change{.what = change::kind::replaced, .to = l.to, .keys = {replaced}, .p = older});
        return true;
    }
    return false;
}

std::size_t outbox::place(const lane& l, const post& p) {
    const bool first =
        p.kind == post_kind::notice || p.kind == post_kind::reopened || p.kind == post_kind::storm;
    if (first) {
        for (std::size_t i = l.on_wire; i < l.queue.size(); ++i) {
            if (l.queue[i].p.kind == post_kind::update) {
                return i;  // a new incident's notice is worth more than a reminder of an old one
            }
        }
    }
    return l.queue.size();
}

void outbox::bound(lane& l) {
    while (l.queue.size() > std::max<std::size_t>(settings_.max_queued, 1) && l.queue.size() > l.on_wire) {
        const auto oldest = [&](post_kind k) {
            for (std::size_t i = l.on_wire; i < l.queue.size(); ++i) {
                if (l.queue[i].p.kind == k) {
                    return i;
                }
            }
            return l.queue.size();
        };
        std::size_t victim = oldest(post_kind::update);
        if (victim == l.queue.size()) {
            victim = oldest(post_kind::relay);
        }
        if (victim == l.queue.size()) {
            victim = l.on_wire;  // nothing but notices, resolutions and summaries: the oldest
        }
        const post& p = l.queue[victim].p;
        const std::string reason = "dropped: the channel's queue is full (notify.max_queued_posts " +
                                   std::to_string(settings_.max_queued) + ")";
        record(change{.what = change::kind::failed, .to = l.to, .keys = {p.key}, .reason = reason});
        l.dropped[p.kind]->Increment();
        // A reminder dropped is a warning (a newer one follows); anything else is an error.
        const bool reminder = p.kind == post_kind::update || p.kind == post_kind::relay;
        const std::initializer_list<log::field> fields{
            {"channel", std::string{to_string(l.to)}},
            {"key", p.key},
            {"kind", std::string{to_string(p.kind)}},
            {"error", reason}};
        if (reminder) {
            log_.warn("post dropped", fields);
        } else {
            log_.error("post dropped", fields);
        }
        l.queue.erase(l.queue.begin() + static_cast<std::ptrdiff_t>(victim));
    }
}

void outbox::count_merged(const lane& l, const post& p) {
    if (p.merged.empty()) {
        return;
    }
    const std::string channel_name{to_string(l.to)};
    std::string what;
    for (const auto& m : p.merged) {
        merged_
            .Add(
                {{"channel", channel_name},
                 {"kind", std::string{to_string(m.kind)}},
                 {"reason", std::string{to_string(m.reason)}}}
            )
            .Increment(static_cast<double>(m.count));
        if (m.reason == merge_reason::untracked) {
            untracked_.Increment(static_cast<double>(m.count));
        }
        what += (what.empty() ? "" : " ") + std::string{to_string(m.kind)} + ":" +
                std::string{to_string(m.reason)} + "=" + std::to_string(m.count);
    }
    // One line per storm post or edit, so at most one per limits.storm_edit_interval.
    log_.info("posts merged", {{"channel", channel_name}, {"into", p.key}, {"merged", what}});
}

asio::awaitable<void> outbox::deliver_edit(lane& l) {
    const post p = l.queue.front().p;  // a copy: the queue may change while we wait
    const auto id = message_id(p.edit_of);
    l.in_flight = true;
    l.on_wire = 1;
    co_await before_send(l, 1);
    delivery d;
    if (id) {
        d = co_await notifier_.edit(l.to, *id, p);
    } else {
        // The message to edit was never delivered (it failed for good) or was forgotten:
        // the newest text goes out as a new message, and later edits go to that one.
        d = co_await notifier_.send(l.to, std::span<const post>{&p, 1});
    }
    l.in_flight = false;
    l.on_wire = 0;
    if (d.outcome == net::verdict::ok && !id) {
        remember(p.edit_of, d.message_id, true);
        record(change{
            .what = change::kind::remember, .to = l.to, .keys = {p.edit_of}, .message_id = d.message_id});
    }
    if (d.outcome == net::verdict::final && d.message_gone) {
        // Someone deleted the message: post this edit as a new one, after the usual spacing.
        message_ids_.erase(p.edit_of);
        record(change{.what = change::kind::forget, .to = l.to, .keys = {p.edit_of}});
        l.attempts[d.outcome]->Increment();
        l.not_before = steady_clock::now() + settings_.min_spacing;
        log_.warn(
            "message to edit is gone; posting anew",
            {{"channel", std::string{to_string(l.to)}}, {"key", p.key}, {"error", d.reason}}
        );
        co_return;
    }
    settle(l, 1, d);
}

asio::awaitable<void> outbox::before_send(lane& l, std::size_t n) {
    change c{.what = change::kind::sending, .to = l.to};
    for (std::size_t i = 0; i < n && i < l.queue.size(); ++i) {
        auto& q = l.queue[i];
        c.keys.push_back(q.p.key);
        if (q.maybe_sent) {
            l.repeats->Increment();
            log_.warn(
                "post sent again; it may have arrived",
                {{"channel", std::string{to_string(l.to)}}, {"key", q.p.key}}
            );
        }
    }
    record(std::move(c));
    if (journal_.before_send) {
        co_await journal_.before_send();
    }
}

asio::awaitable<void> outbox::run(lane& l) {
    while (!stopping_) {
        if (l.queue.empty()) {
            l.idle = true;
            l.idle_timer.expires_at(steady_clock::time_point::max());
            co_await l.idle_timer.async_wait(tuple_awaitable);
            l.idle = false;
            continue;
        }
        const auto ready = std::max(l.not_before, global_not_before_);
        if (steady_clock::now() < ready) {
            // Pacing, backoff or a rate limit. Posts that arrive meanwhile join the batch.
            l.timer.expires_at(ready);
            co_await l.timer.async_wait(tuple_awaitable);
            continue;
        }

        if (!l.queue.front().p.edit_of.empty()) {
            co_await deliver_edit(l);
            continue;
        }

        // Coalesce the run of coalescible posts at the head; anything else goes alone, and
        // so does a post that may have arrived already (a batch is never resent whole).
        std::vector<post> batch;
        const bool alone = l.solo > 0 || l.queue.front().maybe_sent;
        for (const auto& q : l.queue) {
            if (batch.size() == settings_.max_batch) {
                break;  // never copy a long backlog just to send its head
            }
            if (!batch.empty() && !(q.p.coalescible && batch.front().coalescible)) {
                break;
            }
            batch.push_back(q.p);
            if (!q.p.coalescible) {
                break;
            }
        }
        const auto n = alone ? 1 : notifier_.fit(batch);
        batch.resize(std::min(n, batch.size()));

        l.in_flight = true;
        l.on_wire = batch.size();
        co_await before_send(l, batch.size());
        const delivery d = co_await notifier_.send(l.to, batch);
        l.in_flight = false;
        l.on_wire = 0;
        settle(l, batch.size(), d);
    }
}

void outbox::settle(lane& l, std::size_t n, const delivery& d) {
    const auto now = steady_clock::now();
    const std::string channel_name{to_string(l.to)};
    l.attempts[d.outcome]->Increment();
    if (d.outcome == net::verdict::rate_limited ||
        (d.outcome == net::verdict::retryable && !d.maybe_delivered) ||
        (d.outcome == net::verdict::final && n > 1 && !d.channel_broken)) {
        // The attempt did not arrive: after a restart these posts are not repeats. (A post
        // that may have arrived on an earlier attempt stays so.)
        change c{.what = change::kind::refused, .to = l.to};
        for (std::size_t i = 0; i < n && i < l.queue.size(); ++i) {
            if (!l.queue[i].maybe_sent) {
                c.keys.push_back(l.queue[i].p.key);
            }
        }
        if (!c.keys.empty()) {
            record(std::move(c));
        }
    }
    switch (d.outcome) {
        case net::verdict::final:
            if (d.channel_broken) {
                disable(l, d.reason);
                break;
            }
            if (n > 1) {
                // One bad post must not sink its neighbours: try each alone, paced as usual.
                l.solo = n;
                l.not_before = now + settings_.min_spacing;
                log_.warn(
                    "batch refused; retrying posts one by one",
                    {{"channel", channel_name}, {"error", d.reason}}
                );
                break;
            }
            fail_front(l, n, d.reason);
            l.solo -= l.solo > 0 ? 1 : 0;
            l.attempt = 0;
            l.not_before = now + settings_.min_spacing;
            break;
        case net::verdict::ok: {
            l.solo -= l.solo > 0 ? 1 : 0;
            change c{.what = change::kind::delivered, .to = l.to, .message_id = d.message_id};
            for (std::size_t i = 0; i < n && i < l.queue.size(); ++i) {
                c.keys.push_back(l.queue[i].p.key);
            }
            record(std::move(c));
            for (std::size_t i = 0; i < n; ++i) {
                const auto& q = l.queue.front();
                remember(q.p.key, d.message_id);
                l.delivered->Increment();
                l.latency->Observe(std::chrono::duration<double>(now - q.enqueued).count());
                log_.info(
                    "post delivered",
                    {{"channel", channel_name}, {"key", q.p.key}, {"message_id", d.message_id}}
                );
                l.queue.pop_front();
            }
            l.attempt = 0;
            l.not_before = now + settings_.min_spacing;
            if (d.pause) {
                l.not_before = std::max(l.not_before, now + *d.pause);
                l.record_wait(false, *d.pause);
            }
            break;
        }
        case net::verdict::rate_limited: {
            const auto wait = d.retry_after.value_or(std::chrono::seconds{1});
            if (d.global) {
                global_not_before_ = std::max(global_not_before_, now + wait);
            } else {
                l.not_before = now + wait;
            }
            l.record_wait(d.global, wait);
            log_.warn(
                "post rate limited",
                {{"channel", channel_name}, {"retry_after_ms", wait.count()}, {"global", d.global}}
            );
            break;
        }
        case net::verdict::retryable: {
            l.attempt += 1;
            const auto wait = settings_.retry.delay(l.attempt, rng_);
            l.not_before = now + wait;
            if (d.maybe_delivered) {
                // The answer was lost: each post of the batch goes alone from now on, so a
                // post that did arrive is repeated once, not with every newcomer.
                for (std::size_t i = 0; i < n && i < l.queue.size(); ++i) {
                    l.queue[i].maybe_sent = true;
                }
            }
            // A post that may have arrived is still retried: a rare duplicate beats a
            // lost notice. Counted so the rate of such retries is visible.
            log_.warn(
                "post attempt failed",
                {{"channel", channel_name},
                 {"attempt", l.attempt},
                 {"retry_in_ms", wait.count()},
                 {"maybe_delivered", d.maybe_delivered},
                 {"error", d.reason}}
            );
            break;
        }
    }
    l.depth->Set(static_cast<double>(l.queue.size()));
}

void outbox::fail_front(lane& l, std::size_t n, const std::string& reason) {
    const std::string channel_name{to_string(l.to)};
    change c{.what = change::kind::failed, .to = l.to, .reason = reason};
    for (std::size_t i = 0; i < n && i < l.queue.size(); ++i) {
        c.keys.push_back(l.queue[i].p.key);
    }
    record(std::move(c));
    for (std::size_t i = 0; i < n && !l.queue.empty(); ++i) {
        l.failed->Increment();
        log_.error(
            "post failed", {{"channel", channel_name}, {"key", l.queue.front().p.key}, {"error", reason}}
        );
        l.queue.pop_front();
    }
}

void outbox::disable(lane& l, const std::string& reason) {
    // Every post to this destination would be refused the same way, and Discord asks
    // clients to stop (api-facts §2.8): fail what is queued, refuse what comes, until an
    // operator fixes the webhook and restarts.
    l.disabled = reason;
    l.disabled_gauge->Set(1);
    log_.error("channel disabled", {{"channel", std::string{to_string(l.to)}}, {"error", reason}});
    fail_front(l, l.queue.size(), "channel disabled: " + reason);
    l.solo = 0;
}

asio::awaitable<bool> outbox::drain(millis budget) {
    const auto deadline = steady_clock::now() + budget;
    loop::timer tick{executor_};
    const auto empty = [this] {
        return std::all_of(lanes_.begin(), lanes_.end(), [](const auto& l) {
            return l->queue.empty() && !l->in_flight;
        });
    };
    while (!empty() && steady_clock::now() < deadline) {
        tick.expires_after(
            std::min<steady_clock::duration>(std::chrono::milliseconds{20}, deadline - steady_clock::now())
        );
        co_await tick.async_wait(tuple_awaitable);
    }
    if (empty()) {
        co_return true;
    }
    for (const auto& l : lanes_) {
        for (const auto& q : l->queue) {
            log_.error(
                "post undelivered at shutdown", {{"channel", std::string{to_string(l->to)}}, {"key", q.p.key}}
            );
        }
    }
    co_return false;
}

}  // namespace runbookd::notify
