#pragma once
// The I/O half of the probes source: one bounded HTTP(S) request per check, on a fresh
// connection, with each way it can fail told apart (DNS, refused, reset, timed out, TLS,
// not HTTP) and at most max_body_read bytes of the body read.

#include "core/error.hpp"
#include "sources/probes/parse.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace runbookd::sources::probes {

/// Sends probes. Every check resolves, connects, (for https) handshakes with SNI and full
/// verification (net/tls_verify names what fails, as the certs source does), sends one
/// request with `Connection: close` and reads the answer: a probe must see what a new
/// client sees, so connections are never pooled (net::https_client pools them, retries a
/// stale one, and fails a body over its limit, which would hide resets and caps).
///
/// Runs on its executor (the loop) only; not thread-safe. Keeps one OpenSSL context per
/// CA file, loaded on first use.
class prober {
public:
    explicit prober(boost::asio::any_io_executor ex);
    ~prober();
    prober(const prober&) = delete;
    prober& operator=(const prober&) = delete;

    /// Loads the trust for `ca_file` ("": the system store) now, so a bad file is a
    /// start-up error. Fails (config_invalid) when it cannot be read.
    result<void> load_trust(const std::string& ca_file);

    /// Checks `t` at `where`, never longer than `timeout` (the lookup included: it finishes
    /// in the background). Never throws for anything the network or the peer does.
    boost::asio::awaitable<check_result> check(
        const target& t, const endpoint& where, std::chrono::milliseconds timeout
    );

    /// Closes every connection in flight (their checks end at once, as reset); checks
    /// started afterwards still run. For stop().
    void abort_all() noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace runbookd::sources::probes
