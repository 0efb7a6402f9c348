#include "sources/pagerduty_api/parse.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace runbookd::sources::pagerduty_api {
namespace {

using json = nlohmann::json;

failure bad(std::string what) {
    return make_failure(errc::parse_failed, "pagerduty api: " + std::move(what));
}

std::string text(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return {};
    }
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

const json& field(const json& j, std::string_view key) {
    static const json none;
    if (!j.is_object()) {
        return none;
    }
    const auto it = j.find(key);
    return it != j.end() ? *it : none;
}

std::optional<wall_time> time_at(const json& j, std::string_view key) {
    const std::string t = text(j, key);
    return t.empty() ? std::nullopt : parse_rfc3339(t);
}

/// At most `n` bytes, cut at a UTF-8 boundary.
std::string bounded(std::string s, std::size_t n) {
    if (s.size() <= n) {
        return s;
    }
    std::size_t end = n;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0U) == 0x80U) {
        --end;
    }
    s.resize(end);
    return s;
}

bool known_status(const std::string& s) {
    return s == "triggered" || s == "acknowledged" || s == "resolved";
}

std::optional<json> parse_json(std::string_view body) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded()) {
        return std::nullopt;
    }
    return j;
}

/// One page of a list endpoint (`GET /incidents`, `/log_entries`, `/maintenance_windows`):
/// the array under `key` and `more`.
struct listing {
    json doc;
    std::string key;
    bool more = false;
    const json& items() const { return field(doc, key); }
};

/// `what` names the list in errors ("the incident list").
result<listing> read_listing(std::string_view body, std::string_view key, std::string_view what) {
    auto j = parse_json(body);
    if (!j || !j->is_object()) {
        return bad(std::string{what} + " is not a JSON object");
    }
    if (!field(*j, key).is_array()) {
        return bad(std::string{what} + " has no \"" + std::string{key} + "\" array");
    }
    const bool more = field(*j, "more").is_boolean() && field(*j, "more").get<bool>();
    return listing{std::move(*j), std::string{key}, more};
}

/// nullopt when `j` lacks a usable id or status.
std::optional<api_incident> incident_from(const json& j) {
    if (!j.is_object()) {
        return std::nullopt;
    }
    api_incident inc;
    inc.id = text(j, "id");
    inc.status = text(j, "status");
    if (!valid_id(inc.id) || !known_status(inc.status)) {
        return std::nullopt;
    }
    if (const auto& n = field(j, "incident_number"); n.is_number_integer()) {
        inc.number = n.get<long long>();
    }
    inc.title = bounded(text(j, "title"), max_summary);
    inc.url = text(j, "html_url");
    inc.created_at = time_at(j, "created_at");
    inc.last_status_change_at = time_at(j, "last_status_change_at");
    inc.resolved_at = time_at(j, "resolved_at");
    const json& service = field(j, "service");
    inc.service_id = text(service, "id");
    inc.service_name = bounded(text(service, "summary"), 200);
    inc.priority = bounded(text(field(j, "priority"), "summary"), 50);
    inc.urgency = bounded(text(j, "urgency"), 20);
    if (const auto& assignments = field(j, "assignments"); assignments.is_array()) {
        for (const auto& a : assignments) {
            if (auto who = text(field(a, "assignee"), "summary"); !who.empty() && inc.assignees.size() < 20) {
                inc.assignees.push_back(bounded(std::move(who), 100));
            }
        }
    }
    if (const auto& acks = field(j, "acknowledgements"); acks.is_array()) {
        for (const auto& a : acks) {
            if (auto who = text(field(a, "acknowledger"), "summary"); !who.empty()) {
                inc.acknowledged_by = bounded(std::move(who), 100);
            }
        }
    }
    return inc;
}

/// Percent-encodes all but RFC 3986's unreserved characters: `statuses[]` goes as
/// `statuses%5B%5D` (brackets are not allowed raw in a query; PagerDuty decodes them).
void append_encoded(std::string& url, std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
            c == '_' || c == '.' || c == '~') {
            url += c;
        } else {
            url += '%';
            url += hex[u >> 4U];
            url += hex[u & 0xFU];
        }
    }
}

void append_query(std::string& url, std::string_view key, std::string_view value) {
    url += url.find('?') == std::string::npos ? '?' : '&';
    append_encoded(url, key);
    url += '=';
    append_encoded(url, value);
}

/// "2", "64.57" (seconds) in milliseconds, rounded up and at most a day; nullopt otherwise.
std::optional<std::chrono::milliseconds> seconds(std::string_view text) {
    while (!text.empty() && text.front() == ' ') {
        text.remove_prefix(1);
    }
    while (!text.empty() && text.back() == ' ') {
        text.remove_suffix(1);
    }
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v) || v < 0) {
        return std::nullopt;
    }
    constexpr double day_ms = 24.0 * 3600 * 1000;
    return std::chrono::milliseconds{static_cast<long long>(std::ceil(std::min(v * 1000, day_ms)))};
}

}  // namespace

bool valid_id(std::string_view id) noexcept {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    });
}

result<incident_page> parse_incident_page(std::string_view body, std::size_t max_incidents) {
    const auto list = read_listing(body, "incidents", "the incident list");
    if (!list) {
        return list.error();
    }
    incident_page page;
    page.more = list->more;
    for (const auto& item : list->items()) {
        auto inc = incident_from(item);
        if (!inc || page.incidents.size() >= max_incidents) {
            page.skipped += 1;
            continue;
        }
        page.incidents.push_back(std::move(*inc));
    }
    return page;
}

result<api_incident> parse_incident(std::string_view body) {
    const auto j = parse_json(body);
    if (!j || !j->is_object()) {
        return bad("the incident is not a JSON object");
    }
    auto inc = incident_from(field(*j, "incident"));
    if (!inc) {
        return bad("the answer has no incident with an id and a status");
    }
    return std::move(*inc);
}

result<std::optional<first_alert>> parse_alerts(std::string_view body) {
    const auto j = parse_json(body);
    if (!j || !j->is_object() || !field(*j, "alerts").is_array()) {
        return bad("the alert list has no \"alerts\" array");
    }
    const json& alerts = field(*j, "alerts");
    if (alerts.empty()) {
        return std::optional<first_alert>{};
    }
    const json& a = alerts.front();
    first_alert out;
    out.summary = bounded(text(a, "summary"), max_summary);
    const json& details = field(field(a, "body"), "details");
    const auto add = [&](std::string key, const json& value) {
        if (out.details.size() >= max_details) {
            return;
        }
        std::string v = value.is_string() ? value.get<std::string>()
                                          : value.dump(-1, ' ', false, json::error_handler_t::replace);
        out.details.emplace_back(
            bounded(std::move(key), max_detail_key), bounded(std::move(v), max_detail_value)
        );
    };
    if (details.is_object()) {
        for (const auto& [key, value] : details.items()) {
            add(key, value);
        }
    } else if (details.is_string() && !details.get<std::string>().empty()) {
        add("details", details);
    }
    return std::optional<first_alert>{std::move(out)};
}

log_kind log_kind_of(std::string_view type) noexcept {
    if (type == "annotate_log_entry") {
        return log_kind::note;
    }
    if (type == "acknowledge_log_entry") {
        return log_kind::acknowledged;
    }
    if (type == "unacknowledge_log_entry") {
        return log_kind::unacknowledged;
    }
    if (type == "resolve_log_entry") {
        return log_kind::resolved;
    }
    return log_kind::other;
}

result<log_page> parse_log_page(std::string_view body, std::size_t max_entries) {
    const auto list = read_listing(body, "log_entries", "the log entry list");
    if (!list) {
        return list.error();
    }
    log_page page;
    page.more = list->more;
    page.read = list->items().size();
    for (const auto& e : list->items()) {
        log_entry entry;
        entry.id = text(e, "id");
        const std::string type = text(e, "type");
        entry.incident_id = text(field(e, "incident"), "id");
        const auto created = time_at(e, "created_at");
        if (entry.id.empty() || type.empty() || !valid_id(entry.incident_id) || !created) {
            page.unusable += 1;
            continue;
        }
        entry.kind = log_kind_of(type);
        if (entry.kind == log_kind::other) {
            page.ignored += 1;
            continue;
        }
        if (page.entries.size() >= max_entries) {
            page.over += 1;
            continue;
        }
        entry.id = bounded(std::move(entry.id), 64);
        entry.created_at = *created;
        entry.agent = bounded(text(field(e, "agent"), "summary"), 100);
        if (entry.kind == log_kind::note) {
            // Where the text is varies (api-facts §1.2): channel.content, or channel.summary
            // of a channel of type "note". Without either, the notes are asked for.
            const json& channel = field(e, "channel");
            std::string note = text(channel, "content");
            if (note.empty() && text(channel, "type") == "note") {
                note = text(channel, "summary");
            }
            if (!note.empty()) {
                entry.note = bounded(std::move(note), max_note);
            }
        }
        page.entries.push_back(std::move(entry));
    }
    return page;
}

void add_to_digest(log_digest& d, std::vector<log_entry> entries) {
    const auto keep = [](auto& map, log_entry&& e) {
        const auto it = map.find(e.incident_id);
        if (it == map.end()) {
            map.emplace(e.incident_id, std::move(e));
        } else if (e.created_at >= it->second.created_at) {  // equal: the later one in the log
            it->second = std::move(e);
        }
    };
    for (auto& e : entries) {
        if (e.kind == log_kind::note) {
            keep(d.note, std::move(e));
        } else if (e.kind != log_kind::other) {
            keep(d.state, std::move(e));
        }
    }
}

std::string_view status_after(log_kind k) noexcept {
    switch (k) {
        case log_kind::acknowledged: return "acknowledged";
        case log_kind::unacknowledged: return "triggered";
        case log_kind::resolved: return "resolved";
        case log_kind::note:
        case log_kind::other: break;
    }
    return {};
}

incident_event log_event(const log_entry& e, wall_time as_of) {
    incident_event ev;
    ev.origin = event_origin::reconciliation;
    ev.as_of = as_of;
    ev.occurred_at = e.created_at;
    ev.event_id = "log:" + e.id;
    ev.agent = e.agent;
    ev.incident.id = e.incident_id;
    switch (e.kind) {
        case log_kind::note:
            ev.type = incident_event_type::annotated;
            ev.message = e.note.value_or(std::string{});
            return ev;
        case log_kind::acknowledged: ev.type = incident_event_type::acknowledged; break;
        case log_kind::unacknowledged: ev.type = incident_event_type::unacknowledged; break;
        case log_kind::resolved: ev.type = incident_event_type::resolved; break;
        case log_kind::other: return ev;
    }
    ev.incident.status = std::string{status_after(e.kind)};
    return ev;
}

result<std::optional<api_note>> parse_notes(std::string_view body) {
    const auto j = parse_json(body);
    if (!j || !j->is_object() || !field(*j, "notes").is_array()) {
        return bad("the note list has no \"notes\" array");
    }
    std::optional<api_note> newest;
    for (const auto& n : field(*j, "notes")) {
        const auto created = time_at(n, "created_at");
        std::string content = text(n, "content");
        if (!created || content.empty()) {
            continue;
        }
        if (!newest || *created >= newest->created_at) {
            newest = api_note{
                bounded(std::move(content), max_note),
                *created,
                bounded(text(field(n, "user"), "summary"), 100)};
        }
    }
    return newest;
}

std::string incidents_url(
    std::string_view base, const std::vector<std::string>& service_ids, std::size_t offset
) {
    std::string url{base};
    url += "/incidents";
    append_query(url, "statuses[]", "triggered");
    append_query(url, "statuses[]", "acknowledged");
    append_query(url, "date_range", "all");
    for (const auto& id : service_ids) {
        append_query(url, "service_ids[]", id);
    }
    // Newest first: past the offset bound, the newest 10000 are the ones listed.
    append_query(url, "sort_by", "created_at:desc");
    append_query(url, "limit", std::to_string(page_limit));
    append_query(url, "offset", std::to_string(offset));
    return url;
}

std::string incident_url(std::string_view base, std::string_view id) {
    return std::string{base} + "/incidents/" + std::string{id};
}

std::string alerts_url(std::string_view base, std::string_view id) {
    std::string url = incident_url(base, id) + "/alerts";
    append_query(url, "limit", "1");
    append_query(url, "offset", "0");
    return url;
}

std::string notes_url(std::string_view base, std::string_view id) {
    return incident_url(base, id) + "/notes";
}

std::string log_entries_url(std::string_view base, wall_time since, wall_time until, std::size_t offset) {
    std::string url{base};
    url += "/log_entries";
    append_query(url, "since", format_rfc3339(since));
    append_query(url, "until", format_rfc3339(until));
    append_query(url, "is_overview", "true");
    append_query(url, "include[]", "incidents");
    append_query(url, "time_zone", "UTC");
    append_query(url, "limit", std::to_string(page_limit));
    append_query(url, "offset", std::to_string(offset));
    return url;
}

std::optional<std::size_t> next_offset(std::size_t offset, bool more, bool& truncated) noexcept {
    if (!more) {
        return std::nullopt;
    }
    const std::size_t next = offset + page_limit;
    if (next + page_limit > offset_bound) {
        truncated = true;
        return std::nullopt;
    }
    return next;
}

incident_event reconciliation_event(
    const api_incident& inc, wall_time as_of, const std::optional<first_alert>& alert
) {
    incident_event ev;
    ev.origin = event_origin::reconciliation;
    ev.as_of = as_of;
    ev.type = inc.status == "resolved"       ? incident_event_type::resolved
              : inc.status == "acknowledged" ? incident_event_type::acknowledged
                                             : incident_event_type::triggered;
    ev.occurred_at =
        inc.status == "resolved" && inc.resolved_at ? inc.resolved_at : inc.last_status_change_at;
    ev.event_id = "rest:" + inc.id + ":" + inc.status +
                  (ev.occurred_at ? ":" + format_rfc3339(*ev.occurred_at) : std::string{});
    ev.agent = inc.status == "acknowledged" ? inc.acknowledged_by : std::string{};
    auto& f = ev.incident;
    f.id = inc.id;
    f.number = inc.number;
    f.title = inc.title;
    f.url = inc.url;
    f.status = inc.status;
    f.created_at = inc.created_at;
    if (!inc.service_id.empty()) {
        f.service_id = inc.service_id;
    }
    if (!inc.service_name.empty()) {
        f.service_name = inc.service_name;
    }
    f.priority = inc.priority;
    f.urgency = inc.urgency;
    f.assignees = inc.assignees;
    if (alert) {
        f.alert_summary = alert->summary;
        f.alert_details = alert->details;
    }
    return ev;
}

result<maintenance_page> parse_maintenance_page(std::string_view body) {
    const auto list = read_listing(body, "maintenance_windows", "the maintenance window list");
    if (!list) {
        return list.error();
    }
    maintenance_page page;
    page.more = list->more;
    for (const auto& item : list->items()) {
        maintenance_window w;
        w.id = text(item, "id");
        const auto start = time_at(item, "start_time");
        const auto end = time_at(item, "end_time");
        if (!valid_id(w.id) || !start || !end) {
            page.skipped += 1;
            continue;
        }
        w.start = *start;
        w.end = *end;
        w.description = bounded(text(item, "description"), max_window_description);
        w.url = text(item, "html_url");
        if (const json& services = field(item, "services"); services.is_array()) {
            for (const auto& svc : services) {
                std::string id = text(svc, "id");
                if (!valid_id(id) || w.service_ids.size() >= max_window_services) {
                    continue;
                }
                w.service_ids.push_back(std::move(id));
                w.service_names.push_back(bounded(text(svc, "summary"), 200));
            }
        }
        page.windows.push_back(std::move(w));
    }
    return page;
}

std::string maintenance_windows_url(std::string_view base, std::size_t offset) {
    std::string url{base};
    url += "/maintenance_windows";
    append_query(url, "filter", "open");
    append_query(url, "limit", std::to_string(page_limit));
    append_query(url, "offset", std::to_string(offset));
    return url;
}

signal maintenance_signal(const maintenance_window& w) {
    const auto joined = [](const std::vector<std::string>& items, std::string_view sep) {
        std::string out;
        for (const auto& item : items) {
            if (!out.empty()) {
                out += sep;
            }
            out += item;
        }
        return out;
    };
    signal s;
    s.set_kind("pagerduty.maintenance");
    s.at = w.start;  // when the services went into maintenance: from the world
    s.subject = w.id;
    s.source = "pagerduty_api";
    s.set("services", joined(w.service_ids, ","));
    s.set("service_names", joined(w.service_names, ", "));
    s.set("description", w.description);
    s.set("start", clock_utc(w.start));
    s.set("end", clock_utc(w.end));
    s.set("url", w.url);
    return s;
}

std::optional<std::chrono::milliseconds> retry_after(
    std::string_view retry_after_header, std::string_view reset_header
) {
    if (auto after = seconds(retry_after_header)) {
        return after;
    }
    return seconds(reset_header);
}

std::string error_text(unsigned status, std::string_view body) {
    std::string out = std::to_string(status);
    const auto j = parse_json(body.substr(0, 64 * 1024));
    if (j) {
        std::string message = text(field(*j, "error"), "message");
        std::erase_if(message, [](char c) { return static_cast<unsigned char>(c) < 0x20; });
        if (!message.empty()) {
            out += ": " + bounded(std::move(message), 200);
        }
    }
    return out;
}

}  // namespace runbookd::sources::pagerduty_api
