#pragma once
// `certs:` (docs/sources/certs.md): the TLS endpoints whose certificates are checked.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::certs {

/// One TLS endpoint.
struct target {
    std::string host;  ///< sent as SNI, and the name the certificate must carry
    std::uint16_t port = 443;
    std::string address;                ///< connect here instead of resolving `host` (a load balancer's IP)
    std::string ca_file;                ///< empty: the section's ca_file, else the system trust store
    std::vector<std::string> services;  ///< ids under `services:`; empty: every service

    friend bool operator==(const target&, const target&) = default;
};

/// Off while no target is listed.
struct config {
    std::vector<target> targets;
    std::chrono::milliseconds interval = std::chrono::minutes{5};  ///< between rounds, jittered
    std::chrono::milliseconds timeout = std::chrono::seconds{10};  ///< per target: connect + handshake
    std::size_t concurrency = 16;                                  ///< handshakes at once
    /// A certificate expiring within this horizon is a warning line in #operations.
    std::chrono::milliseconds warn_within = std::chrono::hours{24 * 14};
    std::string ca_file;  ///< default trust for targets; empty: the system trust store

    bool enabled() const noexcept { return !targets.empty(); }
    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position.
void read(yaml::section& s, config& out);

}  // namespace runbookd::sources::certs
