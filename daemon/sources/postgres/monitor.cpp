#include "sources/postgres/monitor.hpp"

#include <pqxx/pqxx>

namespace runbookd::sources::postgres {
namespace {

// Sessions worth a look: not idle and older than the youngest threshold, waiting on a
// lock, blocking one that waits, or holding an AccessExclusiveLock. pg_blocking_pids and
// pg_locks take the lock manager's partition locks for a moment, so they run only while
// some session waits on a lock (a one-time filter: otherwise neither is evaluated).
// `%WAITED%` is how long each session has waited: pg_locks.waitstart from Postgres 14,
// else the time since its state changed (the statement's start).
constexpr std::string_view sessions_sql = R"sql(
WITH waiting AS (
  SELECT pid, pg_blocking_pids(pid) AS blockers
  FROM pg_stat_activity
  WHERE wait_event_type = 'Lock' AND backend_type = 'client backend'
), locks AS (
  SELECT pid, mode, granted, waitstart FROM (SELECT * FROM pg_locks WHERE locktype = 'relation') l
  WHERE EXISTS (SELECT 1 FROM waiting)
)
SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(a.wait_event_type, ''),
       extract(epoch FROM now() - a.query_start)::float8,
       extract(epoch FROM now() - a.xact_start)::float8,
       extract(epoch FROM now() - a.state_change)::float8,
       %WAITED%,
       a.pid IN (SELECT pid FROM locks WHERE mode = 'AccessExclusiveLock' AND granted),
       (SELECT w.blockers::text FROM waiting w WHERE w.pid = a.pid),
       left(coalesce(a.query, ''), $1)
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
  AND ((a.state <> 'idle' AND a.state_change < now() - make_interval(secs => $2))
       OR a.pid IN (SELECT pid FROM waiting)
       OR a.pid IN (SELECT unnest(blockers) FROM waiting)
       OR a.pid IN (SELECT pid FROM locks WHERE mode = 'AccessExclusiveLock' AND granted))
)sql";

constexpr std::string_view waited_since_waitstart = R"sql(coalesce(
         (SELECT extract(epoch FROM now() - min(l.waitstart)) FROM locks l WHERE l.pid = a.pid AND NOT l.granted),
         extract(epoch FROM now() - a.state_change))::float8)sql";
constexpr std::string_view waited_since_state_change = "extract(epoch FROM now() - a.state_change)::float8";

std::string sessions_sql_for(int server_version) {
    std::string sql{sessions_sql};
    sql.replace(
        sql.find("%WAITED%"),
        std::string_view{"%WAITED%"}.size(),
        server_version >= 140000 ? waited_since_waitstart : waited_since_state_change
    );
    return sql;
}

constexpr const char* connections_sql = R"sql(
SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int
FROM pg_stat_activity
)sql";

constexpr const char* index_builds_sql = R"sql(
SELECT pid, command, phase, coalesce(blocks_total, 0), coalesce(blocks_done, 0)
FROM pg_stat_progress_create_index
)sql";

std::optional<double> number_or_null(const pqxx::field& f) {
    return f.is_null() ? std::nullopt : std::optional{f.as<double>()};
}

/// libpq's message, on one line.
std::string one_line(std::string text) {
    for (char& c : text) {
        if (c == '\n' || c == '\t') {
            c = ' ';
        }
    }
    while (!text.empty() && text.back() == ' ') {
        text.pop_back();
    }
    return text;
}

}  // namespace

struct monitor::connection : pqxx::connection {
    using pqxx::connection::connection;
};

monitor::monitor(std::string dsn, std::chrono::milliseconds min_age, std::size_t query_bytes)
    : dsn_(std::move(dsn)), min_age_(min_age), query_bytes_(query_bytes) {}

monitor::~monitor() = default;

void monitor::cancel() noexcept {
    const std::lock_guard lock{mutex_};
    if (conn_) {
        try {
            conn_->cancel_query();
        } catch (...) {
            // Best effort: the statement timeout bounds the query anyway.
        }
    }
}

monitor_outcome monitor::poll() {
    try {
        if (!conn_ || !conn_->is_open()) {
            auto fresh = std::make_unique<connection>(dsn_);
            // Prepared once a connection: planning the sessions query costs about as much
            // as running it.
            fresh->prepare("runbookd_sessions", sessions_sql_for(fresh->server_version()));
            fresh->prepare("runbookd_connections", connections_sql);
            fresh->prepare("runbookd_index_builds", index_builds_sql);
            const std::lock_guard lock{mutex_};
            conn_ = std::move(fresh);
        }
    } catch (const std::exception& e) {
        // Refused, timed out, authentication failed, TLS not verified: libpq's words.
        return monitor_failure{make_failure(errc::upstream_unavailable, "cannot connect: " + one_line(e.what())), true};
    }
    try {
        snapshot snap;
        pqxx::read_transaction tx{*conn_};
        const double min_age_seconds = static_cast<double>(min_age_.count()) / 1000.0;
        for (const auto& row :
             tx.exec_prepared("runbookd_sessions", static_cast<long long>(query_bytes_), min_age_seconds)) {
            session s;
            s.pid = row[0].as<long long>();
            s.user = row[1].c_str();
            s.application = row[2].c_str();
            s.state = row[3].c_str();
            s.wait_event_type = row[4].c_str();
            s.query_age = number_or_null(row[5]);
            s.xact_age = number_or_null(row[6]);
            s.state_age = number_or_null(row[7]);
            s.waited = number_or_null(row[8]);
            s.exclusive = row[9].as<bool>(false);
            if (!row[10].is_null()) {
                s.blocked_by = parse_pid_array(row[10].c_str());
            }
            s.query = row[11].c_str();
            snap.sessions.push_back(std::move(s));
        }
        const auto counts = tx.exec_prepared1("runbookd_connections");
        snap.client_connections = counts[0].as<long long>();
        snap.max_connections = counts[1].as<long long>();
        snap.reserved_connections = counts[2].as<long long>();
        for (const auto& row : tx.exec_prepared("runbookd_index_builds")) {
            snap.index_builds.push_back(index_build{
                row[0].as<long long>(),
                row[1].c_str(),
                row[2].c_str(),
                row[3].as<long long>(),
                row[4].as<long long>()});
        }
        return snap;
    } catch (const pqxx::broken_connection& e) {
        const std::lock_guard lock{mutex_};
        conn_.reset();
        return monitor_failure{make_failure(errc::upstream_unavailable, "connection lost: " + one_line(e.what())), true};
    } catch (const pqxx::sql_error& e) {
        // A statement timeout, a missing privilege: the server answered, the poll failed.
        return monitor_failure{make_failure(errc::upstream_rejected, "query failed: " + one_line(e.what())), false};
    } catch (const std::exception& e) {
        const std::lock_guard lock{mutex_};
        conn_.reset();
        return monitor_failure{make_failure(errc::upstream_unavailable, "poll failed: " + one_line(e.what())), false};
    }
}

}  // namespace runbookd::sources::postgres
