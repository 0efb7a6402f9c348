#include "sources/postgres/monitor.hpp"

#include <pqxx/pqxx>

namespace runbookd::sources::postgres {
namespace {

// One statement a poll, over one read of pg_stat_activity (building its rows is most of
// the cost, so it is read once, into `act`). Sessions worth a look: not idle and older
// than the youngest threshold, waiting on a lock, blocking one that waits, or holding an
// AccessExclusiveLock. pg_blocking_pids and pg_locks take the lock manager's partition
// locks for a moment, so they run only while some session waits on a lock (a one-time
// filter: otherwise neither is evaluated); of pg_locks only the waits and the granted
// AccessExclusiveLocks are kept. How long a session has waited comes from
// pg_locks.waitstart from Postgres 14 (`%WAITSTART%`), else from its state change. A last
// row, with no pid, carries the connection counts.
constexpr std::string_view sessions_sql = R"sql(
WITH act AS MATERIALIZED (
  SELECT pid, usename, application_name, state, wait_event_type, query_start, xact_start, state_change, query
  FROM pg_stat_activity WHERE backend_type = 'client backend'
), waiting AS (
  SELECT pid, pg_blocking_pids(pid) AS blockers FROM act WHERE wait_event_type = 'Lock'
), locks AS (
  SELECT pid, locktype, mode, granted, %WAITSTART% AS waitstart FROM pg_locks
  WHERE EXISTS (SELECT 1 FROM waiting)
    AND (NOT granted OR (locktype = 'relation' AND mode = 'AccessExclusiveLock'))
), since AS (
  SELECT pid, min(waitstart) AS at FROM locks WHERE NOT granted GROUP BY pid
)
SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(a.wait_event_type, ''),
       extract(epoch FROM now() - a.query_start)::float8,
       extract(epoch FROM now() - a.xact_start)::float8,
       extract(epoch FROM now() - a.state_change)::float8,
       (SELECT extract(epoch FROM now() - w.at)::float8 FROM since w WHERE w.pid = a.pid),
       a.pid IN (SELECT pid FROM locks WHERE granted),
       (SELECT w.blockers::text FROM waiting w WHERE w.pid = a.pid),
       left(coalesce(a.query, ''), $1),
       NULL::bigint, NULL::int, NULL::int
FROM act a
WHERE a.pid <> pg_backend_pid()
  AND ((a.state <> 'idle' AND a.state_change < now() - make_interval(secs => $2))
       OR a.pid IN (SELECT pid FROM waiting)
       OR a.pid IN (SELECT unnest(blockers) FROM waiting)
       OR a.pid IN (SELECT pid FROM locks WHERE granted))
UNION ALL
SELECT NULL, '', '', '', '', NULL, NULL, NULL, NULL, false, NULL, '',
       (SELECT count(*) FROM act),
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int
         + coalesce(current_setting('reserved_connections', true)::int, 0)
)sql";

std::string sessions_sql_for(int server_version) {
    std::string sql{sessions_sql};
    sql.replace(
        sql.find("%WAITSTART%"),
        std::string_view{"%WAITSTART%"}.size(),
        server_version >= 140000 ? "waitstart" : "NULL::timestamptz"
    );
    return sql;
}

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

monitor_outcome monitor::poll() {
    try {
        if (!conn_ || !conn_->is_open()) {
            auto fresh = std::make_unique<connection>(dsn_);
            // Prepared once a connection: planning the sessions query costs about as much
            // as running it.
            fresh->prepare("runbookd_sessions", sessions_sql_for(fresh->server_version()));
            fresh->prepare("runbookd_index_builds", index_builds_sql);
            conn_ = std::move(fresh);
            sees_all_ = std::nullopt;
        }
    } catch (const std::exception& e) {
        // Refused, timed out, authentication failed, TLS not verified: libpq's words.
        return monitor_failure{
            make_failure(errc::upstream_unavailable, "cannot connect: " + one_line(e.what())), true};
    }
    try {
        if (!sees_all_) {
            // Without pg_read_all_stats (pg_monitor grants it) other roles' sessions show no
            // backend_type or query: the monitor would see nothing and call it clear.
            pqxx::read_transaction check{*conn_};
            const auto row = check.exec1(
                "SELECT current_user, pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') "
                "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
            );
            role_ = row[0].c_str();
            sees_all_ = row[1].as<bool>(false);
        }
        if (!*sees_all_) {
            return monitor_failure{
                make_failure(
                    errc::upstream_rejected,
                    "role " + role_ + " cannot see other sessions; GRANT pg_monitor TO " + role_ + ";"
                ),
                false};
        }
        snapshot snap;
        pqxx::read_transaction tx{*conn_};
        const double min_age_seconds = static_cast<double>(min_age_.count()) / 1000.0;
        for (const auto& row :
             tx.exec_prepared("runbookd_sessions", static_cast<long long>(query_bytes_), min_age_seconds)) {
            if (row[0].is_null()) {  // the counts
                snap.client_connections = row[12].as<long long>();
                snap.max_connections = row[13].as<long long>();
                snap.reserved_connections = row[14].as<long long>();
                continue;
            }
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
        conn_.reset();
        return monitor_failure{
            make_failure(errc::upstream_unavailable, "connection lost: " + one_line(e.what())), true};
    } catch (const pqxx::sql_error& e) {
        // A statement timeout, a missing privilege: the server answered, the poll failed.
        return monitor_failure{
            make_failure(errc::upstream_rejected, "query failed: " + one_line(e.what())), false};
    } catch (const std::exception& e) {
        conn_.reset();
        return monitor_failure{
            make_failure(errc::upstream_unavailable, "poll failed: " + one_line(e.what())), false};
    }
}

}  // namespace runbookd::sources::postgres
