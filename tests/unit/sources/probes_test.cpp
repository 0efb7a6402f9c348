// The probes source: URLs and expected statuses read, answers judged (Google's load-balancer
// error page told from a backend's 5xx), failure runs, flapping and recoveries over virtual
// checks, the signals, the `probes:` section, and real loopback checks against small
// in-process servers that answer, stay silent, reset, refuse, or answer with garbage or a
// huge body. Every wait is bounded.
#include "config/config.hpp"
#include "fakes/io.hpp"
#include "log/log.hpp"
#include "sources/probes/check.hpp"
#include "sources/probes/parse.hpp"
#include "sources/probes/source.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace runbookd::sources::probes {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

const wall_time t0 = wall_time{} + std::chrono::hours{24 * 20000};

target named(const std::string& name, const std::string& url) {
    target t;
    t.name = name;
    t.url = url;
    return t;
}

const std::string google_502 =
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server Error)!!1</title>\n"
    "  <p><b>502.</b> <ins>That\xE2\x80\x99s an error.</ins>\n  <p>The server encountered a temporary error "
    "and could not complete your request.<p>Please try again in 30 seconds.  <ins>That\xE2\x80\x99s all we "
    "know.</ins>\n";

// ------------------------------------------------------------------ URLs and statuses

TEST(ProbesParse, ReadsHttpAndHttpsUrls) {
    const auto a = parse_url("https://accounts.darklang.com/a/ops-adduser?x=1");
    ASSERT_TRUE(a.where) << a.reason;
    EXPECT_TRUE(a.where->tls);
    EXPECT_EQ(a.where->host, "accounts.darklang.com");
    EXPECT_EQ(a.where->port, 443);
    EXPECT_EQ(a.where->target, "/a/ops-adduser?x=1");
    EXPECT_EQ(a.where->host_header, "accounts.darklang.com");
    const auto b = parse_url("http://127.0.0.1:8080");
    ASSERT_TRUE(b.where) << b.reason;
    EXPECT_FALSE(b.where->tls);
    EXPECT_EQ(b.where->port, 8080);
    EXPECT_EQ(b.where->target, "/");
    EXPECT_EQ(b.where->host_header, "127.0.0.1:8080");
    const auto c = parse_url("http://[::1]:81/x");
    ASSERT_TRUE(c.where) << c.reason;
    EXPECT_EQ(c.where->host, "::1");
    EXPECT_EQ(c.where->host_header, "[::1]:81");
}

TEST(ProbesParse, RefusesOtherUrlsWithAReason) {
    EXPECT_EQ(parse_url("ftp://x.test/").reason, "the scheme must be http or https");
    EXPECT_EQ(parse_url("not a url").reason, "not an absolute http:// or https:// URL");
    EXPECT_EQ(
        parse_url("https://user:pw@x.test/").reason,
        "credentials in the URL are not allowed (the URL is shown in #operations)"
    );
    EXPECT_EQ(parse_url("https://x.test/#top").reason, "a fragment (#...) is never sent: remove it");
    EXPECT_EQ(parse_url("https://x.test:0/").reason, "the port must be 1 to 65535");
}

TEST(ProbesParse, StatusesClassesAndRanges) {
    EXPECT_EQ(parse_status("200"), (status_range{200, 200}));
    EXPECT_EQ(parse_status("3xx"), (status_range{300, 399}));
    EXPECT_EQ(parse_status("200-204"), (status_range{200, 204}));
    for (const auto* bad : {"99", "600", "6xx", "0xx", "204-200", "2x", "abc", "", "200-", "1000"}) {
        EXPECT_FALSE(parse_status(bad)) << bad;
    }
    const std::vector<status_range> expect{{200, 299}, {301, 301}, {400, 404}};
    EXPECT_TRUE(status_expected(expect, 204));
    EXPECT_TRUE(status_expected(expect, 301));
    EXPECT_FALSE(status_expected(expect, 302));
    EXPECT_EQ(describe_expect(expect), "2xx,301,400-404");
}

// ------------------------------------------------------------------ judging answers

TEST(ProbesJudge, GooglesErrorPageIsTheLoadBalancersOwn) {
    EXPECT_TRUE(is_google_error_page(502, google_502));
    EXPECT_TRUE(is_google_error_page(503, "<p>That's an error.</p>"));
    EXPECT_FALSE(is_google_error_page(500, "Internal Server Error")) << "our server's 500";
    EXPECT_FALSE(is_google_error_page(502, "<html>nginx bad gateway</html>"));
    EXPECT_FALSE(is_google_error_page(404, google_502)) << "only a 5xx";
}

TEST(ProbesJudge, WrongStatusNamesWhoAnswered) {
    const auto t = named("www", "https://builtwithdark.com/");
    const auto gfe = judge(t, 502, google_502, false);
    EXPECT_EQ(gfe.what, outcome::wrong_status);
    EXPECT_TRUE(gfe.google_frontend);
    EXPECT_EQ(gfe.detail, "HTTP 502 from Google's load balancer (its own error page) (expected 2xx)");
    const auto ours = judge(t, 500, "Internal Server Error", false);
    EXPECT_EQ(ours.what, outcome::wrong_status);
    EXPECT_FALSE(ours.google_frontend);
    EXPECT_EQ(ours.detail, "HTTP 500 (expected 2xx)");
    EXPECT_EQ(ours.status, 500u);
}

TEST(ProbesJudge, BodyTextIsSearchedInWhatWasRead) {
    auto t = named("www", "https://builtwithdark.com/");
    t.body_contains = "healthy";
    EXPECT_EQ(judge(t, 200, "all healthy", false).what, outcome::ok);
    const auto missing = judge(t, 200, "degraded", true);
    EXPECT_EQ(missing.what, outcome::body_mismatch);
    EXPECT_EQ(
        missing.detail, "HTTP 200 without the expected text (7 bytes) in the body (first 256 KiB read)"
    );
    EXPECT_EQ(judge(t, 503, "healthy", false).what, outcome::wrong_status) << "the status first";
    EXPECT_EQ(judge(t, 200, std::string("\0\xff\xfe healthy", 11), false).what, outcome::ok)
        << "binary bytes are only bytes";
}

// ------------------------------------------------------------------ failure runs

TEST(ProbesTracker, CountsAfterConsecutiveFailuresAndRecoversOnce) {
    tracker tr;
    const thresholds th{3, 10, 4};
    EXPECT_EQ(tr.observe(true, t0, th).what, verdict::kind::none);
    auto v = tr.observe(false, t0 + 1min, th);
    EXPECT_EQ(v.what, verdict::kind::none) << "1 of 3";
    EXPECT_EQ(v.consecutive, 1u);
    EXPECT_EQ(tr.observe(false, t0 + 2min, th).what, verdict::kind::none) << "2 of 3";
    v = tr.observe(false, t0 + 3min, th);
    EXPECT_EQ(v.what, verdict::kind::failure);
    EXPECT_EQ(v.consecutive, 3u);
    EXPECT_EQ(v.since, t0 + 1min) << "since the first failed check of the run";
    EXPECT_FALSE(v.flapping);
    EXPECT_TRUE(tr.failing());
    v = tr.observe(false, t0 + 4min, th);
    EXPECT_EQ(v.what, verdict::kind::failure) << "every check while failing";
    EXPECT_EQ(v.since, t0 + 1min);
    v = tr.observe(true, t0 + 5min, th);
    EXPECT_EQ(v.what, verdict::kind::recovered);
    EXPECT_EQ(v.since, t0 + 1min);
    EXPECT_EQ(tr.observe(true, t0 + 6min, th).what, verdict::kind::none) << "recovered once";
}

TEST(ProbesTracker, AFailureBelowTheThresholdIsNotCountedNorRecovered) {
    tracker tr;
    const thresholds th{2, 10, 4};
    EXPECT_EQ(tr.observe(false, t0, th).what, verdict::kind::none);
    EXPECT_EQ(tr.observe(true, t0 + 1min, th).what, verdict::kind::none);
    EXPECT_EQ(tr.observe(false, t0 + 2min, th).what, verdict::kind::none);
    EXPECT_EQ(tr.observe(true, t0 + 3min, th).what, verdict::kind::none) << "3 changes: not yet flapping";
    EXPECT_FALSE(tr.failing());
}

TEST(ProbesTracker, FlappingCountsEachFailureAtOnce) {
    tracker tr;
    const thresholds th{3, 6, 4};
    tr.observe(true, t0, th);
    tr.observe(false, t0 + 1min, th);  // 1 change
    tr.observe(true, t0 + 2min, th);   // 2
    tr.observe(false, t0 + 3min, th);  // 3
    tr.observe(true, t0 + 4min, th);   // 4: flapping from here
    auto v = tr.observe(false, t0 + 5min, th);
    EXPECT_EQ(v.what, verdict::kind::failure) << "one failed check, but the target flaps";
    EXPECT_TRUE(v.flapping);
    EXPECT_EQ(v.consecutive, 1u);
    v = tr.observe(true, t0 + 6min, th);
    EXPECT_EQ(v.what, verdict::kind::recovered);
    EXPECT_TRUE(v.flapping);
    // Steady again: the window forgets the changes.
    for (int i = 7; i < 13; ++i) {
        v = tr.observe(true, t0 + std::chrono::minutes{i}, th);
    }
    EXPECT_FALSE(v.flapping);
    EXPECT_EQ(tr.observe(false, t0 + 13min, th).what, verdict::kind::none) << "1 of 3 again";
}

// ------------------------------------------------------------------ signals

TEST(ProbesSignal, AFailureNamesTheUrlStatusOutcomeAndSinceWhen) {
    auto t = named("ops-adduser", "https://accounts.darklang.com/health");
    t.ops_canvas = "sign-up";
    t.services = {"PACC001"};
    auto r = judge(t, 502, google_502, false);
    r.took = 250ms;
    verdict v;
    v.what = verdict::kind::failure;
    v.consecutive = 2;
    v.since = t0;
    const auto s = failure_signal(t, r, v, t0 + 30s, 3);
    EXPECT_EQ(s.kind, "probe.failure");
    ASSERT_NE(s.info, nullptr);
    EXPECT_EQ(s.source, "probes");
    EXPECT_EQ(s.subject, "ops-adduser");
    EXPECT_EQ(s.at, t0 + 30s);
    ASSERT_TRUE(s.value);
    EXPECT_DOUBLE_EQ(*s.value, 0.25);
    const std::map<std::string, std::string> want{
        {"target", "ops-adduser"},
        {"url", "https://accounts.darklang.com/health"},
        {"status", "502"},
        {"error", "HTTP 502 from Google's load balancer (its own error page) (expected 2xx)"},
        {"outcome", "wrong_status"},
        {"tls", ""},
        {"answered_by", "google_frontend"},
        {"since", format_rfc3339_seconds(t0)},
        {"consecutive", "2"},
        {"flapping", "false"},
        {"gfe_hosts", "3"},
        {"canvas", "sign-up"},
        {"services", "PACC001"}};
    for (const auto& [k, val] : want) {
        ASSERT_NE(s.find(k), nullptr) << k;
        EXPECT_EQ(*s.find(k), val) << k;
    }
}

TEST(ProbesSignal, WithoutAnAnswerNoStatusAndNoOneAnswered) {
    const auto t = named("api", "https://api.test/");
    check_result r;
    r.what = outcome::tls_error;
    r.tls = "expired";
    r.detail = "tls: certificate has expired";
    verdict v;
    v.consecutive = 2;
    v.since = t0;
    const auto s = failure_signal(t, r, v, t0 + 1min, 0);
    EXPECT_EQ(*s.find("status"), "");
    EXPECT_EQ(*s.find("answered_by"), "");
    EXPECT_EQ(*s.find("tls"), "expired");
    EXPECT_EQ(*s.find("services"), "*");
    EXPECT_EQ(*s.find("canvas"), "");
}

TEST(ProbesSignal, ARecoveryCarriesHowLongItFailed) {
    const auto t = named("api", "https://api.test/");
    const auto r = judge(t, 200, "", false);
    verdict v;
    v.what = verdict::kind::recovered;
    v.since = t0;
    const auto s = recovered_signal(t, r, v, t0 + 5min);
    EXPECT_EQ(s.kind, "probe.recovered");
    ASSERT_NE(s.info, nullptr);
    EXPECT_DOUBLE_EQ(*s.value, 300);
    EXPECT_EQ(*s.find("since"), format_rfc3339_seconds(t0));
    EXPECT_EQ(*s.find("status"), "200");
}

// ------------------------------------------------------------------ the `probes:` section

std::string with_probes(std::string_view probes) {
    return "pagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\n"
           "services:\n  PACC001:\n    name: Accounts\n"
           "probes:\n" +
           std::string{probes};
}

std::string dump(const std::vector<runbookd::config::problem>& problems) {
    std::string out;
    for (const auto& p : problems) {
        out += std::to_string(p.line) + " " + p.path + ": " + p.message + "\n";
    }
    return out;
}

TEST(ProbesConfig, EveryKeyWithDefaults) {
    const auto r = runbookd::config::parse(
        with_probes("  interval: 1m\n  timeout: 4s\n  concurrency: 8\n  failures_before_alert: 3\n"
                    "  flap_window: 8\n  flap_changes: 3\n"
                    "  targets:\n"
                    "    - name: ops-adduser\n"
                    "      url: https://accounts.darklang.com/health\n"
                    "      method: HEAD\n"
                    "      expect_status: [200, 3xx, 400-404]\n"
                    "      timeout: 2s\n"
                    "      interval: 15s\n"
                    "      services: [PACC001]\n"
                    "      ops_canvas: sign-up\n"
                    "    - url: http://127.0.0.1:8080/ok\n"
                    "      body_contains: ok\n"),
        "inline.yaml",
        [](std::string_view) -> std::optional<std::string> { return std::nullopt; }
    );
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const auto& c = r.value->probes;
    EXPECT_TRUE(c.enabled());
    EXPECT_EQ(c.interval, 1min);
    EXPECT_EQ(c.timeout, 4s);
    EXPECT_EQ(c.concurrency, 8u);
    EXPECT_EQ(c.failures_before_alert, 3u);
    EXPECT_EQ(c.flap_window, 8u);
    EXPECT_EQ(c.flap_changes, 3u);
    ASSERT_EQ(c.targets.size(), 2u);
    const auto& a = c.targets[0];
    EXPECT_EQ(a.name, "ops-adduser");
    EXPECT_EQ(a.method, "HEAD");
    EXPECT_EQ(a.expect, (std::vector<status_range>{{200, 200}, {300, 399}, {400, 404}}));
    EXPECT_EQ(a.timeout, 2s);
    EXPECT_EQ(a.interval, 15s);
    EXPECT_EQ(a.services, std::vector<std::string>{"PACC001"});
    EXPECT_EQ(a.ops_canvas, "sign-up");
    const auto& b = c.targets[1];
    EXPECT_EQ(b.name, "127.0.0.1") << "named by the URL's host";
    EXPECT_EQ(b.method, "GET");
    EXPECT_EQ(b.expect, (std::vector<status_range>{{200, 299}}));
    EXPECT_EQ(b.body_contains, "ok");
    EXPECT_EQ(b.timeout, 0ms) << "the section's";
    EXPECT_EQ(b.ops_canvas, "");

    EXPECT_FALSE(runbookd::config::config{}.probes.enabled());
    EXPECT_EQ(config{}.interval, 30s);
    EXPECT_EQ(config{}.failures_before_alert, 2u);
}

TEST(ProbesConfig, EachBadTargetIsReportedWhereItIs) {
    const auto r = runbookd::config::parse(
        with_probes("  targets:\n"
                    "    - name: nourl\n"                // line 10
                    "    - url: ftp://x.test/\n"         // 9
                    "    - url: https://a.test/\n"       // 10
                    "      expect_status: [200, 7xx]\n"  // 11
                    "      ops_canvas: signup\n"         // 12
                    "    - url: https://a.test/other\n"  // 13: a second "a.test"
                    "    - url: https://b.test/\n"       // 14
                    "      method: HEAD\n"
                    "      body_contains: ok\n"  // 16
                    "      services: [PNOPE99]\n"),
        "inline.yaml",
        [](std::string_view) -> std::optional<std::string> { return std::nullopt; }
    );
    ASSERT_FALSE(r.ok());
    const auto text = dump(r.problems);
    const auto has = [&](const std::string& s) { return text.find(s) != std::string::npos; };
    EXPECT_TRUE(has("10 probes.targets[0].url: required")) << text;
    EXPECT_TRUE(has("11 probes.targets[1].url: 'ftp://x.test/': the scheme must be http or https")) << text;
    EXPECT_TRUE(has("13 probes.targets[2].expect_status: '7xx' is not a status")) << text;
    EXPECT_TRUE(has("14 probes.targets[2].ops_canvas:")) << text;
    EXPECT_TRUE(has("15 probes.targets[3].url: 'a.test' is already a target's name")) << text;
    EXPECT_TRUE(has("18 probes.targets[4].body_contains: a HEAD request has no body")) << text;
    EXPECT_TRUE(has("probes.targets: target b.test: 'PNOPE99' is not a service under services:")) << text;
}

// ------------------------------------------------------------------ real loopback checks

/// A one-connection-at-a-time TCP server on 127.0.0.1 that reads the request head and then
/// does `what`: answers `reply` and closes, stays silent, or resets; or (banner) writes `reply`
/// at once without reading anything, as an SSH server does.
struct server {
    enum class mode { reply, banner, silent, reset };
    server(asio::io_context& ioc, mode m, std::string reply = {})
        : ioc_(ioc),
          acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0}),
          what(m),
          answer(std::move(reply)) {
        port = acceptor.local_endpoint().port();
        asio::co_spawn(ioc_, accept_loop(), [](const std::exception_ptr&) {
        });  // ends when the acceptor closes
    }
    ~server() { acceptor.close(); }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
            if (ec) {
                co_return;
            }
            ++accepted;
            asio::co_spawn(ioc_, session(std::move(socket)), [](const std::exception_ptr&) {});
        }
    }

    asio::awaitable<void> session(tcp::socket socket) {
        std::string head;
        std::array<char, 4096> buf{};
        if (what == mode::banner) {
            co_await asio::async_write(socket, asio::buffer(answer), tuple_awaitable);
            co_await socket.async_read_some(asio::buffer(buf), tuple_awaitable);
            co_return;
        }
        while (head.find("\r\n\r\n") == std::string::npos) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), tuple_awaitable);
            if (ec) {
                co_return;
            }
            head.append(buf.data(), n);
        }
        request = head;
        if (what == mode::reply) {
            co_await asio::async_write(socket, asio::buffer(answer), tuple_awaitable);
            boost::system::error_code ignored;
            socket.close(ignored);
        } else if (what == mode::reset) {
            boost::system::error_code ignored;
            socket.set_option(asio::socket_base::linger(true, 0), ignored);
            socket.close(ignored);
        } else {
            // Silent: hold the connection open until the client gives up.
            max_open = std::max(max_open, ++open_now);
            co_await socket.async_read_some(asio::buffer(buf), tuple_awaitable);
            --open_now;
        }
    }

    asio::io_context& ioc_;
    tcp::acceptor acceptor;
    mode what;
    std::string answer;
    std::uint16_t port = 0;
    int accepted = 0;
    int open_now = 0;  ///< silent connections held at this moment
    int max_open = 0;  ///< the most held at once
    std::string request;
};

class ProbesCheck : public ::testing::Test {
protected:
    check_result run_check(const target& t, std::chrono::milliseconds timeout = 3s) {
        auto where = parse_url(t.url).where;
        EXPECT_TRUE(where);
        std::optional<check_result> out;
        asio::co_spawn(ioc, probe.check(t, *where, timeout), [&](std::exception_ptr e, check_result r) {
            EXPECT_FALSE(e);
            out = std::move(r);
        });
        EXPECT_TRUE(fakes::run_until(
            ioc, [&] { return out.has_value(); }, timeout + 5s
        ));
        return out.value_or(check_result{});
    }

    target local(std::uint16_t port, const std::string& path = "/health") {
        return named("local", "http://127.0.0.1:" + std::to_string(port) + path);
    }

    asio::io_context ioc;
    prober probe{ioc.get_executor()};
};

TEST_F(ProbesCheck, AnExpectedAnswerIsOkAndTheRequestIsPlain) {
    server s{ioc, server::mode::reply, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy"};
    auto t = local(s.port);
    t.body_contains = "healthy";
    const auto r = run_check(t);
    EXPECT_EQ(r.what, outcome::ok) << r.detail;
    EXPECT_EQ(r.status, 200u);
    EXPECT_NE(s.request.find("GET /health HTTP/1.1\r\n"), std::string::npos) << s.request;
    EXPECT_NE(s.request.find("Connection: close"), std::string::npos) << s.request;
    EXPECT_NE(s.request.find("Host: 127.0.0.1:" + std::to_string(s.port)), std::string::npos) << s.request;
}

TEST_F(ProbesCheck, GooglesErrorPageIsAWrongStatusFromTheFrontEnd) {
    server s{
        ioc,
        server::mode::reply,
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html; charset=UTF-8\r\nVia: 1.1 google\r\n"
        "Content-Length: " +
            std::to_string(google_502.size()) + "\r\n\r\n" + google_502};
    const auto r = run_check(local(s.port));
    EXPECT_EQ(r.what, outcome::wrong_status) << r.detail;
    EXPECT_EQ(r.status, 502u);
    EXPECT_TRUE(r.google_frontend);
}

TEST_F(ProbesCheck, AHugeBodyIsReadOnlyUpToTheCap) {
    // Announces 64 MiB and sends 1 MiB: the check stops after the first 256 KiB.
    std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n" + std::string(1024 * 1024, 'x');
    server s{ioc, server::mode::reply, reply};
    auto t = local(s.port);
    t.body_contains = "needle";
    const auto r = run_check(t);
    EXPECT_EQ(r.what, outcome::body_mismatch) << r.detail;
    EXPECT_NE(r.detail.find("first 256 KiB read"), std::string::npos) << r.detail;
}

TEST_F(ProbesCheck, GarbageIsABadResponse) {
    server s{ioc, server::mode::banner, "SSH-2.0-OpenSSH_9.2\r\n"};
    const auto r = run_check(local(s.port));
    EXPECT_EQ(r.what, outcome::bad_response) << r.detail;
    EXPECT_TRUE(r.detail.starts_with("not a valid HTTP answer: ")) << r.detail;
}

TEST_F(ProbesCheck, AnAnswerCutShortIsAReset) {
    server s{ioc, server::mode::reply, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"};
    const auto r = run_check(local(s.port));
    EXPECT_EQ(r.what, outcome::reset) << r.detail;
    EXPECT_EQ(r.detail, "the server closed the connection before the answer ended");
}

TEST_F(ProbesCheck, AResetIsAReset) {
    server s{ioc, server::mode::reset};
    const auto r = run_check(local(s.port));
    EXPECT_EQ(r.what, outcome::reset) << r.detail;
}

TEST_F(ProbesCheck, ASilentServerTimesOutAtTheDeadline) {
    server s{ioc, server::mode::silent};
    const auto r = run_check(local(s.port), 300ms);
    EXPECT_EQ(r.what, outcome::timed_out) << r.detail;
    EXPECT_EQ(r.detail, "timed out after 300ms during waiting for the answer");
    EXPECT_GE(r.took, 290ms);
    EXPECT_LT(r.took, 2s);
}

TEST_F(ProbesCheck, ARefusedPortIsRefused) {
    std::uint16_t port = 0;
    {
        tcp::acceptor a{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
        port = a.local_endpoint().port();
    }
    const auto r = run_check(local(port));
    EXPECT_EQ(r.what, outcome::refused) << r.detail;
    EXPECT_EQ(r.status, 0u);
}

TEST_F(ProbesCheck, ANameThatDoesNotResolveIsADnsFailure) {
    const auto r = run_check(named("nowhere", "http://nowhere.invalid/"));
    EXPECT_EQ(r.what, outcome::dns_failure) << r.detail;
    EXPECT_TRUE(r.detail.starts_with("resolve nowhere.invalid: ")) << r.detail;
}

TEST_F(ProbesCheck, PlainHttpOnAnHttpsTargetIsATlsError) {
    server s{ioc, server::mode::banner, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
    const auto r = run_check(named("tls", "https://127.0.0.1:" + std::to_string(s.port) + "/"));
    EXPECT_EQ(r.what, outcome::tls_error) << r.detail;
    EXPECT_EQ(r.tls, "handshake_failed");
    EXPECT_NE(r.detail.find("wrong version number"), std::string::npos) << r.detail;
}

TEST_F(ProbesCheck, ACaFileThatCannotBeReadIsReported) {
    const auto loaded = probe.load_trust("/nonexistent/ca.pem");
    ASSERT_TRUE(loaded.has_error());
    EXPECT_EQ(loaded.error().code, errc::config_invalid);
}

// ------------------------------------------------------------------ the source

class ProbesSource : public ProbesCheck {
protected:
    prometheus::Registry registry;
    std::vector<signal> signals;
    std::vector<source_status> statuses;

    sources::context cx() {
        return sources::context{
            ioc.get_executor(),
            log::discard(),
            registry,
            sources::sinks{
                [this](signal s) { signals.push_back(std::move(s)); },
                [this](source_status s) { statuses.push_back(std::move(s)); }},
            [](std::string) {}};
    }
};

TEST_F(ProbesSource, NoTargetIsNoSource) {
    auto c = cx();
    EXPECT_EQ(make(config{}, c), nullptr);
}

TEST_F(ProbesSource, AnUnreadableCaFileIsAStartUpError) {
    config cfg;
    cfg.targets.push_back(named("api", "https://api.test/"));
    cfg.targets[0].ca_file = "/nonexistent/ca.pem";
    auto c = cx();
    EXPECT_THROW(make(cfg, c), std::runtime_error);
}

TEST_F(ProbesSource, AtMostConcurrencyChecksAtOnceAndEachTargetSignals) {
    server silent{ioc, server::mode::silent};
    config cfg;
    cfg.concurrency = 2;
    cfg.timeout = 300ms;
    cfg.interval = 1h;  // one check each
    cfg.failures_before_alert = 1;
    for (int i = 0; i < 6; ++i) {
        cfg.targets.push_back(named(
            "t" + std::to_string(i),
            "http://127.0.0.1:" + std::to_string(silent.port) + "/" + std::to_string(i)
        ));
    }
    auto c = cx();
    auto src = make(cfg, c);
    ASSERT_NE(src, nullptr);
    EXPECT_EQ(src->describe(), "6 targets every 1h, 2 at a time, failing after 1 in a row");
    src->start();
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return signals.size() == 6; }, 10s
    ));
    src->stop();
    EXPECT_EQ(silent.max_open, 2) << "two checks at a time, never more";
    EXPECT_EQ(silent.accepted, 6);
    for (const auto& s : signals) {
        EXPECT_EQ(s.kind, "probe.failure");
        EXPECT_EQ(*s.find("outcome"), "timed_out") << *s.find("error");
        EXPECT_EQ(*s.find("consecutive"), "1");
    }
    ASSERT_FALSE(statuses.empty());
    EXPECT_EQ(statuses.back().state, source_state::healthy) << "failing targets are evidence";
}

}  // namespace
}  // namespace runbookd::sources::probes
