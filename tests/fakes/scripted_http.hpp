#pragma once
// An http_client that answers from a script and records every request.

#include "net/http_client.hpp"

#include <deque>
#include <variant>
#include <vector>

namespace runbookd::fakes {

class scripted_http final : public net::http_client {
public:
    using answer = std::variant<net::http_reply, net::transport_failure>;

    void push(answer a) { script_.push_back(std::move(a)); }
    void push_reply(unsigned status, std::string body, std::map<std::string, std::string> headers = {}) {
        push(net::http_reply{status, std::move(headers), std::move(body)});
    }

    boost::asio::awaitable<boost::system::result<net::http_reply, net::transport_failure>> send(
        net::http_call call
    ) override {
        co_return next(std::move(call), net::http_reply{200, {}, R"({"id":"1"})"});
    }

    /// Streams: a 2xx answer's body reaches the sink in pieces of `stream_piece` bytes (to exercise
    /// line splitting across pieces); then the stream ends, as a server closing it would.
    boost::asio::awaitable<boost::system::result<net::http_reply, net::transport_failure>> stream(
        net::http_call call, body_sink sink
    ) override {
        // An exhausted script fails streams, so a watcher under test backs off (and waits
        // for manual time) instead of reconnecting in a tight loop.
        auto res = next(
            std::move(call),
            net::transport_failure{make_failure(errc::upstream_unavailable, "script exhausted", true), false}
        );
        if (res && res->status >= 200 && res->status < 300) {
            const std::string body = std::move(res->body);
            res->body.clear();
            if (!sink({})) {
                co_return res;
            }
            for (std::size_t at = 0; at < body.size(); at += stream_piece) {
                if (!sink(std::string_view{body}.substr(at, stream_piece))) {
                    break;
                }
            }
        }
        co_return res;
    }

    std::vector<net::http_call> calls;
    std::size_t stream_piece = 7;

private:
    boost::system::result<net::http_reply, net::transport_failure> next(
        net::http_call call, answer fallback
    ) {
        calls.push_back(std::move(call));
        if (script_.empty()) {
            script_.push_back(std::move(fallback));
        }
        auto a = std::move(script_.front());
        script_.pop_front();
        if (auto* r = std::get_if<net::http_reply>(&a)) {
            return std::move(*r);
        }
        return std::get<net::transport_failure>(std::move(a));
    }

    std::deque<answer> script_;
};

}  // namespace runbookd::fakes
