#include "sources/probes/check.hpp"

#include "loop/clock.hpp"
#include "net/dial.hpp"
#include "net/tls_verify.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
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
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
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

    /// Sends the request and reads the answer (the header whole, the body up to
    /// max_body_read).
    template <class Stream>
    asio::awaitable<check_result> exchange(
        Stream& stream,
        beast::tcp_stream& lowest,
        const target& t,
        const endpoint& e,
        loop::steady_clock::time_point deadline,
        net::check_progress& at
    ) {
        at.step = "request";
        http::request<http::empty_body> req{http::string_to_verb(t.method), e.target, 11};
        req.set(http::field::host, e.host_header);
        req.set(http::field::user_agent, "runbookd-probe");
        req.set(http::field::accept, "*/*");
        req.set(http::field::connection, "close");
        lowest.expires_after(net::remaining(deadline));
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
        lowest.expires_after(net::remaining(deadline));
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
            lowest.expires_after(net::remaining(deadline));
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
        net::check_progress& at
    ) {
        const std::string port = std::to_string(e.port);
        at.step = "resolve";
        auto endpoints = co_await net::resolve_endpoints(executor, e.host, e.port);
        if (!endpoints) {
            co_return failed(outcome::dns_failure, endpoints.error().detail);
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
        lowest.expires_after(net::remaining(deadline));
        auto [cec, connected] = co_await lowest.async_connect(*endpoints, tuple_awaitable);
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
            if (auto why = net::arm_client_handshake(native, e.host)) {
                co_return failed(outcome::tls_error, std::move(*why));
            }
            net::verify_note note;
            tls->set_verify_callback([&note](bool preverified, ssl::verify_context& vc) {
                net::note_verify(preverified, vc.native_handle(), note);
                return preverified;  // a certificate that does not verify ends the probe
            });
            lowest.expires_after(net::remaining(deadline));
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
        const auto started = loop::steady_clock::now();
        const auto deadline = started + timeout;
        check_result out;
        ssl::context* ctx = nullptr;
        if (e.tls) {
            if (auto c = contexts.get(t.ca_file); !c) {
                out = failed(outcome::tls_error, c.error().detail);
                out.tls = std::string{net::to_string(net::tls_outcome::handshake_failed)};
            } else {
                ctx = *c;
            }
        }
        if (!e.tls || ctx != nullptr) {
            net::check_progress at;
            auto work = attempt(t, e, ctx, deadline, at);
            if (auto done = co_await net::until_deadline(executor, deadline, std::move(work))) {
                out = std::move(*done);
            } else {
                out = failed(outcome::timed_out, {});
            }
            if (out.what == outcome::timed_out) {
                out.detail = net::timed_out_detail(timeout, at.step);  // one wording, whichever clock won
            }
        }
        out.took = std::chrono::duration_cast<std::chrono::milliseconds>(loop::steady_clock::now() - started);
        co_return out;
    }

    asio::any_io_executor executor;
    net::tls_client_contexts contexts;
    std::set<beast::tcp_stream*> active;
};

prober::prober(asio::any_io_executor ex) : impl_(std::make_unique<impl>(std::move(ex))) {}

prober::~prober() = default;

result<void> prober::load_trust(const std::string& ca_file) {
    auto ctx = impl_->contexts.get(ca_file);
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
