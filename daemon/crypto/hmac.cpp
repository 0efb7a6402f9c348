#include "crypto/hmac.hpp"

#include "core/chars.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <optional>
#include <vector>

namespace runbookd::crypto {
namespace {

using digest = std::array<unsigned char, 32>;

/// HMAC-SHA256 of `a` then `b` under `key`; nullopt only when libcrypto itself fails (then
/// nothing can match: a zero-filled digest would match a header of zeros).
std::optional<digest> hmac_sha256(std::string_view key, std::string_view a, std::string_view b) {
    digest out{};
    std::size_t len = 0;
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* mctx = mac == nullptr ? nullptr : EVP_MAC_CTX_new(mac);
    if (mctx != nullptr) {
        char digest_name[] = "SHA256";
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string("digest", digest_name, 0), OSSL_PARAM_construct_end()};
        std::size_t n = 0;
        if (EVP_MAC_init(mctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) == 1 &&
            EVP_MAC_update(mctx, reinterpret_cast<const unsigned char*>(a.data()), a.size()) == 1 &&
            EVP_MAC_update(mctx, reinterpret_cast<const unsigned char*>(b.data()), b.size()) == 1 &&
            EVP_MAC_final(mctx, out.data(), &n, out.size()) == 1) {
            len = n;
        }
    }
    EVP_MAC_CTX_free(mctx);
    EVP_MAC_free(mac);
    if (len != out.size()) {
        return std::nullopt;
    }
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

/// Hex-decodes a candidate (either case, as go-pagerduty and GitHub's examples accept);
/// nullopt unless exactly 64 hex digits.
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

/// The digests of every `<scheme><hex>` item of a comma-separated header.
std::vector<digest> candidates(std::string_view header, std::string_view scheme) {
    std::vector<digest> out;
    while (!header.empty()) {
        const auto comma = header.find(',');
        const auto item = trim_blanks(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        if (item.starts_with(scheme)) {
            if (auto d = decode(item.substr(scheme.size()))) {
                out.push_back(*d);
            }
        }
        // Other schemes (a future v2=) are ignored, as PagerDuty's reference code does.
    }
    return out;
}

}  // namespace

signature_check verify_hmac_sha256(
    std::string_view header,
    std::string_view scheme,
    std::span<const secret<std::string>> secrets,
    std::string_view data,
    std::string_view more
) {
    if (trim_blanks(header).empty()) {
        return signature_check::missing;
    }
    const auto got = candidates(header, scheme);
    if (got.empty()) {
        return signature_check::malformed;
    }
    bool match = false;
    for (const auto& s : secrets) {
        const auto expected = hmac_sha256(s.reveal(), data, more);
        if (!expected) {
            continue;  // libcrypto failed: this secret cannot match
        }
        for (const auto& c : got) {
            // No early exit: every pair is compared, so the time taken does not depend
            // on which secret or which candidate matched.
            match |= CRYPTO_memcmp(expected->data(), c.data(), expected->size()) == 0;
        }
    }
    return match ? signature_check::valid : signature_check::mismatch;
}

std::string sign_hmac_sha256(
    std::string_view scheme, std::string_view key, std::string_view data, std::string_view more
) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out{scheme};
    const auto d = hmac_sha256(key, data, more);
    if (!d) {
        return out;  // libcrypto failed: a signature that verifies nowhere (malformed)
    }
    out.reserve(out.size() + d->size() * 2);
    for (const unsigned char b : *d) {
        out += hex[b >> 4];
        out += hex[b & 0xF];
    }
    return out;
}

}  // namespace runbookd::crypto
