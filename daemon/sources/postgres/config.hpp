#pragma once
// `postgres:` (docs/configuration.md#postgres): the read-only monitoring connection.

#include "core/secret.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::postgres {

/// Off while no dsn is given.
struct config {
    secret<std::string> dsn;  ///< libpq keyword/value string or postgresql:// URI (may hold a password)
    /// Label of db.connections / db.unreachable; default (a check of the config root):
    /// cloudsql.instance, else `where`.
    std::string instance;
    std::string where;  ///< "dbname on host:port", read from the dsn
    std::chrono::milliseconds interval = std::chrono::seconds{15};
    std::chrono::milliseconds connect_timeout = std::chrono::seconds{5};
    std::chrono::milliseconds statement_timeout = std::chrono::seconds{5};
    std::chrono::milliseconds long_query_threshold = std::chrono::minutes{1};
    std::chrono::milliseconds migration_threshold = std::chrono::seconds{10};
    std::chrono::milliseconds idle_in_transaction_threshold = std::chrono::minutes{1};
    std::chrono::milliseconds lock_wait_threshold = std::chrono::seconds{5};
    std::size_t query_max = 300;
    bool redact_literals = true;
    std::vector<std::string> redact_patterns;  ///< ECMAScript regular expressions
    std::vector<std::string> exclude_applications{"pg_dump", "pg_dumpall", "pg_basebackup", "runbookd"};
    std::vector<std::string> exclude_users{
        "cloudsqladmin", "cloudsqlagent", "cloudsqlreplica", "cloudsqlimportexport"};

    bool configured() const noexcept { return !dsn.empty(); }
    bool enabled() const noexcept { return configured(); }
    friend bool operator==(const config&, const config&) = default;
};

void read(yaml::section& s, config& out);

}  // namespace runbookd::sources::postgres
