#include "store/record.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <stdexcept>

namespace runbookd::store {

namespace {

using nlohmann::json;

constexpr std::array event_types{
    incident_event_type::triggered,
    incident_event_type::acknowledged,
    incident_event_type::unacknowledged,
    incident_event_type::resolved,
    incident_event_type::reopened,
    incident_event_type::escalated,
    incident_event_type::reassigned,
    incident_event_type::priority_updated,
    incident_event_type::annotated,
    incident_event_type::status_update_published,
};
constexpr std::array post_kinds{
    post_kind::notice,
    post_kind::update,
    post_kind::relay,
    post_kind::resolved,
    post_kind::reopened,
    post_kind::summary,
    post_kind::timeline,
    post_kind::storm,
};
constexpr std::array merge_reasons{merge_reason::storm, merge_reason::untracked};
constexpr std::array change_kinds{
    notify::change::kind::enqueued,
    notify::change::kind::replaced,
    notify::change::kind::sending,
    notify::change::kind::refused,
    notify::change::kind::delivered,
    notify::change::kind::failed,
    notify::change::kind::remember,
    notify::change::kind::forget,
};

/// The enumerator of `all` whose name is `name`; throws when none is.
template <class E, std::size_t N>
E named(const std::array<E, N>& all, const std::string& name, const char* what) {
    for (const E e : all) {
        if (to_string(e) == name) {
            return e;
        }
    }
    throw std::invalid_argument{std::string{"unknown "} + what + " '" + name + "'"};
}

channel channel_named(const std::string& name) {
    return named(std::array{channel::status, channel::operations}, name, "channel");
}

json ms(wall_time t) {
    return t.time_since_epoch().count();
}
wall_time at_ms(const json& j) {
    return wall_time{millis{j.get<long long>()}};
}

template <class T>
void put(json& j, const char* key, const std::optional<T>& v) {
    if (v) {
        j[key] = *v;
    }
}
void put_time(json& j, const char* key, const std::optional<wall_time>& v) {
    if (v) {
        j[key] = ms(*v);
    }
}
template <class T>
void take(const json& j, const char* key, std::optional<T>& v) {
    if (const auto it = j.find(key); it != j.end()) {
        v = it->get<T>();
    }
}
void take_time(const json& j, const char* key, std::optional<wall_time>& v) {
    if (const auto it = j.find(key); it != j.end()) {
        v = at_ms(*it);
    }
}
std::string text(const json& j, const char* key) {
    const auto it = j.find(key);
    return it == j.end() ? std::string{} : it->get<std::string>();
}

json facts_json(const incident_facts& f) {
    json j{{"id", f.id}};
    put(j, "number", f.number);
    put(j, "title", f.title);
    put(j, "service_id", f.service_id);
    put(j, "service_name", f.service_name);
    put(j, "priority", f.priority);
    put(j, "urgency", f.urgency);
    put(j, "url", f.url);
    put_time(j, "created_at", f.created_at);
    put(j, "assignees", f.assignees);
    put(j, "status", f.status);
    put(j, "alert_summary", f.alert_summary);
    put(j, "alert_details", f.alert_details);
    put(j, "pager", f.pager);
    put(j, "impact", f.impact);
    return j;
}

incident_facts facts_from(const json& j) {
    incident_facts f;
    f.id = j.at("id").get<std::string>();
    take(j, "number", f.number);
    take(j, "title", f.title);
    take(j, "service_id", f.service_id);
    take(j, "service_name", f.service_name);
    take(j, "priority", f.priority);
    take(j, "urgency", f.urgency);
    take(j, "url", f.url);
    take_time(j, "created_at", f.created_at);
    take(j, "assignees", f.assignees);
    take(j, "status", f.status);
    take(j, "alert_summary", f.alert_summary);
    take(j, "alert_details", f.alert_details);
    take(j, "pager", f.pager);
    take(j, "impact", f.impact);
    return f;
}

json post_json(const post& p) {
    json j{
        {"to", to_string(p.to)},
        {"kind", to_string(p.kind)},
        {"incident", p.incident_id},
        {"key", p.key},
        {"at", ms(p.at)},
        {"title", p.text.title},
        {"body", p.text.body},
    };
    if (!p.text.url.empty()) {
        j["url"] = p.text.url;
    }
    if (p.text.color != 0) {
        j["color"] = p.text.color;
    }
    if (!p.text.footer.empty()) {
        j["footer"] = p.text.footer;
    }
    if (p.coalescible) {
        j["coalescible"] = true;
    }
    if (!p.edit_of.empty()) {
        j["edit_of"] = p.edit_of;
    }
    for (const auto& m : p.merged) {
        j["merged"].push_back(json::array({to_string(m.kind), to_string(m.reason), m.count}));
    }
    return j;
}

post post_from(const json& j) {
    post p;
    p.to = channel_named(j.at("to").get<std::string>());
    p.kind = named(post_kinds, j.at("kind").get<std::string>(), "post kind");
    p.incident_id = text(j, "incident");
    p.key = j.at("key").get<std::string>();
    p.at = at_ms(j.at("at"));
    p.text.title = text(j, "title");
    p.text.body = text(j, "body");
    p.text.url = text(j, "url");
    p.text.color = j.value("color", std::uint32_t{0});
    p.text.footer = text(j, "footer");
    p.coalescible = j.value("coalescible", false);
    p.edit_of = text(j, "edit_of");
    if (const auto it = j.find("merged"); it != j.end()) {
        for (const auto& m : *it) {
            p.merged.push_back(merged_posts{
                named(post_kinds, m.at(0).get<std::string>(), "post kind"),
                named(merge_reasons, m.at(1).get<std::string>(), "merge reason"),
                m.at(2).get<std::size_t>()});
        }
    }
    return p;
}

struct input_encoder {
    json& j;
    void operator()(const incident_event& ev) const {
        j["event"] = to_string(ev.type);
        j["event_id"] = ev.event_id;
        put_time(j, "occurred_at", ev.occurred_at);
        if (!ev.agent.empty()) {
            j["agent"] = ev.agent;
        }
        if (!ev.message.empty()) {
            j["message"] = ev.message;
        }
        j["incident"] = facts_json(ev.incident);
        if (ev.origin == event_origin::reconciliation) {
            j["origin"] = "reconciliation";
        }
        put_time(j, "as_of", ev.as_of);
    }
    void operator()(const signal& s) const {
        j["signal"] = s.kind;
        j["signal_at"] = ms(s.at);
        put(j, "value", s.value);
        j["labels"] = s.values;
        j["subject"] = s.subject;
        j["source"] = s.source;
        if (s.seen) {
            j["seen"] = true;
        }
    }
    void operator()(const source_report& r) const {
        j["report"] = r.source;
        j["state"] = to_string(r.status.state);
        if (!r.status.error.empty()) {
            j["error"] = r.status.error;
        }
        j["since"] = ms(r.status.since);
        if (r.status.pending) {
            j["pending"] = true;
        }
    }
    void operator()(const tick&) const { j["tick"] = true; }
    void operator()(const evidence_gathered& g) const {
        j["gathered"] = g.incident;
        j["epoch"] = g.epoch;
    }
};

input input_from(const json& j) {
    input in;
    in.at = at_ms(j.at("at"));
    if (const auto it = j.find("event"); it != j.end()) {
        incident_event ev;
        ev.type = named(event_types, it->get<std::string>(), "event type");
        ev.event_id = text(j, "event_id");
        take_time(j, "occurred_at", ev.occurred_at);
        ev.agent = text(j, "agent");
        ev.message = text(j, "message");
        ev.incident = facts_from(j.at("incident"));
        ev.origin =
            text(j, "origin") == "reconciliation" ? event_origin::reconciliation : event_origin::webhook;
        take_time(j, "as_of", ev.as_of);
        in.what = std::move(ev);
    } else if (const auto sig = j.find("signal"); sig != j.end()) {
        signal s;
        const auto kind = sig->get<std::string>();
        if (!s.set_kind(kind)) {
            throw std::invalid_argument{"unknown signal kind '" + kind + "'"};
        }
        auto labels = j.at("labels").get<std::vector<std::string>>();
        labels.resize(s.values.size());
        s.values = std::move(labels);
        s.at = at_ms(j.at("signal_at"));
        take(j, "value", s.value);
        s.subject = text(j, "subject");
        s.source = text(j, "source");
        s.seen = j.value("seen", false);
        in.what = std::move(s);
    } else if (const auto rep = j.find("report"); rep != j.end()) {
        source_report r;
        r.source = rep->get<std::string>();
        r.status.state = text(j, "state") == "failing" ? source_state::failing : source_state::healthy;
        r.status.error = text(j, "error");
        r.status.since = at_ms(j.at("since"));
        r.status.pending = j.value("pending", false);
        in.what = std::move(r);
    } else if (j.contains("tick")) {
        in.what = tick{};
    } else if (const auto g = j.find("gathered"); g != j.end()) {
        in.what = evidence_gathered{g->get<std::string>(), j.at("epoch").get<int>()};
    } else {
        throw std::invalid_argument{"an input of no known kind"};
    }
    return in;
}

}  // namespace

std::string encode(const record& r) {
    json j;
    if (const auto* in = std::get_if<input>(&r)) {
        j["at"] = ms(in->at);
        std::visit(input_encoder{j}, in->what);
    } else {
        const auto& c = std::get<notify::change>(r);
        j["change"] = to_string(c.what);
        j["to"] = to_string(c.to);
        if (!c.keys.empty()) {
            j["keys"] = c.keys;
        }
        if (c.p) {
            j["post"] = post_json(*c.p);
        }
        if (!c.message_id.empty()) {
            j["message_id"] = c.message_id;
        }
        if (!c.reason.empty()) {
            j["reason"] = c.reason;
        }
    }
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

record record_from(const json& j) {
    if (!j.is_object()) {
        throw std::invalid_argument{"not a JSON object"};
    }
    if (const auto it = j.find("change"); it != j.end()) {
        notify::change c;
        c.what = named(change_kinds, it->get<std::string>(), "outbox change");
        c.to = channel_named(j.at("to").get<std::string>());
        if (const auto k = j.find("keys"); k != j.end()) {
            c.keys = k->get<std::vector<std::string>>();
        }
        if (const auto p = j.find("post"); p != j.end()) {
            c.p = post_from(*p);
        }
        c.message_id = text(j, "message_id");
        c.reason = text(j, "reason");
        return record{std::move(c)};
    }
    return record{input_from(j)};
}

}  // namespace

decoded decode(std::string_view text_in) {
    try {
        return {record_from(json::parse(text_in)), {}};
    } catch (const std::exception& e) {
        return {std::nullopt, e.what()};
    }
}

decoded_group decode_group(std::string_view text_in) {
    decoded_group out;
    try {
        const json j = json::parse(text_in);
        if (!j.is_array()) {
            out.values.push_back(record_from(j));
            return out;
        }
        for (const auto& item : j) {
            out.values.push_back(record_from(item));
        }
    } catch (const std::exception& e) {
        out.values.clear();
        out.error = e.what();
    }
    return out;
}

}  // namespace runbookd::store
