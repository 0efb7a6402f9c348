// The cloudsql source: the pure reading of Cloud Monitoring pages and Cloud SQL Admin
// instances (bodies shaped as in api-facts §3), its jobs against scripted answers under
// manual time, and make().
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "fakes/scripted_http.hpp"
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
        "scheduledMaintenance":{"startTime":"2026-03-05T15:30:00Z","canReschedule":true}})");
    ASSERT_TRUE(inst);
    EXPECT_EQ(inst->window_day, 2);  // Tuesday
    EXPECT_EQ(inst->window_hour, 15);
    EXPECT_EQ(inst->update_track, "stable");
    const auto signals = instance_signals(*inst, "p:inst", now);
    ASSERT_EQ(signals.size(), 1u);  // serving, maintenance started 30 min ago
    EXPECT_EQ(signals[0].kind, "db.maintenance");
    EXPECT_EQ(signals[0].at, *parse_rfc3339("2026-03-05T15:30:00Z"));
    EXPECT_EQ(label(signals[0], "start"), "15:30 UTC");
    EXPECT_EQ(label(signals[0], "end"), "16:30 UTC");

    // In maintenance; stopped by its owner; maintenance next week is not told yet.
    auto down = *inst;
    down.state = "MAINTENANCE";
    down.scheduled_start = *parse_rfc3339("2026-03-12T15:00:00Z");
    const auto in_maintenance = instance_signals(down, "p:inst", now);
    ASSERT_EQ(in_maintenance.size(), 1u);
    EXPECT_EQ(in_maintenance[0].kind, "db.unavailable");
    EXPECT_EQ(label(in_maintenance[0], "state"), "MAINTENANCE");
    auto stopped = *inst;
    stopped.activation_policy = "NEVER";
    stopped.scheduled_start.reset();
    EXPECT_EQ(label(instance_signals(stopped, "p:inst", now).at(0), "state"), "STOPPED");
    EXPECT_FALSE(parse_sql_instance(R"({"name":"inst"})").has_value());
    EXPECT_FALSE(parse_sql_instance("[]").has_value());
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
    const auto url = time_series_url(c, g, default_metrics()[0], fakes::at("2026-03-05T16:00:00Z"));
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
    ASSERT_EQ(got->signals.size(), 2u);
    EXPECT_EQ(got->signals[0].kind, "db.unavailable");
    EXPECT_EQ(got->signals[1].kind, "db.maintenance");
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
