// One Postgres poll against a real server with 500 client sessions (bench/postgres.py
// starts the server and passes --dsn): the monitor's wall time and what it costs the
// database (the CPU of its backend, and server execution time from pg_stat_statements),
// against the obvious poll, `SELECT * FROM pg_stat_activity` read whole. Also one Cloud
// Monitoring poll in process (three metrics, 15 points each, through the real job code
// with a scripted client) against nlohmann::json parsing the same three bodies.
#include "fakes/scripted_http.hpp"
#include "sources/cloudsql/source.hpp"
#include "sources/postgres/dsn.hpp"
#include "sources/postgres/monitor.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <libpq-fe.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace runbookd;
namespace pg = runbookd::sources::postgres;
namespace cloudsql = runbookd::sources::cloudsql;
namespace google = runbookd::sources::google;
namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string g_dsn;        // the workload's role (owns the tables)
std::string g_admin_dsn;  // a superuser: pg_stat_statements, backend pids
std::string g_monitor_dsn;
int g_sessions = 500;
int g_chains = 10;  // lock chains: a holder, an ALTER TABLE waiting, an UPDATE queued behind

PGconn* connect(const std::string& dsn) {
    PGconn* c = PQconnectdb(dsn.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
        throw std::runtime_error(std::string{"connect: "} + PQerrorMessage(c));
    }
    return c;
}

void exec(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const auto status = PQresultStatus(r);
    const std::string err = PQresultErrorMessage(r);
    PQclear(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw std::runtime_error(sql + ": " + err);
    }
}

std::string scalar(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return out;
}

/// The workload: mostly idle sessions, as a pooled application holds them, plus long
/// queries, idle transactions, and lock chains (a holder, an ALTER TABLE waiting, an
/// UPDATE queued behind it).
struct workload {
    std::vector<PGconn*> conns;

    workload(int n, int chains) {
        PGconn* setup = connect(g_dsn);
        for (int t = 0; t < 10; ++t) {
            exec(
                setup,
                "CREATE TABLE IF NOT EXISTS bench_t" + std::to_string(t) + " (id int primary key, v text)"
            );
        }
        PQfinish(setup);
        const int active = n / 10, idle_tx = n * 6 / 100;
        for (int i = 0; i < n; ++i) {
            conns.push_back(connect(g_dsn + " application_name=bench-" + std::to_string(i)));
        }
        int at = 0;
        for (int i = 0; i < active; ++i, ++at) {
            PQsendQuery(conns[at], "SELECT pg_sleep(3600) /* a long report */");
        }
        for (int i = 0; i < idle_tx; ++i, ++at) {
            exec(conns[at], "BEGIN; SELECT 1");
        }
        for (int t = 0; t < chains; ++t, at += 3) {
            const std::string table = "bench_t" + std::to_string(t);
            exec(conns[at], "BEGIN; LOCK TABLE " + table + " IN ROW EXCLUSIVE MODE");
            PQsendQuery(
                conns[at + 1], ("ALTER TABLE " + table + " ADD COLUMN c" + std::to_string(t) + " int").c_str()
            );
            std::this_thread::sleep_for(20ms);  // the ALTER queues first
            PQsendQuery(conns[at + 2], ("UPDATE " + table + " SET v = 'x' WHERE id = 1").c_str());
        }
        std::this_thread::sleep_for(6s);  // every session older than the thresholds
    }
    ~workload() {
        for (auto* c : conns) {
            PQfinish(c);  // closes the socket; the server ends the backend
        }
    }
};

workload* g_workload = nullptr;
std::string g_reference_dsn;  // the monitor's role, as given (no session settings)

/// utime + stime of a process, in seconds (clock ticks).
double cpu_seconds(long pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    std::vector<std::string> f;
    while (rest >> field) {
        f.push_back(field);
    }
    return (std::stod(f.at(11)) + std::stod(f.at(12))) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// Server execution time (ms) of the statements of `application`, from pg_stat_statements.
double exec_ms(PGconn* admin, long backend) {
    return std::stod(scalar(
        admin,
        "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = "
        "s.userid "
        "WHERE r.rolname = (SELECT usename FROM pg_stat_activity WHERE pid = " +
            std::to_string(backend) + ")"
    ));
}

/// Runs `poll` per iteration and reports the database's side: the backend's CPU and the
/// server's execution time per poll, and the rows read.
template <class Poll>
void measure(benchmark::State& state, PGconn* admin, long backend, Poll poll) {
    exec(admin, "SELECT pg_stat_statements_reset()");
    const double cpu0 = cpu_seconds(backend);
    std::size_t rows = 0;
    for (auto _ : state) {
        rows = poll();
        benchmark::DoNotOptimize(rows);
    }
    const double n = static_cast<double>(state.iterations());
    state.counters["db_cpu_us"] = (cpu_seconds(backend) - cpu0) * 1e6 / n;
    state.counters["db_exec_us"] = exec_ms(admin, backend) * 1e3 / n;
    state.counters["rows"] = static_cast<double>(rows);
}

void BM_postgres_poll(benchmark::State& state) {
    pg::activity_settings settings;
    settings.instance = "bench";
    pg::monitor m{g_monitor_dsn, pg::youngest_age(settings), 1024};
    if (!m.poll()) {
        state.SkipWithError("the monitor cannot poll");
        return;
    }
    PGconn* admin = connect(g_admin_dsn);
    const long backend =
        std::stol(scalar(admin, "SELECT pid FROM pg_stat_activity WHERE application_name = 'runbookd'"));
    measure(state, admin, backend, [&] {
        auto snap = m.poll();
        const auto signals = pg::activity_signals(*snap, settings, wall_time{});
        benchmark::DoNotOptimize(signals.data());
        return snap->sessions.size();
    });
    state.counters["signals"] =
        static_cast<double>(pg::activity_signals(*m.poll(), settings, wall_time{}).size());
    PQfinish(admin);
}

void BM_naive_poll(benchmark::State& state) {
    PGconn* c = connect(g_reference_dsn);
    PGconn* admin = connect(g_admin_dsn);
    const long backend = PQbackendPID(c);
    measure(state, admin, backend, [&] {
        PGresult* r = PQexec(c, "SELECT * FROM pg_stat_activity");
        std::size_t bytes = 0;
        for (int i = 0; i < PQntuples(r); ++i) {
            for (int j = 0; j < PQnfields(r); ++j) {
                bytes += static_cast<std::size_t>(PQgetlength(r, i, j));
            }
        }
        const auto rows = static_cast<std::size_t>(PQntuples(r));
        PQclear(r);
        benchmark::DoNotOptimize(bytes);
        return rows;
    });
    PQfinish(admin);
    PQfinish(c);
}

// --- Cloud Monitoring ----------------------------------------------------------------------

std::string page(int points) {
    nlohmann::json series = {
        {"metric",
         {{"type", "cloudsql.googleapis.com/database/cpu/utilization"},
          {"labels", nlohmann::json::object()}}},
        {"resource",
         {{"type", "cloudsql_database"},
          {"labels",
           {{"project_id", "acme"}, {"database_id", "acme:dark-west"}, {"region", "us-central1"}}}}},
        {"metricKind", "GAUGE"},
        {"valueType", "DOUBLE"},
        {"points", nlohmann::json::array()},
        {"unit", "10^2.%"}};
    for (int i = 0; i < points; ++i) {
        char end[32];
        std::snprintf(end, sizeof end, "2026-03-05T15:%02d:00Z", 59 - i);
        char start[32];
        std::snprintf(start, sizeof start, "2026-03-05T15:%02d:00Z", 58 - i);
        series["points"].push_back(
            {{"interval", {{"startTime", start}, {"endTime", end}}},
             {"value", {{"doubleValue", 0.4 + i * 0.01}}}}
        );
    }
    return nlohmann::json{{"timeSeries", {series}}, {"unit", "10^2.%"}}.dump();
}

void BM_cloud_monitoring_poll(benchmark::State& state) {
    const std::string body = page(15);
    asio::io_context ioc;
    fakes::scripted_http http;
    google::credentials creds{ioc.get_executor(), http, google::credential_settings{}, log::discard()};
    cloudsql::config c;
    c.instance = "dark-west";
    google::config g;
    g.project = "acme";
    http.push_reply(200, R"({"access_token":"t","expires_in":3599})", {{"metadata-flavor", "Google"}});
    std::size_t signals = 0;
    for (auto _ : state) {
        // A fresh job each time: every point is new, as on the first poll (the most work).
        auto jobs = cloudsql::poll_jobs(http, creds, c, g);
        for (int m = 0; m < 3; ++m) {
            http.push_reply(200, body);
        }
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> { signals = (co_await jobs[0].run())->signals.size(); },
            asio::detached
        );
        ioc.run();
        ioc.restart();
        http.calls.clear();
    }
    state.counters["signals"] = static_cast<double>(signals);
    state.counters["body_bytes"] = static_cast<double>(body.size());
}

void BM_cloud_monitoring_reference(benchmark::State& state) {
    const std::string body = page(15);
    for (auto _ : state) {
        for (int m = 0; m < 3; ++m) {
            auto doc = nlohmann::json::parse(body);
            benchmark::DoNotOptimize(doc);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.starts_with("--dsn=")) {
            g_dsn = a.substr(6);
        } else if (a.starts_with("--admin-dsn=")) {
            g_admin_dsn = a.substr(12);
        } else if (a.starts_with("--monitor-dsn=")) {
            g_reference_dsn = a.substr(14);
        } else if (a.starts_with("--chains=")) {
            g_chains = std::stoi(a.substr(9));
        } else if (a.starts_with("--sessions=")) {
            g_sessions = std::stoi(a.substr(11));
        } else {
            rest.push_back(argv[i]);
        }
    }
    int n = static_cast<int>(rest.size());
    benchmark::Initialize(&n, rest.data());
    benchmark::RegisterBenchmark("cloud_monitoring_poll", BM_cloud_monitoring_poll)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("cloud_monitoring_reference", BM_cloud_monitoring_reference)
        ->Unit(benchmark::kMicrosecond);
    if (!g_dsn.empty()) {
        auto parsed = pg::parse_dsn(g_reference_dsn);
        g_monitor_dsn = pg::monitor_dsn(*parsed, 5s, 5s);
        g_workload = new workload(g_sessions, g_chains);
        benchmark::RegisterBenchmark("postgres_poll", BM_postgres_poll)->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark("postgres_reference_select_star", BM_naive_poll)
            ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    delete g_workload;
    return 0;
}
