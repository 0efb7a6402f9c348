// The certs source's TLS half: certificate chains read from PEM and from OpenSSL, verify
// codes named, and real loopback handshakes against in-process TLS servers whose keys and
// certificates are made here with OpenSSL (EC P-256, a test root, intermediates). Real
// time and real sockets; every wait is bounded.
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "log/log.hpp"
#include "loop/clock.hpp"
#include "net/https_client.hpp"
#include "net/tls_verify.hpp"
#include "sources/certs/check.hpp"
#include "sources/certs/parse.hpp"
#include "sources/certs/source.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unistd.h>
#include <utility>
#include <vector>

namespace runbookd::sources::certs {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using net::tls_outcome;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// ------------------------------------------------------------------ a PKI made in process

using key_ptr = std::shared_ptr<EVP_PKEY>;
using x509_ptr = std::shared_ptr<X509>;

/// What a certificate is made of.
struct spec {
    std::vector<std::pair<std::string, std::string>> name;  ///< {"CN", "api.test"}, in order
    std::string sans;                                       ///< "DNS:a.test,IP:127.0.0.1"; empty: none
    wall_time not_before;
    wall_time not_after;
    bool ca = false;
};

/// A certificate and its key.
struct issued {
    x509_ptr cert;
    key_ptr key;

    std::string pem() const {
        std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
        PEM_write_bio_X509(bio.get(), cert.get());
        return text_of(bio.get());
    }
    std::string key_pem() const {
        std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
        PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        return text_of(bio.get());
    }

private:
    static std::string text_of(BIO* bio) {
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio, &data);
        return {data, static_cast<std::size_t>(n)};
    }
};

wall_time from_now(std::chrono::seconds d) {
    return std::chrono::floor<std::chrono::seconds>(loop::wall_now()) + d;
}

constexpr std::chrono::seconds days(long n) {
    return std::chrono::seconds{n * 86400};
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx{};
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) {
        throw std::runtime_error("bad extension " + value);
    }
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

/// Makes a certificate for `s`, signed by `by` (self-signed when null).
issued issue(const spec& s, const issued* by) {
    static long serial = 1000;
    issued out{x509_ptr{X509_new(), X509_free}, key_ptr{EVP_EC_gen("P-256"), EVP_PKEY_free}};
    X509* x = out.cert.get();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
    ASN1_TIME_set(X509_getm_notBefore(x), s.not_before.time_since_epoch().count() / 1000);
    ASN1_TIME_set(X509_getm_notAfter(x), s.not_after.time_since_epoch().count() / 1000);
    X509_NAME* name = X509_get_subject_name(x);
    for (const auto& [field, value] : s.name) {
        X509_NAME_add_entry_by_txt(
            name,
            field.c_str(),
            MBSTRING_UTF8,
            reinterpret_cast<const unsigned char*>(value.c_str()),
            -1,
            -1,
            0
        );
    }
    X509_set_issuer_name(x, by != nullptr ? X509_get_subject_name(by->cert.get()) : name);
    X509_set_pubkey(x, out.key.get());
    X509* issuer = by != nullptr ? by->cert.get() : x;
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (by != nullptr) {
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    }
    if (s.ca) {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
        add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
        add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
    }
    if (!s.sans.empty()) {
        add_ext(x, issuer, NID_subject_alt_name, s.sans);
    }
    X509_sign(x, by != nullptr ? by->key.get() : out.key.get(), EVP_sha256());
    return out;
}

spec ca_spec(const std::string& cn, std::chrono::seconds from, std::chrono::seconds to) {
    return {{{"CN", cn}}, "", from_now(from), from_now(to), true};
}

spec leaf_spec(const std::string& cn, std::string sans, std::chrono::seconds from, std::chrono::seconds to) {
    return {{{"CN", cn}}, std::move(sans), from_now(from), from_now(to), false};
}

/// The test trust: a root, its intermediates (one expired), and a root no one trusts.
struct pki {
    issued root = issue(ca_spec("runbookd test root", -days(730), days(3650)), nullptr);
    issued intermediate = issue(ca_spec("runbookd test intermediate", -days(365), days(1825)), &root);
    issued expired_intermediate =
        issue(ca_spec("runbookd expired intermediate", -days(730), -days(1)), &root);
    issued rogue_root = issue(ca_spec("runbookd rogue root", -days(365), days(3650)), nullptr);
    issued rogue_intermediate =
        issue(ca_spec("runbookd rogue intermediate", -days(365), days(1825)), &rogue_root);
    std::filesystem::path dir;
    std::string ca_file;  ///< `root` alone

    pki() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "runbookd-certs-XXXXXX").string();
        if (mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        dir = tmpl;
        ca_file = (dir / "ca.pem").string();
        std::ofstream{ca_file} << root.pem();
    }
    ~pki() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    pki(const pki&) = delete;
    pki& operator=(const pki&) = delete;
};

const pki& test_pki() {
    static const pki p;
    return p;
}

// ------------------------------------------------------------------ in-process servers

enum class behaviour {
    tls,         ///< completes handshakes with its chain, then reads until the client leaves
    silent,      ///< accepts and never says a word
    plain_http,  ///< answers whatever comes with an HTTP/1.1 400
    truncated,   ///< reads the ClientHello and hangs up
};

/// A server on 127.0.0.1, port 0, run by the test's io_context.
class fake_server {
public:
    fake_server(asio::io_context& ioc, behaviour b, const std::vector<const issued*>& chain = {})
        : ioc_(ioc), behaviour_(b), acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}) {
        if (b == behaviour::tls) {
            std::string pem;
            for (const auto* c : chain) {
                pem += c->pem();
            }
            context_.use_certificate_chain(asio::buffer(pem));
            const auto key = chain.front()->key_pem();
            context_.use_private_key(asio::buffer(key), ssl::context::pem);
        }
        port = acceptor_.local_endpoint().port();
        asio::co_spawn(ioc_, accept_loop(), [](const std::exception_ptr&) {});
    }

    std::uint16_t port = 0;
    int accepted = 0;
    int handshakes = 0;
    std::vector<std::string> sni;

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(tuple_awaitable);
            if (ec) {
                co_return;
            }
            ++accepted;
            asio::co_spawn(ioc_, session(std::move(socket)), [](const std::exception_ptr&) {});
        }
    }

    asio::awaitable<void> session(tcp::socket socket) {
        std::array<char, 4096> buf{};
        if (behaviour_ == behaviour::silent) {
            for (;;) {
                auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), tuple_awaitable);
                if (ec) {
                    co_return;
                }
            }
        }
        if (behaviour_ == behaviour::truncated) {
            co_await socket.async_read_some(asio::buffer(buf), tuple_awaitable);
            co_return;  // closes the socket mid-handshake
        }
        if (behaviour_ == behaviour::plain_http) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), tuple_awaitable);
            if (!ec) {
                static constexpr std::string_view answer =
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                co_await asio::async_write(socket, asio::buffer(answer), tuple_awaitable);
            }
            co_return;
        }
        ssl::stream<tcp::socket> stream{std::move(socket), context_};
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, tuple_awaitable);
        if (const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) {
            sni.emplace_back(name);
        }
        if (hec) {
            co_return;
        }
        ++handshakes;
        for (;;) {
            auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), tuple_awaitable);
            if (ec) {
                co_return;
            }
        }
    }

    asio::io_context& ioc_;
    behaviour behaviour_;
    ssl::context context_{ssl::context::tls_server};
    tcp::acceptor acceptor_;
};

/// A port on 127.0.0.1 that was free a moment ago and has no listener now.
std::uint16_t closed_port(asio::io_context& ioc) {
    tcp::acceptor a{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    const auto port = a.local_endpoint().port();
    a.close();
    return port;
}

target at(const std::string& host, std::uint16_t port, const std::string& ca_file = test_pki().ca_file) {
    target t;
    t.host = host;
    t.port = port;
    t.address = "127.0.0.1";
    t.ca_file = ca_file;
    return t;
}

/// Runs `op` to its end on `ioc`, bounded by `budget`.
template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> op, std::chrono::milliseconds budget) {
    struct state {
        std::optional<T> value;
        std::exception_ptr error;
        bool done = false;
    };
    auto s = std::make_shared<state>();
    asio::co_spawn(ioc, std::move(op), [s](std::exception_ptr e, T v) {
        s->error = std::move(e);
        s->value = std::move(v);
        s->done = true;
    });
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return s->done; }, budget
    ));
    if (s->error) {
        std::rethrow_exception(s->error);
    }
    return s->value ? std::move(*s->value) : T{};
}

// ------------------------------------------------------------------ naming verify results

TEST(TlsVerify, OutcomesHaveSnakeCaseNames) {
    EXPECT_EQ(net::to_string(tls_outcome::ok), "ok");
    EXPECT_EQ(net::to_string(tls_outcome::expired), "expired");
    EXPECT_EQ(net::to_string(tls_outcome::not_yet_valid), "not_yet_valid");
    EXPECT_EQ(net::to_string(tls_outcome::name_mismatch), "name_mismatch");
    EXPECT_EQ(net::to_string(tls_outcome::untrusted_issuer), "untrusted_issuer");
    EXPECT_EQ(net::to_string(tls_outcome::handshake_failed), "handshake_failed");
    EXPECT_EQ(net::to_string(tls_outcome::refused), "refused");
    EXPECT_EQ(net::to_string(tls_outcome::timed_out), "timed_out");
    EXPECT_EQ(net::to_string(tls_outcome::unresolved), "unresolved");
}

TEST(TlsVerify, ClassifiesEveryVerifyCode) {
    const std::vector<std::pair<long, tls_outcome>> table = {
        {X509_V_OK, tls_outcome::ok},
        {X509_V_ERR_CERT_HAS_EXPIRED, tls_outcome::expired},
        {X509_V_ERR_CRL_HAS_EXPIRED, tls_outcome::expired},
        {X509_V_ERR_CERT_NOT_YET_VALID, tls_outcome::not_yet_valid},
        {X509_V_ERR_CRL_NOT_YET_VALID, tls_outcome::not_yet_valid},
        {X509_V_ERR_HOSTNAME_MISMATCH, tls_outcome::name_mismatch},
        {X509_V_ERR_IP_ADDRESS_MISMATCH, tls_outcome::name_mismatch},
        {X509_V_ERR_EMAIL_MISMATCH, tls_outcome::name_mismatch},
        {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, tls_outcome::untrusted_issuer},
        {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, tls_outcome::untrusted_issuer},
        {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, tls_outcome::untrusted_issuer},
        {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, tls_outcome::untrusted_issuer},
        {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, tls_outcome::untrusted_issuer},
        {X509_V_ERR_CERT_UNTRUSTED, tls_outcome::untrusted_issuer},
        {X509_V_ERR_CERT_REJECTED, tls_outcome::untrusted_issuer},
        {X509_V_ERR_CERT_CHAIN_TOO_LONG, tls_outcome::untrusted_issuer},
        {X509_V_ERR_CERT_SIGNATURE_FAILURE, tls_outcome::untrusted_issuer},
        {X509_V_ERR_INVALID_CA, tls_outcome::untrusted_issuer},
        {X509_V_ERR_PATH_LOOP, tls_outcome::untrusted_issuer},
        {X509_V_ERR_CERT_REVOKED, tls_outcome::handshake_failed},
        {X509_V_ERR_EE_KEY_TOO_SMALL, tls_outcome::handshake_failed},
        {X509_V_ERR_INVALID_PURPOSE, tls_outcome::handshake_failed},
        {X509_V_ERR_UNSPECIFIED, tls_outcome::handshake_failed},
        {9999, tls_outcome::handshake_failed},
    };
    for (const auto& [code, outcome] : table) {
        EXPECT_EQ(net::classify_verify(code), outcome) << code << ": " << X509_verify_cert_error_string(code);
    }
}

TEST(TlsVerify, DescribesAFailureAndWhereInTheChain) {
    EXPECT_EQ(net::describe_verify(X509_V_ERR_CERT_HAS_EXPIRED, 0), "certificate has expired");
    EXPECT_EQ(
        net::describe_verify(X509_V_ERR_CERT_HAS_EXPIRED, 1),
        "certificate has expired (depth 1: an intermediate)"
    );
    EXPECT_EQ(net::describe_verify(X509_V_ERR_CERT_NOT_YET_VALID, -1), "certificate is not yet valid");
    EXPECT_EQ(
        net::describe_verify(X509_V_ERR_HOSTNAME_MISMATCH, 0),
        "certificate is for another host (hostname mismatch)"
    );
    EXPECT_EQ(
        net::describe_verify(X509_V_ERR_IP_ADDRESS_MISMATCH, 0),
        "certificate is for another host (IP address mismatch)"
    );
    EXPECT_EQ(
        net::describe_verify(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0),
        "untrusted issuer (unable to get local issuer certificate)"
    );
    EXPECT_EQ(
        net::describe_verify(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 1),
        "untrusted issuer (unable to get local issuer certificate, depth 1: an intermediate)"
    );
    EXPECT_EQ(net::describe_verify(X509_V_ERR_CERT_REVOKED, 0), "certificate revoked");
    EXPECT_EQ(net::describe_verify(X509_V_OK, -1), "verified");
}

TEST(TlsVerify, DiagnosesAHandshakeWithoutVerificationFailure) {
    EXPECT_EQ(net::diagnose_handshake(nullptr, {}, {}).outcome, tls_outcome::ok);
    const auto timeout = net::diagnose_handshake(nullptr, boost::beast::error::timeout, {});
    EXPECT_EQ(timeout.outcome, tls_outcome::timed_out);
    const auto eof = net::diagnose_handshake(nullptr, asio::error::eof, {});
    EXPECT_EQ(eof.detail, "unexpected eof (the peer closed the connection)");
    const auto reset = net::diagnose_handshake(nullptr, asio::error::connection_reset, {});
    EXPECT_EQ(reset.outcome, tls_outcome::handshake_failed);
    EXPECT_EQ(reset.detail, boost::system::error_code{asio::error::connection_reset}.message());
    const auto noted = net::diagnose_handshake(nullptr, {}, net::verify_note{X509_V_ERR_CERT_HAS_EXPIRED, 2});
    EXPECT_EQ(noted.outcome, tls_outcome::expired);
    EXPECT_EQ(noted.detail, "certificate has expired (depth 2: an intermediate)");
}

// ------------------------------------------------------------------ reading chains

TEST(CertsParse, ReadsEveryFieldOfEachCertificateInChainOrder) {
    const auto& p = test_pki();
    const spec s{
        {{"O", "Acme"}, {"CN", "api.runbookd.test"}},
        "DNS:api.runbookd.test,IP:127.0.0.1,DNS:*.api.runbookd.test,IP:::1",
        fakes::at("2026-01-02T03:04:05Z"),
        fakes::at("2027-01-02T03:04:05Z")};
    const auto leaf = issue(s, &p.intermediate);
    const auto chain = read_pem_chain(leaf.pem() + p.intermediate.pem());
    ASSERT_TRUE(chain) << chain.error().detail;
    ASSERT_EQ(chain->certs.size(), 2U);
    EXPECT_EQ(chain->left_out, 0U);
    const auto& c = chain->certs[0];
    EXPECT_EQ(c.subject, "CN=api.runbookd.test");
    EXPECT_EQ(c.issuer, "CN=runbookd test intermediate");
    EXPECT_EQ(
        c.sans, (std::vector<std::string>{"api.runbookd.test", "*.api.runbookd.test", "127.0.0.1", "::1"})
    );
    EXPECT_EQ(c.not_before, fakes::at("2026-01-02T03:04:05Z"));
    EXPECT_EQ(c.not_after, fakes::at("2027-01-02T03:04:05Z"));
    EXPECT_EQ(c.depth, 0);
    EXPECT_EQ(chain->certs[1].subject, "CN=runbookd test intermediate");
    EXPECT_EQ(chain->certs[1].issuer, "CN=runbookd test root");
    EXPECT_EQ(chain->certs[1].depth, 1);
    EXPECT_TRUE(chain->certs[1].sans.empty());
    EXPECT_EQ(chain->earliest, 0U);  // the leaf ends before its intermediate
}

TEST(CertsParse, AnExpiredIntermediateIsTheEarliest) {
    const auto& p = test_pki();
    const auto leaf = issue(
        leaf_spec("chain.runbookd.test", "DNS:chain.runbookd.test", -days(30), days(365)),
        &p.expired_intermediate
    );
    const auto chain = read_pem_chain(leaf.pem() + p.expired_intermediate.pem());
    ASSERT_TRUE(chain) << chain.error().detail;
    EXPECT_EQ(chain->earliest, 1U);
    EXPECT_EQ(chain->certs[1].subject, "CN=runbookd expired intermediate");
    EXPECT_LT(chain->certs[1].not_after, loop::wall_now());
}

TEST(CertsParse, ACertificateWithoutSanHasNoNames) {
    const auto leaf =
        issue(leaf_spec("nosan.runbookd.test", "", -days(1), days(30)), &test_pki().intermediate);
    const auto chain = read_pem_chain(leaf.pem());
    ASSERT_TRUE(chain) << chain.error().detail;
    EXPECT_TRUE(chain->certs[0].sans.empty());
    EXPECT_EQ(chain->certs[0].sans_left_out, 0U);
    EXPECT_EQ(chain->certs[0].subject, "CN=nosan.runbookd.test");
}

TEST(CertsParse, ANameWithoutCnIsItsRfc2253Line) {
    const spec s{
        {{"C", "DE"}, {"O", "Acme, Inc."}, {"OU", "Ops"}},
        "DNS:x.test",
        from_now(-days(1)),
        from_now(days(1))};
    const auto leaf = issue(s, &test_pki().intermediate);
    const auto chain = read_pem_chain(leaf.pem());
    ASSERT_TRUE(chain) << chain.error().detail;
    EXPECT_EQ(chain->certs[0].subject, "OU=Ops,O=Acme\\, Inc.,C=DE");
}

TEST(CertsParse, ACnIsEscapedAndCapped) {
    const auto comma = issue(leaf_spec("a,b", "", -days(1), days(1)), &test_pki().intermediate);
    EXPECT_EQ(read_pem_chain(comma.pem())->certs[0].subject, "CN=a\\,b");
    // A CN has at most 64 characters (RFC 5280 ub-common-name), but a name may have many
    // parts: ten OUs of 60 make a line longer than the cap.
    spec s{{}, "", from_now(-days(1)), from_now(days(1))};
    for (char c = 'a'; c < 'k'; ++c) {
        s.name.emplace_back("OU", std::string(60, c));
    }
    const auto chain = read_pem_chain(issue(s, &test_pki().intermediate).pem());
    ASSERT_TRUE(chain);
    EXPECT_EQ(chain->certs[0].subject.size(), max_name_chars);
    EXPECT_TRUE(chain->certs[0].subject.ends_with("..."));
}

TEST(CertsParse, AHundredCertificateChainIsReadUpToTheCap) {
    const auto& p = test_pki();
    std::string pem;
    for (int i = 0; i < 100; ++i) {
        pem += p.intermediate.pem();
    }
    const auto chain = read_pem_chain(pem);
    ASSERT_TRUE(chain) << chain.error().detail;
    EXPECT_EQ(chain->certs.size(), max_chain_certificates);
    EXPECT_EQ(chain->left_out, 100U - max_chain_certificates);
    EXPECT_EQ(chain->certs.back().depth, static_cast<int>(max_chain_certificates) - 1);

    // The same from OpenSSL's own stack (what SSL_get_peer_cert_chain returns).
    const auto free_stack = [](STACK_OF(X509) * s) { sk_X509_free(s); };
    std::unique_ptr<STACK_OF(X509), decltype(free_stack)> stack{sk_X509_new_null(), free_stack};
    for (int i = 0; i < 100; ++i) {
        sk_X509_push(stack.get(), p.intermediate.cert.get());
    }
    const auto read = read_chain(stack.get());
    ASSERT_TRUE(read) << read.error().detail;
    EXPECT_EQ(read->certs.size(), max_chain_certificates);
    EXPECT_EQ(read->left_out, 100U - max_chain_certificates);
}

TEST(CertsParse, TextWithoutACertificateOrWithABrokenOneFails) {
    EXPECT_FALSE(read_pem_chain(""));
    EXPECT_FALSE(read_pem_chain(test_pki().root.key_pem()));  // a key is not a certificate
    EXPECT_FALSE(read_pem_chain("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
    EXPECT_FALSE(read_pem_chain(test_pki().root.pem().substr(0, 100)));  // no END line
    EXPECT_FALSE(read_chain(nullptr));
    // A key before the certificate is skipped.
    const auto mixed = read_pem_chain(test_pki().root.key_pem() + test_pki().root.pem());
    ASSERT_TRUE(mixed);
    EXPECT_EQ(mixed->certs[0].subject, "CN=runbookd test root");
}

// ------------------------------------------------------------------ real handshakes

class CertsCheck : public ::testing::Test {
protected:
    const pki& p = test_pki();
    asio::io_context ioc;
    checker check{ioc.get_executor()};

    check_result run_check(const target& t, std::chrono::milliseconds timeout = 5s) {
        return run(ioc, check.check(t, timeout), timeout + 10s);
    }

    /// A TLS server presenting a leaf for `host` (SANs `sans`), valid from..to, issued by
    /// `issuer`, which it sends after the leaf.
    std::unique_ptr<fake_server> serve(
        const std::string& cn,
        const std::string& sans,
        std::chrono::seconds from,
        std::chrono::seconds to,
        const issued& issuer
    ) {
        leaves_.push_back(std::make_unique<issued>(issue(leaf_spec(cn, sans, from, to), &issuer)));
        return std::make_unique<fake_server>(
            ioc, behaviour::tls, std::vector<const issued*>{leaves_.back().get(), &issuer}
        );
    }

private:
    std::vector<std::unique_ptr<issued>> leaves_;
};

TEST_F(CertsCheck, AValidChainIsOkAndReadWhole) {
    const auto server =
        serve("api.runbookd.test", "DNS:api.runbookd.test", -days(30), days(365), p.intermediate);
    const auto r = run_check(at("api.runbookd.test", server->port));
    EXPECT_EQ(r.outcome, tls_outcome::ok) << r.detail;
    EXPECT_EQ(r.detail, "verified");
    ASSERT_TRUE(r.chain);
    ASSERT_EQ(r.chain->certs.size(), 2U);
    EXPECT_EQ(r.chain->certs[0].subject, "CN=api.runbookd.test");
    EXPECT_EQ(r.chain->certs[0].sans, std::vector<std::string>{"api.runbookd.test"});
    EXPECT_EQ(r.chain->certs[1].subject, "CN=runbookd test intermediate");
    EXPECT_EQ(r.chain->earliest, 0U);
    // The server records SNI when its side of the handshake ends, which may come after
    // the client's: wait for it (bounded).
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return !server->sni.empty(); }, 5s
    ));
    EXPECT_EQ(server->sni, std::vector<std::string>{"api.runbookd.test"});
    EXPECT_LT(r.took, 5s);
}

TEST_F(CertsCheck, AnExpiredLeafIsExpiredAndStillRead) {
    const auto server =
        serve("old.runbookd.test", "DNS:old.runbookd.test", -days(60), -days(2), p.intermediate);
    const auto r = run_check(at("old.runbookd.test", server->port));
    EXPECT_EQ(r.outcome, tls_outcome::expired) << r.detail;
    EXPECT_EQ(r.detail, "certificate has expired: CN=old.runbookd.test");
    ASSERT_TRUE(r.chain);
    EXPECT_EQ(r.chain->earliest, 0U);
    EXPECT_LT(r.chain->certs[0].not_after, loop::wall_now());
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return server->handshakes == 1; }, 5s
    )) << "the handshake is let through to read the chain";
}

TEST_F(CertsCheck, ACertificateNotYetValid) {
    const auto server =
        serve("new.runbookd.test", "DNS:new.runbookd.test", days(1), days(365), p.intermediate);
    const auto r = run_check(at("new.runbookd.test", server->port));
    EXPECT_EQ(r.outcome, tls_outcome::not_yet_valid) << r.detail;
    EXPECT_EQ(r.detail, "certificate is not yet valid: CN=new.runbookd.test");
    EXPECT_TRUE(r.chain);
}

TEST_F(CertsCheck, ACertificateForAnotherHost) {
    const auto server =
        serve("other.runbookd.test", "DNS:other.runbookd.test", -days(1), days(365), p.intermediate);
    const auto r = run_check(at("api.runbookd.test", server->port));
    EXPECT_EQ(r.outcome, tls_outcome::name_mismatch) << r.detail;
    EXPECT_EQ(r.detail, "certificate is for another host (hostname mismatch): CN=other.runbookd.test");
    ASSERT_TRUE(r.chain);
    EXPECT_EQ(r.chain->certs[0].sans, std::vector<std::string>{"other.runbookd.test"});
    // The server records SNI when its side of the handshake ends, which may come after
    // the client's: wait for it (bounded).
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return !server->sni.empty(); }, 5s
    ));
    EXPECT_EQ(server->sni, std::vector<std::string>{"api.runbookd.test"});
}

TEST_F(CertsCheck, AnIpLiteralIsMatchedAgainstIpSansWithoutSni) {
    const auto server = serve("ip.runbookd.test", "IP:127.0.0.1", -days(1), days(365), p.intermediate);
    const auto ok = run_check(at("127.0.0.1", server->port));
    EXPECT_EQ(ok.outcome, tls_outcome::ok) << ok.detail;
    const auto other = run_check(at("127.0.0.9", server->port));
    EXPECT_EQ(other.outcome, tls_outcome::name_mismatch) << other.detail;
    EXPECT_EQ(other.detail, "certificate is for another host (IP address mismatch): CN=ip.runbookd.test");
    EXPECT_TRUE(server->sni.empty()) << "no SNI for an IP literal";
}

TEST_F(CertsCheck, ACertificateWithoutSanMatchesItsCommonName) {
    const auto server = serve("nosan.runbookd.test", "", -days(1), days(365), p.intermediate);
    const auto r = run_check(at("nosan.runbookd.test", server->port));
    EXPECT_EQ(r.outcome, tls_outcome::ok) << r.detail;
    ASSERT_TRUE(r.chain);
    EXPECT_TRUE(r.chain->certs[0].sans.empty());
}

TEST_F(CertsCheck, AnUntrustedIssuer) {
    const auto server =
        serve("rogue.runbookd.test", "DNS:rogue.runbookd.test", -days(1), days(365), p.rogue_intermediate);
    const auto r = run_check(at("rogue.runbookd.test", server->port));
    EXPECT_EQ(r.outcome, tls_outcome::untrusted_issuer) << r.detail;
    EXPECT_EQ(
        r.detail,
        "untrusted issuer (unable to get local issuer certificate, depth 1: an intermediate): "
        "CN=runbookd rogue intermediate"
    );
    ASSERT_TRUE(r.chain);
    EXPECT_EQ(r.chain->certs[0].issuer, "CN=runbookd rogue intermediate");

    // Trusted with the right CA file: one context per file, side by side.
    const auto rogue_ca = (p.dir / "rogue.pem").string();
    std::ofstream{rogue_ca} << p.rogue_root.pem();
    const auto trusted = run_check(at("rogue.runbookd.test", server->port, rogue_ca));
    EXPECT_EQ(trusted.outcome, tls_outcome::ok) << trusted.detail;
}

TEST_F(CertsCheck, AnExpiredIntermediateIsExpiredAndTheEarliest) {
    const auto server =
        serve("chain.runbookd.test", "DNS:chain.runbookd.test", -days(30), days(365), p.expired_intermediate);
    const auto r = run_check(at("chain.runbookd.test", server->port));
    EXPECT_EQ(r.outcome, tls_outcome::expired) << r.detail;
    EXPECT_EQ(
        r.detail, "certificate has expired (depth 1: an intermediate): CN=runbookd expired intermediate"
    );
    ASSERT_TRUE(r.chain);
    EXPECT_EQ(r.chain->earliest, 1U);
}

TEST_F(CertsCheck, ARefusedPort) {
    const auto port = closed_port(ioc);
    const auto r = run_check(at("api.runbookd.test", port));
    EXPECT_EQ(r.outcome, tls_outcome::refused) << r.detail;
    EXPECT_EQ(
        r.detail,
        "connect to 127.0.0.1:" + std::to_string(port) + ": " +
            boost::system::error_code{asio::error::connection_refused}.message()
    );
    EXPECT_FALSE(r.chain);
}

TEST_F(CertsCheck, ASilentServerTimesOutAtTheDeadline) {
    fake_server silent{ioc, behaviour::silent};
    const auto started = std::chrono::steady_clock::now();
    const auto r = run_check(at("api.runbookd.test", silent.port), 300ms);
    const auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.outcome, tls_outcome::timed_out) << r.detail;
    EXPECT_EQ(r.detail, "timed out after 300ms during tls handshake");
    EXPECT_FALSE(r.chain);
    EXPECT_EQ(silent.accepted, 1);
    EXPECT_GE(r.took, 290ms);
    EXPECT_LT(waited, 2s);
}

TEST_F(CertsCheck, PlainHttpOnTheTlsPortIsAFailedHandshake) {
    fake_server plain{ioc, behaviour::plain_http};
    const auto r = run_check(at("api.runbookd.test", plain.port));
    EXPECT_EQ(r.outcome, tls_outcome::handshake_failed) << r.detail;
    EXPECT_EQ(r.detail, "tls handshake: wrong version number");
    EXPECT_FALSE(r.chain);
}

TEST_F(CertsCheck, AServerThatHangsUpMidHandshakeIsAFailedHandshake) {
    fake_server truncated{ioc, behaviour::truncated};
    const auto r = run_check(at("api.runbookd.test", truncated.port));
    EXPECT_EQ(r.outcome, tls_outcome::handshake_failed) << r.detail;
    EXPECT_TRUE(r.detail.starts_with("tls handshake: unexpected eof")) << r.detail;
    EXPECT_LT(r.took, 5s);
}

TEST_F(CertsCheck, ANameThatDoesNotResolve) {
    target t = at("nowhere.invalid", 443);
    t.address.clear();  // RFC 6761: .invalid never resolves
    const auto r = run_check(t, 5s);
    EXPECT_EQ(r.outcome, tls_outcome::unresolved) << r.detail;
    EXPECT_TRUE(r.detail.starts_with("resolve nowhere.invalid: ")) << r.detail;
}

TEST_F(CertsCheck, ACaFileThatCannotBeReadIsReported) {
    EXPECT_FALSE(check.load_trust(p.ca_file).has_error());
    const auto missing = (p.dir / "missing.pem").string();
    const auto loaded = check.load_trust(missing);
    ASSERT_TRUE(loaded.has_error());
    EXPECT_EQ(loaded.error().code, errc::config_invalid);
    const auto r = run_check(at("api.runbookd.test", 443, missing));
    EXPECT_EQ(r.outcome, tls_outcome::handshake_failed);
    EXPECT_TRUE(r.detail.starts_with("cannot load CA certificates from '" + missing + "'")) << r.detail;
}

TEST_F(CertsCheck, CheckAllKeepsTargetOrderAndASilentTargetDelaysNoOther) {
    const auto ok = serve("api.runbookd.test", "DNS:api.runbookd.test", -days(30), days(365), p.intermediate);
    const auto expired =
        serve("old.runbookd.test", "DNS:old.runbookd.test", -days(60), -days(2), p.intermediate);
    fake_server silent{ioc, behaviour::silent};
    std::vector<target> targets;
    std::vector<tls_outcome> expected;
    for (int i = 0; i < 20; ++i) {
        if (i == 2) {
            targets.push_back(at("quiet.runbookd.test", silent.port));
            expected.push_back(tls_outcome::timed_out);
        } else if (i % 3 == 0) {
            targets.push_back(at("old.runbookd.test", expired->port));
            expected.push_back(tls_outcome::expired);
        } else {
            targets.push_back(at("api.runbookd.test", ok->port));
            expected.push_back(tls_outcome::ok);
        }
    }
    const auto started = std::chrono::steady_clock::now();
    const auto results = run(ioc, check.check_all(targets, 4, 1500ms), 20s);
    const auto waited = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(results.size(), targets.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
        EXPECT_EQ(results[i].outcome, expected[i]) << i << ": " << results[i].detail;
        if (expected[i] != tls_outcome::timed_out) {
            EXPECT_LT(results[i].took, 1500ms) << i;
        }
    }
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return ok->handshakes + expired->handshakes == 19; }, 5s
    )) << ok->handshakes + expired->handshakes;
    // One worker sat on the silent target; the other three did the rest meanwhile.
    EXPECT_LT(waited, 4s);
}

TEST_F(CertsCheck, CheckAllRunsAtMostConcurrencyChecksAtOnce) {
    fake_server silent{ioc, behaviour::silent};
    const std::vector<target> targets(8, at("quiet.runbookd.test", silent.port));
    const auto started = std::chrono::steady_clock::now();
    const auto results = run(ioc, check.check_all(targets, 4, 300ms), 20s);
    const auto waited = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(results.size(), 8U);
    for (const auto& r : results) {
        EXPECT_EQ(r.outcome, tls_outcome::timed_out) << r.detail;
    }
    EXPECT_EQ(silent.accepted, 8);
    // Eight silent checks four at a time are two rounds of the whole timeout.
    EXPECT_GE(waited, 600ms);
    EXPECT_LT(waited, 5s);
}

// The HTTPS client (Discord, Google, Kubernetes) names a failed handshake the same way,
// with its failure otherwise as before: retryable, upstream_unavailable, nothing sent.
TEST_F(CertsCheck, TheHttpsClientNamesWhyTheHandshakeFailed) {
    net::tls_options tls;
    tls.ca_file = p.ca_file;
    net::https_client client{
        ioc.get_executor(),
        tls,
        log::logger{std::make_shared<log::sink>([](std::string_view) {}), log::level::error}};
    const auto send = [&](const std::string& origin) {
        net::http_call call;
        call.url = origin + "/api/webhooks/1/secret-token";
        call.timeout = 5s;
        const auto r = run(ioc, client.send(call), 15s);
        if (r) {
            ADD_FAILURE() << origin << " answered " << r->status;
            return std::string{};
        }
        EXPECT_TRUE(r.error().error.retryable);
        EXPECT_EQ(r.error().error.code, errc::upstream_unavailable);
        EXPECT_FALSE(r.error().sent);
        return r.error().error.detail;
    };
    const auto origin = [](std::uint16_t port) { return "https://127.0.0.1:" + std::to_string(port); };

    const auto good = serve("ip", "IP:127.0.0.1", -days(30), days(365), p.intermediate);
    const auto expired = serve("ip", "IP:127.0.0.1", -days(60), -days(2), p.intermediate);
    const auto expired_intermediate =
        serve("ip", "IP:127.0.0.1", -days(30), days(365), p.expired_intermediate);
    const auto other_ip = serve("ip", "IP:127.0.0.9", -days(30), days(365), p.intermediate);
    const auto other_name = serve("other", "DNS:other.runbookd.test", -days(30), days(365), p.intermediate);
    const auto rogue = serve("ip", "IP:127.0.0.1", -days(30), days(365), p.rogue_intermediate);
    fake_server plain{ioc, behaviour::plain_http};

    EXPECT_EQ(
        send(origin(expired->port)), origin(expired->port) + ": tls handshake: certificate has expired"
    );
    EXPECT_EQ(
        send(origin(expired_intermediate->port)),
        origin(expired_intermediate->port) +
            ": tls handshake: certificate has expired (depth 1: an intermediate)"
    );
    EXPECT_EQ(
        send(origin(other_ip->port)),
        origin(other_ip->port) + ": tls handshake: certificate is for another host (IP address mismatch)"
    );
    const auto localhost = "https://localhost:" + std::to_string(other_name->port);
    EXPECT_EQ(
        send(localhost), localhost + ": tls handshake: certificate is for another host (hostname mismatch)"
    );
    EXPECT_EQ(
        send(origin(rogue->port)),
        origin(rogue->port) +
            ": tls handshake: untrusted issuer (unable to get local issuer certificate, depth 1: an "
            "intermediate)"
    );
    EXPECT_EQ(send(origin(plain.port)), origin(plain.port) + ": tls handshake: wrong version number");
    EXPECT_EQ(good->handshakes + expired->handshakes + rogue->handshakes, 0);

    // Verification is still on and still passes for a good certificate (then a 400 to
    // whatever we ask: the fake speaks no HTTP after its handshake, so the read fails).
    net::http_call call;
    call.url = origin(good->port) + "/";
    call.timeout = 500ms;
    const auto r = run(ioc, client.send(call), 10s);
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return good->handshakes == 1; }, 5s
    )) << good->handshakes;
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().error.detail.starts_with(origin(good->port) + ": read: "))
        << r.error().error.detail;
}

TEST_F(CertsCheck, CheckAllOfNothingIsNothing) {
    const auto results = run(ioc, check.check_all({}, 4, 300ms), 5s);
    EXPECT_TRUE(results.empty());
}

// ------------------------------------------------------------------ the signal

/// A chain of `certs` as check() reads it: depth in order, the earliest computed.
check_result with_chain(tls_outcome o, std::vector<cert_info> certs) {
    check_result r;
    r.outcome = o;
    r.detail = o == tls_outcome::ok ? "verified" : "certificate has expired (depth 1: an intermediate)";
    chain_info chain;
    for (std::size_t i = 0; i < certs.size(); ++i) {
        certs[i].depth = static_cast<int>(i);
        if (certs[i].not_after < certs[chain.earliest].not_after) {
            chain.earliest = i;
        }
    }
    chain.certs = std::move(certs);
    r.chain = std::move(chain);
    return r;
}

cert_info cert(
    std::string subject, std::string issuer, wall_time not_after, std::vector<std::string> sans = {}
) {
    cert_info c;
    c.subject = std::move(subject);
    c.issuer = std::move(issuer);
    c.not_after = not_after;
    c.not_before = not_after - days(90);
    c.sans = std::move(sans);
    return c;
}

const wall_time checked_at = *parse_rfc3339("2026-12-03T08:00:00Z");

TEST(CertsSignal, AnOkChainCarriesTheLeafAndItsEarliestCertificate) {
    target t = at("api.test", 8443);
    t.services = {"PAPI001", "PWWW002"};
    const auto r = with_chain(
        tls_outcome::ok,
        {cert("CN=api.test", "CN=ca", checked_at + days(60), {"api.test", "api2.test"}),
         cert("CN=ca", "CN=root", checked_at + days(365))}
    );
    const signal s = expiry_signal(t, r, checked_at, 14 * 24h);
    EXPECT_EQ(s.kind, "cert.expiry");
    EXPECT_EQ(s.source, "certs");
    EXPECT_EQ(s.subject, "api.test");
    EXPECT_EQ(s.at, checked_at);
    ASSERT_TRUE(s.value);
    EXPECT_DOUBLE_EQ(*s.value, 60.0 * 86400);
    EXPECT_EQ(*s.find("host"), "api.test");
    EXPECT_EQ(*s.find("port"), "8443");
    EXPECT_EQ(*s.find("outcome"), "ok");
    EXPECT_EQ(*s.find("error"), "") << "ok says nothing more";
    EXPECT_EQ(*s.find("not_after"), "2027-02-01T08:00:00Z");
    EXPECT_EQ(*s.find("which"), "leaf");
    EXPECT_EQ(*s.find("cert_subject"), "CN=api.test");
    EXPECT_EQ(*s.find("issuer"), "CN=ca");
    EXPECT_EQ(*s.find("sans"), "api.test,api2.test");
    EXPECT_EQ(*s.find("services"), "PAPI001,PWWW002");
    EXPECT_EQ(*s.find("expires_soon"), "false");
}

TEST(CertsSignal, AnExpiredIntermediateIsTheEarliestAndTheValueIsNegative) {
    const auto r = with_chain(
        tls_outcome::expired,
        {cert("CN=chain.test", "CN=old ca", checked_at + days(60), {"chain.test"}),
         cert("CN=old ca", "CN=root", checked_at - 2h)}
    );
    const signal s = expiry_signal(at("chain.test", 443), r, checked_at, 14 * 24h);
    ASSERT_TRUE(s.value);
    EXPECT_DOUBLE_EQ(*s.value, -7200.0);
    EXPECT_EQ(*s.find("which"), "intermediate");
    EXPECT_EQ(*s.find("not_after"), "2026-12-03T06:00:00Z");
    EXPECT_EQ(*s.find("cert_subject"), "CN=chain.test") << "the server's own certificate";
    EXPECT_EQ(*s.find("issuer"), "CN=old ca");
    EXPECT_EQ(*s.find("error"), "certificate has expired (depth 1: an intermediate)");
    EXPECT_EQ(*s.find("expires_soon"), "false") << "expired is not soon";
    EXPECT_EQ(*s.find("services"), "*") << "no services listed: every service";
}

TEST(CertsSignal, ASelfSignedAnchorIsTheRoot) {
    const auto r = with_chain(
        tls_outcome::ok,
        {cert("CN=a.test", "CN=root", checked_at + days(60)),
         cert("CN=root", "CN=root", checked_at + days(30))}
    );
    EXPECT_EQ(*expiry_signal(at("a.test", 443), r, checked_at, 24h).find("which"), "root");
}

TEST(CertsSignal, ExpiresSoonWithinTheHorizonOnly) {
    const auto in = [&](std::chrono::seconds left) {
        const auto r = with_chain(tls_outcome::ok, {cert("CN=a.test", "CN=ca", checked_at + left)});
        return *expiry_signal(at("a.test", 443), r, checked_at, 14 * 24h).find("expires_soon");
    };
    EXPECT_EQ(in(days(9)), "true");
    EXPECT_EQ(in(days(14)), "true") << "the horizon is inclusive";
    EXPECT_EQ(in(days(14) + 1s), "false");
    EXPECT_EQ(in(days(365)), "false");
}

TEST(CertsSignal, WithoutAChainThereIsNoValueAndNoCertificateLabels) {
    check_result r;
    r.outcome = tls_outcome::refused;
    r.detail = "connect to 127.0.0.1:1: Connection refused";
    const signal s = expiry_signal(at("down.test", 1), r, checked_at, 24h);
    EXPECT_FALSE(s.value);
    EXPECT_EQ(*s.find("outcome"), "refused");
    EXPECT_EQ(*s.find("error"), "connect to 127.0.0.1:1: Connection refused");
    for (const char* name : {"not_after", "which", "cert_subject", "issuer", "sans"}) {
        EXPECT_EQ(*s.find(name), "") << name;
    }
    EXPECT_EQ(*s.find("expires_soon"), "false");
}

// ------------------------------------------------------------------ the source

/// A metric's value by name and labels (a subset), or nullopt when absent.
std::optional<double> metric(
    prometheus::Registry& registry, std::string_view name, std::map<std::string, std::string> labels = {}
) {
    for (const auto& family : registry.Collect()) {
        for (const auto& m : family.metric) {
            std::string full = family.name;
            const bool counter = family.type == prometheus::MetricType::Counter;
            if (counter && name != full && name != full + "_total") {
                continue;
            }
            if (!counter && name != full && name != full + "_count") {
                continue;
            }
            bool match = true;
            for (const auto& [k, v] : labels) {
                const auto it =
                    std::find_if(m.label.begin(), m.label.end(), [&](const auto& l) { return l.name == k; });
                match = match && it != m.label.end() && it->value == v;
            }
            if (!match) {
                continue;
            }
            switch (family.type) {
                case prometheus::MetricType::Counter: return m.counter.value;
                case prometheus::MetricType::Gauge: return m.gauge.value;
                case prometheus::MetricType::Histogram: return static_cast<double>(m.histogram.sample_count);
                default: return std::nullopt;
            }
        }
    }
    return std::nullopt;
}

class CertsSource : public CertsCheck {
protected:
    prometheus::Registry registry;
    std::vector<signal> signals;
    std::vector<source_status> statuses;
    std::vector<std::string> redacted;

    sources::context cx() {
        return sources::context{
            ioc.get_executor(),
            log::discard(),
            registry,
            sources::sinks{
                [this](signal s) { signals.push_back(std::move(s)); },
                [this](source_status s) { statuses.push_back(std::move(s)); }},
            [this](std::string s) { redacted.push_back(std::move(s)); }};
    }
};

TEST_F(CertsSource, NoTargetIsNoSource) {
    auto c = cx();
    EXPECT_EQ(make(config{}, c), nullptr);
}

TEST_F(CertsSource, AnUnreadableCaFileIsAStartUpError) {
    config cfg;
    cfg.targets.push_back(at("api.test", 443, "/nonexistent/ca.pem"));
    auto c = cx();
    try {
        make(cfg, c);
        FAIL() << "a CA file that cannot be read must stop the start";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string{e.what()}.find("/nonexistent/ca.pem"), std::string::npos) << e.what();
    }
}

TEST_F(CertsSource, ARoundSignalsEveryTargetCountsOutcomesAndStaysHealthy) {
    const auto good =
        serve("api.runbookd.test", "DNS:api.runbookd.test", -days(30), days(365), p.intermediate);
    const auto old = serve("old.runbookd.test", "DNS:old.runbookd.test", -days(60), -days(2), p.intermediate);
    const auto closed = closed_port(ioc);
    config cfg;
    cfg.ca_file = test_pki().ca_file;
    cfg.targets = {
        at("api.runbookd.test", good->port, ""),
        at("old.runbookd.test", old->port, ""),
        at("down.runbookd.test", closed, "")};
    cfg.targets[0].services = {"PAPI001"};
    cfg.timeout = 5s;
    auto c = cx();
    auto src = make(cfg, c);
    ASSERT_NE(src, nullptr);
    EXPECT_EQ(src->describe(), "3 targets every 5m, 16 at a time");
    src->start();
    ASSERT_TRUE(fakes::run_until(
        ioc, [&] { return signals.size() == 3 && !statuses.empty(); }, 20s
    ));
    src->stop();

    std::map<std::string, const signal*> by_host;
    for (const auto& s : signals) {
        by_host[s.subject] = &s;
    }
    ASSERT_EQ(by_host.size(), 3U);
    EXPECT_EQ(*by_host["api.runbookd.test"]->find("outcome"), "ok");
    EXPECT_EQ(*by_host["api.runbookd.test"]->find("services"), "PAPI001");
    EXPECT_EQ(*by_host["old.runbookd.test"]->find("outcome"), "expired");
    EXPECT_LT(*by_host["old.runbookd.test"]->value, -86400.0);
    EXPECT_EQ(*by_host["down.runbookd.test"]->find("outcome"), "refused");
    EXPECT_FALSE(by_host["down.runbookd.test"]->value);

    EXPECT_EQ(statuses.back().state, source_state::healthy) << "failing targets are evidence, not a failure";
    EXPECT_EQ(metric(registry, "runbookd_cert_checks_total", {{"outcome", "ok"}}), 1.0);
    EXPECT_EQ(metric(registry, "runbookd_cert_checks_total", {{"outcome", "expired"}}), 1.0);
    EXPECT_EQ(metric(registry, "runbookd_cert_checks_total", {{"outcome", "refused"}}), 1.0);
    EXPECT_EQ(metric(registry, "runbookd_cert_checks_total", {{"outcome", "timed_out"}}), 0.0);
    EXPECT_EQ(metric(registry, "runbookd_cert_check_duration_seconds"), 3.0);
    const auto old_not_after =
        metric(registry, "runbookd_cert_not_after_timestamp_seconds", {{"host", "old.runbookd.test"}});
    ASSERT_TRUE(old_not_after);
    EXPECT_LT(*old_not_after, std::chrono::duration<double>(loop::wall_now().time_since_epoch()).count());
    EXPECT_FALSE(
        metric(registry, "runbookd_cert_not_after_timestamp_seconds", {{"host", "down.runbookd.test"}})
    ) << "no certificate read, no timestamp";
}

TEST_F(CertsSource, AfterStopARoundInFlightHandsNothingOver) {
    fake_server silent{ioc, behaviour::silent};
    config cfg;
    cfg.targets = {at("slow.runbookd.test", silent.port)};
    cfg.timeout = 300ms;
    auto c = cx();
    auto src = make(cfg, c);
    src->start();
    ASSERT_TRUE(fakes::run_until(
        ioc, [&] { return silent.accepted == 1; }, 10s
    ));
    src->stop();
    // The check ends at its 300 ms deadline, well within this wait; its outcome is dropped.
    EXPECT_FALSE(fakes::run_until(
        ioc, [&] { return !signals.empty(); }, 1s
    ));
    EXPECT_EQ(metric(registry, "runbookd_cert_checks_total", {{"outcome", "timed_out"}}), 0.0);
}

}  // namespace
}  // namespace runbookd::sources::certs
