#include "sources/cloudsql/parse.hpp"

#include "sources/google/json.hpp"

#include <charconv>

namespace runbookd::sources::cloudsql {
namespace {

using namespace google::json_read;

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

}  // namespace runbookd::sources::cloudsql
