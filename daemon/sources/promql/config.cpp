#include "sources/promql/config.hpp"

#include "yaml/section.hpp"

#include <algorithm>
#include <array>

namespace runbookd::sources::promql {
namespace {

constexpr std::array<std::string_view, 3> kinds{"top_talker", "spike", "slow_handler"};
constexpr std::array<std::string_view, 2> baselines{"week", "hour"};
constexpr std::array<std::string_view, 6> key_types{"user", "canvas", "handler", "client", "ip", "asn"};
constexpr std::array<std::string_view, 2> spike_measures{"requests", "clients"};
constexpr std::array<std::string_view, 2> slow_measures{"latency", "duration_share"};

/// Prometheus refuses a range of more than 11,000 points per series
/// (prometheus/prometheus web/api/v1/api.go, "exceeded maximum resolution").
constexpr long long max_points = 11000;

/// A Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*).
std::string check_label(const std::string& l) {
    const auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
    if (l.empty() || !ok_first(l.front()) ||
        !std::all_of(l.begin(), l.end(), [&](char c) { return ok_first(c) || (c >= '0' && c <= '9'); })) {
        return "not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)";
    }
    return {};
}

void read_query(yaml::section& item, query& q) {
    item.keys(
        {"name",
         "query",
         "signal",
         "by",
         "key_type",
         "target",
         "measure",
         "baseline",
         "min_share",
         "min_value",
         "min_ratio",
         "allow_empty"}
    );
    item.get("name", q.name, true);
    if (!item.has("name")) {
        item.report("name", "required: names the query in errors and metrics");
    }
    item.get("query", q.expr, true);
    if (!item.has("query")) {
        item.report("query", "required: the PromQL expression");
    }
    const auto kind = item.choice("signal", kinds);
    if (kind) {
        q.kind = static_cast<query_kind>(*kind);
    } else if (!item.has("signal")) {
        item.report("signal", "required: top_talker, spike or slow_handler");
    }
    if (auto by = item.checked("by", check_label)) {
        q.by = std::move(*by);
    }
    if (kind && q.kind != query_kind::spike && q.by.empty() && !item.has("by")) {
        item.report(
            "by", "required for a " + std::string{to_string(q.kind)} + ": the label the query groups by"
        );
    }
    if (auto t = item.choice("key_type", key_types)) {
        q.key_type = std::string{key_types[*t]};
    }
    if (q.key_type.empty() && q.kind == query_kind::top_talker) {
        const auto found = std::find(key_types.begin(), key_types.end(), q.by);
        if (found != key_types.end()) {
            q.key_type = q.by;
        } else if (!q.by.empty() && !item.has("key_type")) {
            item.report(
                "key_type",
                "required when `by` (" + q.by + ") is not one of user, canvas, handler, client, ip, asn"
            );
        }
    }
    item.get("target", q.target);
    if (q.target.empty()) {
        q.target = q.name;
    }
    const auto measures = q.kind == query_kind::slow_handler
                              ? std::span<const std::string_view>{slow_measures}
                              : std::span<const std::string_view>{spike_measures};
    if (q.kind == query_kind::top_talker && item.has("measure")) {
        item.report_key("measure", "only a spike or a slow_handler has a measure");
    } else if (auto m = item.choice("measure", measures)) {
        q.measure = std::string{measures[*m]};
    }
    if (q.measure.empty() && q.kind != query_kind::top_talker) {
        q.measure = std::string{measures.front()};
    }
    if (auto b = item.choice("baseline", baselines)) {
        q.baseline = static_cast<baseline_kind>(*b);
    }
    item.get("min_share", q.min_share, 0, 1);
    item.get("min_value", q.min_value, -1, 1e300);
    if (q.min_value < 0) {
        item.report("min_value", "must be 0 or more");
        q.min_value = 0;
    }
    item.get("min_ratio", q.min_ratio, 0, 1e300);
    item.get("allow_empty", q.allow_empty);
}

}  // namespace

std::string_view to_string(query_kind k) noexcept {
    return kinds[static_cast<std::size_t>(k)];
}

std::string_view to_string(baseline_kind b) noexcept {
    return baselines[static_cast<std::size_t>(b)];
}

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys(
        {"url",
         "bearer_token",
         "bearer_token_file",
         "username",
         "password",
         "password_file",
         "ca_file",
         "interval",
         "timeout",
         "lookback",
         "max_series",
         "known_clients",
         "queries"}
    );
    s.url("url", out.url);
    s.secret("bearer_token", out.bearer_token);
    s.get("username", out.username, true);
    s.secret("password", out.password);
    if (!out.bearer_token.empty() && !out.username.empty()) {
        s.report("username", "give either bearer_token or username and password, not both");
    }
    if (out.bearer_token.empty() && out.username.empty() != out.password.empty()) {
        s.report(
            out.username.empty() ? "password" : "username", "basic auth needs both username and password"
        );
    }
    s.file("ca_file", out.ca_file, "CA file");
    s.get("interval", out.interval, 1s);
    s.get("timeout", out.timeout, 1ms);
    s.get("lookback", out.lookback, 0ms);
    s.get("max_series", out.max_series, 1);
    if (out.lookback / out.interval > max_points) {
        s.report("lookback", "at most 11000 intervals (Prometheus' limit on the points of a range)");
    }
    for (auto& item : s.items("known_clients")) {
        item.keys({"key", "user"});
        known_client k;
        item.get("key", k.key, true);
        item.get("user", k.user, true);
        if (!item.has("key")) {
            item.report("key", "required: the IP or ASN as the query's label carries it");
        }
        if (!item.has("user")) {
            item.report("user", "required: who it belongs to");
        }
        if (!k.key.empty() && !k.user.empty()) {
            out.known_clients.push_back(std::move(k));
        }
    }
    for (auto& item : s.items("queries")) {
        query q;
        read_query(item, q);
        if (q.name.empty() || q.expr.empty()) {
            continue;
        }
        if (std::any_of(out.queries.begin(), out.queries.end(), [&](const query& o) {
                return o.name == q.name;
            })) {
            item.report("name", "'" + q.name + "' is already a query");
            continue;
        }
        out.queries.push_back(std::move(q));
    }
    if (!out.url.empty() && out.queries.empty() && s.problem_count() == 0) {
        s.report("queries", "at least one query is needed when url is set");
    }
}

}  // namespace runbookd::sources::promql
