#pragma once
// Kubernetes API JSON -> compact object states, and state changes -> signals. Pure: no
// sockets, no clock (api-facts §4; https://kubernetes.io/docs/reference/using-api/api-concepts/).
// The watcher keeps one state per object and calls the diff functions on every event.

#include "core/error.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::sources::kubernetes {

/// What a watch stream line carries (`{"type": ..., "object": {...}}`).
enum class event_type { added, modified, deleted, bookmark, error };

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
};

struct configmap_state {
    std::string ns;
    std::string name;
    std::string data_hash;  ///< SHA-256 of data and binaryData
    std::string changed_by;
    std::optional<wall_time> changed_at;  ///< the newest managedFields time
};

/// One parsed watch line.
struct watch_event {
    event_type type = event_type::added;
    std::string resource_version;  ///< of the object (bookmarks: only this)
    std::string object_json;       ///< the object, re-serialised, for the kind's parser
    bool expired = false;          ///< error: the resource version is too old (410, Expired/Gone)
    std::string error;             ///< error: the Status message
};

/// A list page: `metadata.{resourceVersion, continue}` and the items.
struct list_page {
    std::string resource_version;
    std::string continue_token;
    std::vector<std::string> items;  ///< each item's JSON
};

result<watch_event> parse_watch_line(std::string_view line);
result<list_page> parse_list(std::string_view body);

result<pod_state> parse_pod(std::string_view json);
result<deployment_state> parse_deployment(std::string_view json);
result<configmap_state> parse_configmap(std::string_view json);
/// `/version`'s gitVersion ("v1.29.4-gke.1043002").
result<std::string> parse_version(std::string_view json);

/// A core/v1 Warning event as a k8s.warning signal; nullopt for Normal events.
result<std::optional<signal>> parse_warning_event(std::string_view json, wall_time now);

/// Restarts (restartCount went up) and newly waiting containers between two states of a
/// pod. `prev` absent: the pod is new to us; only its current trouble (waiting) is told.
std::vector<signal> diff_pod(const pod_state* prev, const pod_state& next, wall_time now);

/// A rollout (the pod template changed), a configuration change (the spec changed
/// without one), or a rollout that is stuck, between two states of a Deployment.
std::vector<signal> diff_deployment(
    const deployment_state* prev, const deployment_state& next, wall_time now
);

/// A configuration change when the data changed.
std::vector<signal> diff_configmap(const configmap_state* prev, const configmap_state& next, wall_time now);

/// Whether a rollout is complete by kubectl's rule (api-facts §4.5); nullopt when it is
/// done, else why not ("ProgressDeadlineExceeded", "waiting for 2 of 3 updated replicas").
std::optional<std::string> rollout_incomplete(const deployment_state& d);

}  // namespace runbookd::sources::kubernetes
