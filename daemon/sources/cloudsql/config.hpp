#pragma once
// `cloudsql:` (docs/configuration.md#cloudsql): Cloud Monitoring metrics and the Cloud SQL
// Admin instance.

#include <chrono>
#include <string>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::cloudsql {

/// Off while `instance` is empty.
struct config {
    std::string instance;  ///< the instance ID, without the project
    std::chrono::milliseconds monitoring_interval = std::chrono::minutes{1};
    std::chrono::milliseconds instance_interval = std::chrono::minutes{5};
    /// How far back the first monitoring read looks (and one after a failure longer than it).
    std::chrono::milliseconds lookback = std::chrono::minutes{15};
    /// How far back before the previous read's end each later read starts again: a point that
    /// becomes visible up to this late is still read, and handed over when it appears.
    std::chrono::milliseconds reread = std::chrono::minutes{10};

    bool enabled() const noexcept { return !instance.empty(); }
    friend bool operator==(const config&, const config&) = default;
};

void read(yaml::section& s, config& out);

}  // namespace runbookd::sources::cloudsql
