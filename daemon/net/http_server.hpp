#pragma once
// The inbound HTTP server: one coroutine per connection on the loop thread, with
// Beast's limits (body, header, time, connections), keep-alive and a bounded stop.

#include "log/log.hpp"
#include "net/router.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace runbookd::net {

struct server_limits {
    std::size_t max_body_bytes = 1024 * 1024;
    std::size_t max_header_bytes = 16 * 1024;
    std::chrono::milliseconds header_timeout = std::chrono::seconds{10};
    std::chrono::milliseconds body_timeout = std::chrono::seconds{30};
    std::chrono::milliseconds idle_timeout = std::chrono::seconds{60};
    std::size_t max_connections = 512;
};

/// Serves `router` on one address. Runs entirely on the executor it is given, which
/// must be the loop's single thread; not thread-safe.
class http_server {
public:
    http_server(
        boost::asio::any_io_executor ex,
        const router& routes,
        server_limits limits,
        log::logger log,
        prometheus::Registry& metrics
    );
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Binds and starts accepting; returns the bound endpoint (port 0 resolved).
    boost::asio::ip::tcp::endpoint listen(const std::string& address, std::uint16_t port);

    /// Stops accepting and closes every connection once its current response is written.
    void stop();

    std::size_t connections() const noexcept;

private:
    struct state;
    std::shared_ptr<state> state_;
};

}  // namespace runbookd::net
