#include "sources/google/parse.hpp"

#include "sources/google/json.hpp"

namespace runbookd::sources::google {
namespace {

using namespace json_read;

}  // namespace

std::string api_error_text(unsigned status, std::string_view body) {
    std::string out = std::to_string(status);
    const json doc = json::parse(body, nullptr, false);
    const json& error = field(doc, "error");
    std::string code;
    std::string message;
    if (error.is_object()) {
        code = text(error, "status");
        message = text(error, "message");
    } else if (error.is_string()) {
        code = error.get<std::string>();
        message = text(doc, "error_description");
    }
    if (!code.empty()) {
        out += " " + code;
    }
    if (!message.empty()) {
        if (message.size() > 200) {
            message.resize(200);
            message += "...";
        }
        out += ": " + message;
    }
    return out;
}

result<service_account_key> parse_key_file(std::string_view text) {
    const json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return make_failure(errc::config_invalid, "the key file is not JSON");
    }
    const auto field = [&](const char* name) {
        const auto it = doc.find(name);
        return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string{};
    };
    if (const auto type = field("type"); type != "service_account") {
        return make_failure(
            errc::config_invalid,
            "the key file's type is '" + type +
                "', not 'service_account' (user credentials are not supported)"
        );
    }
    service_account_key key{
        field("client_email"),
        field("private_key_id"),
        field("private_key"),
        field("token_uri"),
        field("project_id")};
    for (const auto& [name, value] :
         {std::pair{"client_email", &key.client_email}, {"private_key", &key.private_key}}) {
        if (value->empty()) {
            return make_failure(errc::config_invalid, std::string{"the key file has no "} + name);
        }
    }
    return key;
}

}  // namespace runbookd::sources::google
