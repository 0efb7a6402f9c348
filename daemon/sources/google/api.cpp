#include "sources/google/api.hpp"

#include "net/retry.hpp"
#include "sources/google/parse.hpp"

namespace runbookd::sources::google {

namespace asio = boost::asio;

namespace {
/// timeSeries pages are small (a point a minute); a bigger body is not what we asked for.
constexpr std::size_t max_body = 8 * 1024 * 1024;
}  // namespace

poll_failure poll_failed(std::string what, std::optional<std::chrono::milliseconds> retry_after) {
    return poll_failure{make_failure(errc::upstream_unavailable, std::move(what)), retry_after, {}};
}

asio::awaitable<boost::system::result<std::string, poll_failure>> get(
    net::http_client& http,
    credentials* creds,
    std::string url,
    std::chrono::milliseconds timeout,
    std::string_view what
) {
    net::http_call call;
    call.url = std::move(url);
    call.timeout = timeout;
    call.max_body = max_body;
    std::string auth;
    if (creds != nullptr) {
        auto got = co_await creds->authorization();
        if (!got) {
            co_return poll_failed(got.error().detail);
        }
        auth = std::move(*got);
        call.headers["Authorization"] = auth;
    }
    auto reply = co_await http.send(std::move(call));
    if (!reply) {
        co_return poll_failed(std::string{what} + ": " + reply.error().error.detail);
    }
    if (reply->status == 200) {
        co_return std::move(reply->body);
    }
    if (reply->status == 401 && creds != nullptr) {
        creds->rejected(auth);
    }
    std::optional<std::chrono::milliseconds> retry_after;
    if (reply->status == 429 || reply->status == 503) {
        retry_after = net::parse_seconds(reply->header("retry-after"));
    }
    co_return poll_failed(std::string{what} + ": " + api_error_text(reply->status, reply->body), retry_after);
}

}  // namespace runbookd::sources::google
