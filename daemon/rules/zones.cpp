#include "rules/zones.hpp"

#include <date/tz.h>

#include <exception>

namespace runbookd {

const date::time_zone* locate_zone(std::string_view name) noexcept {
    try {
        return date::locate_zone(name);
    } catch (const std::exception&) {
        return nullptr;  // unknown zone, or no tz database on this machine
    }
}

}  // namespace runbookd
