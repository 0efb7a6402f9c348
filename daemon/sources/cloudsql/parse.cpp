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
        // Which series: its labels (objects dump with sorted keys, so the text is canonical).
        const json key = {
            {"metric", field(field(s, "metric"), "labels")},
            {"resource", field(field(s, "resource"), "labels")}};
        const std::string series_key = key.dump(-1, ' ', false, json::error_handler_t::replace);
        for (const auto& p : points) {
            const auto at = parse_rfc3339(text(field(p, "interval"), "endTime"));
            const auto v = value_of(field(p, "value"));
            if (!at || !v) {
                ++page.skipped;
                continue;
            }
            page.points.push_back(point{*at, *v, series_key});
        }
    }
    return page;
}

namespace {

std::string handed_over_key(std::string_view metric, const point& p) {
    std::string key{metric};
    key += '\n';
    key += p.series;
    return key;
}

}  // namespace

bool handed_over::contains(std::string_view metric, const point& p) const {
    return seen_.contains(std::pair{p.at, handed_over_key(metric, p)});
}

void handed_over::remember(std::string_view metric, const point& p) {
    seen_.emplace(p.at, handed_over_key(metric, p));
}

void handed_over::forget_before(wall_time t) {
    seen_.erase(seen_.begin(), seen_.lower_bound(std::pair{t, std::string{}}));
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
    const json& scheduled = field(doc, "scheduledMaintenance");
    inst.scheduled_start = parse_rfc3339(text(scheduled, "startTime"));
    if (const json& can = field(scheduled, "canReschedule"); can.is_boolean()) {
        inst.can_reschedule = can.get<bool>();
    }
    inst.schedule_deadline = parse_rfc3339(text(scheduled, "scheduleDeadlineTime"));
    return inst;
}

wall_time last_window_start(int day, int hour, wall_time now) {
    using namespace std::chrono;
    const sys_days today = floor<days>(now);
    const int weekday_now = static_cast<int>(weekday{today}.iso_encoding());  // 1 = Monday
    wall_time start = today - days{(weekday_now - day + 7) % 7} + hours{hour};
    if (start > now) {
        start -= weeks{1};
    }
    return start;
}

std::vector<signal> instance_signals(
    const sql_instance& inst, std::string_view instance, wall_time now, instance_memory& memory
) {
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
    const auto maintenance = [&](std::string_view which, wall_time start, bool known_start) {
        signal s = make("db.maintenance", start);
        s.seen = !known_start;
        s.set("which", std::string{which});
        s.set("start", clock_utc(start));
        s.set("end", known_start ? clock_utc(start + maintenance_window_length) : std::string{});
        s.set("update_track", inst.update_track);
        return s;
    };

    const bool stopped = inst.state == "RUNNABLE" && inst.activation_policy == "NEVER";
    const std::string down = stopped                    ? std::string{"STOPPED"}
                             : inst.state == "RUNNABLE" ? std::string{}
                                                        : inst.state;
    if (down != memory.state) {
        memory = instance_memory{down, now};
    }
    if (!down.empty()) {
        signal s = make("db.unavailable", memory.since);
        s.seen = true;  // the API says what the state is, not since when
        s.set("state", down);
        out.push_back(std::move(s));
    }

    if (inst.scheduled_start) {
        signal s = maintenance("scheduled", *inst.scheduled_start, true);
        if (inst.can_reschedule) {
            s.set("can_reschedule", *inst.can_reschedule ? "true" : "false");
        }
        if (inst.schedule_deadline) {
            s.set("deadline", format_rfc3339_seconds(*inst.schedule_deadline));
        }
        out.push_back(std::move(s));
    }

    std::optional<wall_time> window;  // the window's last start
    if (inst.window_day && inst.window_hour) {
        window = last_window_start(*inst.window_day, *inst.window_hour, now);
        out.push_back(maintenance("window", *window, true));
        out.push_back(maintenance("window", *window + std::chrono::weeks{1}, true));
    }

    if (inst.state == "MAINTENANCE") {
        if (inst.scheduled_start && *inst.scheduled_start <= now) {
            out.push_back(maintenance("running", *inst.scheduled_start, true));
        } else if (window && now < *window + maintenance_window_length) {
            out.push_back(maintenance("running", *window, true));
        } else {
            out.push_back(maintenance("running", memory.since, false));
        }
    }
    return out;
}

}  // namespace runbookd::sources::cloudsql
