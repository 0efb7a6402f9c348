#include "sources/kubernetes/parse.hpp"

#include "crypto/digest.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace runbookd::sources::kubernetes {
namespace {

using json = nlohmann::json;

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

failure bad(std::string what) {
    return make_failure(errc::parse_failed, "kubernetes: " + std::move(what));
}

std::optional<json> parse_object(std::string_view text) {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return std::nullopt;
    }
    return doc;
}

std::string str(const json& j, std::string_view key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

long long num(const json& j, std::string_view key, long long fallback = 0) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<long long>() : fallback;
}

const json& child(const json& j, std::string_view key) {
    static const json empty = json::object();
    const auto it = j.find(key);
    return it != j.end() && it->is_object() ? *it : empty;
}

const json& items(const json& j, std::string_view key) {
    static const json empty = json::array();
    const auto it = j.find(key);
    return it != j.end() && it->is_array() ? *it : empty;
}

std::string one_line(std::string text) {
    std::replace_if(
        text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' '
    );
    if (text.size() > max_message) {
        text.resize(max_message);
        text += "...";
    }
    return text;
}

/// The newest managedFields entry: who last wrote the object, and when.
std::pair<std::string, std::optional<wall_time>> last_manager(const json& metadata) {
    std::string who;
    std::optional<wall_time> when;
    for (const auto& m : items(metadata, "managedFields")) {
        if (!m.is_object()) {
            continue;
        }
        const auto t = parse_rfc3339(str(m, "time"));
        if (t && (!when || *t >= *when)) {
            when = t;
            who = str(m, "manager");
        }
    }
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

}  // namespace

result<watch_event> parse_watch_line(std::string_view line) {
    const auto doc = parse_object(line);
    if (!doc) {
        return bad("a watch line is not a JSON object");
    }
    watch_event ev;
    const std::string type = str(*doc, "type");
    const json& object = child(*doc, "object");
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
        const std::string reason = str(object, "reason");
        ev.expired = num(object, "code") == 410 || reason == "Expired" || reason == "Gone";
        ev.error = one_line(str(object, "message"));
        return ev;
    } else {
        return bad("unknown watch event type '" + type.substr(0, 40) + "'");
    }
    ev.resource_version = str(child(object, "metadata"), "resourceVersion");
    if (ev.type != event_type::bookmark) {
        ev.object_json = object.dump();
    }
    return ev;
}

result<list_page> parse_list(std::string_view body) {
    const auto doc = parse_object(body);
    if (!doc) {
        return bad("a list response is not a JSON object");
    }
    list_page page;
    const json& metadata = child(*doc, "metadata");
    page.resource_version = str(metadata, "resourceVersion");
    page.continue_token = str(metadata, "continue");
    if (page.resource_version.empty()) {
        return bad("a list response has no metadata.resourceVersion");
    }
    for (const auto& item : items(*doc, "items")) {
        page.items.push_back(item.dump());
    }
    return page;
}

result<pod_state> parse_pod(std::string_view text) {
    const auto doc = parse_object(text);
    if (!doc) {
        return bad("a pod is not a JSON object");
    }
    pod_state p;
    const json& metadata = child(*doc, "metadata");
    p.ns = str(metadata, "namespace");
    p.name = str(metadata, "name");
    if (p.name.empty()) {
        return bad("a pod has no metadata.name");
    }
    // Pod -> ReplicaSet "<deployment>-<pod-template-hash>" -> Deployment.
    const std::string hash = str(child(metadata, "labels"), "pod-template-hash");
    for (const auto& owner : items(metadata, "ownerReferences")) {
        if (!owner.is_object() || str(owner, "kind") != "ReplicaSet") {
            continue;
        }
        std::string rs = str(owner, "name");
        if (!hash.empty() && rs.size() > hash.size() + 1 && rs.ends_with("-" + hash)) {
            p.deployment = rs.substr(0, rs.size() - hash.size() - 1);
        } else if (const auto dash = rs.rfind('-'); dash != std::string::npos && dash > 0) {
            p.deployment = rs.substr(0, dash);
        }
    }
    const json& status = child(*doc, "status");
    for (const auto& c : items(status, "containerStatuses")) {
        if (!c.is_object()) {
            continue;
        }
        container_state cs;
        cs.name = str(c, "name");
        cs.restarts = num(c, "restartCount");
        const json& waiting = child(child(c, "state"), "waiting");
        cs.waiting_reason = str(waiting, "reason");
        cs.waiting_message = one_line(str(waiting, "message"));
        const json& last = child(child(c, "lastState"), "terminated");
        cs.last_reason = str(last, "reason");
        if (last.contains("exitCode") && last["exitCode"].is_number_integer()) {
            cs.last_exit_code = last["exitCode"].get<long long>();
        }
        cs.last_message = one_line(str(last, "message"));
        cs.last_finished_at = parse_rfc3339(str(last, "finishedAt"));
        p.containers.push_back(std::move(cs));
    }
    return p;
}

result<deployment_state> parse_deployment(std::string_view text) {
    const auto doc = parse_object(text);
    if (!doc) {
        return bad("a deployment is not a JSON object");
    }
    deployment_state d;
    const json& metadata = child(*doc, "metadata");
    d.ns = str(metadata, "namespace");
    d.name = str(metadata, "name");
    if (d.name.empty()) {
        return bad("a deployment has no metadata.name");
    }
    d.generation = num(metadata, "generation");
    d.revision = str(child(metadata, "annotations"), "deployment.kubernetes.io/revision");
    d.changed_by = last_manager(metadata).first;
    json spec = child(*doc, "spec");
    d.replicas = num(spec, "replicas", 1);
    const json& tmpl = child(spec, "template");
    d.template_hash = crypto::sha256_hex(tmpl.dump());
    for (const auto& c : items(child(tmpl, "spec"), "containers")) {
        if (c.is_object()) {
            d.images.push_back(container_image{str(c, "name"), str(c, "image")});
        }
    }
    spec.erase("replicas");  // scaling is not a configuration change
    d.spec_hash = crypto::sha256_hex(spec.dump());
    const json& status = child(*doc, "status");
    d.observed_generation = num(status, "observedGeneration");
    d.total_replicas = num(status, "replicas");
    d.updated_replicas = num(status, "updatedReplicas");
    d.available_replicas = num(status, "availableReplicas");
    d.unavailable_replicas = num(status, "unavailableReplicas");
    for (const auto& c : items(status, "conditions")) {
        if (c.is_object() && str(c, "type") == "Progressing") {
            d.progressing_reason = str(c, "reason");
        }
    }
    return d;
}

result<configmap_state> parse_configmap(std::string_view text) {
    const auto doc = parse_object(text);
    if (!doc) {
        return bad("a configmap is not a JSON object");
    }
    configmap_state c;
    const json& metadata = child(*doc, "metadata");
    c.ns = str(metadata, "namespace");
    c.name = str(metadata, "name");
    if (c.name.empty()) {
        return bad("a configmap has no metadata.name");
    }
    // resourceVersion changes on any write (labels too): only the data counts (§4.6).
    c.data_hash = crypto::sha256_hex(child(*doc, "data").dump() + "\n" + child(*doc, "binaryData").dump());
    std::tie(c.changed_by, c.changed_at) = last_manager(metadata);
    return c;
}

result<std::string> parse_version(std::string_view text) {
    const auto doc = parse_object(text);
    if (!doc || str(*doc, "gitVersion").empty()) {
        return bad("/version has no gitVersion");
    }
    return str(*doc, "gitVersion");
}

result<std::optional<signal>> parse_warning_event(std::string_view text, wall_time now) {
    const auto doc = parse_object(text);
    if (!doc) {
        return bad("an event is not a JSON object");
    }
    if (str(*doc, "type") != "Warning") {
        return std::optional<signal>{};
    }
    const json& involved = child(*doc, "involvedObject");
    // Events written through the newer API leave the legacy timestamps null (§4.7).
    auto at = parse_rfc3339(str(*doc, "lastTimestamp"));
    if (!at) {
        at = parse_rfc3339(str(child(*doc, "series"), "lastObservedTime"));
    }
    if (!at) {
        at = parse_rfc3339(str(*doc, "eventTime"));
    }
    const std::string kind = str(involved, "kind");
    const std::string name = str(involved, "name");
    signal s = make("k8s.warning", at && *at <= now ? *at : now, name);
    s.set("namespace", str(involved, "namespace"));
    s.set("object", (kind.empty() ? std::string{"object"} : kind) + "/" + name);
    s.set("reason", str(*doc, "reason"));
    s.set("message", one_line(str(*doc, "message")));
    s.value = static_cast<double>(std::max(num(*doc, "count", 1), num(child(*doc, "series"), "count", 1)));
    return std::optional{std::move(s)};
}

std::vector<signal> diff_pod(const pod_state* prev, const pod_state& next, wall_time now) {
    std::vector<signal> out;
    for (const auto& c : next.containers) {
        const container_state* before = nullptr;
        if (prev != nullptr) {
            const auto it =
                std::find_if(prev->containers.begin(), prev->containers.end(), [&](const container_state& o) {
                    return o.name == c.name;
                });
            before = it == prev->containers.end() ? nullptr : &*it;
        }
        if (before != nullptr && c.restarts > before->restarts) {
            signal s = make(
                "k8s.restart",
                c.last_finished_at && *c.last_finished_at <= now ? *c.last_finished_at : now,
                next.name
            );
            s.set("namespace", next.ns);
            s.set("deployment", next.deployment);
            s.set("pod", next.name);
            s.set("container", c.name);
            s.set("reason", c.last_reason);
            s.set("exit_code", c.last_exit_code ? std::to_string(*c.last_exit_code) : std::string{});
            s.set("message", c.last_message);
            s.value = static_cast<double>(c.restarts - before->restarts);
            out.push_back(std::move(s));
        }
        const bool trouble = std::find(trouble_reasons.begin(), trouble_reasons.end(), c.waiting_reason) !=
                             trouble_reasons.end();
        if (trouble && (before == nullptr || before->waiting_reason != c.waiting_reason)) {
            signal s = make("k8s.waiting", now, next.name);
            s.set("namespace", next.ns);
            s.set("deployment", next.deployment);
            s.set("pod", next.name);
            s.set("container", c.name);
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
    const auto labelled = [&](std::string_view kind) {
        signal s = make(kind, now, next.name);
        s.set("namespace", next.ns);
        s.set("deployment", next.name);
        return s;
    };
    if (prev != nullptr && prev->template_hash != next.template_hash) {
        // The first container whose image changed names the rollout; else the first one.
        std::string image = next.images.empty() ? std::string{} : next.images.front().image;
        std::string previous;
        bool image_changed = false;
        for (const auto& c : next.images) {
            const auto it =
                std::find_if(prev->images.begin(), prev->images.end(), [&](const container_image& o) {
                    return o.name == c.name;
                });
            if (it == prev->images.end() || it->image != c.image) {
                image = c.image;
                previous = it == prev->images.end() ? std::string{} : it->image;
                image_changed = true;
                break;
            }
        }
        if (!image_changed && !prev->images.empty()) {
            previous = prev->images.front().image;
        }
        signal s = labelled("k8s.rollout");
        s.set("revision", next.revision);
        s.set("image", image);
        s.set("previous_image", previous);
        s.set("image_changed", image_changed ? "true" : "false");
        out.push_back(std::move(s));
    }
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
            signal s = labelled("k8s.config_change");
            s.set("object", "deploy/" + next.name);
            s.set("object_kind", "Deployment");
            s.set("changed_by", next.changed_by);
            out.push_back(std::move(s));
        }
    }
    const bool stuck = next.progressing_reason == "ProgressDeadlineExceeded";
    if (stuck && (prev == nullptr || prev->progressing_reason != next.progressing_reason)) {
        signal s = labelled("k8s.rollout_stuck");
        s.set("reason", "ProgressDeadlineExceeded");
        s.set("unavailable", std::to_string(next.unavailable_replicas));
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<signal> diff_configmap(const configmap_state* prev, const configmap_state& next, wall_time now) {
    if (prev == nullptr || prev->data_hash == next.data_hash) {
        return {};
    }
    signal s = make(
        "k8s.config_change", next.changed_at && *next.changed_at <= now ? *next.changed_at : now, next.name
    );
    s.set("namespace", next.ns);
    s.set("object", "cm/" + next.name);
    s.set("object_kind", "ConfigMap");
    s.set("changed_by", next.changed_by);
    return {std::move(s)};
}

}  // namespace runbookd::sources::kubernetes
