// Micro-benchmarks of the intake's pure steps, against HMAC-SHA256 of the same body (the
// least any verified webhook intake must do) as the reference in the same run.
//   bench/micro

#include "core/engine.hpp"
#include "intake/pagerduty/parse.hpp"
#include "intake/pagerduty/signature.hpp"
#include "rules/rules.hpp"

#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

namespace {

using namespace runbookd;

std::string payload() {
    std::ifstream in{"tests/data/pagerduty/incident_triggered.json"};
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str().empty()) {
        throw std::runtime_error("run from the repository root");
    }
    return ss.str();
}

void reference_hmac_sha256(benchmark::State& state) {
    const auto body = payload();
    for (auto _ : state) {
        benchmark::DoNotOptimize(intake::pagerduty::sign("bench-secret", body));
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(reference_hmac_sha256);

void verify_signature(benchmark::State& state) {
    const auto body = payload();
    const auto header = intake::pagerduty::sign("bench-secret", body);
    const std::vector<secret<std::string>> secrets{secret<std::string>{"bench-secret"}};
    for (auto _ : state) {
        benchmark::DoNotOptimize(intake::pagerduty::verify_signature(header, body, secrets));
    }
}
BENCHMARK(verify_signature);

void parse_webhook(benchmark::State& state) {
    const auto body = payload();
    for (auto _ : state) {
        benchmark::DoNotOptimize(intake::pagerduty::parse_webhook(body));
    }
}
BENCHMARK(parse_webhook);

void engine_new_incident(benchmark::State& state) {
    const auto parsed = intake::pagerduty::parse_webhook(payload());
    engine e{engine_settings{}};
    auto ev = *parsed->event;
    const auto now = *parse_rfc3339("2026-11-24T10:00:00Z");
    std::size_t i = 0;
    for (auto _ : state) {
        ev.incident.id = "Q" + std::to_string(i++);
        benchmark::DoNotOptimize(e.on_event(ev, now));
    }
    state.counters["open"] = static_cast<double>(e.open_count());
}
BENCHMARK(engine_new_incident);

/// The same with the runbook pack loaded: each new incident is also ranked (an empty
/// signal log, every source healthy) and its #operations summary rendered.
void engine_new_incident_ranked(benchmark::State& state) {
    const auto parsed = intake::pagerduty::parse_webhook(payload());
    engine_settings s;
    s.rules = rules::load({}).value;
    engine e{s};
    const auto now = *parse_rfc3339("2026-11-24T10:00:00Z");
    for (const auto& k : signal_catalogue()) {
        e.on_source_status(k.source, source_status{}, now);
    }
    auto ev = *parsed->event;
    std::size_t i = 0;
    for (auto _ : state) {
        ev.incident.id = "Q" + std::to_string(i++);
        benchmark::DoNotOptimize(e.on_event(ev, now));
    }
    state.counters["open"] = static_cast<double>(e.open_count());
}
BENCHMARK(engine_new_incident_ranked);

}  // namespace

BENCHMARK_MAIN();
