#include "sources/probes/parse.hpp"

#include "core/chars.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>

namespace runbookd::sources::probes {
namespace {

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out;
}

unsigned to_status(std::string_view digits) {
    unsigned v = 0;
    for (const char c : digits) {
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

bool valid_status(unsigned s) noexcept {
    return s >= 100 && s <= 599;
}

// Google's own error page (the GFE's, the same on google.com): "<b>502.</b> <ins>That’s an
// error.</ins>" with a typographic apostrophe, and the sentence of a 502 or 503 from the
// load balancer.
constexpr std::string_view google_markers[] = {
    "That\xE2\x80\x99s an error.",
    "That's an error.",
    "The server encountered a temporary error and could not complete your request",
};

}  // namespace

parsed_url parse_url(std::string_view text) {
    parsed_url out;
    auto u = boost::urls::parse_uri(text);  // a fragment is read, to be refused by name
    if (!u || !u->has_authority()) {
        out.reason = "not an absolute http:// or https:// URL";
        return out;
    }
    endpoint e;
    if (u->scheme() == "https") {
        e.tls = true;
    } else if (u->scheme() == "http") {
        e.tls = false;
    } else {
        out.reason = "the scheme must be http or https";
        return out;
    }
    if (u->has_userinfo()) {
        out.reason = "credentials in the URL are not allowed (the URL is shown in #operations)";
        return out;
    }
    if (u->has_fragment()) {
        out.reason = "a fragment (#...) is never sent: remove it";
        return out;
    }
    e.host = u->host_address();
    if (e.host.empty()) {
        out.reason = "the URL has no host";
        return out;
    }
    e.port = e.tls ? 443 : 80;
    if (u->has_port()) {
        if (u->port_number() == 0) {
            out.reason = "the port must be 1 to 65535";
            return out;
        }
        e.port = u->port_number();
    }
    e.target = u->encoded_path().empty() ? "/" : std::string{u->encoded_path()};
    if (u->has_query()) {
        e.target += "?" + std::string{u->encoded_query()};
    }
    e.host_header = std::string{u->encoded_host()};
    if (u->has_port()) {
        e.host_header += ":" + std::to_string(e.port);
    }
    out.where = std::move(e);
    return out;
}

std::optional<status_range> parse_status(std::string_view text) {
    if (text.size() == 3 && is_digit(text[0]) && text.substr(1) == "xx") {
        const unsigned c = static_cast<unsigned>(text[0] - '0');
        if (c < 1 || c > 5) {
            return std::nullopt;
        }
        return status_range{c * 100, c * 100 + 99};
    }
    if (const auto dash = text.find('-'); dash != std::string_view::npos) {
        const auto a = text.substr(0, dash);
        const auto b = text.substr(dash + 1);
        if (a.size() != 3 || b.size() != 3 || !all_digits(a) || !all_digits(b)) {
            return std::nullopt;
        }
        const status_range r{to_status(a), to_status(b)};
        if (!valid_status(r.from) || !valid_status(r.to) || r.from > r.to) {
            return std::nullopt;
        }
        return r;
    }
    if (text.size() != 3 || !all_digits(text) || !valid_status(to_status(text))) {
        return std::nullopt;
    }
    return status_range{to_status(text), to_status(text)};
}

bool status_expected(const std::vector<status_range>& expect, unsigned status) noexcept {
    return std::any_of(expect.begin(), expect.end(), [&](const status_range& r) {
        return status >= r.from && status <= r.to;
    });
}

std::string describe_expect(const std::vector<status_range>& expect) {
    std::string out;
    for (const auto& r : expect) {
        std::string one;
        if (r.from == r.to) {
            one = std::to_string(r.from);
        } else if (r.from % 100 == 0 && r.to == r.from + 99) {
            one = std::to_string(r.from / 100) + "xx";
        } else {
            one = std::to_string(r.from) + "-" + std::to_string(r.to);
        }
        out += (out.empty() ? "" : ",") + one;
    }
    return out;
}

std::string_view to_string(outcome o) noexcept {
    switch (o) {
        case outcome::ok: return "ok";
        case outcome::wrong_status: return "wrong_status";
        case outcome::body_mismatch: return "body_mismatch";
        case outcome::timed_out: return "timed_out";
        case outcome::reset: return "reset";
        case outcome::refused: return "refused";
        case outcome::tls_error: return "tls_error";
        case outcome::dns_failure: return "dns_failure";
        case outcome::bad_response: return "bad_response";
    }
    return "unknown";
}

bool is_google_error_page(unsigned status, std::string_view body) noexcept {
    if (status < 500 || status > 599) {
        return false;
    }
    return std::any_of(std::begin(google_markers), std::end(google_markers), [&](std::string_view m) {
        return body.find(m) != std::string_view::npos;
    });
}

check_result judge(const target& t, unsigned status, std::string_view body, bool truncated) {
    check_result r;
    r.status = status;
    r.google_frontend = is_google_error_page(status, body);
    const std::string http = "HTTP " + std::to_string(status);
    if (!status_expected(t.expect, status)) {
        r.what = outcome::wrong_status;
        r.detail = http + (r.google_frontend ? " from Google's load balancer (its own error page)" : "") +
                   " (expected " + describe_expect(t.expect) + ")";
        return r;
    }
    if (!t.body_contains.empty() && body.find(t.body_contains) == std::string_view::npos) {
        r.what = outcome::body_mismatch;
        // The text itself is config, not secret, but it can be long: named by its length.
        r.detail = http + " without the expected text (" + std::to_string(t.body_contains.size()) +
                   " bytes) in the body" +
                   (truncated ? " (first " + std::to_string(max_body_read / 1024) + " KiB read)" : "");
        return r;
    }
    r.what = outcome::ok;
    r.detail = http;
    return r;
}

verdict tracker::observe(bool ok, wall_time at, const thresholds& th) {
    history_.push_back(ok);
    while (history_.size() > std::max<std::size_t>(th.flap_window, 1)) {
        history_.pop_front();
    }
    std::size_t changes = 0;
    for (std::size_t i = 1; i < history_.size(); ++i) {
        changes += history_[i] != history_[i - 1] ? 1 : 0;
    }
    verdict v;
    v.flapping = th.flap_changes > 0 && changes >= th.flap_changes;
    if (ok) {
        if (counted_) {
            v.what = verdict::kind::recovered;
            v.since = since_;
        }
        consecutive_ = 0;
        counted_ = false;
        return v;
    }
    if (consecutive_ == 0) {
        since_ = at;
    }
    ++consecutive_;
    v.consecutive = consecutive_;
    v.since = since_;
    if (consecutive_ >= std::max<std::size_t>(th.failures_before_alert, 1) || v.flapping) {
        counted_ = true;
        v.what = verdict::kind::failure;
    }
    return v;
}

signal failure_signal(
    const target& t, const check_result& r, const verdict& v, wall_time at, std::size_t gfe_hosts
) {
    signal s;
    s.set_kind("probe.failure");
    s.source = "probes";
    s.subject = t.name;
    s.at = at;
    s.value = std::chrono::duration<double>(r.took).count();
    s.set("target", t.name);
    s.set("url", t.url);
    s.set("status", r.status == 0 ? std::string{} : std::to_string(r.status));
    s.set("error", r.detail);
    s.set("outcome", std::string{to_string(r.what)});
    s.set("tls", r.tls);
    s.set("answered_by", r.status == 0 ? std::string{} : r.google_frontend ? "google_frontend" : "backend");
    s.set("since", format_rfc3339_seconds(v.since));
    s.set("consecutive", std::to_string(v.consecutive));
    s.set("flapping", v.flapping ? "true" : "false");
    s.set("gfe_hosts", std::to_string(gfe_hosts));
    s.set("canvas", t.ops_canvas);
    s.set("services", t.services.empty() ? std::string{"*"} : joined(t.services));
    return s;
}

signal recovered_signal(const target& t, const check_result& r, const verdict& v, wall_time at) {
    signal s;
    s.set_kind("probe.recovered");
    s.source = "probes";
    s.subject = t.name;
    s.at = at;
    s.value = std::chrono::duration<double>(at - v.since).count();
    s.set("target", t.name);
    s.set("url", t.url);
    s.set("status", r.status == 0 ? std::string{} : std::to_string(r.status));
    s.set("since", format_rfc3339_seconds(v.since));
    s.set("flapping", v.flapping ? "true" : "false");
    s.set("canvas", t.ops_canvas);
    s.set("services", t.services.empty() ? std::string{"*"} : joined(t.services));
    return s;
}

}  // namespace runbookd::sources::probes
