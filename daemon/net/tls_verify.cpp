#include "net/tls_verify.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace runbookd::net {

namespace {

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    return !ec;
}

/// "wrong version number" rather than asio's "wrong version number (SSL routines)".
std::string ssl_reason(const boost::system::error_code& ec) {
    const char* reason = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    return reason != nullptr ? std::string{reason} : ec.message();
}

/// What an alert the server sent says, for the alerts about certificates and about what the
/// two ends could not agree on (RFC 8446 §6.2); nullptr for any other reason. A server
/// sends these when it refuses our client certificate (mutual TLS: a kubeconfig's), or the
/// handshake itself.
const char* alert_sentence(int reason) noexcept {
    switch (reason) {
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
            return "the server refused our client certificate: it has expired (TLS alert "
                   "certificate_expired)";
        case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
            return "the server refused our client certificate: it is revoked (TLS alert certificate_revoked)";
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
            return "the server refused our client certificate (TLS alert bad_certificate)";
        case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
            return "the server refused our client certificate: unsupported (TLS alert "
                   "unsupported_certificate)";
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
            return "the server refused our client certificate (TLS alert certificate_unknown)";
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
            return "the server does not trust our client certificate's issuer (TLS alert unknown_ca)";
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        case SSL_R_SSLV3_ALERT_NO_CERTIFICATE:
            return "the server requires a client certificate and none was sent (TLS alert "
                   "certificate_required)";
        case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
            return "the server denied access to our client certificate (TLS alert access_denied)";
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
            return "the server speaks no TLS version we do (1.2 or 1.3) (TLS alert protocol_version)";
        case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
            return "the server refused the handshake: no cipher or group in common, or a client certificate "
                   "it wants (TLS alert handshake_failure)";
        case SSL_R_TLSV1_UNRECOGNIZED_NAME:
            return "the server does not serve the name we sent as SNI (TLS alert unrecognized_name)";
        default: return nullptr;
    }
}

}  // namespace

std::string describe_tls_error(const boost::system::error_code& ec) {
    if (ec.category() != boost::asio::error::get_ssl_category()) {
        return ec.message();
    }
    const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (const char* sentence = alert_sentence(reason)) {
        return sentence;
    }
    return ssl_reason(ec);
}

std::string_view to_string(tls_outcome o) noexcept {
    switch (o) {
        case tls_outcome::ok: return "ok";
        case tls_outcome::expired: return "expired";
        case tls_outcome::not_yet_valid: return "not_yet_valid";
        case tls_outcome::name_mismatch: return "name_mismatch";
        case tls_outcome::untrusted_issuer: return "untrusted_issuer";
        case tls_outcome::handshake_failed: return "handshake_failed";
        case tls_outcome::refused: return "refused";
        case tls_outcome::timed_out: return "timed_out";
        case tls_outcome::unresolved: return "unresolved";
    }
    return "handshake_failed";
}

tls_outcome classify_verify(long x509_verify_result) noexcept {
    switch (x509_verify_result) {
        case X509_V_OK: return tls_outcome::ok;

        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CRL_HAS_EXPIRED: return tls_outcome::expired;

        case X509_V_ERR_CERT_NOT_YET_VALID:
        case X509_V_ERR_CRL_NOT_YET_VALID: return tls_outcome::not_yet_valid;

        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
        case X509_V_ERR_EMAIL_MISMATCH: return tls_outcome::name_mismatch;

        // The chain does not end at a root we trust, or a link of it does not hold.
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_UNTRUSTED:
        case X509_V_ERR_CERT_REJECTED:
        case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        case X509_V_ERR_PATH_LOOP:
        case X509_V_ERR_INVALID_CA:
        case X509_V_ERR_INVALID_NON_CA:
        case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
        case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
        case X509_V_ERR_NO_ISSUER_PUBLIC_KEY:
        case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
        case X509_V_ERR_AKID_SKID_MISMATCH:
        case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH: return tls_outcome::untrusted_issuer;

        // Revoked, weak keys, bad extensions, malformed dates...: named by the detail.
        default: return tls_outcome::handshake_failed;
    }
}

std::string describe_verify(long result, int depth) {
    std::string text;
    switch (result) {
        case X509_V_OK: text = "verified"; break;
        case X509_V_ERR_CERT_HAS_EXPIRED: text = "certificate has expired"; break;
        case X509_V_ERR_CERT_NOT_YET_VALID: text = "certificate is not yet valid"; break;
        case X509_V_ERR_CRL_HAS_EXPIRED: text = "CRL has expired"; break;
        case X509_V_ERR_CRL_NOT_YET_VALID: text = "CRL is not yet valid"; break;
        case X509_V_ERR_HOSTNAME_MISMATCH:
            text = "certificate is for another host (hostname mismatch)";
            break;
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            text = "certificate is for another host (IP address mismatch)";
            break;
        case X509_V_ERR_EMAIL_MISMATCH: text = "certificate is for another address (email mismatch)"; break;
        default: {
            // OpenSSL's own words ("unable to get local issuer certificate").
            const std::string words = ::X509_verify_cert_error_string(result);
            text = classify_verify(result) == tls_outcome::untrusted_issuer
                       ? "untrusted issuer (" + words + ")"
                       : words;
        }
    }
    if (depth >= 1) {
        // Depth counts up from the server's own certificate (0) towards the root.
        const std::string where = "depth " + std::to_string(depth) + ": an intermediate";
        if (!text.empty() && text.back() == ')') {
            text.insert(text.size() - 1, ", " + where);
        } else {
            text += " (" + where + ")";
        }
    }
    return text;
}

void note_verify(bool preverified, x509_store_ctx_st* ctx, verify_note& note) noexcept {
    if (preverified || note.code != X509_V_OK || ctx == nullptr) {
        return;
    }
    note.code = ::X509_STORE_CTX_get_error(ctx);
    note.depth = ::X509_STORE_CTX_get_error_depth(ctx);
    if (note.code == X509_V_OK) {  // a callback said no without a code
        note.code = X509_V_ERR_UNSPECIFIED;
    }
}

boost::system::error_code arm_host_check(ssl_st* ssl, const std::string& host) noexcept {
    const auto openssl_error = [] {
        const auto e = ::ERR_get_error();
        return e != 0 ? boost::system::error_code{static_cast<int>(e), boost::asio::error::get_ssl_category()}
                      : boost::system::error_code{boost::asio::error::invalid_argument};
    };
    if (ssl == nullptr || host.empty()) {
        return boost::asio::error::invalid_argument;
    }
    if (is_ip_literal(host)) {
        // An IP literal is matched against the iPAddress SANs only (RFC 6125 §1.7.2).
        if (::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl), host.c_str()) != 1) {
            return openssl_error();
        }
        return {};
    }
    // DNS names, wildcards in the left-most label only (OpenSSL's default flags, the same
    // matching asio's host_name_verification did with X509_check_host).
    if (::SSL_set1_host(ssl, host.c_str()) != 1) {
        return openssl_error();
    }
    return {};
}

std::optional<std::string> arm_client_handshake(ssl_st* ssl, const std::string& host) {
    // SSL_set_tlsext_host_name without its C cast.
    if (!is_ip_literal(host) &&
        ::SSL_ctrl(
            ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str())
        ) != 1) {
        ::ERR_clear_error();
        return "cannot send " + host + " as SNI";
    }
    if (const auto ec = arm_host_check(ssl, host)) {
        return "cannot check the certificate for " + host + ": " + ec.message();
    }
    return std::nullopt;
}

tls_diagnosis diagnose_handshake(ssl_st* ssl, const boost::system::error_code& ec, const verify_note& note) {
    long code = note.code;
    int depth = note.depth;
    if (code == X509_V_OK && ssl != nullptr) {
        code = ::SSL_get_verify_result(ssl);
        depth = -1;
    }
    if (code != X509_V_OK) {
        return {classify_verify(code), describe_verify(code, depth)};
    }
    if (!ec) {
        return {tls_outcome::ok, "verified"};
    }
    if (ec == boost::beast::error::timeout) {
        return {tls_outcome::timed_out, ec.message()};
    }
    if (ec.category() == boost::asio::error::get_ssl_category()) {
        return {tls_outcome::handshake_failed, describe_tls_error(ec)};
    }
    // The peer hung up mid-handshake: asio says "stream truncated" or "End of file".
    if (ec == boost::asio::ssl::error::stream_truncated || ec == boost::asio::error::eof) {
        return {tls_outcome::handshake_failed, "unexpected eof (the peer closed the connection)"};
    }
    return {tls_outcome::handshake_failed, ec.message()};
}

}  // namespace runbookd::net
