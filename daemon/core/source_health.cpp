#include "core/source_health.hpp"

namespace runbookd {

std::string_view to_string(source_state s) noexcept {
    return s == source_state::healthy ? "healthy" : "failing";
}

}  // namespace runbookd
