#include "net/https_client.hpp"

#include "loop/clock.hpp"
#include "net/tls_verify.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>
#include <stdexcept>
#include <vector>

namespace runbookd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_idle_per_origin = 4;

std::string http_reply::header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
}

namespace {

/// Time left until `deadline`, at least 1 ms so an expired budget fails the next step.
std::chrono::steady_clock::duration remaining(loop::steady_clock::time_point deadline) {
    return std::max<std::chrono::steady_clock::duration>(
        deadline - loop::steady_clock::now(), std::chrono::milliseconds{1}
    );
}

struct target {
    bool tls = true;
    std::string host;
    std::string port;
    std::string path;    ///< path and query: never logged
    std::string origin;  ///< scheme://host:port: safe to log
};

std::optional<target> parse_target(const std::string& url) {
    auto u = boost::urls::parse_absolute_uri(url);
    if (!u || !u->has_authority()) {
        return std::nullopt;
    }
    target t;
    if (u->scheme() == "https") {
        t.tls = true;
    } else if (u->scheme() == "http") {
        t.tls = false;
    } else {
        return std::nullopt;
    }
    t.host = u->host_address();  // IPv6 without brackets, IPv4 or a name
    if (t.host.empty()) {
        return std::nullopt;
    }
    t.port = u->has_port() ? std::string{u->port()} : (t.tls ? "443" : "80");
    t.path = u->encoded_path().empty() ? "/" : std::string{u->encoded_path()};
    if (u->has_query()) {
        t.path += "?" + std::string{u->encoded_query()};
    }
    t.origin = std::string{u->scheme()} + "://" + std::string{u->encoded_host_and_port()};
    return t;
}

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

}  // namespace

struct https_client::impl {
    /// Registers a stream as in flight for as long as it lives, so shutdown() can abort it.
    struct in_flight {
        in_flight(impl& owner, beast::tcp_stream& s) : owner_(owner), stream_(&s) {
            owner_.active.insert(stream_);
        }
        ~in_flight() { owner_.active.erase(stream_); }
        in_flight(const in_flight&) = delete;
        in_flight& operator=(const in_flight&) = delete;

    private:
        impl& owner_;
        beast::tcp_stream* stream_;
    };

    struct connection {
        std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
        std::unique_ptr<beast::tcp_stream> plain;
        beast::flat_buffer buffer;
        verify_note verify;  ///< the handshake's first verification failure, to name it

        beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
    };
    using result_type = boost::system::result<http_reply, transport_failure>;
    using body_sink = http_client::body_sink;

    impl(asio::any_io_executor ex, const tls_options& opts, log::logger lg)
        : executor(std::move(ex)), context(ssl::context::tls_client), log(std::move(lg)) {
        context.set_options(
            ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1
        );
        context.set_verify_mode(ssl::verify_peer);
        boost::system::error_code ec;
        if (opts.ca_file.empty() && !opts.ca_pem.empty()) {
            context.add_certificate_authority(asio::buffer(opts.ca_pem), ec);
        } else if (opts.ca_file.empty()) {
            context.set_default_verify_paths(ec);
        } else {
            context.load_verify_file(opts.ca_file, ec);
        }
        if (ec) {
            throw std::runtime_error(
                "cannot load CA certificates from " +
                (opts.ca_file.empty() ? std::string{"inline PEM data"} : "'" + opts.ca_file + "'") + ": " +
                ec.message()
            );
        }
        if (!opts.client_cert_pem.empty() || !opts.client_key_pem.empty()) {
            context.use_certificate_chain(asio::buffer(opts.client_cert_pem), ec);
            if (ec) {
                throw std::runtime_error("cannot load the client certificate: " + ec.message());
            }
            context.use_private_key(asio::buffer(opts.client_key_pem), ssl::context::pem, ec);
            if (ec) {
                throw std::runtime_error("cannot load the client key: " + ec.message());
            }
        }
    }

    /// A TLS error after the handshake (TLS 1.3: the server refusing our client certificate
    /// on our first read) says what it is as a handshake's does (describe_tls_error).
    static transport_failure fail(
        const target& t, std::string_view step, const boost::system::error_code& ec, bool sent
    ) {
        return fail(t, step, ec, sent, describe_tls_error(ec));
    }

    /// The same failure with a more precise `reason` than the code's message.
    static transport_failure fail(
        const target& t,
        std::string_view step,
        const boost::system::error_code& ec,
        bool sent,
        std::string reason
    ) {
        auto code = ec == beast::error::timeout ? errc::timed_out : errc::upstream_unavailable;
        return transport_failure{
            make_failure(code, t.origin + ": " + std::string{step} + ": " + std::move(reason), true), sent};
    }

    asio::awaitable<boost::system::result<std::unique_ptr<connection>, transport_failure>> connect(
        const target& t, loop::steady_clock::time_point deadline
    ) {
        tcp::resolver resolver{executor};
        auto [rec, endpoints] = co_await resolver.async_resolve(t.host, t.port, tuple_awaitable);
        if (rec) {
            co_return fail(t, "resolve", rec, false);
        }
        if (closing) {
            co_return transport_failure{make_failure(errc::shutting_down, "client shut down", true), false};
        }
        auto conn = std::make_unique<connection>();
        if (t.tls) {
            conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor, context);
        } else {
            conn->plain = std::make_unique<beast::tcp_stream>(executor);
        }
        auto& stream = conn->lowest();
        const in_flight registered{*this, stream};
        stream.expires_after(remaining(deadline));
        auto [cec, ep] = co_await stream.async_connect(endpoints, tuple_awaitable);
        if (cec) {
            co_return fail(t, "connect", cec, false);
        }
        boost::system::error_code nodelay_ec;  // a reset socket fails here; the write will say so
        stream.socket().set_option(tcp::no_delay(true), nodelay_ec);
        if (t.tls) {
            if (!is_ip_literal(t.host) && SSL_ctrl(  // SSL_set_tlsext_host_name without its C cast
                                              conn->tls->native_handle(),
                                              SSL_CTRL_SET_TLSEXT_HOSTNAME,
                                              TLSEXT_NAMETYPE_host_name,
                                              const_cast<char*>(t.host.c_str())
                                          ) != 1) {
                co_return fail(
                    t, "sni", {static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()}, false
                );
            }
            // OpenSSL checks that the certificate names this host (DNS name or IP address
            // SAN), so a mismatch is named as one; the callback only notes where
            // verification failed first and keeps OpenSSL's verdict.
            if (const auto aec = arm_host_check(conn->tls->native_handle(), t.host)) {
                co_return fail(t, "tls host check", aec, false);
            }
            conn->tls->set_verify_callback([note = &conn->verify](bool preverified, ssl::verify_context& vc) {
                note_verify(preverified, vc.native_handle(), *note);
                return preverified;
            });
            stream.expires_after(remaining(deadline));
            auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, tuple_awaitable);
            if (hec) {
                // "certificate has expired" rather than "certificate verify failed", "wrong
                // version number" when the server speaks plain HTTP.
                co_return fail(
                    t,
                    "tls handshake",
                    hec,
                    false,
                    diagnose_handshake(conn->tls->native_handle(), hec, conn->verify).detail
                );
            }
        }
        co_return conn;
    }

    static http::request<http::string_body> make_request(const target& t, const http_call& call) {
        http::request<http::string_body> req;
        req.method_string(call.method);
        req.target(t.path);
        req.version(11);
        const bool default_port = t.port == (t.tls ? "443" : "80");
        req.set(http::field::host, default_port ? t.host : t.host + ":" + t.port);
        for (const auto& [name, value] : call.headers) {
            req.set(name, value);
        }
        req.keep_alive(true);
        if (!call.body.empty() || call.method == "POST" || call.method == "PATCH" || call.method == "PUT") {
            req.body() = call.body;
            req.prepare_payload();
        }
        return req;
    }

    /// Lower-case header names, as http_reply promises.
    template <class Fields>
    static void copy_headers(const Fields& from, http_reply& reply) {
        for (const auto& h : from) {
            std::string name{h.name_string()};
            std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
                return static_cast<char>(std::tolower(c));
            });
            reply.headers[std::move(name)] = std::string{h.value()};
        }
    }

    template <class Stream>
    asio::awaitable<result_type> exchange(
        Stream& stream,
        connection& conn,
        const target& t,
        const http_call& call,
        loop::steady_clock::time_point deadline,
        bool& got_bytes
    ) {
        const auto req = make_request(t, call);
        conn.lowest().expires_after(remaining(deadline));
        auto [wec, wn] = co_await http::async_write(stream, req, tuple_awaitable);
        if (wec) {
            co_return fail(t, "write", wec, false);
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(call.max_body);
        conn.lowest().expires_after(remaining(deadline));
        auto [rec, rn] = co_await http::async_read(stream, conn.buffer, parser, tuple_awaitable);
        got_bytes = rn > 0 || parser.got_some();
        if (rec) {
            co_return fail(t, "read", rec, true);
        }
        auto res = parser.release();
        http_reply reply;
        reply.status = res.result_int();
        copy_headers(res, reply);
        reply.body = std::move(res.body());
        if (!res.keep_alive()) {
            got_bytes = false;  // signal: do not pool
            reply.headers["connection"] = "close";
        }
        co_return reply;
    }

    /// Where `call` goes, or why it cannot go (shutting down, not an http(s) URL).
    boost::system::result<target, transport_failure> target_of(const http_call& call) const {
        if (closing) {
            return transport_failure{make_failure(errc::shutting_down, "client shut down", true), false};
        }
        auto t = parse_target(call.url);
        if (!t) {
            return transport_failure{make_failure(errc::config_invalid, "not an http(s) URL", false), false};
        }
        return std::move(*t);
    }

    asio::awaitable<result_type> send(http_call call) {
        const auto t = target_of(call);
        if (!t) {
            co_return t.error();
        }
        // One deadline for the whole call, stale-connection retry included: `timeout` is
        // what a caller waits at most. (Name resolution runs getaddrinfo, bounded by the
        // resolver's own timeouts in resolv.conf, and cannot be cancelled.)
        const auto deadline = loop::steady_clock::now() + call.timeout;
        for (int attempt = 0; attempt < 2; ++attempt) {
            std::unique_ptr<connection> conn;
            bool reused = false;
            if (auto& pool = idle[t->origin]; !pool.empty()) {
                conn = std::move(pool.back());
                pool.pop_back();
                reused = true;
            } else {
                auto fresh = co_await connect(*t, deadline);
                if (!fresh) {
                    co_return fresh.error();
                }
                conn = std::move(*fresh);
            }
            bool got_bytes = false;
            const in_flight registered{*this, conn->lowest()};
            // No co_await inside ?: — g++ 12 destroys the result twice there.
            result_type res = transport_failure{};
            if (conn->tls) {
                res = co_await exchange(*conn->tls, *conn, *t, call, deadline, got_bytes);
            } else {
                res = co_await exchange(*conn->plain, *conn, *t, call, deadline, got_bytes);
            }
            if (!res) {
                // A pooled connection the server closed while idle fails before any
                // response byte: try once more on a fresh connection.
                if (reused && !got_bytes && !closing && loop::steady_clock::now() < deadline) {
                    continue;
                }
                co_return res.error();
            }
            if (res->header("connection") != "close") {
                auto& pool = idle[t->origin];
                if (pool.size() < max_idle_per_origin) {
                    pool.push_back(std::move(conn));
                }
            }
            co_return res;
        }
        co_return transport_failure{
            make_failure(errc::upstream_unavailable, t->origin + ": connection lost", true), true};
    }

    /// Reads a response piece by piece: a 2xx body goes to `sink`, any other is collected.
    template <class Stream>
    asio::awaitable<result_type> stream_exchange(
        Stream& stream,
        connection& conn,
        const target& t,
        const http_call& call,
        const body_sink& sink,
        loop::steady_clock::time_point deadline
    ) {
        const auto req = make_request(t, call);
        auto [wec, wn] = co_await http::async_write(stream, req, tuple_awaitable);
        if (wec) {
            co_return fail(t, "write", wec, false);
        }
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(boost::none);  // a watch is endless; the deadline bounds it
        auto [hec, hn] = co_await http::async_read_header(stream, conn.buffer, parser, tuple_awaitable);
        if (hec) {
            co_return fail(t, "read", hec, true);
        }
        http_reply reply;
        reply.status = parser.get().result_int();
        copy_headers(parser.get(), reply);
        const bool ok = reply.status >= 200 && reply.status < 300;
        if (ok && !sink({})) {  // the stream is up
            co_return reply;
        }
        std::array<char, 16 * 1024> piece{};
        while (!parser.is_done() && !closing) {
            if (call.idle_timeout.count() > 0) {
                conn.lowest().expires_after(
                    std::min<std::chrono::steady_clock::duration>(call.idle_timeout, remaining(deadline))
                );
            }
            parser.get().body().data = piece.data();
            parser.get().body().size = piece.size();
            auto [rec, rn] = co_await http::async_read_some(stream, conn.buffer, parser, tuple_awaitable);
            if (rec && rec != http::error::need_buffer) {
                co_return fail(t, "read", rec, true);
            }
            const std::string_view got{piece.data(), piece.size() - parser.get().body().size};
            if (got.empty()) {
                continue;
            }
            if (!ok) {
                if (reply.body.size() + got.size() > call.max_body) {
                    co_return fail(t, "read", http::error::body_limit, true);
                }
                reply.body += got;
            } else if (!sink(got)) {
                break;
            }
        }
        co_return reply;
    }

    asio::awaitable<result_type> stream(http_call call, body_sink sink) {
        const auto t = target_of(call);
        if (!t) {
            co_return t.error();
        }
        const auto deadline = loop::steady_clock::now() + call.timeout;
        // Connecting and the response header are bounded by the idle timeout too.
        const auto until_header = call.idle_timeout.count() > 0
                                      ? std::min(deadline, loop::steady_clock::now() + call.idle_timeout)
                                      : deadline;
        auto conn = co_await connect(*t, until_header);
        if (!conn) {
            co_return conn.error();
        }
        const in_flight registered{*this, (*conn)->lowest()};
        (*conn)->lowest().expires_after(remaining(until_header));
        result_type res = transport_failure{};
        if ((*conn)->tls) {
            res = co_await stream_exchange(*(*conn)->tls, **conn, *t, call, sink, deadline);
        } else {
            res = co_await stream_exchange(*(*conn)->plain, **conn, *t, call, sink, deadline);
        }
        co_return res;
    }

    asio::any_io_executor executor;
    ssl::context context;
    log::logger log;
    std::map<std::string, std::vector<std::unique_ptr<connection>>> idle;
    std::set<beast::tcp_stream*> active;
    bool closing = false;
};

https_client::https_client(asio::any_io_executor ex, const tls_options& tls, log::logger log)
    : impl_(std::make_unique<impl>(std::move(ex), tls, std::move(log))) {}

https_client::~https_client() = default;

void https_client::shutdown() noexcept {
    impl_->closing = true;
    for (auto* stream : impl_->active) {
        // Closing (not only cancelling) also fails an operation started after this call,
        // such as the next read of a stream whose previous read had just completed.
        stream->close();
    }
    impl_->idle.clear();
}

asio::awaitable<boost::system::result<http_reply, transport_failure>> https_client::send(http_call call) {
    co_return co_await impl_->send(std::move(call));
}

asio::awaitable<boost::system::result<http_reply, transport_failure>> https_client::stream(
    http_call call, body_sink sink
) {
    co_return co_await impl_->stream(std::move(call), std::move(sink));
}

}  // namespace runbookd::net
