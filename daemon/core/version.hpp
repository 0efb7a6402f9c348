#pragma once
// The build's version, for `runbookd version`, runbookd_build_info and the User-Agent.

#include <string_view>

namespace runbookd {

/// The project version from CMake ("0.1.0").
std::string_view version() noexcept;

/// The git revision the build came from ("unknown" outside a checkout).
std::string_view revision() noexcept;

}  // namespace runbookd
