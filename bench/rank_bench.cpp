// Ranking against the full runbook pack with 100k signals in the log, and the memory the
// log takes per signal. Reference in the same run: one pass over the same 100k signals
// that reads each one's kind and one label (the least any evaluation must touch).
//   bench/ranking

#include "core/rank.hpp"
#include "rules/rules.hpp"

#include <benchmark/benchmark.h>

#include <malloc.h>
#include <random>
#include <stdexcept>

namespace {

using namespace runbookd;
using namespace std::chrono_literals;

const wall_time start = *parse_rfc3339("2026-03-05T16:00:00Z");

/// 100k signals over the 6 hours before the alert, spread over every kind in the catalogue,
/// 50 deployments in 5 namespaces, labels filled the way sources fill them.
std::vector<signal> make_signals(std::size_t n) {
    std::mt19937_64 rng{42};
    const auto kinds = signal_catalogue();
    std::uniform_int_distribution<std::size_t> kind_of(0, kinds.size() - 1);
    std::uniform_int_distribution<long long> offset(0, 6 * 3600 * 1000LL - 1);
    std::uniform_real_distribution<double> value(0, 1);
    std::vector<signal> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto& k = kinds[kind_of(rng)];
        signal s;
        s.set_kind(k.name);
        s.at = start - 6h + millis{offset(rng)};
        s.source = std::string{k.source};
        const auto d = i % 50;
        for (const auto l : k.labels) {
            std::string v = "value-" + std::to_string(i % 97);
            if (l == "namespace") {
                v = "ns-" + std::to_string(d % 5);
            } else if (l == "deployment") {
                v = "deploy-" + std::to_string(d);
            } else if (l == "image_changed" || l == "is_ddl") {
                v = i % 3 == 0 ? "true" : "false";
            } else if (l == "reason") {
                v = i % 4 == 0 ? "CrashLoopBackOff" : "Error";
            } else if (l == "status") {
                v = i % 2 == 0 ? "success" : "failure";
            }
            s.set(l, std::move(v));
        }
        s.subject =
            s.find("deployment") != nullptr ? *s.find("deployment") : "subject-" + std::to_string(i % 200);
        if (!k.value.empty()) {
            s.value = k.value == "ratio" ? value(rng) : value(rng) * 1000;
        }
        out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end(), [](const signal& a, const signal& b) { return a.at < b.at; });
    return out;
}

std::shared_ptr<const rule_set> pack() {
    auto r = rules::load({});
    if (!r.ok()) {
        throw std::runtime_error("the embedded pack does not load");
    }
    return r.value;
}

source_map healthy() {
    source_map m;
    for (const auto& k : signal_catalogue()) {
        m.try_emplace(std::string{k.source}, source_status{});
    }
    return m;
}

rank_input input() {
    rank_input in;
    in.start = start;
    in.now = start + 5min;
    in.service = service_scope{"PAPI", "API", {"ns-1/deploy-1", "ns-2/deploy-*"}};
    return in;
}

void reference_scan(benchmark::State& state) {
    const auto signals = make_signals(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        std::size_t hits = 0;
        for (const auto& s : signals) {
            const std::string* d = s.label_at(1);
            hits += s.kind.size() == 11 && d != nullptr && d->size() == 8 ? 1 : 0;
        }
        benchmark::DoNotOptimize(hits);
    }
}
BENCHMARK(reference_scan)->Arg(100'000)->Unit(benchmark::kMicrosecond);

void rank_full_pack(benchmark::State& state) {
    const auto rules = pack();
    signal_log log{signal_log_settings{6h, 1'000'000}};
    for (auto& s : make_signals(static_cast<std::size_t>(state.range(0)))) {
        log.add(std::move(s), start);
    }
    const auto sources = healthy();
    const auto in = input();
    std::size_t suspects = 0;
    for (auto _ : state) {
        const auto r = rank(*rules, log, sources, in);
        suspects = r.suspects.size();
        benchmark::DoNotOptimize(r);
    }
    state.counters["suspects"] = static_cast<double>(suspects);
    state.counters["signals"] = static_cast<double>(log.size());
}
BENCHMARK(rank_full_pack)->Arg(100'000)->Unit(benchmark::kMicrosecond);

/// Heap bytes the log holds per signal: mallinfo2 before the signals are made and after
/// they are in the log and the vector that carried them is gone.
void signal_log_memory(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    double owned = 0;
    for (auto _ : state) {
        const auto before = mallinfo2().uordblks;
        signal_log log{signal_log_settings{6h, 1'000'000}};
        {
            auto signals = make_signals(n);
            for (auto& s : signals) {
                log.add(std::move(s), start);
            }
        }
        owned = static_cast<double>(mallinfo2().uordblks - before);
        benchmark::DoNotOptimize(log.size());
    }
    state.counters["bytes_per_signal"] = owned / static_cast<double>(n);
    state.counters["MiB_per_100k"] = owned / static_cast<double>(n) * 100'000.0 / (1024.0 * 1024.0);
}
BENCHMARK(signal_log_memory)->Arg(100'000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
