#pragma once
// Building request URLs: one percent-encoder (Boost.URL's) for path segments and query values.

#include <string>
#include <string_view>

namespace runbookd::net {

/// Percent-encodes every byte but the unreserved ones (RFC 3986 §2.3: letters, digits,
/// "-", ".", "_", "~"), so the result is safe in a path segment, a query value or a form.
std::string percent_encode(std::string_view text);

}  // namespace runbookd::net
