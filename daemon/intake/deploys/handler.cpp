#include "intake/deploys/handler.hpp"

#include "core/engine.hpp"
#include "crypto/digest.hpp"
#include "intake/content_type.hpp"
#include "intake/deploys/signature.hpp"
#include "intake/webhook_metrics.hpp"
#include "loop/clock.hpp"

#include <boost/beast/http/status.hpp>

#include <array>

namespace runbookd::intake::deploys {

namespace http = boost::beast::http;

namespace {

constexpr std::array<std::string_view, 10> results{
    "accepted",
    "duplicate",
    "ping",
    "ignored",
    "missing_signature",
    "bad_signature",
    "not_configured",
    "stale",
    "malformed",
    "unsupported_media_type",
};

constexpr std::array<std::string_view, 7> event_statuses{
    "queued", "in_progress", "success", "failure", "error", "cancelled", "other"};

millis distance(wall_time a, wall_time b) {
    return a < b ? b - a : a - b;
}

}  // namespace

webhook_handler::webhook_handler(
    const config& cfg, service_routes routes, signal_sink sink, log::logger log, prometheus::Registry& metrics
)
    : cfg_(cfg),
      routes_(std::move(routes)),
      seen_(cfg.dedupe_capacity * 2),  // two keys per delivery: its id and its event's
      sink_(std::move(sink)),
      log_(std::move(log)),
      results_(webhook_results(metrics)),  // every webhook intake's family, by source
      events_(prometheus::BuildCounter()
                  .Name("runbookd_deploy_events_total")
                  .Help("Accepted deploy statuses, by provider and status.")
                  .Register(metrics)) {
    for (const auto r : results) {
        counter(r);
    }
    for (const auto provider : {"github", "generic"}) {
        for (const auto s : event_statuses) {
            events_.Add({{"provider", provider}, {"status", std::string{s}}});
        }
    }
}

prometheus::Counter& webhook_handler::counter(std::string_view result) {
    return results_.Add({{"source", "deploys"}, {"result", std::string{result}}});
}

net::response webhook_handler::refuse(
    const net::request& req, std::string_view result, int status, std::string message
) {
    counter(result).Increment();
    log_.warn("webhook refused", {{"reason", result}, {"error", message}});
    return net::make_error(req, static_cast<http::status>(status), message);
}

net::response webhook_handler::handle(const net::request& req) {
    return handle_at(req, loop::wall_now());
}

net::response webhook_handler::handle_at(const net::request& req, wall_time now) {
    // GitHub sends application/json only when the hook's content type says so; a
    // form-encoded delivery (its default) would never parse.
    if (!has_json_body(req)) {
        return refuse(req, "unsupported_media_type", 415, "Content-Type must be application/json");
    }
    if (req.body().empty()) {
        return refuse(req, "malformed", 400, "empty body");
    }
    // Authenticate before parsing: nothing unauthenticated reaches the JSON parser.
    if (!req["X-GitHub-Event"].empty()) {
        return github(req, now);
    }
    return generic(req, now);
}

net::response webhook_handler::github(const net::request& req, wall_time now) {
    const std::string_view body = req.body();
    if (cfg_.github_secrets.empty()) {
        return refuse(
            req, "not_configured", 403, "GitHub deliveries are not configured (deploys.github_secrets)"
        );
    }
    switch (verify_github(req["X-Hub-Signature-256"], body, cfg_.github_secrets)) {
        case signature_check::valid: break;
        case signature_check::missing:
            return refuse(req, "missing_signature", 400, "missing X-Hub-Signature-256");
        case signature_check::malformed:
            return refuse(req, "missing_signature", 400, "malformed X-Hub-Signature-256 (sha256=<hex>)");
        case signature_check::mismatch: return refuse(req, "bad_signature", 403, "signature does not match");
    }
    // A redelivery (GitHub's "Redeliver", or the API) repeats X-GitHub-Delivery: known
    // before the body is parsed.
    const std::string delivery{req["X-GitHub-Delivery"]};
    const std::string delivery_key = "gh:" + delivery;
    if (!delivery.empty() && seen_.contains(delivery_key)) {
        counter("duplicate").Increment();
        log_.info("webhook duplicate", {{"delivery", delivery}});
        return net::make_response(req, http::status::accepted, R"({"status":"duplicate"})");
    }
    auto parsed = parse_github(req["X-GitHub-Event"], body, cfg_.workflows);
    if (!parsed) {
        return refuse(req, "malformed", 400, parsed.error().detail);
    }
    if (parsed->deploy) {
        // GitHub sends no timestamp header, and a delivery may be redelivered by hand for
        // days: a status is fresh when its own time is within max_age of ours. Replays inside
        // that window are caught by the delivery id and the status's own identity.
        const wall_time at = parsed->deploy->at;
        if (at < now - cfg_.max_age || at > now + cfg_.max_age) {
            return refuse(
                req,
                "stale",
                401,
                "stale or replayed delivery: its status is from " + format_rfc3339(at) + ", more than " +
                    format_duration(cfg_.max_age) + " from now (deploys.max_age)"
            );
        }
    }
    if (!delivery.empty()) {
        seen_.insert(delivery_key);
    }
    return settle(req, std::move(*parsed), delivery);
}

net::response webhook_handler::generic(const net::request& req, wall_time now) {
    const std::string_view body = req.body();
    if (cfg_.generic_secrets.empty()) {
        return refuse(
            req, "not_configured", 403, "generic deliveries are not configured (deploys.generic_secrets)"
        );
    }
    const auto ts_header = req["X-Runbookd-Timestamp"];
    const auto check = verify_generic(ts_header, req["X-Runbookd-Signature"], body, cfg_.generic_secrets);
    switch (check.signature) {
        case signature_check::valid: break;
        case signature_check::missing:
            return refuse(
                req, "missing_signature", 400, "missing X-Runbookd-Signature (or X-GitHub-Event for GitHub)"
            );
        case signature_check::malformed:
            return refuse(
                req,
                "missing_signature",
                400,
                "malformed X-Runbookd-Timestamp (unix seconds) or X-Runbookd-Signature (v1=<hex>)"
            );
        case signature_check::mismatch: return refuse(req, "bad_signature", 403, "signature does not match");
    }
    // The timestamp is signed: outside the tolerance, a captured request is a replay.
    if (distance(*check.timestamp, now) > cfg_.timestamp_tolerance) {
        return refuse(
            req,
            "stale",
            401,
            "stale or replayed delivery: X-Runbookd-Timestamp is more than " +
                format_duration(cfg_.timestamp_tolerance) + " from now (deploys.timestamp_tolerance)"
        );
    }
    // Inside it, the same signed request is the same delivery.
    const std::string delivery_key =
        "x:" + crypto::sha256_hex(std::string{ts_header} + "." + std::string{body});
    if (seen_.contains(delivery_key)) {
        counter("duplicate").Increment();
        log_.info("webhook duplicate", {{"timestamp", std::string{ts_header}}});
        return net::make_response(req, http::status::accepted, R"({"status":"duplicate"})");
    }
    auto parsed = parse_generic(body, *check.timestamp);
    if (!parsed) {
        return refuse(req, "malformed", 400, parsed.error().detail);
    }
    if (parsed->deploy && parsed->deploy->at > now + cfg_.timestamp_tolerance) {
        return refuse(req, "malformed", 400, "at: in the future");
    }
    seen_.insert(delivery_key);
    return settle(req, std::move(*parsed), {});
}

net::response webhook_handler::settle(
    const net::request& req, parsed_delivery&& p, std::string_view delivery
) {
    switch (p.kind) {
        case delivery_kind::ping:
            counter("ping").Increment();
            log_.info("webhook ping", {{"delivery", delivery}});
            return net::make_response(req, http::status::ok, R"({"status":"pong"})");
        case delivery_kind::ignored:
            counter("ignored").Increment();
            log_.info("webhook ignored", {{"what", p.why}, {"delivery", delivery}});
            return net::make_response(req, http::status::accepted, R"({"status":"ignored"})");
        case delivery_kind::deploy: break;
    }
    auto& d = *p.deploy;
    // The same status may come twice under different deliveries (two hooks on one
    // repository, an organisation's and a repository's): its identity catches that.
    std::string event_key = "e:" + d.event_key;
    if (seen_.contains(event_key)) {
        counter("duplicate").Increment();
        log_.info("webhook duplicate", {{"event", d.event_key}, {"delivery", delivery}});
        return net::make_response(req, http::status::accepted, R"({"status":"duplicate"})");
    }
    seen_.insert(std::move(event_key));
    counter("accepted").Increment();
    const bool known = known_status(d.status);
    events_.Add({{"provider", d.provider}, {"status", known ? d.status : std::string{"other"}}}).Increment();
    auto s = to_signal(d, routes_);
    log_.info(
        "deploy status",
        {{"deploy", d.subject},
         {"status", d.status},
         {"service", *s.find("service")},
         {"services", *s.find("services")},
         {"commit", d.commit},
         {"delivery", delivery}}
    );
    sink_(std::move(s));
    return net::make_response(req, http::status::accepted, R"({"status":"accepted"})");
}

std::unique_ptr<webhook_handler> make(
    const config& cfg, const std::map<std::string, service_info, std::less<>>& services, context& cx
) {
    if (!cfg.enabled()) {
        return nullptr;
    }
    for (const auto& s : cfg.github_secrets) {
        cx.redact(s.reveal());
    }
    for (const auto& s : cfg.generic_secrets) {
        cx.redact(s.reveal());
    }
    return std::make_unique<webhook_handler>(
        cfg, service_routes{services}, cx.to.on_signal, cx.log, cx.metrics
    );
}

}  // namespace runbookd::intake::deploys
