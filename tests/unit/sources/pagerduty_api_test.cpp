// The pagerduty_api source: the pure reading of PagerDuty's REST answers (shaped as in
// api-facts §1.2), the URLs asked, the reconcile job against scripted answers under manual
// time (pagination, the offset bound, 429, 401, 5xx, malformed and huge bodies), the
// section, and make().
#include "config/config.hpp"
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "fakes/scripted_http.hpp"
#include "sources/pagerduty_api/parse.hpp"
#include "sources/pagerduty_api/source.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <optional>

namespace runbookd::sources::pagerduty_api {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

std::string incident_json(const std::string& id, const std::string& status = "triggered") {
    return R"({"id":")" + id +
           R"(","type":"incident","incident_number":12,"title":"API latency",)"
           R"("status":")" +
           status + R"(","html_url":"https://acme.pagerduty.com/incidents/)" + id +
           R"(",)"
           R"("created_at":"2026-03-05T15:50:00Z","last_status_change_at":"2026-03-05T15:55:00Z",)"
           R"("resolved_at":)" +
           (status == "resolved" ? std::string{R"("2026-03-05T15:58:00Z")"} : "null") +
           R"(,)"
           R"("service":{"id":"PF9KMXH","summary":"API Service"},"priority":{"summary":"P1"},"urgency":"high",)"
           R"("assignments":[{"at":"x","assignee":{"summary":"Ana"}}],)"
           R"("acknowledgements":[{"at":"x","acknowledger":{"summary":"Bo"}}]})";
}

std::string page(const std::vector<std::string>& ids, bool more) {
    std::string out = R"({"incidents":[)";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        out += (i ? "," : "") + incident_json(ids[i]);
    }
    return out + R"(],"limit":100,"offset":0,"more":)" + (more ? "true" : "false") + "}";
}

TEST(PagerDutyApiParse, IncidentPageFieldsAndSkippedEntries) {
    const auto p = parse_incident_page(
        R"({"incidents":[)" + incident_json("PT4KHLK", "acknowledged") +
            R"(,{"id":"bad/../id","status":"triggered"},{"id":"PX1","status":"snoozed"},7],"more":true})",
        100
    );
    ASSERT_TRUE(p) << p.error().detail;
    EXPECT_TRUE(p->more);
    EXPECT_EQ(p->skipped, 3u);
    ASSERT_EQ(p->incidents.size(), 1u);
    const auto& i = p->incidents[0];
    EXPECT_EQ(i.id, "PT4KHLK");
    EXPECT_EQ(i.number, 12);
    EXPECT_EQ(i.status, "acknowledged");
    EXPECT_EQ(i.service_name, "API Service");
    EXPECT_EQ(i.priority, "P1");
    EXPECT_EQ(i.assignees, std::vector<std::string>{"Ana"});
    EXPECT_EQ(i.acknowledged_by, "Bo");
    EXPECT_EQ(i.created_at, parse_rfc3339("2026-03-05T15:50:00Z"));
    EXPECT_FALSE(i.resolved_at);
}

TEST(PagerDutyApiParse, MalformedBodiesAreClearErrors) {
    EXPECT_EQ(
        parse_incident_page("<html>", 10).error().detail,
        "pagerduty api: the incident list is not a JSON object"
    );
    EXPECT_EQ(
        parse_incident_page(R"({"incidents":{}})", 10).error().detail,
        "pagerduty api: the incident list has no \"incidents\" array"
    );
    EXPECT_FALSE(parse_incident(R"({"incident":{"id":"P1"}})"));
    EXPECT_FALSE(parse_alerts(R"({"alerts":null})"));
    EXPECT_FALSE(parse_incident_page(std::string(100000, '['), 10));  // deep nesting: refused, no crash
}

TEST(PagerDutyApiParse, AHugePageIsCappedNotTrusted) {
    std::vector<std::string> ids;
    for (int i = 0; i < 10000; ++i) {
        ids.push_back("P" + std::to_string(i));
    }
    const auto p = parse_incident_page(page(ids, false), 150);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->incidents.size(), 150u);
    EXPECT_EQ(p->skipped, 9850u);
}

TEST(PagerDutyApiParse, FirstAlertSummaryAndDetailsBounded) {
    std::string details;
    for (int i = 0; i < 15; ++i) {
        details += (i ? "," : "") + std::string{"\"k"} + std::to_string(i) + "\":\"v\"";
    }
    auto a = parse_alerts(
        R"({"alerts":[{"summary":"p99 2.3s","body":{"type":"alert_body","details":{"pod":"api-7f","n":3,)" +
        details + R"(}}}],"more":false})"
    );
    ASSERT_TRUE(a);
    ASSERT_TRUE(a->has_value());
    EXPECT_EQ((*a)->summary, "p99 2.3s");
    ASSERT_EQ((*a)->details.size(), max_details);
    EXPECT_EQ((*a)->details[0], (std::pair<std::string, std::string>{"k0", "v"}));
    a = parse_alerts(
        R"({"alerts":[{"summary":"s","body":{"details":")" + std::string(5000, 'x') + R"("}}]})"
    );
    ASSERT_TRUE(a && a->has_value());
    EXPECT_EQ((*a)->details[0].first, "details");
    EXPECT_EQ((*a)->details[0].second.size(), max_detail_value);
    a = parse_alerts(R"({"alerts":[]})");
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->has_value());
}

TEST(PagerDutyApiParse, UrlsAndTheOffsetBound) {
    EXPECT_EQ(
        incidents_url("https://api.pagerduty.com", {"PS 1"}, 200),
        "https://api.pagerduty.com/incidents?statuses%5B%5D=triggered&statuses%5B%5D=acknowledged&"
        "date_range=all&service_ids%5B%5D=PS%201&sort_by=created_at%3Adesc&limit=100&offset=200"
    );
    EXPECT_EQ(alerts_url("https://h", "P1"), "https://h/incidents/P1/alerts?limit=1&offset=0");
    bool cut = false;
    EXPECT_EQ(next_offset(0, true, cut), 100u);
    EXPECT_EQ(next_offset(9800, true, cut), 9900u);  // 9900 + 100 = 10000: allowed
    EXPECT_FALSE(cut);
    EXPECT_FALSE(next_offset(9900, true, cut));  // 10000 + 100 > 10000: PagerDuty would 400
    EXPECT_TRUE(cut);
    cut = false;
    EXPECT_FALSE(next_offset(300, false, cut));
    EXPECT_FALSE(cut);
}

TEST(PagerDutyApiParse, RetryAfterAndErrorText) {
    EXPECT_EQ(retry_after("", "2.5"), 2500ms);
    EXPECT_EQ(retry_after("7", "2"), 7000ms);
    EXPECT_FALSE(retry_after("soon", ""));
    EXPECT_EQ(
        error_text(401, R"({"error":{"message":"Invalid API key\n","code":2006}})"), "401: Invalid API key"
    );
    EXPECT_EQ(error_text(502, "<html>bad gateway</html>"), "502");
}

TEST(PagerDutyApiParse, ReconciliationEventCarriesStateAndTime) {
    auto inc = parse_incident(R"({"incident":)" + incident_json("P1", "resolved") + "}");
    ASSERT_TRUE(inc);
    const auto as_of = *parse_rfc3339("2026-03-05T16:00:00Z");
    const auto ev = reconciliation_event(*inc, as_of, first_alert{"s", {{"k", "v"}}});
    EXPECT_EQ(ev.origin, event_origin::reconciliation);
    EXPECT_EQ(ev.as_of, as_of);
    EXPECT_EQ(ev.type, incident_event_type::resolved);
    EXPECT_EQ(ev.occurred_at, parse_rfc3339("2026-03-05T15:58:00Z"));  // resolved_at
    EXPECT_EQ(ev.incident.status, "resolved");
    EXPECT_EQ(ev.incident.alert_summary, "s");
    EXPECT_EQ(ev.agent, "");
}

// --- the log (GET /log_entries) ----------------------------------------------------------------

std::string log_json(
    const std::string& id,
    const std::string& type,
    const std::string& incident,
    const std::string& at,
    const std::string& extra = ""
) {
    return R"({"id":")" + id + R"(","type":")" + type + R"(","summary":"x","created_at":")" + at +
           R"(","agent":{"id":"PU1","type":"user_reference","summary":"Ana Ops"},)"
           R"("incident":{"id":")" +
           incident + R"(","type":"incident_reference"})" + extra + "}";
}

std::string log_page_json(const std::vector<std::string>& entries, bool more) {
    std::string out = R"({"log_entries":[)";
    for (std::size_t i = 0; i < entries.size(); ++i) {
        out += (i ? "," : "") + entries[i];
    }
    return out + R"(],"limit":100,"offset":0,"more":)" + (more ? "true" : "false") + "}";
}

TEST(PagerDutyApiLog, PageKindsNoteTextAndSkippedEntries) {
    const auto p = parse_log_page(
        log_page_json(
            {log_json(
                 "R1",
                 "annotate_log_entry",
                 "P1",
                 "2026-03-05T15:40:00Z",
                 R"(,"channel":{"type":"note","summary":"Rolled back v41"})"
             ),
             log_json(
                 "R2",
                 "annotate_log_entry",
                 "P1",
                 "2026-03-05T15:41:00Z",
                 R"(,"channel":{"type":"web_trigger","content":"From content"})"
             ),
             log_json(
                 "R3", "annotate_log_entry", "P1", "2026-03-05T15:42:00Z", R"(,"channel":{"type":"api"})"
             ),
             log_json("R4", "acknowledge_log_entry", "P1", "2026-03-05T15:43:00Z"),
             log_json("R5", "unacknowledge_log_entry", "P2", "2026-03-05T15:44:00Z"),
             log_json("R6", "resolve_log_entry", "P3", "2026-03-05T15:45:00Z"),
             log_json("R7", "notify_log_entry", "P1", "2026-03-05T15:46:00Z"),
             log_json("R8", "resolve_log_entry", "../x", "2026-03-05T15:47:00Z"),
             log_json("R9", "resolve_log_entry", "P4", "yesterday"),
             "7"},
            true
        ),
        5
    );
    ASSERT_TRUE(p) << p.error().detail;
    EXPECT_TRUE(p->more);
    EXPECT_EQ(p->read, 10u);
    EXPECT_EQ(p->ignored, 1u);   // notify
    EXPECT_EQ(p->unusable, 3u);  // a bad incident id, a bad time, not an object
    EXPECT_EQ(p->over, 1u);      // R6, past the 5 asked for
    ASSERT_EQ(p->entries.size(), 5u);
    EXPECT_EQ(p->entries[0].kind, log_kind::note);
    EXPECT_EQ(p->entries[0].note, "Rolled back v41");  // channel.summary of a note channel
    EXPECT_EQ(p->entries[1].note, "From content");     // channel.content
    EXPECT_FALSE(p->entries[2].note);                  // not in the entry: asked for
    EXPECT_EQ(p->entries[3].kind, log_kind::acknowledged);
    EXPECT_EQ(p->entries[3].agent, "Ana Ops");
    EXPECT_EQ(p->entries[3].created_at, fakes::at("2026-03-05T15:43:00Z"));
    EXPECT_EQ(p->entries[4].kind, log_kind::unacknowledged);
    EXPECT_EQ(
        parse_log_page(R"({"log_entries":5})", 10).error().detail,
        "pagerduty api: the log entry list has no \"log_entries\" array"
    );
    EXPECT_FALSE(parse_log_page("<html>", 10));
}

TEST(PagerDutyApiLog, DigestKeepsTheLatestStateAndNotePerIncident) {
    log_digest d;
    auto page = parse_log_page(
        log_page_json(
            {log_json("R2", "unacknowledge_log_entry", "P1", "2026-03-05T15:50:00Z"),
             log_json("R1", "acknowledge_log_entry", "P1", "2026-03-05T15:40:00Z"),
             log_json(
                 "R3", "annotate_log_entry", "P1", "2026-03-05T15:41:00Z", R"(,"channel":{"content":"a"})"
             ),
             log_json(
                 "R4", "annotate_log_entry", "P1", "2026-03-05T15:42:00Z", R"(,"channel":{"content":"b"})"
             ),
             log_json("R5", "resolve_log_entry", "P2", "2026-03-05T15:45:00Z")},
            false
        ),
        100
    );
    ASSERT_TRUE(page);
    add_to_digest(d, std::move(page->entries));
    ASSERT_EQ(d.state.size(), 2u);
    EXPECT_EQ(d.state.at("P1").id, "R2");  // newest first or not: the latest wins
    EXPECT_EQ(d.note.at("P1").note, "b");
    EXPECT_EQ(d.state.at("P2").kind, log_kind::resolved);
}

TEST(PagerDutyApiLog, EventsCarryWhoWhenAndTheNote) {
    const auto as_of = fakes::at("2026-03-05T16:00:00Z");
    log_entry e;
    e.id = "R1";
    e.incident_id = "P1";
    e.created_at = fakes::at("2026-03-05T15:45:00Z");
    e.agent = "Ana Ops";
    e.kind = log_kind::resolved;
    auto ev = log_event(e, as_of);
    EXPECT_EQ(ev.origin, event_origin::reconciliation);
    EXPECT_EQ(ev.as_of, as_of);
    EXPECT_EQ(ev.type, incident_event_type::resolved);
    EXPECT_EQ(ev.incident.status, "resolved");
    EXPECT_EQ(ev.occurred_at, e.created_at);  // from the world, not when it was read
    EXPECT_EQ(ev.event_id, "log:R1");
    e.kind = log_kind::unacknowledged;
    ev = log_event(e, as_of);
    EXPECT_EQ(ev.type, incident_event_type::unacknowledged);
    EXPECT_EQ(ev.incident.status, "triggered");
    EXPECT_EQ(ev.agent, "Ana Ops");
    e.kind = log_kind::note;
    e.note = "Rolled back v41";
    ev = log_event(e, as_of);
    EXPECT_EQ(ev.type, incident_event_type::annotated);
    EXPECT_EQ(ev.message, "Rolled back v41");
    EXPECT_FALSE(ev.incident.status);  // not a state: the engine takes it as news
}

TEST(PagerDutyApiLog, NotesAndUrls) {
    auto n = parse_notes(
        R"({"notes":[{"id":"N1","content":"old","created_at":"2026-03-05T15:40:00Z","user":{"summary":"Bo"}},)"
        R"({"id":"N2","content":"new","created_at":"2026-03-05T15:42:00Z","user":{"summary":"Ana"}},)"
        R"({"id":"N3","content":"","created_at":"2026-03-05T15:44:00Z"}]})"
    );
    ASSERT_TRUE(n && n->has_value());
    EXPECT_EQ((*n)->content, "new");
    EXPECT_EQ((*n)->user, "Ana");
    n = parse_notes(R"({"notes":[]})");
    ASSERT_TRUE(n);
    EXPECT_FALSE(n->has_value());
    EXPECT_FALSE(parse_notes(R"({"note":[]})"));
    EXPECT_EQ(notes_url("https://h", "P1"), "https://h/incidents/P1/notes");
    EXPECT_EQ(
        log_entries_url(
            "https://h", fakes::at("2026-03-05T15:00:00Z"), fakes::at("2026-03-05T16:00:00Z"), 100
        ),
        "https://h/log_entries?since=2026-03-05T15%3A00%3A00.000Z&until=2026-03-05T16%3A00%3A00.000Z&"
        "is_overview=true&include%5B%5D=incidents&time_zone=UTC&limit=100&offset=100"
    );
}

// --- maintenance windows -------------------------------------------------------------------------

std::string window_json(const std::string& id, const std::string& start, const std::string& end) {
    return R"({"id":")" + id + R"(","type":"maintenance_window","sequence_number":7,"start_time":")" + start +
           R"(","end_time":")" + end +
           R"(","description":"Postgres 16 upgrade","created_by":{"id":"PUSER1","type":"user_reference"},)"
           R"("html_url":"https://acme.pagerduty.com/maintenance_windows/)" +
           id +
           R"(","services":[{"id":"PDB0001","type":"service_reference","summary":"Postgres"},)"
           R"({"id":"PAPI002","type":"service_reference","summary":"API"}],"teams":[]})";
}

TEST(PagerDutyApiMaintenance, WindowsBecomeSignalsDatedAtTheirStart) {
    const auto p = parse_maintenance_page(
        R"({"maintenance_windows":[)" +
        window_json("PW1", "2026-03-05T15:30:00-05:00", "2026-03-05T22:30:00Z") +
        R"(,{"id":"PW2","start_time":"soon","end_time":"2026-03-05T22:30:00Z"},{"id":"../x"},3],)"
        R"("limit":100,"offset":0,"more":true,"total":null})"
    );
    ASSERT_TRUE(p) << p.error().detail;
    EXPECT_TRUE(p->more);
    EXPECT_EQ(p->skipped, 3u);
    ASSERT_EQ(p->windows.size(), 1u);
    const auto s = maintenance_signal(p->windows[0]);
    EXPECT_EQ(s.kind, "pagerduty.maintenance");
    EXPECT_EQ(s.source, "pagerduty_api");
    EXPECT_EQ(s.subject, "PW1");
    EXPECT_EQ(s.at, fakes::at("2026-03-05T20:30:00Z")) << "start_time, with its offset";
    EXPECT_FALSE(s.seen);
    EXPECT_EQ(*s.find("services"), "PDB0001,PAPI002");
    EXPECT_EQ(*s.find("service_names"), "Postgres, API");
    EXPECT_EQ(*s.find("description"), "Postgres 16 upgrade");
    EXPECT_EQ(*s.find("start"), "20:30 UTC");
    EXPECT_EQ(*s.find("end"), "22:30 UTC");
    EXPECT_EQ(*s.find("url"), "https://acme.pagerduty.com/maintenance_windows/PW1");
    EXPECT_EQ(
        maintenance_windows_url("https://h", 100),
        "https://h/maintenance_windows?filter=open&limit=100&offset=100"
    );
    EXPECT_EQ(
        parse_maintenance_page(R"({"windows":[]})").error().detail,
        "pagerduty api: the maintenance window list has no \"maintenance_windows\" array"
    );
    EXPECT_FALSE(parse_maintenance_page("<html>"));
}

// --- the job -----------------------------------------------------------------------------------

struct harness {
    fakes::manual_time clock{fakes::at("2026-03-05T16:00:00Z")};
    asio::io_context ioc;
    fakes::scripted_http http;
    prometheus::Registry registry;
    std::vector<incident_view> engine_view;
    config cfg = [] {
        config c;
        c.token = secret<std::string>{"u+TOKEN-123"};
        c.url = "https://127.0.0.1:9";
        c.log_entries_per_poll = 0;  // the log's own tests turn it on
        return c;
    }();

    std::optional<poll_job> job;

    poll_outcome run() {
        if (!job) {
            job = reconcile_job(
                http, cfg, [this] { return engine_view; }, registry, log::discard()
            );
        }
        std::optional<poll_outcome> out;
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { out = co_await job->run(); }, asio::detached
        );
        fakes::drain(ioc);
        return out.value_or(poll_failure{make_failure(errc::timed_out, "did not finish"), {}, {}});
    }
};

TEST(PagerDutyApiJob, PaginatesSendsTheTokenAndEmitsWhatTheEngineLacks) {
    harness h;
    h.cfg.alerts = false;
    std::vector<std::string> first;
    for (int i = 0; i < 100; ++i) {
        first.push_back("PA" + std::to_string(i));
    }
    h.http.push_reply(200, page(first, true));
    h.http.push_reply(200, page({"PA99", "PB1"}, false));  // the page shifted: PA99 again
    h.engine_view = {{"PA1", incident_state::triggered, false}, {"PA2", incident_state::acknowledged, false}};
    auto got = h.run();
    ASSERT_TRUE(got) << got.error().error.detail;
    ASSERT_EQ(h.http.calls.size(), 2u);
    EXPECT_EQ(h.http.calls[0].headers["Authorization"], "Token token=u+TOKEN-123");
    EXPECT_EQ(h.http.calls[0].headers["Accept"], "application/vnd.pagerduty+json;version=2");
    EXPECT_NE(h.http.calls[1].url.find("offset=100"), std::string::npos);
    // 101 listed, all triggered; PA1 is known as such: 100 events (PA2 differs: acked here).
    EXPECT_EQ(got->events.size(), 100u);
    for (const auto& ev : got->events) {
        EXPECT_NE(ev.incident.id, "PA1");
        EXPECT_EQ(ev.origin, event_origin::reconciliation);
        EXPECT_EQ(ev.as_of, fakes::at("2026-03-05T16:00:00Z"));
    }
}

TEST(PagerDutyApiJob, StopsAtTheOffsetBoundWithTheNewest10000) {
    harness h;
    h.cfg.alerts = false;
    int n = 0;
    for (int p = 0; p < 100; ++p) {
        std::vector<std::string> ids;
        for (int i = 0; i < 100; ++i) {
            ids.push_back("P" + std::to_string(n++));
        }
        h.http.push_reply(200, page(ids, true));
    }
    auto got = h.run();
    ASSERT_TRUE(got);
    EXPECT_EQ(h.http.calls.size(), 100u);  // offsets 0..9900; 10000 is never asked
    EXPECT_NE(h.http.calls.back().url.find("offset=9900"), std::string::npos);
    EXPECT_EQ(got->events.size(), 10000u);
    const auto text = h.registry.Collect();
    bool truncated = false;
    for (const auto& f : text) {
        if (f.name == "runbookd_pagerduty_api_truncated_total") {
            truncated = f.metric.at(0).counter.value == 1;
        }
    }
    EXPECT_TRUE(truncated);
}

TEST(PagerDutyApiJob, ErrorsBecomeClearFailures) {
    harness h;
    h.http.push_reply(
        429, R"({"error":{"message":"Rate Limit Exceeded","code":2020}})", {{"ratelimit-reset", "12"}}
    );
    auto got = h.run();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.detail, "pagerduty api: rate limited (429: Rate Limit Exceeded)");
    EXPECT_EQ(got.error().retry_after, 12000ms);

    h.http.push_reply(401, R"({"error":{"message":"Invalid API key","code":2006}})");
    got = h.run();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.detail, "pagerduty api: the API key was refused (401: Invalid API key)");
    EXPECT_FALSE(got.error().error.retryable);
    EXPECT_EQ(got.error().error.detail.find("TOKEN"), std::string::npos);

    h.http.push_reply(503, "<html>unavailable</html>");
    got = h.run();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.detail, "pagerduty api: listing incidents: 503");

    h.http.push_reply(200, R"({"incidents": "many"})");
    got = h.run();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.detail, "pagerduty api: the incident list has no \"incidents\" array");

    h.http.push(net::transport_failure{
        make_failure(errc::too_large, "https://127.0.0.1:9: body over 8388608 bytes"), true});
    got = h.run();
    ASSERT_FALSE(got);
    EXPECT_EQ(
        got.error().error.detail,
        "pagerduty api: listing incidents: https://127.0.0.1:9: body over 8388608 bytes"
    );
    EXPECT_EQ(h.http.calls.back().max_body, 8u * 1024 * 1024);

    // The limit used up mid-listing: stop, and wait for the reset.
    h.http.push_reply(200, page({"P1"}, true), {{"ratelimit-remaining", "0"}, {"ratelimit-reset", "30"}});
    got = h.run();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().retry_after, 30000ms);
}

TEST(PagerDutyApiJob, ConfirmsResolutionsThenFetchesAlertsWithinTheBudget) {
    harness h;
    h.cfg.lookups_per_poll = 3;
    h.http.push_reply(200, page({"PN1", "PN2", "PN3"}, false));
    // Open here, not listed: PGONE resolved, PSTILL still open (listed on another page).
    h.engine_view = {
        {"PGONE", incident_state::triggered, false}, {"PSTILL", incident_state::acknowledged, false}};
    h.http.push_reply(200, R"({"incident":)" + incident_json("PGONE", "resolved") + "}");
    h.http.push_reply(200, R"({"incident":)" + incident_json("PSTILL", "acknowledged") + "}");
    h.http.push_reply(200, R"({"alerts":[{"summary":"disk full","body":{"details":{"host":"db1"}}}]})");
    auto got = h.run();
    ASSERT_TRUE(got) << got.error().error.detail;
    ASSERT_EQ(h.http.calls.size(), 4u);  // list, 2 lookups, 1 alert: the budget of 3 spent
    EXPECT_NE(h.http.calls[3].url.find("/incidents/PN1/alerts"), std::string::npos);
    ASSERT_EQ(got->events.size(), 4u);
    EXPECT_EQ(got->events[0].incident.id, "PGONE");
    EXPECT_EQ(got->events[0].type, incident_event_type::resolved);
    EXPECT_EQ(got->events[1].incident.id, "PN1");
    EXPECT_EQ(got->events[1].incident.alert_summary, "disk full");
    EXPECT_FALSE(got->events[2].incident.alert_summary);
}

TEST(PagerDutyApiJob, ALookupRateLimitedEndsTheLookupsNotThePoll) {
    harness h;
    h.http.push_reply(200, page({"PN1", "PN2"}, false));
    h.http.push_reply(429, "", {{"retry-after", "5"}});
    auto got = h.run();
    ASSERT_TRUE(got);
    EXPECT_EQ(h.http.calls.size(), 2u);
    EXPECT_EQ(got->events.size(), 2u);
}

TEST(PagerDutyApiJob, AnIncidentWithoutAlertsIsAskedOnce) {
    harness h;
    h.http.push_reply(200, page({"PN1"}, false));
    h.http.push_reply(200, R"({"alerts":[],"more":false})");
    auto got = h.run();
    ASSERT_TRUE(got);
    EXPECT_EQ(h.http.calls.size(), 2u);
    h.engine_view = {{"PN1", incident_state::triggered, false}};
    h.http.push_reply(200, page({"PN1"}, false));
    got = h.run();
    ASSERT_TRUE(got);
    EXPECT_EQ(h.http.calls.size(), 3u);  // the listing only
    EXPECT_TRUE(got->events.empty());    // nothing differs from the engine's view
}

TEST(PagerDutyApiJob, TheLogTellsNotesAndResolutionsOnceWithinItsWindow) {
    harness h;
    h.cfg.alerts = false;
    h.cfg.log_entries_per_poll = 1000;
    h.cfg.log_lookback = 1h;
    // PN1 open and acknowledged there, triggered here; PGONE open here, not listed;
    // PNOTE open both sides, a note whose text must be asked for; PNEW unknown here.
    h.engine_view = {
        {"PN1", incident_state::triggered, false},
        {"PGONE", incident_state::triggered, false},
        {"PNOTE", incident_state::triggered, false}};
    std::string listing = R"({"incidents":[)" + incident_json("PN1", "acknowledged") + "," +
                          incident_json("PNOTE") + "," + incident_json("PNEW") + R"(],"more":false})";
    h.http.push_reply(200, listing);
    h.http.push_reply(
        200,
        log_page_json(
            {log_json("R1", "acknowledge_log_entry", "PN1", "2026-03-05T15:50:00Z"),
             log_json("R2", "resolve_log_entry", "PGONE", "2026-03-05T15:52:00Z"),
             log_json(
                 "R3", "annotate_log_entry", "PNOTE", "2026-03-05T15:53:00Z", R"(,"channel":{"type":"api"})"
             ),
             log_json(
                 "R4",
                 "annotate_log_entry",
                 "PNEW",
                 "2026-03-05T15:54:00Z",
                 R"(,"channel":{"type":"note","summary":"Paging DBA"})"
             ),
             log_json(
                 "R5",
                 "annotate_log_entry",
                 "PELSE",
                 "2026-03-05T15:55:00Z",
                 R"(,"channel":{"type":"note","summary":"not ours"})"
             ),
             log_json("R6", "notify_log_entry", "PN1", "2026-03-05T15:56:00Z")},
            false
        )
    );
    h.http.push_reply(
        200, R"({"notes":[{"id":"N1","content":"Rolled back v41","created_at":"2026-03-05T15:53:00Z"}]})"
    );
    auto got = h.run();
    ASSERT_TRUE(got) << got.error().error.detail;
    ASSERT_EQ(h.http.calls.size(), 3u);  // listing, log, PNOTE's notes: no lookup of PGONE
    EXPECT_NE(
        h.http.calls[1].url.find("/log_entries?since=2026-03-05T15%3A00%3A00.000Z&until=2026-03-05T16%3A00"),
        std::string::npos
    ) << h.http.calls[1].url;
    EXPECT_NE(h.http.calls[2].url.find("/incidents/PNOTE/notes"), std::string::npos);
    std::vector<std::string> told;
    for (const auto& ev : got->events) {
        told.push_back(ev.incident.id + ":" + std::string{to_string(ev.type)});
    }
    EXPECT_EQ(
        told,
        (std::vector<std::string>{
            "PGONE:resolved", "PN1:acknowledged", "PNEW:triggered", "PNEW:annotated", "PNOTE:annotated"})
    );
    EXPECT_EQ(got->events[0].occurred_at, fakes::at("2026-03-05T15:52:00Z"));  // when it resolved
    EXPECT_EQ(got->events[1].agent, "Ana Ops");                                // who, from the log
    EXPECT_EQ(got->events[3].message, "Paging DBA");                           // the text in the entry
    EXPECT_EQ(got->events[4].message, "Rolled back v41");                      // asked for

    // The next reconciliation reads from this one's as_of (a minute of overlap).
    h.clock.advance(3min);
    h.engine_view = {
        {"PN1", incident_state::acknowledged, false},
        {"PNOTE", incident_state::triggered, false},
        {"PNEW", incident_state::triggered, false}};
    h.http.push_reply(200, listing);
    h.http.push_reply(200, log_page_json({}, false));
    got = h.run();
    ASSERT_TRUE(got);
    EXPECT_NE(
        h.http.calls[4].url.find("since=2026-03-05T15%3A59%3A00.000Z&until=2026-03-05T16%3A03"),
        std::string::npos
    ) << h.http.calls[4].url;
    EXPECT_TRUE(got->events.empty());
    double ignored = 0;
    for (const auto& f : h.registry.Collect()) {
        if (f.name == "runbookd_pagerduty_api_skipped_total") {
            for (const auto& m : f.metric) {
                if (m.label.at(0).value == "ignored_log_entry") {
                    ignored = m.counter.value;
                }
            }
        }
    }
    EXPECT_EQ(ignored, 1);
}

TEST(PagerDutyApiJob, TheLogIsCappedAndAFailedReadIsReadAgain) {
    harness h;
    h.cfg.alerts = false;
    h.cfg.log_entries_per_poll = 150;
    h.http.push_reply(200, page({}, false));
    std::vector<std::string> entries;
    for (int i = 0; i < 100; ++i) {
        entries.push_back(log_json("R" + std::to_string(i), "notify_log_entry", "P1", "2026-03-05T15:50:00Z")
        );
    }
    h.http.push_reply(200, log_page_json(entries, true));
    h.http.push_reply(200, log_page_json(entries, true));  // 50 over the cap
    auto got = h.run();
    ASSERT_TRUE(got);
    EXPECT_EQ(h.http.calls.size(), 3u);  // stopped at the cap, not at the end of the log
    double truncated = 0;
    for (const auto& f : h.registry.Collect()) {
        if (f.name == "runbookd_pagerduty_api_truncated_total") {
            truncated = f.metric.at(0).counter.value;
        }
    }
    EXPECT_EQ(truncated, 1);

    // A failed read (500) does not move the window: the next reconciliation reads it again.
    h.clock.advance(3min);
    h.http.push_reply(200, page({}, false));
    h.http.push_reply(500, "oops");
    got = h.run();
    ASSERT_TRUE(got);  // the listing reconciled: the poll is not failed by the log
    h.clock.advance(3min);
    h.http.push_reply(200, page({}, false));
    h.http.push_reply(200, log_page_json({}, false));
    got = h.run();
    ASSERT_TRUE(got);
    EXPECT_NE(h.http.calls.back().url.find("since=2026-03-05T15%3A59%3A00.000Z"), std::string::npos)
        << h.http.calls.back().url;
    // A 429 on the log ends the lookups too.
    h.clock.advance(3min);
    h.engine_view = {{"PGONE", incident_state::triggered, false}};
    h.http.push_reply(200, page({}, false));
    h.http.push_reply(429, "", {{"retry-after", "5"}});
    const std::size_t before = h.http.calls.size();
    got = h.run();
    ASSERT_TRUE(got);
    EXPECT_EQ(h.http.calls.size(), before + 2);  // no lookup of PGONE
}

// --- the section and make() ---------------------------------------------------------------------

runbookd::config::load_result with(std::string_view section) {
    return runbookd::config::parse(
        "pagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\npagerduty_api:\n" +
            std::string{section},
        "inline.yaml",
        [](std::string_view name) -> std::optional<std::string> {
            if (name == "PD_API_TOKEN") {
                return std::string{"ENV-TOKEN-777"};
            }
            return std::nullopt;
        }
    );
}

TEST(PagerDutyApiConfig, KeysDefaultsAndProblems) {
    auto r = with(
        "  token: ${PD_API_TOKEN}\n  interval: 1m\n  service_ids: [PS1]\n  lookups_per_poll: 5\n  alerts: "
        "false\n"
    );
    ASSERT_TRUE(r.ok()) << (r.problems.empty() ? std::string{} : r.problems[0].to_string());
    const auto& c = r.value->pagerduty_api;
    EXPECT_TRUE(c.enabled());
    EXPECT_EQ(c.token.reveal(), "ENV-TOKEN-777");
    EXPECT_EQ(c.url, "https://api.pagerduty.com");
    EXPECT_EQ(c.interval, 1min);
    EXPECT_EQ(c.service_ids, std::vector<std::string>{"PS1"});
    EXPECT_EQ(c.lookups_per_poll, 5u);
    EXPECT_FALSE(c.alerts);
    EXPECT_EQ(c.log_entries_per_poll, 1000u);
    EXPECT_EQ(c.log_lookback, 1h);
    r = with("  token: x\n  log_entries_per_poll: 0\n  log_lookback: 15m\n");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value->pagerduty_api.log_entries_per_poll, 0u);
    EXPECT_EQ(r.value->pagerduty_api.log_lookback, 15min);

    r = with("  token: x\n  interval: 500ms\n  tokn: y\n");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.problems.size(), 2u);
    r = with("  url: https://pd.example.com\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.problems[0].to_string().find("without a token"), std::string::npos)
        << r.problems[0].to_string();
    r = with("  token: ${UNSET_TOKEN}\n");
    ASSERT_FALSE(r.ok());
    for (const auto& p : r.problems) {
        EXPECT_EQ(p.to_string().find("ENV-TOKEN"), std::string::npos);
    }
}

TEST(PagerDutyApiMake, OffWithoutATokenAndTheTokenIsRedacted) {
    asio::io_context ioc;
    prometheus::Registry registry;
    std::vector<std::string> secrets;
    context cx{
        ioc.get_executor(),
        log::discard(),
        registry,
        sinks{[](signal) {}, [](source_status) {}},
        [&](std::string s) { secrets.push_back(std::move(s)); }};
    config c;
    EXPECT_EQ(make(c, cx), nullptr);
    c.token = secret<std::string>{"TOKEN-XYZ"};
    auto s = make(c, cx);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->describe(), "https://api.pagerduty.com every 3m (API token)");
    EXPECT_EQ(secrets, std::vector<std::string>{"TOKEN-XYZ"});
}

TEST(PagerDutyApiMaintenance, TheJobReadsOngoingAndSoonUpcomingWindowsPageByPage) {
    harness h;  // 16:00
    const auto jobs = poll_jobs(
        h.http, h.cfg, [] { return std::vector<incident_view>{}; }, h.registry, log::discard()
    );
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[1].name, "maintenance");
    EXPECT_EQ(jobs[1].interval, h.cfg.interval);
    const auto run = [&] {
        std::optional<poll_outcome> out;
        asio::co_spawn(
            h.ioc, [&]() -> asio::awaitable<void> { out = co_await jobs[1].run(); }, asio::detached
        );
        fakes::drain(h.ioc);
        return out.value_or(poll_failure{make_failure(errc::timed_out, "did not finish"), {}, {}});
    };
    h.http.push_reply(
        200,
        R"({"maintenance_windows":[)" +
            window_json("PONGOING", "2026-03-05T15:40:00Z", "2026-03-05T17:00:00Z") +
            R"(],"limit":100,"offset":0,"more":true})"
    );
    h.http.push_reply(
        200,
        R"({"maintenance_windows":[)" + window_json("PSOON", "2026-03-05T16:45:00Z", "2026-03-05T18:00:00Z") +
            "," + window_json("PNEXTWEEK", "2026-03-12T16:00:00Z", "2026-03-12T18:00:00Z") +
            R"(],"limit":100,"offset":100,"more":false})"
    );
    auto got = run();
    ASSERT_TRUE(got) << got.error().error.detail;
    ASSERT_EQ(h.http.calls.size(), 2u);
    EXPECT_EQ(h.http.calls[0].url, "https://127.0.0.1:9/maintenance_windows?filter=open&limit=100&offset=0");
    EXPECT_EQ(h.http.calls[0].headers["Authorization"], "Token token=u+TOKEN-123");
    EXPECT_NE(h.http.calls[1].url.find("offset=100"), std::string::npos);
    ASSERT_EQ(got->signals.size(), 2u) << "next week's window is beyond the horizon";
    EXPECT_EQ(got->signals[0].subject, "PONGOING");
    EXPECT_EQ(got->signals[0].at, fakes::at("2026-03-05T15:40:00Z"));
    EXPECT_EQ(got->signals[1].subject, "PSOON");
    EXPECT_EQ(got->signals[1].at, fakes::at("2026-03-05T16:45:00Z")) << "counted by ranking from then";
    EXPECT_TRUE(got->events.empty());

    // A refused key, a 429 and an unreadable body fail the job, as the incident listing does.
    h.http.push_reply(401, R"({"error":{"message":"Invalid API key","code":2006}})");
    got = run();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.detail, "pagerduty api: the API key was refused (401: Invalid API key)");
    h.http.push_reply(
        429, R"({"error":{"message":"Rate Limit Exceeded","code":2020}})", {{"retry-after", "7"}}
    );
    got = run();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().retry_after, std::chrono::milliseconds{7s});
    h.http.push_reply(503, "busy");
    got = run();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.detail, "pagerduty api: listing maintenance windows: 503");
    h.http.push_reply(200, R"({"maintenance_windows":{}})");
    EXPECT_FALSE(run());
}

TEST(PagerDutyApiMaintenance, OffByConfiguration) {
    harness h;
    h.cfg.maintenance_windows = false;
    const auto jobs = poll_jobs(
        h.http, h.cfg, [] { return std::vector<incident_view>{}; }, h.registry, log::discard()
    );
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs[0].name, "reconcile");
}

}  // namespace
}  // namespace runbookd::sources::pagerduty_api
