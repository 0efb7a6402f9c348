#include "sources/promql/source.hpp"

#include "loop/clock.hpp"
#include "net/https_client.hpp"
#include "net/retry.hpp"
#include "net/url.hpp"
#include "sources/promql/parse.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdio>
#include <map>
#include <utility>

namespace runbookd::sources::promql {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

/// Answers are a point per series per step; a body larger than this is not what we asked
/// for (a runaway `by (ip)`), and max_series says so more precisely below it.
constexpr std::size_t max_body = 16 * 1024 * 1024;

/// The outcomes of one request, for runbookd_promql_requests_total{outcome}.
enum class outcome { ok, empty, query_error, bad_response, too_large, timed_out, unreachable };
constexpr std::array<std::string_view, 7> outcome_names{
    "ok", "empty", "query_error", "bad_response", "too_large", "timed_out", "unreachable"};

std::string seconds_text(wall_time t) {
    const auto ms = t.time_since_epoch().count();
    char buf[32];
    std::snprintf(
        buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000)
    );
    return buf;
}

/// Seconds as a float ("2.5"): what `step` and `timeout` accept besides a Prometheus
/// duration, which takes no fraction ("2.500s" is refused with 400 bad_data).
std::string duration_seconds(milliseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", std::chrono::duration<double>(d).count());
    return buf;
}

/// Standard base64 with padding (RFC 4648 §4), for the Basic credentials.
std::string base64(std::string_view in) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned n = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (i < in.size()) {
        unsigned n = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) {
            n |= static_cast<unsigned char>(in[i + 1]) << 8;
        }
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += i + 1 < in.size() ? alphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

/// Each query's metrics, created at zero when the source is made.
struct query_metrics {
    std::array<prometheus::Counter*, outcome_names.size()> requests{};
    prometheus::Gauge* series = nullptr;
    prometheus::Counter* signals = nullptr;
};

/// What the jobs share; kept alive by them, so that a run in flight when the source is
/// destroyed still has something to finish against.
struct shared {
    config cfg;
    std::string auth;
    net::http_client* http;
    log::logger log;
    std::map<std::string, query_metrics, std::less<>> metrics;
};

struct query_state {
    query q;
    std::optional<wall_time> last_end;
};

/// The answer of one request, or the poll's failure ("query NAME: ...").
using answer = boost::system::result<query_data, poll_failure>;

poll_failure failed(std::string detail, std::optional<milliseconds> retry_after = std::nullopt) {
    return poll_failure{make_failure(errc::upstream_unavailable, std::move(detail), true), retry_after, {}};
}

asio::awaitable<answer> ask(shared& sh, const query& q, const window& w, std::string_view what) {
    auto& m = sh.metrics.at(q.name);
    const auto count = [&](outcome o) { m.requests[static_cast<std::size_t>(o)]->Increment(); };
    const std::string prefix =
        "query " + q.name + (what.empty() ? "" : " (" + std::string{what} + ")") + ": ";
    net::http_call call;
    call.method = "POST";
    call.url = sh.cfg.url + (w.start == w.end ? "/api/v1/query" : "/api/v1/query_range");
    call.headers["Content-Type"] = "application/x-www-form-urlencoded";
    call.headers["Accept"] = "application/json";
    if (!sh.auth.empty()) {
        call.headers["Authorization"] = sh.auth;
    }
    call.body = request_form(q.expr, w, sh.cfg.timeout);
    call.timeout = sh.cfg.timeout;
    call.max_body = max_body;
    auto reply = co_await sh.http->send(std::move(call));
    if (!reply) {
        const auto& e = reply.error().error;
        if (e.code == make_error_code(errc::timed_out)) {
            count(outcome::timed_out);
            co_return failed(prefix + "timed out after " + format_duration(sh.cfg.timeout));
        }
        if (e.detail.find("body limit") != std::string::npos) {
            count(outcome::too_large);
            co_return failed(
                prefix + "answer larger than " + std::to_string(max_body / (1024 * 1024)) + " MiB"
            );
        }
        count(outcome::unreachable);
        co_return failed(prefix + "prometheus unreachable: " + e.detail);
    }
    auto data = parse_answer(reply->body, reply->status, q.by, sh.cfg.max_series);
    if (!data) {
        const auto& f = data.error();
        count(
            f.kind == answer_error::query_error ? outcome::query_error
            : f.kind == answer_error::too_large ? outcome::too_large
                                                : outcome::bad_response
        );
        std::optional<milliseconds> retry_after;
        if (reply->status == 429 || reply->status == 503) {
            retry_after = net::parse_seconds(reply->header("retry-after"));
        }
        co_return failed(prefix + f.detail, retry_after);
    }
    for (const auto& warning : data->warnings) {
        sh.log.warn("prometheus warning", {{"query", q.name}, {"warning", warning}});
    }
    count(data->result.empty() ? outcome::empty : outcome::ok);
    co_return std::move(*data);
}

asio::awaitable<poll_outcome> run(std::shared_ptr<shared> sh, std::shared_ptr<query_state> st) {
    const auto& q = st->q;
    const auto now = loop::wall_now();
    const auto w = next_window(now, st->last_end, sh->cfg.interval, sh->cfg.lookback);
    if (st->last_end && w.end <= *st->last_end) {
        co_return poll_result{};  // run early (jitter): that point was read already
    }
    auto current = co_await ask(*sh, q, w, "");
    if (!current) {
        co_return current.error();
    }
    auto& m = sh->metrics.at(q.name);
    m.series->Set(static_cast<double>(current->result.size()));
    if (current->result.empty() && !q.allow_empty) {
        co_return failed(
            "query " + q.name + ": empty result (no series: is the metric scraped, is the label `" + q.by +
            "` right?)"
        );
    }
    std::optional<query_data> before;
    if (q.kind != query_kind::top_talker) {
        const auto offset = baseline_offset(q.baseline);
        auto b = co_await ask(*sh, q, window{w.start - offset, w.end - offset, w.step}, "baseline");
        if (!b) {
            co_return b.error();
        }
        before = std::move(*b);
    }
    auto signals = evaluate(q, *current, before ? &*before : nullptr, sh->cfg.known_clients);
    m.signals->Increment(static_cast<double>(signals.size()));
    st->last_end = w.end;
    poll_result found;
    found.signals = std::move(signals);
    co_return found;
}

class promql_source final : public sources::source {
public:
    promql_source(const config& cfg, context& cx)
        : http_(std::make_unique<net::https_client>(
              cx.loop, net::tls_options{cfg.ca_file, {}, {}, {}}, cx.log.with("component", "promql_http")
          )),
          poller_(std::make_unique<poller>(
              cx.loop,
              "promql",
              poll_jobs(*http_, cfg, cx),
              cx.to.on_signal,
              cx.to.on_status,
              cx.log,
              cx.metrics
          )),
          cfg_(cfg) {}

    void refresh(
        const refresh_window& /*window*/, loop::steady_clock::time_point /*deadline*/, refresh_done done
    ) override {
        poller_->refresh(std::move(done));
    }
    std::string describe() const override {
        const char* auth =
            !cfg_.bearer_token.empty() ? "bearer token" : (!cfg_.username.empty() ? "basic auth" : "no auth");
        return cfg_.url + ": " + std::to_string(cfg_.queries.size()) +
               (cfg_.queries.size() == 1 ? " query" : " queries") + " every " +
               format_duration(cfg_.interval) + ", " + auth;
    }

    void start() override { poller_->start(); }

    void stop() override {
        poller_->stop();
        http_->shutdown();
    }

private:
    std::unique_ptr<net::http_client> http_;  ///< before the poller, whose jobs use it
    std::unique_ptr<poller> poller_;
    config cfg_;
};

}  // namespace

std::string request_form(const std::string& expr, const window& w, milliseconds timeout) {
    std::string out = "query=" + net::percent_encode(expr);
    if (w.start == w.end) {
        out += "&time=" + seconds_text(w.end);
    } else {
        out += "&start=" + seconds_text(w.start) + "&end=" + seconds_text(w.end) +
               "&step=" + duration_seconds(w.step);
    }
    out += "&timeout=" + duration_seconds(timeout);
    return out;
}

window next_window(
    wall_time now, std::optional<wall_time> last_end, milliseconds step, milliseconds lookback
) {
    const auto end = wall_time{now.time_since_epoch() / step * step};
    auto start = end - lookback / step * step;
    if (last_end && *last_end + step > start) {
        start = std::min(*last_end + step, end);
    }
    return window{start, end, step};
}

std::string authorization(const config& cfg) {
    if (!cfg.bearer_token.empty()) {
        return "Bearer " + cfg.bearer_token.reveal();
    }
    if (!cfg.username.empty()) {
        return "Basic " + base64(cfg.username + ":" + cfg.password.reveal());
    }
    return {};
}

std::vector<poll_job> poll_jobs(net::http_client& http, const config& cfg, context& cx) {
    auto sh = std::make_shared<shared>(shared{cfg, authorization(cfg), &http, cx.log, {}});
    auto& requests =
        prometheus::BuildCounter()
            .Name("runbookd_promql_requests_total")
            .Help(
                "Requests to Prometheus by query and outcome (ok, empty, query_error, bad_response, "
                "too_large, timed_out, unreachable)"
            )
            .Register(cx.metrics);
    auto& series = prometheus::BuildGauge()
                       .Name("runbookd_promql_series")
                       .Help("Series in the last answer to each query")
                       .Register(cx.metrics);
    auto& signals = prometheus::BuildCounter()
                        .Name("runbookd_promql_signals_total")
                        .Help("Traffic signals found by each query")
                        .Register(cx.metrics);
    std::vector<poll_job> jobs;
    for (const auto& q : cfg.queries) {
        query_metrics m;
        for (std::size_t i = 0; i < outcome_names.size(); ++i) {
            m.requests[i] = &requests.Add({{"query", q.name}, {"outcome", std::string{outcome_names[i]}}});
        }
        m.series = &series.Add({{"query", q.name}});
        m.signals = &signals.Add({{"query", q.name}});
        sh->metrics.emplace(q.name, m);
        auto st = std::make_shared<query_state>(query_state{q, std::nullopt});
        jobs.push_back(poll_job{q.name, cfg.interval, [sh, st] { return run(sh, st); }});
    }
    return jobs;
}

std::unique_ptr<sources::source> make(const config& cfg, context& cx) {
    if (!cfg.enabled()) {
        return nullptr;
    }
    if (cx.redact) {
        if (!cfg.bearer_token.empty()) {
            cx.redact(cfg.bearer_token.reveal());
        }
        if (!cfg.password.empty()) {
            cx.redact(cfg.password.reveal());
            cx.redact(authorization(cfg).substr(6));
        }
    }
    return std::make_unique<promql_source>(cfg, cx);
}

}  // namespace runbookd::sources::promql
