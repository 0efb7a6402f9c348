#include "sources/postgres/config.hpp"

#include "sources/postgres/dsn.hpp"
#include "yaml/section.hpp"

#include <regex>

namespace runbookd::sources::postgres {

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys(
        {"dsn",
         "dsn_file",
         "instance",
         "interval",
         "connect_timeout",
         "statement_timeout",
         "long_query_threshold",
         "migration_threshold",
         "idle_in_transaction_threshold",
         "lock_wait_threshold",
         "query_max",
         "redact_literals",
         "redact_patterns",
         "exclude_applications",
         "exclude_users",
         "password_file"}
    );
    secret<std::string> dsn;
    const std::string file = s.secret("dsn", dsn);
    if (!dsn.empty()) {
        // Messages name the key, never the string: it may hold a password.
        const std::string key = file.empty() ? "dsn" : "dsn_file";
        auto parsed = parse_dsn(dsn.reveal());
        if (!parsed) {
            s.report(key, parsed.error().detail);
        } else if (auto checked = check_dsn(*parsed); !checked) {
            s.report(key, checked.error().detail);
        } else {
            out.where = describe(*parsed);
            out.dsn = std::move(dsn);
        }
    }
    if (s.has("password_file")) {
        s.report_key(
            "password_file", "put the password in a passfile named by the dsn (passfile=PATH), or in dsn_file"
        );
    }
    s.get("instance", out.instance, true);
    s.get("interval", out.interval, 1s);
    s.get("connect_timeout", out.connect_timeout, 1s);
    s.get("statement_timeout", out.statement_timeout, 100ms);
    s.get("long_query_threshold", out.long_query_threshold, 1s);
    s.get("migration_threshold", out.migration_threshold, 0ms);
    s.get("idle_in_transaction_threshold", out.idle_in_transaction_threshold, 1s);
    s.get("lock_wait_threshold", out.lock_wait_threshold, 0ms);
    s.get("query_max", out.query_max, 20);
    s.get("redact_literals", out.redact_literals);
    if (auto list = s.strings("redact_patterns")) {
        bool ok = true;
        for (std::size_t i = 0; i < list->size(); ++i) {
            try {
                std::regex{(*list)[i]};
            } catch (const std::regex_error& x) {
                s.report_item("redact_patterns", i, "not a regular expression: " + std::string{x.what()});
                ok = false;
            }
        }
        if (ok) {
            out.redact_patterns = std::move(*list);
        }
    }
    s.get("exclude_applications", out.exclude_applications);
    s.get("exclude_users", out.exclude_users);
}

}  // namespace runbookd::sources::postgres
