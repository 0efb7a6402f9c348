#pragma once
// Kubernetes API JSON -> compact object states, and state changes -> signals. Pure: no
// sockets, no clock (api-facts §4; https://kubernetes.io/docs/reference/using-api/api-concepts/).
// The watcher keeps one state per object and calls the diff functions on every event.
// Objects are read with simdjson: a watch line costs a few microseconds, so a cluster's
// event rate is cheap to follow (docs/benchmarks.md).

#include "core/error.hpp"
#include "core/selector.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd::sources::kubernetes {

/// What a watch stream line carries (`{"type": ..., "object": {...}}`).
enum class event_type { added, modified, deleted, bookmark, error };

/// "ADDED", "MODIFIED"... as on the wire.
std::string_view to_string(event_type t) noexcept;

/// One container of a pod, as far as restarts and waiting go.
struct container_state {
    std::string name;
    long long restarts = 0;
    std::string waiting_reason;  ///< "" unless state.waiting
    std::string waiting_message;
    std::string last_reason;  ///< lastState.terminated.reason ("OOMKilled", "Error")
    std::optional<long long> last_exit_code;
    std::string last_message;
    std::optional<wall_time> last_finished_at;
};

struct pod_state {
    std::string ns;
    std::string name;
    std::string deployment;  ///< owning Deployment (through its ReplicaSet), or ""
    std::vector<container_state> containers;
};

struct container_image {
    std::string name;
    std::string image;
};

struct deployment_state {
    std::string ns;
    std::string name;
    long long generation = 0;
    long long observed_generation = 0;
    std::string revision;  ///< deployment.kubernetes.io/revision
    std::vector<container_image> images;
    std::string template_hash;  ///< SHA-256 of spec.template, to see non-image changes
    std::string spec_hash;      ///< SHA-256 of spec without replicas (scaling is no change)
    long long replicas = 1;
    long long updated_replicas = 0;
    long long total_replicas = 0;
    long long available_replicas = 0;
    long long unavailable_replicas = 0;
    std::string progressing_reason;  ///< "ProgressDeadlineExceeded", "NewReplicaSetAvailable"...
    std::string changed_by;          ///< the newest managedFields manager
    /// spec.template.metadata.labels: its pods' labels, which service selectors match.
    std::vector<std::pair<std::string, std::string>> pod_labels;
};

struct configmap_state {
    std::string ns;
    std::string name;
    std::string data_hash;  ///< SHA-256 of data and binaryData
    std::string changed_by;
    std::optional<wall_time> changed_at;  ///< the newest managedFields time
};

struct node_state {
    std::string name;
    std::string kubelet_version;  ///< status.nodeInfo.kubeletVersion
    bool unschedulable = false;   ///< spec.unschedulable: cordoned
};

/// A core/v1 Event, as far as a Warning goes.
struct event_state {
    std::string ns;
    std::string name;
    bool warning = false;  ///< type Warning (Normal events are ignored)
    std::string reason;
    std::string message;
    std::string involved_kind;
    std::string involved_name;
    std::string involved_ns;
    long long count = 1;            ///< count or series.count
    std::optional<wall_time> last;  ///< lastTimestamp, series.lastObservedTime or eventTime
};

/// A cert-manager Certificate (cert-manager.io/v1; https://cert-manager.io/docs/reference/api-docs/),
/// as far as its expiry and readiness go. cert-manager writes the times as RFC 3339
/// (metav1.Time, whole seconds, UTC).
struct certificate_state {
    std::string ns;
    std::string name;
    std::string secret_name;                ///< spec.secretName: where the key pair is stored
    std::vector<std::string> dns_names;     ///< spec.dnsNames, in order
    std::string common_name;                ///< spec.commonName (deprecated by cert-manager, still used)
    std::string issuer;                     ///< spec.issuerRef as "Kind/name" ("ClusterIssuer/letsencrypt")
    std::optional<wall_time> created;       ///< metadata.creationTimestamp
    std::optional<wall_time> not_after;     ///< status.notAfter; absent until issued, or when unreadable
    std::string bad_not_after;              ///< status.notAfter as written when it is not RFC 3339, else ""
    std::optional<wall_time> renewal_time;  ///< status.renewalTime: when cert-manager will renew
    /// The Ready condition (status.conditions[type=Ready]): "True", "False", "Unknown", or ""
    /// when there is none (not yet reconciled, or no status at all).
    std::string ready;
    std::string ready_reason;              ///< "Ready", "Expired", "DoesNotExist", "Issuing", ...
    std::string ready_message;             ///< on one line, cut like other Kubernetes messages
    std::optional<wall_time> ready_since;  ///< the condition's lastTransitionTime
};

/// One watch stream line (`{"type": ..., "object": {...}}`), its object parsed once.
template <class State>
struct object_event {
    event_type type = event_type::added;
    std::string resource_version;  ///< of the object (bookmarks carry only this)
    std::optional<State> object;   ///< added, modified, deleted
    bool expired = false;          ///< error: the resource version is too old (410, Expired/Gone)
    std::string error;             ///< error: the Status message
};

/// One list page: `metadata.{resourceVersion, continue}` and the items.
template <class State>
struct object_page {
    std::string resource_version;
    std::string continue_token;
    std::vector<State> items;
    std::size_t skipped = 0;  ///< items without a name (malformed), left out
};

/// The states read: pod_state, deployment_state, configmap_state, node_state, event_state,
/// certificate_state.
template <class State>
result<State> parse_object(std::string_view json);
template <class State>
result<object_event<State>> parse_event(std::string_view line);
template <class State>
result<object_page<State>> parse_page(std::string_view body);

/// The `message` of a Kubernetes Status body (an error answer), on one line; "" if none.
std::string status_message(std::string_view body);

/// `/version`'s gitVersion ("v1.29.4-gke.1043002").
result<std::string> parse_version(std::string_view json);

/// A Warning event as a k8s.warning signal, dated when it was last seen (never after
/// `now`); nullopt for Normal events.
std::optional<signal> warning_signal(const event_state& e, wall_time now);

/// Restarts (restartCount went up) and newly waiting containers between two states of a
/// pod. `prev` absent: the pod is new to us; only its current trouble (waiting) is told.
std::vector<signal> diff_pod(const pod_state* prev, const pod_state& next, wall_time now);

/// A rollout (the pod template changed), a configuration change (the spec changed
/// without one), or a rollout that is stuck, between two states of a Deployment.
std::vector<signal> diff_deployment(
    const deployment_state* prev, const deployment_state& next, wall_time now
);

/// A kubelet version change (an upgrade) or a cordon between two states of a node.
std::vector<signal> diff_node(const node_state& prev, const node_state& next, wall_time now);

/// The control plane's version changed (`/version`).
signal version_change(std::string_view from, std::string_view to, wall_time now);

/// A configuration change when the data changed.
std::vector<signal> diff_configmap(const configmap_state* prev, const configmap_state& next, wall_time now);

/// A cert.expiry signal (source "kubernetes", subject "NAMESPACE/NAME") when a Certificate is
/// new to us (`prev` absent) or its notAfter or Ready condition (status or reason) changed;
/// nullopt otherwise. See certificate_signal for what it carries.
std::optional<signal> diff_certificate(
    const certificate_state* prev, const certificate_state& next, wall_time now
);

/// The cert.expiry signal of a Certificate seen at `now` (a watch event or a list):
/// - `at`: the Ready condition's lastTransitionTime, else metadata.creationTimestamp, else
///   `now`; never after `now`. (notAfter is when it runs out, not when anything happened.)
/// - value: seconds from `now` until status.notAfter, negative once it has passed; absent
///   while notAfter is unset or unreadable.
/// - outcome: "expired" when notAfter is before `now`, else "ok" when Ready is True, else
///   "not_ready"; `error` says why for any outcome but "ok" (the Ready reason and message).
/// - host: the first dnsName (else the commonName); which "leaf"; cert_subject and the
///   subject "NAMESPACE/NAME"; sans the dnsNames joined by ","; issuer the issuerRef;
///   port and services ""; expires_soon "false".
signal certificate_signal(const certificate_state& c, wall_time now);

/// Whether a rollout is complete by kubectl's rule (api-facts §4.5); nullopt when it is
/// done, else why not ("ProgressDeadlineExceeded", "waiting for 2 of 3 updated replicas").
std::optional<std::string> rollout_incomplete(const deployment_state& d);

}  // namespace runbookd::sources::kubernetes
