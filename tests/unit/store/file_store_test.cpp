#include "fakes/io.hpp"
#include "log/log.hpp"
#include "store/config.hpp"
#include "store/journal.hpp"
#include "store/store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace runbookd::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const wall_time t0 = *parse_rfc3339("2026-03-04T16:00:00Z");

input trigger(std::string id, wall_time at) {
    incident_event ev;
    ev.event_id = id + "-trigger";
    ev.incident.id = std::move(id);
    return input{at, ev};
}

std::string id_of(const record& r) {
    if (const auto* in = std::get_if<input>(&r)) {
        if (const auto* ev = std::get_if<incident_event>(&in->what)) {
            return ev->incident.id;
        }
        return "input";
    }
    return "change:" + std::get<notify::change>(r).keys.at(0);
}

struct file_store_test : ::testing::Test {
    fs::path dir;
    boost::asio::io_context ioc;
    prometheus::Registry registry;

    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "runbookd-store-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir = tmpl;
    }
    void TearDown() override { fs::remove_all(dir); }

    config cfg() const {
        config c;
        c.dir = (dir / "state").string();
        return c;
    }
    std::unique_ptr<store> open() {
        auto s = make(cfg(), ioc.get_executor(), log::discard(), registry);
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().detail);
        return s ? std::move(*s) : nullptr;
    }
    void sync(store& s) {
        bool done = false;
        boost::asio::co_spawn(ioc, s.sync(), [&](std::exception_ptr e, result<void> r) {
            EXPECT_FALSE(e);
            EXPECT_TRUE(r.has_value());
            done = true;
        });
        ASSERT_TRUE(fakes::run_until(
            ioc, [&] { return done; }, 5s
        ));
    }
    std::string journal_text() const {
        std::ifstream f{dir / "state" / "journal", std::ios::binary};
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    void write_journal(const std::string& text) const {
        fs::create_directories(dir / "state");
        std::ofstream{dir / "state" / "journal", std::ios::binary} << text;
    }
};

TEST_F(file_store_test, what_is_synced_is_recovered_in_order_by_the_next_daemon) {
    {
        auto s = open();
        ASSERT_TRUE(s);
        auto first = s->recover();
        ASSERT_TRUE(first.has_value());
        EXPECT_TRUE(first->empty());
        s->append(trigger("A", t0));
        s->append(notify::change{
            .what = notify::change::kind::sending, .to = channel::status, .keys = {"A/0/notice"}});
        s->append(trigger("B", t0 + 1s));
        sync(*s);
        s->close();
    }
    auto s = open();
    auto back = s->recover();
    ASSERT_TRUE(back.has_value());
    ASSERT_EQ(back->size(), 3u);
    EXPECT_EQ(id_of((*back)[0]), "A");
    EXPECT_EQ(id_of((*back)[1]), "change:A/0/notice");
    EXPECT_EQ(id_of((*back)[2]), "B");
}

TEST_F(file_store_test, what_one_handler_appends_is_one_frame_kept_whole_or_not_at_all) {
    auto s = open();
    ASSERT_TRUE(s->recover().has_value());
    // As feed() does: the input, then the outbox's change for the post it caused.
    s->append(trigger("A", t0));
    s->append(notify::change{
        .what = notify::change::kind::sending, .to = channel::status, .keys = {"A/0/notice"}});
    sync(*s);
    s->append(trigger("B", t0));
    sync(*s);
    const std::string text = journal_text();
    const auto frames = journal::read(text);
    ASSERT_EQ(frames.records.size(), 2u);
    EXPECT_EQ(decode_group(frames.records[0]).values.size(), 2u);
    EXPECT_EQ(decode_group(frames.records[1]).values.size(), 1u);
    s->close();
    // A crash that tears the group's frame loses the input and its change together.
    write_journal(text.substr(0, text.size() - 5));
    auto again = open();
    auto back = again->recover();
    ASSERT_TRUE(back.has_value());
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ(id_of((*back)[0]), "A");
    EXPECT_EQ(id_of((*back)[1]), "change:A/0/notice");
}

TEST_F(file_store_test, many_waiters_share_one_sync) {
    auto s = open();
    ASSERT_TRUE(s->recover().has_value());
    int done = 0;
    for (int i = 0; i < 20; ++i) {
        s->append(trigger("I" + std::to_string(i), t0));
        boost::asio::co_spawn(ioc, s->sync(), [&](std::exception_ptr e, result<void> r) {
            EXPECT_FALSE(e);
            EXPECT_TRUE(r.has_value());
            ++done;
        });
    }
    ASSERT_TRUE(fakes::run_until(
        ioc, [&] { return done == 20; }, 5s
    ));
    const std::string text = journal_text();
    std::size_t records = 0;
    for (const auto frame : journal::read(text).records) {
        records += decode_group(frame).values.size();
    }
    EXPECT_EQ(records, 20u);
}

TEST_F(file_store_test, a_second_daemon_on_the_same_directory_is_refused) {
    auto s = open();
    auto other = make(cfg(), ioc.get_executor(), log::discard(), registry);
    ASSERT_FALSE(other.has_value());
    EXPECT_NE(other.error().detail.find("in use by another runbookd"), std::string::npos)
        << other.error().detail;
}

TEST_F(file_store_test, a_torn_tail_is_cut_and_the_rest_recovered) {
    std::string text = journal::header();
    journal::frame(text, encode(trigger("A", t0)));
    std::string torn;
    journal::frame(torn, encode(trigger("B", t0)));
    write_journal(text + torn.substr(0, torn.size() / 2));
    auto s = open();
    auto back = s->recover();
    ASSERT_TRUE(back.has_value());
    ASSERT_EQ(back->size(), 1u);
    EXPECT_EQ(id_of((*back)[0]), "A");
    EXPECT_EQ(journal_text(), text);  // cut on disk too
}

TEST_F(file_store_test, a_corrupt_or_foreign_journal_is_refused_not_ignored) {
    std::string text = journal::header();
    journal::frame(text, encode(trigger("A", t0)));
    journal::frame(text, encode(trigger("B", t0)));
    text[journal::header_size + journal::frame_overhead + 3] ^= 1;
    write_journal(text);
    {
        auto s = open();
        auto back = s->recover();
        ASSERT_FALSE(back.has_value());
        EXPECT_NE(back.error().detail.find("checksum does not match"), std::string::npos)
            << back.error().detail;
        EXPECT_NE(back.error().detail.find("move the file aside"), std::string::npos);
    }
    write_journal("{\"incidents\": []}\n");
    auto s = open();
    auto back = s->recover();
    ASSERT_FALSE(back.has_value());
    EXPECT_NE(back.error().detail.find("not a runbookd journal"), std::string::npos) << back.error().detail;
}

TEST_F(file_store_test, compaction_keeps_what_matters_and_what_came_after) {
    {
        auto s = open();
        ASSERT_TRUE(s->recover().has_value());
        s->append(trigger("OLD", t0));
        s->append(notify::change{
            .what = notify::change::kind::delivered, .to = channel::status, .keys = {"OLD/0/notice"}});
        s->append(trigger("KEEP", t0 + 1s));
        compaction c;
        c.base.push_back(trigger("BASE", t0 - 1s));
        c.keep = [](const input& in) {
            const auto* ev = std::get_if<incident_event>(&in.what);
            return ev != nullptr && ev->incident.id == "KEEP";
        };
        c.outbox.push_back(notify::change{
            .what = notify::change::kind::remember,
            .to = channel::operations,
            .keys = {"KEEP/0/summary/1"},
            .message_id = "9"});
        s->compact(std::move(c));
        s->append(trigger("AFTER", t0 + 2s));
        sync(*s);
        EXPECT_EQ(s->growth(), journal::frame_overhead + encode(trigger("AFTER", t0 + 2s)).size());
        s->close();
    }
    auto s = open();
    auto back = s->recover();
    ASSERT_TRUE(back.has_value());
    std::vector<std::string> ids;
    for (const auto& r : *back) {
        ids.push_back(id_of(r));
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"BASE", "KEEP", "change:KEEP/0/summary/1", "AFTER"}));
}

TEST_F(file_store_test, compaction_streams_a_journal_larger_than_its_window) {
    constexpr int n = 6000;  // about 3 MiB: the rewrite reads it through a 1 MiB window
    {
        auto s = open();
        ASSERT_TRUE(s->recover().has_value());
        for (int i = 0; i < n; ++i) {
            input in = trigger("I" + std::to_string(i), t0);
            std::get<incident_event>(in.what).message = std::string(400, 'x');
            s->append(in);
        }
        compaction c;
        c.keep = [](const input& in) { return std::get<incident_event>(in.what).incident.id != "I7"; };
        s->compact(std::move(c));
        sync(*s);
        s->close();
    }
    EXPECT_GT(journal_text().size(), std::size_t{2} << 20);
    auto s = open();
    auto back = s->recover();
    ASSERT_TRUE(back.has_value());
    ASSERT_EQ(back->size(), static_cast<std::size_t>(n - 1));
    EXPECT_EQ(id_of(back->back()), "I" + std::to_string(n - 1));
}

TEST_F(file_store_test, the_memory_store_keeps_nothing) {
    config c = cfg();
    c.kind = kind::memory;
    auto s = make(c, ioc.get_executor(), log::discard(), registry);
    ASSERT_TRUE(s.has_value());
    (*s)->append(trigger("A", t0));
    sync(**s);
    EXPECT_TRUE((*s)->recover()->empty());
    EXPECT_FALSE(fs::exists(dir / "state"));
}

}  // namespace
}  // namespace runbookd::store
