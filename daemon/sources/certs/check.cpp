#include "sources/certs/check.hpp"

#include "loop/clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <exception>
#include <map>
#include <string_view>
#include <utility>

namespace runbookd::sources::certs {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using net::tls_outcome;

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

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string timed_out_detail(std::chrono::milliseconds timeout, std::string_view step) {
    return "timed out after " + format_duration(timeout) + " during " + std::string{step};
}

/// Resolves on Asio's resolver thread and posts the answer to `into`. getaddrinfo cannot
/// be cancelled, so the check waits on the channel (which can) rather than on the lookup,
/// and a lookup that outlives its check finishes here, into a channel no one reads.
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

}  // namespace

struct checker::impl {
    explicit impl(asio::any_io_executor ex) : executor(std::move(ex)) {}

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

    /// Resolves, connects and handshakes; `at` says which step is running.
    asio::awaitable<check_result> attempt(
        const target& t, ssl::context& ctx, loop::steady_clock::time_point deadline, progress& at
    ) {
        const std::string port = std::to_string(t.port);
        const std::string& where = t.address.empty() ? t.host : t.address;
        std::vector<tcp::endpoint> endpoints;
        boost::system::error_code ip_ec;
        if (const auto ip = asio::ip::make_address(where, ip_ec); !ip_ec) {
            endpoints.emplace_back(ip, t.port);  // an IP literal: no lookup
        } else {
            at.step = "resolve";
            auto answer = std::make_shared<resolve_channel>(executor, 1);
            // Detached is safe: the lookup owns its arguments and the channel, throws
            // nothing it would need to report (errors come back as values), and its
            // result is not needed after the check ends.
            asio::co_spawn(executor, resolve_into(answer, where, port), asio::detached);
            auto [rec, results] = co_await answer->async_receive(tuple_awaitable);
            if (rec) {
                co_return check_result{
                    tls_outcome::unresolved, "resolve " + where + ": " + rec.message(), {}, {}};
            }
            for (const auto& entry : results) {
                endpoints.push_back(entry.endpoint());
            }
            if (endpoints.empty()) {
                co_return check_result{tls_outcome::unresolved, "resolve " + where + ": no address", {}, {}};
            }
        }

        at.step = "connect";
        beast::ssl_stream<beast::tcp_stream> stream{executor, ctx};
        auto& socket = beast::get_lowest_layer(stream);
        socket.expires_after(remaining(deadline));
        auto [cec, connected] = co_await socket.async_connect(endpoints, tuple_awaitable);
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
        // SNI names the host (never an IP literal, RFC 6066 §3); SSL_set_tlsext_host_name
        // without its C cast.
        if (!is_ip_literal(t.host) && ::SSL_ctrl(
                                          native,
                                          SSL_CTRL_SET_TLSEXT_HOSTNAME,
                                          TLSEXT_NAMETYPE_host_name,
                                          const_cast<char*>(t.host.c_str())
                                      ) != 1) {
            ::ERR_clear_error();
            co_return check_result{
                tls_outcome::handshake_failed, "cannot send " + t.host + " as SNI", {}, {}};
        }
        if (const auto hec = net::arm_host_check(native, t.host)) {
            co_return check_result{
                tls_outcome::handshake_failed,
                "cannot check the certificate for " + t.host + ": " + hec.message(),
                {},
                {}};
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
        socket.expires_after(remaining(deadline));
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
        using namespace asio::experimental::awaitable_operators;
        const auto started = loop::steady_clock::now();
        const auto deadline = started + timeout;
        check_result out;
        if (auto ctx = context_for(t.ca_file); !ctx) {
            out.outcome = tls_outcome::handshake_failed;
            out.detail = ctx.error().detail;
        } else {
            // The deadline on the loop's clock bounds the whole check, the lookup included;
            // beast's expires_after bounds each socket step on its own (real) clock too.
            progress at;
            loop::timer timer{executor};
            timer.expires_at(deadline);
            auto work = attempt(t, **ctx, deadline, at);
            auto expiry = timer.async_wait(tuple_awaitable);
            auto raced = co_await (std::move(work) || std::move(expiry));
            if (raced.index() == 0) {
                out = std::move(std::get<0>(raced));
            } else {
                out.outcome = tls_outcome::timed_out;
            }
            if (out.outcome == tls_outcome::timed_out) {
                out.detail = timed_out_detail(timeout, at.step);  // one wording, whichever clock won
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
    std::map<std::string, std::unique_ptr<ssl::context>> contexts;  ///< by CA file; "" is the system store
};

checker::checker(asio::any_io_executor ex) : impl_(std::make_unique<impl>(std::move(ex))) {}

checker::~checker() = default;

result<void> checker::load_trust(const std::string& ca_file) {
    auto ctx = impl_->context_for(ca_file);
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
