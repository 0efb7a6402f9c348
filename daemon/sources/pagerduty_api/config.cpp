#include "sources/pagerduty_api/config.hpp"

#include "yaml/section.hpp"

namespace runbookd::sources::pagerduty_api {

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys(
        {"token",
         "token_file",
         "url",
         "interval",
         "timeout",
         "service_ids",
         "lookups_per_poll",
         "alerts",
         "maintenance_windows",
         "log_entries_per_poll",
         "log_lookback",
         "ca_file"}
    );
    const std::size_t before = s.problem_count();
    s.secret("token", out.token);
    s.url("url", out.url);
    // PagerDuty allows 960 requests a minute per key; a reconciliation is at least one
    // (docs/sources/pagerduty_api.md says how to choose it).
    s.get("interval", out.interval, 1s);
    s.get("timeout", out.timeout, 100ms);
    s.get("service_ids", out.service_ids);
    s.get("lookups_per_poll", out.lookups_per_poll, 0);
    s.get("alerts", out.alerts);
    s.get("maintenance_windows", out.maintenance_windows);
    s.get("log_entries_per_poll", out.log_entries_per_poll, 0);
    s.get("log_lookback", out.log_lookback, 1min);
    s.file("ca_file", out.ca_file, "CA file");
    if (out.token.empty() && s.problem_count() == before &&
        (s.has("url") || s.has("interval") || s.has("service_ids") || s.has("ca_file"))) {
        s.report_here(
            "the section is off without a token (token or token_file): set one, or remove the section"
        );
    }
}

}  // namespace runbookd::sources::pagerduty_api
