#include "sources/google/credentials.hpp"

#include "crypto/base64.hpp"
#include "crypto/sign.hpp"
#include "loop/clock.hpp"
#include "net/url.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace runbookd::sources::google {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

/// The JWT bearer grant type, form-encoded (RFC 7523).
constexpr std::string_view grant_type = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
constexpr std::string_view default_token_uri = "https://oauth2.googleapis.com/token";

failure bad(std::string what) {
    return make_failure(errc::upstream_rejected, "google credentials: " + std::move(what));
}

std::string joined(const std::vector<std::string>& v, std::string_view sep) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : std::string{sep}) + s;
    }
    return out;
}

std::string token_url_of(const credential_settings& s) {
    if (!s.token_url.empty()) {
        return s.token_url;
    }
    return s.key.token_uri.empty() ? std::string{default_token_uri} : s.key.token_uri;
}

}  // namespace

result<std::string> make_assertion(
    const service_account_key& key, std::string_view scopes, std::string_view audience, wall_time now
) {
    const long long iat =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() - 10;
    json header = {{"alg", "RS256"}, {"typ", "JWT"}};
    if (!key.private_key_id.empty()) {
        header["kid"] = key.private_key_id;
    }
    const json claims = {
        {"iss", key.client_email},
        {"scope", scopes},
        {"aud", audience},
        {"iat", iat},
        {"exp", iat + 3600},
    };
    const std::string input =
        crypto::base64url_encode(header.dump()) + "." + crypto::base64url_encode(claims.dump());
    std::string why;
    const auto signature = crypto::rs256_sign(key.private_key, input, &why);
    if (!signature) {
        return make_failure(errc::config_invalid, "cannot sign with the service-account key: " + why);
    }
    return input + "." + crypto::base64url_encode(*signature);
}

result<access_token> parse_token_reply(std::string_view body, wall_time now) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return bad("the token answer is not JSON");
    }
    const auto token = doc.find("access_token");
    const auto expires_in = doc.find("expires_in");
    if (token == doc.end() || !token->is_string() || token->get<std::string>().empty()) {
        return bad("the token answer has no access_token");
    }
    if (expires_in == doc.end() || !expires_in->is_number() || expires_in->get<double>() <= 0) {
        return bad("the token answer has no positive expires_in");
    }
    return access_token{
        token->get<std::string>(),
        now + std::chrono::seconds{static_cast<long long>(expires_in->get<double>())}};
}

result<credential_settings> credentials_for(const config& g) {
    credential_settings out;
    out.metadata_url = g.metadata_url;
    out.token_url = g.token_url;
    out.timeout = g.request_timeout;
    const bool key = g.credentials == config::credential_kind::key_file ||
                     (g.credentials == config::credential_kind::automatic && !g.key_file.empty());
    if (key) {
        auto parsed = parse_key_file(g.key_json.reveal());
        if (!parsed) {
            return parsed.error();
        }
        out.from = credential_settings::kind::service_account;
        out.key = std::move(*parsed);
    }
    return out;
}

credentials::credentials(
    asio::any_io_executor ex, net::http_client& http, credential_settings settings, log::logger log
)
    : ex_(std::move(ex)), http_(http), settings_(std::move(settings)), log_(std::move(log)) {}

credentials::~credentials() = default;

std::string credentials::origin() const {
    return settings_.from == credential_settings::kind::metadata
               ? std::string{"metadata server"}
               : "service account " + settings_.key.client_email;
}

void credentials::rejected(std::string_view authorization) noexcept {
    if (cached_ && authorization == "Bearer " + cached_->token) {
        cached_.reset();
    }
}

asio::awaitable<result<std::string>> credentials::authorization() {
    while (fetching_) {
        // Another caller is fetching: wait for it (it cancels this timer), then look again.
        loop::timer wake{ex_};
        wake.expires_at(loop::steady_clock::time_point::max());
        waiters_.push_back(&wake);
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        std::erase(waiters_, &wake);
    }
    const wall_time now = loop::wall_now();
    if (!cached_ || now + early >= cached_->expires) {
        fetching_ = true;
        // However the fetch ends (an exception included), the waiters are woken.
        struct done_guard {
            credentials& c;
            ~done_guard() {
                c.fetching_ = false;
                for (auto* w : c.waiters_) {
                    w->cancel();
                }
            }
        };
        result<access_token> got = make_failure(errc::upstream_unavailable, "no token");
        {
            const done_guard done{*this};
            got = co_await fetch();
        }
        if (!got) {
            co_return got.error();
        }
        // A token shorter-lived than `early` is still used once rather than refetched forever.
        cached_ = std::move(*got);
    }
    co_return "Bearer " + cached_->token;
}

asio::awaitable<result<access_token>> credentials::fetch() {
    net::http_call call;
    call.timeout = settings_.timeout;
    call.max_body = 64 * 1024;
    std::string where;
    if (settings_.from == credential_settings::kind::metadata) {
        where = "the metadata server";
        call.url = settings_.metadata_url +
                   "/computeMetadata/v1/instance/service-accounts/default/token?scopes=" +
                   net::percent_encode(joined(settings_.scopes, ","));
        call.headers["Metadata-Flavor"] = "Google";
    } else {
        where = "the token endpoint";
        const std::string audience = token_url_of(settings_);
        auto jwt = make_assertion(settings_.key, joined(settings_.scopes, " "), audience, loop::wall_now());
        if (!jwt) {
            co_return jwt.error();
        }
        call.method = "POST";
        call.url = audience;
        call.headers["Content-Type"] = "application/x-www-form-urlencoded";
        call.body = "grant_type=" + std::string{grant_type} + "&assertion=" + *jwt;
    }
    const wall_time asked = loop::wall_now();
    auto reply = co_await http_.send(std::move(call));
    if (!reply) {
        co_return bad("cannot reach " + where + ": " + reply.error().error.detail);
    }
    if (reply->status != 200) {
        co_return bad(where + " answered " + api_error_text(reply->status, reply->body));
    }
    if (settings_.from == credential_settings::kind::metadata &&
        reply->header("metadata-flavor") != "Google") {
        // Something else answers at that address (a proxy, a captive portal): not trusted.
        co_return bad("the metadata server's answer lacks Metadata-Flavor: Google");
    }
    auto token = parse_token_reply(reply->body, asked);
    if (token) {
        log_.info("google token fetched", {{"from", origin()}, {"expires", format_rfc3339(token->expires)}});
    }
    co_return token;
}

}  // namespace runbookd::sources::google
