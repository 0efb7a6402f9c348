#pragma once
// Digests over OpenSSL's libcrypto, for the components that fingerprint what they read
// (a config file, a rule pack, a ConfigMap's data).

#include <string>
#include <string_view>

namespace runbookd::crypto {

/// Lower-case hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);

}  // namespace runbookd::crypto
