#pragma once
// One bounded connection for a check that must see what a new client sees (the certs
// source's handshake, the HTTP probes): the check's deadline on the loop's clock, a lookup
// the deadline can abandon, and TLS client contexts by CA file. What fails is returned as a
// sentence; each caller names its own outcome from it.

#include "core/error.hpp"
#include "loop/clock.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace runbookd::net {

/// Where a check is, for the message when its deadline ends it.
struct check_progress {
    std::string_view step = "resolve";
};

/// Time left until `deadline`, at least 1 ms so an expired budget fails the next step.
std::chrono::steady_clock::duration remaining(loop::steady_clock::time_point deadline);

/// "timed out after 3s during tls handshake": one wording, whichever clock ended the check.
std::string timed_out_detail(std::chrono::milliseconds timeout, std::string_view step);

/// Runs `work` against `deadline` on the loop's clock (virtual in tests): its result, or
/// nullopt when the deadline came first (`work` is then cancelled). Beast's expires_after
/// bounds each socket step on its own (real) clock too; this bounds the whole, a lookup
/// included. Pass `work` as a named object moved in (GCC bug 99576).
template <class T>
boost::asio::awaitable<std::optional<T>> until_deadline(
    boost::asio::any_io_executor ex, loop::steady_clock::time_point deadline, boost::asio::awaitable<T> work
) {
    using namespace boost::asio::experimental::awaitable_operators;
    loop::timer timer{ex};
    timer.expires_at(deadline);
    auto expiry = timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    auto raced = co_await (std::move(work) || std::move(expiry));
    if (raced.index() == 0) {
        co_return std::move(std::get<0>(raced));
    }
    co_return std::nullopt;
}

/// The addresses of `host` at `port`: an IP literal is its own, without a lookup. A lookup
/// runs on Asio's resolver thread and its answer comes back through a channel, which the
/// deadline can cancel where getaddrinfo cannot (an abandoned lookup finishes in the
/// background, into a channel no one reads). Fails with "resolve <host>: <reason>" or
/// "resolve <host>: no address".
boost::asio::awaitable<result<std::vector<boost::asio::ip::tcp::endpoint>>> resolve_endpoints(
    boost::asio::any_io_executor ex, std::string host, std::uint16_t port
);

/// TLS client contexts, one per CA file, each loaded on first use: TLS 1.2 or later and
/// peer verification always on. Not thread-safe (the loop's).
class tls_client_contexts {
public:
    tls_client_contexts();
    ~tls_client_contexts();
    tls_client_contexts(const tls_client_contexts&) = delete;
    tls_client_contexts& operator=(const tls_client_contexts&) = delete;

    /// The context that trusts `ca_file` ("": the system store). Fails (config_invalid,
    /// "cannot load CA certificates from '<file>': <reason>") when it cannot be read.
    result<boost::asio::ssl::context*> get(const std::string& ca_file);

private:
    std::map<std::string, std::unique_ptr<boost::asio::ssl::context>> by_file_;
};

}  // namespace runbookd::net
