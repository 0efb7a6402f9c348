#pragma once
// Leader election on a Kubernetes coordination.k8s.io/v1 Lease, with client-go's
// LeaderElector semantics (api-facts §4.9, client-go tools/leaderelection):
// - acquire when the Lease is absent (POST), has no holder, or has expired by this replica's
//   own clock: lease_duration after it last SAW the record change, never by comparing
//   renewTime with the local clock (robust to clock skew between nodes);
// - write with a PUT of the whole object carrying the resourceVersion last read: 409 Conflict
//   means another replica wrote first, and the attempt fails;
// - a change of holder increments leaseTransitions; a renewal keeps it and acquireTime;
// - the leader renews every retry_period (first a PUT of its cached copy, then GET + PUT);
// - a leader steps down once renew_deadline has passed since it SENT its last successful
//   renewal. Any other replica saw that renewal after it was sent and waits lease_duration
//   from then, so with renew_deadline < lease_duration the leader has stopped before the
//   lease can have expired anywhere else (margin: lease_duration - renew_deadline, less any
//   difference in clock rates). client-go allows up to retry_period + renew_deadline here;
//   measuring from the send is the stricter reading.
// Unlike client-go, a replica that finds its own name on a Lease it does not lead (a restart
// with the same pod name, or after stepping down) takes it as a new term, leaseTransitions+1,
// so that the fencing token grows with every term.

#include "cluster/config.hpp"
#include "core/time.hpp"
#include "log/log.hpp"
#include "net/http_client.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace runbookd::sources::kubernetes {
class credentials;
struct config;
}  // namespace runbookd::sources::kubernetes

namespace runbookd::cluster {

/// "2026-12-03T17:46:04.123000Z": a Kubernetes MicroTime (RFC 3339, six fractional digits).
std::string format_micro_time(wall_time t);

/// What the elector needs to know; `config` plus what the daemon found.
struct lease_settings {
    std::string server;  ///< https://host:port of the API server, no trailing slash
    std::string ns;      ///< the Lease's namespace
    std::string name = "runbookd";
    std::string identity;  ///< this replica's holderIdentity; never empty
    std::chrono::milliseconds lease_duration = std::chrono::seconds{15};
    std::chrono::milliseconds renew_deadline = std::chrono::seconds{10};
    std::chrono::milliseconds retry_period = std::chrono::seconds{2};
    bool release_on_stop = true;
    /// An attempt to acquire waits retry_period × (1 + jitter × a random share in [0, 1));
    /// 0: exactly retry_period (tests). A leader renews every retry_period, without jitter.
    double jitter = jitter_factor;
};

/// The daemon's side of the election: what it starts and asks.
struct leader_callbacks {
    /// This replica now leads. `fencing_token` is the Lease's leaseTransitions for this
    /// term: it grows with every change of holder, so a store can refuse a deposed
    /// leader's late writes (a write with a smaller token than the newest seen).
    std::function<void(std::uint64_t fencing_token)> on_started_leading;
    /// This replica no longer leads (renew deadline passed, another holder seen, or stop):
    /// stop polling and posting now. Called on the loop, before any other replica can
    /// have taken over.
    std::function<void()> on_stopped_leading;
    /// Optional: the Lease's holder as last observed changed ("" = none).
    std::function<void(const std::string& holder)> on_new_leader;
};

/// One replica's elector. Runs on the loop executor; not thread-safe. Callbacks run on
/// the loop. The HTTP client and credentials must outlive it and the io_context's work.
class lease_elector {
public:
    lease_elector(
        boost::asio::any_io_executor ex,
        net::http_client& http,
        sources::kubernetes::credentials& creds,
        lease_settings settings,
        leader_callbacks callbacks,
        log::logger log,
        prometheus::Registry& registry
    );
    ~lease_elector();
    lease_elector(const lease_elector&) = delete;
    lease_elector& operator=(const lease_elector&) = delete;

    /// Starts trying to acquire (at once, then every retry_period with jitter).
    void start();
    /// Stops: a leader steps down at once (on_stopped_leading), then, with release_on_stop
    /// and the Lease still naming this replica, empties its holderIdentity. `done` is called
    /// on the loop once the last request has ended (at most one request timeout).
    void stop(std::function<void()> done = {});

    /// Whether this replica leads now (between on_started_leading and on_stopped_leading).
    bool is_leader() const noexcept;
    /// leaseTransitions of this replica's current (or last) term; 0 before any.
    std::uint64_t fencing_token() const noexcept;
    /// The holderIdentity last observed ("" = none, or not read yet).
    std::string leader() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

/// The elector as the daemon runs it, with its own HTTPS client and credentials. Runs on
/// the loop executor it was made with; keep it alive until stop()'s `done` has been called
/// (or the io_context has stopped).
class elector {
public:
    virtual ~elector() = default;
    /// As lease_elector::start().
    virtual void start() = 0;
    /// As lease_elector::stop(); then shuts its HTTPS client and credentials down, and
    /// calls `done`.
    virtual void stop(std::function<void()> done = {}) = 0;
    /// As lease_elector::is_leader().
    virtual bool is_leader() const noexcept = 0;
    /// As lease_elector::fencing_token().
    virtual std::uint64_t fencing_token() const noexcept = 0;
    /// "lease ops/runbookd as runbookd-0 (in-cluster)", for the start-up log.
    virtual std::string describe() const = 0;
};

/// nullptr when `cfg.enabled` is false. Otherwise reaches the cluster the way the
/// kubernetes source does (`k8s`: in-cluster, else its kubeconfig and context), whether or
/// not that source is on. Throws std::runtime_error when there is no cluster or its access
/// cannot be read (a start-up error). `redact` learns a fixed token.
std::unique_ptr<elector> make(
    const config& cfg,
    const sources::kubernetes::config& k8s,
    boost::asio::any_io_executor ex,
    leader_callbacks callbacks,
    log::logger log,
    prometheus::Registry& registry,
    const std::function<void(std::string)>& redact
);

}  // namespace runbookd::cluster
