#pragma once
// Deploy webhook signatures. GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret,
// raw body)>` (api-facts §5;
// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries). Generic:
// `X-Runbookd-Timestamp: <unix seconds>` and `X-Runbookd-Signature: v1=<hex HMAC-SHA256(secret,
// "<timestamp>.<raw body>")>`, after Stripe and Slack, so that a captured request cannot be replayed once the
// timestamp is out of tolerance.

#include "core/secret.hpp"
#include "core/time.hpp"
#include "crypto/hmac.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::intake::deploys {

using crypto::signature_check;

/// Verifies `X-Hub-Signature-256` over the raw body against every secret (a rotation).
/// Every comparison runs in constant time, and all of them run whichever matches
/// (crypto::verify_hmac_sha256), so timing tells nothing of a secret.
signature_check verify_github(
    std::string_view header, std::string_view body, const std::vector<secret<std::string>>& secrets
);

/// "sha256=<lower-case hex>": the header GitHub sends for `body` under `secret_value`.
std::string sign_github(std::string_view secret_value, std::string_view body);

/// What the generic webhook's two headers said.
struct generic_check {
    signature_check signature = signature_check::missing;
    /// The timestamp, when it was a whole number of seconds since the epoch.
    std::optional<wall_time> timestamp;
};

/// Verifies `X-Runbookd-Signature` (`v1=<hex>[,v1=<hex>...]`) over "<timestamp>.<body>"
/// against every secret; a missing or non-numeric timestamp is `malformed`. Freshness is the
/// caller's to judge from `timestamp`: it is signed, so it cannot be moved.
generic_check verify_generic(
    std::string_view timestamp_header,
    std::string_view signature_header,
    std::string_view body,
    const std::vector<secret<std::string>>& secrets
);

/// "v1=<lower-case hex HMAC-SHA256(secret, "<timestamp>.<body>")>".
std::string sign_generic(std::string_view secret_value, std::string_view timestamp, std::string_view body);

}  // namespace runbookd::intake::deploys
