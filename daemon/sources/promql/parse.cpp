#include "sources/promql/parse.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <simdjson.h>

namespace runbookd::sources::promql {
namespace {

using element = simdjson::dom::element;

/// Answers of one source are alike in size: one parser keeps its buffers between polls
/// (the loop thread's).
simdjson::dom::parser& answer_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

std::optional<element> member(element j, std::string_view key) {
    element out;
    if (!j.is_object() || j.at_key(key).get(out) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return out;
}

std::string_view text_of(std::optional<element> j) {
    std::string_view out;
    return j && j->get_string().get(out) == simdjson::SUCCESS ? out : std::string_view{};
}

/// A short, printable excerpt of a body that is not the API's JSON: what a person needs to
/// recognise a proxy's page ("<html><head><title>502 Bad Gateway").
std::string excerpt(std::string_view body) {
    std::string out;
    for (const char c : body.substr(0, 80)) {
        out += (c >= 0x20 && c < 0x7f) ? c : ' ';
    }
    while (!out.empty() && out.back() == ' ') {
        out.pop_back();
    }
    return out;
}

answer_failure bad(std::string detail) {
    return {answer_error::bad_response, std::move(detail)};
}

/// A sample value: a decimal string, or NaN, +Inf, -Inf (api-facts §7.2).
std::optional<double> sample_value(std::string_view s) {
    if (s == "NaN") {
        return std::nan("");
    }
    if (s == "+Inf" || s == "Inf") {
        return HUGE_VAL;
    }
    if (s == "-Inf") {
        return -HUGE_VAL;
    }
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

/// [<unix seconds>, "<value>"].
std::optional<point> sample(element e) {
    simdjson::dom::array pair;
    if (e.get_array().get(pair) != simdjson::SUCCESS || pair.size() != 2) {
        return std::nullopt;
    }
    double ts = 0;
    if (pair.at(0).get_double().get(ts) != simdjson::SUCCESS || !std::isfinite(ts)) {
        return std::nullopt;
    }
    std::string_view text;
    if (pair.at(1).get_string().get(text) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    const auto v = sample_value(text);
    if (!v) {
        return std::nullopt;
    }
    return point{wall_time{millis{std::llround(ts * 1000)}}, *v};
}

struct pair_stats {
    double current = 0;
    double baseline = 0;
    double ratio = 0;
    wall_time at;
};

/// Per key, then per time: the sum of the series with that key (a query may return several
/// series with the same key, e.g. one per instance, when it does not aggregate).
using by_key = std::map<std::string, std::map<wall_time, double>, std::less<>>;

by_key collect(const query_data& d, bool total, const std::string& total_key) {
    by_key out;
    for (const auto& s : d.result) {
        auto& times = out[total ? total_key : s.key];
        for (const auto& p : s.points) {
            if (std::isfinite(p.value)) {
                times[p.at] += p.value;
            }
        }
    }
    return out;
}

std::string compared_to(baseline_kind b) {
    return b == baseline_kind::week ? "a week earlier" : "the previous hour";
}

std::vector<signal> top_talkers(
    const query& q, const query_data& current, const std::vector<known_client>& known
) {
    // The total at each time, over every series (those without the key too).
    std::map<wall_time, double> totals;
    for (const auto& s : current.result) {
        for (const auto& p : s.points) {
            if (std::isfinite(p.value)) {
                totals[p.at] += p.value;
            }
        }
    }
    std::vector<signal> out;
    for (const auto& [key, times] : collect(current, false, {})) {
        if (key.empty()) {
            continue;
        }
        std::optional<pair_stats> best;
        for (const auto& [at, v] : times) {
            const double total = totals[at];
            if (total <= 0 || v < q.min_value) {
                continue;
            }
            const double share = v / total;
            if (share >= q.min_share && (!best || share > best->ratio)) {
                best = pair_stats{v, total, share, at};
            }
        }
        if (!best) {
            continue;
        }
        signal s;
        s.set_kind("traffic.top_talker");
        s.source = "promql";
        s.subject = key;
        s.at = best->at;
        s.value = best->current;
        s.set("key", key);
        s.set("key_type", q.key_type);
        s.set("share", number_text(best->ratio));
        const auto k =
            std::find_if(known.begin(), known.end(), [&](const known_client& c) { return c.key == key; });
        s.set("owner", k == known.end() ? std::string{} : k->user);
        s.set("query", q.name);
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<signal> against_baseline(const query& q, const query_data& current, const query_data& baseline) {
    const bool total = q.kind == query_kind::spike && q.by.empty();
    const auto now = collect(current, total, q.target);
    const auto then = collect(baseline, total, q.target);
    const auto offset = baseline_offset(q.baseline);
    std::vector<signal> out;
    for (const auto& [key, times] : now) {
        if (key.empty() && !total) {
            continue;
        }
        const auto old = then.find(key);
        if (old == then.end()) {
            continue;  // no baseline: nothing to compare with
        }
        std::optional<pair_stats> best;
        for (const auto& [at, v] : times) {
            const auto b = old->second.find(at - offset);
            if (b == old->second.end() || b->second <= 0 || v < q.min_value) {
                continue;
            }
            const double ratio = v / b->second;
            if (ratio >= q.min_ratio && (!best || ratio > best->ratio)) {
                best = pair_stats{v, b->second, ratio, at};
            }
        }
        if (!best) {
            continue;
        }
        signal s;
        s.source = "promql";
        s.subject = key;
        s.at = best->at;
        s.value = best->ratio;
        if (q.kind == query_kind::spike) {
            s.set_kind("traffic.spike");
            s.set("target", key);
            s.set("baseline", number_text(best->baseline));
            s.set("counts", q.measure);
        } else {
            s.set_kind("traffic.slow_handler");
            s.set("handler", key);
            s.set("measure", q.measure);
            s.set("current", number_text(best->current));
            s.set("baseline", number_text(best->baseline));
        }
        s.set("compared_to", compared_to(q.baseline));
        s.set("query", q.name);
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace

boost::system::result<query_data, answer_failure> parse_answer(
    std::string_view body, unsigned status, std::string_view key_label, std::size_t max_series
) {
    auto& parser = answer_parser();
    element root;
    if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS || !root.is_object()) {
        return bad(
            "HTTP " + std::to_string(status) + ": not a Prometheus API answer" +
            (body.empty() ? std::string{" (empty body)"} : ": \"" + excerpt(body) + "\"")
        );
    }
    const auto state = text_of(member(root, "status"));
    if (state == "error") {
        const auto type = text_of(member(root, "errorType"));
        const auto error = text_of(member(root, "error"));
        return answer_failure{
            answer_error::query_error,
            std::to_string(status) + " " + std::string{type.empty() ? "error" : type} + ": " +
                std::string{error.substr(0, 300)}};
    }
    if (state != "success") {
        return bad("HTTP " + std::to_string(status) + ": a JSON answer without \"status\":\"success\"");
    }
    const auto data = member(root, "data");
    query_data out;
    out.result_type = std::string{text_of(data ? member(*data, "resultType") : std::nullopt)};
    if (const auto w = member(root, "warnings")) {
        simdjson::dom::array arr;
        if (w->get_array().get(arr) == simdjson::SUCCESS) {
            for (element e : arr) {
                std::string_view t;
                if (e.get_string().get(t) == simdjson::SUCCESS) {
                    out.warnings.emplace_back(t.substr(0, 300));
                }
            }
        }
    }
    const auto result = data ? member(*data, "result") : std::nullopt;
    if (!result) {
        return bad("a success without data.result");
    }
    if (out.result_type == "scalar") {
        const auto p = sample(*result);
        if (!p) {
            return bad("a scalar that is not [time, \"value\"]");
        }
        out.result.push_back(series{{}, {*p}});
        return out;
    }
    const bool matrix = out.result_type == "matrix";
    if (!matrix && out.result_type != "vector") {
        return bad("resultType \"" + out.result_type.substr(0, 20) + "\": expected vector, matrix or scalar");
    }
    simdjson::dom::array items;
    if (result->get_array().get(items) != simdjson::SUCCESS) {
        return bad("data.result is not a list");
    }
    if (items.size() > max_series) {
        return answer_failure{
            answer_error::too_large,
            std::to_string(items.size()) + " series, more than max_series (" + std::to_string(max_series) +
                ")"};
    }
    out.result.reserve(items.size());
    for (element item : items) {
        series s;
        s.key = std::string{
            text_of(member(item, "metric") ? member(*member(item, "metric"), key_label) : std::nullopt)};
        if (matrix) {
            simdjson::dom::array values;
            if (const auto v = member(item, "values");
                !v || v->get_array().get(values) != simdjson::SUCCESS) {
                return bad("a matrix series without values");
            }
            s.points.reserve(values.size());
            for (element e : values) {
                const auto p = sample(e);
                if (!p) {
                    return bad("a sample that is not [time, \"value\"]");
                }
                s.points.push_back(*p);
            }
        } else {
            const auto v = member(item, "value");
            const auto p = v ? sample(*v) : std::nullopt;
            if (!p) {
                return bad("a vector sample that is not [time, \"value\"]");
            }
            s.points.push_back(*p);
        }
        out.result.push_back(std::move(s));
    }
    return out;
}

std::chrono::milliseconds baseline_offset(baseline_kind b) noexcept {
    return b == baseline_kind::week ? std::chrono::milliseconds{std::chrono::hours{24 * 7}}
                                    : std::chrono::milliseconds{std::chrono::hours{1}};
}

std::vector<signal> evaluate(
    const query& q,
    const query_data& current,
    const query_data* baseline,
    const std::vector<known_client>& known
) {
    if (q.kind == query_kind::top_talker) {
        return top_talkers(q, current, known);
    }
    if (baseline == nullptr) {
        return {};
    }
    return against_baseline(q, current, *baseline);
}

std::string number_text(double v) {
    if (!std::isfinite(v)) {
        return std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
    }
    char buf[64];
    const double a = std::fabs(v);
    // Three significant decimals below 1 ("0.034"), up to three decimals above ("1.25").
    const int decimals = a >= 100 ? 0 : (a >= 1 ? 2 : (a >= 0.1 ? 3 : 4));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string s = buf;
    if (s.find('.') != std::string::npos) {
        while (s.back() == '0') {
            s.pop_back();
        }
        if (s.back() == '.') {
            s.pop_back();
        }
    }
    return s;
}

}  // namespace runbookd::sources::promql
