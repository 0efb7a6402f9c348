#pragma once
// The monitor's connection string: read with libpq's own parser (keyword/value or a
// postgresql:// URI), checked for TLS, and completed with the monitor's session settings.

#include "core/error.hpp"

#include <chrono>
#include <map>
#include <string>
#include <string_view>

namespace runbookd::sources::postgres {

/// Keyword -> value, as libpq reads the string, with host, hostaddr and sslmode from
/// PGHOST, PGHOSTADDR and PGSSLMODE when the string has none (as libpq will use them). The
/// error never repeats any of the string (it may hold a password).
result<std::map<std::string, std::string>> parse_dsn(std::string_view dsn);

/// TLS verification is always on: a TCP host other than loopback (the Cloud SQL Auth Proxy
/// listens there) needs `sslmode=verify-full`, or no sslmode at all (the monitor then adds
/// verify-full). An error says what to change.
result<void> check_dsn(const std::map<std::string, std::string>& dsn);

/// The string the monitor connects with: `dsn` plus application_name=runbookd, a
/// read-only session with `statement_timeout` and a short lock_timeout, `connect_timeout`
/// (whole seconds, at least 2), TCP keepalives and tcp_user_timeout (unless the string
/// sets them), and sslmode=verify-full for a remote host without one.
std::string monitor_dsn(
    std::map<std::string, std::string> dsn,
    std::chrono::milliseconds statement_timeout,
    std::chrono::milliseconds connect_timeout
);

/// "dbname on host:port" for logs and labels, without the user or password.
std::string describe(const std::map<std::string, std::string>& dsn);

}  // namespace runbookd::sources::postgres
