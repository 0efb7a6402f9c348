#pragma once
// `alertmanager:` (docs/configuration.md#alertmanager): how Alertmanager's webhook
// authenticates, and how an alert's severity becomes a priority. Which service an alert
// is about is said under `services.<id>.alertmanager` (label matchers).

#include "core/secret.hpp"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::intake::alertmanager {

struct config {
    /// `Authorization: Bearer <token>` (Alertmanager's `http_config.authorization`):
    /// `bearer_tokens`, then the lines of `bearer_tokens_file`. Several allow a rotation.
    std::vector<secret<std::string>> bearer_tokens;
    /// `http_config.basic_auth`; both set, or neither.
    std::string basic_username;
    secret<std::string> basic_password;
    /// Severity label value -> priority shown in posts ("critical" -> "P1"). A severity
    /// not listed is shown as it is.
    std::vector<std::pair<std::string, std::string>> priorities{
        {"critical", "P1"},
        {"error", "P2"},
        {"warning", "P3"},
        {"info", "P4"},
    };
    /// The label that carries the severity.
    std::string severity_label = "severity";
    /// Notifications remembered for de-duplication (one per alert group).
    std::size_t dedupe_capacity = 10000;

    /// Off until some credential is configured: Alertmanager must authenticate.
    bool enabled() const noexcept { return !bearer_tokens.empty() || !basic_username.empty(); }
    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position.
void read(yaml::section& s, config& out);

}  // namespace runbookd::intake::alertmanager
