#include "sources/cloudsql/source.hpp"

#include "loop/clock.hpp"
#include "net/https_client.hpp"
#include "net/url.hpp"
#include "sources/cloudsql/parse.hpp"
#include "sources/google/api.hpp"

#include <algorithm>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>

namespace runbookd::sources::cloudsql {
namespace {

namespace asio = boost::asio;

/// Pages followed in one poll at most: a runaway nextPageToken must not spin.
constexpr int max_pages = 20;

/// What the cloudsql jobs keep between runs: the end of the last complete monitoring read,
/// the points handed over within the re-read window, and since when the instance has been
/// in its state.
struct cloudsql_state {
    net::http_client& http;
    google::credentials& creds;
    config cfg;
    google::config g;  ///< the project, the API URLs and the timeout (its key stays with `creds`)
    std::vector<metric> metrics;
    std::optional<wall_time> last_end = {};
    handed_over handed = {};
    instance_memory seen = {};

    asio::awaitable<poll_outcome> monitoring() {
        const read_window w = monitoring_window(cfg, loop::wall_now(), last_end);
        std::vector<signal> out;
        std::vector<std::pair<const metric*, point>> fresh;
        for (const metric& m : metrics) {
            std::vector<point> points;
            std::string token;
            for (int page = 0; page < max_pages; ++page) {
                std::string url = time_series_url(cfg, g, m, w);
                if (!token.empty()) {
                    url += "&pageToken=" + net::percent_encode(token);
                }
                auto body =
                    co_await google::get(http, &creds, std::move(url), g.request_timeout, "cloud monitoring");
                if (!body) {
                    co_return body.error();
                }
                auto parsed = parse_time_series(*body);
                if (!parsed) {
                    co_return google::poll_failed(parsed.error().detail);
                }
                points.insert(
                    points.end(),
                    std::make_move_iterator(parsed->points.begin()),
                    std::make_move_iterator(parsed->points.end())
                );
                token = std::move(parsed->next_page_token);
                if (token.empty()) {
                    break;
                }
            }
            // No series at all is "no data" (the agent lags, the instance is new): no signal.
            // Points come newest first; handed over oldest first, each at its own time.
            for (auto it = points.rbegin(); it != points.rend(); ++it) {
                if (handed.contains(m.type, *it)) {
                    continue;
                }
                signal s;
                s.set_kind(m.kind);
                s.at = it->at;
                s.value = it->value;
                s.subject = cfg.instance;
                s.source = "cloudsql";
                s.set("instance", cfg.instance);
                out.push_back(std::move(s));
                fresh.emplace_back(&m, std::move(*it));
            }
        }
        // Remembered only when every metric was read: a failed read hands over nothing, and
        // the next one looks at the same points again (its window starts from the last
        // complete read's end).
        for (const auto& [m, p] : fresh) {
            handed.remember(m->type, p);
        }
        last_end = w.end;
        handed.forget_before(w.end - cfg.reread);
        co_return poll_result{std::move(out)};
    }

    asio::awaitable<poll_outcome> instance() {
        auto body = co_await google::get(
            http,
            &creds,
            g.sqladmin_url + "/v1/projects/" + net::percent_encode(g.project) + "/instances/" +
                net::percent_encode(cfg.instance),
            g.request_timeout,
            "cloud sql admin"
        );
        if (!body) {
            co_return body.error();
        }
        auto inst = parse_sql_instance(*body);
        if (!inst) {
            co_return google::poll_failed(inst.error().detail);
        }
        co_return poll_result{instance_signals(*inst, cfg.instance, loop::wall_now(), seen)};
    }
};

class cloudsql_source final : public sources::source {
public:
    cloudsql_source(const config& cfg, const google::config& g, context& cx)
        : http_(std::make_unique<net::https_client>(
              cx.loop, net::tls_options{g.ca_file, {}, {}, {}}, cx.log.with("component", "cloudsql_http")
          )) {
        auto settings = google::credentials_for(g);
        if (!settings) {
            throw std::runtime_error("google.key_file: " + settings.error().detail);
        }
        if (settings->from == google::credential_settings::kind::service_account) {
            cx.redact(settings->key.private_key);
        }
        // The token is this source's own: its log lines ("google token fetched") name cloudsql.
        creds_ = std::make_unique<google::credentials>(cx.loop, *http_, std::move(*settings), cx.log);
        description_ = g.project + ":" + cfg.instance + " with the " + creds_->origin();
        poller_ = std::make_unique<poller>(
            cx.loop,
            "cloudsql",
            poll_jobs(*http_, *creds_, cfg, g),
            cx.to.on_signal,
            cx.to.on_status,
            cx.log,
            cx.metrics
        );
    }

    void refresh(
        const refresh_window& /*window*/, loop::steady_clock::time_point /*deadline*/, refresh_done done
    ) override {
        poller_->refresh(std::move(done));
    }
    std::string describe() const override { return description_; }

    void start() override { poller_->start(); }

    void stop() override {
        poller_->stop();
        http_->shutdown();
    }

private:
    // Declared in the order they are needed: the jobs use the credentials, which use the client.
    std::unique_ptr<net::http_client> http_;
    std::unique_ptr<google::credentials> creds_;
    std::unique_ptr<poller> poller_;
    std::string description_;  ///< "PROJECT:INSTANCE with the metadata server"
};

}  // namespace

std::vector<metric> default_metrics() {
    return {
        {"cloudsql.googleapis.com/database/cpu/utilization", "db.cpu", "REDUCE_MAX"},
        {"cloudsql.googleapis.com/database/memory/utilization", "db.memory", "REDUCE_MAX"},
        {"cloudsql.googleapis.com/database/postgresql/num_backends", "db.connections", "REDUCE_SUM"},
    };
}

read_window monitoring_window(const config& cfg, wall_time now, std::optional<wall_time> last_end) {
    // The window ends on the last whole minute before now: aligned 60 s buckets then keep
    // their timestamps from read to read (a point is recognised as handed over), and the
    // minute still filling is read once it is complete.
    const wall_time end = std::chrono::floor<std::chrono::minutes>(now) - std::chrono::minutes{1};
    if (!last_end) {
        return {end - cfg.lookback, end};
    }
    // Back to `reread` before the last complete read's end, so that nothing between two
    // reads is skipped after a failure; but after a long one, no further back than a first
    // read (or the re-read window, when that is longer).
    const wall_time start = std::max(*last_end - cfg.reread, end - std::max(cfg.lookback, cfg.reread));
    return {std::min(start, end), end};
}

std::string time_series_url(
    const config& cfg, const google::config& g, const metric& m, const read_window& w
) {
    const std::string filter = "metric.type=\"" + m.type + "\" AND resource.labels.database_id=\"" +
                               g.project + ":" + cfg.instance + "\"";
    return g.monitoring_url + "/v3/projects/" + net::percent_encode(g.project) +
           "/timeSeries?filter=" + net::percent_encode(filter) +
           "&interval.startTime=" + net::percent_encode(format_rfc3339(w.start)) +
           "&interval.endTime=" + net::percent_encode(format_rfc3339(w.end)) +
           "&aggregation.alignmentPeriod=60s&aggregation.perSeriesAligner=ALIGN_MEAN" +
           "&aggregation.crossSeriesReducer=" + m.reducer +
           "&aggregation.groupByFields=" + net::percent_encode("resource.label.database_id") + "&view=FULL";
}

std::vector<poll_job> poll_jobs(
    net::http_client& http,
    google::credentials& creds,
    const config& cfg,
    const google::config& g,
    std::vector<metric> metrics
) {
    google::config api = g;
    api.key_json = {};  // the jobs need the project and the URLs; the key stays with `creds`
    auto state = std::make_shared<cloudsql_state>(cloudsql_state{
        http, creds, cfg, std::move(api), std::move(metrics)});
    return {
        {"monitoring", cfg.monitoring_interval, [state] { return state->monitoring(); }},
        {"instance", cfg.instance_interval, [state] { return state->instance(); }},
    };
}

std::unique_ptr<sources::source> make(const config& cfg, const google::config& g, context& cx) {
    if (!cfg.enabled()) {
        return nullptr;
    }
    return std::make_unique<cloudsql_source>(cfg, g, cx);
}

}  // namespace runbookd::sources::cloudsql
