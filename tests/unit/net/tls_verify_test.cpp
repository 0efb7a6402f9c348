#include "net/tls_verify.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace runbookd::net {
namespace {

/// The error asio hands over when OpenSSL fails with `reason` (library SSL).
boost::system::error_code ssl_error(int reason) {
    return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)), boost::asio::error::get_ssl_category()};
}

TEST(tls_verify, an_alert_of_the_server_says_whose_certificate_it_refused) {
    const std::pair<int, std::string_view> cases[] = {
        {SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED,
         "the server refused our client certificate: it has expired (TLS alert certificate_expired)"},
        {SSL_R_TLSV1_ALERT_UNKNOWN_CA,
         "the server does not trust our client certificate's issuer (TLS alert unknown_ca)"},
        {SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED,
         "the server requires a client certificate and none was sent (TLS alert certificate_required)"},
        {SSL_R_SSLV3_ALERT_BAD_CERTIFICATE,
         "the server refused our client certificate (TLS alert bad_certificate)"},
        {SSL_R_TLSV1_ALERT_PROTOCOL_VERSION,
         "the server speaks no TLS version we do (1.2 or 1.3) (TLS alert protocol_version)"},
    };
    for (const auto& [reason, sentence] : cases) {
        EXPECT_EQ(describe_tls_error(ssl_error(reason)), sentence) << reason;
        // The same words when it ends the handshake.
        const auto d = diagnose_handshake(nullptr, ssl_error(reason), verify_note{});
        EXPECT_EQ(d.outcome, tls_outcome::handshake_failed);
        EXPECT_EQ(d.detail, sentence);
    }
}

TEST(tls_verify, other_tls_errors_keep_openssls_words_without_asios_suffix) {
    // The daemon's TLS contexts load OpenSSL's error strings; this test makes none.
    ASSERT_EQ(OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS, nullptr), 1);
    EXPECT_EQ(describe_tls_error(ssl_error(SSL_R_WRONG_VERSION_NUMBER)), "wrong version number");
    EXPECT_EQ(
        describe_tls_error(boost::asio::error::connection_reset),
        boost::system::error_code{boost::asio::error::connection_reset}.message()
    );
}

}  // namespace
}  // namespace runbookd::net
