#include "net/dial.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>

namespace runbookd::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

/// A lookup's answer, handed from the lookup's own coroutine to the check waiting for it.
using resolve_channel =
    asio::experimental::channel<void(boost::system::error_code, tcp::resolver::results_type)>;

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

}  // namespace

std::chrono::steady_clock::duration remaining(loop::steady_clock::time_point deadline) {
    return std::max<std::chrono::steady_clock::duration>(
        deadline - loop::steady_clock::now(), std::chrono::milliseconds{1}
    );
}

std::string timed_out_detail(std::chrono::milliseconds timeout, std::string_view step) {
    return "timed out after " + format_duration(timeout) + " during " + std::string{step};
}

asio::awaitable<result<std::vector<tcp::endpoint>>> resolve_endpoints(
    asio::any_io_executor ex, std::string host, std::uint16_t port
) {
    std::vector<tcp::endpoint> endpoints;
    boost::system::error_code ip_ec;
    if (const auto ip = asio::ip::make_address(host, ip_ec); !ip_ec) {
        endpoints.emplace_back(ip, port);  // an IP literal: no lookup
        co_return endpoints;
    }
    auto answer = std::make_shared<resolve_channel>(ex, 1);
    // Detached is safe: the lookup owns its arguments and the channel, throws nothing it
    // would need to report (errors come back as values), and its result is not needed
    // after the check ends.
    asio::co_spawn(ex, resolve_into(answer, host, std::to_string(port)), asio::detached);
    auto [rec, results] = co_await answer->async_receive(tuple_awaitable);
    if (rec) {
        co_return make_failure(errc::upstream_unavailable, "resolve " + host + ": " + rec.message());
    }
    for (const auto& entry : results) {
        endpoints.push_back(entry.endpoint());
    }
    if (endpoints.empty()) {
        co_return make_failure(errc::upstream_unavailable, "resolve " + host + ": no address");
    }
    co_return endpoints;
}

tls_client_contexts::tls_client_contexts() = default;

tls_client_contexts::~tls_client_contexts() = default;

result<ssl::context*> tls_client_contexts::get(const std::string& ca_file) {
    if (const auto it = by_file_.find(ca_file); it != by_file_.end()) {
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
    by_file_.emplace(ca_file, std::move(ctx));
    return raw;
}

}  // namespace runbookd::net
