#include "sources/gcp/source.hpp"

#include "loop/clock.hpp"
#include "net/retry.hpp"
#include "net/url.hpp"
#include "sources/gcp/parse.hpp"

#include <map>
#include <memory>

namespace runbookd::sources::gcp {
namespace {

namespace asio = boost::asio;

/// timeSeries pages are small (a point a minute); a bigger body is not what we asked for.
constexpr std::size_t max_google_body = 8 * 1024 * 1024;
/// Pages followed in one poll at most: a runaway nextPageToken must not spin.
constexpr int max_pages = 20;

poll_failure failed(std::string what, std::optional<std::chrono::milliseconds> retry_after = std::nullopt) {
    return poll_failure{make_failure(errc::upstream_unavailable, std::move(what)), retry_after, {}};
}

/// GETs `url` (with a bearer token when `creds` is given) and returns a 200's body.
asio::awaitable<boost::system::result<std::string, poll_failure>> get(
    net::http_client& http,
    credentials* creds,
    std::string url,
    std::chrono::milliseconds timeout,
    std::string_view what
) {
    net::http_call call;
    call.url = std::move(url);
    call.timeout = timeout;
    call.max_body = max_google_body;
    std::string auth;
    if (creds != nullptr) {
        auto got = co_await creds->authorization();
        if (!got) {
            co_return failed(got.error().detail);
        }
        auth = std::move(*got);
        call.headers["Authorization"] = auth;
    }
    auto reply = co_await http.send(std::move(call));
    if (!reply) {
        co_return failed(std::string{what} + ": " + reply.error().error.detail);
    }
    if (reply->status == 200) {
        co_return std::move(reply->body);
    }
    if (reply->status == 401 && creds != nullptr) {
        creds->rejected(auth);
    }
    std::optional<std::chrono::milliseconds> retry_after;
    if (reply->status == 429 || reply->status == 503) {
        retry_after = net::parse_seconds(reply->header("retry-after"));
    }
    co_return failed(std::string{what} + ": " + api_error_text(reply->status, reply->body), retry_after);
}

/// What the cloudsql jobs keep between runs: the newest point handed over, per metric.
struct cloudsql_state {
    net::http_client& http;
    credentials& creds;
    cloudsql_settings settings;
    std::map<std::string, wall_time> newest;

    asio::awaitable<poll_outcome> monitoring() {
        // The window ends on the last whole minute before now: aligned 60 s buckets then keep
        // their timestamps from poll to poll (a point is recognised as seen), and the minute
        // still filling is read once it is complete.
        const wall_time now =
            std::chrono::floor<std::chrono::minutes>(loop::wall_now()) - std::chrono::minutes{1};
        std::vector<signal> out;
        std::map<std::string, wall_time> now_newest;
        for (const metric& m : settings.metrics) {
            std::vector<point> points;
            std::string token;
            for (int page = 0; page < max_pages; ++page) {
                std::string url = time_series_url(settings, m, now);
                if (!token.empty()) {
                    url += "&pageToken=" + net::percent_encode(token);
                }
                auto body =
                    co_await get(http, &creds, std::move(url), settings.request_timeout, "cloud monitoring");
                if (!body) {
                    co_return body.error();
                }
                auto parsed = parse_time_series(*body);
                if (!parsed) {
                    co_return failed(parsed.error().detail);
                }
                points.insert(points.end(), parsed->points.begin(), parsed->points.end());
                token = std::move(parsed->next_page_token);
                if (token.empty()) {
                    break;
                }
            }
            // No series at all is "no data" (the agent lags, the instance is new): no signal.
            const auto seen = newest.find(m.type);
            for (auto it = points.rbegin(); it != points.rend(); ++it) {  // oldest first
                if (seen != newest.end() && it->at <= seen->second) {
                    continue;
                }
                signal s;
                s.set_kind(m.kind);
                s.at = it->at;
                s.value = it->value;
                s.subject = settings.instance;
                s.source = "cloudsql";
                s.set("instance", settings.instance);
                out.push_back(std::move(s));
                auto& mark = now_newest.try_emplace(m.type, it->at).first->second;
                mark = std::max(mark, it->at);
            }
        }
        // Marked as handed over only when every metric was read: a failed poll hands over
        // nothing, and the next one looks at the same points again.
        for (const auto& [type, at] : now_newest) {
            newest[type] = at;
        }
        co_return poll_result{std::move(out)};
    }

    asio::awaitable<poll_outcome> instance() {
        auto body = co_await get(
            http,
            &creds,
            settings.sqladmin_url + "/v1/projects/" + net::percent_encode(settings.project) + "/instances/" +
                net::percent_encode(settings.instance),
            settings.request_timeout,
            "cloud sql admin"
        );
        if (!body) {
            co_return body.error();
        }
        auto inst = parse_sql_instance(*body);
        if (!inst) {
            co_return failed(inst.error().detail);
        }
        co_return poll_result{instance_signals(*inst, settings.instance, loop::wall_now())};
    }
};

}  // namespace

std::vector<metric> default_metrics() {
    return {
        {"cloudsql.googleapis.com/database/cpu/utilization", "db.cpu", "REDUCE_MAX"},
        {"cloudsql.googleapis.com/database/memory/utilization", "db.memory", "REDUCE_MAX"},
        {"cloudsql.googleapis.com/database/postgresql/num_backends", "db.connections", "REDUCE_SUM"},
    };
}

std::string time_series_url(const cloudsql_settings& s, const metric& m, wall_time end) {
    const std::string filter = "metric.type=\"" + m.type + "\" AND resource.labels.database_id=\"" +
                               s.project + ":" + s.instance + "\"";
    return s.monitoring_url + "/v3/projects/" + net::percent_encode(s.project) +
           "/timeSeries?filter=" + net::percent_encode(filter) +
           "&interval.startTime=" + net::percent_encode(format_rfc3339(end - s.lookback)) +
           "&interval.endTime=" + net::percent_encode(format_rfc3339(end)) +
           "&aggregation.alignmentPeriod=60s&aggregation.perSeriesAligner=ALIGN_MEAN" +
           "&aggregation.crossSeriesReducer=" + m.reducer +
           "&aggregation.groupByFields=" + net::percent_encode("resource.label.database_id") + "&view=FULL";
}

std::vector<poll_job> cloudsql_jobs(net::http_client& http, credentials& creds, cloudsql_settings settings) {
    auto state = std::make_shared<cloudsql_state>(cloudsql_state{http, creds, std::move(settings), {}});
    return {
        {"monitoring", state->settings.monitoring_interval, [state] { return state->monitoring(); }},
        {"instance", state->settings.instance_interval, [state] { return state->instance(); }},
    };
}

std::vector<poll_job> status_feed_jobs(net::http_client& http, status_feed_settings settings) {
    auto s = std::make_shared<status_feed_settings>(std::move(settings));
    auto run = [&http, s]() -> asio::awaitable<poll_outcome> {
        auto body = co_await get(http, nullptr, s->url, s->request_timeout, "status feed");
        if (!body) {
            co_return body.error();
        }
        auto incidents = parse_status_feed(*body);
        if (!incidents) {
            co_return failed(incidents.error().detail);
        }
        co_return poll_result{incident_signals(*incidents, s->products, s->locations, loop::wall_now())};
    };
    return {{"feed", s->interval, std::move(run)}};
}

}  // namespace runbookd::sources::gcp
