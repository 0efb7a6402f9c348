#pragma once
// `promql:` (docs/sources/promql.md): named PromQL queries run against a Prometheus server's
// HTTP API, each turned into traffic signals (who dominates, what spiked, which handler slowed).

#include "core/secret.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::promql {

/// What a query's result is read as.
enum class query_kind {
    top_talker,    ///< one series per key: the key's share of the sum of all series (traffic.top_talker)
    spike,         ///< the sum of all series (or each key's) against a baseline (traffic.spike)
    slow_handler,  ///< one series per handler: its latency or duration share against a baseline
};

/// What a spike or a slow handler is compared with.
enum class baseline_kind {
    week,  ///< the same query evaluated at the same time a week earlier
    hour,  ///< the same query evaluated an hour earlier
};

/// One named query.
struct query {
    std::string name;  ///< unique; names the poll job, the metrics' `query` label and errors
    std::string expr;  ///< the PromQL (`query:`)
    query_kind kind = query_kind::top_talker;
    /// The label the query groups by (`sum by (canvas) (...)`). Required for top_talker and
    /// slow_handler; for a spike, empty means the total of every series.
    std::string by;
    /// top_talker: what a key is (user, canvas, handler, client, ip, asn); default `by`.
    std::string key_type;
    /// spike: what the evidence calls the traffic when `by` is empty; default the name.
    std::string target;
    /// spike: requests (default) or clients (the query counts distinct client IPs);
    /// slow_handler: latency (default) or duration_share.
    std::string measure;
    baseline_kind baseline = baseline_kind::week;
    double min_share = 0.5;    ///< top_talker: a key's share of the total to be reported
    double min_value = 0;      ///< top_talker and spike: the current value must be at least this
    double min_ratio = 2;      ///< spike, slow_handler: current / baseline to be reported
    bool allow_empty = false;  ///< an empty result is data (no errors), not a failing query

    friend bool operator==(const query&, const query&) = default;
};

/// An IP or ASN that belongs to a known user (a customer's CI, our own uptime checks): a
/// top talker with this key is a user going wild, not an attack.
struct known_client {
    std::string key;   ///< "203.0.113.9", "AS14061": compared with the series' key as text
    std::string user;  ///< who it is, shown in the evidence

    friend bool operator==(const known_client&, const known_client&) = default;
};

/// Off while no url is given.
struct config {
    std::string url;  ///< the Prometheus server's base URL (https, or http on loopback)
    secret<std::string> bearer_token;
    std::string username;  ///< basic auth, with `password`
    secret<std::string> password;
    std::string ca_file;  ///< trust for https; empty: the system trust store
    std::chrono::milliseconds interval = std::chrono::minutes{1};  ///< between polls and the step of a range
    std::chrono::milliseconds timeout = std::chrono::seconds{10};  ///< per request, sent as `timeout=` too
    /// The first poll reads this far back with query_range, so that a restart during an
    /// incident still sees the traffic that led to it.
    std::chrono::milliseconds lookback = std::chrono::minutes{30};
    std::size_t max_series = 5000;  ///< a result with more series fails the query
    std::vector<known_client> known_clients;
    std::vector<query> queries;

    bool enabled() const noexcept { return !url.empty(); }
    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position.
void read(yaml::section& s, config& out);

/// "top_talker", "spike", "slow_handler"; "week", "hour".
std::string_view to_string(query_kind k) noexcept;
std::string_view to_string(baseline_kind b) noexcept;

}  // namespace runbookd::sources::promql
