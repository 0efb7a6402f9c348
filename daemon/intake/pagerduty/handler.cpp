#include "intake/pagerduty/handler.hpp"

#include "intake/content_type.hpp"
#include "intake/pagerduty/parse.hpp"
#include "intake/pagerduty/signature.hpp"
#include "intake/webhook_metrics.hpp"
#include "loop/clock.hpp"

#include <boost/beast/http/status.hpp>

namespace runbookd::intake::pagerduty {

namespace http = boost::beast::http;

namespace {
constexpr std::string_view results[] = {
    "accepted",
    "duplicate",
    "ping",
    "ignored",
    "unknown_type",
    "missing_signature",
    "bad_signature",
    "malformed",
    "stale",
    "unsupported_media_type",
};
}  // namespace

webhook_handler::webhook_handler(
    std::vector<secret<std::string>> secrets,
    std::size_t dedupe_capacity,
    std::chrono::milliseconds max_age,
    event_sink sink,
    log::logger log,
    prometheus::Registry& metrics
)
    : secrets_(std::move(secrets)),
      max_age_(max_age),
      seen_(dedupe_capacity * 2),  // two ids per webhook: X-Webhook-Id and event.id
      sink_(std::move(sink)),
      log_(std::move(log)),
      results_(webhook_results(metrics)),
      events_(prometheus::BuildCounter()
                  .Name("runbookd_pagerduty_events_total")
                  .Help("Accepted PagerDuty incident events, by event type.")
                  .Register(metrics)) {
    for (const auto r : results) {
        counter(r);
    }
    accepted_ = &counter("accepted");
    duplicate_ = &counter("duplicate");
    for (int t = 0; t <= static_cast<int>(incident_event_type::status_update_published); ++t) {
        by_type_.push_back(
            &events_.Add({{"type", std::string{to_string(static_cast<incident_event_type>(t))}}})
        );
    }
}

void webhook_handler::recovered(const incident_event& ev) {
    if (ev.origin == event_origin::webhook && !ev.event_id.empty()) {
        seen_.insert("e:" + ev.event_id);
    }
}

prometheus::Counter& webhook_handler::counter(std::string_view result) {
    return results_.Add({{"source", "pagerduty"}, {"result", std::string{result}}});
}

net::response webhook_handler::handle(const net::request& req) {
    return handle_at(req, loop::wall_now());
}

net::response webhook_handler::handle_at(const net::request& req, wall_time now) {
    const std::string_view body = req.body();
    const auto webhook_id = std::string{req["X-Webhook-Id"]};

    // Authenticate before parsing: nothing unauthenticated reaches the JSON parser.
    // Status codes follow PagerDuty's reference receiver; any 4xx but 429 is not redelivered.
    if (!has_json_body(req)) {
        counter("unsupported_media_type").Increment();
        log_.warn("webhook refused", {{"reason", "content type is not application/json"}});
        return net::make_error(
            req, http::status::unsupported_media_type, "Content-Type must be application/json"
        );
    }
    if (body.empty()) {
        counter("malformed").Increment();
        return net::make_error(req, http::status::bad_request, "empty body");
    }
    switch (verify_signature(req["X-PagerDuty-Signature"], body, secrets_)) {
        case signature_check::valid: break;
        case signature_check::missing:
            counter("missing_signature").Increment();
            log_.warn("webhook refused", {{"reason", "missing signature"}});
            return net::make_error(req, http::status::bad_request, "missing X-PagerDuty-Signature");
        case signature_check::malformed:
            counter("missing_signature").Increment();
            log_.warn("webhook refused", {{"reason", "malformed signature header"}});
            return net::make_error(req, http::status::bad_request, "malformed X-PagerDuty-Signature");
        case signature_check::mismatch:
            counter("bad_signature").Increment();
            log_.warn("webhook refused", {{"reason", "bad signature"}});
            return net::make_error(req, http::status::forbidden, "signature does not match");
    }

    // Delivery is at-least-once: a retry repeats X-Webhook-Id, so a redelivery is known
    // before its body is parsed. The same event may also arrive under a new webhook id
    // (a second subscription, a manual redelivery): event.id catches that.
    const std::string webhook_key = "w:" + webhook_id;
    if (!webhook_id.empty() && seen_.contains(webhook_key)) {
        duplicate_->Increment();
        log_.info("webhook duplicate", {{"webhook_id", webhook_id}});
        return net::make_response(req, http::status::accepted, R"({"status":"duplicate"})");
    }

    auto parsed = parse_webhook(body);
    if (!parsed) {
        counter("malformed").Increment();
        log_.warn("webhook refused", {{"reason", "malformed"}, {"error", parsed.error().detail}});
        return net::make_error(req, http::status::bad_request, parsed.error().detail);
    }
    std::string event_key = "e:" + parsed->event_id;
    if (seen_.contains(event_key)) {
        duplicate_->Increment();
        log_.info("webhook duplicate", {{"event_id", parsed->event_id}, {"webhook_id", webhook_id}});
        return net::make_response(req, http::status::accepted, R"({"status":"duplicate"})");
    }
    // Signed once, a webhook could be replayed forever: news older than max_age is refused.
    // The answer is a 2xx all the same: PagerDuty redelivers a 5xx or a 429 for up to 48 h,
    // and after three 4xx answers in a row it disables the subscription for a day (api-facts
    // §1.1), so a stale redelivery must not cost the next real page.
    if (parsed->occurred_at && *parsed->occurred_at < now - max_age_) {
        counter("stale").Increment();
        log_.warn(
            "webhook refused",
            {{"reason", "stale"},
             {"event_id", parsed->event_id},
             {"event_type", parsed->event_type},
             {"occurred_at", format_rfc3339(*parsed->occurred_at)},
             {"max_age", format_duration(max_age_)}}
        );
        return net::make_response(req, http::status::accepted, R"({"status":"stale"})");
    }
    seen_.insert(std::move(event_key));
    if (!webhook_id.empty()) {
        seen_.insert(webhook_key);
    }

    switch (parsed->kind) {
        case payload_kind::ping:
            counter("ping").Increment();
            log_.info("webhook ping");
            return net::make_response(req, http::status::ok, R"({"status":"pong"})");
        case payload_kind::ignored:
        case payload_kind::unknown:
            counter(parsed->kind == payload_kind::ignored ? "ignored" : "unknown_type").Increment();
            log_.info("webhook ignored", {{"event_type", parsed->event_type}});
            return net::make_response(req, http::status::accepted, R"({"status":"ignored"})");
        case payload_kind::incident: break;
    }
    accepted_->Increment();
    auto& ev = *parsed->event;
    by_type_[static_cast<std::size_t>(ev.type)]->Increment();
    log_.info(
        "webhook accepted",
        {{"event_id", ev.event_id}, {"event_type", parsed->event_type}, {"incident", ev.incident.id}}
    );
    sink_(std::move(ev));
    return net::make_response(req, http::status::accepted, R"({"status":"accepted"})");
}

std::unique_ptr<webhook_handler> make(const config& cfg, context& cx) {
    for (const auto& s : cfg.webhook_secrets) {
        cx.redact(s.reveal());
    }
    return std::make_unique<webhook_handler>(
        cfg.webhook_secrets, cfg.dedupe_capacity, cfg.max_age, cx.to.on_event, cx.log, cx.metrics
    );
}

}  // namespace runbookd::intake::pagerduty
