#include "net/retry.hpp"

#include "net/router.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

namespace runbookd::net {
namespace {

namespace http = boost::beast::http;

TEST(retry, classifies_statuses) {
    EXPECT_EQ(classify(200), verdict::ok);
    EXPECT_EQ(classify(204), verdict::ok);
    EXPECT_EQ(classify(429), verdict::rate_limited);
    EXPECT_EQ(classify(408), verdict::retryable);
    EXPECT_EQ(classify(500), verdict::retryable);
    EXPECT_EQ(classify(502), verdict::retryable);
    EXPECT_EQ(classify(400), verdict::final);
    EXPECT_EQ(classify(404), verdict::final);
    EXPECT_EQ(classify(301), verdict::final);
}

TEST(retry, parses_seconds) {
    EXPECT_EQ(parse_seconds("2"), std::chrono::milliseconds{2000});
    EXPECT_EQ(parse_seconds("64.57"), std::chrono::milliseconds{64570});
    EXPECT_EQ(parse_seconds("0.0001"), std::chrono::milliseconds{1});
    EXPECT_FALSE(parse_seconds(""));
    EXPECT_FALSE(parse_seconds("-1"));
    EXPECT_FALSE(parse_seconds("soon"));
    EXPECT_EQ(parse_seconds("1e12"), std::chrono::milliseconds{86400000});
}

TEST(retry, backoff_doubles_within_jitter_and_caps) {
    std::mt19937_64 rng{42};
    const backoff b{std::chrono::milliseconds{500}, std::chrono::seconds{30}};
    for (int attempt = 1; attempt <= 12; ++attempt) {
        const auto ceiling = std::min<long long>(30000, 500LL << (attempt - 1));
        for (int i = 0; i < 50; ++i) {
            const auto d = b.delay(attempt, rng).count();
            EXPECT_GE(d, ceiling / 2);
            EXPECT_LE(d, ceiling);
        }
    }
}

TEST(retry, an_upstream_wait_longer_than_the_cap_is_cut_counted_and_logged) {
    prometheus::Registry registry;
    std::vector<std::string> lines;
    log::logger log{
        std::make_shared<log::sink>([&](std::string_view l) { lines.emplace_back(l); }), log::level::info};
    retry_after_cap cap{registry, log, "promql"};
    const auto capped = [&] {
        for (const auto& family : registry.Collect()) {
            if (family.name == "runbookd_retry_after_capped_total") {
                return family.metric.at(0).counter.value;
            }
        }
        return -1.0;
    };
    EXPECT_EQ(capped(), 0);
    EXPECT_EQ(cap(std::nullopt, "retry-after"), std::nullopt);
    EXPECT_EQ(cap(std::chrono::seconds{30}, "retry-after"), std::chrono::seconds{30});
    EXPECT_EQ(cap(max_retry_after, "retry-after"), max_retry_after);
    EXPECT_TRUE(lines.empty());
    EXPECT_EQ(cap(parse_seconds("86400"), "retry-after"), max_retry_after);
    EXPECT_EQ(cap(max_retry_after + std::chrono::milliseconds{1}, "retry-after"), max_retry_after);
    EXPECT_EQ(capped(), 2);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[0].find(R"("msg":"upstream wait capped")"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(R"("client":"promql")"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(R"("asked_s":86400)"), std::string::npos) << lines[0];
}

request make_request(http::verb v, std::string target) {
    request r{v, target, 11};
    return r;
}

TEST(router, routes_by_path_then_method) {
    router r;
    r.add(http::verb::get, "/healthz", [](const request& req) {
        return make_response(req, http::status::ok, "ok", "text/plain");
    });
    EXPECT_EQ(r.handle(make_request(http::verb::get, "/healthz")).result(), http::status::ok);
    EXPECT_EQ(r.handle(make_request(http::verb::get, "/healthz?x=1")).result(), http::status::ok);
    auto wrong = r.handle(make_request(http::verb::post, "/healthz"));
    EXPECT_EQ(wrong.result(), http::status::method_not_allowed);
    EXPECT_EQ(wrong[http::field::allow], "GET");
    EXPECT_EQ(r.handle(make_request(http::verb::get, "/nope")).result(), http::status::not_found);
}

TEST(router, error_bodies_are_valid_json) {
    const auto res =
        make_error(make_request(http::verb::get, "/"), http::status::bad_request, R"(bad "quote" \)");
    EXPECT_EQ(res.body(), R"({"error":"bad \"quote\" \\"})");
}

}  // namespace
}  // namespace runbookd::net
