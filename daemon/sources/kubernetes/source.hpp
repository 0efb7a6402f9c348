#pragma once
// The Kubernetes source: lists, then watches Pods, Deployments, ReplicaSets, ConfigMaps,
// Warning events, Nodes and cert-manager Certificates, polls /version, and turns what
// changes into k8s.* signals, and cert.expiry for Certificates (api-facts §4.3).
// Lists are paginated; watches resume from the last resourceVersion (bookmarks included);
// an expired version relists; a dropped stream reconnects with backoff and jitter.
// Certificates and ReplicaSets are optional: without cert-manager's CRD (404) or the RBAC to
// read them (403) they are not watched, said once in the log, and the source stays healthy
// (rollouts are then dated from their Deployments).

#include "core/signal.hpp"
#include "core/source_health.hpp"
#include "log/log.hpp"
#include "loop/clock.hpp"
#include "net/http_client.hpp"
#include "net/retry.hpp"
#include "sources/kubernetes/credentials.hpp"
#include "sources/kubernetes/parse.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace runbookd::sources::kubernetes {

struct source_settings {
    std::string server;                   ///< https://host:port
    std::vector<std::string> namespaces;  ///< watched namespaces; "*" alone: all of them
    bool nodes = true;                    ///< watch Nodes (needs a ClusterRole)
    std::chrono::milliseconds version_interval = std::chrono::minutes{1};
    /// Watches ask the server to end them after a random time in [watch_timeout, 2x).
    std::chrono::milliseconds watch_timeout = std::chrono::minutes{5};
    std::chrono::milliseconds request_timeout = std::chrono::seconds{30};
    net::backoff backoff{std::chrono::seconds{1}, std::chrono::seconds{30}};
    std::size_t page_size = 500;
};

/// Runs on the loop executor; not thread-safe. Signals and status changes are handed to
/// the callbacks as they happen.
class source {
public:
    using signal_sink = std::function<void(signal)>;
    using status_sink = std::function<void(source_status)>;

    source(
        boost::asio::any_io_executor ex,
        net::http_client& http,
        credentials& creds,
        source_settings settings,
        signal_sink on_signal,
        status_sink on_status,
        log::logger log,
        prometheus::Registry& registry
    );
    ~source();
    source(const source&) = delete;
    source& operator=(const source&) = delete;

    /// Starts every list/watch loop and the version poller.
    void start();
    /// Stops them: pending waits end at once; streams end when the client shuts down.
    void stop();

    /// "namespace/name" of the Deployments whose pod template labels match `selector`, in
    /// namespaces matching `ns_pattern` ("*", "prefix*" or a name), sorted.
    std::vector<std::string> deployments_matching(std::string_view ns_pattern, const label_selector& selector)
        const;

    /// Called (on the loop) when a Deployment appears, goes, or changes its pod template
    /// labels: what deployments_matching() answers may have changed.
    void on_workloads_changed(std::function<void()> hook);

    /// Objects held in memory, all resources together (for tests and benchmarks).
    std::size_t objects() const;
    /// Whether every resource has been listed and is being watched.
    bool synced() const;

    /// A page-time refresh (sources::source::refresh): `done` is called once, on the loop,
    /// at once when synced() (the watches keep what is held current), else when every
    /// resource has been listed, or at `deadline`, or on stop().
    void refresh(loop::steady_clock::time_point deadline, std::function<void()> done);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace runbookd::sources::kubernetes
