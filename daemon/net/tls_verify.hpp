#pragma once
// Naming TLS failures precisely: OpenSSL's verification result as an outcome and a
// sentence ("certificate has expired (depth 1: an intermediate)"), host checking done by
// OpenSSL itself so a wrong name reads as one, and the reason of a failed handshake.
// OpenSSL stays private to runbookd::net: its types appear here only as forward
// declarations.

#include <boost/system/error_code.hpp>

#include <optional>
#include <string>
#include <string_view>

struct ssl_st;             // SSL
struct x509_store_ctx_st;  // X509_STORE_CTX

namespace runbookd::net {

/// What a TLS connection attempt came to, from the certificate's point of view first.
enum class tls_outcome {
    ok,                ///< handshake done and the chain verified for the host
    expired,           ///< a certificate of the chain (or a CRL) is past its notAfter
    not_yet_valid,     ///< a certificate of the chain (or a CRL) is before its notBefore
    name_mismatch,     ///< the certificate does not name the host (DNS name, IP address)
    untrusted_issuer,  ///< the chain does not lead to a trusted root (self-signed, unknown CA, bad signature)
    handshake_failed,  ///< no TLS, an alert, another verification failure, a reset during the handshake
    refused,           ///< the TCP connection could not be made (refused, unreachable)
    timed_out,         ///< no answer within the deadline
    unresolved,        ///< the name did not resolve
};

/// The outcome's snake_case name ("not_yet_valid"), for logs and metric labels.
std::string_view to_string(tls_outcome o) noexcept;

/// Maps an X509_V_ERR_* code (SSL_get_verify_result, X509_STORE_CTX_get_error) to an
/// outcome: X509_V_OK is `ok`, a code without a closer match is `handshake_failed`.
tls_outcome classify_verify(long x509_verify_result) noexcept;

/// A short sentence for an X509_V_ERR_* code: "certificate has expired",
/// "certificate is for another host (hostname mismatch)", "untrusted issuer (unable to get
/// local issuer certificate)". A `depth` of 1 or more (the failing certificate's place in
/// the chain, 0 being the server's own) is added: "certificate has expired (depth 1: an
/// intermediate)"; a negative depth means unknown.
std::string describe_verify(long result, int depth);

/// The first verification failure OpenSSL reported during one handshake (the verify
/// callback sees every failure; SSL_get_verify_result keeps only the last, and loses the
/// depth).
struct verify_note {
    long code = 0;   ///< X509_V_OK (0) while nothing failed
    int depth = -1;  ///< where in the chain it failed
};

/// Records the failure of one verify-callback call into `note` unless one is there
/// already. Call it from the callback with its arguments; it does not decide the
/// callback's answer.
void note_verify(bool preverified, x509_store_ctx_st* ctx, verify_note& note) noexcept;

/// Arms strict host checking on `ssl` before its handshake with OpenSSL's own matching:
/// SSL_set1_host for a DNS name, X509_VERIFY_PARAM_set1_ip_asc for an IPv4 or IPv6
/// literal (without brackets). A mismatch then fails verification with
/// X509_V_ERR_HOSTNAME_MISMATCH or X509_V_ERR_IP_ADDRESS_MISMATCH, which the callers can
/// name, where asio's host_name_verification only reported "certificate verify failed".
/// Returns an error (ssl category) when OpenSSL refuses the name.
boost::system::error_code arm_host_check(ssl_st* ssl, const std::string& host) noexcept;

/// Readies `ssl` for a client handshake with `host`: sends it as SNI (a DNS name only,
/// never an IP literal, RFC 6066 §3), then arms the host check (arm_host_check). Returns
/// why it could not, in a sentence safe to log ("cannot send <host> as SNI", "cannot check
/// the certificate for <host>: <reason>"), or nullopt when the handshake may start.
std::optional<std::string> arm_client_handshake(ssl_st* ssl, const std::string& host);

/// The sentence for a TLS error of the ssl category (asio's `get_ssl_category()`): an
/// alert the server sent names what it refused, and whose certificate ("the server refused
/// our client certificate: it has expired (TLS alert certificate_expired)", "the server
/// does not trust our client certificate's issuer (TLS alert unknown_ca)"), which
/// OpenSSL's own words ("sslv3 alert certificate expired") leave to guess; any other
/// reason is OpenSSL's, without asio's "(SSL routines)". For an error of another category,
/// its message.
std::string describe_tls_error(const boost::system::error_code& ec);

/// A TLS outcome and the sentence that explains it (safe to log: no secrets).
struct tls_diagnosis {
    tls_outcome outcome = tls_outcome::handshake_failed;
    std::string detail;
};

/// After a handshake on `ssl` completed with `ec`, says why it failed, most precise
/// first: the certificate verification failure (from `note`, else
/// SSL_get_verify_result), else the TLS error (describe_tls_error: "wrong version number"
/// when the peer answered in plain HTTP, an alert of the server's named), else the
/// transport error
/// ("Connection reset by peer", "unexpected eof (the peer closed the connection)"; beast's
/// timeout is `timed_out`). With no error and a verified chain it is {ok, "verified"}.
/// `ssl` may be null (nothing was negotiated).
tls_diagnosis diagnose_handshake(ssl_st* ssl, const boost::system::error_code& ec, const verify_note& note);

}  // namespace runbookd::net
