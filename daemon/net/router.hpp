#pragma once
// (method, path) -> handler. Handlers are synchronous and thin: they run on the loop
// thread, authenticate, parse, hand over to the engine and answer.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

namespace runbookd::net {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;
using handler = std::function<response(const request&)>;

/// A response with the given status, content type and body; keep-alive copied from `req`.
response make_response(
    const request& req,
    boost::beast::http::status status,
    std::string body,
    std::string_view content_type = "application/json"
);

/// A JSON error body {"error": "<message>"} with the given status.
response make_error(const request& req, boost::beast::http::status status, std::string_view message);

/// Exact-path routing: unknown path -> 404, known path with another method -> 405.
class router {
public:
    void add(boost::beast::http::verb method, std::string path, handler h);
    response handle(const request& req) const;
    /// A router with only `paths` of this one (every method of each), for a listener that
    /// serves a part (the admin listener's /healthz, /readyz and /metrics).
    router only(std::initializer_list<std::string_view> paths) const;

private:
    std::map<std::string, std::map<boost::beast::http::verb, handler>, std::less<>> routes_;
};

}  // namespace runbookd::net
