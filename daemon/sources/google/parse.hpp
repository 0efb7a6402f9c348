#pragma once
// Google's own JSON, pure (api-facts §3): service-account key files and error answers.
// Shared by every source that reads a Google API. No sockets, no clock.

#include "core/error.hpp"

#include <string>
#include <string_view>

namespace runbookd::sources::google {

/// The fields of a service-account key file that the grant needs. `private_key` is a secret.
struct service_account_key {
    std::string client_email;
    std::string private_key_id;
    std::string private_key;
    std::string token_uri;
    std::string project_id;
};

/// Reads a key file's JSON. Errors name the missing field, never a value.
result<service_account_key> parse_key_file(std::string_view text);

/// A Google error answer in a few words: "403 PERMISSION_DENIED: <message>" from a
/// google.rpc.Status body, "400 invalid_grant: <description>" from an OAuth one, else the
/// status alone. The message is cut to 200 characters.
std::string api_error_text(unsigned status, std::string_view body);

}  // namespace runbookd::sources::google
