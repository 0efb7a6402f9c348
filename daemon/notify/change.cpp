#include "notify/change.hpp"

namespace runbookd::notify {

std::string_view to_string(change::kind k) noexcept {
    switch (k) {
        case change::kind::enqueued: return "enqueued";
        case change::kind::replaced: return "replaced";
        case change::kind::sending: return "sending";
        case change::kind::refused: return "refused";
        case change::kind::delivered: return "delivered";
        case change::kind::failed: return "failed";
        case change::kind::remember: return "remember";
        case change::kind::forget: return "forget";
    }
    return "enqueued";
}

}  // namespace runbookd::notify
