#include "core/engine.hpp"
#include "intake/deploys/handler.hpp"
#include "intake/deploys/parse.hpp"
#include "intake/deploys/signature.hpp"
#include "webhook_support.hpp"

#include <gtest/gtest.h>

namespace runbookd::intake::deploys {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;

using test_support::secrets;

std::string fixture(const std::string& name) {
    return test_support::fixture("deploys", name);
}

wall_time at(const char* text) {
    return *parse_rfc3339(text);
}

std::string label(const signal& s, std::string_view name) {
    const std::string* v = s.find(name);
    return v == nullptr ? "<none>" : *v;
}

// ------------------------------------------------------------------------- signatures

TEST(deploys_signature, github_matches_the_documented_algorithm) {
    // GitHub's own example (docs "Validating webhook deliveries"): secret "It's a Secret to
    // Everybody", payload "Hello, World!".
    EXPECT_EQ(
        sign_github("It's a Secret to Everybody", "Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

TEST(deploys_signature, github_accepts_any_configured_secret_and_classifies_failures) {
    const std::string body = R"({"zen":"x"})";
    EXPECT_EQ(verify_github(sign_github("new", body), body, secrets({"old", "new"})), signature_check::valid);
    EXPECT_EQ(verify_github(sign_github("old", body), body, secrets({"old", "new"})), signature_check::valid);
    EXPECT_EQ(verify_github(sign_github("other", body), body, secrets({"old"})), signature_check::mismatch);
    EXPECT_EQ(
        verify_github(sign_github("old", body), body + " ", secrets({"old"})), signature_check::mismatch
    );
    EXPECT_EQ(verify_github("", body, secrets({"old"})), signature_check::missing);
    EXPECT_EQ(verify_github("sha1=abcdef", body, secrets({"old"})), signature_check::malformed);
    EXPECT_EQ(
        verify_github("sha256=" + std::string(63, 'a'), body, secrets({"old"})), signature_check::malformed
    );
    EXPECT_EQ(
        verify_github("sha256=" + std::string(64, 'g'), body, secrets({"old"})), signature_check::malformed
    );
}

TEST(deploys_signature, generic_signs_timestamp_dot_body) {
    const std::string body = R"({"service":"api"})";
    const auto sig = sign_generic("s3", "1772726400", body);
    // The same as HMAC over the concatenation, computed the GitHub way over "<ts>.<body>".
    EXPECT_EQ(sig.substr(3), sign_github("s3", "1772726400." + body).substr(7));
    auto ok = verify_generic("1772726400", sig, body, secrets({"s1", "s3"}));
    EXPECT_EQ(ok.signature, signature_check::valid);
    ASSERT_TRUE(ok.timestamp);
    EXPECT_EQ(*ok.timestamp, at("2026-03-05T16:00:00Z"));
    // The timestamp is signed: moving it breaks the signature.
    EXPECT_EQ(verify_generic("1772726401", sig, body, secrets({"s3"})).signature, signature_check::mismatch);
    EXPECT_EQ(verify_generic("", sig, body, secrets({"s3"})).signature, signature_check::malformed);
    EXPECT_EQ(verify_generic("17727e8", sig, body, secrets({"s3"})).signature, signature_check::malformed);
    EXPECT_EQ(verify_generic("-5", sig, body, secrets({"s3"})).signature, signature_check::malformed);
    EXPECT_EQ(
        verify_generic("99999999999999999999", sig, body, secrets({"s3"})).signature,
        signature_check::malformed
    );
    EXPECT_EQ(verify_generic("1772726400", "", body, secrets({"s3"})).signature, signature_check::missing);
    EXPECT_EQ(
        verify_generic("1772726400", "v0=ab", body, secrets({"s3"})).signature, signature_check::malformed
    );
}

// ------------------------------------------------------------------------- parsing

TEST(deploys_parse, a_failed_deployment_status) {
    const auto r = parse_github("deployment_status", fixture("deployment_status_failure.json"), {});
    ASSERT_TRUE(r) << r.error().detail;
    ASSERT_EQ(r->kind, delivery_kind::deploy);
    const auto& d = *r->deploy;
    EXPECT_EQ(d.status, "failure");
    EXPECT_EQ(d.repository, "darklang/dark");
    EXPECT_EQ(d.environment, "production");
    EXPECT_EQ(d.commit, "b7e1c0de5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d");  // lower case
    EXPECT_EQ(d.version, "main@b7e1c0d");
    EXPECT_EQ(d.actor, "github-actions[bot]");
    EXPECT_EQ(d.url, "https://github.com/darklang/dark/actions/runs/981/job/1");
    EXPECT_EQ(d.subject, "darklang/dark deployment 145988746");
    EXPECT_EQ(d.at, at("2026-03-05T15:51:00Z"));  // the status's time, not ours
    ASSERT_TRUE(d.started);
    EXPECT_EQ(*d.started, at("2026-03-05T15:45:00Z"));
}

TEST(deploys_parse, a_created_deployment_is_queued) {
    const auto r = parse_github("deployment", fixture("deployment_created.json"), {});
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(r->deploy->status, "queued");
    EXPECT_EQ(r->deploy->actor, "jane");
    EXPECT_EQ(r->deploy->url, "https://github.com/darklang/dark/actions/runs/981");
}

TEST(deploys_parse, workflow_runs_of_the_deploying_workflows_only) {
    const auto body = fixture("workflow_run_in_progress.json");
    const auto other = parse_github("workflow_run", body, {"Tests"});
    ASSERT_TRUE(other);
    EXPECT_EQ(other->kind, delivery_kind::ignored);
    for (const std::vector<std::string>& w :
         {std::vector<std::string>{"Deploy@production"}, {"deploy.yml@production"}}) {
        const auto r = parse_github("workflow_run", body, w);
        ASSERT_TRUE(r) << r.error().detail;
        ASSERT_EQ(r->kind, delivery_kind::deploy);
        EXPECT_EQ(r->deploy->status, "in_progress");
        EXPECT_EQ(r->deploy->environment, "production");
        EXPECT_EQ(r->deploy->subject, "darklang/dark run 981");
        EXPECT_EQ(r->deploy->at, at("2026-03-05T15:41:00Z"));
        EXPECT_EQ(*r->deploy->started, at("2026-03-05T15:40:00Z"));
    }
}

TEST(deploys_parse, workflow_conclusions_in_our_words) {
    const auto with = [](const char* status, const char* conclusion) {
        auto body = fixture("workflow_run_in_progress.json");
        const auto replace = [&](const std::string& from, const std::string& to) {
            body.replace(body.find(from), from.size(), to);
        };
        replace(R"("status": "in_progress")", std::string{R"("status": ")"} + status + "\"");
        replace(
            R"("conclusion": null)",
            conclusion == nullptr ? std::string{R"("conclusion": null)"}
                                  : std::string{R"("conclusion": ")"} + conclusion + "\""
        );
        return parse_github("workflow_run", body, {"Deploy"})->deploy->status;
    };
    EXPECT_EQ(with("queued", nullptr), "queued");
    EXPECT_EQ(with("completed", "success"), "success");
    EXPECT_EQ(with("completed", "failure"), "failure");
    EXPECT_EQ(with("completed", "timed_out"), "failure");
    EXPECT_EQ(with("completed", "cancelled"), "cancelled");
}

TEST(deploys_parse, ping_other_events_and_inactive_statuses) {
    EXPECT_EQ(parse_github("ping", fixture("ping.json"), {})->kind, delivery_kind::ping);
    EXPECT_EQ(parse_github("push", R"({"ref":"x"})", {})->kind, delivery_kind::ignored);
    auto body = fixture("deployment_status_failure.json");
    body.replace(body.find(R"("state": "failure")"), 18, R"("state": "inactive")");
    EXPECT_EQ(parse_github("deployment_status", body, {})->kind, delivery_kind::ignored);
}

TEST(deploys_parse, malformed_github_bodies_name_the_problem) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"{oops", "not valid JSON"},
        {"[1]", "not a JSON object"},
        {R"({"deployment_status":{}})", "deployment: missing"},
        {R"({"deployment":{"id":1,"created_at":"2026-03-05T15:45:00Z"}})", "repository.full_name"},
        {R"({"deployment":{"id":1,"created_at":"yesterday"},"repository":{"full_name":"a/b"},"deployment_status":{"state":"success","created_at":"2026-03-05T15:45:00Z"}})",
         "deployment.created_at: not an RFC 3339 time"},
        {R"({"deployment":{"id":1,"created_at":"2026-03-05T15:45:00Z"},"repository":{"full_name":"a/b"},"deployment_status":{"created_at":"2026-03-05T15:45:00Z"}})",
         "deployment_status.state"},
    };
    for (const auto& [body, expected] : cases) {
        const auto r = parse_github("deployment_status", body, {});
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().detail.find(expected), std::string::npos) << body << " -> " << r.error().detail;
    }
}

TEST(deploys_parse, the_generic_webhook) {
    const auto signed_at = at("2026-03-05T16:00:00Z");
    const auto r = parse_generic(
        R"({"service":"bwdserver","commit":"4F2A9C1E","status":"failure","actor":"ci-bot",
            "url":"https://ci.example.com/runs/7","environment":"production","id":"run-7",
            "started_at":"2026-03-05T15:50:00Z"})",
        signed_at
    );
    ASSERT_TRUE(r) << r.error().detail;
    const auto& d = *r->deploy;
    EXPECT_EQ(d.commit, "4f2a9c1e");
    EXPECT_EQ(d.version, "4f2a9c1");
    EXPECT_EQ(d.subject, "bwdserver run-7");
    EXPECT_EQ(d.at, signed_at);
    const std::vector<std::pair<std::string, std::string>> cases{
        {R"({"status":"success","version":"1"})", "service"},
        {R"({"service":"a","status":"done","version":"1"})", "status: must be one of"},
        {R"({"service":"a","status":"success"})", "version or commit"},
        {R"({"service":"a","status":"success","version":"1","at":"soon"})", "body.at"},
    };
    for (const auto& [body, expected] : cases) {
        const auto e = parse_generic(body, signed_at);
        ASSERT_FALSE(e) << body;
        EXPECT_NE(e.error().detail.find(expected), std::string::npos) << body << " -> " << e.error().detail;
    }
}

TEST(deploys_parse, repositories_map_to_services_by_environment) {
    std::map<std::string, service_info, std::less<>> services;
    services["PBWD001"] = service_info{"Builtwithdark", "", {}, {}, {"darklang/dark@production"}};
    services["PAPI002"] = service_info{"Editor", "", {}, {}, {"DarkLang/Dark"}};
    const service_routes routes{services};
    EXPECT_EQ(routes.find("darklang/dark", "production").ids, "PAPI002,PBWD001");
    EXPECT_EQ(routes.find("darklang/dark", "staging").ids, "PAPI002");
    EXPECT_EQ(routes.find("darklang/other", "production").ids, "");

    const auto r = parse_github("deployment_status", fixture("deployment_status_failure.json"), {});
    const signal s = to_signal(*r->deploy, routes);
    EXPECT_EQ(s.kind, "deploy.ci");
    EXPECT_EQ(s.source, "deploys");
    EXPECT_EQ(s.at, at("2026-03-05T15:51:00Z"));
    EXPECT_EQ(label(s, "services"), "PAPI002,PBWD001");
    EXPECT_EQ(label(s, "service"), "Editor");
    EXPECT_EQ(label(s, "status"), "failure");
    EXPECT_EQ(label(s, "commit"), "b7e1c0de5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d");
    ASSERT_TRUE(s.value);
    EXPECT_DOUBLE_EQ(*s.value, 360);  // in progress for 6 minutes

    const signal unmapped = to_signal(*r->deploy, service_routes{});
    EXPECT_EQ(label(unmapped, "services"), "");
    EXPECT_EQ(label(unmapped, "service"), "dark");
}

// ------------------------------------------------------------------------- the endpoint

struct deploys_handler : ::testing::Test {
    prometheus::Registry registry;
    std::vector<signal> signals;
    wall_time now = at("2026-03-05T15:52:00Z");
    std::string content_type = "application/json";
    std::unique_ptr<webhook_handler> handler = make_handler();

    std::unique_ptr<webhook_handler> make_handler() {
        config cfg;
        cfg.github_secrets = secrets({"old", "new"});
        cfg.generic_secrets = secrets({"generic"});
        cfg.workflows = {"Deploy@production"};
        cfg.dedupe_capacity = 100;
        return std::make_unique<webhook_handler>(
            cfg,
            service_routes{},
            [this](signal s) { signals.push_back(std::move(s)); },
            log::discard(),
            registry
        );
    }

    net::response github(
        const std::string& event, const std::string& body, const std::string& sig, const std::string& delivery
    ) {
        net::request req{http::verb::post, "/webhooks/deploys", 11};
        req.body() = body;
        if (!content_type.empty()) {
            req.set(http::field::content_type, content_type);
        }
        req.set("X-GitHub-Event", event);
        req.set("User-Agent", "GitHub-Hookshot/044aadd");
        if (!sig.empty()) {
            req.set("X-Hub-Signature-256", sig);
        }
        if (!delivery.empty()) {
            req.set("X-GitHub-Delivery", delivery);
        }
        req.prepare_payload();
        return handler->handle_at(req, now);
    }

    net::response generic(const std::string& body, const std::string& ts, const std::string& sig) {
        net::request req{http::verb::post, "/webhooks/deploys", 11};
        req.body() = body;
        req.set(http::field::content_type, content_type);
        req.set("X-Runbookd-Timestamp", ts);
        req.set("X-Runbookd-Signature", sig);
        req.prepare_payload();
        return handler->handle_at(req, now);
    }

    double metric(const std::string& result) {
        for (const auto& family : registry.Collect()) {
            if (family.name != "runbookd_webhooks_total") {
                continue;
            }
            for (const auto& m : family.metric) {
                bool source = false;
                bool matches = false;
                for (const auto& l : m.label) {
                    source = source || (l.name == "source" && l.value == "deploys");
                    matches = matches || (l.name == "result" && l.value == result);
                }
                if (source && matches) {
                    return m.counter.value;
                }
            }
        }
        return -1;
    }
};

TEST_F(deploys_handler, a_signed_status_becomes_one_signal_and_its_redelivery_nothing) {
    const auto body = fixture("deployment_status_failure.json");
    EXPECT_EQ(
        github("deployment_status", body, sign_github("new", body), "d-1").result(), http::status::accepted
    );
    EXPECT_EQ(
        github("deployment_status", body, sign_github("new", body), "d-1").result(), http::status::accepted
    );
    // The same status under another delivery id (a second hook): still one signal.
    EXPECT_EQ(
        github("deployment_status", body, sign_github("old", body), "d-2").result(), http::status::accepted
    );
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(label(signals[0], "status"), "failure");
    EXPECT_EQ(metric("accepted"), 1);
    EXPECT_EQ(metric("duplicate"), 2);
}

TEST_F(deploys_handler, refuses_with_clear_codes_and_reaches_nothing) {
    const auto body = fixture("deployment_status_failure.json");
    EXPECT_EQ(github("deployment_status", body, "", "a").result(), http::status::bad_request);
    EXPECT_EQ(github("deployment_status", body, "sha256=zz", "b").result(), http::status::bad_request);
    EXPECT_EQ(
        github("deployment_status", body, sign_github("wrong", body), "c").result(), http::status::forbidden
    );
    EXPECT_EQ(
        github("deployment_status", "{oops", sign_github("new", "{oops"), "d").result(),
        http::status::bad_request
    );
    EXPECT_EQ(
        github("deployment_status", "", sign_github("new", ""), "e").result(), http::status::bad_request
    );
    EXPECT_TRUE(signals.empty());
    EXPECT_EQ(metric("missing_signature"), 2);
    EXPECT_EQ(metric("bad_signature"), 1);
    EXPECT_EQ(metric("malformed"), 2);
}

TEST_F(deploys_handler, a_delivery_not_sent_as_json_is_415_and_reaches_nothing) {
    const auto body = fixture("deployment_status_failure.json");
    EXPECT_EQ(metric("unsupported_media_type"), 0);
    // GitHub's default content type for a hook is form-encoded: never parsed.
    content_type = "application/x-www-form-urlencoded";
    EXPECT_EQ(
        github("deployment_status", body, sign_github("new", body), "d-1").result(),
        http::status::unsupported_media_type
    );
    content_type = "";
    EXPECT_EQ(
        github("deployment_status", body, sign_github("new", body), "d-2").result(),
        http::status::unsupported_media_type
    );
    EXPECT_TRUE(signals.empty());
    EXPECT_EQ(metric("unsupported_media_type"), 2);
    content_type = "application/json; charset=utf-8";
    EXPECT_EQ(
        github("deployment_status", body, sign_github("new", body), "d-3").result(), http::status::accepted
    );
    EXPECT_EQ(signals.size(), 1u);
}

TEST_F(deploys_handler, a_stale_status_is_refused_at_max_age_and_not_a_millisecond_before) {
    const auto body = fixture("deployment_status_failure.json");  // status at 15:51:00
    now = at("2026-03-05T16:51:00Z");                             // exactly max_age (1h) later
    EXPECT_EQ(
        github("deployment_status", body, sign_github("new", body), "s-1").result(), http::status::accepted
    );
    signals.clear();
    handler = make_handler();
    now += 1ms;
    EXPECT_EQ(
        github("deployment_status", body, sign_github("new", body), "s-2").result(),
        http::status::unauthorized
    );
    EXPECT_TRUE(signals.empty());
    EXPECT_EQ(metric("stale"), 1);
}

TEST_F(deploys_handler, ping_and_other_events_get_2xx_and_reach_nothing) {
    const auto ping = fixture("ping.json");
    EXPECT_EQ(github("ping", ping, sign_github("old", ping), "p-1").result(), http::status::ok);
    const std::string push = R"({"ref":"refs/heads/main"})";
    EXPECT_EQ(github("push", push, sign_github("old", push), "p-2").result(), http::status::accepted);
    const auto run = fixture("workflow_run_in_progress.json");
    now = at("2026-03-05T15:42:00Z");
    EXPECT_EQ(github("workflow_run", run, sign_github("old", run), "p-3").result(), http::status::accepted);
    ASSERT_EQ(signals.size(), 1u);  // the Deploy workflow is a deploy
    EXPECT_EQ(label(signals[0], "environment"), "production");
    EXPECT_EQ(metric("ping"), 1);
    EXPECT_EQ(metric("ignored"), 1);
}

TEST_F(deploys_handler, the_generic_webhook_is_timestamped_against_replay) {
    const std::string body =
        R"({"service":"bwdserver","version":"2026.03.05-b7e1","status":"failure","actor":"ci-bot"})";
    const std::string ts = "1772725920";  // 15:52:00, our now
    EXPECT_EQ(generic(body, ts, sign_generic("generic", ts, body)).result(), http::status::accepted);
    EXPECT_EQ(
        generic(body, ts, sign_generic("generic", ts, body)).result(), http::status::accepted
    );  // replay inside tolerance
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(signals[0].at, now);
    EXPECT_EQ(label(signals[0], "service"), "bwdserver");
    // Outside the 5m tolerance, either way: refused.
    const std::string old_ts = "1772725619";  // 5m01s before
    EXPECT_EQ(
        generic(body, old_ts, sign_generic("generic", old_ts, body)).result(), http::status::unauthorized
    );
    const std::string edge = "1772725620";  // exactly 5m before
    const std::string body2 = R"({"service":"bwdserver","version":"2","status":"success"})";
    EXPECT_EQ(generic(body2, edge, sign_generic("generic", edge, body2)).result(), http::status::accepted);
    EXPECT_EQ(generic(body, ts, sign_generic("github-secret", ts, body)).result(), http::status::forbidden);
    EXPECT_EQ(generic(body, "", sign_generic("generic", ts, body)).result(), http::status::bad_request);
    EXPECT_EQ(generic(body, ts, "").result(), http::status::bad_request);
    EXPECT_EQ(signals.size(), 2u);
}

}  // namespace
}  // namespace runbookd::intake::deploys
