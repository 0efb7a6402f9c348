#pragma once
// `deploys:` (docs/configuration.md#deploys, docs/sources/deploys.md): the deploy webhooks.
// GitHub's (`deployment`, `deployment_status`, `workflow_run`, `ping`) and a generic signed
// JSON one for other CI systems, both at POST /webhooks/deploys.

#include "core/secret.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::intake::deploys {

struct config {
    /// GitHub webhook secrets (`X-Hub-Signature-256`); several during a rotation.
    std::vector<secret<std::string>> github_secrets;
    /// Secrets of the generic webhook (`X-Runbookd-Signature`); several during a rotation.
    std::vector<secret<std::string>> generic_secrets;
    /// GitHub sends no timestamp header: a delivery whose own event time (a status's
    /// `created_at`, a run's `updated_at`) is older than this, or this far in the future,
    /// is refused as stale or replayed.
    std::chrono::milliseconds max_age = std::chrono::hours{1};
    /// The generic webhook's `X-Runbookd-Timestamp` may differ from our clock by this much.
    std::chrono::milliseconds timestamp_tolerance = std::chrono::minutes{5};
    /// The `workflow_run` workflows that deploy: a workflow's name or file name
    /// (`deploy.yml`), optionally `@environment`. Runs of other workflows are ignored.
    std::vector<std::string> workflows;
    std::size_t dedupe_capacity = 10000;

    /// On when at least one secret is configured.
    bool enabled() const noexcept { return !github_secrets.empty() || !generic_secrets.empty(); }
    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position.
void read(yaml::section& s, config& out);

}  // namespace runbookd::intake::deploys
