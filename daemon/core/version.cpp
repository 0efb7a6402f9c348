#include "core/version.hpp"

// Defined for this file only (daemon/core/CMakeLists.txt), so a new revision recompiles
// one file rather than every user of the version.
namespace runbookd {

std::string_view version() noexcept {
    return RUNBOOKD_VERSION;
}

std::string_view revision() noexcept {
    return RUNBOOKD_REVISION;
}

}  // namespace runbookd
