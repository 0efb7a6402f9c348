#include "sources/probes/check.hpp"

#include "loop/clock.hpp"
#include "net/tls_verify.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd::sources::probes {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

/// A lookup's answer, handed from the lookup's own coroutine to the check waiting for it.
using resolve_channel =
    asio::experimental::channel<void(boost::system::error_code, tcp::resolver::results_type)>;

/// Time left until `deadline`, at least 1 ms so an expired budget fails the next step.
std::chrono::steady_clock::duration remaining(loop::steady_clock::time_point deadline) {
    return std::max<std::chrono::steady_clock::duration>(
        deadline - loop::steady_clock::now(), std::chrono::milliseconds{1}
    );
}

/// Resolves on Asio's resolver thread and posts the answer to `into`: getaddrinfo cannot be
/// cancelled, so the check waits on the channel (which can), as the certs source does.
asio::awaitable<void> resolve_into(
    std::shared_ptr<resolve_channel> into, std::string host, std::string port
) {
    tcp::resolver resolver{co_await asio::this_coro::executor};
    auto [ec, results] = co_await resolver.async_resolve(host, port, tuple_awaitable);
    into->try_send(ec, std::move(results));
}

/// Where one check is, for the message when the deadline ends it.
struct progress {
    std::string_view step = "resolve";
};

check_result failed(outcome o, std::string detail) {
    check_result r;
    r.what = o;
    r.detail = std::move(detail);
    return r;
}

/// A connection that ended under the request: reset, or closed before the answer ended.
bool is_reset(const boost::system::error_code& ec) {
    return ec == asio::error::connection_reset || ec == asio::error::connection_aborted ||
           ec == asio::error::broken_pipe || ec == asio::error::eof || ec == http::error::end_of_stream ||
           ec == http::error::partial_message || ec == ssl::error::stream_truncated;
}

/// What a failed read or write means.
check_result transport(const boost::system::error_code& ec, std::string_view step) {
    if (ec == beast::error::timeout) {
        return failed(outcome::timed_out, {});  // check() words it
    }
    if (ec == http::error::end_of_stream) {
        return failed(outcome::reset, "the server closed the connection without answering");
    }
    if (ec == http::error::partial_message || ec == asio::error::eof || ec == ssl::error::stream_truncated) {
        return failed(outcome::reset, "the server closed the connection before the answer ended");
    }
    if (is_reset(ec)) {
        return failed(outcome::reset, std::string{step} + ": " + ec.message());
    }
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
        // Beast's parser refused the status line or a header: not HTTP, or a header over
        // max_header_bytes.
        return failed(outcome::bad_response, "not a valid HTTP answer: " + ec.message());
    }
    return failed(outcome::reset, std::string{step} + ": " + ec.message());
}

}  // namespace

struct prober::impl {
    explicit impl(asio::any_io_executor ex) : executor(std::move(ex)) {}

    /// Registers a socket as in flight for as long as it lives, so abort_all() can close it.
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

    result<ssl::context*> context_for(const std::string& ca_file) {
        if (const auto it = contexts.find(ca_file); it != contexts.end()) {
            return it->second.get();
        }
        auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
        ctx->set_options(
            ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1
        );
        ctx->set_verify_mode(ssl::verify_peer);
        boost::system::error_code ec;
        if (ca_file.empty()) {
            ctx->set_default_verify_paths(ec);
        } else {
            ctx->load_verify_file(ca_file, ec);
        }
        if (ec) {
            return make_failure(
                errc::config_invalid,
                "cannot load CA certificates from " +
                    (ca_file.empty() ? std::string{"the system store"} : "'" + ca_file + "'") + ": " +
                    ec.message()
            );
        }
        auto* raw = ctx.get();
        contexts.emplace(ca_file, std::move(ctx));
        return raw;
    }

    /// Sends the request and reads the answer (the header whole, the body up to
    /// max_body_read).
    template <class Stream>
    asio::awaitable<check_result> exchange(
        Stream& stream,
        beast::tcp_stream& lowest,
        const target& t,
        const endpoint& e,
        loop::steady_clock::time_point deadline,
        progress& at
    ) {
        at.step = "request";
        http::request<http::empty_body> req{http::string_to_verb(t.method), e.target, 11};
        req.set(http::field::host, e.host_header);
        req.set(http::field::user_agent, "runbookd-probe");
        req.set(http::field::accept, "*/*");
        req.set(http::field::connection, "close");
        lowest.expires_after(remaining(deadline));
        auto [wec, wn] = co_await http::async_write(stream, req, tuple_awaitable);
        if (wec) {
            co_return transport(wec, "write");
        }

        at.step = "waiting for the answer";
        beast::flat_buffer buffer;
        http::response_parser<http::buffer_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
        parser.body_limit(boost::none);  // capped below, by not reading past max_body_read
        if (t.method == "HEAD") {
            parser.skip(true);
        }
        lowest.expires_after(remaining(deadline));
        auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, tuple_awaitable);
        if (hec) {
            co_return transport(hec, "read");
        }

        at.step = "reading the body";
        std::string body;
        std::array<char, 16 * 1024> piece{};
        while (!parser.is_done() && body.size() < max_body_read) {
            parser.get().body().data = piece.data();
            parser.get().body().size = piece.size();
            lowest.expires_after(remaining(deadline));
            auto [rec, rn] = co_await http::async_read_some(stream, buffer, parser, tuple_awaitable);
            body.append(piece.data(), piece.size() - parser.get().body().size);
            if (rec == ssl::error::stream_truncated) {
                // A TLS server that closes without close_notify (common): the end of a
                // body that runs to the end of the connection; a framed body still short
                // is a connection that ended early.
                boost::system::error_code eof_ec;
                parser.put_eof(eof_ec);
                if (eof_ec) {
                    co_return transport(rec, "read");
                }
                break;
            }
            if (rec && rec != http::error::need_buffer) {
                co_return transport(rec, "read");
            }
        }
        const bool truncated = !parser.is_done();
        if (body.size() > max_body_read) {
            body.resize(max_body_read);
        }
        co_return judge(t, parser.get().result_int(), body, truncated);
    }

    /// Resolves, connects, handshakes and exchanges; `at` says which step is running.
    asio::awaitable<check_result> attempt(
        const target& t,
        const endpoint& e,
        ssl::context* ctx,
        loop::steady_clock::time_point deadline,
        progress& at
    ) {
        const std::string port = std::to_string(e.port);
        std::vector<tcp::endpoint> endpoints;
        boost::system::error_code ip_ec;
        if (const auto ip = asio::ip::make_address(e.host, ip_ec); !ip_ec) {
            endpoints.emplace_back(ip, e.port);  // an IP literal: no lookup
        } else {
            at.step = "resolve";
            auto answer = std::make_shared<resolve_channel>(executor, 1);
            // Detached is safe: the lookup owns its arguments and the channel, throws nothing
            // it would need to report (errors come back as values), and its result is not
            // needed after the check ends.
            asio::co_spawn(executor, resolve_into(answer, e.host, port), asio::detached);
            auto [rec, results] = co_await answer->async_receive(tuple_awaitable);
            if (rec) {
                co_return failed(outcome::dns_failure, "resolve " + e.host + ": " + rec.message());
            }
            for (const auto& entry : results) {
                endpoints.push_back(entry.endpoint());
            }
            if (endpoints.empty()) {
                co_return failed(outcome::dns_failure, "resolve " + e.host + ": no address");
            }
        }

        at.step = "connect";
        std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
        std::unique_ptr<beast::tcp_stream> plain;
        if (e.tls) {
            tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor, *ctx);
        } else {
            plain = std::make_unique<beast::tcp_stream>(executor);
        }
        beast::tcp_stream& lowest = tls ? beast::get_lowest_layer(*tls) : *plain;
        const in_flight registered{*this, lowest};
        lowest.expires_after(remaining(deadline));
        auto [cec, connected] = co_await lowest.async_connect(endpoints, tuple_awaitable);
        if (cec == beast::error::timeout) {
            co_return failed(outcome::timed_out, {});
        }
        if (cec == asio::error::connection_reset) {
            co_return failed(outcome::reset, "connect to " + e.host + ":" + port + ": " + cec.message());
        }
        if (cec) {
            // Refused, unreachable: nothing accepted the connection.
            co_return failed(outcome::refused, "connect to " + e.host + ":" + port + ": " + cec.message());
        }
        boost::system::error_code nodelay_ec;  // a reset socket fails here; the write will say so
        lowest.socket().set_option(tcp::no_delay(true), nodelay_ec);

        check_result out;
        if (tls) {
            at.step = "tls handshake";
            SSL* native = tls->native_handle();
            // SNI names the host (never an IP literal, RFC 6066 §3); SSL_set_tlsext_host_name
            // without its C cast.
            boost::system::error_code literal_ec;
            asio::ip::make_address(e.host, literal_ec);
            if (literal_ec && ::SSL_ctrl(
                                  native,
                                  SSL_CTRL_SET_TLSEXT_HOSTNAME,
                                  TLSEXT_NAMETYPE_host_name,
                                  const_cast<char*>(e.host.c_str())
                              ) != 1) {
                ::ERR_clear_error();
                co_return failed(outcome::tls_error, "cannot send " + e.host + " as SNI");
            }
            if (const auto hec = net::arm_host_check(native, e.host)) {
                co_return failed(
                    outcome::tls_error, "cannot check the certificate for " + e.host + ": " + hec.message()
                );
            }
            net::verify_note note;
            tls->set_verify_callback([&note](bool preverified, ssl::verify_context& vc) {
                net::note_verify(preverified, vc.native_handle(), note);
                return preverified;  // a certificate that does not verify ends the probe
            });
            lowest.expires_after(remaining(deadline));
            auto [hec] = co_await tls->async_handshake(ssl::stream_base::client, tuple_awaitable);
            if (hec) {
                const auto d = net::diagnose_handshake(native, hec, note);
                if (hec == beast::error::timeout || d.outcome == net::tls_outcome::timed_out) {
                    co_return failed(outcome::timed_out, {});
                }
                if (hec == asio::error::connection_reset) {
                    co_return failed(outcome::reset, "tls handshake: " + hec.message());
                }
                auto r = failed(outcome::tls_error, "tls: " + d.detail);
                r.tls = std::string{net::to_string(d.outcome)};
                co_return r;
            }
            out = co_await exchange(*tls, lowest, t, e, deadline, at);
        } else {
            out = co_await exchange(*plain, lowest, t, e, deadline, at);
        }
        // Closed without close_notify: the answer is read, and a probe need not wait for
        // the peer's.
        lowest.close();
        co_return out;
    }

    asio::awaitable<check_result> check(
        const target& t, const endpoint& e, std::chrono::milliseconds timeout
    ) {
        using namespace asio::experimental::awaitable_operators;
        const auto started = loop::steady_clock::now();
        const auto deadline = started + timeout;
        check_result out;
        ssl::context* ctx = nullptr;
        if (e.tls) {
            if (auto c = context_for(t.ca_file); !c) {
                out = failed(outcome::tls_error, c.error().detail);
                out.tls = std::string{net::to_string(net::tls_outcome::handshake_failed)};
            } else {
                ctx = *c;
            }
        }
        if (!e.tls || ctx != nullptr) {
            // The deadline on the loop's clock bounds the whole check, the lookup included;
            // beast's expires_after bounds each socket step on its own (real) clock too.
            progress at;
            loop::timer timer{executor};
            timer.expires_at(deadline);
            auto work = attempt(t, e, ctx, deadline, at);
            auto expiry = timer.async_wait(tuple_awaitable);
            auto raced = co_await (std::move(work) || std::move(expiry));
            if (raced.index() == 0) {
                out = std::move(std::get<0>(raced));
            } else {
                out = failed(outcome::timed_out, {});
            }
            if (out.what == outcome::timed_out) {
                out.detail =
                    "timed out after " + format_duration(timeout) + " during " + std::string{at.step};
            }
        }
        out.took = std::chrono::duration_cast<std::chrono::milliseconds>(loop::steady_clock::now() - started);
        co_return out;
    }

    asio::any_io_executor executor;
    std::map<std::string, std::unique_ptr<ssl::context>> contexts;  ///< by CA file; "" is the system store
    std::set<beast::tcp_stream*> active;
};

prober::prober(asio::any_io_executor ex) : impl_(std::make_unique<impl>(std::move(ex))) {}

prober::~prober() = default;

result<void> prober::load_trust(const std::string& ca_file) {
    auto ctx = impl_->context_for(ca_file);
    if (!ctx) {
        return ctx.error();
    }
    return {};
}

asio::awaitable<check_result> prober::check(
    const target& t, const endpoint& where, std::chrono::milliseconds timeout
) {
    co_return co_await impl_->check(t, where, timeout);
}

void prober::abort_all() noexcept {
    for (auto* s : impl_->active) {
        s->close();
    }
}

}  // namespace runbookd::sources::probes
