#include "sources/kubernetes/parse.hpp"

#include "crypto/digest.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <simdjson.h>

namespace runbookd::sources::kubernetes {
namespace {

/// Waiting reasons that mean a container cannot run (api-facts §4.4); ContainerCreating and
/// PodInitializing are normal steps and are not told.
constexpr std::array<std::string_view, 11> trouble_reasons{
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "ImageInspectError",
    "RegistryUnavailable",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError"};

/// Kubernetes messages can be long (a stack trace in a termination message): keep a line.
constexpr std::size_t max_message = 300;

/// A Certificate may list many names (a SAN certificate for every tenant); a signal keeps
/// the first ones. A DNS name is at most 253 characters (RFC 1035), a wildcard one more.
constexpr std::size_t max_dns_names = 100;
constexpr std::size_t max_dns_name = 256;

failure bad(std::string what) {
    return make_failure(errc::parse_failed, "kubernetes: " + std::move(what));
}

using element = simdjson::dom::element;

/// Watch lines are small: one parser per thread keeps its buffers. List pages are large and
/// get a parser of their own, freed after the page, so a list's peak does not stay.
simdjson::dom::parser& line_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

std::optional<element> parse_root(simdjson::dom::parser& parser, std::string_view text) {
    element doc;
    if (parser.parse(text.data(), text.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
        return std::nullopt;
    }
    return doc;
}

/// The member `key` when `j` is an object that has it, else a null element.
std::optional<element> member(element j, std::string_view key) {
    element out;
    if (!j.is_object() || j.at_key(key).get(out) != simdjson::SUCCESS || out.is_null()) {
        return std::nullopt;
    }
    return out;
}

std::string_view view(element j, std::string_view key) {
    const auto m = member(j, key);
    std::string_view out;
    return m && m->get_string().get(out) == simdjson::SUCCESS ? out : std::string_view{};
}

std::string str(element j, std::string_view key) {
    return std::string{view(j, key)};
}

std::optional<long long> opt_num(element j, std::string_view key) {
    const auto m = member(j, key);
    std::int64_t out = 0;
    if (m && m->get_int64().get(out) == simdjson::SUCCESS) {
        return static_cast<long long>(out);
    }
    return std::nullopt;
}

long long num(element j, std::string_view key, long long fallback = 0) {
    return opt_num(j, key).value_or(fallback);
}

/// The child object `key`, or nothing (lookups on nothing find nothing).
std::optional<element> child(std::optional<element> j, std::string_view key) {
    if (!j) {
        return std::nullopt;
    }
    auto m = member(*j, key);
    return m && m->is_object() ? m : std::nullopt;
}

std::string_view view(std::optional<element> j, std::string_view key) {
    return j ? view(*j, key) : std::string_view{};
}
std::string str(std::optional<element> j, std::string_view key) {
    return std::string{view(j, key)};
}
long long num(std::optional<element> j, std::string_view key, long long fallback = 0) {
    return j ? num(*j, key, fallback) : fallback;
}

/// Calls f on every element of the array `key` (none when absent or not an array).
template <class F>
void each(std::optional<element> j, std::string_view key, F&& f) {
    if (!j) {
        return;
    }
    const auto m = member(*j, key);
    simdjson::dom::array arr;
    if (!m || m->get_array().get(arr) != simdjson::SUCCESS) {
        return;
    }
    for (element e : arr) {
        f(e);
    }
}

std::string one_line(std::string_view in) {
    std::string text{in.substr(0, max_message + 1)};
    std::replace_if(
        text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' '
    );
    if (text.size() > max_message) {
        text.resize(max_message);
        text += "...";
    }
    return text;
}

/// The newest managedFields entry: who last wrote the object, and when. `own_only`: only
/// writes to the object itself, not to a subresource (status, scale).
std::pair<std::string, std::optional<wall_time>> last_manager(
    std::optional<element> metadata, bool own_only = false
) {
    std::string who;
    std::optional<wall_time> when;
    each(metadata, "managedFields", [&](element m) {
        if (own_only && !view(m, "subresource").empty()) {
            return;
        }
        const auto t = parse_rfc3339(view(m, "time"));
        if (t && (!when || *t >= *when)) {
            when = t;
            who = str(m, "manager");
        }
    });
    return {who, when};
}

signal make(std::string_view kind, wall_time at, std::string subject) {
    signal s;
    s.set_kind(kind);
    s.at = at;
    s.subject = std::move(subject);
    s.source = "kubernetes";
    return s;
}

/// A signal dated by the world when it gave a time (never after `now`: a skewed clock does
/// not date a change in the future), else at `now`, marked as seen rather than dated.
signal dated(std::string_view kind, std::optional<wall_time> when, wall_time now, std::string subject) {
    signal s = make(kind, when ? std::min(*when, now) : now, std::move(subject));
    s.seen = !when;
    return s;
}

/// The ReplicaSet a Deployment's Progressing message names: `Created new replica set
/// "web-7d9f"`, `ReplicaSet "web-7d9f" is progressing.`, ... (the deployment controller's
/// wording, kubernetes/kubernetes pkg/controller/deployment/util).
std::string quoted_replicaset(std::string_view message) {
    const auto open = message.find('"');
    const auto close = open == std::string_view::npos ? open : message.find('"', open + 1);
    if (close == std::string_view::npos || close == open + 1) {
        return {};
    }
    return std::string{message.substr(open + 1, close - open - 1)};
}

/// The ConfigMaps a pod spec uses: envFrom[].configMapRef, env[].valueFrom.configMapKeyRef of
/// every container and init container, volumes[].configMap and projected volumes' sources.
std::vector<std::string> configmaps_of(std::optional<element> pod_spec) {
    std::vector<std::string> out;
    const auto add = [&](std::optional<element> ref) {
        if (const std::string_view name = view(ref, "name"); !name.empty()) {
            out.emplace_back(name);
        }
    };
    for (const std::string_view list : {"containers", "initContainers"}) {
        each(pod_spec, list, [&](element c) {
            each(c, "envFrom", [&](element from) { add(child(from, "configMapRef")); });
            each(c, "env", [&](element var) { add(child(child(var, "valueFrom"), "configMapKeyRef")); });
        });
    }
    each(pod_spec, "volumes", [&](element v) {
        add(child(v, "configMap"));
        each(child(v, "projected"), "sources", [&](element src) { add(child(src, "configMap")); });
    });
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<container_image> images_of(std::optional<element> pod_spec) {
    std::vector<container_image> out;
    each(pod_spec, "containers", [&](element c) {
        if (c.is_object()) {
            out.push_back(container_image{str(c, "name"), str(c, "image")});
        }
    });
    return out;
}

// --- one reader per state -----------------------------------------------------------------

/// metadata.namespace and metadata.name into `s`; false when it has no name (malformed).
template <class State>
bool named(std::optional<element> metadata, State& s) {
    s.ns = str(metadata, "namespace");
    s.name = str(metadata, "name");
    return !s.name.empty();
}

result<pod_state> read(element doc, pod_state p) {
    const auto metadata = child(doc, "metadata");
    if (!named(metadata, p)) {
        return bad("a pod has no metadata.name");
    }
    // Pod -> ReplicaSet "<deployment>-<pod-template-hash>" -> Deployment.
    const std::string_view hash = view(child(metadata, "labels"), "pod-template-hash");
    each(metadata, "ownerReferences", [&](element owner) {
        if (view(owner, "kind") != "ReplicaSet") {
            return;
        }
        const std::string_view rs = view(owner, "name");
        if (!hash.empty() && rs.size() > hash.size() + 1 && rs.ends_with(hash) &&
            rs[rs.size() - hash.size() - 1] == '-') {
            p.deployment = std::string{rs.substr(0, rs.size() - hash.size() - 1)};
        } else if (const auto dash = rs.rfind('-'); dash != std::string_view::npos && dash > 0) {
            p.deployment = std::string{rs.substr(0, dash)};
        }
        p.replicaset = std::string{rs};
    });
    p.node = str(child(doc, "spec"), "nodeName");
    each(child(doc, "status"), "conditions", [&](element c) {
        if (view(c, "type") == "ContainersReady" && view(c, "status") == "False") {
            p.not_ready_since = parse_rfc3339(view(c, "lastTransitionTime"));
        }
    });
    each(child(doc, "status"), "containerStatuses", [&](element c) {
        if (!c.is_object()) {
            return;
        }
        container_state cs;
        cs.name = str(c, "name");
        cs.restarts = num(c, "restartCount");
        const auto waiting = child(child(c, "state"), "waiting");
        cs.waiting_reason = str(waiting, "reason");
        cs.waiting_message = one_line(view(waiting, "message"));
        const auto last = child(child(c, "lastState"), "terminated");
        cs.last_reason = str(last, "reason");
        cs.last_exit_code = last ? opt_num(*last, "exitCode") : std::nullopt;
        cs.last_message = one_line(view(last, "message"));
        cs.last_finished_at = parse_rfc3339(view(last, "finishedAt"));
        p.containers.push_back(std::move(cs));
    });
    return p;
}

result<deployment_state> read(element doc, deployment_state d) {
    const auto metadata = child(doc, "metadata");
    if (!named(metadata, d)) {
        return bad("a deployment has no metadata.name");
    }
    d.generation = num(metadata, "generation");
    d.revision = str(child(metadata, "annotations"), "deployment.kubernetes.io/revision");
    std::tie(d.changed_by, d.changed_at) = last_manager(metadata, true);
    const auto spec = child(doc, "spec");
    d.replicas = num(spec, "replicas", 1);
    const auto tmpl = child(spec, "template");
    if (simdjson::dom::object labels;
        tmpl && child(tmpl, "metadata") &&
        member(*child(tmpl, "metadata"), "labels").value_or(element{}).get_object().get(labels) ==
            simdjson::SUCCESS) {
        for (const auto field : labels) {
            std::string_view v;
            if (field.value.get_string().get(v) == simdjson::SUCCESS) {
                d.pod_labels.emplace_back(std::string{field.key}, std::string{v});
            }
        }
        std::sort(d.pod_labels.begin(), d.pod_labels.end());
    }
    d.template_hash = crypto::sha256_hex(tmpl ? simdjson::minify(*tmpl) : std::string{});
    d.images = images_of(child(tmpl, "spec"));
    d.configmaps = configmaps_of(child(tmpl, "spec"));
    // The spec without replicas: scaling is not a configuration change.
    std::string spec_text;
    if (simdjson::dom::object fields; spec && spec->get_object().get(fields) == simdjson::SUCCESS) {
        for (const auto field : fields) {
            if (field.key != "replicas") {
                spec_text.append(field.key).append(":").append(simdjson::minify(field.value)).append(",");
            }
        }
    }
    d.spec_hash = crypto::sha256_hex(spec_text);
    const auto status = child(doc, "status");
    d.observed_generation = num(status, "observedGeneration");
    d.total_replicas = num(status, "replicas");
    d.updated_replicas = num(status, "updatedReplicas");
    d.available_replicas = num(status, "availableReplicas");
    d.unavailable_replicas = num(status, "unavailableReplicas");
    each(status, "conditions", [&](element c) {
        if (view(c, "type") == "Progressing") {
            d.progressing_reason = str(c, "reason");
            d.progressing_rs = quoted_replicaset(view(c, "message"));
            d.progressing_updated = parse_rfc3339(view(c, "lastUpdateTime"));
            d.progressing_since = parse_rfc3339(view(c, "lastTransitionTime"));
        }
    });
    return d;
}

result<configmap_state> read(element doc, configmap_state c) {
    const auto metadata = child(doc, "metadata");
    if (!named(metadata, c)) {
        return bad("a configmap has no metadata.name");
    }
    // resourceVersion changes on any write (labels too): only the data counts (§4.6).
    const auto data = member(doc, "data");
    const auto binary = member(doc, "binaryData");
    c.data_hash = crypto::sha256_hex(
        (data ? simdjson::minify(*data) : std::string{"{}"}) + "\n" +
        (binary ? simdjson::minify(*binary) : std::string{"{}"})
    );
    std::tie(c.changed_by, c.changed_at) = last_manager(metadata);
    c.created = parse_rfc3339(view(metadata, "creationTimestamp"));
    return c;
}

result<replicaset_state> read(element doc, replicaset_state r) {
    const auto metadata = child(doc, "metadata");
    if (!named(metadata, r)) {
        return bad("a replicaset has no metadata.name");
    }
    each(metadata, "ownerReferences", [&](element owner) {
        if (view(owner, "kind") == "Deployment") {
            r.deployment = str(owner, "name");
        }
    });
    const auto annotations = child(metadata, "annotations");
    r.revision = str(annotations, "deployment.kubernetes.io/revision");
    r.reused = !view(annotations, "deployment.kubernetes.io/revision-history").empty();
    r.created = parse_rfc3339(view(metadata, "creationTimestamp"));
    r.images = images_of(child(child(child(doc, "spec"), "template"), "spec"));
    return r;
}

result<node_state> read(element doc, node_state n) {
    const auto metadata = child(doc, "metadata");
    n.name = str(metadata, "name");
    if (n.name.empty()) {
        return bad("a node has no metadata.name");
    }
    n.pool = str(child(metadata, "labels"), "cloud.google.com/gke-nodepool");
    n.created = parse_rfc3339(view(metadata, "creationTimestamp"));
    n.deleted_at = parse_rfc3339(view(metadata, "deletionTimestamp"));
    const auto spec = child(doc, "spec");
    bool unschedulable = false;
    if (const auto u = spec ? member(*spec, "unschedulable") : std::nullopt) {
        if (u->get_bool().get(unschedulable) != simdjson::SUCCESS) {
            unschedulable = false;
        }
    }
    n.unschedulable = unschedulable;
    // kubectl cordon sets spec.unschedulable; the node lifecycle controller then adds this
    // taint, and its timeAdded is the one time the API keeps of the cordon.
    each(spec, "taints", [&](element t) {
        if (view(t, "key") == "node.kubernetes.io/unschedulable") {
            n.cordoned_at = parse_rfc3339(view(t, "timeAdded"));
        }
    });
    const auto status = child(doc, "status");
    n.kubelet_version = str(child(status, "nodeInfo"), "kubeletVersion");
    each(status, "conditions", [&](element c) {
        if (view(c, "type") == "Ready") {
            n.ready = str(c, "status");
            n.ready_since = parse_rfc3339(view(c, "lastTransitionTime"));
        }
    });
    return n;
}

result<event_state> read(element doc, event_state e) {
    const auto metadata = child(doc, "metadata");
    if (!named(metadata, e)) {
        return bad("an event has no metadata.name");
    }
    e.warning = view(doc, "type") == "Warning";
    if (!e.warning) {
        return e;  // nothing else is kept of Normal events
    }
    const auto involved = child(doc, "involvedObject");
    e.involved_kind = str(involved, "kind");
    e.involved_name = str(involved, "name");
    e.involved_ns = str(involved, "namespace");
    e.reason = str(doc, "reason");
    e.message = one_line(view(doc, "message"));
    const auto series = child(doc, "series");
    e.count = std::max(num(doc, "count", 1), num(series, "count", 1));
    // Events written through the newer API leave the legacy timestamps null (§4.7).
    e.last = parse_rfc3339(view(doc, "lastTimestamp"));
    if (!e.last) {
        e.last = parse_rfc3339(view(series, "lastObservedTime"));
    }
    if (!e.last) {
        e.last = parse_rfc3339(view(doc, "eventTime"));
    }
    e.host = str(child(doc, "source"), "host");
    return e;
}

result<certificate_state> read(element doc, certificate_state c) {
    const auto metadata = child(doc, "metadata");
    if (!named(metadata, c)) {
        return bad("a certificate has no metadata.name");
    }
    c.created = parse_rfc3339(view(metadata, "creationTimestamp"));
    const auto spec = child(doc, "spec");
    c.secret_name = str(spec, "secretName");
    c.common_name = str(spec, "commonName");
    each(spec, "dnsNames", [&](element n) {
        std::string_view name;
        if (n.get_string().get(name) == simdjson::SUCCESS && !name.empty() &&
            c.dns_names.size() < max_dns_names) {
            c.dns_names.emplace_back(name.substr(0, max_dns_name));
        }
    });
    if (const auto ref = child(spec, "issuerRef"); ref && !view(ref, "name").empty()) {
        const std::string_view kind = view(ref, "kind");
        c.issuer = std::string{kind.empty() ? std::string_view{"Issuer"} : kind} + "/" + str(ref, "name");
    }
    const auto status = child(doc, "status");
    if (const std::string_view text = view(status, "notAfter"); !text.empty()) {
        c.not_after = parse_rfc3339(text);
        if (!c.not_after) {
            c.bad_not_after = one_line(text.substr(0, 64));
        }
    }
    c.renewal_time = parse_rfc3339(view(status, "renewalTime"));
    each(status, "conditions", [&](element cond) {
        if (view(cond, "type") != "Ready") {
            return;
        }
        c.ready = str(cond, "status");
        c.ready_reason = str(cond, "reason");
        c.ready_message = one_line(view(cond, "message"));
        c.ready_since = parse_rfc3339(view(cond, "lastTransitionTime"));
    });
    return c;
}

template <class State>
result<State> read_state(element doc) {
    if (!doc.is_object()) {
        return bad("an object is not a JSON object");
    }
    return read(doc, State{});
}

}  // namespace

std::string_view to_string(event_type t) noexcept {
    switch (t) {
        case event_type::added: return "ADDED";
        case event_type::modified: return "MODIFIED";
        case event_type::deleted: return "DELETED";
        case event_type::bookmark: return "BOOKMARK";
        case event_type::error: return "ERROR";
    }
    return "?";
}

template <class State>
result<State> parse_object(std::string_view json) {
    const auto doc = parse_root(line_parser(), json);
    if (!doc) {
        return bad("an object is not a JSON object");
    }
    return read_state<State>(*doc);
}

template <class State>
result<object_event<State>> parse_event(std::string_view line) {
    const auto doc = parse_root(line_parser(), line);
    if (!doc) {
        return bad("a watch line is not a JSON object");
    }
    object_event<State> ev;
    const std::string_view type = view(*doc, "type");
    const auto object = child(*doc, "object");
    if (type == "ADDED") {
        ev.type = event_type::added;
    } else if (type == "MODIFIED") {
        ev.type = event_type::modified;
    } else if (type == "DELETED") {
        ev.type = event_type::deleted;
    } else if (type == "BOOKMARK") {
        ev.type = event_type::bookmark;
    } else if (type == "ERROR") {
        ev.type = event_type::error;
        // A Status: 410 with reason Expired (or Gone before 1.18) means relist.
        const std::string_view reason = view(object, "reason");
        ev.expired = num(object, "code") == 410 || reason == "Expired" || reason == "Gone";
        ev.error = one_line(view(object, "message"));
        return ev;
    } else {
        return bad("unknown watch event type '" + std::string{type.substr(0, 40)} + "'");
    }
    if (!object) {
        return bad("a watch event has no object");
    }
    ev.resource_version = str(child(object, "metadata"), "resourceVersion");
    if (ev.type != event_type::bookmark) {
        auto state = read_state<State>(*object);
        if (!state) {
            return state.error();
        }
        ev.object = std::move(*state);
    }
    return ev;
}

template <class State>
result<object_page<State>> parse_page(std::string_view body) {
    simdjson::dom::parser parser;  // freed with the page (see line_parser)
    const auto doc = parse_root(parser, body);
    if (!doc) {
        return bad("a list response is not a JSON object");
    }
    object_page<State> page;
    const auto metadata = child(*doc, "metadata");
    page.resource_version = str(metadata, "resourceVersion");
    page.continue_token = str(metadata, "continue");
    if (page.resource_version.empty()) {
        return bad("a list response has no metadata.resourceVersion");
    }
    each(*doc, "items", [&](element item) {
        if (auto state = read_state<State>(item)) {
            page.items.push_back(std::move(*state));
        } else {
            ++page.skipped;
        }
    });
    return page;
}

#define RUNBOOKD_KUBERNETES_STATE(State)                                       \
    template result<State> parse_object<State>(std::string_view);              \
    template result<object_event<State>> parse_event<State>(std::string_view); \
    template result<object_page<State>> parse_page<State>(std::string_view);
RUNBOOKD_KUBERNETES_STATE(pod_state)
RUNBOOKD_KUBERNETES_STATE(deployment_state)
RUNBOOKD_KUBERNETES_STATE(replicaset_state)
RUNBOOKD_KUBERNETES_STATE(configmap_state)
RUNBOOKD_KUBERNETES_STATE(node_state)
RUNBOOKD_KUBERNETES_STATE(event_state)
RUNBOOKD_KUBERNETES_STATE(certificate_state)
#undef RUNBOOKD_KUBERNETES_STATE

std::string status_message(std::string_view body) {
    const auto doc = parse_root(line_parser(), body);
    return doc ? one_line(view(*doc, "message")) : std::string{};
}

result<std::string> parse_version(std::string_view text) {
    const auto doc = parse_root(line_parser(), text);
    if (!doc || view(*doc, "gitVersion").empty()) {
        return bad("/version has no gitVersion");
    }
    return str(*doc, "gitVersion");
}

std::optional<signal> warning_signal(const event_state& e, const pod_state* pod, wall_time now) {
    if (!e.warning) {
        return std::nullopt;
    }
    signal s = dated("k8s.warning", e.last, now, e.involved_name);
    s.set("namespace", e.involved_ns.empty() ? e.ns : e.involved_ns);
    s.set(
        "object", (e.involved_kind.empty() ? std::string{"object"} : e.involved_kind) + "/" + e.involved_name
    );
    s.set("reason", e.reason);
    s.set("message", e.message);
    if (pod != nullptr) {
        s.set("deployment", pod->deployment);
        s.set("replicaset", pod->replicaset);
    }
    // The kubelet reports from the node it runs on; a controller's event has no host.
    s.set("node", pod != nullptr && !pod->node.empty() ? pod->node : e.host);
    s.value = static_cast<double>(e.count);
    return s;
}

std::vector<signal> diff_pod(const pod_state* prev, const pod_state& next, wall_time now) {
    std::vector<signal> out;
    const auto about = [&](std::string_view kind, std::optional<wall_time> when, const container_state& c) {
        signal s = dated(kind, when, now, next.name);
        s.set("namespace", next.ns);
        s.set("deployment", next.deployment);
        s.set("replicaset", next.replicaset);
        s.set("node", next.node);
        s.set("pod", next.name);
        s.set("container", c.name);
        return s;
    };
    for (const auto& c : next.containers) {
        const container_state* before = nullptr;
        if (prev != nullptr) {
            const auto it =
                std::find_if(prev->containers.begin(), prev->containers.end(), [&](const container_state& o) {
                    return o.name == c.name;
                });
            before = it == prev->containers.end() ? nullptr : &*it;
        }
        // First seen: the restarts it already had, told once at the last one's time (never
        // at the time we looked, which a second look would tell again as another fact).
        const bool restarted = before != nullptr ? c.restarts > before->restarts
                                                 : prev == nullptr && c.restarts > 0 && c.last_finished_at;
        if (restarted) {
            signal s = about("k8s.restart", c.last_finished_at, c);
            s.set("reason", c.last_reason);
            s.set("exit_code", c.last_exit_code ? std::to_string(*c.last_exit_code) : std::string{});
            s.set("message", c.last_message);
            s.value = static_cast<double>(c.restarts - (before != nullptr ? before->restarts : 0));
            out.push_back(std::move(s));
        }
        const bool trouble = std::find(trouble_reasons.begin(), trouble_reasons.end(), c.waiting_reason) !=
                             trouble_reasons.end();
        if (trouble && (before == nullptr || before->waiting_reason != c.waiting_reason)) {
            // A crash loop waits since its last exit; a container that never ran (an image
            // pull error) since its pod's containers stopped being ready.
            signal s =
                about("k8s.waiting", c.last_finished_at ? c.last_finished_at : next.not_ready_since, c);
            s.set("reason", c.waiting_reason);
            s.set("message", c.waiting_message);
            out.push_back(std::move(s));
        }
    }
    return out;
}

std::optional<std::string> rollout_incomplete(const deployment_state& d) {
    if (d.generation > d.observed_generation) {
        return "waiting for the deployment spec update to be observed";
    }
    if (d.progressing_reason == "ProgressDeadlineExceeded") {
        return "ProgressDeadlineExceeded";
    }
    if (d.updated_replicas < d.replicas) {
        return std::to_string(d.updated_replicas) + " of " + std::to_string(d.replicas) +
               " new replicas updated";
    }
    if (d.total_replicas > d.updated_replicas) {
        return std::to_string(d.total_replicas - d.updated_replicas) + " old replicas pending termination";
    }
    if (d.available_replicas < d.updated_replicas) {
        return std::to_string(d.available_replicas) + " of " + std::to_string(d.updated_replicas) +
               " updated replicas available";
    }
    return std::nullopt;
}

std::vector<signal> diff_deployment(
    const deployment_state* prev, const deployment_state& next, wall_time now
) {
    std::vector<signal> out;
    const auto labelled = [&](std::string_view kind, std::optional<wall_time> when) {
        signal s = dated(kind, when, now, next.name);
        s.set("namespace", next.ns);
        s.set("deployment", next.name);
        return s;
    };
    if (prev != nullptr && prev->spec_hash != next.spec_hash) {
        const bool images_same = std::equal(
            prev->images.begin(),
            prev->images.end(),
            next.images.begin(),
            next.images.end(),
            [](const container_image& a, const container_image& b) {
                return a.name == b.name && a.image == b.image;
            }
        );
        if (images_same) {
            signal s = labelled("k8s.config_change", next.changed_at);
            s.set("object", "deploy/" + next.name);
            s.set("object_kind", "Deployment");
            s.set("changed_by", next.changed_by);
            out.push_back(std::move(s));
        }
    }
    const bool stuck = next.progressing_reason == "ProgressDeadlineExceeded";
    if (stuck && (prev == nullptr || prev->progressing_reason != next.progressing_reason)) {
        // The condition turned False when the deadline passed: its lastTransitionTime.
        signal s = labelled("k8s.rollout_stuck", next.progressing_since);
        s.set("reason", "ProgressDeadlineExceeded");
        s.set("unavailable", std::to_string(next.unavailable_replicas));
        out.push_back(std::move(s));
    }
    return out;
}

bool rollout_due(const deployment_state& d) {
    return d.told_template != d.template_hash && d.observed_generation >= d.generation;
}

signal rollout_signal(const deployment_state& d, const replicaset_state* rs, wall_time now) {
    std::optional<wall_time> when;
    if (rs != nullptr && !rs->reused) {
        when = rs->created;
    }
    const std::string_view reason = d.progressing_reason;
    if (!when && (reason == "NewReplicaSetCreated" || reason == "FoundNewReplicaSet" ||
                  reason == "ReplicaSetUpdated")) {
        when = d.progressing_updated;
    }
    if (!when) {
        when = d.changed_at;
    }
    signal s = dated("k8s.rollout", when, now, d.name);
    s.set("namespace", d.ns);
    s.set("deployment", d.name);
    s.set("replicaset", rs != nullptr ? rs->name : d.progressing_rs);
    // The first container whose image changed names the rollout; else the first one.
    const auto& before = d.told_images;
    std::string image = d.images.empty() ? std::string{} : d.images.front().image;
    std::string previous;
    bool image_changed = false;
    for (const auto& c : d.images) {
        const auto it = std::find_if(before.begin(), before.end(), [&](const container_image& o) {
            return o.name == c.name;
        });
        if (it == before.end() || it->image != c.image) {
            image = c.image;
            previous = it == before.end() ? std::string{} : it->image;
            image_changed = true;
            break;
        }
    }
    if (!image_changed && !before.empty()) {
        previous = before.front().image;
    }
    s.set("revision", d.revision);
    s.set("image", image);
    s.set("previous_image", previous);
    s.set("image_changed", image_changed ? "true" : "false");
    return s;
}

namespace {

signal node_signal(
    const node_state& n,
    std::string_view change,
    std::optional<wall_time> when,
    wall_time now,
    std::string from = {},
    std::string to = {}
) {
    signal s = dated("k8s.node", when, now, "node/" + n.name);
    s.set("node", n.name);
    s.set("change", std::string{change});
    s.set("from", std::move(from));
    s.set("to", std::move(to));
    return s;
}

signal node_version(
    const node_state& n, std::optional<wall_time> when, wall_time now, std::string from, std::string to
) {
    signal s = dated("k8s.version_change", when, now, "node/" + n.name);
    s.set("object", "node/" + n.name);
    s.set("node", n.name);
    s.set("from", std::move(from));
    s.set("to", std::move(to));
    return s;
}

void tell_cordon(const node_state& n, wall_time now, std::vector<signal>& out) {
    out.push_back(node_version(n, n.cordoned_at, now, n.kubelet_version, "cordoned")
    );  // drained for an upgrade or a repair
    out.push_back(node_signal(n, "cordoned", n.cordoned_at, now));
}

void tell_not_ready(const node_state& n, std::string from, wall_time now, std::vector<signal>& out) {
    out.push_back(node_signal(n, "not_ready", n.ready_since, now, std::move(from), n.ready));
}

bool not_ready(const node_state& n) {
    return n.ready == "False" || n.ready == "Unknown";
}

}  // namespace

std::vector<signal> diff_node(const node_state& prev, const node_state& next, wall_time now) {
    std::vector<signal> out;
    if (!prev.kubelet_version.empty() && prev.kubelet_version != next.kubelet_version) {
        // The object keeps no time of its kubelet's version: when seen.
        out.push_back(node_version(next, std::nullopt, now, prev.kubelet_version, next.kubelet_version));
        out.push_back(
            node_signal(next, "version", std::nullopt, now, prev.kubelet_version, next.kubelet_version)
        );
    }
    if (!prev.unschedulable && next.unschedulable) {
        tell_cordon(next, now, out);
    }
    if (!not_ready(prev) && not_ready(next)) {
        tell_not_ready(next, prev.ready, now, out);
    }
    return out;
}

std::string pool_version(const node_state& n, const std::vector<const node_state*>& nodes) {
    std::map<std::string, int> versions;  // the other nodes of its pool, by kubelet version
    for (const auto* o : nodes) {
        if (o->name != n.name && o->pool == n.pool && !o->kubelet_version.empty()) {
            ++versions[o->kubelet_version];
        }
    }
    const int own = versions.contains(n.kubelet_version) ? versions[n.kubelet_version] : 0;
    std::string usual;
    int most = 0;
    for (const auto& [version, count] : versions) {
        if (version != n.kubelet_version && count > most) {
            usual = version;
            most = count;
        }
    }
    if (usual.empty() || most < own || !n.created) {
        return {};
    }
    // It replaced one of them only if it is newer than each: an old node of a pool half
    // upgraded did not change to the old version.
    for (const auto* o : nodes) {
        if (o->pool == n.pool && o->kubelet_version == usual && o->created && *o->created >= *n.created) {
            return {};
        }
    }
    return usual;
}

std::vector<signal> node_added(
    const node_state& next, std::string_view usual_version, bool listed, wall_time now
) {
    std::vector<signal> out;
    if (next.created) {
        out.push_back(node_signal(next, "created", next.created, now, {}, next.kubelet_version));
    }
    if ((!listed || next.created) && !usual_version.empty() && !next.kubelet_version.empty() &&
        next.kubelet_version != usual_version) {
        out.push_back(node_version(next, next.created, now, std::string{usual_version}, next.kubelet_version)
        );
    }
    if (next.unschedulable && (!listed || next.cordoned_at)) {
        tell_cordon(next, now, out);
    }
    if (not_ready(next) && (!listed || next.ready_since)) {
        tell_not_ready(next, {}, now, out);
    }
    return out;
}

signal node_deleted(const node_state& last, wall_time now) {
    return node_signal(last, "deleted", last.deleted_at, now, last.kubelet_version, {});
}

signal version_change(std::string_view from, std::string_view to, wall_time now) {
    signal s = dated("k8s.version_change", std::nullopt, now, "control-plane");
    s.set("object", "control-plane");
    s.set("from", std::string{from});
    s.set("to", std::string{to});
    return s;
}

std::optional<signal> diff_certificate(
    const certificate_state* prev, const certificate_state& next, wall_time now
) {
    if (prev != nullptr && prev->not_after == next.not_after && prev->bad_not_after == next.bad_not_after &&
        prev->ready == next.ready && prev->ready_reason == next.ready_reason) {
        return std::nullopt;
    }
    return certificate_signal(next, now);
}

signal certificate_signal(const certificate_state& c, wall_time now) {
    // When something happened to it: its readiness last changed, else it was created.
    std::string id = c.ns + "/" + c.name;
    signal s = dated("cert.expiry", c.ready_since ? c.ready_since : c.created, now, id);
    std::string sans;
    for (const auto& n : c.dns_names) {
        sans += (sans.empty() ? "" : ",") + n;
    }
    s.set("host", c.dns_names.empty() ? c.common_name : c.dns_names.front());
    s.set("port", "");
    const bool expired = c.not_after && *c.not_after < now;
    const bool ready = c.ready == "True";
    std::string outcome = expired ? "expired" : ready ? "ok" : "not_ready";
    // Why it is not ok: the Ready condition's reason and message when it says anything
    // but True, else what we know.
    std::string error;
    if (outcome != "ok") {
        if (!c.ready.empty() && !ready) {
            error = "Ready " + c.ready + (c.ready_reason.empty() ? std::string{} : ": " + c.ready_reason) +
                    (c.ready_message.empty() ? std::string{} : ": " + c.ready_message);
        } else if (expired) {
            error = "certificate has expired";
        } else {
            error = "no Ready condition yet";
        }
    }
    if (!c.bad_not_after.empty()) {
        error += (error.empty() ? "" : "; ") + std::string{"status.notAfter is not RFC 3339: '"} +
                 c.bad_not_after + "'";
    }
    s.set("outcome", std::move(outcome));
    s.set("error", std::move(error));
    if (c.not_after) {
        s.value = std::chrono::duration<double>(*c.not_after - now).count();
        s.set("not_after", format_rfc3339_seconds(*c.not_after));
    }
    s.set("which", "leaf");
    s.set("cert_subject", id);
    s.set("issuer", c.issuer);
    s.set("sans", std::move(sans));
    s.set("services", "");
    s.set("expires_soon", "false");
    return s;
}

namespace {
std::vector<signal> configmap_signals(
    const configmap_state& next, const std::vector<std::string>& users, wall_time now
) {
    // One per Deployment that uses it, so that `related: service` finds it for each; one
    // with no deployment when none does (it still tells of the namespace).
    const std::vector<std::string> none{std::string{}};
    std::vector<signal> out;
    for (const auto& deployment : users.empty() ? none : users) {
        signal s = dated("k8s.config_change", next.changed_at, now, next.name);
        s.set("namespace", next.ns);
        s.set("deployment", deployment);
        s.set("object", "cm/" + next.name);
        s.set("object_kind", "ConfigMap");
        s.set("changed_by", next.changed_by);
        out.push_back(std::move(s));
    }
    return out;
}
}  // namespace

std::vector<signal> diff_configmap(
    const configmap_state* prev,
    const configmap_state& next,
    const std::vector<std::string>& users,
    wall_time now
) {
    if (prev == nullptr || prev->data_hash == next.data_hash) {
        return {};
    }
    return configmap_signals(next, users, now);
}

std::vector<signal> configmap_listed(
    const configmap_state& c, const std::vector<std::string>& users, wall_time now
) {
    if (!c.changed_at || !c.created || *c.changed_at <= *c.created) {
        return {};  // never edited, or no time to tell it at
    }
    return configmap_signals(c, users, now);
}

}  // namespace runbookd::sources::kubernetes
