#include "intake/alertmanager/parse.hpp"

#include "crypto/digest.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <simdjson.h>

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

/// Keys whose values the mapping never reads, at any depth; parse_notification drops them
/// while parsing (and so does not check what they hold beyond its being JSON).
bool skipped_key(std::string_view key) {
    return key == "generatorURL" || key == "silenceURL" || key == "dashboardURL" || key == "panelURL" ||
           key == "values" || key == "valueString";
}

bool is_status(std::string_view s) {
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
        return !skipped_key(parsed.get_ref<const std::string&>());
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

/// The alerts a state is about: the firing ones while the group fires, else all. `Alert` is
/// a parsed alert or the fast pass's peeked_alert: both have a `status`.
template <class Alert>
std::vector<const Alert*> current_of(std::string_view group_status, const std::vector<Alert>& alerts) {
    const bool firing = group_status == "firing";
    std::vector<const Alert*> current;
    for (const auto& a : alerts) {
        if (!firing || a.status == "firing") {
            current.push_back(&a);
        }
    }
    if (current.empty()) {
        for (const auto& a : alerts) {
            current.push_back(&a);
        }
    }
    return current;
}

std::vector<const alert*> current_alerts(const notification& n) {
    return current_of(n.status, n.alerts);
}

/// One alert in a state key: its fingerprint (its labels when it has none) and when it started.
std::string alert_id(
    std::string_view fingerprint, const label_set& labels, std::optional<wall_time> starts_at
) {
    std::string id{fingerprint};
    if (id.empty()) {
        for (const auto& [k, v] : labels) {
            id += k + "=" + v + "\x1f";
        }
    }
    id += "@" + (starts_at ? std::to_string(starts_at->time_since_epoch().count()) : std::string{});
    return id;
}

/// The same alerts in the same episode give the same key, whatever their order.
std::string state_key(std::string_view status, std::vector<std::string> ids) {
    std::sort(ids.begin(), ids.end());
    std::string joined{status};
    for (const auto& id : ids) {
        joined += "\n" + id;
    }
    return std::string{status} + "-" + crypto::sha256_hex(joined).substr(0, 16);
}

}  // namespace

group_state state_of(const notification& n) {
    group_state out;
    out.group_id = group_id(n.group_key);
    const auto current = current_alerts(n);
    std::vector<std::string> ids;
    ids.reserve(current.size());
    for (const auto* a : current) {
        ids.push_back(alert_id(a->fingerprint, a->labels, a->starts_at));
    }
    out.state_key = state_key(n.status, std::move(ids));
    return out;
}

// --- the fast pass -------------------------------------------------------------------------

namespace {

namespace od = simdjson::ondemand;

/// Bodies larger than this are parsed in full: the thread's parser keeps the capacity of the
/// largest body it has read.
constexpr std::size_t max_peek_bytes = std::size_t{1} << 20;
/// Deeper nesting than Alertmanager's (4 levels) is left to the full parse.
constexpr int max_peek_depth = 32;

/// An alert as the state key needs it. The views point into the parser's string buffer,
/// valid until the thread's parser reads another body.
struct peeked_alert {
    std::string_view status;
    std::string_view fingerprint;
    std::optional<wall_time> starts_at;
};

/// Bits for the keys read, so that a repeated one (nlohmann keeps the last, and checks only
/// that one) is left to the full parse.
bool first_time(unsigned& seen, unsigned bit) {
    if ((seen & bit) != 0) {
        return false;
    }
    seen |= bit;
    return true;
}

/// Checks a value that is not read as nlohmann's parser would: that all of it is JSON.
/// On-Demand checks only what is read, so every string, number and literal is read here.
bool valid_json(od::value v, int depth) {
    od::json_type type{};
    if (depth > max_peek_depth || v.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    switch (type) {
        case od::json_type::object: {
            od::object o;
            if (v.get_object().get(o) != simdjson::SUCCESS) {
                return false;
            }
            for (auto field : o) {
                std::string_view key;
                od::value x;
                if (field.unescaped_key().get(key) != simdjson::SUCCESS ||
                    field.value().get(x) != simdjson::SUCCESS || !valid_json(x, depth + 1)) {
                    return false;
                }
            }
            return true;
        }
        case od::json_type::array: {
            od::array a;
            if (v.get_array().get(a) != simdjson::SUCCESS) {
                return false;
            }
            for (auto element : a) {
                od::value x;
                if (element.get(x) != simdjson::SUCCESS || !valid_json(x, depth + 1)) {
                    return false;
                }
            }
            return true;
        }
        case od::json_type::string: {
            std::string_view s;
            return v.get_string().get(s) == simdjson::SUCCESS;
        }
        case od::json_type::number: {
            od::number n;
            return v.get_number().get(n) == simdjson::SUCCESS;
        }
        case od::json_type::boolean: {
            bool b = false;
            return v.get_bool().get(b) == simdjson::SUCCESS;
        }
        case od::json_type::null: {
            bool null = false;
            return v.is_null().get(null) == simdjson::SUCCESS && null;
        }
    }
    return false;
}

/// A label or annotation set as read_set accepts it: null, or an object of strings (values
/// under skipped keys only need to be JSON).
bool valid_set(od::value v, int depth) {
    od::json_type type{};
    if (v.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    if (type == od::json_type::null) {
        return valid_json(v, depth);
    }
    od::object o;
    if (type != od::json_type::object || v.get_object().get(o) != simdjson::SUCCESS) {
        return false;
    }
    for (auto field : o) {
        std::string_view key;
        od::value x;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS ||
            field.value().get(x) != simdjson::SUCCESS) {
            return false;
        }
        std::string_view text;
        if (skipped_key(key) ? !valid_json(x, depth + 1) : x.get_string().get(text) != simdjson::SUCCESS) {
            return false;
        }
    }
    return true;
}

bool read_string(od::value v, std::string_view& out) {
    return v.get_string().get(out) == simdjson::SUCCESS;
}

std::optional<peeked_alert> peek_alert(od::value v) {
    od::object o;
    if (v.get_object().get(o) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    peeked_alert out;
    unsigned seen = 0;
    for (auto field : o) {
        std::string_view key;
        od::value x;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS ||
            field.value().get(x) != simdjson::SUCCESS) {
            return std::nullopt;
        }
        bool ok = true;
        if (key == "status") {
            ok = first_time(seen, 1U) && read_string(x, out.status) && is_status(out.status);
        } else if (key == "fingerprint") {
            ok = first_time(seen, 2U) && read_string(x, out.fingerprint) && !out.fingerprint.empty();
        } else if (key == "startsAt") {
            ok = first_time(seen, 4U);
            od::json_type type{};
            if (ok && x.type().get(type) == simdjson::SUCCESS && type == od::json_type::string) {
                std::string_view text;
                ok = read_string(x, text);
                if (auto t = parse_rfc3339(text); ok && t && *t > wall_time{}) {
                    out.starts_at = t;
                }
            } else {
                ok = ok && valid_json(x, 2);
            }
        } else if (key == "labels" || key == "annotations") {
            ok = first_time(seen, key == "labels" ? 8U : 16U) && valid_set(x, 2);
        } else {
            ok = valid_json(x, 2);
        }
        if (!ok) {
            return std::nullopt;
        }
    }
    if ((seen & 3U) != 3U) {  // no status (refused) or no fingerprint (keyed by labels)
        return std::nullopt;
    }
    return out;
}

}  // namespace

std::optional<group_state> peek_state(std::string_view body) {
    if (body.size() > max_peek_bytes) {
        return std::nullopt;
    }
    thread_local od::parser parser;
    thread_local std::string padded;
    padded.assign(body);
    padded.append(simdjson::SIMDJSON_PADDING, ' ');
    od::document doc;
    od::object root;
    std::string_view raw;
    if (parser.iterate(padded.data(), body.size(), padded.size()).get(doc) != simdjson::SUCCESS ||
        doc.get_object().get(root) != simdjson::SUCCESS || root.raw_json().get(raw) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    // Nothing but whitespace after the object: On-Demand stops reading at its end.
    const auto end = static_cast<std::size_t>(raw.data() + raw.size() - padded.data());
    if (end > body.size() || body.find_first_not_of(" \t\n\r", end) != std::string_view::npos) {
        return std::nullopt;
    }
    doc.rewind();
    if (doc.get_object().get(root) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::string_view version;
    std::string_view status;
    std::string_view key;
    std::vector<peeked_alert> alerts;
    unsigned seen = 0;
    for (auto field : root) {
        std::string_view name;
        od::value v;
        if (field.unescaped_key().get(name) != simdjson::SUCCESS ||
            field.value().get(v) != simdjson::SUCCESS) {
            return std::nullopt;
        }
        bool ok = true;
        if (name == "version") {
            ok = first_time(seen, 1U) && read_string(v, version) && version == supported_version;
        } else if (name == "status") {
            ok = first_time(seen, 2U) && read_string(v, status) && is_status(status);
        } else if (name == "groupKey") {
            ok = first_time(seen, 4U) && read_string(v, key) && !key.empty();
        } else if (name == "alerts") {
            od::array list;
            if (!first_time(seen, 8U) || v.get_array().get(list) != simdjson::SUCCESS) {
                return std::nullopt;
            }
            for (auto element : list) {
                od::value a;
                if (element.get(a) != simdjson::SUCCESS) {
                    return std::nullopt;
                }
                auto one = peek_alert(a);
                if (!one) {
                    return std::nullopt;
                }
                alerts.push_back(*one);
            }
        } else if (name == "groupLabels" || name == "commonLabels" || name == "commonAnnotations") {
            const unsigned bit = name == "groupLabels" ? 16U : name == "commonLabels" ? 32U : 64U;
            ok = first_time(seen, bit) && valid_set(v, 1);
        } else {
            ok = valid_json(v, 1);
        }
        if (!ok) {
            return std::nullopt;
        }
    }
    if ((seen & 15U) != 15U || alerts.empty()) {
        return std::nullopt;
    }
    group_state out;
    out.group_id = group_id(key);
    const auto current = current_of(status, alerts);
    std::vector<std::string> ids;
    ids.reserve(current.size());
    static const label_set no_labels;
    for (const auto* a : current) {
        ids.push_back(alert_id(a->fingerprint, no_labels, a->starts_at));
    }
    out.state_key = state_key(status, std::move(ids));
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
    f.pager = "Alertmanager";
    if (const auto* i = find(n.common_annotations, "impact")) {
        f.impact = clip(*i, 1000);
    } else if (const auto* fi = find(first.annotations, "impact")) {
        f.impact = clip(*fi, 1000);
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
