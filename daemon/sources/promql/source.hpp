#pragma once
// The promql source (docs/sources/promql.md): one poll job per configured query, run by
// sources::poller (cadence, backoff, health). A run asks Prometheus for the query over the
// poll's window (query_range back to `lookback` on the first run, then an instant query
// per interval), and for spikes and slow handlers the same window a week or an hour
// earlier; it turns the answers into traffic signals dated at their data points.

#include "net/http_client.hpp"
#include "sources/poller.hpp"
#include "sources/promql/config.hpp"
#include "sources/source.hpp"

#include <memory>
#include <string>
#include <vector>

namespace runbookd::sources::promql {

/// A time window to evaluate a query over, aligned to `step`; start == end is one instant.
struct window {
    wall_time start;
    wall_time end;
    std::chrono::milliseconds step;
};

/// The form body of a request for `expr` over `w` (instant: query + time; range: query +
/// start + end + step), with Prometheus' own `timeout`. Times are Unix seconds.
std::string request_form(const std::string& expr, const window& w, std::chrono::milliseconds timeout);

/// The windows a query's runs cover: the first ends at `now` rounded down to the step and
/// starts `lookback` before it; each next one starts one step after the last end (an
/// instant when nothing more is due). `last_end` is the previous run's end, when there was one.
window next_window(
    wall_time now,
    std::optional<wall_time> last_end,
    std::chrono::milliseconds step,
    std::chrono::milliseconds lookback
);

/// The value of the Authorization header `cfg` asks for ("" for none): "Bearer <token>"
/// or "Basic <base64(username:password)>".
std::string authorization(const config& cfg);

/// One job per query. `http` must outlive them and runs them. Metrics are registered in
/// `cx.metrics`; `wall_now` is read through loop::wall_now().
std::vector<poll_job> poll_jobs(net::http_client& http, const config& cfg, context& cx);

/// nullptr while no url is given. Throws std::runtime_error when the CA file cannot be loaded.
std::unique_ptr<sources::source> make(const config& cfg, context& cx);

}  // namespace runbookd::sources::promql
