#include "core/markdown.hpp"
#include "fakes/io.hpp"
#include "fakes/scripted_http.hpp"
#include "notify/discord/discord_notifier.hpp"
#include "notify/discord/payload.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

namespace runbookd::notify::discord {
namespace {

using json = nlohmann::json;
const std::string token = "tok-SECRET-abc_123";

post make_post(std::string title, std::string body, std::string footer = "PagerDuty #1") {
    post p;
    p.key = "k";
    p.text.title = std::move(title);
    p.text.body = std::move(body);
    p.text.footer = std::move(footer);
    p.text.url = "https://acme.pagerduty.com/incidents/P1";
    return p;
}

std::size_t embed_total(const json& body) {
    std::size_t total = 0;
    for (const auto& e : body["embeds"]) {
        total +=
            utf16_length(e["title"].get<std::string>()) + utf16_length(e["description"].get<std::string>());
        if (e.contains("footer")) {
            total += utf16_length(e["footer"]["text"].get<std::string>());
        }
    }
    return total;
}

TEST(discord_payload, every_body_suppresses_mentions) {
    const std::vector<post> posts{make_post("@everyone", "hi")};
    const auto body = json::parse(execute_body(posts, "runbookd"));
    EXPECT_EQ(body["allowed_mentions"], json({{"parse", json::array()}}));
    EXPECT_EQ(body["username"], "runbookd");
    EXPECT_EQ(body["embeds"][0]["url"], "https://acme.pagerduty.com/incidents/P1");
}

TEST(discord_payload, embeds_in_one_message_never_share_a_url) {
    const std::vector<post> posts{make_post("update", "b"), make_post("resolved", "b")};
    const auto body = json::parse(execute_body(posts, "runbookd"));
    ASSERT_EQ(body["embeds"].size(), 2u);
    EXPECT_EQ(body["embeds"][0]["url"], "https://acme.pagerduty.com/incidents/P1");
    EXPECT_FALSE(body["embeds"][1].contains("url"));
}

TEST(discord_payload, oversized_fields_are_cut_to_discord_limits) {
    const std::vector<post> posts{
        make_post(std::string(1000, 'T'), std::string(9000, 'b'), std::string(3000, 'f'))};
    const auto body = json::parse(execute_body(posts, std::string(200, 'u')));
    const auto& e = body["embeds"][0];
    EXPECT_EQ(utf16_length(e["title"].get<std::string>()), max_title);
    EXPECT_LE(utf16_length(e["description"].get<std::string>()), max_description);
    EXPECT_LE(utf16_length(e["footer"]["text"].get<std::string>()), max_footer);
    EXPECT_LE(embed_total(body), max_embed_total);
    EXPECT_LE(utf16_length(body["username"].get<std::string>()), max_username);
    EXPECT_TRUE(e["title"].get<std::string>().ends_with("\u2026"));
}

TEST(discord_payload, fit_respects_embed_count_and_total) {
    std::vector<post> small(15, make_post("t", "short"));
    EXPECT_EQ(fit(small), max_embeds);
    std::vector<post> big(5, make_post("t", std::string(2500, 'x')));
    const auto n = fit(big);
    EXPECT_EQ(n, 2u);
    const auto body = json::parse(execute_body(std::span<const post>(big).first(n), "r"));
    EXPECT_LE(embed_total(body), max_embed_total);
    std::vector<post> huge(1, make_post("t", std::string(9000, 'x')));
    EXPECT_EQ(fit(huge), 1u);
}

TEST(discord_payload, reads_message_ids_rate_limits_and_errors) {
    EXPECT_EQ(read_response(R"({"id":"334385199974967042","content":""})").message_id, "334385199974967042");
    const auto limited =
        read_response(R"({"message":"You are being rate limited.","retry_after":64.57,"global":true})");
    EXPECT_DOUBLE_EQ(*limited.retry_after, 64.57);
    EXPECT_TRUE(limited.global);
    EXPECT_EQ(
        read_response(R"({"message":"Unknown Webhook","code":10015})").error, "Unknown Webhook (10015)"
    );
    EXPECT_TRUE(read_response("<html>bad gateway</html>").message_id.empty());
}

struct notifier_test : ::testing::Test {
    boost::asio::io_context ioc;
    fakes::scripted_http http;
    prometheus::Registry registry;
    std::vector<std::string> log_lines;
    log::logger log{
        std::make_shared<log::sink>([this](std::string_view l) { log_lines.emplace_back(l); }),
        log::level::debug};

    config settings() {
        config c;
        // Requests go to the host, port and path the webhook URL names.
        c.status = {"https://127.0.0.1:9/api/v10", "123456", secret<std::string>{token}};
        return c;
    }

    delivery send_one(discord_notifier& n) {
        std::optional<delivery> out;
        const std::vector<post> posts{make_post("t", "b")};
        boost::asio::co_spawn(
            ioc,
            [&]() -> boost::asio::awaitable<void> { out = co_await n.send(channel::status, posts); },
            boost::asio::detached
        );
        fakes::drain(ioc);
        return out.value();
    }
};

TEST_F(notifier_test, posts_to_execute_webhook_with_wait) {
    discord_notifier n{http, settings(), log, registry};
    http.push_reply(200, R"({"id":"42"})");
    const auto d = send_one(n);
    EXPECT_EQ(d.outcome, net::verdict::ok);
    EXPECT_EQ(d.message_id, "42");
    ASSERT_EQ(http.calls.size(), 1u);
    EXPECT_EQ(http.calls[0].method, "POST");
    EXPECT_EQ(http.calls[0].url, "https://127.0.0.1:9/api/v10/webhooks/123456/" + token + "?wait=true");
    EXPECT_EQ(http.calls[0].headers.at("Content-Type"), "application/json");
    EXPECT_TRUE(http.calls[0].headers.at("User-Agent").starts_with("DiscordBot ("));
    EXPECT_FALSE(n.has_channel(channel::operations));
}

TEST_F(notifier_test, a_deprecated_base_url_still_takes_the_requests) {
    config c = settings();
    c.base_url = "https://127.0.0.1:7/proxy/api/v10";
    discord_notifier n{http, c, log, registry};
    http.push_reply(200, R"({"id":"42"})");
    EXPECT_EQ(send_one(n).outcome, net::verdict::ok);
    ASSERT_EQ(http.calls.size(), 1u);
    EXPECT_EQ(http.calls[0].url, "https://127.0.0.1:7/proxy/api/v10/webhooks/123456/" + token + "?wait=true");
}

TEST_F(notifier_test, reads_429_body_and_headers) {
    discord_notifier n{http, settings(), log, registry};
    http.push_reply(
        429,
        R"({"message":"You are being rate limited.","retry_after":2.5,"global":false})",
        {{"retry-after", "3"}, {"x-ratelimit-scope", "user"}}
    );
    auto d = send_one(n);
    EXPECT_EQ(d.outcome, net::verdict::rate_limited);
    EXPECT_EQ(d.retry_after, millis{2500});
    EXPECT_FALSE(d.global);

    http.push_reply(429, "", {{"retry-after", "4"}, {"x-ratelimit-global", "true"}});
    d = send_one(n);
    EXPECT_EQ(d.retry_after, millis{4000});
    EXPECT_TRUE(d.global);
}

double capped_count(prometheus::Registry& registry) {
    for (const auto& family : registry.Collect()) {
        if (family.name == "runbookd_retry_after_capped_total") {
            for (const auto& m : family.metric) {
                if (m.label.size() == 1 && m.label[0].value == "discord") {
                    return m.counter.value;
                }
            }
        }
    }
    return -1;
}

TEST_F(notifier_test, a_day_long_wait_is_cut_to_the_cap_counted_and_logged) {
    discord_notifier n{http, settings(), log, registry};
    EXPECT_EQ(capped_count(registry), 0);  // there from the start, at zero
    // A global 429 asking for a day, in the body and in the header.
    http.push_reply(
        429,
        R"({"message":"You are being rate limited.","retry_after":86400,"global":true})",
        {{"retry-after", "86400"}, {"x-ratelimit-global", "true"}}
    );
    auto d = send_one(n);
    EXPECT_EQ(d.outcome, net::verdict::rate_limited);
    EXPECT_EQ(d.retry_after, net::max_retry_after);
    EXPECT_TRUE(d.global);
    EXPECT_EQ(capped_count(registry), 1);
    ASSERT_FALSE(log_lines.empty());
    EXPECT_NE(log_lines.back().find("upstream wait capped"), std::string::npos) << log_lines.back();
    EXPECT_NE(log_lines.back().find(R"("asked_s":86400)"), std::string::npos) << log_lines.back();

    // The header alone, and a bucket reset, are cut the same way.
    http.push_reply(429, "", {{"retry-after", "3601"}});
    EXPECT_EQ(send_one(n).retry_after, net::max_retry_after);
    http.push_reply(
        200, R"({"id":"1"})", {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset-after", "7200"}}
    );
    EXPECT_EQ(send_one(n).pause, net::max_retry_after);
    EXPECT_EQ(capped_count(registry), 3);

    // At the cap exactly, nothing is cut.
    http.push_reply(429, R"({"retry_after":600})");
    EXPECT_EQ(send_one(n).retry_after, net::max_retry_after);
    EXPECT_EQ(capped_count(registry), 3);
}

TEST_F(notifier_test, an_exhausted_bucket_pauses) {
    discord_notifier n{http, settings(), log, registry};
    http.push_reply(
        200, R"({"id":"1"})", {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset-after", "1.25"}}
    );
    EXPECT_EQ(send_one(n).pause, millis{1250});
}

// Conformance: every status is classified, and no outcome leaks the token.
TEST_F(notifier_test, classifies_every_status_and_never_leaks_the_token) {
    discord_notifier n{http, settings(), log, registry};
    for (unsigned status = 200; status < 600; ++status) {
        http.push_reply(status, R"({"message":"Unknown Webhook","code":10015})");
        const auto d = send_one(n);
        EXPECT_EQ(d.outcome, net::classify(status)) << status;
        EXPECT_EQ(d.reason.find(token), std::string::npos) << status;
        if (status == 404) {
            EXPECT_NE(d.reason.find("Unknown Webhook (10015)"), std::string::npos);
        }
        EXPECT_EQ(d.channel_broken, status == 401 || status == 403 || status == 404) << status;
    }
    http.push(net::transport_failure{
        make_failure(errc::timed_out, "https://127.0.0.1:9: read: timeout", true), true});
    const auto d = send_one(n);
    EXPECT_EQ(d.outcome, net::verdict::retryable);
    EXPECT_TRUE(d.maybe_delivered);
    for (const auto& line : log_lines) {
        EXPECT_EQ(line.find(token), std::string::npos) << line;
    }
}

}  // namespace
}  // namespace runbookd::notify::discord

namespace runbookd::notify::discord {
namespace {

struct edit_test : notifier_test {
    delivery edit_one(discord_notifier& n, const std::string& message_id) {
        std::optional<delivery> out;
        const post p = make_post("summary", "@everyone look");
        // Detached is safe here: drain() runs the coroutine to completion before `p` dies.
        boost::asio::co_spawn(
            ioc,
            [&]() -> boost::asio::awaitable<void> { out = co_await n.edit(channel::status, message_id, p); },
            boost::asio::detached
        );
        fakes::drain(ioc);
        return out.value();
    }
};

TEST_F(edit_test, edits_the_message_in_place_with_mentions_suppressed) {
    discord_notifier n{http, settings(), log, registry};
    http.push_reply(200, R"({"id":"777"})");
    const auto d = edit_one(n, "777");
    EXPECT_EQ(d.outcome, net::verdict::ok);
    ASSERT_EQ(http.calls.size(), 1u);
    EXPECT_EQ(http.calls[0].method, "PATCH");
    EXPECT_EQ(http.calls[0].url, "https://127.0.0.1:9/api/v10/webhooks/123456/" + token + "/messages/777");
    const auto body = nlohmann::json::parse(http.calls[0].body);
    EXPECT_EQ(body["allowed_mentions"], nlohmann::json::parse(R"({"parse":[]})"));
    EXPECT_EQ(body["embeds"].size(), 1u);
    EXPECT_FALSE(body.contains("username"));  // not an edit-message field
}

TEST_F(edit_test, an_unknown_message_is_gone_and_the_webhook_still_works) {
    discord_notifier n{http, settings(), log, registry};
    http.push_reply(404, R"({"message":"Unknown Message","code":10008})");
    const auto gone = edit_one(n, "777");
    EXPECT_EQ(gone.outcome, net::verdict::final);
    EXPECT_TRUE(gone.message_gone);
    EXPECT_FALSE(gone.channel_broken);
    http.push_reply(404, R"({"message":"Unknown Webhook","code":10015})");
    const auto broken = edit_one(n, "777");
    EXPECT_FALSE(broken.message_gone);
    EXPECT_TRUE(broken.channel_broken);
    for (const auto& l : log_lines) {
        EXPECT_EQ(l.find(token), std::string::npos);
    }
}

}  // namespace
}  // namespace runbookd::notify::discord
