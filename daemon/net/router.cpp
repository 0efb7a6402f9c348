#include "net/router.hpp"

#include <boost/beast/http/field.hpp>

namespace runbookd::net {

namespace http = boost::beast::http;

response make_response(
    const request& req, http::status status, std::string body, std::string_view content_type
) {
    response res{status, req.version()};
    res.set(http::field::server, "runbookd");
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

response make_error(const request& req, http::status status, std::string_view message) {
    std::string body = R"({"error":")";
    for (const char c : message) {
        if (c == '"' || c == '\\') {
            body += '\\';
        }
        body += c;
    }
    body += "\"}";
    return make_response(req, status, std::move(body));
}

void router::add(http::verb method, std::string path, handler h) {
    routes_[std::move(path)][method] = std::move(h);
}

router router::only(std::initializer_list<std::string_view> paths) const {
    router out;
    for (const auto path : paths) {
        if (const auto it = routes_.find(path); it != routes_.end()) {
            out.routes_.emplace(it->first, it->second);
        }
    }
    return out;
}

response router::handle(const request& req) const {
    std::string_view target = req.target();
    if (const auto q = target.find('?'); q != std::string_view::npos) {
        target = target.substr(0, q);
    }
    const auto path = routes_.find(target);
    if (path == routes_.end()) {
        return make_error(req, http::status::not_found, "not found");
    }
    const auto method = path->second.find(req.method());
    if (method == path->second.end()) {
        auto res = make_error(req, http::status::method_not_allowed, "method not allowed");
        std::string allow;
        for (const auto& [verb, h] : path->second) {
            allow += (allow.empty() ? "" : ", ") + std::string{http::to_string(verb)};
        }
        res.set(http::field::allow, allow);
        return res;
    }
    return method->second(req);
}

}  // namespace runbookd::net
