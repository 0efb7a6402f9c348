#include "intake/pagerduty/parse.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <utility>

namespace runbookd::intake::pagerduty {
namespace {

using json = nlohmann::json;

constexpr std::array<std::pair<std::string_view, incident_event_type>, 10> incident_types{{
    {"incident.triggered", incident_event_type::triggered},
    {"incident.acknowledged", incident_event_type::acknowledged},
    {"incident.unacknowledged", incident_event_type::unacknowledged},
    {"incident.resolved", incident_event_type::resolved},
    {"incident.reopened", incident_event_type::reopened},
    {"incident.escalated", incident_event_type::escalated},
    {"incident.reassigned", incident_event_type::reassigned},
    {"incident.priority_updated", incident_event_type::priority_updated},
    {"incident.annotated", incident_event_type::annotated},
    {"incident.status_update_published", incident_event_type::status_update_published},
}};

/// Documented V3 types we accept and do not act on (api-facts §1.1 "Event Types").
bool documented_but_ignored(std::string_view type) {
    return type.starts_with("incident.") || type.starts_with("service.");
}

failure bad(std::string what) {
    return make_failure(errc::parse_failed, std::move(what));
}

std::optional<std::string> string_at(const json& obj, const char* key) {
    if (!obj.is_object()) {
        return std::nullopt;
    }
    const auto it = obj.find(key);
    if (it == obj.end() || !it->is_string()) {
        return std::nullopt;
    }
    return it->get<std::string>();
}

incident_facts facts_from_incident(const json& data) {
    incident_facts f;
    f.id = string_at(data, "id").value_or("");
    if (const auto it = data.find("number"); it != data.end() && it->is_number_integer()) {
        f.number = it->get<long long>();
    }
    f.title = string_at(data, "title");
    f.url = string_at(data, "html_url");
    f.urgency = string_at(data, "urgency");
    f.status = string_at(data, "status");
    if (const auto created = string_at(data, "created_at")) {
        f.created_at = parse_rfc3339(*created);
    }
    if (const auto it = data.find("service"); it != data.end() && it->is_object()) {
        f.service_id = string_at(*it, "id");
        f.service_name = string_at(*it, "summary");
    }
    if (const auto it = data.find("priority"); it != data.end()) {
        // A null priority is "none": clear it rather than keep a stale one.
        f.priority = it->is_object() ? string_at(*it, "summary").value_or("") : std::string{};
    }
    if (const auto it = data.find("assignees"); it != data.end() && it->is_array()) {
        std::vector<std::string> names;
        for (const auto& a : *it) {
            if (auto name = string_at(a, "summary")) {
                names.push_back(std::move(*name));
            }
        }
        f.assignees = std::move(names);
    }
    return f;
}

incident_facts facts_from_reference(const json& ref) {
    incident_facts f;
    f.id = string_at(ref, "id").value_or("");
    f.url = string_at(ref, "html_url");
    return f;
}

/// Subtrees of a V3 payload the engine never reads; skipping them while parsing saves
/// building most of the document (every reference carries self/html_url/type/summary).
bool unused_key(const std::string& key) {
    static const std::array<std::string_view, 9> unused{
        "escalation_policy",
        "teams",
        "conference_bridge",
        "incident_type",
        "self",
        "incident_key",
        "resolve_reason",
        "client",
        "resource_type",
    };
    return std::find(unused.begin(), unused.end(), key) != unused.end();
}

}  // namespace

result<parsed_webhook> parse_webhook(std::string_view body) {
    const json::parser_callback_t skip_unused = [](int /*depth*/, json::parse_event_t event, json& parsed) {
        return event != json::parse_event_t::key || !unused_key(parsed.get_ref<const std::string&>());
    };
    json doc = json::parse(body, skip_unused, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        return bad("body is not valid JSON");
    }
    if (!doc.is_object() || !doc.contains("event") || !doc["event"].is_object()) {
        return bad("event: missing or not an object");
    }
    const json& ev = doc["event"];
    parsed_webhook out;
    auto id = string_at(ev, "id");
    if (!id || id->empty()) {
        return bad("event.id: missing or not a string");
    }
    auto type = string_at(ev, "event_type");
    if (!type || type->empty()) {
        return bad("event.event_type: missing or not a string");
    }
    out.event_id = std::move(*id);
    out.event_type = std::move(*type);
    if (const auto at = string_at(ev, "occurred_at")) {
        out.occurred_at = parse_rfc3339(*at);
    }

    if (out.event_type == "pagey.ping") {
        out.kind = payload_kind::ping;
        return out;
    }
    const auto* const known = std::find_if(incident_types.begin(), incident_types.end(), [&](const auto& p) {
        return p.first == out.event_type;
    });
    if (known == incident_types.end()) {
        out.kind = documented_but_ignored(out.event_type) ? payload_kind::ignored : payload_kind::unknown;
        return out;
    }

    const auto data_it = ev.find("data");
    if (data_it == ev.end() || !data_it->is_object()) {
        return bad("event.data: missing or not an object");
    }
    const json& data = *data_it;
    const auto data_type = string_at(data, "type").value_or("");

    incident_event result;
    result.type = known->second;
    result.event_id = out.event_id;
    result.occurred_at = out.occurred_at;
    if (const auto agent = ev.find("agent"); agent != ev.end() && agent->is_object()) {
        result.agent = string_at(*agent, "summary").value_or("");
    }
    if (data_type == "incident") {
        result.incident = facts_from_incident(data);
    } else if (const auto ref = data.find("incident"); ref != data.end() && ref->is_object()) {
        result.incident = facts_from_reference(*ref);
        if (data_type == "incident_note") {
            result.message = string_at(data, "content").value_or("");
        } else if (data_type == "incident_status_update") {
            result.message = string_at(data, "message").value_or("");
        }
    }
    if (result.incident.id.empty()) {
        return bad("event.data: no incident id (data.id or data.incident.id)");
    }
    out.kind = payload_kind::incident;
    out.event = std::move(result);
    return out;
}

}  // namespace runbookd::intake::pagerduty
