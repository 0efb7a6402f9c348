#include "sources/certs/check.hpp"

#include "loop/clock.hpp"
#include "net/dial.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <exception>
#include <string_view>
#include <utility>

namespace runbookd::sources::certs {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using net::tls_outcome;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

}  // namespace

struct checker::impl {
    explicit impl(asio::any_io_executor ex) : executor(std::move(ex)) {}

    /// Resolves, connects and handshakes; `at` says which step is running.
    asio::awaitable<check_result> attempt(
        const target& t, ssl::context& ctx, loop::steady_clock::time_point deadline, net::check_progress& at
    ) {
        const std::string port = std::to_string(t.port);
        const std::string& where = t.address.empty() ? t.host : t.address;
        at.step = "resolve";
        auto endpoints = co_await net::resolve_endpoints(executor, where, t.port);
        if (!endpoints) {
            co_return check_result{tls_outcome::unresolved, endpoints.error().detail, {}, {}};
        }

        at.step = "connect";
        beast::ssl_stream<beast::tcp_stream> stream{executor, ctx};
        auto& socket = beast::get_lowest_layer(stream);
        socket.expires_after(net::remaining(deadline));
        auto [cec, connected] = co_await socket.async_connect(*endpoints, tuple_awaitable);
        if (cec == beast::error::timeout) {
            co_return check_result{tls_outcome::timed_out, {}, {}, {}};  // check() words it
        }
        if (cec) {
            // Refused, reset, unreachable: nothing accepted the connection.
            co_return check_result{
                tls_outcome::refused, "connect to " + where + ":" + port + ": " + cec.message(), {}, {}};
        }

        at.step = "tls handshake";
        SSL* native = stream.native_handle();
        if (auto why = net::arm_client_handshake(native, t.host)) {
            co_return check_result{tls_outcome::handshake_failed, std::move(*why), {}, {}};
        }
        // Verification runs in full, but the callback notes the first failure (and the
        // certificate it is about) and lets the handshake go on, so the chain of an
        // expired or misnamed certificate is still read.
        net::verify_note note;
        std::string failed_subject;
        stream.set_verify_callback([&note, &failed_subject](bool preverified, ssl::verify_context& vc) {
            if (!preverified && note.code == X509_V_OK) {
                net::note_verify(preverified, vc.native_handle(), note);
                if (const X509* cert = ::X509_STORE_CTX_get_current_cert(vc.native_handle())) {
                    failed_subject = subject_of(*cert);
                }
            }
            return true;
        });
        socket.expires_after(net::remaining(deadline));
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, tuple_awaitable);

        check_result out;
        // The chain as sent, leaf first and intermediates after (so an expired
        // intermediate counts), even when the handshake failed after the Certificate
        // message.
        if (const auto* sent = ::SSL_get_peer_cert_chain(native)) {
            if (auto chain = read_chain(sent)) {
                out.chain = std::move(*chain);
            }
        }
        const auto diagnosis = net::diagnose_handshake(native, hec, note);
        out.outcome = diagnosis.outcome;
        if (note.code != X509_V_OK) {
            out.detail = failed_subject.empty() ? diagnosis.detail : diagnosis.detail + ": " + failed_subject;
        } else if (diagnosis.outcome == tls_outcome::timed_out) {
            out.detail.clear();  // check() words it
        } else if (hec) {
            out.detail = "tls handshake: " + diagnosis.detail;
        } else {
            out.detail = diagnosis.detail;
        }
        // Closed without close_notify: a probe sends no application data and need not
        // wait for the peer's own close_notify (beast's close also stops its timer).
        socket.close();
        co_return out;
    }

    asio::awaitable<check_result> check(const target& t, std::chrono::milliseconds timeout) {
        const auto started = loop::steady_clock::now();
        const auto deadline = started + timeout;
        check_result out;
        if (auto ctx = contexts.get(t.ca_file); !ctx) {
            out.outcome = tls_outcome::handshake_failed;
            out.detail = ctx.error().detail;
        } else {
            net::check_progress at;
            auto work = attempt(t, **ctx, deadline, at);
            if (auto done = co_await net::until_deadline(executor, deadline, std::move(work))) {
                out = std::move(*done);
            } else {
                out.outcome = tls_outcome::timed_out;
            }
            if (out.outcome == tls_outcome::timed_out) {
                out.detail = net::timed_out_detail(timeout, at.step);  // one wording, whichever clock won
            }
        }
        out.took = std::chrono::duration_cast<std::chrono::milliseconds>(loop::steady_clock::now() - started);
        co_return out;
    }

    asio::awaitable<void> worker(
        std::span<const target> targets,
        std::size_t& next,
        std::vector<check_result>& results,
        std::chrono::milliseconds timeout,
        const checker::on_result& each
    ) {
        while (next < targets.size()) {
            const std::size_t i = next++;
            results[i] = co_await check(targets[i], timeout);
            if (each) {
                each(i, results[i]);
            }
        }
    }

    asio::awaitable<std::vector<check_result>> check_all(
        std::span<const target> targets,
        std::size_t concurrency,
        std::chrono::milliseconds timeout,
        const checker::on_result& each
    ) {
        std::vector<check_result> results(targets.size());
        if (targets.empty()) {
            co_return results;
        }
        // N workers pull the next index; the group ends when all have run dry.
        std::size_t next = 0;
        const std::size_t workers = std::clamp<std::size_t>(concurrency, 1, targets.size());
        using spawned =
            decltype(asio::co_spawn(executor, worker(targets, next, results, timeout, each), asio::deferred));
        std::vector<spawned> group;
        group.reserve(workers);
        for (std::size_t w = 0; w < workers; ++w) {
            group.push_back(
                asio::co_spawn(executor, worker(targets, next, results, timeout, each), asio::deferred)
            );
        }
        auto [order, errors] = co_await asio::experimental::make_parallel_group(std::move(group))
                                   .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
        for (const auto& e : errors) {
            if (e) {
                std::rethrow_exception(e);
            }
        }
        co_return results;
    }

    asio::any_io_executor executor;
    net::tls_client_contexts contexts;
};

checker::checker(asio::any_io_executor ex) : impl_(std::make_unique<impl>(std::move(ex))) {}

checker::~checker() = default;

result<void> checker::load_trust(const std::string& ca_file) {
    auto ctx = impl_->contexts.get(ca_file);
    if (!ctx) {
        return ctx.error();
    }
    return {};
}

asio::awaitable<check_result> checker::check(const target& t, std::chrono::milliseconds timeout) {
    co_return co_await impl_->check(t, timeout);
}

const checker::on_result checker::no_callback;

asio::awaitable<std::vector<check_result>> checker::check_all(
    std::span<const target> targets,
    std::size_t concurrency,
    std::chrono::milliseconds timeout,
    const on_result& each
) {
    co_return co_await impl_->check_all(targets, concurrency, timeout, each);
}

}  // namespace runbookd::sources::certs
