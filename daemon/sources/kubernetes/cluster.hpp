#pragma once
// The Kubernetes source as the daemon runs it: the list/watch loops with their client and
// credentials, made from `kubernetes:` and the cluster it finds, plus the one capability
// the daemon uses beyond a source's: resolving services' label selectors to Deployments.

#include "core/engine.hpp"
#include "sources/kubernetes/config.hpp"
#include "sources/source.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace runbookd::sources::kubernetes {

using service_map = std::map<std::string, service_info, std::less<>>;

/// The namespaces to watch: the configured ones, else those named in services.*.kubernetes
/// ("*" when one is a pattern), else `fallback` (the service account's namespace).
std::vector<std::string> watched_namespaces(
    const config& cfg, const service_map& services, const std::string& fallback
);

class cluster : public sources::source {
public:
    /// Each `namespace/selector` entry of services.*.kubernetes followed by the Deployments
    /// it picks now ("darklang/app=bwd" then "darklang/bwdserver-deployment"), so that
    /// `related: service` matches them. The selector entry stays: it matches no name itself.
    virtual void resolve_selectors(service_map& services) const = 0;
    /// Called (on the loop) when what resolve_selectors() answers may have changed.
    virtual void on_workloads_changed(std::function<void()> hook) = 0;
    /// Whether `cfg` and `services` would watch other namespaces than the running source
    /// (a change that waits for a restart).
    virtual bool namespaces_differ(const config& cfg, const service_map& services) const = 0;
};

/// nullptr when `cfg` leaves the source off, or when it is automatic and there is no
/// cluster in sight (a pod without a token is logged). Throws std::runtime_error on a
/// start-up failure (an unreadable kubeconfig, no cluster with `enabled: true`).
std::unique_ptr<cluster> make(const config& cfg, const service_map& services, context& cx);

}  // namespace runbookd::sources::kubernetes
