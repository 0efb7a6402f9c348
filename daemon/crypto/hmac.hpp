#pragma once
// Webhook signatures: HMAC-SHA256 of a request under each of several shared secrets (a
// rotation), carried in a header as `<scheme><hex>` items, checked in constant time. One
// implementation for every intake that signs this way: PagerDuty's `v1=`
// (intake/pagerduty), GitHub's `sha256=` and the generic `v1=` over "<timestamp>.<body>"
// (intake/deploys).

#include "core/secret.hpp"

#include <span>
#include <string>
#include <string_view>

namespace runbookd::crypto {

/// What a signature header said about a request.
enum class signature_check {
    valid,      ///< some item matches some secret
    missing,    ///< the header is empty (or blank)
    malformed,  ///< no item is `<scheme>` followed by exactly 64 hex digits
    mismatch,   ///< well-formed, but no item matches any secret (or there is no secret)
};

/// Verifies `header`, comma-separated `<scheme><hex>` items (`v1=<hex>,v1=<hex>`; hex in
/// either case; items of another scheme are ignored), against HMAC-SHA256(secret, `data`
/// followed by `more`) for every secret. The message comes in two parts so that a
/// "<timestamp>." prefix is not copied in front of a large body.
///
/// Constant time: every comparison is CRYPTO_memcmp on the decoded digests, and every
/// secret is compared with every item whatever matched, so the time taken tells nothing of
/// a secret or of which one matched.
signature_check verify_hmac_sha256(
    std::string_view header,
    std::string_view scheme,
    std::span<const secret<std::string>> secrets,
    std::string_view data,
    std::string_view more = {}
);

/// `<scheme><lower-case hex HMAC-SHA256(key, data followed by more)>`: the header item a
/// sender would write.
std::string sign_hmac_sha256(
    std::string_view scheme, std::string_view key, std::string_view data, std::string_view more = {}
);

}  // namespace runbookd::crypto
