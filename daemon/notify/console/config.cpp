#include "notify/console/config.hpp"

#include "yaml/section.hpp"

namespace runbookd::notify::console {

void read(yaml::section& s, config& out) {
    s.keys({"path"});
    s.get("path", out.path, true);
}

}  // namespace runbookd::notify::console
