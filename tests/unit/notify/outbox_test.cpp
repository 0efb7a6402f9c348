#include "notify/outbox.hpp"

#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "fakes/scripted_notifier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>

namespace runbookd::notify {
namespace {

using namespace std::chrono_literals;
using fakes::drain;

post status_post(std::string key) {
    post p;
    p.to = channel::status;
    p.kind = post_kind::notice;
    p.key = std::move(key);
    p.coalescible = true;
    p.text.title = "t";
    return p;
}

delivery rate_limited(millis after, bool global = false) {
    delivery d;
    d.outcome = net::verdict::rate_limited;
    d.retry_after = after;
    d.global = global;
    return d;
}

delivery failing(net::verdict v) {
    delivery d;
    d.outcome = v;
    d.reason = "scripted";
    return d;
}

struct outbox_test : ::testing::Test {
    fakes::manual_time time{fakes::at("2026-03-04T16:00:00Z")};
    boost::asio::io_context ioc;
    prometheus::Registry registry;
    fakes::scripted_notifier notifier;
    std::unique_ptr<outbox> box;

    void make(outbox_settings s = {}) {
        box = std::make_unique<outbox>(ioc.get_executor(), notifier, s, log::discard(), registry);
        box->start();
        drain(ioc);
    }
    void TearDown() override {
        if (box) {
            box->stop();
            drain(ioc);
        }
    }
    std::size_t delivered_posts() const {
        std::size_t n = 0;
        for (const auto& c : notifier.calls) {
            n += c.keys.size();
        }
        return n;
    }
};

TEST_F(outbox_test, first_post_goes_out_at_once) {
    make();
    box->enqueue(status_post("a"));
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 1u);
    EXPECT_EQ(notifier.calls[0].keys, std::vector<std::string>{"a"});
    EXPECT_EQ(box->message_id("a"), "m1");
    EXPECT_EQ(box->depth(channel::status), 0u);
}

TEST_F(outbox_test, posts_queued_during_spacing_are_coalesced_in_order) {
    outbox_settings s;
    s.min_spacing = 2s;
    make(s);
    box->enqueue(status_post("a"));
    drain(ioc);
    box->enqueue(status_post("b"));
    box->enqueue(status_post("c"));
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u);
    time.advance(2s - 1ms);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u);
    time.advance(1ms);
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 2u);
    EXPECT_EQ(notifier.calls[1].keys, (std::vector<std::string>{"b", "c"}));
}

TEST_F(outbox_test, a_burst_is_split_by_what_fits_in_one_message) {
    make();
    notifier = fakes::scripted_notifier{{}, 3};
    for (int i = 0; i < 7; ++i) {
        box->enqueue(status_post("p" + std::to_string(i)));
    }
    for (int i = 0; i < 5; ++i) {
        drain(ioc);
        time.advance(2s);
    }
    ASSERT_EQ(notifier.calls.size(), 3u);
    EXPECT_EQ(notifier.calls[0].keys.size(), 3u);
    EXPECT_EQ(notifier.calls[1].keys.size(), 3u);
    EXPECT_EQ(notifier.calls[2].keys, std::vector<std::string>{"p6"});
}

TEST_F(outbox_test, waits_for_retry_after_then_retries) {
    make();
    notifier.push(rate_limited(2500ms));
    box->enqueue(status_post("a"));
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 1u);
    time.advance(2s);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u) << "0.5 s early: no retry yet";
    time.advance(500ms);
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 2u);
    EXPECT_EQ(box->message_id("a"), "m2");
    EXPECT_EQ(box->depth(channel::status), 0u);
}

TEST_F(outbox_test, a_global_rate_limit_holds_every_channel) {
    make();
    notifier.enable_operations(true);
    notifier.push(rate_limited(5s, true));
    box->enqueue(status_post("a"));
    drain(ioc);
    auto ops = status_post("o");
    ops.to = channel::operations;
    box->enqueue(ops);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u);
    time.advance(5s);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 3u);
}

TEST_F(outbox_test, an_outage_loses_nothing_and_delivers_each_post_once_in_order) {
    make();
    for (int i = 0; i < 8; ++i) {
        notifier.push(failing(net::verdict::retryable));
    }
    box->enqueue(status_post("a"));
    drain(ioc);
    box->enqueue(status_post("b"));
    for (int i = 0; i < 40 && box->depth(channel::status) > 0; ++i) {
        time.advance(5s);
        drain(ioc);
        if (i == 3) {
            box->enqueue(status_post("c"));
        }
    }
    EXPECT_EQ(box->depth(channel::status), 0u);
    ASSERT_EQ(notifier.calls.size(), 9u);
    EXPECT_EQ(notifier.calls.back().keys, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(outbox_test, backoff_grows_between_retries) {
    outbox_settings s;
    s.retry = net::backoff{1s, 30s};
    make(s);
    for (int i = 0; i < 3; ++i) {
        notifier.push(failing(net::verdict::retryable));
    }
    box->enqueue(status_post("a"));
    drain(ioc);
    // Retry n waits between 2^(n-1)/2 s and 2^(n-1) s.
    time.advance(499ms);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u);
    time.advance(501ms);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 2u);
    time.advance(999ms);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 2u);
    time.advance(1001ms);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 3u);
}

TEST_F(outbox_test, a_final_failure_retries_batch_members_alone_then_moves_on) {
    make();
    notifier.push(failing(net::verdict::final));  // the batch {a, b}
    notifier.push(failing(net::verdict::final));  // a alone: it really is bad
    box->enqueue(status_post("a"));
    box->enqueue(status_post("b"));
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u);
    time.advance(2s - 1ms);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u) << "the one-by-one retries are paced too";
    for (int i = 0; i < 3; ++i) {
        time.advance(2s);
        drain(ioc);
    }
    ASSERT_EQ(notifier.calls.size(), 3u);
    EXPECT_EQ(notifier.calls[0].keys, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(notifier.calls[1].keys, std::vector<std::string>{"a"});
    EXPECT_EQ(notifier.calls[2].keys, std::vector<std::string>{"b"});
    EXPECT_FALSE(box->message_id("a"));
    EXPECT_TRUE(box->message_id("b"));
    EXPECT_EQ(box->depth(channel::status), 0u);
}

TEST_F(outbox_test, a_refused_destination_disables_the_channel_and_fails_its_queue) {
    make();
    auto refused = failing(net::verdict::final);
    refused.channel_broken = true;
    notifier.push(refused);
    box->enqueue(status_post("a"));
    box->enqueue(status_post("b"));
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u) << "the batch is not retried post by post";
    EXPECT_EQ(box->depth(channel::status), 0u);
    EXPECT_EQ(box->disabled_reason(channel::status), "scripted");
    box->enqueue(status_post("c"));
    time.advance(10s);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u) << "nothing more is sent to a refused destination";
}

TEST_F(outbox_test, an_exhausted_route_budget_pauses_the_channel) {
    outbox_settings s;
    s.min_spacing = 0ms;
    make(s);
    delivery d;
    d.pause = 3s;
    notifier.push(d);
    box->enqueue(status_post("a"));
    drain(ioc);
    box->enqueue(status_post("b"));
    drain(ioc);
    time.advance(3s - 1ms);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 1u);
    time.advance(1ms);
    drain(ioc);
    EXPECT_EQ(notifier.calls.size(), 2u);
}

TEST_F(outbox_test, posts_to_an_unconfigured_channel_are_dropped_and_counted) {
    make();
    auto ops = status_post("o");
    ops.to = channel::operations;
    box->enqueue(ops);
    drain(ioc);
    EXPECT_TRUE(notifier.calls.empty());
    EXPECT_EQ(box->depth(channel::operations), 0u);
}

TEST_F(outbox_test, drain_returns_true_once_empty_and_false_at_the_deadline) {
    make();
    notifier.push(failing(net::verdict::retryable));
    box->enqueue(status_post("a"));
    std::optional<bool> drained;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> { drained = co_await box->drain(100ms); },
        boost::asio::detached
    );
    for (int i = 0; i < 10 && !drained; ++i) {
        drain(ioc);
        time.advance(20ms);
    }
    ASSERT_TRUE(drained.has_value());
    EXPECT_FALSE(*drained);
}

}  // namespace
}  // namespace runbookd::notify

namespace runbookd::notify {
namespace {

TEST_F(outbox_test, a_long_backlog_goes_out_in_batches_of_at_most_max_batch) {
    outbox_settings s;
    s.max_batch = 4;
    s.min_spacing = 0ms;
    make(s);
    notifier.push(failing(net::verdict::retryable));
    for (int i = 0; i < 10; ++i) {
        box->enqueue(status_post("p" + std::to_string(i)));
    }
    for (int i = 0; i < 10 && box->depth(channel::status) > 0; ++i) {
        time.advance(1s);
        drain(ioc);
    }
    EXPECT_EQ(box->depth(channel::status), 0u);
    std::vector<std::string> order;
    for (std::size_t c = 1; c < notifier.calls.size(); ++c) {
        EXPECT_LE(notifier.calls[c].keys.size(), 4u);
        order.insert(order.end(), notifier.calls[c].keys.begin(), notifier.calls[c].keys.end());
    }
    ASSERT_EQ(order.size(), 10u);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(order[static_cast<std::size_t>(i)], "p" + std::to_string(i));
    }
}

}  // namespace
}  // namespace runbookd::notify

namespace runbookd::notify {
namespace {

post summary(std::string key, std::string edit_of = {}, std::string title = "t") {
    post p;
    p.to = channel::operations;
    p.kind = post_kind::summary;
    p.key = std::move(key);
    p.edit_of = std::move(edit_of);
    p.text.title = std::move(title);
    return p;
}

delivery gone() {
    delivery d;
    d.outcome = net::verdict::final;
    d.message_gone = true;
    d.reason = "discord answered 404: Unknown Message (10008)";
    return d;
}

struct outbox_edit_test : outbox_test {
    void SetUp() override { notifier.enable_operations(true); }

    double superseded() {
        for (const auto& family : registry.Collect()) {
            if (family.name != "runbookd_posts_superseded_total") {
                continue;
            }
            for (const auto& m : family.metric) {
                if (m.label.at(0).value == "operations") {
                    return m.counter.value;
                }
            }
        }
        return -1;
    }
};

TEST_F(outbox_edit_test, an_edit_replaces_the_delivered_message_in_place) {
    make();
    box->enqueue(summary("i/0/summary/1"));
    drain(ioc);
    time.advance(2s);
    box->enqueue(summary("i/0/summary/1/edit/1", "i/0/summary/1"));
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 2u);
    EXPECT_TRUE(notifier.calls[0].edited.empty());
    EXPECT_EQ(notifier.calls[1].edited, "m1");
    EXPECT_EQ(notifier.calls[1].keys, std::vector<std::string>{"i/0/summary/1/edit/1"});
    EXPECT_EQ(box->message_id("i/0/summary/1"), "m1");
}

TEST_F(outbox_edit_test, queued_edits_of_one_message_collapse_to_the_newest) {
    make();
    notifier.push(failing(net::verdict::retryable));  // the summary's first attempt fails
    box->enqueue(summary("s/1"));
    drain(ioc);
    box->enqueue(summary("s/1/edit/1", "s/1", "first"));
    box->enqueue(summary("s/1/edit/2", "s/1", "second"));
    // The summary itself is still queued (waiting for its retry): the newest text is
    // folded into it and no edit is left to send.
    EXPECT_EQ(box->depth(channel::operations), 1u);
    time.advance(1min);
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 2u);
    EXPECT_EQ(notifier.calls[1].keys, std::vector<std::string>{"s/1"});
    EXPECT_EQ(box->depth(channel::operations), 0u);
    EXPECT_EQ(superseded(), 2.0);
}

TEST_F(outbox_edit_test, a_rate_limited_edit_is_superseded_by_newer_ones) {
    make();
    box->enqueue(summary("s/1"));
    drain(ioc);
    notifier.push(rate_limited(5s));  // the first edit is refused for 5 s
    time.advance(2s);
    box->enqueue(summary("s/1/edit/1", "s/1", "one"));
    drain(ioc);
    box->enqueue(summary("s/1/edit/2", "s/1", "two"));
    box->enqueue(summary("s/1/edit/3", "s/1", "three"));
    EXPECT_EQ(box->depth(channel::operations), 1u);
    EXPECT_EQ(superseded(), 2.0);  // edit 1 waited out the rate limit in the queue: replaced twice
    time.advance(5s);
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 3u);
    EXPECT_EQ(notifier.calls[2].keys, std::vector<std::string>{"s/1/edit/3"});
    EXPECT_EQ(notifier.calls[2].edited, "m1");
}

TEST_F(outbox_edit_test, an_edit_of_a_message_that_never_arrived_is_posted_as_new) {
    make();
    notifier.push(failing(net::verdict::final));  // the summary is refused for good
    box->enqueue(summary("s/1"));
    drain(ioc);
    time.advance(2s);
    box->enqueue(summary("s/1/edit/1", "s/1"));
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 2u);
    EXPECT_TRUE(notifier.calls[1].edited.empty());  // a send, not an edit
    const auto id = box->message_id("s/1");
    ASSERT_TRUE(id);
    // Later edits go to the message that now stands for the summary.
    time.advance(2s);
    box->enqueue(summary("s/1/edit/2", "s/1"));
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 3u);
    EXPECT_EQ(notifier.calls[2].edited, *id);
}

TEST_F(outbox_edit_test, a_deleted_message_gets_the_edit_as_a_new_message) {
    make();
    box->enqueue(summary("s/1"));
    drain(ioc);
    notifier.push(gone());
    time.advance(2s);
    box->enqueue(summary("s/1/edit/1", "s/1"));
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 2u);
    EXPECT_EQ(notifier.calls[1].edited, "m1");
    EXPECT_EQ(box->depth(channel::operations), 1u);  // not lost
    time.advance(2s);
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 3u);
    EXPECT_TRUE(notifier.calls[2].edited.empty());
    EXPECT_EQ(box->depth(channel::operations), 0u);
    EXPECT_EQ(box->disabled_reason(channel::operations), "");
    EXPECT_EQ(box->message_id("s/1"), "m3");
}

}  // namespace
}  // namespace runbookd::notify

namespace runbookd::notify {
namespace {

double counter(prometheus::Registry& registry, const std::string& name, const std::string& channel_name) {
    for (const auto& family : registry.Collect()) {
        if (family.name != name) {
            continue;
        }
        for (const auto& m : family.metric) {
            for (const auto& l : m.label) {
                if (l.name == "channel" && l.value == channel_name) {
                    return m.counter.value;
                }
            }
        }
    }
    return -1;
}

struct outbox_journal_test : outbox_test {
    std::vector<change> changes;
    std::vector<std::string> events;  ///< "record:<kind>" and "send" in the order they happened

    void journaled(outbox_settings s = {}) {
        make(s);
        box->journal(journal_hooks{
            .record =
                [this](const change& c) {
                    changes.push_back(c);
                    events.push_back("record:" + std::string{to_string(c.what)});
                },
            .before_send = [this]() -> boost::asio::awaitable<void> {
                events.push_back("durable");
                co_return;
            },
        });
    }
    std::vector<std::string> kinds() const {
        std::vector<std::string> out;
        for (const auto& c : changes) {
            out.emplace_back(to_string(c.what));
        }
        return out;
    }
};

TEST_F(outbox_journal_test, every_change_is_recorded_and_durable_before_the_request_leaves) {
    journaled();
    box->enqueue(status_post("a"));
    drain(ioc);
    box->enqueue(status_post("b"));
    time.advance(2s);
    drain(ioc);
    EXPECT_EQ(
        kinds(),
        (std::vector<std::string>{"enqueued", "sending", "delivered", "enqueued", "sending", "delivered"})
    );
    EXPECT_EQ(events.at(2), "durable");  // enqueued, sending, then the wait, then the request
    EXPECT_EQ(changes.at(2).keys, std::vector<std::string>{"a"});
    EXPECT_EQ(changes.at(2).message_id, "m1");
    ASSERT_TRUE(changes.at(0).p);
    EXPECT_EQ(changes.at(0).p->key, "a");
}

TEST_F(outbox_journal_test, a_batch_whose_answer_was_lost_is_resent_one_post_at_a_time) {
    journaled();
    delivery lost = failing(net::verdict::retryable);
    lost.maybe_delivered = true;
    notifier.push(delivery{});  // "a" goes out at once
    notifier.push(lost);        // then "b", "c" together: the answer is lost
    box->enqueue(status_post("a"));
    drain(ioc);
    box->enqueue(status_post("b"));
    box->enqueue(status_post("c"));
    time.advance(2s);
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 2u);
    EXPECT_EQ(notifier.calls[1].keys, (std::vector<std::string>{"b", "c"}));
    box->enqueue(status_post("d"));  // a newcomer never joins a repeat
    for (int i = 0; i < 20 && box->depth(channel::status) > 0; ++i) {
        time.advance(5s);
        drain(ioc);
    }
    ASSERT_EQ(notifier.calls.size(), 5u);
    EXPECT_EQ(notifier.calls[2].keys, std::vector<std::string>{"b"});
    EXPECT_EQ(notifier.calls[3].keys, std::vector<std::string>{"c"});
    EXPECT_EQ(notifier.calls[4].keys, std::vector<std::string>{"d"});
    EXPECT_EQ(counter(registry, "runbookd_posts_repeated_total", "status"), 2);
}

TEST_F(outbox_journal_test, restore_rebuilds_queues_and_ids_and_repeats_only_what_was_on_the_wire) {
    journaled();
    notifier.enable_operations(true);
    // A first life: "a" delivered, "b" and "c" on the wire when it stopped, "d" queued.
    post a = status_post("a");
    post b = status_post("b");
    post c = status_post("c");
    post d = status_post("d");
    post s = summary("i/0/summary/1");
    post edit = summary("i/0/summary/1/edit/1", "i/0/summary/1", "newer");
    const std::vector<change> before{
        {.what = change::kind::enqueued, .to = channel::status, .p = a},
        {.what = change::kind::enqueued, .to = channel::operations, .p = s},
        {.what = change::kind::sending, .to = channel::status, .keys = {"a"}},
        {.what = change::kind::delivered, .to = channel::status, .keys = {"a"}, .message_id = "111"},
        {.what = change::kind::sending, .to = channel::operations, .keys = {"i/0/summary/1"}},
        {.what = change::kind::delivered,
         .to = channel::operations,
         .keys = {"i/0/summary/1"},
         .message_id = "222"},
        {.what = change::kind::enqueued, .to = channel::status, .p = b},
        {.what = change::kind::enqueued, .to = channel::status, .p = c},
        {.what = change::kind::sending, .to = channel::status, .keys = {"b", "c"}},
        {.what = change::kind::enqueued, .to = channel::status, .p = d},
        {.what = change::kind::enqueued, .to = channel::operations, .p = edit},
    };
    box->stop();
    drain(ioc);
    box = std::make_unique<outbox>(ioc.get_executor(), notifier, outbox_settings{}, log::discard(), registry);
    for (const auto& ch : before) {
        box->restore(ch);
    }
    EXPECT_TRUE(changes.empty());  // restoring records nothing
    EXPECT_EQ(box->message_id("a"), "111");
    EXPECT_EQ(box->depth(channel::status), 3u);
    box->start();
    for (int i = 0; i < 10 && (box->depth(channel::status) > 0 || box->depth(channel::operations) > 0); ++i) {
        drain(ioc);
        time.advance(2s);
    }
    std::vector<std::vector<std::string>> status_sends;
    for (const auto& call : notifier.calls) {
        if (call.to == channel::status) {
            status_sends.push_back(call.keys);
        } else {
            EXPECT_EQ(call.edited, "222");  // the summary is edited in place, not posted again
        }
    }
    EXPECT_EQ(status_sends, (std::vector<std::vector<std::string>>{{"b"}, {"c"}, {"d"}}));
    EXPECT_EQ(counter(registry, "runbookd_posts_repeated_total", "status"), 2);
}

TEST_F(outbox_journal_test, an_attempt_refused_before_a_restart_is_not_a_repeat_after_it) {
    journaled();
    notifier.push(failing(net::verdict::retryable));  // a 503: it did not arrive
    box->enqueue(status_post("a"));
    drain(ioc);
    EXPECT_EQ(kinds(), (std::vector<std::string>{"enqueued", "sending", "refused"}));
    box->stop();
    drain(ioc);
    box = std::make_unique<outbox>(ioc.get_executor(), notifier, outbox_settings{}, log::discard(), registry);
    for (const auto& c : changes) {
        box->restore(c);
    }
    box->start();
    for (int i = 0; i < 5 && box->depth(channel::status) > 0; ++i) {
        drain(ioc);
        time.advance(2s);
    }
    EXPECT_EQ(box->depth(channel::status), 0u);
    EXPECT_EQ(counter(registry, "runbookd_posts_repeated_total", "status"), 0);
}

TEST_F(outbox_journal_test, restore_applies_replacements_failures_and_forgotten_ids) {
    make();
    notifier.enable_operations(true);
    box->stop();
    drain(ioc);
    box = std::make_unique<outbox>(ioc.get_executor(), notifier, outbox_settings{}, log::discard(), registry);
    post s = summary("k/1");
    post newer = summary("k/1", "", "newer");
    box->restore({.what = change::kind::enqueued, .to = channel::operations, .p = s});
    box->restore({.what = change::kind::replaced, .to = channel::operations, .keys = {"k/1"}, .p = newer});
    box->restore({.what = change::kind::enqueued, .to = channel::operations, .p = summary("k/2")});
    box->restore({.what = change::kind::failed, .to = channel::operations, .keys = {"k/2"}, .reason = "x"});
    box->restore(
        {.what = change::kind::remember, .to = channel::operations, .keys = {"old"}, .message_id = "9"}
    );
    box->restore(
        {.what = change::kind::remember, .to = channel::operations, .keys = {"gone"}, .message_id = "8"}
    );
    box->restore({.what = change::kind::forget, .to = channel::operations, .keys = {"gone"}});
    EXPECT_EQ(box->depth(channel::operations), 1u);
    EXPECT_EQ(box->message_id("old"), "9");
    EXPECT_FALSE(box->message_id("gone"));
    box->start();
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 1u);
    EXPECT_EQ(notifier.calls[0].keys, std::vector<std::string>{"k/1"});
}

}  // namespace
}  // namespace runbookd::notify

// Bounded under storms: reminders replaced, notices first, a bound on each queue, merged
// posts counted.
namespace runbookd::notify {
namespace {

post reminder(const std::string& incident, int n) {
    post p = status_post(incident + "/0/update/" + std::to_string(n));
    p.kind = post_kind::update;
    p.incident_id = incident;
    p.text.title = "update " + std::to_string(n);
    return p;
}

post notice(const std::string& incident) {
    post p = status_post(incident + "/0/notice");
    p.incident_id = incident;
    return p;
}

/// A counter's value by its labels, or -1 when there is none.
double labelled(
    prometheus::Registry& registry, const std::string& name, const std::map<std::string, std::string>& labels
) {
    for (const auto& family : registry.Collect()) {
        if (family.name != name) {
            continue;
        }
        for (const auto& m : family.metric) {
            std::map<std::string, std::string> have;
            for (const auto& l : m.label) {
                have[l.name] = l.value;
            }
            if (have == labels) {
                return m.counter.value;
            }
        }
    }
    return -1;
}

struct outbox_storm_test : outbox_journal_test {
    /// Delivers "first" so that what is enqueued next waits for the spacing, together.
    void busy() {
        box->enqueue(status_post("first"));
        drain(ioc);
        ASSERT_EQ(notifier.calls.size(), 1u);
    }
    std::vector<std::string> next_send() {
        time.advance(2s);
        drain(ioc);
        return notifier.calls.back().keys;
    }
};

TEST_F(outbox_storm_test, a_newer_reminder_replaces_the_queued_one_of_its_incident) {
    journaled();
    busy();
    box->enqueue(reminder("I1", 1));
    box->enqueue(reminder("I2", 1));
    box->enqueue(reminder("I1", 2));
    EXPECT_EQ(box->depth(channel::status), 2u);
    ASSERT_FALSE(changes.empty());
    const change& c = changes.back();
    EXPECT_EQ(c.what, change::kind::replaced);
    EXPECT_EQ(c.keys, std::vector<std::string>{"I1/0/update/1"});
    ASSERT_TRUE(c.p);
    EXPECT_EQ(c.p->key, "I1/0/update/2");
    EXPECT_EQ(
        labelled(
            registry,
            "runbookd_posts_merged_total",
            {{"channel", "status"}, {"kind", "update"}, {"reason", "replaced"}}
        ),
        1
    );
    // Its place in the queue, the newest text.
    EXPECT_EQ(next_send(), (std::vector<std::string>{"I1/0/update/2", "I2/0/update/1"}));
}

TEST_F(outbox_storm_test, a_notice_goes_before_queued_reminders) {
    journaled();
    busy();
    box->enqueue(reminder("I1", 1));
    box->enqueue(reminder("I2", 1));
    box->enqueue(notice("N1"));
    post resolved = status_post("I3/0/resolved");
    resolved.kind = post_kind::resolved;
    box->enqueue(resolved);  // anything else keeps its turn
    EXPECT_EQ(
        next_send(),
        (std::vector<std::string>{"N1/0/notice", "I1/0/update/1", "I2/0/update/1", "I3/0/resolved"})
    );
}

TEST_F(outbox_storm_test, a_notice_goes_before_a_reminder_waiting_for_its_retry) {
    journaled();
    notifier.push(failing(net::verdict::retryable));  // "r1" goes out at once, and fails
    box->enqueue(reminder("I1", 1));
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 1u);
    box->enqueue(notice("N1"));
    // The reminder failed and waits for its retry, no longer on the wire: the notice goes first.
    std::vector<std::string> order;
    for (int i = 0; i < 10 && box->depth(channel::status) > 0; ++i) {
        time.advance(2s);
        drain(ioc);
    }
    for (std::size_t i = 1; i < notifier.calls.size(); ++i) {
        order.insert(order.end(), notifier.calls[i].keys.begin(), notifier.calls[i].keys.end());
    }
    EXPECT_EQ(order, (std::vector<std::string>{"N1/0/notice", "I1/0/update/1"}));
}

TEST_F(outbox_storm_test, past_the_bound_reminders_go_first_then_relays_then_the_oldest) {
    outbox_settings s;
    s.max_queued = 3;
    journaled(s);
    busy();
    box->enqueue(reminder("I1", 1));
    box->enqueue(reminder("I2", 1));
    post relay = status_post("I3/0/relay/1");
    relay.kind = post_kind::relay;
    relay.incident_id = "I3";
    box->enqueue(relay);
    box->enqueue(notice("N1"));  // 4 queued: I1's reminder is dropped
    EXPECT_EQ(box->depth(channel::status), 3u);
    ASSERT_EQ(changes.back().what, change::kind::failed);
    EXPECT_EQ(changes.back().keys, std::vector<std::string>{"I1/0/update/1"});
    EXPECT_NE(changes.back().reason.find("notify.max_queued_posts"), std::string::npos);
    box->enqueue(notice("N2"));  // then I2's
    box->enqueue(notice("N3"));  // then the relay
    box->enqueue(notice("N4"));  // nothing but notices: the oldest, counted
    EXPECT_EQ(box->depth(channel::status), 3u);
    const auto dropped = [&](const std::string& kind) {
        return labelled(registry, "runbookd_posts_dropped_total", {{"channel", "status"}, {"kind", kind}});
    };
    EXPECT_EQ(dropped("update"), 2);
    EXPECT_EQ(dropped("relay"), 1);
    EXPECT_EQ(dropped("notice"), 1);
    EXPECT_EQ(dropped("resolved"), 0);  // every kind is exported from the start
    EXPECT_EQ(next_send(), (std::vector<std::string>{"N2/0/notice", "N3/0/notice", "N4/0/notice"}));
}

TEST_F(outbox_storm_test, the_posts_a_storm_post_stands_for_are_counted) {
    make();
    post storm = status_post("storm/1/status");
    storm.kind = post_kind::storm;
    storm.coalescible = false;
    storm.merged = {
        {post_kind::notice, merge_reason::storm, 26},
        {post_kind::resolved, merge_reason::storm, 2},
        {post_kind::notice, merge_reason::untracked, 3}};
    box->enqueue(storm);
    const auto merged = [&](const std::string& kind, const std::string& reason) {
        return labelled(
            registry,
            "runbookd_posts_merged_total",
            {{"channel", "status"}, {"kind", kind}, {"reason", reason}}
        );
    };
    EXPECT_EQ(merged("notice", "storm"), 26);
    EXPECT_EQ(merged("resolved", "storm"), 2);
    EXPECT_EQ(merged("notice", "untracked"), 3);
    EXPECT_EQ(labelled(registry, "runbookd_incidents_untracked_total", {}), 3);
}

TEST_F(outbox_storm_test, restore_puts_a_notice_before_the_reminders_as_enqueue_did) {
    make();
    box->stop();
    drain(ioc);
    box = std::make_unique<outbox>(ioc.get_executor(), notifier, outbox_settings{}, log::discard(), registry);
    box->restore({.what = change::kind::enqueued, .to = channel::status, .p = reminder("I1", 1)});
    box->restore({.what = change::kind::enqueued, .to = channel::status, .p = notice("N1")});
    box->start();
    drain(ioc);
    ASSERT_EQ(notifier.calls.size(), 1u);
    EXPECT_EQ(notifier.calls[0].keys, (std::vector<std::string>{"N1/0/notice", "I1/0/update/1"}));
}

}  // namespace
}  // namespace runbookd::notify
