#include "core/render.hpp"

#include "core/markdown.hpp"

#include <algorithm>
#include <vector>

namespace runbookd::render {
namespace {

constexpr std::uint32_t red = 0xE74C3C;
constexpr std::uint32_t orange = 0xE67E22;
constexpr std::uint32_t blue = 0x3498DB;
constexpr std::uint32_t green = 0x2ECC71;
constexpr std::uint32_t purple = 0x9B59B6;
constexpr std::uint32_t grey = 0x95A5A6;
constexpr std::string_view warning_mark = "\u26a0 ";
constexpr std::size_t max_assignees_shown = 3;
constexpr std::size_t max_details_shown = 5;

/// At most `n` bytes of `text`, cut at a UTF-8 boundary, with "\u2026" when cut.
std::string clipped(const std::string& text, std::size_t n) {
    if (text.size() <= n) {
        return text;
    }
    std::size_t end = n;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U) {
        --end;
    }
    return text.substr(0, end) + "\u2026";
}

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
    if (!inc.impact.empty()) {
        return escape_markdown(inc.impact);
    }
    if (const auto it = s.services.find(inc.service_id);
        it != s.services.end() && !it->second.impact.empty()) {
        return escape_markdown(it->second.impact);
    }
    return escape_markdown(s.default_impact);
}

/// "PagerDuty #42 · P1 · API latency is high": the engineers' handle on the incident.
/// Plain text: it goes in the footer, where Discord renders no markdown.
std::string reference(const incident& inc) {
    std::string ref = plain_text(inc.pager);
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

/// An action as a code span people can copy; text with a backtick cannot be a span, so it
/// is escaped as plain text instead.
std::string action_line(const std::string& action) {
    if (action.find('`') != std::string::npos || action.find('\n') != std::string::npos) {
        return "\u2192 " + escape_markdown(action, true);
    }
    return "\u2192 `" + action + "`";
}

/// "P1 · high urgency · assigned to Ana, Bo" on a line of its own: what PagerDuty says of
/// the page (its service is in the title).
std::string page_line(const incident& inc) {
    std::string line;
    const auto add = [&](const std::string& part) {
        if (!part.empty()) {
            line += (line.empty() ? "" : " \u00b7 ") + part;
        }
    };
    add(inc.priority.empty() ? std::string{} : escape_markdown(clipped(inc.priority, 20), true));
    add(inc.urgency.empty() ? std::string{} : escape_markdown(clipped(inc.urgency, 20), true) + " urgency");
    std::string who;
    for (std::size_t i = 0; i < inc.assignees.size() && i < max_assignees_shown; ++i) {
        who += (who.empty() ? "" : ", ") + escape_markdown(clipped(inc.assignees[i], 60), true);
    }
    if (inc.assignees.size() > max_assignees_shown) {
        who += " +" + std::to_string(inc.assignees.size() - max_assignees_shown);
    }
    if (!who.empty()) {
        add("assigned to " + who);
    }
    return line.empty() ? std::string{} : "\n" + line;
}

/// "**Indicator:** summary" and up to max_details_shown "key: value" lines of the first alert.
std::string indicator_lines(const incident& inc) {
    if (inc.alert_summary.empty() && inc.alert_details.empty()) {
        return {};
    }
    std::string out = "\n**Indicator:** " + (inc.alert_summary.empty()
                                                 ? std::string{"(no summary)"}
                                                 : escape_markdown(clipped(inc.alert_summary, 300), true));
    for (std::size_t i = 0; i < inc.alert_details.size() && i < max_details_shown; ++i) {
        const auto& [key, value] = inc.alert_details[i];
        out += "\n\u2022 " + escape_markdown(clipped(key, 60), true) + ": " +
               escape_markdown(clipped(value, 200), true);
    }
    if (inc.alert_details.size() > max_details_shown) {
        out += "\n\u2022 +" + std::to_string(inc.alert_details.size() - max_details_shown) + " more details";
    }
    return out;
}

}  // namespace

std::string late_note(std::string_view what, wall_time at, wall_time now) {
    const auto day = [](wall_time t) { return std::chrono::floor<std::chrono::days>(t); };
    std::string when = clock_utc(at);
    if (day(at) != day(now)) {
        when = format_rfc3339_seconds(at).substr(0, 10) + " " + when;  // "2026-12-01 14:02 UTC"
    }
    return "(posted late: " + std::string{what} + " at " + when + ")";
}

message status_notice(
    const incident& inc, const engine_settings& s, wall_time now, std::optional<wall_time> late
) {
    auto m = base(inc, "\U0001F534 " + service_name(inc, s) + ": we are investigating", red);
    m.body = impact(inc, s) + "\n\nWe are aware of the problem and are investigating. " + next_update_line(s);
    if (late) {
        m.body += "\n\n" + late_note("triggered", *late, now);
    }
    return m;
}

message status_reopened(
    const incident& inc, const engine_settings& s, wall_time now, std::optional<wall_time> late
) {
    auto m = base(inc, "\U0001F534 " + service_name(inc, s) + ": the problem is back", red);
    m.body = impact(inc, s) +
             "\n\nThe problem came back after it was resolved, and we are "
             "investigating again. " +
             next_update_line(s);
    if (late) {
        m.body += "\n\n" + late_note("reopened", *late, now);
    }
    return m;
}

message status_update(
    const incident& inc, const engine_settings& s, wall_time now, std::string_view believed
) {
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
    if (!believed.empty()) {
        body += "\n\nWe believe " + escape_markdown(believed) + ".";
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

message status_resolved(
    const incident& inc, const engine_settings& s, wall_time now, std::optional<wall_time> late
) {
    auto m = base(inc, "\u2705 " + service_name(inc, s) + ": resolved", green);
    const auto end = inc.resolved_at.value_or(now);
    m.body = "The problem is resolved. It lasted " + human_duration(end - inc.started) +
             ". Thank you for your patience.";
    if (late) {
        m.body += "\n\n" + late_note("resolved", *late, now);
    }
    return m;
}

message operations_summary(const incident& inc, const ranking& r, const engine_settings& s, wall_time now) {
    const suspect* top = r.top();
    const bool weak = top != nullptr && top->share < s.operations.min_share;
    const bool tie = r.suspects.size() > 1 && r.suspects[1].tied;
    auto m = base(
        inc,
        "\U0001F50E " + service_name(inc, s) +
            (top == nullptr ? ": no likely cause found yet"
             : weak         ? ": no likely cause yet"
             : tie          ? ": likely causes, tied"
                            : ": likely causes"),
        top == nullptr || weak ? grey : purple
    );
    m.footer += " \u00b7 ranked " + clock_utc(now);
    std::string body = "**Alert:** " +
                       (inc.title.empty() ? std::string{"(untitled)"} : escape_markdown(inc.title, true)) +
                       " \u00b7 started " + clock_utc(inc.started) + page_line(inc) + indicator_lines(inc);
    if (weak) {
        // Named leads, not a diagnosis: nothing has the evidence to be called likely.
        body += "\n\nNo cause has enough evidence yet (each under " + percent_text(s.operations.min_share) +
                "). Weak leads:";
    }
    std::size_t shown = 0;
    std::size_t place = 0;
    std::string others;
    for (const auto& sus : r.suspects) {
        if (shown == s.operations.max_suspects) {
            others += (others.empty() ? "" : ", ") + escape_markdown(sus.title, true) + " (" +
                      percent_text(sus.share) + (sus.tied ? ", tied" : "") + ")";
            continue;
        }
        shown += 1;
        // A true tie shares its place: the evidence cannot tell them apart, and neither do we.
        place = sus.tied ? place : shown;
        body += "\n\n**" + std::to_string(place) + ". " + escape_markdown(sus.title, true) + " \u2014 " +
                percent_text(sus.share) + (sus.tied ? " (tied)" : "") + "**";
        for (const auto& e : sus.evidence) {
            body += "\n\u2022 " + escape_markdown(e, true);
        }
        for (const auto& a : sus.actions) {
            body += "\n" + action_line(a);
        }
    }
    if (!others.empty()) {
        body += "\n\n**Also possible:** " + others;
    }
    if (top != nullptr) {
        // Once, for everything that could not be looked at or that the runbook does not list.
        body +=
            "\n\n**Unknown \u2014 " + percent_text(r.unknown) + "**: " +
            (r.not_checkable.empty() ? std::string{"a cause the runbook does not list"}
                                     : "the causes not checkable below, or one the runbook does not list");
    }
    // Warnings are not causes: one line each, after the ranked causes, under no heading
    // that could be read as one more of them.
    for (std::size_t i = 0; i < r.warnings.size(); ++i) {
        body +=
            (i == 0 ? "\n\n" : "\n") + std::string{warning_mark} + escape_markdown(r.warnings[i].text, true);
    }
    if (!r.clear.empty()) {
        body += "\n\n**Checked, clear**";
        for (const auto& c : r.clear) {
            body += "\n\u2022 " + escape_markdown(c.title, true) + ": " + escape_markdown(c.detail, true);
        }
    }
    if (!r.not_checkable.empty()) {
        body += "\n\n**Not checkable**";
        for (const auto& c : r.not_checkable) {
            body += "\n\u2022 " + escape_markdown(c.title, true) + ": " + escape_markdown(c.detail, true);
        }
    }
    m.body = std::move(body);
    return m;
}

message operations_timeline(const incident& inc, const ranking& r, const engine_settings& s, wall_time now) {
    auto m = base(inc, "\U0001F4DC " + service_name(inc, s) + ": incident timeline", green);
    std::string body;
    for (const auto& e : inc.timeline) {
        body += (body.empty() ? "" : "\n") + std::string{"`"} + clock_utc(e.at) + "` " +
                escape_markdown(e.text, true);
    }
    const auto end = inc.resolved_at.value_or(now);
    body += "\n`" + clock_utc(end) + "` resolved after " + human_duration(end - inc.started);
    if (const suspect* top = r.top()) {
        body += "\n\n**Most likely cause at resolution:** " + escape_markdown(top->title, true) + " (" +
                percent_text(top->share) + ")";
    }
    m.body = std::move(body);
    return m;
}

namespace {

/// Services listed in a storm post, by number of incidents; the rest in one line.
constexpr std::size_t max_storm_lines = 8;

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
    return std::to_string(n) + " " + std::string{n == 1 ? one : many};
}

/// "• Editor: 12 incidents (API latency is high)" per service, most incidents first.
std::string storm_lines(const storm_state& storm) {
    std::vector<const storm_line*> lines;
    lines.reserve(storm.service_order.size());
    for (const auto& id : storm.service_order) {
        if (const auto it = storm.services.find(id); it != storm.services.end()) {
            lines.push_back(&it->second);
        }
    }
    std::stable_sort(lines.begin(), lines.end(), [](const storm_line* a, const storm_line* b) {
        return a->count > b->count;
    });
    std::string out;
    std::size_t rest = storm.other_incidents;
    std::size_t rest_services = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i >= max_storm_lines) {
            rest += lines[i]->count;
            rest_services += 1;
            continue;
        }
        out += "\n\u2022 " + escape_markdown(clipped(lines[i]->service, 60), true) + ": " +
               plural(lines[i]->count, "incident", "incidents");
        if (!lines[i]->title.empty()) {
            out += " (" + escape_markdown(clipped(lines[i]->title, 100), true) +
                   (lines[i]->count > 1 ? ", \u2026" : "") + ")";
        }
    }
    if (rest > 0) {
        out += "\n\u2022 \u2026and " + plural(rest, "more incident", "more incidents") +
               (rest_services > 0 || storm.other_incidents > 0 ? " on other services" : "");
    }
    return out;
}

/// What started it, in one sentence.
std::string storm_cause(const storm_state& storm, const engine_settings& s) {
    const auto& lim = s.limits;
    if (storm.by_limit) {
        return "More than " + std::to_string(lim.max_open_incidents) + " incidents are open at once";
    }
    return "More than " + std::to_string(lim.storm_threshold) + " incidents opened within " +
           human_duration(lim.storm_window);
}

std::string storm_figures(const storm_state& storm, const engine_settings& s) {
    std::string out =
        "\n\n" + std::to_string(storm.resolved) + " resolved, " + std::to_string(storm.open) + " still open.";
    if (storm.posted_alone > 0) {
        out +=
            " " + std::to_string(storm.posted_alone) + " of them had a post of their own before the burst.";
    }
    if (storm.untracked > 0) {
        out += " " + std::to_string(storm.untracked) + " are only counted here, past the limit of " +
               std::to_string(s.limits.max_open_incidents) +
               " open incidents followed one by one (their resolution is not followed).";
    }
    return out;
}

std::string storm_span(const storm_state& storm) {
    return storm.ended ? clock_utc(storm.started) + " to " + clock_utc(storm.last_opened)
                       : "since " + clock_utc(storm.started);
}

}  // namespace

message status_storm(const storm_state& storm, const engine_settings& s, wall_time now) {
    const bool all_resolved = storm.ended && storm.open == 0 && storm.untracked == 0;
    const std::string count = plural(storm.opened, "incident", "incidents") + " opened " + storm_span(storm);
    message m{
        .title = all_resolved  ? "\u2705 " + count + ": all resolved"
                 : storm.ended ? "\U0001F7E0 " + count
                               : "\U0001F534 " + count,
        .body = {},
        .url = {},
        .color = all_resolved  ? green
                 : storm.ended ? orange
                               : red,
        .footer = "updated " + clock_utc(now),
    };
    std::string body = storm_cause(storm, s) +
                       ", so they are reported together in this post, updated as it changes, instead "
                       "of one post each.\n\n**Affected:**" +
                       storm_lines(storm) + storm_figures(storm, s);
    if (storm.ended) {
        body += "\n\nThe burst ended at " + clock_utc(*storm.ended) +
                ": new incidents are posted one by one again.";
    } else {
        body += "\n\nWe are investigating. New incidents are added to this post.";
    }
    m.body = std::move(body);
    return m;
}

message operations_storm(const storm_state& storm, const engine_settings& s, wall_time now) {
    const std::string count = plural(storm.opened, "incident", "incidents") + " opened " + storm_span(storm);
    message m{
        .title = "\U0001F329 Storm: " + count + (storm.ended ? " (over)" : ""),
        .body = {},
        .url = {},
        .color = storm.ended ? grey : purple,
        .footer = "updated " + clock_utc(now),
    };
    m.body = storm_cause(storm, s) +
             ": #status has one post for all of them, and their summaries and timelines are "
             "paused here (no ranking per incident until the burst is over).\n\n**Affected:**" +
             storm_lines(storm) + storm_figures(storm, s);
    if (storm.ended) {
        m.body += "\n\nOver at " + clock_utc(*storm.ended) + ": new incidents get their own summaries again.";
    }
    return m;
}

}  // namespace runbookd::render
