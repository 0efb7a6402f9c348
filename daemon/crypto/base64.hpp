#pragma once
// Base64 (RFC 4648 §4) over OpenSSL: kubeconfig certificate data, ExecCredential fields;
// base64url (§5) for JWTs.

#include <optional>
#include <string>
#include <string_view>

namespace runbookd::crypto {

/// Decodes standard base64 (padding required, whitespace ignored); nullopt when invalid.
std::optional<std::string> base64_decode(std::string_view text);

/// Encodes as base64url without padding (RFC 4648 §5): JWT segments.
std::string base64url_encode(std::string_view bytes);

}  // namespace runbookd::crypto
