#pragma once
// Base64 (RFC 4648 §4) over OpenSSL: kubeconfig certificate data, ExecCredential fields.

#include <optional>
#include <string>
#include <string_view>

namespace runbookd::crypto {

/// Decodes standard base64 (padding required, whitespace ignored); nullopt when invalid.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace runbookd::crypto
