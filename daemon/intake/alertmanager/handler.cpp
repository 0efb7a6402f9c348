#include "intake/alertmanager/handler.hpp"

#include "crypto/base64.hpp"
#include "crypto/digest.hpp"
#include "intake/content_type.hpp"
#include "intake/webhook_metrics.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <openssl/crypto.h>

namespace runbookd::intake::alertmanager {

namespace http = boost::beast::http;

namespace {

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr std::string_view results[] = {
    "accepted",
    "duplicate",
    "missing_auth",
    "bad_auth",
    "malformed",
    "unsupported_version",
    "unsupported_media_type",
};

/// Strips a case-insensitive auth scheme ("Bearer ") from a header value.
std::optional<std::string_view> after_scheme(std::string_view header, std::string_view scheme) {
    if (header.size() <= scheme.size() || header[scheme.size()] != ' ') {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        if (lower(header[i]) != lower(scheme[i])) {
            return std::nullopt;
        }
    }
    std::string_view rest = header.substr(scheme.size() + 1);
    while (!rest.empty() && rest.front() == ' ') {
        rest.remove_prefix(1);
    }
    while (!rest.empty() && rest.back() == ' ') {
        rest.remove_suffix(1);
    }
    return rest;
}

/// Compares fixed-length digests without an early exit: the time taken depends on
/// neither which configured credential matched nor where a wrong one differs.
bool any_equal(const std::string& digest, const std::vector<std::string>& candidates) {
    bool match = false;
    for (const auto& c : candidates) {
        match |= c.size() == digest.size() && CRYPTO_memcmp(c.data(), digest.data(), digest.size()) == 0;
    }
    return match;
}

}  // namespace

bool last_states::update(const std::string& group, const std::string& state) {
    if (capacity_ == 0) {
        return true;
    }
    if (auto it = by_group_.find(group); it != by_group_.end()) {
        order_.splice(order_.end(), order_, it->second.at);  // most recently notified now
        if (it->second.state == state) {
            return false;
        }
        it->second.state = state;
        return true;
    }
    if (by_group_.size() == capacity_) {
        by_group_.erase(order_.front());
        order_.pop_front();
    }
    order_.push_back(group);
    by_group_.emplace(group, entry{state, std::prev(order_.end())});
    return true;
}

bool last_states::repeats(const std::string& group, const std::string& state) {
    const auto it = by_group_.find(group);
    if (it == by_group_.end() || it->second.state != state) {
        return false;
    }
    order_.splice(order_.end(), order_, it->second.at);
    return true;
}

credentials::credentials(
    const std::vector<secret<std::string>>& bearer_tokens, std::string_view user, std::string_view password
) {
    for (const auto& t : bearer_tokens) {
        bearer_digests_.push_back(crypto::sha256_hex(t.reveal()));
    }
    if (!user.empty()) {
        basic_digest_ = crypto::sha256_hex(std::string{user} + ":" + std::string{password});
    }
}

credentials::check credentials::verify(std::string_view authorization) const {
    if (authorization.empty()) {
        return check::missing;
    }
    if (const auto token = after_scheme(authorization, "Bearer")) {
        if (bearer_digests_.empty()) {
            return check::unsupported_scheme;
        }
        return any_equal(crypto::sha256_hex(*token), bearer_digests_) ? check::valid : check::mismatch;
    }
    if (const auto encoded = after_scheme(authorization, "Basic")) {
        if (basic_digest_.empty()) {
            return check::unsupported_scheme;
        }
        const auto decoded = crypto::base64_decode(*encoded);
        if (!decoded) {
            return check::mismatch;
        }
        return any_equal(crypto::sha256_hex(*decoded), {basic_digest_}) ? check::valid : check::mismatch;
    }
    return check::unsupported_scheme;
}

webhook_handler::webhook_handler(
    const config& cfg, mapping map, event_sink sink, log::logger log, prometheus::Registry& metrics
)
    : auth_(cfg.bearer_tokens, cfg.basic_username, cfg.basic_password.reveal()),
      map_(std::move(map)),
      seen_(cfg.dedupe_capacity),
      sink_(std::move(sink)),
      log_(std::move(log)),
      results_(webhook_results(metrics)) {
    for (const auto r : results) {
        counter(r);
    }
    accepted_ = &counter("accepted");
    duplicate_ = &counter("duplicate");
    auto& notifications = prometheus::BuildCounter()
                              .Name("runbookd_alertmanager_notifications_total")
                              .Help("Accepted Alertmanager notifications (new group states), by status.")
                              .Register(metrics);
    firing_ = &notifications.Add({{"status", "firing"}});
    resolved_ = &notifications.Add({{"status", "resolved"}});
    unmapped_ = &prometheus::BuildCounter()
                     .Name("runbookd_alertmanager_unmapped_total")
                     .Help("Accepted Alertmanager notifications whose labels matched no service's matchers.")
                     .Register(metrics)
                     .Add({});
}

prometheus::Counter& webhook_handler::counter(std::string_view result) {
    return results_.Add({{"source", "alertmanager"}, {"result", std::string{result}}});
}

net::response webhook_handler::refuse(
    const net::request& req, std::string_view result, unsigned status, std::string_view why
) {
    counter(result).Increment();
    log_.warn("webhook refused", {{"reason", std::string{why}}});
    return net::make_error(req, static_cast<http::status>(status), why);
}

net::response webhook_handler::duplicate(const net::request& req, const group_state& state) {
    duplicate_->Increment();
    log_.debug("webhook duplicate", {{"incident", state.group_id}, {"state", state.state_key}});
    return net::make_response(req, http::status::ok, R"({"status":"duplicate"})");
}

net::response webhook_handler::operator()(const net::request& req) {
    // Authenticate before parsing: nothing unauthenticated reaches the JSON parser.
    // Alertmanager retries only 5xx answers, so every refusal here is a 4xx: a retry would
    // be refused again.
    if (!has_json_body(req)) {
        return refuse(req, "unsupported_media_type", 415, "Content-Type must be application/json");
    }
    switch (auth_.verify(req[http::field::authorization])) {
        case credentials::check::valid: break;
        case credentials::check::missing: {
            auto r = refuse(req, "missing_auth", 401, "missing Authorization header");
            r.set(http::field::www_authenticate, R"(Bearer realm="runbookd")");
            return r;
        }
        case credentials::check::unsupported_scheme:
            return refuse(req, "missing_auth", 401, "Authorization scheme not configured for this endpoint");
        case credentials::check::mismatch: return refuse(req, "bad_auth", 401, "credentials do not match");
    }
    if (req.body().empty()) {
        return refuse(req, "malformed", 400, "empty body");
    }
    // A repeat is known from the group's state alone. The fast pass reads just that, and the
    // state it finds is compared with the one the full parse recorded: a body it has any doubt
    // about, and every new state, goes through the full parse below.
    if (const auto peeked = peek_state(req.body());
        peeked && seen_.repeats(peeked->group_id, peeked->state_key)) {
        return duplicate(req, *peeked);
    }
    auto parsed = parse_notification(req.body());
    if (!parsed) {
        counter("malformed").Increment();
        log_.warn("webhook refused", {{"reason", "malformed"}, {"error", parsed.error().detail}});
        return net::make_error(req, http::status::bad_request, parsed.error().detail);
    }
    if (parsed->version != supported_version) {
        counter("unsupported_version").Increment();
        const std::string why = "unsupported payload version '" + parsed->version.substr(0, 16) +
                                "': this endpoint reads Alertmanager's version 4";
        log_.warn("webhook refused", {{"reason", why}});
        return net::make_error(req, http::status::bad_request, why);
    }
    // The event is built only for a new state.
    const auto state = state_of(*parsed);
    if (!seen_.update(state.group_id, state.state_key)) {
        return duplicate(req, state);
    }
    auto t = translate(*parsed, map_);
    accepted_->Increment();
    (parsed->status == "firing" ? firing_ : resolved_)->Increment();
    if (!t.mapped) {
        unmapped_->Increment();
    }
    log_.info(
        "webhook accepted",
        {{"incident", t.group_id},
         {"status", parsed->status},
         {"alerts", static_cast<int>(parsed->alerts.size())},
         {"service", t.event.incident.service_id.value_or("")},
         {"receiver", parsed->receiver}}
    );
    sink_(std::move(t.event));
    return net::make_response(req, http::status::ok, R"({"status":"accepted"})");
}

std::unique_ptr<webhook_handler> make(
    const config& cfg, const std::map<std::string, service_info, std::less<>>& services, context& cx
) {
    if (!cfg.enabled()) {
        return nullptr;
    }
    for (const auto& t : cfg.bearer_tokens) {
        cx.redact(t.reveal());
    }
    if (!cfg.basic_password.empty()) {
        cx.redact(cfg.basic_password.reveal());
    }
    mapping map{routes_from(services), cfg.priorities, cfg.severity_label};
    return std::make_unique<webhook_handler>(cfg, std::move(map), cx.to.on_event, cx.log, cx.metrics);
}

}  // namespace runbookd::intake::alertmanager
