// The gcp_status source: the pure reading of the status feed (bodies shaped as in
// api-facts §3), its job against scripted answers under manual time, and make().
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "fakes/scripted_http.hpp"
#include "sources/gcp_status/parse.hpp"
#include "sources/gcp_status/source.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <optional>
#include <stdexcept>

namespace runbookd::sources::gcp_status {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

const wall_time now = *parse_rfc3339("2026-03-05T16:00:00Z");

std::string label(const signal& s, std::string_view name) {
    const std::string* v = s.find(name);
    return v == nullptr ? "<absent>" : *v;
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

TEST(gcp_status_feed, reads_the_feed_tolerantly) {
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

TEST(gcp_status_feed, open_incidents_of_our_products_and_regions_become_signals) {
    const auto incidents = *parse_status_feed(feed);
    const auto ours =
        incident_signals(incidents, {"cloud sql", "Google Kubernetes Engine"}, {"us-central1"}, now);
    ASSERT_EQ(ours.size(), 2u);  // the closed one is not told; global touches every region
    EXPECT_EQ(ours[0].kind, "gcp.incident");
    EXPECT_EQ(ours[0].source, "gcp_status");
    EXPECT_EQ(ours[0].at, now) << "sampled when seen open: a long outage never ages out";
    EXPECT_TRUE(ours[0].seen) << "the poll's time, not the world's: evidence says 'seen'";
    EXPECT_EQ(label(ours[0], "product"), "Cloud SQL");
    EXPECT_EQ(label(ours[0], "severity"), "high");
    EXPECT_EQ(label(ours[0], "locations"), "us-central1");
    EXPECT_EQ(label(ours[0], "title"), "Cloud SQL instances in us-central1 are unreachable");
    EXPECT_EQ(label(ours[1], "product"), "Google Kubernetes Engine");

    EXPECT_TRUE(incident_signals(incidents, {"Cloud SQL"}, {"europe-west1"}, now).empty());
    EXPECT_TRUE(incident_signals(incidents, {"Pub/Sub"}, {}, now).empty());
    EXPECT_EQ(incident_signals(incidents, {"Cloud SQL"}, {}, now).size(), 1u);  // any region
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

TEST(StatusFeedJob, OpenIncidentsOfOurProductsNoTokenSent) {
    harness h;
    config s;
    s.url = "https://127.0.0.1:9/incidents.json";
    s.products = {"Cloud SQL"};
    auto jobs = poll_jobs(h.http, s, 10s);
    h.http.push_reply(
        200, R"([{"id":"a","external_desc":"SQL down","affected_products":[{"title":"Cloud SQL"}],
        "currently_affected_locations":[{"id":"us-central1"}],"begin":"2026-03-05T15:00:00+00:00"},
        {"id":"b","external_desc":"BQ slow","affected_products":[{"title":"BigQuery"}]}])"
    );
    auto got = h.run(jobs[0]);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->signals.size(), 1u);
    EXPECT_EQ(got->signals[0].subject, "a");
    EXPECT_EQ(h.http.calls[0].headers.count("Authorization"), 0u);
    h.http.push(net::transport_failure{
        make_failure(errc::upstream_unavailable, "https://127.0.0.1:9: refused"), false});
    got = h.run(jobs[0]);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.detail, "status feed: https://127.0.0.1:9: refused");
}

/// A context whose redact hook and sinks record what they are given.
struct made {
    asio::io_context ioc;
    prometheus::Registry registry;
    std::vector<std::string> secrets;
    std::vector<source_status> statuses;
    context cx{
        ioc.get_executor(),
        log::discard(),
        registry,
        sinks{[](signal) {}, [this](source_status s) { statuses.push_back(std::move(s)); }},
        [this](std::string s) { secrets.push_back(std::move(s)); }};
};

TEST(GcpStatusMake, OffUnlessEnabledAndDescribedByItsUrl) {
    made m;
    config c;
    EXPECT_EQ(make(c, google::config{}, m.cx), nullptr);
    c.enabled = true;
    const auto src = make(c, google::config{}, m.cx);
    ASSERT_NE(src, nullptr);
    EXPECT_EQ(src->describe(), "https://status.cloud.google.com/incidents.json");
    EXPECT_TRUE(m.secrets.empty()) << "the feed is public: no token, no secret";
}

TEST(GcpStatusMake, AnUnreadableCaFileIsAStartUpError) {
    made m;
    config c;
    c.enabled = true;
    google::config g;
    g.ca_file = "/nonexistent/ca.pem";
    try {
        make(c, g, m.cx);
        ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_TRUE(
            std::string_view{e.what()}.starts_with("cannot load CA certificates from '/nonexistent/ca.pem'")
        ) << e.what();
    }
}

TEST(GcpStatusMake, AFeedThatRefusesFailsTheSourceAndStopLeavesTheLoopIdle) {
    made m;
    config c;
    c.enabled = true;
    c.url = "http://127.0.0.1:1/incidents.json";  // nothing listens on port 1
    const auto src = make(c, google::config{}, m.cx);
    ASSERT_NE(src, nullptr);
    src->start();
    // Failing from the start ("waiting for the first feed poll"), then for the feed's reason.
    ASSERT_TRUE(fakes::run_until(
        m.ioc, [&] { return !m.statuses.empty() && m.statuses.back().error.starts_with("status feed: "); }, 5s
    ));
    EXPECT_EQ(m.statuses.back().state, source_state::failing);
    src->stop();
    m.ioc.restart();
    m.ioc.run_for(5s);
    EXPECT_TRUE(m.ioc.stopped()) << "no wait or request outlives stop()";
}

}  // namespace
}  // namespace runbookd::sources::gcp_status
