#include "net/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <list>
#include <map>
#include <unordered_set>

namespace runbookd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct http_server::state : std::enable_shared_from_this<state> {
    state(
        asio::any_io_executor ex,
        const router& r,
        server_limits l,
        log::logger lg,
        prometheus::Registry& reg,
        std::string listener
    )
        : executor(std::move(ex)),
          acceptor(executor),
          routes(r),
          limits(l),
          log(std::move(lg)),
          name(std::move(listener)),
          requests(prometheus::BuildCounter()
                       .Name("runbookd_http_requests_total")
                       .Help("HTTP requests served, by listener and status class.")
                       .Register(reg)),
          refused_family(prometheus::BuildCounter()
                             .Name("runbookd_http_connections_refused_total")
                             .Help("Connections closed at once, by listener and the limit that was reached.")
                             .Register(reg)),
          refused_total(refused_family.Add({{"listener", name}, {"reason", "max_connections"}})),
          refused_per_client(refused_family.Add({{"listener", name}, {"reason", "max_connections_per_client"}}
          )),
          timeouts_family(prometheus::BuildCounter()
                              .Name("runbookd_http_timeouts_total")
                              .Help("Connections cut off by a timeout, by listener and what was awaited.")
                              .Register(reg)),
          header_timeouts(timeouts_family.Add({{"listener", name}, {"phase", "header"}})),
          body_timeouts(timeouts_family.Add({{"listener", name}, {"phase", "body"}})),
          idle_timeouts(timeouts_family.Add({{"listener", name}, {"phase", "idle"}})),
          open_connections(prometheus::BuildGauge()
                               .Name("runbookd_http_connections")
                               .Help("Open inbound HTTP connections, by listener.")
                               .Register(reg)
                               .Add({{"listener", name}})),
          refusals_logged(refused_log_period) {
        for (const char* c : {"2xx", "4xx", "5xx"}) {
            by_class.push_back(&requests.Add({{"listener", name}, {"code", c}}));
        }
    }

    asio::any_io_executor executor;
    tcp::acceptor acceptor;
    const router& routes;
    http_server::reply_hook before_reply;
    server_limits limits;
    log::logger log;
    std::string name;
    prometheus::Family<prometheus::Counter>& requests;
    std::vector<prometheus::Counter*> by_class;
    prometheus::Family<prometheus::Counter>& refused_family;
    prometheus::Counter& refused_total;
    prometheus::Counter& refused_per_client;
    prometheus::Family<prometheus::Counter>& timeouts_family;
    prometheus::Counter& header_timeouts;
    prometheus::Counter& body_timeouts;
    prometheus::Counter& idle_timeouts;
    prometheus::Gauge& open_connections;
    std::list<beast::tcp_stream*> live;
    std::unordered_set<beast::tcp_stream*> writing;       ///< connections writing a response now
    std::map<asio::ip::address, std::size_t> per_client;  ///< open connections by peer address
    log_throttle refusals_logged;
    bool stopping = false;

    void count(http::status s) {
        const auto code = static_cast<unsigned>(s);
        by_class[code >= 500 ? 2 : code >= 400 ? 1 : 0]->Increment();
    }

    /// Closes a connection we will not serve: counted, and logged at most once a period
    /// (a flood would otherwise write a line per connection).
    void refuse_connection(tcp::socket& socket, const asio::ip::address& client, bool per_client_limit) {
        (per_client_limit ? refused_per_client : refused_total).Increment();
        boost::system::error_code ignored;
        // Nothing was read: close() sends a FIN, and the client sees the connection end
        // before any answer, as for any server at capacity.
        socket.close(ignored);
        if (const auto n = refusals_logged.note(loop::steady_clock::now()); n > 0) {
            log.warn(
                "connections refused",
                {{"listener", name},
                 {"reason", per_client_limit ? "max_connections_per_client" : "max_connections"},
                 {"client", client.to_string()},
                 {"refused", static_cast<int>(n)},
                 {"open", static_cast<int>(live.size())},
                 {"log_period_s", static_cast<int>(refused_log_period.count())}}
            );
        }
    }

    asio::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        while (!stopping) {
            auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
            if (ec) {
                if (ec == asio::error::operation_aborted || stopping) {
                    break;
                }
                // Out of file descriptors or a connection reset before accept: keep serving.
                log.warn("accept failed", {{"listener", name}, {"error", ec.message()}});
                continue;
            }
            boost::system::error_code pec;
            const auto peer = socket.remote_endpoint(pec);
            if (pec) {
                // The client is gone already (reset before we looked): nothing to serve.
                boost::system::error_code ignored;
                socket.close(ignored);
                continue;
            }
            const auto client = peer.address();
            if (live.size() >= limits.max_connections) {
                refuse_connection(socket, client, false);
                continue;
            }
            auto& from_client = per_client[client];
            if (from_client >= limits.max_connections_per_client) {
                refuse_connection(socket, client, true);
                continue;
            }
            from_client += 1;
            // The session outlives nothing of ours but `self`, which it holds; its
            // exceptions are caught inside, so detached is safe.
            asio::co_spawn(executor, session(std::move(socket), client), asio::detached);
        }
    }

    asio::awaitable<void> session(tcp::socket socket, asio::ip::address client) {
        auto self = shared_from_this();
        beast::tcp_stream stream{std::move(socket)};
        live.push_front(&stream);
        const auto registration = live.begin();
        open_connections.Increment();
        try {
            co_await serve(stream);
        } catch (const std::exception& e) {
            log.error("session failed", {{"listener", name}, {"error", e.what()}});
        }
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.close();
        live.erase(registration);
        open_connections.Decrement();
        if (const auto it = per_client.find(client); it != per_client.end() && --it->second == 0) {
            per_client.erase(it);
        }
    }

    asio::awaitable<void> write(beast::tcp_stream& stream, response res) {
        count(res.result());
        stream.expires_after(limits.body_timeout);
        // stop() leaves a connection alone while it writes, so a webhook that was
        // processed gets its answer and PagerDuty does not redeliver it.
        writing.insert(&stream);
        co_await http::async_write(stream, res, tuple_awaitable);
        writing.erase(&stream);
    }

    asio::awaitable<void> serve(beast::tcp_stream& stream) {
        beast::flat_buffer buffer;
        // The first request's header must be in within header_timeout of the accept, sent
        // byte or not: a connection that stays silent holds a slot no longer than that.
        stream.expires_after(limits.header_timeout);
        bool first = true;
        while (!stopping) {
            if (buffer.size() == 0) {
                // Between requests of a kept-alive connection the idle timeout applies to
                // the next request's first byte.
                if (!first) {
                    stream.expires_after(limits.idle_timeout);
                }
                auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), tuple_awaitable);
                if (ec) {
                    if (ec == beast::error::timeout) {
                        (first ? header_timeouts : idle_timeouts).Increment();
                    }
                    co_return;  // peer closed, a timeout, or stop(): all normal ends
                }
                buffer.commit(n);
            }
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
            parser.body_limit(limits.max_body_bytes);

            // Once a later request's first byte is in, its whole header must follow within
            // header_timeout (slowloris defence); the first request's deadline runs on.
            if (!first) {
                stream.expires_after(limits.header_timeout);
            }
            first = false;
            auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, tuple_awaitable);
            if (hec == beast::error::timeout) {
                header_timeouts.Increment();
                co_return;  // a slow client gets no answer: it has had its time
            }
            if (!hec) {
                stream.expires_after(limits.body_timeout);
                std::tie(hec, hn) = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
                if (hec == beast::error::timeout) {
                    body_timeouts.Increment();
                    co_return;
                }
            }
            if (hec) {
                co_await refuse(stream, parser, hec);
                co_return;
            }
            request req = parser.release();
            response res = routes.handle(req);
            if (before_reply) {
                co_await before_reply(req, res);
            }
            const bool keep = res.keep_alive() && !stopping;
            res.keep_alive(keep);
            co_await write(stream, std::move(res));
            if (!keep) {
                co_return;
            }
        }
    }

    /// Answers a request we could not read, where an answer is still possible.
    asio::awaitable<void> refuse(
        beast::tcp_stream& stream,
        http::request_parser<http::string_body>& parser,
        boost::system::error_code ec
    ) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
            co_return;
        }
        request stub;
        stub.version(parser.get().version() == 10 ? 10 : 11);
        stub.keep_alive(false);
        http::status status = http::status::bad_request;
        std::string_view what = "bad request";
        if (ec == http::error::body_limit) {
            status = http::status::payload_too_large;
            what = "body too large";
        } else if (ec == http::error::header_limit) {
            status = http::status::request_header_fields_too_large;
            what = "headers too large";
        }
        log.debug(
            "request refused",
            {{"listener", name}, {"status", static_cast<int>(status)}, {"error", ec.message()}}
        );
        co_await write(stream, make_error(stub, status, what));
    }
};

std::size_t log_throttle::note(loop::steady_clock::time_point now) {
    held_ += 1;
    if (last_ && now - *last_ < period_) {
        return 0;
    }
    last_ = now;
    return std::exchange(held_, 0);
}

http_server::http_server(
    asio::any_io_executor ex,
    const router& routes,
    server_limits limits,
    log::logger log,
    prometheus::Registry& metrics,
    std::string name
)
    : state_(std::make_shared<state>(std::move(ex), routes, limits, std::move(log), metrics, std::move(name))
      ) {}

http_server::~http_server() {
    stop();
}

tcp::endpoint http_server::listen(const std::string& address, std::uint16_t port) {
    const tcp::endpoint ep{asio::ip::make_address(address), port};
    auto& acc = state_->acceptor;
    acc.open(ep.protocol());
    acc.set_option(asio::socket_base::reuse_address(true));
    if (ep.address().is_v6()) {
        acc.set_option(asio::ip::v6_only(true));
    }
    acc.bind(ep);
    acc.listen(asio::socket_base::max_listen_connections);
    // Detached is safe: the accept loop holds the state, stop() ends it, and it
    // catches its own errors.
    asio::co_spawn(state_->executor, state_->accept_loop(), asio::detached);
    return acc.local_endpoint();
}

void http_server::stop() {
    if (state_->stopping) {
        return;
    }
    state_->stopping = true;
    boost::system::error_code ignored;
    state_->acceptor.close(ignored);
    // Idle connections are waiting in a read: cancel it. A connection that is writing a
    // response finishes it, then sees `stopping` and closes.
    for (auto* stream : state_->live) {
        if (!state_->writing.contains(stream)) {
            stream->socket().cancel(ignored);
        }
    }
}

void http_server::before_reply(reply_hook hook) {
    state_->before_reply = std::move(hook);
}

std::size_t http_server::connections() const noexcept {
    return state_->live.size();
}

}  // namespace runbookd::net
