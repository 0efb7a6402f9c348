#include "intake/deploys/parse.hpp"

#include "core/engine.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace runbookd::intake::deploys {
namespace {

using json = nlohmann::json;

failure bad(std::string what) {
    return make_failure(errc::parse_failed, std::move(what));
}

const json* object_at(const json& obj, const char* key) {
    if (!obj.is_object()) {
        return nullptr;
    }
    const auto it = obj.find(key);
    return it == obj.end() || !it->is_object() ? nullptr : &*it;
}

std::string string_at(const json& obj, const char* key) {
    if (!obj.is_object()) {
        return {};
    }
    const auto it = obj.find(key);
    if (it == obj.end()) {
        return {};
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_number_integer()) {
        return std::to_string(it->get<long long>());
    }
    return {};
}

std::string login_at(const json& obj, const char* key) {
    const json* user = object_at(obj, key);
    return user == nullptr ? std::string{} : string_at(*user, "login");
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    });
    return s;
}

/// A time field that must be present and RFC 3339.
result<wall_time> time_at(const json& obj, const char* key, const std::string& path) {
    const auto text = string_at(obj, key);
    if (text.empty()) {
        return bad(path + "." + key + ": missing or not a string");
    }
    if (auto t = parse_rfc3339(text)) {
        return *t;
    }
    return bad(path + "." + key + ": not an RFC 3339 time");
}

std::optional<wall_time> optional_time(const json& obj, const char* key) {
    const auto text = string_at(obj, key);
    return text.empty() ? std::nullopt : parse_rfc3339(text);
}

std::string short_sha(std::string_view sha) {
    return std::string{sha.substr(0, 7)};
}

/// "main@4f2a9c1"; the short SHA alone when the ref is the SHA or absent.
std::string version_of(const std::string& ref, const std::string& sha) {
    if (ref.empty() || ref == sha) {
        return short_sha(sha);
    }
    return sha.empty() ? ref : ref + "@" + short_sha(sha);
}

/// GitHub deployment states (api-facts §5) in our words; "" for `inactive` (an older
/// deployment superseded, not news of a deploy). Unknown states are kept as sent.
std::string deployment_state(const std::string& state) {
    if (state == "pending" || state == "queued" || state == "waiting") {
        return "queued";
    }
    if (state == "inactive") {
        return "";
    }
    return state;  // in_progress, success, failure, error, or a state added later
}

/// A workflow run's status and conclusion in our words.
std::string run_state(const std::string& status, const std::string& conclusion) {
    if (status != "completed") {
        return status == "in_progress" ? "in_progress" : "queued";  // queued, requested, waiting, pending
    }
    if (conclusion == "success" || conclusion == "neutral") {
        return "success";
    }
    if (conclusion == "failure" || conclusion == "timed_out" || conclusion == "startup_failure") {
        return "failure";
    }
    if (conclusion == "cancelled" || conclusion == "skipped" || conclusion == "stale") {
        return "cancelled";
    }
    if (conclusion == "action_required") {
        return "queued";  // waiting for an approval
    }
    return conclusion.empty() ? "error" : conclusion;
}

/// The environment a run of this workflow deploys to, or nullopt when it is not one of
/// `workflows` (`NAME` or `NAME@ENVIRONMENT`; NAME is the workflow's name or file name).
std::optional<std::string> deploying_workflow(
    const std::vector<std::string>& workflows, const std::string& name, const std::string& path
) {
    const auto slash = path.rfind('/');
    const std::string file = slash == std::string::npos ? path : path.substr(slash + 1);
    for (const auto& w : workflows) {
        const auto at = w.rfind('@');
        const std::string wanted = at == std::string::npos ? w : w.substr(0, at);
        if (wanted == name || (!file.empty() && wanted == file)) {
            return at == std::string::npos ? std::string{} : w.substr(at + 1);
        }
    }
    return std::nullopt;
}

result<parsed_delivery> deployment_like(const json& doc, std::string_view event) {
    const json* dep = object_at(doc, "deployment");
    if (dep == nullptr) {
        return bad("deployment: missing or not an object");
    }
    const json* repo = object_at(doc, "repository");
    const std::string repository = repo == nullptr ? std::string{} : string_at(*repo, "full_name");
    if (repository.empty()) {
        return bad("repository.full_name: missing or not a string");
    }
    const std::string id = string_at(*dep, "id");
    if (id.empty()) {
        return bad("deployment.id: missing");
    }
    auto created = time_at(*dep, "created_at", "deployment");
    if (!created) {
        return created.error();
    }
    deploy_event d;
    d.provider = "github";
    d.repository = repository;
    d.subject = repository + " deployment " + id;
    d.commit = lower(string_at(*dep, "sha"));
    d.version = version_of(string_at(*dep, "ref"), d.commit);
    d.environment = string_at(*dep, "environment");
    d.started = *created;
    const json* run = object_at(doc, "workflow_run");
    if (event == "deployment") {
        d.status = "queued";
        d.at = *created;
        d.actor = login_at(*dep, "creator");
        d.url = run == nullptr ? std::string{} : string_at(*run, "html_url");
        d.event_key = "d:" + id;
    } else {
        const json* st = object_at(doc, "deployment_status");
        if (st == nullptr) {
            return bad("deployment_status: missing or not an object");
        }
        const std::string state = string_at(*st, "state");
        if (state.empty()) {
            return bad("deployment_status.state: missing or not a string");
        }
        auto at = time_at(*st, "created_at", "deployment_status");
        if (!at) {
            return at.error();
        }
        d.status = deployment_state(state);
        if (d.status.empty()) {
            return parsed_delivery{delivery_kind::ignored, "deployment_status " + state, std::nullopt};
        }
        d.at = *at;
        if (!string_at(*st, "environment").empty()) {
            d.environment = string_at(*st, "environment");
        }
        d.actor = login_at(*st, "creator");
        for (const char* k : {"log_url", "target_url", "environment_url"}) {
            if (d.url.empty()) {
                d.url = string_at(*st, k);
            }
        }
        if (d.url.empty() && run != nullptr) {
            d.url = string_at(*run, "html_url");
        }
        d.event_key = "s:" + string_at(*st, "id") + ":" + d.status + ":" + string_at(*st, "created_at");
    }
    if (d.actor.empty()) {
        d.actor = login_at(doc, "sender");
    }
    return parsed_delivery{delivery_kind::deploy, {}, std::move(d)};
}

result<parsed_delivery> workflow_run(const json& doc, const std::vector<std::string>& workflows) {
    const json* run = object_at(doc, "workflow_run");
    if (run == nullptr) {
        return bad("workflow_run: missing or not an object");
    }
    const json* repo = object_at(doc, "repository");
    const std::string repository = repo == nullptr ? std::string{} : string_at(*repo, "full_name");
    if (repository.empty()) {
        return bad("repository.full_name: missing or not a string");
    }
    const std::string name = string_at(*run, "name");
    const auto environment = deploying_workflow(workflows, name, string_at(*run, "path"));
    if (!environment) {
        return parsed_delivery{delivery_kind::ignored, "workflow_run of '" + name + "'", std::nullopt};
    }
    const std::string id = string_at(*run, "id");
    if (id.empty()) {
        return bad("workflow_run.id: missing");
    }
    auto at = time_at(*run, "updated_at", "workflow_run");
    if (!at) {
        return at.error();
    }
    deploy_event d;
    d.provider = "github";
    d.repository = repository;
    d.subject = repository + " run " + id;
    d.environment = *environment;
    d.commit = lower(string_at(*run, "head_sha"));
    d.version = version_of(string_at(*run, "head_branch"), d.commit);
    d.status = run_state(string_at(*run, "status"), string_at(*run, "conclusion"));
    d.at = *at;
    d.started = optional_time(*run, "run_started_at");
    if (!d.started) {
        d.started = optional_time(*run, "created_at");
    }
    d.actor = login_at(*run, "triggering_actor");
    if (d.actor.empty()) {
        d.actor = login_at(*run, "actor");
    }
    if (d.actor.empty()) {
        d.actor = login_at(doc, "sender");
    }
    d.url = string_at(*run, "html_url");
    d.event_key = "r:" + id + ":" + string_at(*run, "run_attempt") + ":" + d.status + ":" +
                  string_at(*run, "updated_at");
    return parsed_delivery{delivery_kind::deploy, {}, std::move(d)};
}

constexpr std::array<std::string_view, 6> statuses{
    "queued", "in_progress", "success", "failure", "error", "cancelled"};

}  // namespace

bool known_status(std::string_view status) noexcept {
    return std::find(statuses.begin(), statuses.end(), status) != statuses.end();
}

result<parsed_delivery> parse_github(
    std::string_view event, std::string_view body, const std::vector<std::string>& workflows
) {
    const json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        return bad("body is not valid JSON");
    }
    if (!doc.is_object()) {
        return bad("body is not a JSON object");
    }
    if (event == "ping") {
        return parsed_delivery{delivery_kind::ping, {}, std::nullopt};
    }
    if (event == "deployment" || event == "deployment_status") {
        return deployment_like(doc, event);
    }
    if (event == "workflow_run") {
        return workflow_run(doc, workflows);
    }
    return parsed_delivery{delivery_kind::ignored, std::string{event}, std::nullopt};
}

result<parsed_delivery> parse_generic(std::string_view body, wall_time signed_at) {
    const json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        return bad("body is not valid JSON");
    }
    if (!doc.is_object()) {
        return bad("body is not a JSON object");
    }
    deploy_event d;
    d.provider = "generic";
    d.service = string_at(doc, "service");
    if (d.service.empty()) {
        return bad("service: missing or not a string");
    }
    d.status = string_at(doc, "status");
    if (!known_status(d.status)) {
        return bad("status: must be one of queued, in_progress, success, failure, error, cancelled");
    }
    d.commit = lower(string_at(doc, "commit"));
    d.version = string_at(doc, "version");
    if (d.commit.empty() && d.version.empty()) {
        return bad("version or commit: at least one is required");
    }
    if (d.version.empty()) {
        d.version = short_sha(d.commit);
    }
    d.environment = string_at(doc, "environment");
    d.repository = string_at(doc, "repository");
    d.actor = string_at(doc, "actor");
    d.url = string_at(doc, "url");
    d.at = signed_at;
    if (doc.contains("at")) {
        auto at = time_at(doc, "at", "body");
        if (!at) {
            return at.error();
        }
        d.at = *at;
    }
    if (doc.contains("started_at")) {
        auto started = time_at(doc, "started_at", "body");
        if (!started) {
            return started.error();
        }
        d.started = *started;
    }
    const std::string id = string_at(doc, "id");
    d.subject = d.service + " " + (id.empty() ? d.version : id);
    d.event_key = "g:" + d.subject + ":" + d.status + ":" + format_rfc3339(d.at);
    return parsed_delivery{delivery_kind::deploy, {}, std::move(d)};
}

service_routes::service_routes(const std::map<std::string, service_info, std::less<>>& services) {
    for (const auto& [id, info] : services) {
        for (const auto& entry : info.github) {
            const auto at = entry.find('@');
            routes_.push_back(route{
                lower(entry.substr(0, at)),
                at == std::string::npos ? std::string{} : lower(entry.substr(at + 1)),
                id,
                info.name.empty() ? id : info.name});
        }
    }
}

service_routes::match service_routes::find(std::string_view repository, std::string_view environment) const {
    match out;
    const std::string repo = lower(std::string{repository});
    const std::string env = lower(std::string{environment});
    std::vector<std::string_view> ids;
    for (const auto& r : routes_) {
        if (r.repository != repo || (!r.environment.empty() && r.environment != env)) {
            continue;
        }
        if (out.name.empty()) {
            out.name = r.name;
        }
        if (std::find(ids.begin(), ids.end(), r.id) == ids.end()) {
            ids.push_back(r.id);
            out.ids += (out.ids.empty() ? "" : ",") + r.id;
        }
    }
    return out;
}

signal to_signal(const deploy_event& d, const service_routes& routes) {
    signal s;
    s.set_kind("deploy.ci");
    s.at = d.at;
    s.source = "deploys";
    s.subject = d.subject;
    std::string service = d.service;
    std::string ids;
    if (!d.repository.empty()) {
        auto m = routes.find(d.repository, d.environment);
        ids = std::move(m.ids);
        if (service.empty()) {
            // An unmapped repository is known by its name ("owner/api" -> "api"), which
            // `related: service` may still match against a deployment's name.
            service = !m.name.empty() ? m.name : d.repository.substr(d.repository.rfind('/') + 1);
        }
    }
    s.set("service", std::move(service));
    s.set("version", d.version);
    s.set("status", d.status);
    s.set("actor", d.actor);
    s.set("environment", d.environment);
    s.set("commit", d.commit);
    s.set("url", d.url);
    s.set("repository", d.repository);
    s.set("services", std::move(ids));
    if (d.started && *d.started <= d.at) {
        s.value = std::chrono::duration<double>(d.at - *d.started).count();
    }
    return s;
}

}  // namespace runbookd::intake::deploys
