// The pure half of the Google Cloud sources, on bodies shaped as in api-facts §3.
#include "sources/gcp/parse.hpp"

#include <gtest/gtest.h>

namespace runbookd::sources::gcp {
namespace {

const wall_time now = *parse_rfc3339("2026-03-05T16:00:00Z");

std::string label(const signal& s, std::string_view name) {
    const std::string* v = s.find(name);
    return v == nullptr ? "<absent>" : *v;
}

TEST(gcp_time_series, reads_points_newest_first_and_int64_as_a_string) {
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

TEST(gcp_time_series, no_series_is_no_data_and_bad_bodies_are_errors) {
    const auto empty = parse_time_series("{}");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->points.empty());  // "no data", not a zero
    for (std::string_view bad : {"", "[]", "null", "{", "<html>"}) {
        EXPECT_FALSE(parse_time_series(bad).has_value()) << bad;
    }
}

TEST(gcp_cloudsql, reads_state_window_and_scheduled_maintenance) {
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

const char* feed = R"json([
  {"id":"abc","number":"1","begin":"2026-03-05T15:40:00+00:00","modified":"2026-03-05T15:50:00+00:00",
   "external_desc":"Cloud SQL instances in us-central1 are unreachable","severity":"high",
   "status_impact":"SERVICE_OUTAGE","service_name":"Cloud SQL","uri":"incidents/abc",
   "affected_products":[{"title":"Cloud SQL","id":"hV87iK5DcEXKgWU2kDri"}],
   "currently_affected_locations":[{"title":"Iowa (us-central1)","id":"us-central1"}],
   "most_recent_update":{"text":"We are investigating.","status":"SERVICE_OUTAGE","affected_locations":[]}},
  {"id":"old","begin":"2026-02-01T10:00:00+00:00","end":"2026-02-01T12:00:00+00:00",
   "affected_products":[{"title":"Cloud SQL"}],"currently_affected_locations":[]},
  {"id":"gke","begin":"2026-03-05T15:00:00+00:00","end":null,"severity":"medium","external_desc":"GKE control plane errors",
   "uri":"https://status.cloud.google.com/incidents/gke","affected_products":[{"title":"Google Kubernetes Engine"}],
   "currently_affected_locations":[],"most_recent_update":{"affected_locations":[{"title":"Global","id":"global"}]}},
  {"number":"no id: skipped"},
  "not an object"
])json";

TEST(gcp_status, reads_the_feed_tolerantly) {
    const auto incidents = parse_status_feed(feed);
    ASSERT_TRUE(incidents);
    ASSERT_EQ(incidents->size(), 3u);
    const auto& sql = (*incidents)[0];
    EXPECT_TRUE(sql.open);
    EXPECT_EQ(sql.begin, *parse_rfc3339("2026-03-05T15:40:00Z"));
    EXPECT_EQ(sql.products, std::vector<std::string>{"Cloud SQL"});
    EXPECT_EQ(sql.locations, std::vector<std::string>{"us-central1"});
    EXPECT_EQ(sql.url, "https://status.cloud.google.com/incidents/abc");
    EXPECT_FALSE((*incidents)[1].open);
    EXPECT_TRUE((*incidents)[2].open);                                         // "end": null
    EXPECT_EQ((*incidents)[2].locations, std::vector<std::string>{"global"});  // from the latest update
    EXPECT_EQ((*incidents)[2].url, "https://status.cloud.google.com/incidents/gke");
    EXPECT_FALSE(parse_status_feed("{}").has_value());
    EXPECT_FALSE(parse_status_feed("not json").has_value());
}

TEST(gcp_status, open_incidents_of_our_products_and_regions_become_signals) {
    const auto incidents = *parse_status_feed(feed);
    const auto ours =
        incident_signals(incidents, {"cloud sql", "Google Kubernetes Engine"}, {"us-central1"}, now);
    ASSERT_EQ(ours.size(), 2u);  // the closed one is not told; global touches every region
    EXPECT_EQ(ours[0].kind, "gcp.incident");
    EXPECT_EQ(ours[0].source, "gcp_status");
    EXPECT_EQ(ours[0].at, now) << "sampled when seen open: a long outage never ages out";
    EXPECT_EQ(label(ours[0], "product"), "Cloud SQL");
    EXPECT_EQ(label(ours[0], "severity"), "high");
    EXPECT_EQ(label(ours[0], "locations"), "us-central1");
    EXPECT_EQ(label(ours[0], "title"), "Cloud SQL instances in us-central1 are unreachable");
    EXPECT_EQ(label(ours[1], "product"), "Google Kubernetes Engine");

    EXPECT_TRUE(incident_signals(incidents, {"Cloud SQL"}, {"europe-west1"}, now).empty());
    EXPECT_TRUE(incident_signals(incidents, {"Pub/Sub"}, {}, now).empty());
    EXPECT_EQ(incident_signals(incidents, {"Cloud SQL"}, {}, now).size(), 1u);  // any region
}

}  // namespace
}  // namespace runbookd::sources::gcp
