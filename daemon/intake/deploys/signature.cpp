#include "intake/deploys/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <charconv>
#include <optional>

namespace runbookd::intake::deploys {
namespace {

using digest = std::array<unsigned char, 32>;

digest hmac_sha256(std::string_view key, std::string_view a, std::string_view b = {}) {
    digest out{};
    std::size_t len = 0;
    // Two parts without building "<timestamp>.<body>" as one string (bodies may be large).
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
        // Only when libcrypto itself fails: a digest no signature can match.
        out.fill(0);
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

/// Hex-decodes a candidate; nullopt unless exactly 64 hex digits.
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

std::string to_hex(const digest& d) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(d.size() * 2);
    for (const unsigned char b : d) {
        out += hex[b >> 4];
        out += hex[b & 0xF];
    }
    return out;
}

/// The digests of every `prefix<hex>` item of a comma-separated header.
std::vector<digest> candidates(std::string_view header, std::string_view prefix) {
    std::vector<digest> out;
    while (!header.empty()) {
        const auto comma = header.find(',');
        const auto item = trim(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        if (item.starts_with(prefix)) {
            if (auto d = decode(item.substr(prefix.size()))) {
                out.push_back(*d);
            }
        }
    }
    return out;
}

/// Whether any candidate equals any expected digest; every pair is compared, with no early
/// exit, so the time taken does not depend on which one matched.
bool any_match(const std::vector<digest>& expected, const std::vector<digest>& got) {
    bool match = false;
    for (const auto& e : expected) {
        for (const auto& c : got) {
            match |= CRYPTO_memcmp(e.data(), c.data(), e.size()) == 0;
        }
    }
    return match;
}

}  // namespace

signature_check verify_github(
    std::string_view header, std::string_view body, const std::vector<secret<std::string>>& secrets
) {
    if (trim(header).empty()) {
        return signature_check::missing;
    }
    const auto got = candidates(header, "sha256=");
    if (got.empty()) {
        return signature_check::malformed;
    }
    std::vector<digest> expected;
    expected.reserve(secrets.size());
    for (const auto& s : secrets) {
        expected.push_back(hmac_sha256(s.reveal(), body));
    }
    return any_match(expected, got) ? signature_check::valid : signature_check::mismatch;
}

std::string sign_github(std::string_view secret_value, std::string_view body) {
    return "sha256=" + to_hex(hmac_sha256(secret_value, body));
}

generic_check verify_generic(
    std::string_view timestamp_header,
    std::string_view signature_header,
    std::string_view body,
    const std::vector<secret<std::string>>& secrets
) {
    generic_check out;
    const auto ts = trim(timestamp_header);
    if (trim(signature_header).empty()) {
        out.signature = signature_check::missing;
        return out;
    }
    long long seconds = 0;
    const auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), seconds);
    // Up to the year 9999: a larger number would overflow the millisecond clock.
    if (ts.empty() || ec != std::errc{} || end != ts.data() + ts.size() || seconds < 0 ||
        seconds > 253402300799LL) {
        out.signature = signature_check::malformed;
        return out;
    }
    out.timestamp = wall_time{std::chrono::seconds{seconds}};
    const auto got = candidates(signature_header, "v1=");
    if (got.empty()) {
        out.signature = signature_check::malformed;
        return out;
    }
    const std::string prefix = std::string{ts} + ".";
    std::vector<digest> expected;
    expected.reserve(secrets.size());
    for (const auto& s : secrets) {
        expected.push_back(hmac_sha256(s.reveal(), prefix, body));
    }
    out.signature = any_match(expected, got) ? signature_check::valid : signature_check::mismatch;
    return out;
}

std::string sign_generic(std::string_view secret_value, std::string_view timestamp, std::string_view body) {
    return "v1=" + to_hex(hmac_sha256(secret_value, std::string{timestamp} + ".", body));
}

}  // namespace runbookd::intake::deploys
