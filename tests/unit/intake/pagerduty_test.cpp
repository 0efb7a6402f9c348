#include "intake/content_type.hpp"
#include "intake/pagerduty/handler.hpp"
#include "intake/pagerduty/parse.hpp"
#include "intake/pagerduty/signature.hpp"
#include "webhook_support.hpp"

#include <gtest/gtest.h>

namespace runbookd::intake::pagerduty {
namespace {

namespace http = boost::beast::http;

using test_support::secrets;

std::string fixture(const std::string& name) {
    return test_support::fixture("pagerduty", name);
}

TEST(signature, accepts_a_valid_v1_signature) {
    const std::string body = R"({"event":{}})";
    EXPECT_EQ(verify_signature(sign("s1", body), body, secrets({"s1"})), signature_check::valid);
}

TEST(signature, matches_the_documented_algorithm) {
    // HMAC-SHA256("secret", "body") hex, computed independently with openssl dgst.
    EXPECT_EQ(sign("secret", "body"), "v1=dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355");
}

TEST(signature, accepts_any_of_several_signatures_and_secrets) {
    const std::string body = "payload";
    const auto header = "v1=" + std::string(64, '0') + ", " + sign("new", body);
    EXPECT_EQ(verify_signature(header, body, secrets({"old", "new"})), signature_check::valid);
    EXPECT_EQ(verify_signature(sign("old", body), body, secrets({"old", "new"})), signature_check::valid);
}

TEST(signature, is_case_insensitive_in_hex) {
    auto sig = sign("s", "b");
    for (auto& c : sig) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    sig[0] = 'v';
    EXPECT_EQ(verify_signature(sig, "b", secrets({"s"})), signature_check::valid);
}

TEST(signature, classifies_missing_malformed_and_mismatched) {
    EXPECT_EQ(verify_signature("", "b", secrets({"s"})), signature_check::missing);
    EXPECT_EQ(verify_signature("  ", "b", secrets({"s"})), signature_check::missing);
    EXPECT_EQ(verify_signature("sha256=abc", "b", secrets({"s"})), signature_check::malformed);
    EXPECT_EQ(verify_signature("v1=xyz", "b", secrets({"s"})), signature_check::malformed);
    EXPECT_EQ(verify_signature(sign("other", "b"), "b", secrets({"s"})), signature_check::mismatch);
    EXPECT_EQ(verify_signature(sign("s", "b"), "b ", secrets({"s"})), signature_check::mismatch);
    EXPECT_EQ(verify_signature(sign("s", "b"), "b", {}), signature_check::mismatch);
}

TEST(parse, reads_a_triggered_incident) {
    const auto r = parse_webhook(fixture("incident_triggered.json"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->kind, payload_kind::incident);
    const auto& ev = *r->event;
    EXPECT_EQ(ev.type, incident_event_type::triggered);
    EXPECT_EQ(ev.event_id, "5ac64822-4adc-4fda-ade0-410becf0de4f");
    EXPECT_EQ(ev.agent, "Tenex Engineer");
    EXPECT_EQ(ev.incident.id, "PGR0VU2");
    EXPECT_EQ(ev.incident.number, 2);
    EXPECT_EQ(ev.incident.title, "A little bump in the road");
    EXPECT_EQ(ev.incident.service_id, "PF9KMXH");
    EXPECT_EQ(ev.incident.service_name, "API Service");
    EXPECT_EQ(ev.incident.priority, "P1");
    EXPECT_EQ(ev.incident.url, "https://acme.pagerduty.com/incidents/PGR0VU2");
    EXPECT_EQ(ev.incident.created_at, parse_rfc3339("2020-04-09T15:16:27Z"));
    EXPECT_EQ(ev.occurred_at, parse_rfc3339("2020-10-02T18:45:22.169Z"));
    ASSERT_TRUE(ev.incident.assignees);
    EXPECT_EQ(*ev.incident.assignees, std::vector<std::string>{"User 123"});
}

TEST(parse, null_priority_and_unknown_fields_are_fine) {
    const auto r = parse_webhook(fixture("incident_acknowledged_no_priority.json"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->event->type, incident_event_type::acknowledged);
    EXPECT_EQ(r->event->agent, "Jane Doe");
    EXPECT_EQ(r->event->incident.priority, "");
}

TEST(parse, notes_and_status_updates_use_the_incident_reference) {
    auto r = parse_webhook(fixture("incident_annotated.json"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->event->type, incident_event_type::annotated);
    EXPECT_EQ(r->event->incident.id, "PGR0VU2");
    EXPECT_FALSE(r->event->incident.title);
    EXPECT_EQ(r->event->message, "Rolled back bwdserver to the previous image.");

    r = parse_webhook(fixture("incident_status_update_published.json"));
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->event->type, incident_event_type::status_update_published);
    EXPECT_EQ(r->event->message, "We rolled back the deploy; errors are dropping.");
}

TEST(parse, ping_ignored_and_unknown_types) {
    EXPECT_EQ(parse_webhook(fixture("pagey_ping.json"))->kind, payload_kind::ping);
    EXPECT_EQ(parse_webhook(fixture("service_updated.json"))->kind, payload_kind::ignored);
    const auto unknown = parse_webhook(fixture("future_event_type.json"));
    EXPECT_EQ(unknown->kind, payload_kind::unknown);
    EXPECT_EQ(unknown->event_type, "postmortem.published");
}

TEST(parse, malformed_bodies_name_the_problem) {
    const std::pair<std::string, std::string> cases[] = {
        {"not json", "not valid JSON"},
        {"[]", "event"},
        {R"({"event":"x"})", "event"},
        {R"({"event":{"event_type":"incident.triggered"}})", "event.id"},
        {R"({"event":{"id":"1"}})", "event.event_type"},
        {R"({"event":{"id":"1","event_type":"incident.triggered"}})", "event.data"},
        {R"({"event":{"id":"1","event_type":"incident.triggered","data":{"type":"incident"}}})",
         "incident id"},
        {R"({"event":{"id":7,"event_type":"incident.triggered"}})", "event.id"},
    };
    for (const auto& [body, expected] : cases) {
        const auto r = parse_webhook(body);
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().detail.find(expected), std::string::npos) << body << " -> " << r.error().detail;
    }
}

struct handler_test : ::testing::Test {
    prometheus::Registry registry;
    std::vector<incident_event> events;
    webhook_handler handler{
        secrets({"topsecret"}),
        100,
        std::chrono::hours{1},
        [this](incident_event&& ev) { events.push_back(std::move(ev)); },
        log::discard(),
        registry};
    /// The recorded payloads happened on 2020-10-02 between 18:45 and 19:07 UTC.
    wall_time now = *parse_rfc3339("2020-10-02T19:10:00Z");

    net::response post(
        const std::string& body,
        const std::string& sig,
        const std::string& webhook_id = "",
        std::string_view content_type = "application/json"
    ) {
        net::request req{http::verb::post, "/webhooks/pagerduty", 11};
        req.body() = body;
        if (!content_type.empty()) {
            req.set(http::field::content_type, content_type);
        }
        if (!sig.empty()) {
            req.set("X-PagerDuty-Signature", sig);
        }
        if (!webhook_id.empty()) {
            req.set("X-Webhook-Id", webhook_id);
        }
        req.prepare_payload();
        return handler.handle_at(req, now);
    }

    double results(std::string_view result) {
        for (const auto& family : registry.Collect()) {
            if (family.name != "runbookd_webhooks_total") {
                continue;
            }
            for (const auto& m : family.metric) {
                for (const auto& l : m.label) {
                    if (l.name == "result" && l.value == result) {
                        return m.counter.value;
                    }
                }
            }
        }
        return -1;
    }
};

TEST_F(handler_test, an_event_older_than_max_age_is_refused_as_stale_with_a_2xx) {
    const auto body = fixture("incident_triggered.json");  // occurred at 18:45:22.169
    const auto sig = sign("topsecret", body);
    EXPECT_EQ(results("stale"), 0);                    // there from the start
    now = *parse_rfc3339("2020-10-02T19:45:22.170Z");  // one hour and a millisecond later
    const auto res = post(body, sig, "w1");
    // A 2xx: PagerDuty would redeliver anything else but a 4xx, and three 4xx in a row
    // disable the subscription.
    EXPECT_EQ(res.result(), http::status::accepted);
    EXPECT_NE(res.body().find("stale"), std::string::npos) << res.body();
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(results("stale"), 1);
    // A day later, the same (a replay of a captured delivery).
    now = *parse_rfc3339("2020-10-03T19:00:00Z");
    EXPECT_EQ(post(body, sig, "w2").result(), http::status::accepted);
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(results("stale"), 2);
    // At exactly max_age it is still news.
    now = *parse_rfc3339("2020-10-02T19:45:22.169Z");
    EXPECT_EQ(post(body, sig, "w3").result(), http::status::accepted);
    EXPECT_EQ(events.size(), 1u);
    EXPECT_EQ(results("accepted"), 1);
}

TEST_F(handler_test, an_event_without_occurred_at_is_judged_by_nothing_else) {
    const std::string body =
        R"({"event":{"id":"e1","event_type":"incident.triggered","resource_type":"incident",)"
        R"("data":{"id":"P1","type":"incident","status":"triggered","title":"t"}}})";
    EXPECT_EQ(post(body, sign("topsecret", body)).result(), http::status::accepted);
    EXPECT_EQ(events.size(), 1u);
}

TEST_F(handler_test, a_body_that_is_not_json_by_its_content_type_is_415) {
    const auto body = fixture("incident_triggered.json");
    const auto sig = sign("topsecret", body);
    EXPECT_EQ(post(body, sig, "w1", "").result(), http::status::unsupported_media_type);
    EXPECT_EQ(
        post(body, sig, "w2", "application/x-www-form-urlencoded").result(),
        http::status::unsupported_media_type
    );
    EXPECT_EQ(post(body, sig, "w3", "text/plain").result(), http::status::unsupported_media_type);
    EXPECT_EQ(post(body, sig, "w4", "application/jsonx").result(), http::status::unsupported_media_type);
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(results("unsupported_media_type"), 4);
    EXPECT_EQ(post(body, sig, "w5", "Application/JSON ; charset=utf-8").result(), http::status::accepted);
    EXPECT_EQ(events.size(), 1u);
}

TEST(content_type, json_with_or_without_parameters_only) {
    for (const auto* yes :
         {"application/json",
          "APPLICATION/JSON",
          " application/json ",
          "application/json;charset=utf-8",
          "application/json; charset=UTF-8"}) {
        EXPECT_TRUE(is_json_media_type(yes)) << yes;
    }
    for (const auto* no :
         {"",
          "application/jso",
          "application/json-seq",
          "application/x-www-form-urlencoded",
          "text/json",
          "application/problem+json",
          "multipart/form-data"}) {
        EXPECT_FALSE(is_json_media_type(no)) << no;
    }
}

TEST_F(handler_test, accepts_a_signed_page_with_202) {
    const auto body = fixture("incident_triggered.json");
    EXPECT_EQ(post(body, sign("topsecret", body), "w1").result(), http::status::accepted);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].incident.id, "PGR0VU2");
}

TEST_F(handler_test, refuses_with_the_recommended_codes) {
    const auto body = fixture("incident_triggered.json");
    EXPECT_EQ(post(body, "").result(), http::status::bad_request);
    EXPECT_EQ(post(body, "v1=zz").result(), http::status::bad_request);
    EXPECT_EQ(post(body, sign("wrong", body)).result(), http::status::forbidden);
    EXPECT_EQ(post("", sign("topsecret", "")).result(), http::status::bad_request);
    EXPECT_EQ(post("{oops", sign("topsecret", "{oops")).result(), http::status::bad_request);
    EXPECT_TRUE(events.empty());
}

TEST_F(handler_test, a_redelivery_is_accepted_once) {
    const auto body = fixture("incident_triggered.json");
    const auto sig = sign("topsecret", body);
    EXPECT_EQ(post(body, sig, "w1").result(), http::status::accepted);
    EXPECT_EQ(post(body, sig, "w1").result(), http::status::accepted);
    EXPECT_EQ(post(body, sig, "w2").result(), http::status::accepted);  // same event.id, new webhook id
    EXPECT_EQ(events.size(), 1u);
}

TEST_F(handler_test, ping_and_unknown_types_get_2xx_and_reach_nothing) {
    for (const auto* name : {"pagey_ping.json", "service_updated.json", "future_event_type.json"}) {
        const auto body = fixture(name);
        const auto res = post(body, sign("topsecret", body));
        EXPECT_LT(res.result_int(), 300u) << name;
        EXPECT_GE(res.result_int(), 200u) << name;
    }
    EXPECT_TRUE(events.empty());
}

TEST_F(handler_test, rotated_secrets_apply_to_the_next_request) {
    const auto body = fixture("incident_triggered.json");
    handler.set_secrets(secrets({"rotated"}));
    EXPECT_EQ(post(body, sign("topsecret", body)).result(), http::status::forbidden);
    EXPECT_EQ(post(body, sign("rotated", body)).result(), http::status::accepted);
}

TEST(recent_keys, forgets_the_oldest_beyond_capacity) {
    recent_keys ids{2};
    ids.insert("a");
    ids.insert("b");
    ids.insert("c");
    EXPECT_FALSE(ids.contains("a"));
    EXPECT_TRUE(ids.contains("b"));
    EXPECT_TRUE(ids.contains("c"));
    EXPECT_EQ(ids.size(), 2u);
}

}  // namespace
}  // namespace runbookd::intake::pagerduty
