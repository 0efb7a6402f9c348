#pragma once
// PagerDuty V3 webhook signatures (api-facts §1.1):
// https://developer.pagerduty.com/docs/webhooks/webhook-signatures

#include "core/secret.hpp"
#include "crypto/hmac.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace runbookd::intake::pagerduty {

using crypto::signature_check;

/// Verifies `X-PagerDuty-Signature` (`v1=<hex>[,v1=<hex>...]`) over the raw body against
/// every secret. Accepts when any v1 signature matches any secret. Each comparison runs in
/// constant time (crypto::verify_hmac_sha256), so timing tells nothing of a secret.
signature_check verify_signature(
    std::string_view header, std::string_view body, const std::vector<secret<std::string>>& secrets
);

/// "v1=<lower-case hex HMAC-SHA256(secret, body)>": the header value PagerDuty would send.
std::string sign(std::string_view secret_value, std::string_view body);

}  // namespace runbookd::intake::pagerduty
