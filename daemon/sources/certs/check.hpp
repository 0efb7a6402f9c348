#pragma once
// The I/O half of the certs source: one bounded TLS handshake per target that reads the
// chain the server sends and names what is wrong with it, and many targets a few at a
// time. Never sends application data.

#include "net/tls_verify.hpp"
#include "sources/certs/config.hpp"
#include "sources/certs/parse.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace runbookd::sources::certs {

/// What one check found. `target` (config.hpp) says where: `host` is the SNI and the name
/// the certificate must carry, `address` (when set) is where to connect instead, and an
/// empty `ca_file` means the system trust store.
struct check_result {
    net::tls_outcome outcome = net::tls_outcome::handshake_failed;
    /// Why, in a short sentence safe to log: "verified", "certificate has expired (depth 1:
    /// an intermediate): CN=...", "tls handshake: wrong version number", "connect to
    /// 127.0.0.1:443: Connection refused", "timed out after 3s during tls handshake".
    std::string detail;
    /// The chain the server sent, read even when it does not verify (expired, wrong
    /// name, untrusted); empty when no certificate arrived.
    std::optional<chain_info> chain;
    std::chrono::milliseconds took{0};  ///< from the start of the check to its result
};

/// Checks TLS endpoints: resolve (or take `address`), connect, handshake with SNI and
/// full verification (OpenSSL's chain building and host check), but let the handshake
/// finish whatever verification says, as Prometheus' blackbox_exporter does, so that the
/// chain of a bad certificate is still read; then close the connection.
///
/// Runs on its executor (the loop) only; not thread-safe. Keeps one OpenSSL context per CA
/// file, loaded on first use.
class checker {
public:
    explicit checker(boost::asio::any_io_executor ex);
    ~checker();
    checker(const checker&) = delete;
    checker& operator=(const checker&) = delete;

    /// Loads the trust for `ca_file` ("": the system store) now rather than at the first
    /// check, so a bad file is a start-up error. Fails (config_invalid) when it cannot be read.
    result<void> load_trust(const std::string& ca_file);

    /// Checks one target, never longer than `timeout` (resolution, connection and
    /// handshake together): a silent server is `timed_out` at the deadline, a name that
    /// takes longer to resolve too (the lookup itself finishes in the background). Never
    /// throws for anything the network or the peer does; a CA file that cannot be loaded
    /// is `handshake_failed` with the reason.
    boost::asio::awaitable<check_result> check(const target& t, std::chrono::milliseconds timeout);

    /// Called with a target's index and result as soon as its check ends.
    using on_result = std::function<void(std::size_t, const check_result&)>;

    /// Checks every target, at most `concurrency` (at least 1) at once, each within its own
    /// `timeout`: a slow target holds up only the worker checking it. Results are in the
    /// order of `targets`; `each` (when set) sees every one as it ends. Both must outlive
    /// the call (a named object: g++ 12 destroys a temporary in a co_await's full
    /// expression twice, GCC bug 99576).
    boost::asio::awaitable<std::vector<check_result>> check_all(
        std::span<const target> targets,
        std::size_t concurrency,
        std::chrono::milliseconds timeout,
        const on_result& each = no_callback
    );

    static const on_result no_callback;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace runbookd::sources::certs
