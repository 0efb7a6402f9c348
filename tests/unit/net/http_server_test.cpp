#include "net/http_server.hpp"

#include "fakes/io.hpp"
#include "net/router.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace runbookd::net {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

/// One client connection on the test's io_context: it sends what it is told and keeps
/// reading, so a close by the server shows as `closed`.
struct client {
    explicit client(asio::io_context& ioc, const tcp::endpoint& to) : socket(ioc) {
        socket.connect(to);  // completes in the listen backlog, before the server accepts
        read();
    }

    void send(std::string_view text) { asio::write(socket, asio::buffer(text)); }

    void read() {
        socket.async_read_some(asio::buffer(piece), [this](boost::system::error_code ec, std::size_t n) {
            if (ec) {
                closed = true;
                return;
            }
            got.append(piece.data(), n);
            read();
        });
    }

    /// How many complete responses arrived (each has one status line).
    std::size_t responses() const {
        std::size_t n = 0;
        for (auto at = got.find("HTTP/1.1 "); at != std::string::npos; at = got.find("HTTP/1.1 ", at + 1)) {
            ++n;
        }
        return n;
    }

    tcp::socket socket;
    std::array<char, 4096> piece{};
    std::string got;
    bool closed = false;
};

constexpr std::string_view get_healthz = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

struct http_server_test : ::testing::Test {
    asio::io_context ioc;
    prometheus::Registry registry;
    router routes;
    std::vector<std::string> log_lines;
    log::logger log{
        std::make_shared<log::sink>([this](std::string_view l) { log_lines.emplace_back(l); }),
        log::level::debug};
    std::unique_ptr<http_server> server;
    tcp::endpoint at;

    http_server_test() {
        routes.add(http::verb::get, "/healthz", [](const request& req) {
            return make_response(req, http::status::ok, "ok\n", "text/plain");
        });
    }

    void start(server_limits limits) {
        server = std::make_unique<http_server>(ioc.get_executor(), routes, limits, log, registry, "main");
        at = server->listen("127.0.0.1", 0);
    }

    double metric(const std::string& name, const std::string& label, const std::string& value) {
        for (const auto& family : registry.Collect()) {
            if (family.name != name) {
                continue;
            }
            for (const auto& m : family.metric) {
                bool listener = false;
                bool match = label.empty();
                for (const auto& l : m.label) {
                    listener |= l.name == "listener" && l.value == "main";
                    match |= l.name == label && l.value == value;
                }
                if (listener && match) {
                    return family.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
                }
            }
        }
        return -1;
    }

    std::size_t log_count(std::string_view msg) const {
        std::size_t n = 0;
        for (const auto& l : log_lines) {
            n += l.find("\"msg\":\"" + std::string{msg} + "\"") != std::string::npos ? 1 : 0;
        }
        return n;
    }
};

TEST_F(http_server_test, a_connection_that_sends_nothing_is_closed_at_the_header_timeout) {
    server_limits limits;
    limits.header_timeout = 200ms;
    limits.idle_timeout = 1h;  // what a silent connection was held for before
    start(limits);
    client silent{ioc, at};
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return silent.closed; }, 10s
    ));
    EXPECT_TRUE(silent.got.empty());  // no answer: it asked nothing
    EXPECT_EQ(metric("runbookd_http_timeouts_total", "phase", "header"), 1);
    EXPECT_EQ(metric("runbookd_http_timeouts_total", "phase", "idle"), 0);
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return server->connections() == 0; }, 5s
    ));
}

TEST_F(http_server_test, a_connection_that_sends_part_of_a_header_is_closed_at_the_header_timeout) {
    server_limits limits;
    limits.header_timeout = 200ms;
    limits.idle_timeout = 1h;
    start(limits);
    client slow{ioc, at};
    slow.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return slow.closed; }, 10s
    ));
    EXPECT_EQ(slow.responses(), 0u);
    EXPECT_EQ(metric("runbookd_http_timeouts_total", "phase", "header"), 1);
}

TEST_F(http_server_test, a_kept_alive_connection_waits_the_idle_timeout_between_requests) {
    server_limits limits;
    limits.header_timeout = 100ms;
    limits.idle_timeout = 1h;
    start(limits);
    client c{ioc, at};
    c.send(get_healthz);
    ASSERT_TRUE(fakes::run_until(
        ioc, [&] { return c.responses() == 1; }, 10s
    ));
    // Several header timeouts pass with the connection idle between requests: it stays.
    EXPECT_FALSE(fakes::run_until(
        ioc, [&] { return c.closed; }, 600ms
    ));
    c.send(get_healthz);
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return c.responses() == 2; }, 10s
    ));
    EXPECT_FALSE(c.closed);
    EXPECT_EQ(metric("runbookd_http_requests_total", "code", "2xx"), 2);
    EXPECT_EQ(metric("runbookd_http_timeouts_total", "phase", "header"), 0);
}

TEST_F(http_server_test, connections_beyond_the_per_client_limit_are_closed_counted_and_logged_once) {
    server_limits limits;
    limits.max_connections_per_client = 2;
    start(limits);
    std::vector<std::unique_ptr<client>> kept;
    for (int i = 0; i < 2; ++i) {
        kept.push_back(std::make_unique<client>(ioc, at));
    }
    ASSERT_TRUE(fakes::run_until(
        ioc, [&] { return server->connections() == 2; }, 10s
    ));
    std::vector<std::unique_ptr<client>> refused;
    for (int i = 0; i < 5; ++i) {
        refused.push_back(std::make_unique<client>(ioc, at));
    }
    EXPECT_TRUE(fakes::run_until(
        ioc,
        [&] { return std::all_of(refused.begin(), refused.end(), [](const auto& c) { return c->closed; }); },
        10s
    ));
    EXPECT_EQ(server->connections(), 2u);
    EXPECT_EQ(metric("runbookd_http_connections_refused_total", "reason", "max_connections_per_client"), 5);
    EXPECT_EQ(metric("runbookd_http_connections_refused_total", "reason", "max_connections"), 0);
    // One line for the five: a flood must not become a flood of log lines.
    EXPECT_EQ(log_count("connections refused"), 1u);
    // The connections that were kept are served.
    kept[0]->send(get_healthz);
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return kept[0]->responses() == 1; }, 10s
    ));
    // Once one of them ends, the client may connect again.
    kept[1]->socket.close();
    ASSERT_TRUE(fakes::run_until(
        ioc, [&] { return server->connections() == 1; }, 10s
    ));
    client again{ioc, at};
    again.send(get_healthz);
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return again.responses() == 1; }, 10s
    ));
}

TEST_F(http_server_test, connections_beyond_the_total_limit_are_closed_and_counted) {
    server_limits limits;
    limits.max_connections = 1;
    start(limits);
    client first{ioc, at};
    ASSERT_TRUE(fakes::run_until(
        ioc, [&] { return server->connections() == 1; }, 10s
    ));
    client second{ioc, at};
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return second.closed; }, 10s
    ));
    EXPECT_EQ(metric("runbookd_http_connections_refused_total", "reason", "max_connections"), 1);
    EXPECT_EQ(log_count("connections refused"), 1u);
    EXPECT_NE(log_lines.back().find(R"("reason":"max_connections")"), std::string::npos) << log_lines.back();
    first.send(get_healthz);
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return first.responses() == 1; }, 10s
    ));
}

TEST(log_throttle, logs_at_once_then_once_a_period_with_what_it_held_back) {
    log_throttle t{10s};
    const loop::steady_clock::time_point t0{std::chrono::hours{1}};
    EXPECT_EQ(t.note(t0), 1u);
    EXPECT_EQ(t.note(t0 + 1s), 0u);
    EXPECT_EQ(t.note(t0 + 9999ms), 0u);
    EXPECT_EQ(t.note(t0 + 10s), 3u);  // this one and the two held back
    EXPECT_EQ(t.note(t0 + 10s), 0u);
    EXPECT_EQ(t.note(t0 + 1h), 2u);
}

TEST(router, only_keeps_the_named_paths_with_all_their_methods) {
    router all;
    all.add(http::verb::get, "/healthz", [](const request& req) {
        return make_response(req, http::status::ok, "ok");
    });
    all.add(http::verb::post, "/webhooks/pagerduty", [](const request& req) {
        return make_response(req, http::status::accepted, "{}");
    });
    const router admin = all.only({"/healthz", "/metrics"});
    request get{http::verb::get, "/healthz", 11};
    EXPECT_EQ(admin.handle(get).result(), http::status::ok);
    request post{http::verb::post, "/webhooks/pagerduty", 11};
    EXPECT_EQ(admin.handle(post).result(), http::status::not_found);
    EXPECT_EQ(all.handle(post).result(), http::status::accepted);
    request head{http::verb::post, "/healthz", 11};
    EXPECT_EQ(admin.handle(head).result(), http::status::method_not_allowed);
}

}  // namespace
}  // namespace runbookd::net
