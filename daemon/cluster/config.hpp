#pragma once
// `leader_election:` (docs/configuration.md#leader_election): two or more replicas elect one
// leader on a Kubernetes Lease; only the leader polls and posts.

#include <chrono>
#include <string>

namespace runbookd::yaml {
class section;
}

namespace runbookd::cluster {

struct config {
    bool enabled = false;
    /// The Lease's namespace; "" = the service account's (or the kubeconfig context's).
    std::string ns;
    std::string name = "runbookd";  ///< the Lease's name
    /// This replica's holderIdentity; "" = the environment's POD_NAME, else the host name.
    std::string identity;
    /// client-go's defaults (component-base RecommendedDefaultLeaderElectionConfiguration).
    std::chrono::milliseconds lease_duration = std::chrono::seconds{15};
    std::chrono::milliseconds renew_deadline = std::chrono::seconds{10};
    std::chrono::milliseconds retry_period = std::chrono::seconds{2};
    /// At a clean shutdown the leader empties holderIdentity (leaseDurationSeconds 1), so
    /// another replica takes over at its next retry instead of after lease_duration.
    bool release_on_shutdown = true;

    friend bool operator==(const config&, const config&) = default;
};

/// client-go's JitterFactor: renew_deadline must exceed retry_period × this, and an attempt
/// to acquire waits retry_period × (1 + this × a random share).
inline constexpr double jitter_factor = 1.2;

void read(yaml::section& s, config& out);

}  // namespace runbookd::cluster
