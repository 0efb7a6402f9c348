#pragma once
// The time-zone database, looked up where rules are loaded: the lookup reads files
// (/usr/share/zoneinfo), which the pure core never does; the core only uses the zone.

#include <string_view>

namespace date {
class time_zone;
}

namespace runbookd {

/// The zone called `name`, or nullptr when the tz database does not know it.
const date::time_zone* locate_zone(std::string_view name) noexcept;

}  // namespace runbookd
