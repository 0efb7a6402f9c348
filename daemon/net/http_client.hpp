#pragma once
// Outbound HTTP: the one interface every notifier and source calls (faked in tests).

#include "core/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace runbookd::net {

/// One outbound request. `url` is absolute (https://host[:port]/path?query).
struct http_call {
    std::string method = "GET";
    std::string url;
    std::map<std::string, std::string> headers;
    std::string body;
    std::chrono::milliseconds timeout = std::chrono::seconds{10};
    std::size_t max_body = 4 * 1024 * 1024;  ///< a longer body fails the call
    /// stream() only: the longest silence (connecting, then between two pieces) before
    /// the stream fails as timed out; zero: only `timeout` applies.
    std::chrono::milliseconds idle_timeout{0};
};

/// The answer, whatever its status. Header names are lower-case.
struct http_reply {
    unsigned status = 0;
    std::map<std::string, std::string> headers;
    std::string body;

    /// The header's value, or "" when absent. `name` must be lower-case.
    std::string header(const std::string& name) const;
};

/// A transport failure (no HTTP status). `sent` is true when the request may have
/// reached the server (the failure came after the request was written).
struct transport_failure {
    failure error;
    bool sent = false;
};

/// Sends requests. Implementations must never log or return the URL's path or query
/// (they may carry secrets); errors name only scheme, host and port.
class http_client {
public:
    virtual ~http_client() = default;
    virtual boost::asio::awaitable<boost::system::result<http_reply, transport_failure>> send(http_call call
    ) = 0;

    /// Receives each piece of a response body as it arrives; returning false stops reading.
    using body_sink = std::function<bool(std::string_view piece)>;

    /// Streams a long response (a Kubernetes watch): on a 2xx status `sink` first gets an
    /// empty piece (the stream is up), then the body piece by piece, and the reply comes
    /// back with an empty body when the server ends it (or the sink stops); any other status is read whole
    /// (up to `max_body`) into the reply. A stream never reuses or pools its connection; `timeout` bounds all
    /// of it.
    virtual boost::asio::awaitable<boost::system::result<http_reply, transport_failure>> stream(
        http_call call, body_sink sink
    ) = 0;

    /// Shutdown: aborts calls in flight (they fail at once) and closes idle connections.
    virtual void shutdown() noexcept {}
};

}  // namespace runbookd::net
