#pragma once
// The pure half of the certs source: what a certificate chain says (names, validity), read
// from OpenSSL's in-memory chain or from PEM text, with a cap on how much is read.
// OpenSSL stays private to this component: its types appear only as forward declarations.

#include "core/error.hpp"
#include "core/time.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

struct x509_st;        // X509
struct stack_st_X509;  // STACK_OF(X509)

namespace runbookd::sources::certs {

/// At most this many certificates of a chain are read; the rest are counted in
/// chain_info::left_out. A real chain has 2 to 4; a server may send 100, and reading each
/// costs a parse and a name decoding.
inline constexpr std::size_t max_chain_certificates = 16;

/// At most this many subjectAltNames of one certificate are kept (a CDN certificate can
/// carry hundreds); the rest are counted in cert_info::sans_left_out.
inline constexpr std::size_t max_sans = 100;

/// A subject or issuer longer than this is cut (with "...") so a hostile name cannot bloat
/// a signal or a log line.
inline constexpr std::size_t max_name_chars = 256;

/// One certificate as a reader needs it.
struct cert_info {
    std::string subject;  ///< "CN=api.example.com" when it has a CN, else the RFC 2253 one-line name
    std::string issuer;   ///< the issuer's name, the same way
    std::vector<std::string>
        sans;  ///< DNS names as written ("*.example.com"), then IP addresses ("10.0.0.1")
    std::size_t sans_left_out = 0;  ///< DNS/IP names beyond max_sans
    wall_time not_before{};
    wall_time not_after{};
    int depth = 0;  ///< place in the chain as sent: 0 is the server's own certificate
};

/// A chain as the server sent it (leaf first), or as a PEM bundle lists it.
struct chain_info {
    std::vector<cert_info> certs;  ///< never empty
    std::size_t earliest = 0;      ///< index in `certs` of the earliest not_after (the first of equals)
    std::size_t left_out = 0;      ///< certificates beyond max_chain_certificates, not read
};

/// Reads one certificate. Never fails on odd content: unreadable names become "", an
/// unreadable date the epoch.
cert_info read_certificate(const x509_st& cert, int depth);

/// A certificate's subject as cert_info::subject writes it ("CN=api.example.com"), for
/// naming the certificate a verification failure is about.
std::string subject_of(const x509_st& cert);

/// Reads the chain a server sent (SSL_get_peer_cert_chain: leaf first, intermediates
/// after). Fails (parse_failed) on a null or empty chain.
result<chain_info> read_chain(const stack_st_X509* chain);

/// Reads the CERTIFICATE blocks of a PEM text in order (tests, CA bundles). Fails
/// (parse_failed) when there is none or one is malformed; blocks beyond
/// max_chain_certificates are counted, not parsed. Other PEM blocks (keys) are skipped.
result<chain_info> read_pem_chain(std::string_view pem);

}  // namespace runbookd::sources::certs
