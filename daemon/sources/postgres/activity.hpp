#pragma once
// What the Postgres monitor reads (pg_stat_activity, blocking pids, index-build progress,
// connection counts) and the db.* signals it means, pure (api-facts §6). No connection,
// no clock: monitor.cpp fills a snapshot, activity_signals() reads it.

#include "core/signal.hpp"
#include "core/time.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace runbookd::sources::postgres {

/// One client backend that is not idle, or that blocks one that waits (api-facts §6).
struct session {
    long long pid = 0;
    std::string user;
    std::string application;
    std::string state;                  ///< active, idle in transaction, idle in transaction (aborted)...
    std::string wait_event_type;        ///< "Lock" while waiting on a heavyweight lock
    std::optional<double> query_age;    ///< seconds since query_start
    std::optional<double> xact_age;     ///< seconds since xact_start
    std::optional<double> state_age;    ///< seconds since state_change
    std::optional<double> waited;       ///< seconds waiting on its lock (pg_locks.waitstart, PG 14+)
    bool exclusive = false;             ///< holds an AccessExclusiveLock on a relation (DDL)
    std::vector<long long> blocked_by;  ///< pg_blocking_pids(pid), only while waiting on a lock
    std::string query;                  ///< as the server truncated it
};

/// One row of pg_stat_progress_create_index.
struct index_build {
    long long pid = 0;
    std::string command;  ///< CREATE INDEX [CONCURRENTLY], REINDEX [CONCURRENTLY]
    std::string phase;
    long long blocks_total = 0;
    long long blocks_done = 0;
};

/// One poll's reading, all from one transaction's statistics snapshot.
struct snapshot {
    std::vector<session> sessions;
    std::vector<index_build> index_builds;
    long long client_connections = 0;
    long long max_connections = 0;
    long long reserved_connections = 0;  ///< superuser_reserved_connections
};

/// The sessions of one PagerDuty service (`services.<id>.postgres`): application_name and
/// user patterns, "*" alone or at the end.
struct service_sessions {
    std::string id;
    std::vector<std::string> applications;
    std::vector<std::string> users;
};

/// What counts, and how much of a query a post may show.
struct activity_settings {
    std::string instance;  ///< the `instance` label of db.connections and db.unreachable
    std::chrono::milliseconds long_query = std::chrono::minutes{1};
    std::chrono::milliseconds migration = std::chrono::seconds{10};  ///< DDL counts from this age
    std::chrono::milliseconds idle_in_transaction = std::chrono::minutes{1};
    std::chrono::milliseconds lock_wait = std::chrono::seconds{5};
    std::size_t query_max = 300;              ///< characters of query text kept (UTF-8 safe, then "…")
    bool redact_literals = true;              ///< '…' string literals become '?'
    std::vector<std::regex> redact_patterns;  ///< each match becomes [redacted]
    /// Sessions of these applications or users are never evidence ("pg_dump", "cloudsql*").
    std::vector<std::string> exclude_applications;
    std::vector<std::string> exclude_users;
    /// Which services sessions belong to, by id; none: every `services` label is empty.
    std::vector<service_sessions> services;
};

/// Compiles `postgres.redact_patterns` (ECMAScript; validated when the config loads).
/// Throws std::regex_error on one that does not compile.
std::vector<std::regex> compile_patterns(const std::vector<std::string>& patterns);

/// The youngest age any condition cares for: the monitor's query skips younger sessions.
std::chrono::milliseconds youngest_age(const activity_settings& s);

/// What a statement does to others, read from its first words (after comments and blanks).
enum class statement_kind {
    other,     ///< not a schema change (SELECT, UPDATE, ...)
    blocking,  ///< a schema change whose locks stop reads or writes: ALTER, CREATE TABLE, plain
               ///< CREATE INDEX, DROP, REINDEX, TRUNCATE, CLUSTER, VACUUM FULL, REFRESH
               ///< MATERIALIZED VIEW
    online,    ///< maintenance that lets reads and writes go on: CREATE/DROP INDEX
               ///< CONCURRENTLY, REINDEX ... CONCURRENTLY, REFRESH MATERIALIZED VIEW
               ///< CONCURRENTLY, ANALYZE, VACUUM without FULL
};
statement_kind classify_statement(std::string_view query);

/// The query as posts may show it: redacted, on one line, at most `query_max` characters.
std::string shown_query(std::string_view query, const activity_settings& s);

/// Signals of one snapshot taken at `now`, all dated `now` (the world gives no time for a
/// sample of pg_stat_activity; its value is the age the server reported):
/// - db.long_query: a migration running for at least `migration`: a blocking schema change,
///   an AccessExclusiveLock holder, or online maintenance (CREATE INDEX CONCURRENTLY,
///   ANALYZE...) that is the root of a lock chain (is_ddl "true", with index-build progress
///   when there is one); any other active query, online maintenance that blocks no one
///   included, running for at least `long_query` (is_ddl "false"). `ddl` says what the
///   statement is: "blocking", "online" or "". Value: seconds running.
/// - db.idle_in_transaction: idle in a transaction for at least `idle_in_transaction`.
///   Value: seconds idle.
/// - db.lock_wait: waiting on a lock for at least `lock_wait`, blamed on the root of the
///   chain: blockers are followed while they themselves wait, to one that does not (the
///   one whose cancel frees the queue). Value: seconds waiting.
/// - db.connections: client connections, with `max` the slots left to clients.
/// `services` (the three session kinds): the ids of the services the session belongs to,
/// comma-separated; for a chain root, also those of the sessions waiting on it; for a lock
/// wait, the waiter's and the root's. Empty (bears on every service) when the session, or
/// a waiter it stands for, belongs to none: who suffers is then unknown.
/// Excluded applications and users are skipped as waiters and long queries; as blockers
/// they are still named (a backup that holds a lock is what blocks).
std::vector<signal> activity_signals(const snapshot& snap, const activity_settings& s, wall_time now);

/// db.unreachable: the monitor could not connect or lost its connection.
signal unreachable_signal(const activity_settings& s, std::string error, wall_time now);

/// Parses a Postgres int[] in text form ("{12,7}") into pids; malformed parts are skipped.
std::vector<long long> parse_pid_array(std::string_view text);

}  // namespace runbookd::sources::postgres
