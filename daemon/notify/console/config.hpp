#pragma once
// `console:` (docs/configuration.md#console): the dry-run notifier.

#include <string>

namespace runbookd::yaml {
class section;
}

namespace runbookd::notify::console {

struct config {
    std::string path = "-";  ///< "-" is stdout

    friend bool operator==(const config&, const config&) = default;
};

void read(yaml::section& s, config& out);

}  // namespace runbookd::notify::console
