#pragma once
// Error policy: error_code at the I/O edge, result<T> everywhere else.
// Exceptions from third-party libraries are caught in the adapter that calls them.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <system_error>

namespace runbookd {

/// Error conditions of runbookd's own making; mixes with Asio and Beast codes.
enum class errc {
    config_invalid = 1,
    parse_failed,
    bad_signature,
    upstream_unavailable,
    upstream_rejected,
    rate_limited,
    timed_out,
    too_large,
    shutting_down,
};

/// The category of runbookd::errc.
const boost::system::error_category& error_category() noexcept;

/// Makes an error_code of runbookd's category.
boost::system::error_code make_error_code(errc e) noexcept;

/// A failure with a short, already-redacted detail that is safe to log.
struct failure {
    boost::system::error_code code;
    bool retryable = false;
    std::string detail;
};

/// Builds a failure of runbookd's own category.
failure make_failure(errc e, std::string detail, bool retryable = false);

/// Called by result<T>::value() on error; throws std::runtime_error with the detail.
[[noreturn]] void throw_exception_from_error(const failure& f, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, failure>;

}  // namespace runbookd

namespace boost::system {
template <>
struct is_error_code_enum<runbookd::errc> : std::true_type {};
}  // namespace boost::system
