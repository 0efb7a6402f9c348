#pragma once
// `store:` (docs/configuration.md#store): where the daemon keeps what must survive a restart.

#include <cstddef>
#include <string>

namespace runbookd::yaml {
class section;
}

namespace runbookd::store {

enum class kind { file, memory };

struct config {
    /// `file`: a journal in `dir` (the default; a PersistentVolume in Kubernetes).
    /// `memory`: nothing survives a restart (tests, one-off runs).
    store::kind kind = store::kind::file;
    std::string dir = "/var/lib/runbookd";
    /// The journal is rewritten to what still matters once it has grown by this much.
    std::size_t compact_bytes = std::size_t{16} << 20;

    friend bool operator==(const config&, const config&) = default;
};

void read(yaml::section& s, config& out);

}  // namespace runbookd::store
