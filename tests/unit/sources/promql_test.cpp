// The promql source: the `promql:` section, the pure reading of Prometheus' answers (shaped
// as in api-facts §7.2) and their evaluation into traffic signals, its jobs against
// scripted answers under manual time, and make().
#include "config/config.hpp"
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "fakes/scripted_http.hpp"
#include "sources/promql/parse.hpp"
#include "sources/promql/source.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace runbookd::sources::promql {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

std::string label(const signal& s, std::string_view name) {
    const std::string* v = s.find(name);
    return v == nullptr ? "<absent>" : *v;
}

// --- config --------------------------------------------------------------------------------

runbookd::config::load_result parse_section(const std::string& section) {
    return runbookd::config::parse(
        "pagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\npromql:\n" + section,
        "inline.yaml",
        [](std::string_view name) -> std::optional<std::string> {
            if (name == "PROM_TOKEN") {
                return "tok-SECRET-1234";
            }
            return std::nullopt;
        }
    );
}

std::string problems_of(const runbookd::config::load_result& r) {
    std::ostringstream out;
    for (const auto& p : r.problems) {
        out << p.line << " " << p.path << ": " << p.message << "\n";
    }
    return out.str();
}

TEST(promql_config, every_key_is_read_and_defaults_are_filled_in) {
    const auto r = parse_section(
        "  url: https://prometheus.internal:9090/\n"
        "  bearer_token: ${PROM_TOKEN}\n"
        "  interval: 30s\n  timeout: 5s\n  lookback: 20m\n  max_series: 100\n"
        "  known_clients:\n    - {key: AS15169, user: uptime checks}\n"
        "  queries:\n"
        "    - name: by_canvas\n"
        "      query: sum by (canvas) (rate(requests_total[5m]))\n"
        "      signal: top_talker\n"
        "      by: canvas\n"
        "      min_share: 0.4\n"
        "    - name: by_asn\n"
        "      query: sum by (asn) (rate(requests_total[5m]))\n"
        "      signal: top_talker\n"
        "      by: asn\n"
        "    - name: total\n"
        "      query: sum(rate(requests_total[5m]))\n"
        "      signal: spike\n"
        "      target: builtwithdark.com\n"
        "      baseline: hour\n"
        "      min_ratio: 3\n"
        "    - name: p99\n"
        "      query: histogram_quantile(0.99, sum by (handler, le) (rate(duration_bucket[5m])))\n"
        "      signal: slow_handler\n"
        "      by: handler\n"
        "      allow_empty: true\n"
    );
    ASSERT_TRUE(r.ok()) << problems_of(r);
    const auto& c = r.value->promql;
    EXPECT_TRUE(c.enabled());
    EXPECT_EQ(c.url, "https://prometheus.internal:9090");
    EXPECT_EQ(c.bearer_token.reveal(), "tok-SECRET-1234");
    EXPECT_EQ(c.interval, 30s);
    EXPECT_EQ(c.timeout, 5s);
    EXPECT_EQ(c.lookback, 20min);
    EXPECT_EQ(c.max_series, 100u);
    ASSERT_EQ(c.known_clients.size(), 1u);
    EXPECT_EQ(c.known_clients[0].user, "uptime checks");
    ASSERT_EQ(c.queries.size(), 4u);
    EXPECT_EQ(c.queries[0].key_type, "canvas") << "a `by` that is a key type is the key type";
    EXPECT_EQ(c.queries[0].min_share, 0.4);
    EXPECT_EQ(c.queries[1].key_type, "asn");
    EXPECT_EQ(c.queries[2].kind, query_kind::spike);
    EXPECT_EQ(c.queries[2].target, "builtwithdark.com");
    EXPECT_EQ(c.queries[2].measure, "requests");
    EXPECT_EQ(c.queries[2].baseline, baseline_kind::hour);
    EXPECT_EQ(c.queries[3].measure, "latency");
    EXPECT_EQ(c.queries[3].baseline, baseline_kind::week);
    EXPECT_TRUE(c.queries[3].allow_empty);

    const auto off = parse_section("  interval: 1m\n");
    ASSERT_TRUE(off.ok()) << problems_of(off);
    EXPECT_FALSE(off.value->promql.enabled()) << "no url, no source";
}

TEST(promql_config, each_bad_query_is_reported_where_it_is) {
    const auto r = parse_section(
        "  url: https://prometheus.internal\n"  // line 6
        "  bearer_token: t\n"                   // line 7
        "  username: u\n"                       // line 8: both kinds of auth
        "  queries:\n"                          // line 9
        "    - name: a\n"                       // line 10
        "      query: up\n"                     // line 11
        "      signal: top_talker\n"            // line 12: no `by` (reported at the item)
        "    - name: a\n"                       // line 13: a second `a`
        "      query: up\n"                     // line 14
        "      signal: spike\n"                 // line 15
        "    - name: b\n"                       // line 16
        "      query: up\n"                     // line 17
        "      signal: hot\n"                   // line 18: unknown kind
        "    - name: c\n"                       // line 19
        "      query: up\n"                     // line 20
        "      signal: top_talker\n"            // line 21
        "      by: tenant\n"                    // line 22: not a key type, none given (at the item)
        "    - name: d\n"                       // line 23
        "      query: up\n"                     // line 24
        "      signal: slow_handler\n"          // line 25
        "      by: \"bad-label\"\n"             // line 26
        "      measure: requests\n"             // line 27: not a slow_handler measure
        "      min_shar: 1\n"                   // line 28: unknown key
    );
    ASSERT_FALSE(r.ok());
    const auto text = problems_of(r);
    for (const auto* want :
         {"8 promql.username: give either bearer_token or username and password, not both",
          "10 promql.queries[0].by: required for a top_talker",
          "13 promql.queries[1].name: 'a' is already a query",
          "18 promql.queries[2].signal:",
          "19 promql.queries[3].key_type: required when `by` (tenant)",
          "26 promql.queries[4].by: 'bad-label': not a Prometheus label name",
          "27 promql.queries[4].measure:",
          "28 promql.queries[4].min_shar: unknown key 'min_shar'; did you mean 'min_share'?"}) {
        EXPECT_NE(text.find(want), std::string::npos) << "missing: " << want << "\n" << text;
    }
    EXPECT_EQ(text.find("queries[2].by"), std::string::npos) << "an unknown signal is one problem, not two";
    EXPECT_EQ(text.find("needs both"), std::string::npos) << text;
    EXPECT_EQ(text.find("t\n"), std::string::npos) << "a secret's value never appears";
}

TEST(promql_config, a_url_needs_a_query_and_plain_http_only_on_loopback) {
    auto r = parse_section("  url: https://prometheus.internal\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(problems_of(r).find("promql.queries: at least one query is needed"), std::string::npos)
        << problems_of(r);
    r = parse_section(
        "  url: http://prometheus.internal\n  queries:\n    - {name: t, query: up, signal: spike}\n"
    );
    ASSERT_FALSE(r.ok());
    EXPECT_NE(problems_of(r).find("promql.url"), std::string::npos) << problems_of(r);
    r = parse_section("  url: http://127.0.0.1:9090\n  queries:\n    - {name: t, query: up, signal: spike}\n"
    );
    EXPECT_TRUE(r.ok()) << problems_of(r);
}

// --- parse_answer ---------------------------------------------------------------------------

TEST(promql_parse, a_vector_a_matrix_and_a_scalar) {
    auto v = parse_answer(
        R"({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"canvas":"ellen-stachetest","job":"bwd"},"value":[1772726400.5,"850.25"]},
            {"metric":{"job":"bwd"},"value":[1772726400.5,"NaN"]}]},"warnings":["partial data"]})",
        200,
        "canvas",
        10
    );
    ASSERT_TRUE(v) << v.error().detail;
    EXPECT_EQ(v->result_type, "vector");
    ASSERT_EQ(v->result.size(), 2u);
    EXPECT_EQ(v->result[0].key, "ellen-stachetest");
    EXPECT_EQ(v->result[0].points[0].at, *parse_rfc3339("2026-03-05T16:00:00.500Z"));
    EXPECT_EQ(v->result[0].points[0].value, 850.25);
    EXPECT_EQ(v->result[1].key, "") << "a series without the label";
    EXPECT_TRUE(std::isnan(v->result[1].points[0].value));
    EXPECT_EQ(v->warnings, std::vector<std::string>{"partial data"});

    auto m = parse_answer(
        R"({"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"ip":"203.0.113.9"},"values":[[1772726340,"1"],[1772726400,"+Inf"]]}]},
            "infos":["new field"],"stats":{}})",
        200,
        "ip",
        10
    );
    ASSERT_TRUE(m) << m.error().detail;
    ASSERT_EQ(m->result[0].points.size(), 2u);
    EXPECT_TRUE(std::isinf(m->result[0].points[1].value));

    auto s = parse_answer(
        R"({"status":"success","data":{"resultType":"scalar","result":[1772726400,"3"]}})", 200, "x", 10
    );
    ASSERT_TRUE(s) << s.error().detail;
    EXPECT_EQ(s->result[0].points[0].value, 3);
}

TEST(promql_parse, errors_and_bad_bodies_say_what_they_are) {
    struct bad_case {
        std::string body;
        unsigned status;
        answer_error kind;
        std::string detail;
    };
    const std::vector<bad_case> cases{
        {R"({"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \")\""})",
         400,
         answer_error::query_error,
         "400 bad_data: 1:5: parse error: unexpected \")\""},
        {R"({"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"})",
         503,
         answer_error::query_error,
         "503 timeout: query timed out in expression evaluation"},
        {"<html><head><title>502 Bad Gateway</title></head></html>",
         502,
         answer_error::bad_response,
         "HTTP 502: not a Prometheus API answer: \"<html><head><title>502 Bad "
         "Gateway</title></head></html>\""},
        {"", 200, answer_error::bad_response, "HTTP 200: not a Prometheus API answer (empty body)"},
        {R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"val)",
         200,
         answer_error::bad_response,
         "HTTP 200: not a Prometheus API answer"},
        {R"({"status":"success","data":{"resultType":"string","result":[1,"x"]}})",
         200,
         answer_error::bad_response,
         "resultType \"string\": expected vector, matrix or scalar"},
        {R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}})",
         200,
         answer_error::bad_response,
         "a vector sample that is not [time, \"value\"]"},
        {R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1x"]]}]}})",
         200,
         answer_error::bad_response,
         "a sample that is not [time, \"value\"]"},
        {R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},
            {"metric":{},"value":[1,"1"]},{"metric":{},"value":[1,"1"]}]}})",
         200,
         answer_error::too_large,
         "3 series, more than max_series (2)"},
        {R"([1,2,3])", 200, answer_error::bad_response, "HTTP 200: not a Prometheus API answer"},
        {R"({"status":"success"})", 200, answer_error::bad_response, "a success without data.result"},
    };
    for (const auto& c : cases) {
        const auto r = parse_answer(c.body, c.status, "ip", 2);
        ASSERT_FALSE(r) << c.body;
        EXPECT_EQ(r.error().kind, c.kind) << c.body;
        EXPECT_TRUE(r.error().detail.starts_with(c.detail)) << r.error().detail << "\n  wanted: " << c.detail;
    }
}

// --- evaluate -------------------------------------------------------------------------------

const wall_time t0 = *parse_rfc3339("2026-03-05T16:00:00Z");

query_data data_of(std::vector<series> s) {
    return query_data{"matrix", std::move(s), {}};
}

TEST(promql_evaluate, a_key_with_most_requests_is_a_top_talker_at_its_strongest_point) {
    query q;
    q.name = "by_ip";
    q.kind = query_kind::top_talker;
    q.by = "ip";
    q.key_type = "ip";
    q.min_share = 0.5;
    q.min_value = 10;
    const auto d = data_of({
        {"203.0.113.9", {{t0 - 2min, 40}, {t0 - 1min, 900}, {t0, 600}}},
        {"198.51.100.7", {{t0 - 2min, 60}, {t0 - 1min, 100}, {t0, 400}}},
        {"192.0.2.1", {{t0 - 2min, 8}, {t0 - 1min, 0}, {t0, 0}}},
        {"", {{t0 - 1min, std::nan("")}}},
    });
    const std::vector<known_client> known{{"198.51.100.7", "stachetest CI"}};
    const auto got = evaluate(q, d, nullptr, known);
    // 198.51.100.7: 60/108 at t0-2min (share 0.56 but 60 >= 10): a talker then.
    ASSERT_EQ(got.size(), 2u);
    const auto& ip =
        *std::find_if(got.begin(), got.end(), [](const signal& s) { return s.subject == "203.0.113.9"; });
    EXPECT_EQ(ip.kind, "traffic.top_talker");
    EXPECT_EQ(ip.at, t0 - 1min) << "dated at the data point that shows it most, not at the poll";
    EXPECT_EQ(ip.value, 900);
    EXPECT_EQ(label(ip, "share"), "0.9");
    EXPECT_EQ(label(ip, "key_type"), "ip");
    EXPECT_EQ(label(ip, "owner"), "");
    EXPECT_EQ(label(ip, "query"), "by_ip");
    EXPECT_EQ(ip.source, "promql");
    const auto& ci =
        *std::find_if(got.begin(), got.end(), [](const signal& s) { return s.subject == "198.51.100.7"; });
    EXPECT_EQ(label(ci, "owner"), "stachetest CI");
    EXPECT_EQ(label(ci, "share"), "0.556");

    q.min_share = 0.95;
    EXPECT_TRUE(evaluate(q, d, nullptr, known).empty()) << "nobody above 95%";
}

TEST(promql_evaluate, the_total_against_the_same_time_a_week_earlier_is_a_spike) {
    query q;
    q.name = "total";
    q.kind = query_kind::spike;
    q.target = "builtwithdark.com";
    q.measure = "requests";
    q.min_ratio = 3;
    const auto week = std::chrono::duration_cast<millis>(std::chrono::hours{24 * 7});
    // Two series (two instances) summed: 70 + 70 a week ago; 500 + 480 now.
    const auto now = data_of({{"", {{t0 - 1min, 150}, {t0, 500}}}, {"", {{t0 - 1min, 150}, {t0, 480}}}});
    const auto then = data_of(
        {{"", {{t0 - 1min - week, 140}, {t0 - week, 70}}}, {"", {{t0 - 1min - week, 0}, {t0 - week, 70}}}}
    );
    const auto got = evaluate(q, now, &then, {});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, "traffic.spike");
    EXPECT_EQ(got[0].at, t0);
    EXPECT_EQ(got[0].value, 7);
    EXPECT_EQ(label(got[0], "target"), "builtwithdark.com");
    EXPECT_EQ(label(got[0], "baseline"), "140");
    EXPECT_EQ(label(got[0], "counts"), "requests");
    EXPECT_EQ(label(got[0], "compared_to"), "a week earlier");

    EXPECT_TRUE(evaluate(q, now, nullptr, {}).empty()) << "no baseline, nothing to compare with";
    q.min_value = 1000;
    EXPECT_TRUE(evaluate(q, now, &then, {}).empty()) << "980/s is under min_value";
    q.min_value = 0;
    const auto zero = data_of({{"", {{t0 - week, 0}}}});
    EXPECT_TRUE(evaluate(q, now, &zero, {}).empty()) << "a zero baseline is no ratio";
}

TEST(promql_evaluate, a_handler_far_slower_than_an_hour_ago_is_a_slow_handler) {
    query q;
    q.name = "p99";
    q.kind = query_kind::slow_handler;
    q.by = "handler";
    q.measure = "latency";
    q.baseline = baseline_kind::hour;
    q.min_ratio = 2;
    const auto now = data_of({{"POST /api/save", {{t0, 4.2}}}, {"GET /", {{t0, 0.11}}}});
    const auto then = data_of({{"POST /api/save", {{t0 - 1h, 0.35}}}, {"GET /", {{t0 - 1h, 0.1}}}});
    const auto got = evaluate(q, now, &then, {});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, "traffic.slow_handler");
    EXPECT_EQ(got[0].subject, "POST /api/save");
    EXPECT_NEAR(*got[0].value, 12, 1e-9);
    EXPECT_EQ(label(got[0], "handler"), "POST /api/save");
    EXPECT_EQ(label(got[0], "current"), "4.2");
    EXPECT_EQ(label(got[0], "baseline"), "0.35");
    EXPECT_EQ(label(got[0], "measure"), "latency");
    EXPECT_EQ(label(got[0], "compared_to"), "the previous hour");
}

TEST(promql_evaluate, numbers_as_labels_show_them) {
    EXPECT_EQ(number_text(0.72), "0.72");
    EXPECT_EQ(number_text(140), "140");
    EXPECT_EQ(number_text(0.034), "0.034");
    EXPECT_EQ(number_text(1.25), "1.25");
    EXPECT_EQ(number_text(1234.6), "1235");
}

// --- windows, forms, auth -------------------------------------------------------------------

TEST(promql_requests, the_first_run_reads_back_the_lookback_then_one_point_a_step) {
    const auto now = t0 + 42s;
    auto w = next_window(now, std::nullopt, 1min, 30min);
    EXPECT_EQ(w.end, t0);
    EXPECT_EQ(w.start, t0 - 30min);
    w = next_window(now + 1min, t0, 1min, 30min);
    EXPECT_EQ(w.start, t0 + 1min);
    EXPECT_EQ(w.end, t0 + 1min);
    w = next_window(now + 3h, t0, 1min, 30min);
    EXPECT_EQ(w.start, t0 + 3h - 30min) << "after a long failure, no further back than lookback";
    w = next_window(now, std::nullopt, 1min, 0ms);
    EXPECT_EQ(w.start, w.end) << "no lookback: an instant";

    EXPECT_EQ(
        request_form("sum by (ip) (rate(x[5m]))", window{t0, t0, 1min}, 10s),
        "query=sum%20by%20%28ip%29%20%28rate%28x%5B5m%5D%29%29&time=1772726400.000&timeout=10.000"
    );
    EXPECT_EQ(
        request_form("up", window{t0 - 30min, t0, 1min}, 2500ms),
        "query=up&start=1772724600.000&end=1772726400.000&step=60.000&timeout=2.500"
    );
}

TEST(promql_requests, bearer_or_basic_credentials) {
    config c;
    EXPECT_EQ(authorization(c), "");
    c.bearer_token = secret<std::string>{"abc"};
    EXPECT_EQ(authorization(c), "Bearer abc");
    c.bearer_token = {};
    c.username = "runbookd";
    c.password = secret<std::string>{"pa:ss"};
    EXPECT_EQ(authorization(c), "Basic cnVuYm9va2Q6cGE6c3M=");  // base64("runbookd:pa:ss")
    c.username = "ab";
    c.password = secret<std::string>{"c"};
    EXPECT_EQ(authorization(c), "Basic YWI6Yw==");
}

// --- the jobs -------------------------------------------------------------------------------

struct harness {
    fakes::manual_time clock{fakes::at("2026-03-05T16:00:42Z")};
    asio::io_context ioc;
    fakes::scripted_http http;
    prometheus::Registry registry;
    context cx{ioc.get_executor(), log::discard(), registry, sinks{[](signal) {}, [](source_status) {}}, {}};

    poll_outcome run(poll_job& job) {
        std::optional<poll_outcome> out;
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { out = co_await job.run(); }, asio::detached
        );
        fakes::drain(ioc);
        return out.value_or(poll_failure{make_failure(errc::timed_out, "did not finish"), {}, {}});
    }
};

config one_query(query_kind kind) {
    config c;
    c.url = "https://prometheus.test:9090";
    c.username = "runbookd";
    c.password = secret<std::string>{"pw"};
    query q;
    q.name = kind == query_kind::spike ? "total" : "by_canvas";
    q.expr = kind == query_kind::spike ? "sum(rate(requests_total[5m]))"
                                       : "sum by (canvas) (rate(requests_total[5m]))";
    q.kind = kind;
    q.by = kind == query_kind::spike ? "" : "canvas";
    q.key_type = "canvas";
    q.target = "builtwithdark.com";
    q.measure = "requests";
    c.queries.push_back(q);
    return c;
}

TEST(promql_jobs, a_range_first_then_instants_with_credentials_and_the_baseline_a_week_back) {
    harness h;
    auto jobs = poll_jobs(h.http, one_query(query_kind::spike), h.cx);
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs[0].name, "total");
    h.http.push_reply(
        200,
        R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1772724600,"100"],[1772726400,"900"]]}]}})"
    );
    h.http.push_reply(
        200,
        R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1772119800,"100"],[1772121600,"100"]]}]}})"
    );
    auto got = h.run(jobs[0]);
    ASSERT_TRUE(got) << got.error().error.detail;
    ASSERT_EQ(h.http.calls.size(), 2u);
    EXPECT_EQ(h.http.calls[0].method, "POST");
    EXPECT_EQ(h.http.calls[0].url, "https://prometheus.test:9090/api/v1/query_range");
    EXPECT_EQ(h.http.calls[0].headers["Authorization"], "Basic cnVuYm9va2Q6cHc=");
    EXPECT_NE(
        h.http.calls[0].body.find("&start=1772724600.000&end=1772726400.000&step=60.000"), std::string::npos
    );
    EXPECT_NE(h.http.calls[1].body.find("&start=1772119800.000&end=1772121600.000"), std::string::npos)
        << "the baseline: the same window a week earlier";
    ASSERT_EQ(got->signals.size(), 1u);
    EXPECT_EQ(got->signals[0].at, t0) << "the data point's time";
    EXPECT_EQ(got->signals[0].value, 9);

    h.clock.advance(1min);
    h.http.push_reply(
        200,
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1772726460,"120"]}]}})"
    );
    h.http.push_reply(
        200,
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1772121660,"100"]}]}})"
    );
    got = h.run(jobs[0]);
    ASSERT_TRUE(got) << got.error().error.detail;
    EXPECT_EQ(h.http.calls[2].url, "https://prometheus.test:9090/api/v1/query");
    EXPECT_NE(h.http.calls[2].body.find("&time=1772726460.000"), std::string::npos) << h.http.calls[2].body;
    EXPECT_TRUE(got->signals.empty()) << "1.2x is no spike";
}

TEST(promql_jobs, every_failure_names_the_query_and_what_went_wrong) {
    struct failure_case {
        std::variant<net::http_reply, net::transport_failure> answer;
        std::string detail;
        std::string outcome;
    };
    const std::vector<failure_case> cases{
        {net::http_reply{
             422,
             {},
             R"({"status":"error","errorType":"execution","error":"many-to-many matching not allowed"})"},
         "query by_canvas: 422 execution: many-to-many matching not allowed",
         "query_error"},
        {net::http_reply{200, {}, R"({"status":"success","data":{"resultType":"vector","result":[]}})"},
         "query by_canvas: empty result (no series: is the metric scraped, is the label `canvas` right?)",
         "empty"},
        {net::http_reply{200, {{"content-type", "text/html"}}, "<!doctype html><title>Sign in</title>"},
         "query by_canvas: HTTP 200: not a Prometheus API answer: \"<!doctype html><title>Sign in</title>\"",
         "bad_response"},
        {net::transport_failure{
             make_failure(errc::timed_out, "https://prometheus.test:9090: read: timed out", true), true},
         "query by_canvas: timed out after 10s",
         "timed_out"},
        {net::transport_failure{
             make_failure(
                 errc::upstream_unavailable, "https://prometheus.test:9090: connect: Connection refused", true
             ),
             false},
         "query by_canvas: prometheus unreachable: https://prometheus.test:9090: connect: Connection refused",
         "unreachable"},
        {net::transport_failure{
             make_failure(
                 errc::upstream_unavailable, "https://prometheus.test:9090: read: body limit exceeded", true
             ),
             true},
         "query by_canvas: answer larger than 16 MiB",
         "too_large"},
    };
    for (const auto& c : cases) {
        harness h;
        auto jobs = poll_jobs(h.http, one_query(query_kind::top_talker), h.cx);
        h.http.push(c.answer);
        const auto got = h.run(jobs[0]);
        ASSERT_FALSE(got) << c.detail;
        EXPECT_EQ(got.error().error.detail, c.detail);
        bool counted = false;
        for (const auto& f : h.registry.Collect()) {
            if (f.name != "runbookd_promql_requests_total") {
                continue;
            }
            for (const auto& m : f.metric) {
                const bool mine = std::any_of(m.label.begin(), m.label.end(), [&](const auto& l) {
                    return l.name == "outcome" && l.value == c.outcome;
                });
                counted = counted || (mine && m.counter.value == 1);
            }
        }
        EXPECT_TRUE(counted) << "runbookd_promql_requests_total{outcome=\"" << c.outcome << "\"} is 1";
    }
}

TEST(promql_jobs, a_503_with_retry_after_lengthens_the_wait) {
    harness h;
    auto jobs = poll_jobs(h.http, one_query(query_kind::top_talker), h.cx);
    h.http.push_reply(
        503,
        R"({"status":"error","errorType":"unavailable","error":"too many queries"})",
        {{"retry-after", "30"}}
    );
    const auto got = h.run(jobs[0]);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().retry_after, 30s);
}

// --- make -----------------------------------------------------------------------------------

struct made {
    asio::io_context ioc;
    prometheus::Registry registry;
    std::vector<std::string> secrets;
    std::vector<source_status> statuses;
    context cx{
        ioc.get_executor(),
        log::discard(),
        registry,
        sinks{[](signal) {}, [this](source_status s) { statuses.push_back(std::move(s)); }},
        [this](std::string s) { secrets.push_back(std::move(s)); }};
};

TEST(promql_make, off_without_a_url_and_every_secret_redacted) {
    made m;
    config c;
    EXPECT_EQ(make(c, m.cx), nullptr);
    c = one_query(query_kind::top_talker);
    const auto src = make(c, m.cx);
    ASSERT_NE(src, nullptr);
    EXPECT_EQ(src->describe(), "https://prometheus.test:9090: 1 query every 1m, basic auth");
    EXPECT_NE(std::find(m.secrets.begin(), m.secrets.end(), "pw"), m.secrets.end());
    EXPECT_NE(std::find(m.secrets.begin(), m.secrets.end(), "cnVuYm9va2Q6cHc="), m.secrets.end())
        << "the encoded credentials too";
}

TEST(promql_make, prometheus_down_fails_the_source_and_stop_leaves_the_loop_idle) {
    made m;
    auto c = one_query(query_kind::top_talker);
    c.url = "http://127.0.0.1:1";  // nothing listens on port 1
    const auto src = make(c, m.cx);
    ASSERT_NE(src, nullptr);
    src->start();
    ASSERT_TRUE(fakes::run_until(
        m.ioc,
        [&] {
            return !m.statuses.empty() &&
                   m.statuses.back().error.starts_with("query by_canvas: prometheus unreachable");
        },
        5s
    ));
    EXPECT_EQ(m.statuses.back().state, source_state::failing);
    src->stop();
    m.ioc.restart();
    m.ioc.run_for(5s);
    EXPECT_TRUE(m.ioc.stopped()) << "no wait or request outlives stop()";
}

}  // namespace
}  // namespace runbookd::sources::promql
