#include "intake/pagerduty/signature.hpp"

namespace runbookd::intake::pagerduty {

namespace {
constexpr std::string_view scheme = "v1=";
}  // namespace

signature_check verify_signature(
    std::string_view header, std::string_view body, const std::vector<secret<std::string>>& secrets
) {
    return crypto::verify_hmac_sha256(header, scheme, secrets, body);
}

std::string sign(std::string_view secret_value, std::string_view body) {
    return crypto::sign_hmac_sha256(scheme, secret_value, body);
}

}  // namespace runbookd::intake::pagerduty
