#include "intake/alertmanager/parse.hpp"

#include "crypto/digest.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace runbookd::intake::alertmanager {
namespace {

using json = nlohmann::json;

/// Labels of the first alert passed on as the incident's details (#operations), at most.
constexpr std::size_t max_details = 16;
constexpr std::size_t max_detail_chars = 200;

failure bad(std::string what) {
    return make_failure(errc::parse_failed, std::move(what));
}

std::optional<std::string> string_at(const json& obj, const char* key) {
    const auto it = obj.find(key);
    if (it == obj.end() || !it->is_string()) {
        return std::nullopt;
    }
    return it->get<std::string>();
}

/// A label or annotation map: string to string. Absent or null is empty.
result<label_set> read_set(const json& obj, const char* key, const std::string& where) {
    label_set out;
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
        return out;
    }
    if (!it->is_object()) {
        return bad(where + key + ": expected an object of strings");
    }
    out.reserve(it->size());
    for (const auto& [k, v] : it->items()) {
        if (!v.is_string()) {
            return bad(where + key + "." + k + ": expected a string");
        }
        out.emplace_back(k, v.get<std::string>());
    }
    return out;
}

/// Go's zero time.Time ("0001-01-01T00:00:00Z") means "not set"; so does any time before 1970.
std::optional<wall_time> read_time(const json& obj, const char* key) {
    const auto text = string_at(obj, key);
    if (!text) {
        return std::nullopt;
    }
    auto t = parse_rfc3339(*text);
    if (!t || *t <= wall_time{}) {
        return std::nullopt;
    }
    return t;
}

const std::string* find(const label_set& set, std::string_view key) {
    for (const auto& [k, v] : set) {
        if (k == key) {
            return &v;
        }
    }
    return nullptr;
}

/// The first non-empty `summary` or `title` annotation.
const std::string* title_in(const label_set& annotations) {
    for (const char* key : {"summary", "title"}) {
        if (const auto* v = find(annotations, key); v != nullptr && !v->empty()) {
            return v;
        }
    }
    return nullptr;
}

bool is_status(const std::string& s) {
    return s == "firing" || s == "resolved";
}

std::string clip(const std::string& s, std::size_t n) {
    if (s.size() <= n) {
        return s;
    }
    std::size_t cut = n;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0U) == 0x80U) {
        --cut;  // never split a UTF-8 sequence
    }
    return s.substr(0, cut) + "\u2026";
}

}  // namespace

result<notification> parse_notification(std::string_view body) {
    // Subtrees the mapping never reads are skipped while parsing: most of a body's bytes are
    // generatorURL, and Grafana's Alertmanager-compatible payload adds more.
    const json::parser_callback_t skip_unused = [](int /*depth*/, json::parse_event_t event, json& parsed) {
        if (event != json::parse_event_t::key) {
            return true;
        }
        const auto& key = parsed.get_ref<const std::string&>();
        return key != "generatorURL" && key != "silenceURL" && key != "dashboardURL" && key != "panelURL" &&
               key != "values" && key != "valueString";
    };
    json doc = json::parse(body, skip_unused, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        return bad("body is not valid JSON");
    }
    if (!doc.is_object()) {
        return bad("body: expected a JSON object");
    }
    notification n;
    auto version = string_at(doc, "version");
    if (!version) {
        return bad("version: missing or not a string (Alertmanager sends \"4\")");
    }
    n.version = std::move(*version);
    if (n.version != supported_version) {
        return n;
    }
    auto status = string_at(doc, "status");
    if (!status || !is_status(*status)) {
        return bad("status: expected \"firing\" or \"resolved\"");
    }
    n.status = std::move(*status);
    auto key = string_at(doc, "groupKey");
    if (!key || key->empty()) {
        return bad("groupKey: missing or not a string");
    }
    n.group_key = std::move(*key);
    n.receiver = string_at(doc, "receiver").value_or("");
    n.external_url = string_at(doc, "externalURL").value_or("");
    for (auto [field, name] : std::array<std::pair<label_set*, const char*>, 3>{
             {{&n.group_labels, "groupLabels"},
              {&n.common_labels, "commonLabels"},
              {&n.common_annotations, "commonAnnotations"}}}) {
        auto set = read_set(doc, name, "");
        if (!set) {
            return set.error();
        }
        *field = std::move(*set);
    }
    if (const auto it = doc.find("truncatedAlerts"); it != doc.end() && it->is_number_integer()) {
        n.truncated_alerts = it->get<long long>();
    }
    const auto alerts = doc.find("alerts");
    if (alerts == doc.end() || !alerts->is_array()) {
        return bad("alerts: missing or not a list");
    }
    n.alerts.reserve(alerts->size());
    for (std::size_t i = 0; i < alerts->size(); ++i) {
        const json& a = (*alerts)[i];
        const std::string where = "alerts[" + std::to_string(i) + "].";
        if (!a.is_object()) {
            return bad("alerts[" + std::to_string(i) + "]: expected an object");
        }
        alert out;
        auto st = string_at(a, "status");
        if (!st || !is_status(*st)) {
            return bad(where + "status: expected \"firing\" or \"resolved\"");
        }
        out.status = std::move(*st);
        auto labels = read_set(a, "labels", where);
        if (!labels) {
            return labels.error();
        }
        out.labels = std::move(*labels);
        auto annotations = read_set(a, "annotations", where);
        if (!annotations) {
            return annotations.error();
        }
        out.annotations = std::move(*annotations);
        out.starts_at = read_time(a, "startsAt");
        out.ends_at = read_time(a, "endsAt");
        out.fingerprint = string_at(a, "fingerprint").value_or("");
        n.alerts.push_back(std::move(out));
    }
    if (n.alerts.empty()) {
        return bad("alerts: empty (a notification is about at least one alert)");
    }
    return n;
}

std::vector<service_route> routes_from(const std::map<std::string, service_info, std::less<>>& services) {
    std::vector<service_route> out;
    for (const auto& [id, info] : services) {
        const auto& texts = info.alertmanager;
        service_route r{id, {}};
        for (const auto& t : texts) {
            if (auto m = parse_label_matcher(t); m.matcher) {
                r.matchers.push_back(std::move(*m.matcher));
            }
        }
        // A route whose matchers did not all parse would match more than was written.
        if (!r.matchers.empty() && r.matchers.size() == texts.size()) {
            out.push_back(std::move(r));
        }
    }
    return out;
}

std::string group_id(std::string_view group_key) {
    return "am-" + crypto::sha256_hex(group_key).substr(0, 16);
}

namespace {

/// The alerts a state is about: the firing ones while the group fires, else all.
std::vector<const alert*> current_alerts(const notification& n) {
    const bool firing = n.status == "firing";
    std::vector<const alert*> current;
    for (const auto& a : n.alerts) {
        if (!firing || a.status == "firing") {
            current.push_back(&a);
        }
    }
    if (current.empty()) {
        for (const auto& a : n.alerts) {
            current.push_back(&a);
        }
    }
    return current;
}

}  // namespace

group_state state_of(const notification& n) {
    group_state out;
    out.group_id = group_id(n.group_key);
    // The same alerts in the same episode give the same key, whatever their order.
    const auto current = current_alerts(n);
    std::vector<std::string> ids;
    ids.reserve(current.size());
    for (const auto* a : current) {
        std::string id = a->fingerprint;
        if (id.empty()) {
            for (const auto& [k, v] : a->labels) {
                id += k + "=" + v + "\x1f";
            }
        }
        id += "@" + (a->starts_at ? std::to_string(a->starts_at->time_since_epoch().count()) : std::string{});
        ids.push_back(std::move(id));
    }
    std::sort(ids.begin(), ids.end());
    std::string joined = n.status;
    for (const auto& id : ids) {
        joined += "\n" + id;
    }
    out.state_key = n.status + "-" + crypto::sha256_hex(joined).substr(0, 16);
    return out;
}

translated translate(const notification& n, const mapping& m) {
    translated out;
    auto state = state_of(n);
    out.group_id = std::move(state.group_id);
    out.state_key = std::move(state.state_key);
    const bool firing = n.status == "firing";
    const auto current = current_alerts(n);

    incident_event& ev = out.event;
    ev.type = firing ? incident_event_type::triggered : incident_event_type::resolved;
    ev.event_id = out.group_id + "/" + out.state_key;
    incident_facts& f = ev.incident;
    f.id = out.group_id;
    f.status = firing ? "triggered" : "resolved";

    // Time from the world: the group started when its earliest current alert started; it
    // ended when its last alert ended.
    std::optional<wall_time> started;
    std::optional<wall_time> ended;
    for (const auto* a : current) {
        if (a->starts_at && (!started || *a->starts_at < *started)) {
            started = a->starts_at;
        }
        if (a->ends_at && (!ended || *a->ends_at > *ended)) {
            ended = a->ends_at;
        }
    }
    if (firing) {
        ev.occurred_at = started;
        f.created_at = started;
    } else {
        ev.occurred_at = ended;
    }

    const alert& first = *current.front();
    if (const auto* t = title_in(n.common_annotations)) {
        f.title = *t;
    } else if (const auto* ft = title_in(first.annotations)) {
        f.title = current.size() > 1 ? *ft + " (+" + std::to_string(current.size() - 1) + " more)" : *ft;
    } else if (const auto* name = find(n.common_labels, "alertname")) {
        f.title = *name;
    } else if (const auto* an = find(first.labels, "alertname")) {
        f.title = *an;
    }
    if (!n.external_url.empty()) {
        f.url = n.external_url;
    }

    const std::string* severity = find(n.common_labels, m.severity_label);
    if (severity == nullptr) {
        severity = find(first.labels, m.severity_label);
    }
    if (severity != nullptr && !severity->empty()) {
        const auto p = std::find_if(m.priorities.begin(), m.priorities.end(), [&](const auto& kv) {
            return kv.first == *severity;
        });
        f.priority = p != m.priorities.end() ? p->second : *severity;
    }

    // The service: the labels every alert shares first, then each current alert's own.
    const auto service_for = [&](const label_set& labels) -> const service_route* {
        for (const auto& r : m.services) {
            if (matches_all(r.matchers, labels)) {
                return &r;
            }
        }
        return nullptr;
    };
    const service_route* route = service_for(n.common_labels);
    for (std::size_t i = 0; route == nullptr && i < current.size(); ++i) {
        route = service_for(current[i]->labels);
    }
    if (route != nullptr) {
        out.mapped = true;
        f.service_id = route->id;
    }

    // For #operations: what the alert says, and its labels.
    if (const auto* d = find(n.common_annotations, "description")) {
        f.alert_summary = clip(*d, 1000);
    } else if (const auto* fd = find(first.annotations, "description")) {
        f.alert_summary = clip(*fd, 1000);
    }
    std::vector<std::pair<std::string, std::string>> details;
    for (const auto& [k, v] : first.labels) {
        if (details.size() == max_details) {
            break;
        }
        details.emplace_back(clip(k, max_detail_chars), clip(v, max_detail_chars));
    }
    f.alert_details = std::move(details);
    return out;
}

}  // namespace runbookd::intake::alertmanager
