#pragma once
// The real http_client: Beast over TCP and OpenSSL, with keep-alive connection reuse.
// TLS verification is always on: a CA file replaces the system store, nothing disables it.

#include "log/log.hpp"
#include "net/http_client.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>

namespace runbookd::net {

struct tls_options {
    std::string ca_file;          ///< PEM bundle to trust; empty: `ca_pem`, else the system trust store
    std::string ca_pem;           ///< PEM text to trust (a kubeconfig's certificate-authority-data)
    std::string client_cert_pem;  ///< a client certificate chain for mutual TLS, with...
    std::string client_key_pem;   ///< ...its private key (a secret: never logged)
};

/// Runs on the loop executor only; not thread-safe. Plain http:// is allowed (config
/// validation restricts it to loopback).
class https_client final : public http_client {
public:
    /// Throws std::runtime_error when the CA or the client certificate cannot be loaded (a
    /// start-up error).
    https_client(boost::asio::any_io_executor ex, const tls_options& tls, log::logger log);
    ~https_client() override;

    boost::asio::awaitable<boost::system::result<http_reply, transport_failure>> send(http_call call
    ) override;
    boost::asio::awaitable<boost::system::result<http_reply, transport_failure>> stream(
        http_call call, body_sink sink
    ) override;
    void shutdown() noexcept override;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace runbookd::net
