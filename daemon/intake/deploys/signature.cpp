#include "intake/deploys/signature.hpp"

#include "core/chars.hpp"

#include <charconv>

namespace runbookd::intake::deploys {
namespace {

constexpr std::string_view github_scheme = "sha256=";
constexpr std::string_view generic_scheme = "v1=";

}  // namespace

signature_check verify_github(
    std::string_view header, std::string_view body, const std::vector<secret<std::string>>& secrets
) {
    return crypto::verify_hmac_sha256(header, github_scheme, secrets, body);
}

std::string sign_github(std::string_view secret_value, std::string_view body) {
    return crypto::sign_hmac_sha256(github_scheme, secret_value, body);
}

generic_check verify_generic(
    std::string_view timestamp_header,
    std::string_view signature_header,
    std::string_view body,
    const std::vector<secret<std::string>>& secrets
) {
    generic_check out;
    const auto ts = trim_blanks(timestamp_header);
    if (trim_blanks(signature_header).empty()) {
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
    // Signed over "<timestamp>.<body>", in two parts (bodies may be large).
    const std::string prefix = std::string{ts} + ".";
    out.signature = crypto::verify_hmac_sha256(signature_header, generic_scheme, secrets, prefix, body);
    return out;
}

std::string sign_generic(std::string_view secret_value, std::string_view timestamp, std::string_view body) {
    return crypto::sign_hmac_sha256(generic_scheme, secret_value, std::string{timestamp} + ".", body);
}

}  // namespace runbookd::intake::deploys
