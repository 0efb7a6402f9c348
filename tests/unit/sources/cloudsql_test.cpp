// The cloudsql source: the pure reading of Cloud Monitoring pages and Cloud SQL Admin
// instances (bodies shaped as in api-facts §3), its jobs against scripted answers under
// manual time, and make().
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "fakes/scripted_http.hpp"
#include "loop/clock.hpp"
#include "net/url.hpp"
#include "sources/cloudsql/parse.hpp"
#include "sources/cloudsql/source.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include <optional>
#include <stdexcept>

namespace runbookd::sources::cloudsql {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace asio = boost::asio;

const wall_time now = *parse_rfc3339("2026-03-05T16:00:00Z");

std::string label(const signal& s, std::string_view name) {
    const std::string* v = s.find(name);
    return v == nullptr ? "<absent>" : *v;
}

TEST(cloudsql_time_series, reads_points_newest_first_and_int64_as_a_string) {
    const auto page = parse_time_series(R"({"timeSeries":[{
        "metric":{"type":"cloudsql.googleapis.com/database/cpu/utilization","labels":{}},
        "resource":{"type":"cloudsql_database","labels":{"project_id":"p","database_id":"p:inst","region":"us-central1"}},
        "metricKind":"GAUGE","valueType":"DOUBLE","unit":"10^2.%",
        "points":[
          {"interval":{"startTime":"2026-03-05T15:56:00Z","endTime":"2026-03-05T15:57:00Z"},"value":{"doubleValue":0.97}},
          {"interval":{"endTime":"2026-03-05T15:56:00Z"},"value":{"int64Value":"12"}},
          {"interval":{"endTime":"2026-03-05T15:55:00Z"},"value":{"stringValue":"x"}}]}],
      "nextPageToken":"next"})");
    ASSERT_TRUE(page);
    ASSERT_EQ(page->points.size(), 2u);
    EXPECT_EQ(page->points[0].at, *parse_rfc3339("2026-03-05T15:57:00Z"));
    EXPECT_DOUBLE_EQ(page->points[0].value, 0.97);
    EXPECT_DOUBLE_EQ(page->points[1].value, 12.0);
    EXPECT_EQ(page->skipped, 1u);
    EXPECT_EQ(page->next_page_token, "next");
}

TEST(cloudsql_time_series, no_series_is_no_data_and_bad_bodies_are_errors) {
    const auto empty = parse_time_series("{}");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->points.empty());  // "no data", not a zero
    for (std::string_view bad : {"", "[]", "null", "{", "<html>"}) {
        EXPECT_FALSE(parse_time_series(bad).has_value()) << bad;
    }
}

TEST(cloudsql_instance, reads_state_window_and_scheduled_maintenance) {
    const auto inst =
        parse_sql_instance(R"({"kind":"sql#instance","name":"inst","project":"p","region":"us-central1",
        "state":"RUNNABLE","databaseVersion":"POSTGRES_15",
        "settings":{"tier":"db-custom-2-7680","activationPolicy":"ALWAYS",
          "maintenanceWindow":{"kind":"sql#maintenanceWindow","day":2,"hour":15,"updateTrack":"stable"}},
        "scheduledMaintenance":{"startTime":"2026-03-05T15:30:00Z","canDefer":true,"canReschedule":false,
          "scheduleDeadlineTime":"2026-03-14T00:00:00Z"}})");
    ASSERT_TRUE(inst);
    EXPECT_EQ(inst->window_day, 2);  // Tuesday
    EXPECT_EQ(inst->window_hour, 15);
    EXPECT_EQ(inst->update_track, "stable");
    EXPECT_EQ(inst->can_reschedule, false);
    EXPECT_EQ(inst->schedule_deadline, fakes::at("2026-03-14T00:00:00Z"));
    instance_memory memory;
    const auto signals = instance_signals(*inst, "dark-west", now, memory);  // Thursday 16:00
    ASSERT_EQ(signals.size(), 3u) << "serving: the scheduled maintenance and the window, last and next";
    const signal& scheduled = signals[0];
    EXPECT_EQ(scheduled.kind, "db.maintenance");
    EXPECT_EQ(label(scheduled, "which"), "scheduled");
    EXPECT_EQ(scheduled.at, fakes::at("2026-03-05T15:30:00Z")) << "dated at the scheduled start";
    EXPECT_FALSE(scheduled.seen);
    EXPECT_EQ(label(scheduled, "start"), "15:30 UTC");
    EXPECT_EQ(label(scheduled, "end"), "16:30 UTC");
    EXPECT_EQ(label(scheduled, "update_track"), "stable");
    EXPECT_EQ(label(scheduled, "can_reschedule"), "false");
    EXPECT_EQ(label(scheduled, "deadline"), "2026-03-14T00:00:00Z");
    EXPECT_EQ(label(signals[1], "which"), "window");
    EXPECT_EQ(signals[1].at, fakes::at("2026-03-03T15:00:00Z")) << "Tuesday's window";
    EXPECT_EQ(label(signals[1], "end"), "16:00 UTC");
    EXPECT_EQ(signals[2].at, fakes::at("2026-03-10T15:00:00Z")) << "next Tuesday's";
    EXPECT_EQ(label(signals[2], "can_reschedule"), "");

    // A maintenance scheduled days ahead is dated then: ranking counts it only from then.
    auto ahead = *inst;
    ahead.scheduled_start = fakes::at("2026-03-12T15:00:00Z");
    EXPECT_EQ(instance_signals(ahead, "dark-west", now, memory).at(0).at, fakes::at("2026-03-12T15:00:00Z"));

    EXPECT_FALSE(parse_sql_instance(R"({"name":"inst"})").has_value());
    EXPECT_FALSE(parse_sql_instance("[]").has_value());
}

TEST(cloudsql_instance, a_state_is_dated_when_first_seen_and_running_maintenance_by_the_world_where_it_can) {
    sql_instance inst;
    inst.state = "MAINTENANCE";
    inst.activation_policy = "ALWAYS";
    inst.window_day = 2;  // Tuesday 15:00: not now
    inst.window_hour = 15;
    instance_memory memory;
    auto got = instance_signals(inst, "dark-west", now, memory);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].kind, "db.unavailable");
    EXPECT_EQ(label(got[0], "state"), "MAINTENANCE");
    EXPECT_EQ(got[0].at, now);
    EXPECT_TRUE(got[0].seen) << "the API gives no time for a state";
    const signal& running = got[3];
    EXPECT_EQ(label(running, "which"), "running");
    EXPECT_TRUE(running.seen) << "no scheduled start, outside the window: when first seen";
    EXPECT_EQ(running.at, now);
    EXPECT_EQ(label(running, "end"), "");

    // Read again later: the same facts at the same times (signal_log drops the repeats).
    const auto again = instance_signals(inst, "dark-west", now + 5min, memory);
    ASSERT_EQ(again.size(), 4u);
    EXPECT_EQ(again[0].at, now);
    EXPECT_EQ(again[3].at, now);

    // Inside the window (Thursday 16:00-17:00), running maintenance is dated at its start.
    inst.window_day = 4;
    inst.window_hour = 16;
    got = instance_signals(inst, "dark-west", now + 20min, memory);
    EXPECT_EQ(got.back().at, fakes::at("2026-03-05T16:00:00Z"));
    EXPECT_FALSE(got.back().seen);
    EXPECT_EQ(label(got.back(), "end"), "17:00 UTC");
    // A scheduled start that has passed dates it first.
    inst.scheduled_start = fakes::at("2026-03-05T15:58:00Z");
    got = instance_signals(inst, "dark-west", now + 20min, memory);
    EXPECT_EQ(got.back().at, fakes::at("2026-03-05T15:58:00Z"));

    // Serving again, then stopped by its owner: a new state, a new first sighting.
    inst = sql_instance{};
    inst.state = "RUNNABLE";
    inst.activation_policy = "ALWAYS";
    EXPECT_TRUE(instance_signals(inst, "dark-west", now + 30min, memory).empty());
    inst.activation_policy = "NEVER";
    got = instance_signals(inst, "dark-west", now + 40min, memory);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(label(got[0], "state"), "STOPPED");
    EXPECT_EQ(got[0].at, now + 40min);
}

TEST(cloudsql_instance, the_window_that_began_last) {
    // 2026-03-05 is a Thursday.
    EXPECT_EQ(last_window_start(4, 16, now), fakes::at("2026-03-05T16:00:00Z")) << "starting now";
    EXPECT_EQ(last_window_start(4, 17, now), fakes::at("2026-02-26T17:00:00Z")) << "later today: last week";
    EXPECT_EQ(last_window_start(5, 0, now), fakes::at("2026-02-27T00:00:00Z"));
    EXPECT_EQ(last_window_start(7, 3, now), fakes::at("2026-03-01T03:00:00Z"));
    EXPECT_EQ(last_window_start(1, 0, now), fakes::at("2026-03-02T00:00:00Z"));
}

struct harness {
    fakes::manual_time clock{fakes::at("2026-03-05T16:00:00Z")};
    asio::io_context ioc;
    fakes::scripted_http http;

    template <class Job>
    poll_outcome run(Job& job) {
        std::optional<poll_outcome> out;
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { out = co_await job.run(); }, asio::detached
        );
        fakes::drain(ioc);
        return out.value_or(poll_failure{make_failure(errc::timed_out, "did not finish"), {}, {}});
    }
};

const std::string token_reply = R"({"access_token":"ya29.one","expires_in":3599,"token_type":"Bearer"})";

std::string series(std::initializer_list<std::pair<const char*, double>> points) {
    json out = {{"points", json::array()}};
    for (const auto& [at, v] : points) {
        out["points"].push_back({{"interval", {{"endTime", at}}}, {"value", {{"doubleValue", v}}}});
    }
    return json{{"timeSeries", {out}}}.dump();
}

struct cloudsql_rig : harness {
    google::credentials creds{ioc.get_executor(), http, google::credential_settings{}, log::discard()};
    std::vector<poll_job> jobs;

    cloudsql_rig() {
        clock.advance(500ms);  // now is 16:00:00.5
        config c;
        c.instance = "dark-west";
        google::config g;
        g.project = "acme";
        jobs = poll_jobs(
            http, creds, c, g, {{"cloudsql.googleapis.com/database/cpu/utilization", "db.cpu", "REDUCE_MAX"}}
        );
    }
    void token() { http.push_reply(200, token_reply, {{"metadata-flavor", "Google"}}); }
};

TEST(CloudSqlJobs, PointsBecomeSignalsOnceOldestFirstAcrossPages) {
    cloudsql_rig r;
    r.token();
    auto page1 = json::parse(series({{"2026-03-05T15:59:00Z", 0.97}, {"2026-03-05T15:58:00Z", 0.95}}));
    page1["nextPageToken"] = "p/2+";
    r.http.push_reply(200, page1.dump());
    r.http.push_reply(200, series({{"2026-03-05T15:57:00Z", 0.93}}));
    auto first = r.run(r.jobs[0]);
    ASSERT_TRUE(first);
    ASSERT_EQ(first->signals.size(), 3u);
    EXPECT_EQ(first->signals[0].value, 0.93);
    EXPECT_EQ(first->signals[2].value, 0.97);
    EXPECT_EQ(first->signals[2].at, fakes::at("2026-03-05T15:59:00Z"));
    EXPECT_EQ(*first->signals[0].find("instance"), "dark-west");
    EXPECT_EQ(first->signals[0].source, "cloudsql");
    EXPECT_NE(r.http.calls[2].url.find("&pageToken=p%2F2%2B"), std::string::npos);
    EXPECT_NE(r.http.calls[1].url.find("interval.endTime=2026-03-05T15%3A59%3A00.000Z"), std::string::npos)
        << "the last whole minute before now (16:00:00.5)";
    EXPECT_EQ(r.http.calls[1].headers.at("Authorization"), "Bearer ya29.one");
    // The next poll sees the same points and one new: only the new one is handed over.
    r.http.push_reply(200, series({{"2026-03-05T16:00:00Z", 0.99}, {"2026-03-05T15:59:00Z", 0.97}}));
    auto second = r.run(r.jobs[0]);
    ASSERT_TRUE(second);
    ASSERT_EQ(second->signals.size(), 1u);
    EXPECT_EQ(second->signals[0].value, 0.99);
    // No data is no signal, not a zero.
    r.http.push_reply(200, "{}");
    auto third = r.run(r.jobs[0]);
    ASSERT_TRUE(third);
    EXPECT_TRUE(third->signals.empty());
}

TEST(CloudSqlJobs, TheQueryNamesOneMetricAndTheInstanceWithAWindowEndingNow) {
    config c;
    c.instance = "dark-west";
    google::config g;
    g.project = "acme";
    const auto w = monitoring_window(c, fakes::at("2026-03-05T16:01:30Z"), std::nullopt);
    const auto url = time_series_url(c, g, default_metrics()[0], w);
    EXPECT_EQ(
        url,
        "https://monitoring.googleapis.com/v3/projects/acme/timeSeries?filter="
        "metric.type%3D%22cloudsql.googleapis.com%2Fdatabase%2Fcpu%2Futilization%22%20AND%20"
        "resource.labels.database_id%3D%22acme%3Adark-west%22"
        "&interval.startTime=2026-03-05T15%3A45%3A00.000Z&interval.endTime=2026-03-05T16%3A00%3A00.000Z"
        "&aggregation.alignmentPeriod=60s&aggregation.perSeriesAligner=ALIGN_MEAN"
        "&aggregation.crossSeriesReducer=REDUCE_MAX&aggregation.groupByFields=resource.label.database_id"
        "&view=FULL"
    );
}

TEST(CloudSqlJobs, TheFirstReadLooksBackTheLookbackLaterOnesReReadTheTrailingWindow) {
    config c;  // lookback 15m, reread 10m
    const wall_time t = fakes::at("2026-03-05T16:00:00Z");
    auto w = monitoring_window(c, t + 1min + 30s, std::nullopt);
    EXPECT_EQ(w.end, t);
    EXPECT_EQ(w.start, t - 15min);
    w = monitoring_window(c, t + 2min + 30s, t);
    EXPECT_EQ(w.end, t + 1min);
    EXPECT_EQ(w.start, t - 10min) << "reread before the last read's end";
    w = monitoring_window(c, t + 5min, t);
    EXPECT_EQ(w.start, t - 10min) << "after failed reads, from the last complete one";
    w = monitoring_window(c, t + 3h, t);
    EXPECT_EQ(w.start, t + 3h - 1min - 15min) << "after a long failure, no further back than lookback";
    c.reread = 0ms;
    w = monitoring_window(c, t + 2min + 30s, t);
    EXPECT_EQ(w.start, t) << "no re-read: from the last end on";
}

TEST(CloudSqlJobs, ALatePointIsHandedOverOnceWhenItAppearsAtItsOwnTime) {
    cloudsql_rig r;  // 16:00:00.5: reads end at 15:59
    r.token();
    // 15:58 is not visible yet.
    r.http.push_reply(200, series({{"2026-03-05T15:59:00Z", 0.50}, {"2026-03-05T15:57:00Z", 0.40}}));
    auto first = r.run(r.jobs[0]);
    ASSERT_TRUE(first);
    ASSERT_EQ(first->signals.size(), 2u);

    r.clock.advance(1min);  // reads end at 16:00, and re-read from 15:49
    r.http.push_reply(
        200,
        series(
            {{"2026-03-05T16:00:00Z", 0.60},
             {"2026-03-05T15:59:00Z", 0.50},
             {"2026-03-05T15:58:00Z", 0.97},
             {"2026-03-05T15:57:00Z", 0.40}}
        )
    );
    auto second = r.run(r.jobs[0]);
    ASSERT_TRUE(second);
    EXPECT_NE(
        r.http.calls.back().url.find("interval.startTime=2026-03-05T15%3A49%3A00.000Z"), std::string::npos
    ) << r.http.calls.back().url;
    ASSERT_EQ(second->signals.size(), 2u) << "the late point and the new one, nothing twice";
    EXPECT_EQ(second->signals[0].at, fakes::at("2026-03-05T15:58:00Z")) << "dated at its own time";
    EXPECT_EQ(second->signals[0].value, 0.97);
    EXPECT_EQ(second->signals[1].at, fakes::at("2026-03-05T16:00:00Z"));

    // The same answer again: everything in it was handed over.
    r.clock.advance(1min);
    r.http.push_reply(
        200,
        series(
            {{"2026-03-05T16:00:00Z", 0.60}, {"2026-03-05T15:58:00Z", 0.97}, {"2026-03-05T15:57:00Z", 0.40}}
        )
    );
    auto third = r.run(r.jobs[0]);
    ASSERT_TRUE(third);
    EXPECT_TRUE(third->signals.empty());
}

TEST(CloudSqlJobs, AFailedReadHandsNothingOverAndTheNextReadsFromTheLastCompleteOne) {
    cloudsql_rig r;
    r.token();
    r.http.push_reply(200, series({{"2026-03-05T15:59:00Z", 0.50}}));
    ASSERT_TRUE(r.run(r.jobs[0]));
    r.clock.advance(30min);
    r.http.push_reply(503, R"({"error":{"code":503,"message":"later","status":"UNAVAILABLE"}})");
    ASSERT_FALSE(r.run(r.jobs[0]));
    r.http.push_reply(200, series({{"2026-03-05T16:29:00Z", 0.70}, {"2026-03-05T15:59:00Z", 0.50}}));
    auto got = r.run(r.jobs[0]);
    ASSERT_TRUE(got);
    EXPECT_NE(
        r.http.calls.back().url.find("interval.startTime=2026-03-05T16%3A14%3A00.000Z"), std::string::npos
    ) << "30 minutes later: no further back than lookback (15m) "
      << r.http.calls.back().url;
    ASSERT_EQ(got->signals.size(), 1u);
    EXPECT_EQ(got->signals[0].value, 0.70);
}

TEST(CloudSqlJobs, ReadsAMinuteApartHandEachPointOverOnceToTheWindowsEdge) {
    cloudsql_rig r;
    r.token();
    // Every read is answered with a point each minute of the window it asks for, edges
    // included, for 50 reads (within the token's hour): the first window's 16 points, then
    // one new point a read.
    std::size_t handed = 0;
    std::optional<wall_time> last;
    for (int read = 0; read < 50; ++read) {
        const auto w = monitoring_window(config{}, loop::wall_now(), last);
        last = w.end;
        json points = json::array();
        for (wall_time t = w.end; t >= w.start; t -= 1min) {
            points.push_back(
                {{"interval", {{"endTime", format_rfc3339(t)}}}, {"value", {{"doubleValue", 0.5}}}}
            );
        }
        r.http.push_reply(200, json{{"timeSeries", {{{"points", points}}}}}.dump());
        auto got = r.run(r.jobs[0]);
        ASSERT_TRUE(got);
        EXPECT_NE(
            r.http.calls.back().url.find(net::percent_encode(format_rfc3339(w.start))), std::string::npos
        );
        handed += got->signals.size();
        r.clock.advance(1min);
    }
    EXPECT_EQ(handed, 16u + 49u);
}

TEST(cloudsql_handed_over, remembers_points_by_metric_series_and_time_and_forgets_by_time) {
    handed_over h;
    const wall_time t = fakes::at("2026-03-05T16:00:00Z");
    const point a{t, 0.5, R"({"metric":null,"resource":{"database_id":"p:a"}})"};
    point b = a;
    b.series = R"({"metric":null,"resource":{"database_id":"p:b"}})";
    EXPECT_FALSE(h.contains("cpu", a));
    h.remember("cpu", a);
    EXPECT_TRUE(h.contains("cpu", a));
    EXPECT_FALSE(h.contains("cpu", b)) << "another series";
    EXPECT_FALSE(h.contains("memory", a)) << "another metric";
    point later = a;
    later.at = t + 1min;
    h.remember("cpu", later);
    h.forget_before(t + 1min);
    EXPECT_FALSE(h.contains("cpu", a));
    EXPECT_TRUE(h.contains("cpu", later)) << "kept from the bound on";
    // A read every minute, forgetting what is older than 10 minutes: never more than 11 a series.
    handed_over bounded;
    for (int minute = 0; minute < 24 * 60; ++minute) {
        for (int back = 0; back < 15; ++back) {
            bounded.remember("cpu", point{t + std::chrono::minutes{minute - back}, 0, "s"});
        }
        bounded.forget_before(t + std::chrono::minutes{minute} - 10min);
        ASSERT_LE(bounded.size(), 11u) << minute;
    }
}

TEST(CloudSqlJobs, A401DropsTheTokenAnd429sCarryTheirRetryAfter) {
    cloudsql_rig r;
    r.token();
    r.http.push_reply(401, R"({"error":{"code":401,"message":"bad token","status":"UNAUTHENTICATED"}})");
    auto got = r.run(r.jobs[0]);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.detail, "cloud monitoring: 401 UNAUTHENTICATED: bad token");
    r.token();  // a new token is fetched for the next run
    r.http.push_reply(
        429,
        R"({"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}})",
        {{"retry-after", "30"}}
    );
    got = r.run(r.jobs[0]);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().retry_after, std::chrono::milliseconds{30s});
    EXPECT_EQ(r.http.calls.size(), 4u) << "token, 401, token, 429";
}

TEST(CloudSqlJobs, TheInstanceJobReadsStateAndMaintenance) {
    cloudsql_rig r;
    r.token();
    r.http.push_reply(
        200, R"({"name":"dark-west","state":"MAINTENANCE","settings":{"activationPolicy":"ALWAYS"},
        "scheduledMaintenance":{"startTime":"2026-03-05T15:55:00Z"}})"
    );
    auto got = r.run(r.jobs[1]);
    ASSERT_TRUE(got);
    EXPECT_EQ(r.http.calls[1].url, "https://sqladmin.googleapis.com/v1/projects/acme/instances/dark-west");
    ASSERT_EQ(got->signals.size(), 3u);
    EXPECT_EQ(got->signals[0].kind, "db.unavailable");
    EXPECT_EQ(got->signals[1].kind, "db.maintenance");
    EXPECT_EQ(*got->signals[2].find("which"), "running");
    EXPECT_EQ(got->signals[2].at, fakes::at("2026-03-05T15:55:00Z"));
    r.http.push_reply(200, "not json");
    got = r.run(r.jobs[1]);
    ASSERT_FALSE(got);
}

/// A context whose redact hook and sinks record what they are given.
struct made {
    asio::io_context ioc;
    prometheus::Registry registry;
    std::vector<std::string> secrets;
    context cx{
        ioc.get_executor(),
        log::discard(),
        registry,
        sinks{[](signal) {}, [](source_status) {}},
        [this](std::string s) { secrets.push_back(std::move(s)); }};
};

const std::string private_key = "-----BEGIN PRIVATE KEY-----\nNOT-A-REAL-KEY\n-----END PRIVATE KEY-----\n";

google::config with_key() {
    google::config g;
    g.project = "acme";
    g.key_file = "/etc/runbookd/google-key.json";
    g.key_json = secret<std::string>{json{
        {"type", "service_account"},
        {"client_email", "runbookd@acme.iam.gserviceaccount.com"},
        {"private_key_id", "kid-42"},
        {"private_key", private_key},
        {"project_id", "acme"}}.dump()};
    return g;
}

config dark_west() {
    config c;
    c.instance = "dark-west";
    return c;
}

TEST(CloudSqlMake, OffWithoutAnInstance) {
    made m;
    EXPECT_EQ(make(config{}, with_key(), m.cx), nullptr);
    EXPECT_TRUE(m.secrets.empty()) << "nothing read, nothing registered";
}

TEST(CloudSqlMake, AKeyFileIsUsedAndItsPrivateKeyRedacted) {
    made m;
    const auto src = make(dark_west(), with_key(), m.cx);  // credentials: auto, and a key file named
    ASSERT_NE(src, nullptr);
    EXPECT_EQ(m.secrets, std::vector<std::string>{private_key});
    EXPECT_EQ(
        src->describe(), "acme:dark-west with the service account runbookd@acme.iam.gserviceaccount.com"
    );
    EXPECT_EQ(src->describe().find("NOT-A-REAL-KEY"), std::string::npos);
}

TEST(CloudSqlMake, WithoutAKeyFileTokensComeFromTheMetadataServer) {
    made m;
    google::config g;
    g.project = "acme";
    const auto src = make(dark_west(), g, m.cx);
    ASSERT_NE(src, nullptr);
    EXPECT_TRUE(m.secrets.empty());
    EXPECT_EQ(src->describe(), "acme:dark-west with the metadata server");
    // Forced to the metadata server, a key file named is not read.
    auto forced = with_key();
    forced.credentials = google::config::credential_kind::metadata;
    EXPECT_EQ(make(dark_west(), forced, m.cx)->describe(), "acme:dark-west with the metadata server");
    EXPECT_TRUE(m.secrets.empty());
}

TEST(CloudSqlMake, AnUnreadableKeyOrCaFileIsAStartUpError) {
    made m;
    auto g = with_key();
    g.credentials = google::config::credential_kind::key_file;
    g.key_json = secret<std::string>{"{not json"};
    try {
        make(dark_west(), g, m.cx);
        ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "google.key_file: the key file is not JSON");
    }
    g = with_key();
    g.ca_file = "/nonexistent/ca.pem";
    try {
        make(dark_west(), g, m.cx);
        ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_TRUE(
            std::string_view{e.what()}.starts_with("cannot load CA certificates from '/nonexistent/ca.pem'")
        ) << e.what();
    }
    EXPECT_TRUE(m.secrets.empty()) << "the CA is loaded before the key is read";
}

}  // namespace
}  // namespace runbookd::sources::cloudsql
