#pragma once
// Deploy webhooks -> deploy events -> `deploy.ci` signals. Pure: no I/O, no clock.
// GitHub: api-facts §5 and "GitHub: workflow_run and ping" in docs/sources/deploys.md;
// https://docs.github.com/en/webhooks/webhook-events-and-payloads

#include "core/error.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd {
struct service_info;
}

namespace runbookd::intake::deploys {

/// One status of one deploy, as a CI system reported it.
struct deploy_event {
    std::string provider;     ///< "github" or "generic"
    std::string subject;      ///< the deploy: "owner/repo deployment 145988746", "api run-981"
    std::string repository;   ///< "owner/repo" (GitHub)
    std::string environment;  ///< "production"
    std::string service;      ///< as the generic sender named it
    std::string commit;       ///< full SHA, lower case, when known
    std::string version;      ///< "main@4f2a9c1", "2026.03.05-b7e1"
    std::string status;  ///< queued, in_progress, success, failure, error, cancelled (or the vendor's word)
    std::string actor;
    std::string url;                   ///< where a person reads the run's log
    wall_time at;                      ///< when this status happened (the payload's own time)
    std::optional<wall_time> started;  ///< when the deploy began
    /// This status's identity, whatever delivery carried it (a second hook, a resend).
    std::string event_key;
};

/// What a delivery turned out to be.
enum class delivery_kind {
    deploy,   ///< a deploy status: becomes a signal
    ping,     ///< GitHub's `ping` when a hook is created
    ignored,  ///< a valid delivery with nothing for us (another event, another workflow, `inactive`)
};

struct parsed_delivery {
    delivery_kind kind = delivery_kind::ignored;
    std::string why;  ///< for `ignored`: what it was
    std::optional<deploy_event> deploy;
};

/// Parses a GitHub delivery of event `event` (`X-GitHub-Event`). `workflows` are the
/// config's `NAME[@ENVIRONMENT]` entries: `workflow_run` deliveries of other workflows are
/// ignored. A missing or mistyped field it needs is a parse_failed failure naming it.
result<parsed_delivery> parse_github(
    std::string_view event, std::string_view body, const std::vector<std::string>& workflows
);

/// Parses the generic webhook's body. `signed_at` is its verified `X-Runbookd-Timestamp`:
/// the status's time unless the body's `at` says otherwise.
result<parsed_delivery> parse_generic(std::string_view body, wall_time signed_at);

/// The six statuses runbookd speaks of.
bool known_status(std::string_view status) noexcept;

/// Where a repository's deploys go: `services.<id>.github` entries (`owner/repo` or
/// `owner/repo@environment`, compared without case), built once from the configuration.
class service_routes {
public:
    service_routes() = default;
    explicit service_routes(const std::map<std::string, service_info, std::less<>>& services);

    struct match {
        std::string ids;   ///< comma-separated PagerDuty service ids: the `services` label
        std::string name;  ///< the first service's name: the `service` label
    };
    /// The services `repository` deploys to in `environment`; empty when none is mapped.
    match find(std::string_view repository, std::string_view environment) const;

private:
    struct route {
        std::string repository;   ///< lower case
        std::string environment;  ///< lower case; empty: any
        std::string id;
        std::string name;
    };
    std::vector<route> routes_;
};

/// The `deploy.ci` signal of `d`: labels service, version, status, actor, environment,
/// commit, url, repository and services; value the seconds since the deploy began.
signal to_signal(const deploy_event& d, const service_routes& routes);

}  // namespace runbookd::intake::deploys
