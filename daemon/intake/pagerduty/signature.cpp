#include "intake/pagerduty/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <optional>

namespace runbookd::intake::pagerduty {
namespace {

using digest = std::array<unsigned char, 32>;

digest hmac_sha256(std::string_view key, std::string_view body) {
    digest out{};
    unsigned int len = 0;
    HMAC(
        EVP_sha256(),
        key.data(),
        static_cast<int>(key.size()),
        reinterpret_cast<const unsigned char*>(body.data()),
        body.size(),
        out.data(),
        &len
    );
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/// Hex-decodes a candidate (case-insensitive, as go-pagerduty does); nullopt unless 64 hex digits.
std::optional<digest> decode(std::string_view hex) {
    if (hex.size() != 64) {
        return std::nullopt;
    }
    digest out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = hex_value(hex[2 * i]);
        const int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

signature_check verify_signature(
    std::string_view header, std::string_view body, const std::vector<secret<std::string>>& secrets
) {
    if (trim(header).empty()) {
        return signature_check::missing;
    }
    std::vector<digest> candidates;
    while (!header.empty()) {
        const auto comma = header.find(',');
        const auto item = trim(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        if (item.starts_with("v1=")) {
            if (auto d = decode(item.substr(3))) {
                candidates.push_back(*d);
            }
        }
        // Other schemes (a future v2=) are ignored, as PagerDuty's reference code does.
    }
    if (candidates.empty()) {
        return signature_check::malformed;
    }
    bool match = false;
    for (const auto& s : secrets) {
        const auto expected = hmac_sha256(s.reveal(), body);
        for (const auto& c : candidates) {
            // No early exit: every pair is compared, so the time taken does not depend
            // on which secret or which candidate matched.
            match |= CRYPTO_memcmp(expected.data(), c.data(), expected.size()) == 0;
        }
    }
    return match ? signature_check::valid : signature_check::mismatch;
}

std::string sign(std::string_view secret_value, std::string_view body) {
    static constexpr char hex[] = "0123456789abcdef";
    const auto d = hmac_sha256(secret_value, body);
    std::string out = "v1=";
    for (const unsigned char b : d) {
        out += hex[b >> 4];
        out += hex[b & 0xF];
    }
    return out;
}

}  // namespace runbookd::intake::pagerduty
