#pragma once
// The Postgres monitor's connection (libpqxx): blocking, so it runs on a worker thread,
// never on the loop. One read-only transaction a poll reads pg_stat_activity, connection
// counts and index-build progress, and while some session waits on a lock, pg_locks
// (AccessExclusiveLock holders, when each wait began) and pg_blocking_pids (api-facts §6).

#include "core/error.hpp"
#include "sources/postgres/activity.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace runbookd::sources::postgres {

/// A failed poll. `unreachable`: the database could not be reached or refused the monitor
/// (connection, authentication); otherwise a query failed (a statement timeout...).
struct monitor_failure {
    failure error;
    bool unreachable = false;
};
using monitor_outcome = boost::system::result<snapshot, monitor_failure>;

class monitor {
public:
    /// `dsn` is monitor_dsn()'s string (a secret: never logged). Sessions younger than
    /// `min_age` are not read; query text is cut by the server at `query_bytes`.
    monitor(std::string dsn, std::chrono::milliseconds min_age, std::size_t query_bytes);
    ~monitor();
    monitor(const monitor&) = delete;
    monitor& operator=(const monitor&) = delete;

    /// Connects when not connected, then reads one snapshot. One thread at a time.
    monitor_outcome poll();

private:
    std::string dsn_;
    std::chrono::milliseconds min_age_;
    std::size_t query_bytes_;
    struct connection;              ///< pqxx's, kept out of this header
    std::optional<bool> sees_all_;  ///< the role may read every session's activity (per connection)
    std::string role_;
    std::unique_ptr<connection> conn_;
};

}  // namespace runbookd::sources::postgres
