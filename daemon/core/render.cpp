#include "core/render.hpp"

#include "core/markdown.hpp"

namespace runbookd::render {
namespace {

constexpr std::uint32_t red = 0xE74C3C;
constexpr std::uint32_t orange = 0xE67E22;
constexpr std::uint32_t blue = 0x3498DB;
constexpr std::uint32_t green = 0x2ECC71;

std::string service_name(const incident& inc, const engine_settings& s) {
    if (const auto it = s.services.find(inc.service_id); it != s.services.end()) {
        return escape_markdown(it->second.name, true);
    }
    if (!inc.service_name.empty()) {
        return escape_markdown(inc.service_name, true);
    }
    return "Our service";
}

std::string impact(const incident& inc, const engine_settings& s) {
    if (const auto it = s.services.find(inc.service_id);
        it != s.services.end() && !it->second.impact.empty()) {
        return escape_markdown(it->second.impact);
    }
    return escape_markdown(s.default_impact);
}

/// "PagerDuty #42 · P1 · API latency is high": the engineers' handle on the incident.
/// Plain text: it goes in the footer, where Discord renders no markdown.
std::string reference(const incident& inc) {
    std::string ref = "PagerDuty";
    if (inc.number) {
        ref += " #" + std::to_string(*inc.number);
    }
    if (!inc.priority.empty()) {
        ref += " \u00b7 " + plain_text(inc.priority);
    }
    if (!inc.title.empty()) {
        ref += " \u00b7 " + plain_text(inc.title);
    }
    return ref;
}

/// Only an https link to PagerDuty's site is safe to put behind a title.
std::string safe_url(const incident& inc) {
    const auto& u = inc.url;
    const bool plain = u.find_first_of(" \t\r\n<>\"") == std::string::npos;
    return u.starts_with("https://") && plain && u.size() <= 512 ? u : std::string{};
}

std::string next_update_line(const engine_settings& s) {
    return "Next update within " + human_duration(s.reminder_interval) + ".";
}

message base(const incident& inc, std::string title, std::uint32_t color) {
    return message{
        .title = std::move(title),
        .body = {},
        .url = safe_url(inc),
        .color = color,
        .footer = reference(inc),
    };
}

}  // namespace

message status_notice(const incident& inc, const engine_settings& s, wall_time /*now*/) {
    auto m = base(inc, "\U0001F534 " + service_name(inc, s) + ": we are investigating", red);
    m.body = impact(inc, s) + "\n\nWe are aware of the problem and are investigating. " + next_update_line(s);
    return m;
}

message status_reopened(const incident& inc, const engine_settings& s, wall_time /*now*/) {
    auto m = base(inc, "\U0001F534 " + service_name(inc, s) + ": the problem is back", red);
    m.body = impact(inc, s) +
             "\n\nThe problem came back after it was resolved, and we are "
             "investigating again. " +
             next_update_line(s);
    return m;
}

message status_update(const incident& inc, const engine_settings& s, wall_time now) {
    const bool acked = inc.state == incident_state::acknowledged;
    auto m = base(
        inc,
        "\U0001F7E0 " + service_name(inc, s) + (acked ? ": we are working on it" : ": still investigating"),
        orange
    );
    std::string body = impact(inc, s) + "\n\nThis started " + human_duration(now - inc.started) + " ago. ";
    if (acked && !inc.acknowledged_by.empty()) {
        body += escape_markdown(inc.acknowledged_by, true) + " is working on it.";
    } else if (acked) {
        body += "An engineer is working on it.";
    } else {
        body += "The on-call engineer has been paged.";
    }
    if (!inc.latest_news.empty() && inc.latest_news_at) {
        body += "\n\nLatest (" + human_duration(now - *inc.latest_news_at) +
                " ago): " + escape_markdown(inc.latest_news);
    } else {
        body += "\n\nNo new information yet; we will keep you posted.";
    }
    body += "\n\n" + next_update_line(s);
    m.body = std::move(body);
    return m;
}

message status_relay(const incident& inc, const engine_settings& s, wall_time /*now*/) {
    auto m = base(inc, "\U0001F535 " + service_name(inc, s) + ": update", blue);
    m.body = escape_markdown(inc.latest_news) + "\n\n" + next_update_line(s);
    return m;
}

message status_resolved(const incident& inc, const engine_settings& s, wall_time now) {
    auto m = base(inc, "\u2705 " + service_name(inc, s) + ": resolved", green);
    const auto end = inc.resolved_at.value_or(now);
    m.body = "The problem is resolved. It lasted " + human_duration(end - inc.started) +
             ". Thank you for your patience.";
    return m;
}

}  // namespace runbookd::render
