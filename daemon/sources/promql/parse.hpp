#pragma once
// The Prometheus HTTP API's answers -> series, and series -> traffic signals, pure (api-facts
// §7.2; docs/sources/promql.md). No sockets, no clock: the time of a signal is the time of
// the data point that shows it.

#include "core/error.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"
#include "sources/promql/config.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::sources::promql {

/// One sample: the evaluation time Prometheus gives it, and its value (NaN and ±Inf kept).
struct point {
    wall_time at;
    double value = 0;
};

/// One series of a result, named by the value of the label the query groups by ("" when
/// it has no such label, or for a scalar).
struct series {
    std::string key;
    std::vector<point> points;
};

/// A successful answer: a vector (one point per series), a matrix or a scalar.
struct query_data {
    std::string result_type;
    std::vector<series> result;
    std::vector<std::string> warnings;
};

/// How a failed answer failed, for the metrics' `outcome` label.
enum class answer_error {
    query_error,   ///< "status":"error" (a bad query, an execution error, a server-side timeout)
    bad_response,  ///< not the API's JSON (an HTML page from a proxy, a cut body, another shape)
    too_large,     ///< more series than allowed
};

struct answer_failure {
    answer_error kind = answer_error::bad_response;
    std::string detail;  ///< safe to log: the errorType and error, or what was wrong
};

/// Reads the body of an /api/v1/query or /api/v1/query_range answer with HTTP `status`:
/// the data of a "success" (whatever the status), a query_error naming the errorType and
/// error of an "error" ("422 execution: ..."), or bad_response. Series beyond `max_series`
/// fail it as too_large; the series are not merged by key (the caller sums them).
boost::system::result<query_data, answer_failure> parse_answer(
    std::string_view body, unsigned status, std::string_view key_label, std::size_t max_series
);

/// How far back a query's baseline is read.
std::chrono::milliseconds baseline_offset(baseline_kind b) noexcept;

/// Turns one query's answers into signals. `current` is the query over the poll's window;
/// `baseline` is the same query over that window moved back by baseline_offset() (unused
/// by a top_talker). For each key, only the point that shows it most (the highest share,
/// or ratio) becomes a signal, dated at that point:
/// - top_talker: at each time, each key's share of the sum of every series; a key at or
///   above `min_share` and `min_value` is a traffic.top_talker (value: its rate; labels
///   key, key_type, share, owner from `known`, query).
/// - spike: the sum of every series (or, with `by`, each key) against the baseline at the
///   same time minus the offset; a ratio at or above `min_ratio`, with a current value at
///   or above `min_value` and a baseline above 0, is a traffic.spike (value: the ratio;
///   labels target, baseline, counts, compared_to, query).
/// - slow_handler: each handler against its baseline; a ratio at or above `min_ratio` is a
///   traffic.slow_handler (value: the ratio; labels handler, measure, current, baseline,
///   compared_to, query).
/// Non-finite values are skipped. Signals are in key order.
std::vector<signal> evaluate(
    const query& q,
    const query_data& current,
    const query_data* baseline,
    const std::vector<known_client>& known
);

/// "0.72", "140", "0.034": a number as a label shows it (up to 3 significant decimals).
std::string number_text(double v);

}  // namespace runbookd::sources::promql
