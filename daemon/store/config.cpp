#include "store/config.hpp"

#include "yaml/section.hpp"

#include <array>

namespace runbookd::store {

void read(yaml::section& s, config& out) {
    s.keys({"kind", "dir", "compact_bytes"});
    constexpr std::array<std::string_view, 2> kinds{"file", "memory"};
    if (const auto k = s.choice("kind", kinds)) {
        out.kind = *k == 0 ? kind::file : kind::memory;
    }
    s.get("dir", out.dir, true);
    s.get("compact_bytes", out.compact_bytes, 4096);
}

}  // namespace runbookd::store
