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
    std::string replicaset;  ///< owning ReplicaSet ("<deployment>-<pod-template-hash>"), or ""
    std::string node;        ///< spec.nodeName: where it runs ("" until scheduled)
    std::vector<container_state> containers;
    /// The ContainersReady condition's lastTransitionTime while it is False: since when a
    /// container is not ready (the date of a waiting container that never ran).
    std::optional<wall_time> not_ready_since;
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
    std::string progressing_rs;      ///< the ReplicaSet the Progressing message names, or ""
    std::optional<wall_time> progressing_updated;  ///< the Progressing condition's lastUpdateTime
    std::optional<wall_time> progressing_since;    ///< ...and its lastTransitionTime
    /// The newest managedFields entry written to the object itself (a status or scale
    /// subresource write is the controller's or an autoscaler's, not a spec change): who
    /// last changed the spec or metadata, and when.
    std::string changed_by;
    std::optional<wall_time> changed_at;
    /// spec.template.metadata.labels: its pods' labels, which service selectors match.
    std::vector<std::pair<std::string, std::string>> pod_labels;
    /// The ConfigMaps its pod template uses (envFrom, env valueFrom, volumes and projected
    /// volumes of every container and init container), sorted, once each.
    std::vector<std::string> configmaps;
    /// Kept by the source from one state to the next, not read: the template last told as
    /// a rollout (or found when first seen) and its images.
    std::string told_template;
    std::vector<container_image> told_images;
};

/// An apps/v1 ReplicaSet, as far as dating a rollout goes.
struct replicaset_state {
    std::string ns;
    std::string name;
    std::string deployment;            ///< the owning Deployment (ownerReferences kind Deployment), or ""
    std::string revision;              ///< deployment.kubernetes.io/revision
    std::optional<wall_time> created;  ///< metadata.creationTimestamp
    /// deployment.kubernetes.io/revision-history is set: an older ReplicaSet a rollback made
    /// current again, so its creation is not when it was rolled out.
    bool reused = false;
    std::vector<container_image> images;
};

struct configmap_state {
    std::string ns;
    std::string name;
    std::string data_hash;  ///< SHA-256 of data and binaryData
    std::string changed_by;
    std::optional<wall_time> changed_at;  ///< the newest managedFields time
    std::optional<wall_time> created;     ///< metadata.creationTimestamp
};

struct node_state {
    std::string name;
    std::string pool;                      ///< the cloud.google.com/gke-nodepool label, or ""
    std::string kubelet_version;           ///< status.nodeInfo.kubeletVersion
    bool unschedulable = false;            ///< spec.unschedulable: cordoned
    std::optional<wall_time> created;      ///< metadata.creationTimestamp
    std::optional<wall_time> deleted_at;   ///< metadata.deletionTimestamp
    std::optional<wall_time> cordoned_at;  ///< the node.kubernetes.io/unschedulable taint's timeAdded
    std::string ready;                     ///< the Ready condition's status ("True", "False", "Unknown", "")
    std::optional<wall_time> ready_since;  ///< ...and its lastTransitionTime
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
    std::string host;               ///< source.host: the node of a kubelet's event, or ""
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

/// The states read: pod_state, deployment_state, replicaset_state, configmap_state,
/// node_state, event_state, certificate_state.
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
/// `now`); nullopt for Normal events. `pod`: the Pod it is about, when held, for its
/// deployment, replicaset and node (else the node is the event's source.host).
std::optional<signal> warning_signal(const event_state& e, const pod_state* pod, wall_time now);

/// Restarts (restartCount went up) and newly waiting containers between two states of a
/// pod. `prev` absent: the pod is new to us; its current trouble (waiting) is told, and a
/// container that restarted before is told as one k8s.restart at its last termination's
/// finishedAt (value: its restartCount), only when the world dates it: a daemon started
/// after the restarts still sees the last one at its time, and seeing the same pod again
/// tells the same fact. A restart is dated at its termination's finishedAt; a waiting
/// container at its last termination, else since its containers are not ready, else when seen.
std::vector<signal> diff_pod(const pod_state* prev, const pod_state& next, wall_time now);

/// A configuration change (the spec changed without a new image), or a rollout that is
/// stuck, between two states of a Deployment. Rollouts are told by rollout_signal().
/// The change is dated at the newest managedFields write to the object, the stuck rollout
/// at its Progressing condition's lastTransitionTime; else when seen.
std::vector<signal> diff_deployment(
    const deployment_state* prev, const deployment_state& next, wall_time now
);

/// Whether `d` runs a pod template other than the one last told (told_template) and its
/// controller has acted on it (observedGeneration caught up): a rollout to tell.
bool rollout_due(const deployment_state& d);

/// The k8s.rollout of `d`'s current template, from `told_images` (the images before).
/// `rs`: its new ReplicaSet (owned by `d`, of its revision), nullptr when unknown; its name
/// is the `replicaset` label, else the one the Progressing condition names. Dated at the
/// ReplicaSet's creation when it is new (not one a rollback brought back), else the
/// Progressing condition's lastUpdateTime while it tells of the new ReplicaSet
/// (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated), else the newest write to
/// the Deployment (changed_at), else when seen (`seen` set). Never after `now`.
signal rollout_signal(const deployment_state& d, const replicaset_state* rs, wall_time now);

/// A node's changes between two states: a kubelet version change (k8s.version_change and
/// k8s.node "version", when seen), a cordon (k8s.version_change to "cordoned" and k8s.node
/// "cordoned", at the unschedulable taint's timeAdded), and Ready turning False or Unknown
/// (k8s.node "not_ready", at the condition's lastTransitionTime).
std::vector<signal> diff_node(const node_state& prev, const node_state& next, wall_time now);

/// The kubelet version most of `n`'s pool runs (nodes with its pool label, else those
/// without one), not counting `n` itself, when `n` runs another and is newer than every node
/// on it: `n` replaced one of them in an upgrade (GKE recreates a node's VM on the new
/// version, under the same name). "" otherwise: its own version is more common there, no
/// other node, or `n` has no creationTimestamp.
std::string pool_version(const node_state& n, const std::vector<const node_state*>& nodes);

/// A node new to us: k8s.node "created" at its creationTimestamp; when `usual_version` is
/// known and differs from its kubelet's, a k8s.version_change from it (a node replaced by an
/// upgrade), dated at its creation: when it began to run the new version. `listed`: found
/// by a list, so only what the world dates is told (its creation, such a version change, a
/// cordon or a NotReady it already has), never a time it was seen. (The signal log drops
/// what is older than its retention: a node created long ago on an odd version says nothing.)
std::vector<signal> node_added(
    const node_state& next, std::string_view usual_version, bool listed, wall_time now
);

/// A node that went away: k8s.node "deleted", at its deletionTimestamp, else when seen.
signal node_deleted(const node_state& last, wall_time now);

/// The control plane's version changed (`/version`): the world gives no time (`seen`).
signal version_change(std::string_view from, std::string_view to, wall_time now);

/// A configuration change when the data changed: one per Deployment of `users` (those
/// whose pod template uses the ConfigMap, `deployment` set), or one with no deployment
/// when none does. Dated at the newest managedFields entry, else when seen.
std::vector<signal> diff_configmap(
    const configmap_state* prev,
    const configmap_state& next,
    const std::vector<std::string>& users,
    wall_time now
);

/// A ConfigMap found by the first list that was written after its creation (its newest
/// managedFields time is later): its last edit, told as diff_configmap tells a change, so
/// that a daemon started after the edit still sees it at its time. Nothing otherwise.
std::vector<signal> configmap_listed(
    const configmap_state& c, const std::vector<std::string>& users, wall_time now
);

/// A cert.expiry signal (source "kubernetes", subject "NAMESPACE/NAME") when a Certificate is
/// new to us (`prev` absent) or its notAfter or Ready condition (status or reason) changed;
/// nullopt otherwise. See certificate_signal for what it carries.
std::optional<signal> diff_certificate(
    const certificate_state* prev, const certificate_state& next, wall_time now
);

/// The cert.expiry signal of a Certificate seen at `now` (a watch event or a list):
/// - `at`: the Ready condition's lastTransitionTime, else metadata.creationTimestamp, else
///   `now` (`seen` set); never after `now`. (notAfter is when it runs out, not when
///   anything happened.)
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
