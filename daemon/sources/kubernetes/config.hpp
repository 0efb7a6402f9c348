#pragma once
// `kubernetes:` (docs/configuration.md#kubernetes): the cluster source.

#include <chrono>
#include <string>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::kubernetes {

struct config {
    enum class mode { automatic, on, off };
    /// automatic: in-cluster when KUBERNETES_SERVICE_HOST is set, else the kubeconfig if
    /// one is named, else no source. on: one of them must work (a start-up error if not).
    mode enabled = mode::automatic;
    std::string kubeconfig;  ///< out-of-cluster access; "" = in-cluster only
    std::string context;     ///< the kubeconfig context; "" = its current-context
    /// Watched namespaces; empty: those named in services.*.kubernetes, else the service
    /// account's (or the context's) namespace. ["*"]: every namespace.
    std::vector<std::string> namespaces;
    bool nodes = true;  ///< watch Nodes for upgrades (needs the ClusterRole in deploy/)
    std::chrono::milliseconds version_interval = std::chrono::minutes{1};
    std::chrono::milliseconds watch_timeout = std::chrono::minutes{5};
    std::chrono::milliseconds request_timeout = std::chrono::seconds{30};
    std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";

    friend bool operator==(const config&, const config&) = default;
};

void read(yaml::section& s, config& out);

}  // namespace runbookd::sources::kubernetes
