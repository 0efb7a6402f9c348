#include "config/config.hpp"
#include "core/label_matcher.hpp"
#include "intake/alertmanager/handler.hpp"
#include "intake/alertmanager/parse.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace runbookd::intake::alertmanager {
namespace {

namespace http = boost::beast::http;
using json = nlohmann::json;

std::string fixture(const std::string& name) {
    std::ifstream in{"tests/data/alertmanager/" + name};
    EXPECT_TRUE(in) << name;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

label_matcher matcher(std::string_view text) {
    auto m = parse_label_matcher(text);
    EXPECT_TRUE(m.matcher) << text << ": " << m.reason;
    return m.matcher.value_or(label_matcher{});
}

std::map<std::string, service_info, std::less<>> services() {
    std::map<std::string, service_info, std::less<>> out;
    out.emplace("EDITOR", service_info{"Editor", "Saving may fail.", {}, {R"(service="editor")"}});
    out.emplace("WEB", service_info{"Web", "", {}, {R"(team=~"web.*")", R"(env!="staging")"}});
    out.emplace("NOPE", service_info{"Unmatched", "", {}, {}});
    return out;
}

mapping default_mapping() {
    return mapping{routes_from(services()), config{}.priorities, "severity"};
}

// --- label matchers ----------------------------------------------------------------------

TEST(label_matcher, parses_the_four_operators_quoted_or_bare) {
    const label_set labels{{"service", "editor"}, {"env", "prod"}};
    EXPECT_TRUE(matcher(R"(service="editor")").matches(labels));
    EXPECT_TRUE(matcher("service=editor").matches(labels));
    EXPECT_TRUE(matcher(R"( service = "editor" )").matches(labels));
    EXPECT_FALSE(matcher(R"(service!="editor")").matches(labels));
    EXPECT_TRUE(matcher(R"(env=~"prod|canary")").matches(labels));
    EXPECT_FALSE(matcher(R"(env!~"prod|canary")").matches(labels));
    EXPECT_TRUE(matcher(R"(name="a \"quoted\" \\ value")").value == R"(a "quoted" \ value)");
}

TEST(label_matcher, regexes_are_anchored_and_a_missing_label_is_empty) {
    const label_set labels{{"env", "production"}};
    EXPECT_FALSE(matcher(R"(env=~"prod")").matches(labels));  // Alertmanager anchors: ^(?:prod)$
    EXPECT_TRUE(matcher(R"(env=~"prod.*")").matches(labels));
    EXPECT_TRUE(matcher(R"(team="")").matches(labels));
    EXPECT_TRUE(matcher(R"(team!="web")").matches(labels));
    EXPECT_FALSE(matcher(R"(team=~".+")").matches(labels));
}

TEST(label_matcher, refuses_what_is_not_a_matcher_and_says_why) {
    for (const char* bad :
         {"service",
          R"(="x")",
          R"(1abc="x")",
          R"(a-b="x")",
          R"(a=~"(")",
          R"(a="open)",
          R"(a="bad\escape")",
          R"(a=x"y)",
          R"(a~"x")"}) {
        const auto m = parse_label_matcher(bad);
        EXPECT_FALSE(m.matcher) << bad;
        EXPECT_FALSE(m.reason.empty()) << bad;
    }
    EXPECT_FALSE(matches_all({}, {{"a", "b"}}));  // no matchers: never chosen
}

// --- parsing -----------------------------------------------------------------------------

TEST(parse, reads_a_version_4_notification) {
    const auto n = parse_notification(fixture("firing.json"));
    ASSERT_TRUE(n) << n.error().detail;
    EXPECT_EQ(n->version, "4");
    EXPECT_EQ(n->status, "firing");
    EXPECT_EQ(n->receiver, "runbookd");
    EXPECT_EQ(n->group_key, R"({}/{service="editor"}:{alertname="EditorErrors"})");
    EXPECT_EQ(n->external_url, "https://alertmanager.example.com");
    ASSERT_EQ(n->alerts.size(), 2u);
    const auto& a = n->alerts[0];
    EXPECT_EQ(a.fingerprint, "1a30ba71cca2921f");
    EXPECT_EQ(format_rfc3339(*a.starts_at), "2026-12-03T10:00:05.123Z");  // nanoseconds kept to ms
    EXPECT_FALSE(a.ends_at) << "Go's zero time is 'not set'";
    EXPECT_EQ(n->common_labels.size(), 3u);
    EXPECT_EQ(n->group_labels, (label_set{{"alertname", "EditorErrors"}}));
}

TEST(parse, reads_what_alertmanager_0_25_sent_with_max_alerts_1) {
    // Recorded from /usr/bin/prometheus-alertmanager 0.25 (two alerts, max_alerts: 1): the
    // timestamps have 8 fractional digits, and commonLabels are those of the alerts sent.
    const auto n = parse_notification(fixture("alertmanager_0.25_truncated.json"));
    ASSERT_TRUE(n) << n.error().detail;
    EXPECT_EQ(n->truncated_alerts, 1);
    ASSERT_EQ(n->alerts.size(), 1u);
    EXPECT_EQ(format_rfc3339(*n->alerts[0].starts_at), "2026-12-03T12:19:56.746Z");
    const auto t = translate(*n, default_mapping());
    EXPECT_EQ(t.event.incident.title, "s");
    EXPECT_EQ(t.event.incident.url, "http://vm:44891");  // kept; posts link only https:// ones
}

TEST(parse, another_version_is_reported_not_guessed) {
    const auto n = parse_notification(R"({"version":"3","status":"firing"})");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->version, "3");
    EXPECT_TRUE(n->alerts.empty());
}

TEST(parse, names_the_field_that_is_wrong) {
    auto doc = json::parse(fixture("firing.json"));
    const auto error_of = [](const json& d) {
        const auto r = parse_notification(d.dump());
        return r ? std::string{"(parsed)"} : r.error().detail;
    };
    EXPECT_EQ(parse_notification("{oops").error().detail, "body is not valid JSON");
    EXPECT_EQ(parse_notification("[1]").error().detail, "body: expected a JSON object");
    auto d = doc;
    d.erase("version");
    EXPECT_NE(error_of(d).find("version"), std::string::npos);
    d = doc;
    d.erase("groupKey");
    EXPECT_NE(error_of(d).find("groupKey"), std::string::npos);
    d = doc;
    d["status"] = "pending";
    EXPECT_NE(error_of(d).find("status"), std::string::npos);
    d = doc;
    d["alerts"][1]["labels"]["instance"] = 7;
    EXPECT_EQ(error_of(d), "alerts[1].labels.instance: expected a string");
    d = doc;
    d["alerts"][0]["status"] = nullptr;
    EXPECT_NE(error_of(d).find("alerts[0].status"), std::string::npos);
    d = doc;
    d["alerts"] = json::array();
    EXPECT_NE(error_of(d).find("alerts: empty"), std::string::npos);
    d = doc;
    d["commonAnnotations"] = "x";
    EXPECT_NE(error_of(d).find("commonAnnotations"), std::string::npos);
}

// --- translation -------------------------------------------------------------------------

TEST(translate, a_firing_group_is_a_triggered_incident) {
    const auto t = translate(*parse_notification(fixture("firing.json")), default_mapping());
    const auto& ev = t.event;
    EXPECT_EQ(ev.type, incident_event_type::triggered);
    EXPECT_EQ(t.group_id, group_id(R"({}/{service="editor"}:{alertname="EditorErrors"})"));
    EXPECT_TRUE(t.group_id.starts_with("am-"));
    EXPECT_EQ(t.group_id.size(), 3u + 16u);
    EXPECT_EQ(ev.incident.id, t.group_id);
    EXPECT_EQ(ev.incident.status, "triggered");
    EXPECT_EQ(ev.incident.title, "Editor save errors above 5%");
    EXPECT_EQ(ev.incident.priority, "P1");
    EXPECT_EQ(ev.incident.service_id, "EDITOR");
    EXPECT_TRUE(t.mapped);
    EXPECT_EQ(ev.incident.url, "https://alertmanager.example.com");
    // The time from the world: the earliest alert's startsAt, not when we heard of it.
    EXPECT_EQ(format_rfc3339(*ev.incident.created_at), "2026-12-03T10:00:01.000Z");
    EXPECT_EQ(ev.occurred_at, ev.incident.created_at);
    EXPECT_EQ(ev.incident.alert_summary, "5xx ratio on /save is 7.2%");
    EXPECT_FALSE(ev.incident.alert_details->empty());
}

TEST(translate, a_resolved_group_ends_when_its_last_alert_ended) {
    const auto t = translate(*parse_notification(fixture("resolved.json")), default_mapping());
    EXPECT_EQ(t.event.type, incident_event_type::resolved);
    EXPECT_EQ(t.event.incident.status, "resolved");
    EXPECT_EQ(format_rfc3339(*t.event.occurred_at), "2026-12-03T10:25:30.000Z");
    const auto firing = translate(*parse_notification(fixture("firing.json")), default_mapping());
    EXPECT_EQ(t.group_id, firing.group_id);
    EXPECT_NE(t.state_key, firing.state_key);
    EXPECT_NE(t.event.event_id, firing.event.event_id);
}

TEST(translate, the_state_key_is_the_alerts_not_their_order_or_the_repeat) {
    auto doc = json::parse(fixture("firing.json"));
    const auto key = [](const json& d) {
        return translate(*parse_notification(d.dump()), default_mapping()).state_key;
    };
    const auto base = key(doc);
    const auto n = *parse_notification(doc.dump());
    EXPECT_EQ(state_of(n).state_key, base);  // what the handler de-duplicates on, before translating
    EXPECT_EQ(state_of(n).group_id, translate(n, default_mapping()).group_id);
    auto swapped = doc;
    std::swap(swapped["alerts"][0], swapped["alerts"][1]);
    EXPECT_EQ(key(swapped), base);
    auto added = doc;
    added["alerts"].push_back(doc["alerts"][0]);
    added["alerts"][2]["fingerprint"] = "ffff000011112222";
    EXPECT_NE(key(added), base);
    auto restarted = doc;
    restarted["alerts"][0]["startsAt"] = "2026-12-03T11:00:00Z";  // the same alert, a new episode
    EXPECT_NE(key(restarted), base);
    // A resolved alert inside a firing group leaves the firing set: a new state.
    auto partly = doc;
    partly["alerts"][0]["status"] = "resolved";
    EXPECT_NE(key(partly), base);
}

TEST(translate, maps_services_by_matchers_and_severity_by_the_table) {
    auto doc = json::parse(fixture("firing.json"));
    doc["commonLabels"] = json{{"alertname", "Slow"}};
    doc["commonAnnotations"] = json::object();
    for (auto& a : doc["alerts"]) {
        a["labels"] = json{{"alertname", "Slow"}, {"team", "web-frontend"}, {"severity", "page"}};
    }
    doc["alerts"][0]["annotations"] = json{{"title", "Pages are slow"}};
    auto t = translate(*parse_notification(doc.dump()), default_mapping());
    EXPECT_EQ(t.event.incident.service_id, "WEB");  // from an alert's labels: none in common
    EXPECT_EQ(t.event.incident.priority, "page");   // not in the table: shown as it is
    EXPECT_EQ(t.event.incident.title, "Pages are slow (+1 more)");

    doc["alerts"][0]["labels"]["env"] = "staging";
    doc["alerts"][1]["labels"]["env"] = "staging";
    doc["alerts"][0]["annotations"] = json::object();
    t = translate(*parse_notification(doc.dump()), default_mapping());
    EXPECT_FALSE(t.mapped);
    EXPECT_FALSE(t.event.incident.service_id);
    EXPECT_EQ(t.event.incident.title, "Slow");  // no summary/title annotation: the alertname
}

// --- the endpoint ------------------------------------------------------------------------

TEST(credentials, bearer_and_basic_as_alertmanager_sends_them) {
    const std::vector<secret<std::string>> tokens{
        secret<std::string>{"old-token"}, secret<std::string>{"new-token"}};
    const credentials both{tokens, "am", "pa:ss"};
    using c = credentials::check;
    EXPECT_EQ(both.verify("Bearer new-token"), c::valid);
    EXPECT_EQ(both.verify("bearer old-token"), c::valid);
    EXPECT_EQ(both.verify("Bearer new-tokeN"), c::mismatch);
    EXPECT_EQ(both.verify("Bearer "), c::mismatch);
    EXPECT_EQ(both.verify(""), c::missing);
    EXPECT_EQ(both.verify("Basic YW06cGE6c3M="), c::valid);  // base64("am:pa:ss")
    EXPECT_EQ(both.verify("Basic YW06cGFzcw=="), c::mismatch);
    EXPECT_EQ(both.verify("Basic !!!"), c::mismatch);
    EXPECT_EQ(both.verify("Digest x"), c::unsupported_scheme);
    const credentials bearer_only{tokens, "", ""};
    EXPECT_EQ(bearer_only.verify("Basic YW06cGE6c3M="), c::unsupported_scheme);
}

TEST(last_states, remembers_the_last_state_of_the_most_recent_groups) {
    last_states s{2};
    EXPECT_TRUE(s.update("a", "firing-1"));
    EXPECT_FALSE(s.update("a", "firing-1"));
    EXPECT_TRUE(s.update("a", "resolved-1"));
    EXPECT_TRUE(s.update("a", "firing-1"));  // firing again after resolving: a new state
    EXPECT_TRUE(s.update("b", "x"));
    EXPECT_FALSE(s.update("a", "firing-1"));  // a is now the most recent
    EXPECT_TRUE(s.update("c", "y"));          // evicts b
    EXPECT_EQ(s.size(), 2u);
    EXPECT_TRUE(s.update("b", "x"));
    EXPECT_FALSE(s.update("c", "y"));
}

struct handler_test : ::testing::Test {
    prometheus::Registry registry;
    std::vector<incident_event> events;
    config cfg = [] {
        config c;
        c.bearer_tokens.emplace_back("t0ken");
        return c;
    }();
    webhook_handler handler{
        cfg,
        default_mapping(),
        [this](incident_event&& ev) { events.push_back(std::move(ev)); },
        log::discard(),
        registry};

    net::response post(const std::string& body, const std::string& auth = "Bearer t0ken") {
        net::request req{http::verb::post, "/webhooks/alertmanager", 11};
        req.body() = body;
        if (!auth.empty()) {
            req.set(http::field::authorization, auth);
        }
        req.prepare_payload();
        return handler(req);
    }

    double count(const std::string& result) {
        for (const auto& family : registry.Collect()) {
            if (family.name != "runbookd_webhooks_total") {
                continue;
            }
            for (const auto& m : family.metric) {
                bool source = false;
                bool match = false;
                for (const auto& l : m.label) {
                    source |= l.name == "source" && l.value == "alertmanager";
                    match |= l.name == "result" && l.value == result;
                }
                if (source && match) {
                    return m.counter.value;
                }
            }
        }
        return -1;
    }
};

TEST_F(handler_test, a_group_fires_repeats_and_resolves) {
    EXPECT_EQ(post(fixture("firing.json")).result(), http::status::ok);
    EXPECT_EQ(post(fixture("firing.json")).result(), http::status::ok);  // repeat_interval
    EXPECT_EQ(post(fixture("resolved.json")).result(), http::status::ok);
    EXPECT_EQ(post(fixture("resolved.json")).result(), http::status::ok);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].type, incident_event_type::triggered);
    EXPECT_EQ(events[1].type, incident_event_type::resolved);
    EXPECT_EQ(events[0].incident.id, events[1].incident.id);
    EXPECT_EQ(count("accepted"), 2);
    EXPECT_EQ(count("duplicate"), 2);
}

TEST_F(handler_test, bad_input_gets_a_clear_4xx_and_reaches_nothing) {
    const auto body = fixture("firing.json");
    auto r = post(body, "");
    EXPECT_EQ(r.result(), http::status::unauthorized);
    EXPECT_FALSE(r[http::field::www_authenticate].empty());
    EXPECT_EQ(post(body, "Bearer wrong").result(), http::status::unauthorized);
    EXPECT_EQ(post(body, "Basic YW06cGFzcw==").result(), http::status::unauthorized);
    EXPECT_EQ(post("").result(), http::status::bad_request);
    r = post("{oops");
    EXPECT_EQ(r.result(), http::status::bad_request);
    EXPECT_NE(r.body().find("not valid JSON"), std::string::npos);
    auto v3 = json::parse(body);
    v3["version"] = "3";
    r = post(v3.dump());
    EXPECT_EQ(r.result(), http::status::bad_request);
    EXPECT_NE(r.body().find("version"), std::string::npos);
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(count("missing_auth"), 2);  // no header; Basic while only tokens are configured
    EXPECT_EQ(count("bad_auth"), 1);
    EXPECT_EQ(count("malformed"), 2);
    EXPECT_EQ(count("unsupported_version"), 1);
}

// --- configuration -----------------------------------------------------------------------

runbookd::config::load_result load(const std::string& extra) {
    return runbookd::config::parse(
        "pagerduty:\n  webhook_secrets: [s3cret]\nnotify:\n  kind: console\n" + extra, "t.yaml"
    );
}

std::string problems(const runbookd::config::load_result& r) {
    std::string out;
    for (const auto& p : r.problems) {
        out += p.to_string() + "\n";
    }
    return out;
}

TEST(alertmanager_config, off_without_a_section) {
    const auto r = load("");
    ASSERT_TRUE(r.ok()) << problems(r);
    EXPECT_FALSE(r.value->alertmanager.enabled());
}

TEST(alertmanager_config, reads_credentials_priorities_and_service_matchers) {
    const auto r = load(R"(alertmanager:
  bearer_tokens: [tok-1]
  basic_auth: {username: am, password: pw}
  priorities: {critical: SEV1, warning: SEV3}
  severity_label: level
services:
  EDITOR:
    name: Editor
    alertmanager: ['service="editor"', 'env=~"prod|canary"']
)");
    ASSERT_TRUE(r.ok()) << problems(r);
    const auto& c = r.value->alertmanager;
    EXPECT_TRUE(c.enabled());
    ASSERT_EQ(c.bearer_tokens.size(), 1u);
    EXPECT_EQ(c.basic_username, "am");
    EXPECT_EQ(
        c.priorities,
        (std::vector<std::pair<std::string, std::string>>{{"critical", "SEV1"}, {"warning", "SEV3"}})
    );
    EXPECT_EQ(c.severity_label, "level");
    EXPECT_EQ(r.value->services.at("EDITOR").alertmanager.size(), 2u);
}

TEST(alertmanager_config, problems_name_their_place) {
    auto r = load("alertmanager:\n  priorities: {critical: P1}\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(problems(r).find("must authenticate"), std::string::npos) << problems(r);
    r = load("alertmanager:\n  basic_auth: {username: am}\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(problems(r).find("password"), std::string::npos) << problems(r);
    r = load(
        "alertmanager:\n  bearer_tokens: [x]\nservices:\n  EDITOR:\n    name: E\n    alertmanager: "
        "['service=\"a\"', 'env=~\"(\"']\n"
    );
    ASSERT_FALSE(r.ok());
    EXPECT_NE(problems(r).find("t.yaml:10:"), std::string::npos) << problems(r);
    EXPECT_NE(problems(r).find("regular expression"), std::string::npos) << problems(r);
    r = load("alertmanager:\n  bearer_token: [x]\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(problems(r).find("bearer_tokens"), std::string::npos) << problems(r);
}

}  // namespace
}  // namespace runbookd::intake::alertmanager
