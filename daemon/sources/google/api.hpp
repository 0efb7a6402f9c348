#pragma once
// One GET of a Google API, as every Google source's poll job makes it: a bearer token from
// the credentials (when the API needs one), a bounded body, and a failure said in a few
// words with a 429's or 503's Retry-After.

#include "net/http_client.hpp"
#include "sources/google/credentials.hpp"
#include "sources/poller.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace runbookd::sources::google {

/// A failed poll (upstream_unavailable) that says `what`; `retry_after` lengthens the wait.
poll_failure poll_failed(
    std::string what, std::optional<std::chrono::milliseconds> retry_after = std::nullopt
);

/// GETs `url` and returns a 200's body. With `creds`, it sends their bearer token, and a 401
/// drops that token (the next call fetches a new one); without, no Authorization is sent
/// (the public status feed). A failure names `what` ("cloud monitoring: 403
/// PERMISSION_DENIED: ..."). Runs on the loop executor, as `http` and `creds` do.
boost::asio::awaitable<boost::system::result<std::string, poll_failure>> get(
    net::http_client& http,
    credentials* creds,
    std::string url,
    std::chrono::milliseconds timeout,
    std::string_view what
);

}  // namespace runbookd::sources::google
