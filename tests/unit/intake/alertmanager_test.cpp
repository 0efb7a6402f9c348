#include "config/config.hpp"
#include "core/label_matcher.hpp"
#include "intake/alertmanager/handler.hpp"
#include "intake/alertmanager/parse.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <optional>
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
    EXPECT_EQ(ev.incident.pager, "Alertmanager");
    EXPECT_FALSE(ev.incident.impact);  // no `impact` annotation: the service's sentence stays
}

TEST(translate, an_impact_annotation_is_what_users_see) {
    auto doc = json::parse(fixture("firing.json"));
    doc["alerts"][0]["annotations"]["impact"] = "Saving a canvas may fail.";
    auto t = translate(*parse_notification(doc.dump()), default_mapping());
    EXPECT_EQ(t.event.incident.impact, "Saving a canvas may fail.");
    doc["commonAnnotations"]["impact"] = "Canvases may not save.";  // the group's words win
    t = translate(*parse_notification(doc.dump()), default_mapping());
    EXPECT_EQ(t.event.incident.impact, "Canvases may not save.");
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

// --- the fast pass (peek_state) against the full parse ----------------------------------

/// What the full parse says the body's state is; nullopt when it refuses the body or it is
/// not version 4.
std::optional<group_state> full_state(const std::string& body) {
    const auto n = parse_notification(body);
    if (!n || n->version != supported_version) {
        return std::nullopt;
    }
    return state_of(*n);
}

/// The fast pass either defers (nullopt) or gives exactly what the full parse gives.
::testing::AssertionResult agrees(const std::string& body, bool* answered = nullptr) {
    const auto fast = peek_state(body);
    if (answered != nullptr) {
        *answered = fast.has_value();
    }
    if (!fast) {
        return ::testing::AssertionSuccess();
    }
    const auto full = full_state(body);
    if (!full) {
        const auto n = parse_notification(body);
        return ::testing::AssertionFailure()
               << "the fast pass keyed a body the full parse refuses ("
               << (n ? "version " + n->version : n.error().detail) << "): " << body;
    }
    if (fast->group_id != full->group_id || fast->state_key != full->state_key) {
        return ::testing::AssertionFailure()
               << "fast " << fast->group_id << "/" << fast->state_key << " but full " << full->group_id << "/"
               << full->state_key << ": " << body;
    }
    return ::testing::AssertionSuccess();
}

/// The key the fast pass gives, which must be there and be the full parse's.
std::string peeked_key(const std::string& body) {
    EXPECT_TRUE(agrees(body));
    const auto fast = peek_state(body);
    EXPECT_TRUE(fast) << "the fast pass deferred on " << body;
    return fast ? fast->group_id + "/" + fast->state_key : std::string{"(deferred)"};
}

TEST(peek_state, reads_what_the_full_parse_reads) {
    for (const char* name : {"firing.json", "resolved.json", "alertmanager_0.25_truncated.json"}) {
        const auto body = fixture(name);
        const auto fast = peek_state(body);
        ASSERT_TRUE(fast) << name;
        const auto full = full_state(body);
        ASSERT_TRUE(full) << name;
        EXPECT_EQ(fast->group_id, full->group_id) << name;
        EXPECT_EQ(fast->state_key, full->state_key) << name;
    }
    EXPECT_NE(peeked_key(fixture("firing.json")), peeked_key(fixture("resolved.json")));
}

TEST(peek_state, the_same_key_whatever_the_order_of_fields_and_alerts) {
    const auto body = fixture("firing.json");
    const auto base = peeked_key(body);
    // Every object's fields in reverse order, the alerts swapped, other whitespace.
    auto reversed = nlohmann::ordered_json::parse(body);
    const auto reverse = [](const nlohmann::ordered_json& obj) {
        nlohmann::ordered_json out = nlohmann::ordered_json::object();
        std::vector<std::pair<std::string, nlohmann::ordered_json>> items;
        for (const auto& [k, v] : obj.items()) {
            items.emplace_back(k, v);
        }
        for (auto it = items.rbegin(); it != items.rend(); ++it) {
            out[it->first] = it->second;
        }
        return out;
    };
    for (auto& a : reversed["alerts"]) {
        a = reverse(a);
    }
    std::swap(reversed["alerts"][0], reversed["alerts"][1]);
    reversed = reverse(reversed);
    EXPECT_EQ(peeked_key(reversed.dump()), base);
    EXPECT_EQ(peeked_key(reversed.dump(2)), base);
    EXPECT_EQ(peeked_key(json::parse(body).dump()), base);  // sorted keys, no whitespace
    EXPECT_EQ(peeked_key("\n " + body + " \r\n\t"), base);
    // The same strings escaped differently are the same strings.
    auto escaped = body;
    escaped.replace(escaped.find("1a30ba71cca2921f"), 16, R"(\u0031a30ba71cca2921f)");
    escaped.replace(escaped.find("\"groupKey\""), 10, R"("group\u004bey")");
    EXPECT_EQ(peeked_key(escaped), base);
}

TEST(peek_state, a_new_key_for_a_new_state_as_the_full_parse_says) {
    const auto doc = json::parse(fixture("firing.json"));
    const auto base = peeked_key(doc.dump());
    const auto changed = [&](const std::function<void(json&)>& change) {
        auto d = doc;
        change(d);
        return peeked_key(d.dump());
    };
    EXPECT_NE(changed([](json& d) { d["alerts"][1]["fingerprint"] = "bc97ff14869b13e4"; }), base);
    EXPECT_NE(changed([](json& d) { d["alerts"][0]["startsAt"] = "2026-12-03T10:00:05.124Z"; }), base);
    EXPECT_NE(changed([](json& d) { d["alerts"][0]["startsAt"] = "0001-01-01T00:00:00Z"; }), base);
    EXPECT_NE(changed([](json& d) { d["alerts"][0]["status"] = "resolved"; }), base);
    EXPECT_NE(changed([](json& d) { d["groupKey"] = "{}:{alertname=\"Other\"}"; }), base);
    EXPECT_NE(changed([](json& d) { d["alerts"].erase(1); }), base);
    const auto resolved = changed([](json& d) { d["status"] = "resolved"; });
    EXPECT_NE(resolved, base);
    EXPECT_EQ(resolved.substr(0, resolved.find('/')), base.substr(0, base.find('/')));  // the same group
    // What the key leaves out leaves it alone: the same nanoseconds to the millisecond, labels,
    // annotations, endsAt, an unparseable startsAt is "not set" either way.
    EXPECT_EQ(changed([](json& d) { d["alerts"][0]["startsAt"] = "2026-12-03T10:00:05.123999Z"; }), base);
    EXPECT_EQ(changed([](json& d) { d["alerts"][0]["labels"]["instance"] = "web-9"; }), base);
    EXPECT_EQ(changed([](json& d) { d["alerts"][0]["endsAt"] = "2026-12-03T11:00:00Z"; }), base);
    EXPECT_EQ(changed([](json& d) { d["receiver"] = 5; }), base);
    EXPECT_EQ(changed([](json& d) { d["alerts"][0]["labels"]["values"] = 5; }), base);  // skipped, as parsed
    const auto no_start = changed([](json& d) { d["alerts"][0]["startsAt"] = "yesterday"; });
    EXPECT_EQ(changed([](json& d) { d["alerts"][0]["startsAt"] = 17; }), no_start);
    EXPECT_EQ(changed([](json& d) { d["alerts"][0].erase("startsAt"); }), no_start);
}

TEST(peek_state, defers_on_what_the_full_parse_refuses_or_reads_differently) {
    const auto body = fixture("firing.json");
    const auto doc = json::parse(body);
    const auto defers = [](const std::string& b) {
        EXPECT_TRUE(agrees(b));
        return !peek_state(b).has_value();
    };
    EXPECT_TRUE(defers(body + "}"));  // trailing content: On-Demand stops at the root's end
    EXPECT_TRUE(defers(body + " x"));
    EXPECT_TRUE(defers("[" + body + "]"));
    EXPECT_TRUE(defers(body.substr(0, body.size() - 3)));
    // In parts the mapping never reads, which On-Demand would otherwise skip unchecked.
    auto url = body;
    const auto at = url.find("g0.expr=x");
    EXPECT_TRUE(defers(std::string{url}.replace(at, 1, "\x01")));                 // a raw control character
    EXPECT_TRUE(defers(std::string{url}.replace(at, 1, "\\ud800")));              // a lone surrogate
    EXPECT_TRUE(defers(std::string{url}.replace(at, 1, "\\udc00x")));             // a lone low surrogate
    EXPECT_TRUE(defers(std::string{url}.replace(at, 1, "\\q")));                  // not an escape
    EXPECT_TRUE(defers(std::string{url}.replace(at, 1, "\xc0\x80")));             // overlong UTF-8
    EXPECT_TRUE(defers(std::string{body}.replace(body.find("0\n}"), 1, "01")));   // truncatedAlerts: 01
    EXPECT_TRUE(defers(std::string{body}.replace(body.find("0\n}"), 1, "tru")));  // truncatedAlerts: tru
    EXPECT_TRUE(defers(std::string{body}.replace(body.find("0\n}"), 1, "[1,]")));
    const auto changed = [&](const std::function<void(json&)>& change) {
        auto d = doc;
        change(d);
        return d.dump();
    };
    EXPECT_TRUE(defers(changed([](json& d) { d["alerts"][1]["labels"]["instance"] = 7; })));
    EXPECT_TRUE(defers(changed([](json& d) { d["commonAnnotations"] = "x"; })));
    EXPECT_TRUE(defers(changed([](json& d) { d["alerts"] = json::array(); })));
    EXPECT_TRUE(defers(changed([](json& d) { d["alerts"][0] = 1; })));
    EXPECT_TRUE(defers(changed([](json& d) { d["alerts"][0]["status"] = "pending"; })));
    EXPECT_TRUE(defers(changed([](json& d) { d["groupKey"] = ""; })));
    EXPECT_TRUE(defers(changed([](json& d) { d["version"] = "3"; })));
    EXPECT_TRUE(defers(changed([](json& d) { d.erase("version"); })));
    // Read by the full parse, but not by the fast pass: an alert keyed by its labels, a key
    // given twice (nlohmann keeps the last), nesting deeper than Alertmanager's.
    EXPECT_TRUE(defers(changed([](json& d) { d["alerts"][0].erase("fingerprint"); })));
    EXPECT_TRUE(full_state(changed([](json& d) { d["alerts"][0].erase("fingerprint"); })));
    auto twice = body;
    twice.replace(twice.find("\"fingerprint\""), 0, R"("fingerprint": "0000000000000000", )");
    EXPECT_TRUE(defers(twice));
    EXPECT_TRUE(full_state(twice));
    EXPECT_TRUE(defers(changed([](json& d) {
        d["x"] = json::parse(std::string(40, '[') + std::string(40, ']'));
    })));
}

TEST(peek_state, never_keys_a_body_differently_from_the_full_parse) {
    // Every one-byte deletion and several one-byte replacements of a real body: wherever the
    // fast pass answers, the full parse must accept the body and give the same key.
    const auto body = fixture("firing.json");
    std::size_t answered = 0;
    for (std::size_t i = 0; i < body.size(); ++i) {
        std::vector<std::string> variants;
        variants.push_back(body.substr(0, i) + body.substr(i + 1));
        for (const char* c : {"\"", "}", ",", "\\", "1", "\x01", "["}) {
            variants.push_back(body.substr(0, i) + c + body.substr(i + 1));
        }
        for (const auto& v : variants) {
            bool yes = false;
            ASSERT_TRUE(agrees(v, &yes)) << "at byte " << i;
            answered += yes ? 1 : 0;
        }
    }
    EXPECT_GT(answered, body.size());  // the whitespace and the strings the key ignores
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

    net::response post(
        const std::string& body,
        const std::string& auth = "Bearer t0ken",
        std::string_view content_type = "application/json"
    ) {
        net::request req{http::verb::post, "/webhooks/alertmanager", 11};
        req.body() = body;
        if (!content_type.empty()) {
            req.set(http::field::content_type, content_type);
        }
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

TEST_F(handler_test, a_body_not_sent_as_json_is_415_and_counted) {
    EXPECT_EQ(count("unsupported_media_type"), 0);
    EXPECT_EQ(
        post(fixture("firing.json"), "Bearer t0ken", "").result(), http::status::unsupported_media_type
    );
    EXPECT_EQ(
        post(fixture("firing.json"), "Bearer t0ken", "text/plain; charset=utf-8").result(),
        http::status::unsupported_media_type
    );
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(count("unsupported_media_type"), 2);
    EXPECT_EQ(
        post(fixture("firing.json"), "Bearer t0ken", "application/json; charset=utf-8").result(),
        http::status::ok
    );
    EXPECT_EQ(events.size(), 1u);
}

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

TEST_F(handler_test, a_repeat_is_answered_from_the_fast_pass_but_bad_input_still_gets_its_error) {
    const auto body = fixture("firing.json");
    EXPECT_EQ(post(body).result(), http::status::ok);
    auto reordered = json::parse(body).dump(1);  // the same state written differently
    auto r = post(reordered);
    EXPECT_EQ(r.result(), http::status::ok);
    EXPECT_EQ(r.body(), R"({"status":"duplicate"})");
    // The same group and state, but malformed where the state does not look.
    auto bad = json::parse(body);
    bad["alerts"][1]["labels"]["instance"] = 7;
    r = post(bad.dump());
    EXPECT_EQ(r.result(), http::status::bad_request);
    EXPECT_NE(r.body().find("alerts[1].labels.instance: expected a string"), std::string::npos) << r.body();
    r = post(body + "}");
    EXPECT_EQ(r.result(), http::status::bad_request);
    EXPECT_NE(r.body().find("not valid JSON"), std::string::npos) << r.body();
    // Deferred to the full parse (no fingerprint), still de-duplicated there.
    auto by_labels = json::parse(body);
    by_labels["alerts"][0].erase("fingerprint");
    EXPECT_EQ(post(by_labels.dump()).body(), R"({"status":"accepted"})");
    EXPECT_EQ(post(by_labels.dump()).body(), R"({"status":"duplicate"})");
    EXPECT_EQ(events.size(), 2u);
    EXPECT_EQ(count("accepted"), 2);
    EXPECT_EQ(count("duplicate"), 2);
    EXPECT_EQ(count("malformed"), 2);
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
