#pragma once
// Signatures over OpenSSL's libcrypto: RS256 for the Google service-account JWT grant.

#include <optional>
#include <string>
#include <string_view>

namespace runbookd::crypto {

/// RSASSA-PKCS1-v1_5 with SHA-256 of `data` under the PEM private key `key_pem` (PKCS#8 or
/// PKCS#1): the raw signature, or nullopt with `*error` set (never the key) when the key is
/// unreadable or not RSA.
std::optional<std::string> rs256_sign(std::string_view key_pem, std::string_view data, std::string* error);

}  // namespace runbookd::crypto
