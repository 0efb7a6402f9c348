#include "sources/gcp/parse.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace runbookd::sources::gcp {
namespace {

using json = nlohmann::json;

failure bad(std::string what) {
    return make_failure(errc::parse_failed, "google cloud: " + std::move(what));
}

std::string text(const json& j, std::string_view key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

const json& field(const json& j, std::string_view key) {
    static const json none;
    const auto it = j.find(key);
    return it != j.end() ? *it : none;
}

/// A point's value: doubleValue, or int64Value (a JSON string under proto3 JSON, a number
/// from some clients).
std::optional<double> value_of(const json& v) {
    if (const json& d = field(v, "doubleValue"); d.is_number()) {
        return d.get<double>();
    }
    const json& i = field(v, "int64Value");
    if (i.is_number_integer()) {
        return static_cast<double>(i.get<long long>());
    }
    if (i.is_string()) {
        const auto s = i.get<std::string>();
        long long n = 0;
        const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec == std::errc{} && ptr == s.data() + s.size()) {
            return static_cast<double>(n);
        }
    }
    return std::nullopt;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    return s;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) {
        out += (out.empty() ? "" : ", ") + i;
    }
    return out;
}

}  // namespace

result<series_page> parse_time_series(std::string_view body) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return bad("a timeSeries.list answer is not a JSON object");
    }
    series_page page;
    page.next_page_token = text(doc, "nextPageToken");
    const json& series = field(doc, "timeSeries");
    if (!series.is_array()) {
        return page;  // no data (empty fields are omitted)
    }
    for (const auto& s : series) {
        const json& points = field(s, "points");
        if (!points.is_array()) {
            continue;
        }
        for (const auto& p : points) {
            const auto at = parse_rfc3339(text(field(p, "interval"), "endTime"));
            const auto v = value_of(field(p, "value"));
            if (!at || !v) {
                ++page.skipped;
                continue;
            }
            page.points.push_back(point{*at, *v});
        }
    }
    return page;
}

std::string api_error_text(unsigned status, std::string_view body) {
    std::string out = std::to_string(status);
    const json doc = json::parse(body, nullptr, false);
    const json& error = field(doc, "error");
    std::string code;
    std::string message;
    if (error.is_object()) {
        code = text(error, "status");
        message = text(error, "message");
    } else if (error.is_string()) {
        code = error.get<std::string>();
        message = text(doc, "error_description");
    }
    if (!code.empty()) {
        out += " " + code;
    }
    if (!message.empty()) {
        if (message.size() > 200) {
            message.resize(200);
            message += "...";
        }
        out += ": " + message;
    }
    return out;
}

result<service_account_key> parse_key_file(std::string_view text) {
    const json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return make_failure(errc::config_invalid, "the key file is not JSON");
    }
    const auto field = [&](const char* name) {
        const auto it = doc.find(name);
        return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string{};
    };
    if (const auto type = field("type"); type != "service_account") {
        return make_failure(
            errc::config_invalid,
            "the key file's type is '" + type +
                "', not 'service_account' (user credentials are not supported)"
        );
    }
    service_account_key key{
        field("client_email"),
        field("private_key_id"),
        field("private_key"),
        field("token_uri"),
        field("project_id")};
    for (const auto& [name, value] :
         {std::pair{"client_email", &key.client_email}, {"private_key", &key.private_key}}) {
        if (value->empty()) {
            return make_failure(errc::config_invalid, std::string{"the key file has no "} + name);
        }
    }
    return key;
}

result<sql_instance> parse_sql_instance(std::string_view body) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || text(doc, "state").empty()) {
        return bad("a Cloud SQL instance has no state");
    }
    sql_instance inst;
    inst.name = text(doc, "name");
    inst.state = text(doc, "state");
    const json& settings = field(doc, "settings");
    inst.activation_policy = text(settings, "activationPolicy");
    const json& window = field(settings, "maintenanceWindow");
    if (const json& day = field(window, "day");
        day.is_number_integer() && day.get<int>() >= 1 && day.get<int>() <= 7) {
        inst.window_day = day.get<int>();
    }
    if (const json& hour = field(window, "hour");
        hour.is_number_integer() && hour.get<int>() >= 0 && hour.get<int>() <= 23) {
        inst.window_hour = hour.get<int>();
    }
    inst.update_track = text(window, "updateTrack");
    inst.scheduled_start = parse_rfc3339(text(field(doc, "scheduledMaintenance"), "startTime"));
    return inst;
}

std::vector<signal> instance_signals(const sql_instance& inst, std::string_view instance, wall_time now) {
    std::vector<signal> out;
    const auto make = [&](std::string_view kind, wall_time at) {
        signal s;
        s.set_kind(kind);
        s.at = at;
        s.subject = std::string{instance};
        s.source = "cloudsql";
        s.set("instance", std::string{instance});
        return s;
    };
    const bool stopped = inst.state == "RUNNABLE" && inst.activation_policy == "NEVER";
    if (inst.state != "RUNNABLE" || stopped) {
        signal s = make("db.unavailable", now);
        s.set("state", stopped ? std::string{"STOPPED"} : inst.state);
        out.push_back(std::move(s));
    }
    if (inst.scheduled_start && *inst.scheduled_start <= now + std::chrono::hours{1}) {
        signal s = make("db.maintenance", *inst.scheduled_start <= now ? *inst.scheduled_start : now);
        s.set("start", clock_utc(*inst.scheduled_start));
        s.set("end", clock_utc(*inst.scheduled_start + std::chrono::hours{1}));
        out.push_back(std::move(s));
    }
    return out;
}

result<std::vector<status_incident>> parse_status_feed(std::string_view body) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_array()) {
        return bad("the status feed is not a JSON array");
    }
    std::vector<status_incident> out;
    for (const auto& i : doc) {
        if (!i.is_object() || text(i, "id").empty()) {
            continue;
        }
        status_incident inc;
        inc.id = text(i, "id");
        inc.title = text(i, "external_desc");
        inc.severity = text(i, "severity");
        inc.impact = text(i, "status_impact");
        inc.begin = parse_rfc3339(text(i, "begin"));
        inc.open = field(i, "end").is_null() || text(i, "end").empty();
        for (const auto& p :
             field(i, "affected_products").is_array() ? field(i, "affected_products") : json::array()) {
            if (const auto title = text(p, "title"); !title.empty()) {
                inc.products.push_back(title);
            }
        }
        const json* where = &field(i, "currently_affected_locations");
        if (!where->is_array() || where->empty()) {
            where = &field(field(i, "most_recent_update"), "affected_locations");
        }
        for (const auto& l : where->is_array() ? *where : json::array()) {
            if (const auto id = text(l, "id"); !id.empty()) {
                inc.locations.push_back(id);
            }
        }
        const std::string uri = text(i, "uri");
        inc.url = uri.starts_with("https://") ? uri
                  : uri.empty()               ? std::string{}
                                              : "https://status.cloud.google.com/" + uri;
        out.push_back(std::move(inc));
    }
    return out;
}

std::vector<signal> incident_signals(
    const std::vector<status_incident>& incidents,
    const std::vector<std::string>& products,
    const std::vector<std::string>& locations,
    wall_time now
) {
    std::vector<signal> out;
    for (const auto& inc : incidents) {
        if (!inc.open) {
            continue;
        }
        std::vector<std::string> touched;
        for (const auto& p : inc.products) {
            const bool wanted = std::any_of(products.begin(), products.end(), [&](const std::string& want) {
                return lower(want) == lower(p);
            });
            if (wanted) {
                touched.push_back(p);
            }
        }
        const bool here =
            locations.empty() ||
            std::any_of(inc.locations.begin(), inc.locations.end(), [&](const std::string& l) {
                return l == "global" || std::find(locations.begin(), locations.end(), l) != locations.end();
            });
        if (touched.empty() || !here) {
            continue;
        }
        signal s;
        s.set_kind("gcp.incident");
        // A sample of an open incident, dated when it was seen open: a long outage stays
        // inside rule windows and the log's retention for as long as it lasts.
        s.at = now;
        s.subject = inc.id;
        s.source = "gcp_status";
        s.set("product", joined(touched));
        s.set("severity", inc.severity);
        s.set("locations", joined(inc.locations));
        s.set("title", inc.title);
        s.set("url", inc.url);
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace runbookd::sources::gcp
