#pragma once
// The pure half of the probes source: reading a target's URL and expected statuses, judging
// an HTTP answer (status, body text, Google's load-balancer error page), the failure count
// and flapping of one target over its checks, and the signals they make. No I/O, no clock.

#include "core/signal.hpp"
#include "core/time.hpp"
#include "sources/probes/config.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace runbookd::sources::probes {

/// At most this much of a body is read (and searched for `body_contains`); the rest is not
/// waited for. A health page is a few hundred bytes; Google's error page 1.6 KiB.
inline constexpr std::size_t max_body_read = 256 * 1024;

/// At most this much of a response header is read; a longer one is a bad response.
inline constexpr std::size_t max_header_bytes = 64 * 1024;

/// Where a URL points, as a check needs it.
struct endpoint {
    bool tls = true;
    std::string host;  ///< a name, or an IP literal (IPv6 without brackets)
    std::uint16_t port = 443;
    std::string target = "/";  ///< path and query, as sent on the request line
    std::string host_header;   ///< host[:port] as the Host header carries it
};

/// `text` as an endpoint, or why it is not one ("" reason on success).
struct parsed_url {
    std::optional<endpoint> where;
    std::string reason;
};
parsed_url parse_url(std::string_view text);

/// "200", "2xx" or "200-299" as a range; nullopt when it is none of these (100 to 599).
std::optional<status_range> parse_status(std::string_view text);

/// True when `status` is in one of `expect`.
bool status_expected(const std::vector<status_range>& expect, unsigned status) noexcept;

/// "200", "2xx", "200-204", comma-separated: the expected statuses as config writes them.
std::string describe_expect(const std::vector<status_range>& expect);

/// What one check came to.
enum class outcome {
    ok,             ///< an expected status, and the body text when one is required
    wrong_status,   ///< an HTTP answer with another status
    body_mismatch,  ///< an expected status without the required body text
    timed_out,      ///< no complete answer within the timeout
    reset,          ///< the connection was reset or closed before the answer ended
    refused,        ///< nothing accepted the TCP connection (refused, unreachable)
    tls_error,      ///< the TLS handshake failed (certificate, protocol); `tls` says how
    dns_failure,    ///< the host name did not resolve
    bad_response,   ///< the answer is not HTTP (a malformed status line or header)
};
inline constexpr outcome every_outcome[] = {
    outcome::ok,
    outcome::wrong_status,
    outcome::body_mismatch,
    outcome::timed_out,
    outcome::reset,
    outcome::refused,
    outcome::tls_error,
    outcome::dns_failure,
    outcome::bad_response};

/// The snake_case name ("wrong_status"), for labels and logs.
std::string_view to_string(outcome o) noexcept;

/// The result of one check.
struct check_result {
    outcome what = outcome::refused;
    unsigned status = 0;  ///< the HTTP status; 0 without an HTTP answer
    /// Why, in a short sentence safe to log (never the body, the path or the query):
    /// "HTTP 502 from Google's front end (expected 2xx)", "timed out after 3s during connect".
    std::string detail;
    /// For tls_error: net::tls_outcome's name ("expired", "name_mismatch",
    /// "untrusted_issuer", "handshake_failed"), as the certs source names it.
    std::string tls;
    bool google_frontend = false;       ///< the answer is Google's load-balancer error page
    std::chrono::milliseconds took{0};  ///< from the start of the check to its result
};

/// True when an answer is the error page Google's front end (the external HTTP(S) load
/// balancer) writes itself: a 5xx whose body carries Google's "That’s an error." /
/// "The server encountered a temporary error and could not complete your request" text.
/// A backend's own 5xx relayed through the load balancer has its own body (and a
/// `Via: 1.1 google` header too, so that header alone proves nothing).
bool is_google_error_page(unsigned status, std::string_view body) noexcept;

/// Judges a complete HTTP answer against `t`: ok, wrong_status or body_mismatch, with the
/// sentence. `body` is what was read (at most max_body_read bytes; `truncated` when more
/// was sent).
check_result judge(const target& t, unsigned status, std::string_view body, bool truncated);

/// When one target counts as failing, after Prometheus' `for:` and Nagios' flap detection.
struct thresholds {
    std::size_t failures_before_alert = 2;
    std::size_t flap_window = 10;
    std::size_t flap_changes = 4;
};

/// What one check means for its target.
struct verdict {
    enum class kind { none, failure, recovered } what = kind::none;
    bool flapping = false;
    std::size_t consecutive = 0;  ///< failed checks in a row, this one included
    wall_time since{};            ///< failure: the first failed check of this run; recovered: the same run's
};

/// One target's recent checks. A failed check counts (a probe.failure) once
/// `failures_before_alert` checks in a row failed, or at once while the target flaps; the
/// first passing check after a counted failure is a recovery. Not thread-safe.
class tracker {
public:
    verdict observe(bool ok, wall_time at, const thresholds& th);
    bool failing() const noexcept { return counted_; }

private:
    std::size_t consecutive_ = 0;
    wall_time since_{};
    bool counted_ = false;
    std::deque<bool> history_;  ///< the last flap_window results, oldest first
};

/// The probe.failure signal of a counted failed check made at `at`: the outcome and its
/// sentence, the status, who answered (google_frontend or backend; "" without an answer),
/// since when the target fails, how many checks in a row, whether it flaps, and how many
/// of the source's hosts answer with Google's error page right now (`gfe_hosts`). The value
/// is the check's latency in seconds.
signal failure_signal(
    const target& t, const check_result& r, const verdict& v, wall_time at, std::size_t gfe_hosts
);

/// The probe.recovered signal of the first passing check after a failure: since when it had
/// failed; the value is how long it failed, in seconds.
signal recovered_signal(const target& t, const check_result& r, const verdict& v, wall_time at);

}  // namespace runbookd::sources::probes
