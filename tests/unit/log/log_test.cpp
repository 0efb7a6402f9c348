#include "log/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace runbookd::log {
namespace {

struct captured {
    std::vector<std::string> lines;
    std::shared_ptr<sink> out = std::make_shared<sink>([this](std::string_view l) { lines.emplace_back(l); });
};

TEST(log, writes_one_json_object_per_event_with_fixed_fields) {
    captured c;
    logger l{c.out, level::info};
    l.with("component", "server").info("listening", {{"port", 8080}, {"tls", false}});
    l.debug("dropped");
    ASSERT_EQ(c.lines.size(), 1u);
    const auto j = nlohmann::json::parse(c.lines[0]);
    EXPECT_EQ(j["msg"], "listening");
    EXPECT_EQ(j["level"], "info");
    EXPECT_EQ(j["component"], "server");
    EXPECT_EQ(j["port"], 8080);
    EXPECT_TRUE(j.contains("ts"));
}

TEST(log, a_key_set_again_replaces_its_value) {
    captured c;
    logger l{c.out, level::info};
    l.with("component", "cloudsql").with("component", "cloudsql_http").info("request failed");
    ASSERT_EQ(c.lines.size(), 1u);
    EXPECT_EQ(c.lines[0].find("\"component\":\"cloudsql\""), std::string::npos) << c.lines[0];
    EXPECT_EQ(nlohmann::json::parse(c.lines[0])["component"], "cloudsql_http");
}

TEST(log, registered_secrets_are_redacted_from_every_line) {
    captured c;
    c.out->add_secret("hunter2-token");
    logger l{c.out, level::debug};
    l.error("post failed", {{"error", "POST /api/webhooks/1/hunter2-token?wait=true: 404"}});
    ASSERT_EQ(c.lines.size(), 1u);
    EXPECT_EQ(c.lines[0].find("hunter2-token"), std::string::npos);
    EXPECT_NE(c.lines[0].find("<secret>"), std::string::npos);
}

TEST(log, a_secret_that_is_part_of_the_mask_cannot_loop) {
    captured c;
    c.out->add_secret("cret");
    c.out->add_secret("cret");
    logger l{c.out, level::debug};
    l.info("m", {{"v", "a cret b cret"}});
    ASSERT_EQ(c.lines.size(), 1u);
    EXPECT_NE(c.lines[0].find("a <secret> b <secret>"), std::string::npos) << c.lines[0];
}

TEST(log, invalid_utf8_from_outside_never_throws) {
    captured c;
    logger l{c.out, level::debug};
    l.warn("peer said", {{"text", std::string{"\xff\xfe ok"}}});
    ASSERT_EQ(c.lines.size(), 1u);
    EXPECT_TRUE(nlohmann::json::accept(c.lines[0]));
}

}  // namespace
}  // namespace runbookd::log

namespace runbookd::log {
namespace {

TEST(log, escapes_strings_and_replaces_invalid_utf8) {
    captured c;
    logger l{c.out, level::debug};
    l.info("m", {{"s", std::string{"q\"b\\n\nt\t\x01 \xc3\xa9 \xe2\x82"}}, {"d", 0.5}, {"n", -3}});
    ASSERT_EQ(c.lines.size(), 1u);
    const auto j = nlohmann::json::parse(c.lines[0]);
    EXPECT_EQ(j["s"], "q\"b\\n\nt\t\x01 \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd");
    EXPECT_EQ(j["d"], 0.5);
    EXPECT_EQ(j["n"], -3);
    EXPECT_EQ(c.lines[0].rfind("{\"ts\":\"", 0), 0u);
}

}  // namespace
}  // namespace runbookd::log

namespace runbookd::log {
namespace {

TEST(log, batched_lines_leave_together_when_the_deferred_flush_runs) {
    std::FILE* tmp = std::tmpfile();
    ASSERT_NE(tmp, nullptr);
    auto out = std::make_shared<sink>(tmp);
    std::vector<std::function<void()>> jobs;
    out->batch_with([&](std::function<void()> f) { jobs.push_back(std::move(f)); });
    auto l = std::make_unique<logger>(out, level::info);
    l->info("one");
    l->info("two");
    EXPECT_EQ(jobs.size(), 1u) << "one flush job per batch";
    EXPECT_EQ(std::ftell(tmp), 0L) << "nothing written before the flush";
    jobs[0]();
    const long written = std::ftell(tmp);
    EXPECT_GT(written, 0L);
    std::rewind(tmp);
    std::string text(static_cast<std::size_t>(written), '\0');
    ASSERT_EQ(std::fread(text.data(), 1, text.size(), tmp), text.size());
    EXPECT_NE(text.find("\"msg\":\"one\""), std::string::npos);
    EXPECT_NE(text.find("\"msg\":\"two\""), std::string::npos);
    l->info("three");
    EXPECT_EQ(jobs.size(), 2u);
    const long before = std::ftell(tmp);
    l.reset();
    out.reset();  // the last owner's destructor flushes what is left
    EXPECT_GT(std::ftell(tmp), before);
    std::fclose(tmp);
}

}  // namespace
}  // namespace runbookd::log
