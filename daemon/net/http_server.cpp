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
#include <unordered_set>

namespace runbookd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct http_server::state : std::enable_shared_from_this<state> {
    state(
        asio::any_io_executor ex, const router& r, server_limits l, log::logger lg, prometheus::Registry& reg
    )
        : executor(std::move(ex)),
          acceptor(executor),
          routes(r),
          limits(l),
          log(std::move(lg)),
          requests(prometheus::BuildCounter()
                       .Name("runbookd_http_requests_total")
                       .Help("HTTP requests served, by status class.")
                       .Register(reg)),
          refused(prometheus::BuildCounter()
                      .Name("runbookd_http_connections_refused_total")
                      .Help("Connections closed at once because max_connections was reached.")
                      .Register(reg)
                      .Add({})),
          timeouts(prometheus::BuildCounter()
                       .Name("runbookd_http_timeouts_total")
                       .Help("Connections cut off by a header, body or idle timeout.")
                       .Register(reg)
                       .Add({})),
          open_connections(prometheus::BuildGauge()
                               .Name("runbookd_http_connections")
                               .Help("Open inbound HTTP connections.")
                               .Register(reg)
                               .Add({})) {
        for (const char* c : {"2xx", "4xx", "5xx"}) {
            by_class.push_back(&requests.Add({{"code", c}}));
        }
    }

    asio::any_io_executor executor;
    tcp::acceptor acceptor;
    const router& routes;
    server_limits limits;
    log::logger log;
    prometheus::Family<prometheus::Counter>& requests;
    std::vector<prometheus::Counter*> by_class;
    prometheus::Counter& refused;
    prometheus::Counter& timeouts;
    prometheus::Gauge& open_connections;
    std::list<beast::tcp_stream*> live;
    std::unordered_set<beast::tcp_stream*> writing;  ///< connections writing a response now
    bool stopping = false;

    void count(http::status s) {
        const auto code = static_cast<unsigned>(s);
        by_class[code >= 500 ? 2 : code >= 400 ? 1 : 0]->Increment();
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
                log.warn("accept failed", {{"error", ec.message()}});
                continue;
            }
            if (live.size() >= limits.max_connections) {
                refused.Increment();
                boost::system::error_code ignored;
                socket.close(ignored);
                continue;
            }
            // The session outlives nothing of ours but `self`, which it holds; its
            // exceptions are caught inside, so detached is safe.
            asio::co_spawn(executor, session(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> session(tcp::socket socket) {
        auto self = shared_from_this();
        beast::tcp_stream stream{std::move(socket)};
        live.push_front(&stream);
        const auto registration = live.begin();
        open_connections.Increment();
        try {
            co_await serve(stream);
        } catch (const std::exception& e) {
            log.error("session failed", {{"error", e.what()}});
        }
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.close();
        live.erase(registration);
        open_connections.Decrement();
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
        while (!stopping) {
            // Between requests the idle timeout applies; once a byte has arrived the
            // whole header must follow within header_timeout (slowloris defence).
            if (buffer.size() == 0) {
                stream.expires_after(limits.idle_timeout);
                auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), tuple_awaitable);
                if (ec) {
                    if (ec == beast::error::timeout) {
                        timeouts.Increment();
                    }
                    co_return;  // peer closed, idle timeout, or stop(): all normal ends
                }
                buffer.commit(n);
            }
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
            parser.body_limit(limits.max_body_bytes);

            stream.expires_after(limits.header_timeout);
            auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, tuple_awaitable);
            if (!hec) {
                stream.expires_after(limits.body_timeout);
                std::tie(hec, hn) = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
            }
            if (hec) {
                co_await refuse(stream, parser, hec);
                co_return;
            }
            request req = parser.release();
            response res = routes.handle(req);
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
        if (ec == beast::error::timeout) {
            timeouts.Increment();
            co_return;  // a slow client gets no answer: it has had its time
        }
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
        log.debug("request refused", {{"status", static_cast<int>(status)}, {"error", ec.message()}});
        co_await write(stream, make_error(stub, status, what));
    }
};

http_server::http_server(
    asio::any_io_executor ex,
    const router& routes,
    server_limits limits,
    log::logger log,
    prometheus::Registry& metrics
)
    : state_(std::make_shared<state>(std::move(ex), routes, limits, std::move(log), metrics)) {}

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

std::size_t http_server::connections() const noexcept {
    return state_->live.size();
}

}  // namespace runbookd::net
