#include "sources/postgres/dsn.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdlib>
#include <libpq-fe.h>
#include <memory>
#include <netinet/in.h>

namespace runbookd::sources::postgres {
namespace {

failure bad(std::string what) {
    return make_failure(errc::config_invalid, std::move(what));
}

std::string get(const std::map<std::string, std::string>& m, const std::string& key) {
    const auto it = m.find(key);
    return it == m.end() ? std::string{} : it->second;
}

/// No host (the default socket), a socket directory, `localhost`, or a loopback address
/// (127.0.0.0/8, ::1). A name that merely starts with "127." is not one.
bool loopback(const std::string& host) {
    if (host.empty() || host.starts_with('/') || host.starts_with('@') || host == "localhost") {
        return true;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

/// Each comma-separated entry of host (or hostaddr, which wins when both are given).
std::vector<std::string> hosts(const std::map<std::string, std::string>& dsn) {
    std::string list = get(dsn, "hostaddr");
    if (list.empty()) {
        list = get(dsn, "host");
    }
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        const auto comma = std::min(list.find(',', start), list.size());
        out.push_back(list.substr(start, comma - start));
        start = comma + 1;
    }
    return out;
}

/// A value in keyword/value syntax: quoted, with ' and \ escaped.
std::string quoted(const std::string& v) {
    std::string out = "'";
    for (const char c : v) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    out += '\'';
    return out;
}

}  // namespace

result<std::map<std::string, std::string>> parse_dsn(std::string_view dsn) {
    char* raw_error = nullptr;
    const std::string text{dsn};
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options{
        PQconninfoParse(text.c_str(), &raw_error), &PQconninfoFree};
    if (!options) {
        // libpq's message quotes the text around the mistake, which may be the password.
        PQfreemem(raw_error);
        return bad("not a libpq connection string (keyword=value pairs, or a postgresql:// URI)");
    }
    std::map<std::string, std::string> out;
    for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
        if (o->val != nullptr) {
            out[o->keyword] = o->val;
        }
    }
    // What libpq takes from the environment when the string is silent (PGHOST,
    // PGSSLMODE...), so that the TLS check judges what will really be used.
    for (const auto& [key, var] :
         {std::pair{"host", "PGHOST"},
          {"hostaddr", "PGHOSTADDR"},
          {"sslmode", "PGSSLMODE"},
          {"service", "PGSERVICE"},
          {"servicefile", "PGSERVICEFILE"}}) {
        if (out.find(key) == out.end()) {
            if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
                out[key] = v;
            }
        }
    }
    return out;
}

result<void> check_dsn(const std::map<std::string, std::string>& dsn) {
    if (dsn.count("service") != 0 || dsn.count("servicefile") != 0) {
        // A service file's host and sslmode are read only when connecting: not checkable here.
        return bad("service and servicefile are not supported: name host, port and sslmode in the string");
    }
    const std::string mode = get(dsn, "sslmode");
    const auto all = hosts(dsn);
    const bool remote =
        std::any_of(all.begin(), all.end(), [](const std::string& h) { return !loopback(h); });
    if (remote && !mode.empty() && mode != "verify-full") {
        return bad(
            "sslmode=" + mode +
            " does not verify the server; use sslmode=verify-full (with sslrootcert) for a remote "
            "host, or connect through the Cloud SQL Auth Proxy on 127.0.0.1"
        );
    }
    if (!get(dsn, "password").empty() && !get(dsn, "passfile").empty()) {
        return bad("give the password or a passfile, not both");
    }
    return {};
}

std::string monitor_dsn(
    std::map<std::string, std::string> dsn,
    std::chrono::milliseconds statement_timeout,
    std::chrono::milliseconds connect_timeout
) {
    const auto all = hosts(dsn);
    if (get(dsn, "sslmode").empty() &&
        std::any_of(all.begin(), all.end(), [](const std::string& h) { return !loopback(h); })) {
        dsn["sslmode"] = "verify-full";
    }
    dsn["application_name"] = "runbookd";
    // A database that stops answering mid-query (a failover, a dropped route) must not hold
    // the monitor's thread until TCP gives up (15 minutes to 2 hours): keepalives find a
    // dead peer in about 20 s and tcp_user_timeout bounds unacknowledged sends.
    dsn.try_emplace("keepalives", "1");
    dsn.try_emplace("keepalives_idle", "5");
    dsn.try_emplace("keepalives_interval", "5");
    dsn.try_emplace("keepalives_count", "3");
    dsn.try_emplace(
        "tcp_user_timeout", std::to_string((statement_timeout + std::chrono::seconds{5}).count())
    );
    dsn["connect_timeout"] = std::to_string(std::max<long long>(
        2,
        std::chrono::duration_cast<std::chrono::seconds>(connect_timeout + std::chrono::milliseconds{999})
            .count()
    ));
    std::string options = get(dsn, "options");
    options += (options.empty() ? "" : " ") + std::string{"-c statement_timeout="} +
               std::to_string(statement_timeout.count()) +
               " -c lock_timeout=1000 -c default_transaction_read_only=on";
    dsn["options"] = options;
    std::string out;
    for (const auto& [k, v] : dsn) {
        out += (out.empty() ? "" : " ") + k + "=" + quoted(v);
    }
    return out;
}

std::string describe(const std::map<std::string, std::string>& dsn) {
    std::string host = get(dsn, "host");
    if (host.empty()) {
        host = get(dsn, "hostaddr");
    }
    if (host.empty()) {
        host = "the local socket";
    }
    const std::string port = get(dsn, "port");
    std::string db = get(dsn, "dbname");
    if (db.empty()) {
        db = get(dsn, "user");  // libpq's default database is the user's name
    }
    return (db.empty() ? std::string{"the default database"} : db) + " on " + host +
           (port.empty() ? "" : ":" + port);
}

}  // namespace runbookd::sources::postgres
