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
        calls.push_back(call);
        if (script_.empty()) {
            co_return net::http_reply{200, {}, R"({"id":"1"})"};
        }
        auto a = std::move(script_.front());
        script_.pop_front();
        if (auto* r = std::get_if<net::http_reply>(&a)) {
            co_return *r;
        }
        co_return std::get<net::transport_failure>(a);
    }

    std::vector<net::http_call> calls;

private:
    std::deque<answer> script_;
};

}  // namespace runbookd::fakes
