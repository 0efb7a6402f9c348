#pragma once
// `pagerduty:` (docs/configuration.md#pagerduty): webhook authentication and redelivery
// suppression.

#include "core/secret.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::intake::pagerduty {

struct config {
    /// `webhook_secrets` then the lines of `webhook_secrets_file`; never empty once loaded.
    std::vector<secret<std::string>> webhook_secrets;
    std::size_t dedupe_capacity = 10000;
    /// An event whose occurred_at is older than this is refused as stale (a replay, or a
    /// redelivery of news the daemon would act on too late).
    std::chrono::milliseconds max_age = std::chrono::hours{1};

    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position.
void read(yaml::section& s, config& out);

}  // namespace runbookd::intake::pagerduty
