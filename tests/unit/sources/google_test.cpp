// The shared Google client: key files and error answers (pure), and credentials (JWT
// grant, metadata server) against scripted answers, under manual time.
#include "crypto/base64.hpp"
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "fakes/scripted_http.hpp"
#include "sources/google/credentials.hpp"
#include "sources/google/parse.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>

namespace runbookd::sources::google {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace asio = boost::asio;

/// A fresh RSA key: its private half as PKCS#8 PEM and the public half to verify with.
struct rsa_key {
    std::string private_pem;
    std::shared_ptr<EVP_PKEY> key;

    rsa_key() : key(EVP_RSA_gen(2048), EVP_PKEY_free) {
        std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
        PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio.get(), &data);
        private_pem.assign(data, static_cast<std::size_t>(n));
    }

    bool verifies(std::string_view input, std::string_view signature) const {
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
        return EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
               EVP_DigestVerify(
                   ctx.get(),
                   reinterpret_cast<const unsigned char*>(signature.data()),
                   signature.size(),
                   reinterpret_cast<const unsigned char*>(input.data()),
                   input.size()
               ) == 1;
    }
};

const rsa_key& test_key() {
    static const rsa_key k;
    return k;
}

std::string base64url_decode(std::string s) {
    std::replace(s.begin(), s.end(), '-', '+');
    std::replace(s.begin(), s.end(), '_', '/');
    while (s.size() % 4 != 0) {
        s += '=';
    }
    return crypto::base64_decode(s).value_or("<bad base64>");
}

service_account_key key_of(const rsa_key& k) {
    return {
        "runbookd@acme.iam.gserviceaccount.com",
        "kid-42",
        k.private_pem,
        "https://oauth2.googleapis.com/token",
        "acme"};
}

TEST(GoogleJwt, TheAssertionIsSignedRs256AndCarriesTheGrantsClaims) {
    const wall_time now = fakes::at("2026-03-05T16:00:00Z");
    const auto jwt = make_assertion(key_of(test_key()), "a b", "https://oauth2.googleapis.com/token", now);
    ASSERT_TRUE(jwt) << jwt.error().detail;
    const auto dot1 = jwt->find('.');
    const auto dot2 = jwt->rfind('.');
    ASSERT_NE(dot1, dot2);
    EXPECT_EQ(jwt->find('='), std::string::npos) << "base64url without padding";
    const json header = json::parse(base64url_decode(jwt->substr(0, dot1)));
    const json claims = json::parse(base64url_decode(jwt->substr(dot1 + 1, dot2 - dot1 - 1)));
    EXPECT_EQ(header, (json{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "kid-42"}}));
    EXPECT_EQ(claims["iss"], "runbookd@acme.iam.gserviceaccount.com");
    EXPECT_EQ(claims["scope"], "a b");
    EXPECT_EQ(claims["aud"], "https://oauth2.googleapis.com/token");
    EXPECT_EQ(claims["iat"].get<long long>(), 1772726400 - 10) << "back-dated for clock skew";
    EXPECT_EQ(claims["exp"].get<long long>() - claims["iat"].get<long long>(), 3600);
    EXPECT_TRUE(test_key().verifies(jwt->substr(0, dot2), base64url_decode(jwt->substr(dot2 + 1))));
    EXPECT_FALSE(rsa_key{}.verifies(jwt->substr(0, dot2), base64url_decode(jwt->substr(dot2 + 1))))
        << "another key's public half does not verify it";
}

TEST(GoogleJwt, AnUnreadableKeyIsAnErrorWithoutTheKey) {
    auto key = key_of(test_key());
    key.private_key = "-----BEGIN PRIVATE KEY-----\nSECRET-GARBAGE\n-----END PRIVATE KEY-----\n";
    const auto jwt = make_assertion(key, "s", "aud", fakes::at("2026-03-05T16:00:00Z"));
    ASSERT_FALSE(jwt);
    EXPECT_EQ(jwt.error().detail.find("SECRET-GARBAGE"), std::string::npos);
    EXPECT_NE(jwt.error().detail.find("not a readable PEM key"), std::string::npos);
}

TEST(GoogleKeyFile, FieldsAreReadAndMissingOnesNamed) {
    const auto key = parse_key_file(
        R"({"type":"service_account","project_id":"p","private_key_id":"k","private_key":"PEM","client_email":"e@x","token_uri":"https://t/token"})"
    );
    ASSERT_TRUE(key);
    EXPECT_EQ(key->project_id, "p");
    EXPECT_EQ(key->token_uri, "https://t/token");
    EXPECT_EQ(
        parse_key_file(R"({"type":"authorized_user"})").error().detail,
        "the key file's type is 'authorized_user', not 'service_account' (user credentials are not supported)"
    );
    EXPECT_EQ(
        parse_key_file(R"({"type":"service_account","private_key":"PEM"})").error().detail,
        "the key file has no client_email"
    );
    EXPECT_EQ(parse_key_file("[").error().detail, "the key file is not JSON");
}

TEST(GoogleErrors, GoogleAndOAuthErrorBodiesAreSaidInAFewWords) {
    EXPECT_EQ(
        api_error_text(403, R"({"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}})"),
        "403 PERMISSION_DENIED: denied"
    );
    EXPECT_EQ(
        api_error_text(400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})"),
        "400 invalid_grant: Invalid JWT Signature."
    );
    EXPECT_EQ(api_error_text(502, "<html>bad gateway</html>"), "502");
}

struct harness {
    fakes::manual_time clock{fakes::at("2026-03-05T16:00:00Z")};
    asio::io_context ioc;
    fakes::scripted_http http;

    /// Runs `authorization()` to completion.
    result<std::string> authorize(credentials& c) {
        std::optional<result<std::string>> out;
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { out = co_await c.authorization(); }, asio::detached
        );
        fakes::drain(ioc);
        return out.value_or(make_failure(errc::timed_out, "did not finish"));
    }
};

const std::string token_reply = R"({"access_token":"ya29.one","expires_in":3599,"token_type":"Bearer"})";

TEST(GoogleCredentials, TheJwtGrantIsPostedAndItsTokenCachedUntilShortlyBeforeExpiry) {
    harness h;
    credential_settings s;
    s.from = credential_settings::kind::service_account;
    s.key = key_of(test_key());
    credentials c{h.ioc.get_executor(), h.http, s, log::discard()};
    h.http.push_reply(200, token_reply);
    EXPECT_EQ(h.authorize(c).value(), "Bearer ya29.one");
    ASSERT_EQ(h.http.calls.size(), 1u);
    const auto& call = h.http.calls[0];
    EXPECT_EQ(call.method, "POST");
    EXPECT_EQ(call.url, "https://oauth2.googleapis.com/token");
    EXPECT_EQ(call.headers.at("Content-Type"), "application/x-www-form-urlencoded");
    EXPECT_TRUE(
        call.body.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=")
    );
    h.clock.advance(3599s - credentials::early - 1s);
    EXPECT_EQ(h.authorize(c).value(), "Bearer ya29.one");
    EXPECT_EQ(h.http.calls.size(), 1u);
    h.clock.advance(2s);
    h.http.push_reply(200, R"({"access_token":"ya29.two","expires_in":3599})");
    EXPECT_EQ(h.authorize(c).value(), "Bearer ya29.two");
    EXPECT_EQ(h.http.calls.size(), 2u);
}

TEST(GoogleCredentials, A401ForTheTokenInUseFetchesANewOneButNotForAReplacedOne) {
    harness h;
    credential_settings s;
    s.metadata_url = "http://169.254.169.254";
    credentials c{h.ioc.get_executor(), h.http, s, log::discard()};
    h.http.push_reply(200, token_reply, {{"metadata-flavor", "Google"}});
    ASSERT_EQ(h.authorize(c).value(), "Bearer ya29.one");
    const auto& call = h.http.calls[0];
    EXPECT_EQ(
        call.url,
        "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token?scopes="
        "https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"
    );
    EXPECT_EQ(call.headers.at("Metadata-Flavor"), "Google");
    c.rejected("Bearer ya29.stale");
    EXPECT_EQ(h.authorize(c).value(), "Bearer ya29.one");
    c.rejected("Bearer ya29.one");
    h.http.push_reply(
        200, R"({"access_token":"ya29.two","expires_in":3599})", {{"metadata-flavor", "Google"}}
    );
    EXPECT_EQ(h.authorize(c).value(), "Bearer ya29.two");
}

TEST(GoogleCredentials, AnAnswerWithoutMetadataFlavorOrAnOAuthErrorIsRefused) {
    harness h;
    credentials md{h.ioc.get_executor(), h.http, credential_settings{}, log::discard()};
    h.http.push_reply(200, token_reply);  // no Metadata-Flavor: not the metadata server
    EXPECT_EQ(
        h.authorize(md).error().detail,
        "google credentials: the metadata server's answer lacks Metadata-Flavor: Google"
    );
    credential_settings s;
    s.from = credential_settings::kind::service_account;
    s.key = key_of(test_key());
    s.token_url = "https://127.0.0.1:9/token";
    credentials sa{h.ioc.get_executor(), h.http, s, log::discard()};
    h.http.push_reply(400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})");
    EXPECT_EQ(
        h.authorize(sa).error().detail,
        "google credentials: the token endpoint answered 400 invalid_grant: Invalid JWT Signature."
    );
    EXPECT_EQ(h.http.calls.back().url, "https://127.0.0.1:9/token");
}

TEST(GoogleCredentials, ConcurrentCallersShareOneFetch) {
    harness h;
    credential_settings s;
    s.from = credential_settings::kind::service_account;
    s.key = key_of(test_key());
    credentials c{h.ioc.get_executor(), h.http, s, log::discard()};
    h.http.push_reply(200, token_reply);
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) {
        asio::co_spawn(
            h.ioc,
            [&]() -> asio::awaitable<void> { got.push_back((co_await c.authorization()).value()); },
            asio::detached
        );
    }
    fakes::drain(h.ioc);
    EXPECT_EQ(got, std::vector<std::string>(3, "Bearer ya29.one"));
    EXPECT_EQ(h.http.calls.size(), 1u);
}

TEST(GoogleCredentials, TheConfigChoosesTheKeyFileOrTheMetadataServer) {
    config g;
    g.metadata_url = "http://127.0.0.1:9";
    g.token_url = "https://127.0.0.1:9/token";
    g.request_timeout = 3s;
    auto metadata = credentials_for(g);
    ASSERT_TRUE(metadata);
    EXPECT_EQ(metadata->from, credential_settings::kind::metadata);
    EXPECT_EQ(metadata->metadata_url, "http://127.0.0.1:9");
    EXPECT_EQ(metadata->token_url, "https://127.0.0.1:9/token");
    EXPECT_EQ(metadata->timeout, 3s);
    g.key_file = "/etc/runbookd/google-key.json";  // automatic, and a key file named: the key
    g.key_json = secret<std::string>{
        R"({"type":"service_account","private_key":"PEM","client_email":"e@x","project_id":"p"})"};
    auto key = credentials_for(g);
    ASSERT_TRUE(key);
    EXPECT_EQ(key->from, credential_settings::kind::service_account);
    EXPECT_EQ(key->key.client_email, "e@x");
    EXPECT_EQ(key->key.private_key, "PEM");
    g.credentials = config::credential_kind::metadata;
    EXPECT_EQ(credentials_for(g)->from, credential_settings::kind::metadata);
    g.credentials = config::credential_kind::key_file;
    g.key_json = secret<std::string>{R"({"type":"service_account","private_key":"PEM"})"};
    EXPECT_EQ(credentials_for(g).error().detail, "the key file has no client_email");
}

}  // namespace
}  // namespace runbookd::sources::google
