// The promql source in process: CPU for one poll of a typical set of queries (reading every
// answer and its baseline, and evaluating them into signals), against parsing the same
// answers with nlohmann::json into the same series (what reading them the obvious way
// costs). The answers are shaped as Prometheus 2.42 writes them (api-facts §7.2): top talkers
// by canvas (300), by IP (5,000) and by handler (120) as vectors, the total and the count of
// client IPs, p99 latency by handler, and the first poll's 30-step range of the IP query.
#include "sources/promql/parse.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace runbookd;
using namespace runbookd::sources::promql;

constexpr double t0 = 1772726400;
constexpr double week = 7 * 86400;

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

/// A vector answer of `n` series keyed by `label`, with the job/instance labels a real
/// scrape adds.
std::string vector_answer(
    const std::string& label, const std::string& prefix, int n, double at, double scale
) {
    std::string out = R"({"status":"success","data":{"resultType":"vector","result":[)";
    for (int i = 0; i < n; ++i) {
        out += (i ? "," : "");
        out += R"({"metric":{")" + label + R"(":")" + prefix + std::to_string(i) +
               R"(","job":"bwdserver","namespace":"darklang"},"value":[)" + num(at) + R"(,")" +
               num(scale * (i == 7 ? 400 : 1 + i % 13) / 10.0) + R"("]})";
    }
    return out + "]}}";
}

std::string matrix_answer(const std::string& label, const std::string& prefix, int n, int steps, double end) {
    std::string out = R"({"status":"success","data":{"resultType":"matrix","result":[)";
    for (int i = 0; i < n; ++i) {
        out += (i ? "," : "");
        out += R"({"metric":{")" + label + R"(":")" + prefix + std::to_string(i) +
               R"(","job":"bwdserver","namespace":"darklang"},"values":[)";
        for (int s = 0; s < steps; ++s) {
            out += (s ? "," : "");
            out += "[" + num(end - 60.0 * (steps - 1 - s)) + R"(,")" + num((1 + i % 13) / 10.0 + s) + R"("])";
        }
        out += "]}";
    }
    return out + "]}}";
}

struct answer_set {
    query q;
    std::string current;
    std::string baseline;  ///< empty for a top talker
};

query make_query(std::string name, query_kind kind, std::string by) {
    query q;
    q.name = std::move(name);
    q.kind = kind;
    q.by = std::move(by);
    q.key_type = q.by;
    q.target = q.name;
    q.measure = kind == query_kind::slow_handler ? "latency" : "requests";
    return q;
}

/// One poll of the configured queries.
const std::vector<answer_set>& poll_answers() {
    static const std::vector<answer_set> all = [] {
        std::vector<answer_set> a;
        a.push_back(
            {make_query("by_canvas", query_kind::top_talker, "canvas"),
             vector_answer("canvas", "canvas-", 300, t0, 10),
             ""}
        );
        a.push_back(
            {make_query("by_ip", query_kind::top_talker, "ip"), vector_answer("ip", "10.0.", 5000, t0, 1), ""}
        );
        a.push_back(
            {make_query("by_handler", query_kind::top_talker, "handler"),
             vector_answer("handler", "GET /h", 120, t0, 20),
             ""}
        );
        a.push_back(
            {make_query("total", query_kind::spike, ""),
             vector_answer("x", "", 1, t0, 9000),
             vector_answer("x", "", 1, t0 - week, 1400)}
        );
        a.push_back(
            {make_query("clients", query_kind::spike, ""),
             vector_answer("x", "", 1, t0, 50000),
             vector_answer("x", "", 1, t0 - week, 4000)}
        );
        a.push_back(
            {make_query("p99", query_kind::slow_handler, "handler"),
             vector_answer("handler", "GET /h", 120, t0, 3),
             vector_answer("handler", "GET /h", 120, t0 - week, 1)}
        );
        return a;
    }();
    return all;
}

/// The same series read through nlohmann::json: parse, check the status, copy the key label
/// and the samples.
query_data parse_nlohmann(const std::string& body, const std::string& key) {
    query_data out;
    const auto j = nlohmann::json::parse(body);
    if (j.at("status") != "success") {
        return out;
    }
    const auto& data = j.at("data");
    out.result_type = data.at("resultType").get<std::string>();
    const bool matrix = out.result_type == "matrix";
    for (const auto& item : data.at("result")) {
        series s;
        const auto& m = item.at("metric");
        if (const auto k = m.find(key); k != m.end()) {
            s.key = k->get<std::string>();
        }
        const auto add = [&](const nlohmann::json& p) {
            s.points.push_back(point{
                wall_time{millis{static_cast<long long>(p.at(0).get<double>() * 1000)}},
                std::stod(p.at(1).get<std::string>())});
        };
        if (matrix) {
            for (const auto& p : item.at("values")) {
                add(p);
            }
        } else {
            add(item.at("value"));
        }
        out.result.push_back(std::move(s));
    }
    return out;
}

void BM_poll(benchmark::State& state) {
    const auto& answers = poll_answers();
    std::size_t bytes = 0;
    for (const auto& a : answers) {
        bytes += a.current.size() + a.baseline.size();
    }
    for (auto _ : state) {
        std::size_t signals = 0;
        for (const auto& a : answers) {
            auto cur = parse_answer(a.current, 200, a.q.by, 100000);
            std::optional<query_data> base;
            if (!a.baseline.empty()) {
                base = *parse_answer(a.baseline, 200, a.q.by, 100000);
            }
            signals += evaluate(a.q, *cur, base ? &*base : nullptr, {}).size();
        }
        benchmark::DoNotOptimize(signals);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_poll)->Unit(benchmark::kMicrosecond);

void BM_poll_parse_only(benchmark::State& state) {
    const auto& answers = poll_answers();
    for (auto _ : state) {
        std::size_t series = 0;
        for (const auto& a : answers) {
            series += parse_answer(a.current, 200, a.q.by, 100000)->result.size();
            if (!a.baseline.empty()) {
                series += parse_answer(a.baseline, 200, a.q.by, 100000)->result.size();
            }
        }
        benchmark::DoNotOptimize(series);
    }
}
BENCHMARK(BM_poll_parse_only)->Unit(benchmark::kMicrosecond);

void BM_poll_parse_nlohmann(benchmark::State& state) {
    const auto& answers = poll_answers();
    for (auto _ : state) {
        std::size_t series = 0;
        for (const auto& a : answers) {
            series += parse_nlohmann(a.current, a.q.by).result.size();
            if (!a.baseline.empty()) {
                series += parse_nlohmann(a.baseline, a.q.by).result.size();
            }
        }
        benchmark::DoNotOptimize(series);
    }
}
BENCHMARK(BM_poll_parse_nlohmann)->Unit(benchmark::kMicrosecond);

/// The first poll's range: the IP query over 30 steps (5,000 series × 30 points).
void BM_first_poll_range(benchmark::State& state) {
    static const std::string body = matrix_answer("ip", "10.0.", 5000, 30, t0);
    const auto q = make_query("by_ip", query_kind::top_talker, "ip");
    for (auto _ : state) {
        auto d = parse_answer(body, 200, "ip", 100000);
        benchmark::DoNotOptimize(evaluate(q, *d, nullptr, {}).size());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_first_poll_range)->Unit(benchmark::kMillisecond);

void BM_first_poll_range_nlohmann(benchmark::State& state) {
    static const std::string body = matrix_answer("ip", "10.0.", 5000, 30, t0);
    for (auto _ : state) {
        benchmark::DoNotOptimize(parse_nlohmann(body, "ip").result.size());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_first_poll_range_nlohmann)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
