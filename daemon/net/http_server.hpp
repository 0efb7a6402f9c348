#pragma once
// The inbound HTTP server: one coroutine per connection on the loop thread, with
// Beast's limits (body, header, time, connections in all and per client address),
// keep-alive and a bounded stop.

#include "log/log.hpp"
#include "loop/clock.hpp"
#include "net/router.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace runbookd::net {

struct server_limits {
    std::size_t max_body_bytes = 1024 * 1024;
    std::size_t max_header_bytes = 16 * 1024;
    /// A request's whole header must arrive within it: from the accept for a connection's
    /// first request (a connection that sends nothing is closed then), from the first byte
    /// for a later one.
    std::chrono::milliseconds header_timeout = std::chrono::seconds{10};
    std::chrono::milliseconds body_timeout = std::chrono::seconds{30};
    /// A keep-alive connection may wait this long for its next request's first byte.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds{60};
    std::size_t max_connections = 512;
    std::size_t max_connections_per_client = 64;  ///< open connections from one address
};

/// How often the server logs refused connections: one line, then at most one a period,
/// each saying how many refusals it stands for.
inline constexpr std::chrono::seconds refused_log_period{10};

/// Lets a repeated event be logged at once and then at most once per `period`, each line
/// standing for the events since the last one. Pure: the caller passes the time.
class log_throttle {
public:
    explicit log_throttle(std::chrono::milliseconds period) : period_(period) {}

    /// Counts one event at `now`. Returns the number of events the line due now stands for
    /// (this one and those held back since the last line), or 0 when no line is due yet.
    std::size_t note(loop::steady_clock::time_point now);

private:
    std::chrono::milliseconds period_;
    std::optional<loop::steady_clock::time_point> last_;
    std::size_t held_ = 0;
};

/// Serves `router` on one address. Runs entirely on the executor it is given, which
/// must be the loop's single thread; not thread-safe.
class http_server {
public:
    /// `name` ("main", "admin") is the `listener` label of its metrics and a field of its
    /// log lines; two servers on one registry must have different names.
    http_server(
        boost::asio::any_io_executor ex,
        const router& routes,
        server_limits limits,
        log::logger log,
        prometheus::Registry& metrics,
        std::string name = "main"
    );
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Binds and starts accepting; returns the bound endpoint (port 0 resolved).
    boost::asio::ip::tcp::endpoint listen(const std::string& address, std::uint16_t port);

    /// Stops accepting and closes every connection once its current response is written.
    void stop();

    std::size_t connections() const noexcept;

    /// Runs before each response is written; it may wait (until the request's effect is
    /// durable) and change the response (to a 503 when it cannot be made so).
    using reply_hook = std::function<boost::asio::awaitable<void>(const request&, response&)>;
    void before_reply(reply_hook hook);

private:
    struct state;
    std::shared_ptr<state> state_;
};

}  // namespace runbookd::net
