#include "core/signal.hpp"

#include <algorithm>
#include <array>

namespace runbookd {
namespace {

using names = std::span<const std::string_view>;

// Label sets, one per kind. Sources fill every label of their kind (empty when unknown),
// so a rule's templates can name them; rules/ checks templates against these lists.
// Kubernetes: `replicaset` and `node` tie an effect (a pod's restart, its eviction) to the
// cause it may follow (the rollout of that ReplicaSet, a change of that node).
constexpr std::array<std::string_view, 7> rollout_labels{
    "namespace", "deployment", "revision", "image", "previous_image", "image_changed", "replicaset"};
constexpr std::array<std::string_view, 5> config_change_labels{
    "namespace", "deployment", "object", "object_kind", "changed_by"};
constexpr std::array<std::string_view, 9> restart_labels{
    "namespace", "deployment", "pod", "container", "reason", "exit_code", "message", "replicaset", "node"};
constexpr std::array<std::string_view, 8> waiting_labels{
    "namespace", "deployment", "pod", "container", "reason", "message", "replicaset", "node"};
constexpr std::array<std::string_view, 4> rollout_stuck_labels{
    "namespace", "deployment", "reason", "unavailable"};
constexpr std::array<std::string_view, 4> version_labels{"object", "from", "to", "node"};
constexpr std::array<std::string_view, 4> node_labels{"node", "change", "from", "to"};
constexpr std::array<std::string_view, 7> warning_labels{
    "namespace", "deployment", "object", "reason", "message", "replicaset", "node"};
constexpr std::array<std::string_view, 1> instance_labels{"instance"};
constexpr std::array<std::string_view, 2> db_connections_labels{"instance", "max"};
// db.* sessions: `services` names the services a session belongs to (services.*.postgres;
// for a lock wait, the waiter's and the chain root's), "" for unknown; `ddl` is blocking,
// online (CREATE INDEX CONCURRENTLY, ANALYZE...) or "" (sources/postgres/activity.hpp).
constexpr std::array<std::string_view, 9> long_query_labels{
    "pid", "query", "state", "user", "application", "is_ddl", "progress", "ddl", "services"};
constexpr std::array<std::string_view, 5> idle_tx_labels{"pid", "query", "user", "application", "services"};
constexpr std::array<std::string_view, 5> lock_wait_labels{
    "pid", "blocked_by", "query", "blocker_query", "services"};
constexpr std::array<std::string_view, 2> unreachable_labels{"instance", "error"};
// db.maintenance: `which` is scheduled (scheduledMaintenance), window (the weekly window) or
// running (the instance in MAINTENANCE); `deadline` is how late a reschedule may move it.
constexpr std::array<std::string_view, 7> maintenance_labels{
    "instance", "start", "end", "which", "update_track", "can_reschedule", "deadline"};
// pagerduty.maintenance: `services` the window's service ids (comma-separated), as for
// cert.expiry; `service_names` their names.
constexpr std::array<std::string_view, 6> pd_maintenance_labels{
    "services", "service_names", "description", "start", "end", "url"};
constexpr std::array<std::string_view, 2> unavailable_labels{"instance", "state"};
constexpr std::array<std::string_view, 5> gcp_labels{"product", "severity", "locations", "title", "url"};
// deploy.ci: `commit` is matched against k8s.rollout image tags (rank.cpp: one deploy, one
// story); `services` names the PagerDuty services a repository deploys (services.*.github).
constexpr std::array<std::string_view, 9> deploy_labels{
    "service", "version", "status", "actor", "environment", "commit", "url", "repository", "services"};
// `services` ties a certificate to the services it serves (comma-separated ids, "*" for all):
// `related: service` reads it (rank.cpp).
constexpr std::array<std::string_view, 11> cert_labels{
    "host",
    "port",
    "outcome",
    "error",
    "not_after",
    "which",
    "cert_subject",
    "issuer",
    "sans",
    "services",
    "expires_soon"};
// probes: `outcome` (wrong_status, timed_out, reset, refused, tls_error, dns_failure...), `tls`
// (for tls_error: the certs source's name of it), `answered_by` (google_frontend: the load
// balancer's own error page; backend), `since` (the run's first failed check), `canvas` (the
// ops canvas: sign-up, sign-in, editor, other), `gfe_hosts` (hosts answering with Google's
// error page right now); `services` as for cert.expiry.
constexpr std::array<std::string_view, 13> probe_labels{
    "target",
    "url",
    "status",
    "error",
    "outcome",
    "tls",
    "answered_by",
    "since",
    "consecutive",
    "flapping",
    "gfe_hosts",
    "canvas",
    "services"};
constexpr std::array<std::string_view, 7> probe_recovered_labels{
    "target", "url", "status", "since", "flapping", "canvas", "services"};
// `owner`: the known user an IP or ASN belongs to ("" for none); `query`: the named PromQL query.
constexpr std::array<std::string_view, 5> talker_labels{"key", "key_type", "share", "owner", "query"};
constexpr std::array<std::string_view, 5> spike_labels{
    "target", "baseline", "counts", "compared_to", "query"};
constexpr std::array<std::string_view, 6> slow_handler_labels{
    "handler", "measure", "current", "baseline", "compared_to", "query"};

constexpr std::array catalogue{
    signal_kind{"k8s.rollout", "kubernetes", rollout_labels, "", "a Deployment's pod template changed"},
    signal_kind{
        "k8s.config_change",
        "kubernetes",
        config_change_labels,
        "",
        "a ConfigMap's data, or a Deployment's spec without an image change, changed"},
    signal_kind{"k8s.restart", "kubernetes", restart_labels, "count", "a container restarted"},
    signal_kind{
        "k8s.waiting",
        "kubernetes",
        waiting_labels,
        "",
        "a container is stuck waiting (CrashLoopBackOff...)"},
    signal_kind{"k8s.rollout_stuck", "kubernetes", rollout_stuck_labels, "", "a rollout is not progressing"},
    signal_kind{
        "k8s.version_change",
        "kubernetes",
        version_labels,
        "",
        "the control plane or a node changed version"},
    signal_kind{
        "k8s.node",
        "kubernetes",
        node_labels,
        "",
        "a node was created, deleted, cordoned, upgraded or became not ready"},
    signal_kind{
        "k8s.warning",
        "kubernetes",
        warning_labels,
        "count",
        "a Warning event (FailedScheduling, Unhealthy...)"},
    signal_kind{"db.cpu", "cloudsql", instance_labels, "ratio", "Cloud SQL CPU utilization"},
    signal_kind{"db.memory", "cloudsql", instance_labels, "ratio", "Cloud SQL memory utilization"},
    signal_kind{"db.connections", "postgres", db_connections_labels, "count", "connections in use"},
    signal_kind{
        "db.long_query", "postgres", long_query_labels, "seconds", "a query running past the threshold"},
    signal_kind{
        "db.idle_in_transaction", "postgres", idle_tx_labels, "seconds", "a session idle in a transaction"},
    signal_kind{
        "db.lock_wait", "postgres", lock_wait_labels, "seconds", "a session waiting on another's lock"},
    signal_kind{
        "db.unreachable",
        "postgres",
        unreachable_labels,
        "",
        "the database refused or dropped the monitor",
        true},
    signal_kind{
        "db.maintenance",
        "cloudsql",
        maintenance_labels,
        "",
        "Cloud SQL maintenance scheduled or running, or the instance's maintenance window"},
    signal_kind{
        "db.unavailable", "cloudsql", unavailable_labels, "", "the Cloud SQL instance is not serving"},
    signal_kind{"gcp.incident", "gcp_status", gcp_labels, "", "a Google Cloud status incident"},
    signal_kind{
        "pagerduty.maintenance",
        "pagerduty_api",
        pd_maintenance_labels,
        "",
        "a PagerDuty maintenance window, ongoing or upcoming"},
    signal_kind{
        "deploy.ci",
        "deploys",
        deploy_labels,
        "seconds",
        "a CI deploy's status; the value is how long the deploy had been running"},
    signal_kind{
        "cert.expiry",
        "certs",
        cert_labels,
        "seconds",
        "seconds until a TLS endpoint's certificate chain expires"},
    signal_kind{"probe.failure", "probes", probe_labels, "seconds", "an HTTP probe failed"},
    signal_kind{
        "probe.recovered",
        "probes",
        probe_recovered_labels,
        "seconds",
        "an HTTP probe that was failing passed again"},
    signal_kind{
        "traffic.top_talker", "promql", talker_labels, "requests_per_second", "one key dominates traffic"},
    signal_kind{"traffic.spike", "promql", spike_labels, "ratio", "traffic far above its baseline"},
    signal_kind{
        "traffic.slow_handler",
        "promql",
        slow_handler_labels,
        "ratio",
        "a handler's latency or duration share far above its baseline"},
};

constexpr std::array<std::string_view, 8> builtins{
    "subject", "kind", "source", "value", "at", "ago", "service", "count"};

}  // namespace

bool signal::set_kind(std::string_view k) {
    kind = std::string{k};
    info = find_signal_kind(kind);
    values.assign(info == nullptr ? 0 : info->labels.size(), std::string{});
    return info != nullptr;
}

std::size_t label_index(const signal_kind& kind, std::string_view label) noexcept {
    const auto it = std::find(kind.labels.begin(), kind.labels.end(), label);
    return static_cast<std::size_t>(it - kind.labels.begin());
}

const std::string* signal::find(std::string_view name) const noexcept {
    const signal_kind* k = info != nullptr ? info : find_signal_kind(kind);
    return k == nullptr ? nullptr : label_at(label_index(*k, name));
}

bool signal::set(std::string_view name, std::string text) {
    if (info == nullptr || info->name != kind) {
        set_kind(std::string{kind});  // `kind` was assigned directly: take its entry now
    }
    if (info == nullptr) {
        return false;
    }
    const auto i = label_index(*info, name);
    if (i == values.size()) {
        return false;
    }
    values[i] = std::move(text);
    return true;
}

std::span<const signal_kind> signal_catalogue() noexcept {
    return catalogue;
}

const signal_kind* find_signal_kind(std::string_view kind) noexcept {
    const auto it = std::find_if(catalogue.begin(), catalogue.end(), [&](const signal_kind& k) {
        return k.name == kind;
    });
    return it == catalogue.end() ? nullptr : &*it;
}

std::span<const std::string_view> builtin_placeholders() noexcept {
    return builtins;
}

}  // namespace runbookd
