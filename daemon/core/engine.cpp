#include "core/engine.hpp"

#include "core/render.hpp"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <variant>

namespace runbookd {
namespace {

std::string post_key(const incident& inc, post_kind kind, int n) {
    std::string key = inc.id + "/" + std::to_string(inc.epoch) + "/" + std::string{to_string(kind)};
    if (n > 0) {
        key += "/" + std::to_string(n);
    }
    return key;
}

post make_status_post(const incident& inc, post_kind kind, int n, wall_time now, message text) {
    return post{
        .to = channel::status,
        .kind = kind,
        .incident_id = inc.id,
        .key = post_key(inc, kind, n),
        .at = now,
        .text = std::move(text),
        .coalescible = true,
        .edit_of = {},
        .merged = {},
    };
}

/// PagerDuty's own time for an event when it is sane, else ours: a clock-skewed or
/// replayed occurred_at must never move an incident into the future.
wall_time event_time(const std::optional<wall_time>& t, wall_time now) {
    return t && *t <= now ? *t : now;
}

/// Takes the first alert's summary and details from `f` when they differ; true when so.
bool take_alert(incident& inc, const incident_facts& f) {
    bool changed = false;
    if (f.alert_summary && *f.alert_summary != inc.alert_summary) {
        inc.alert_summary = *f.alert_summary;
        changed = true;
    }
    if (f.alert_details && *f.alert_details != inc.alert_details) {
        inc.alert_details = *f.alert_details;
        changed = true;
    }
    return changed;
}

/// Whether an event about an incident the engine does not know should open it. Only an
/// event that carries the whole incident, and says it is open, may: a note, a status
/// update or a priority change on an incident resolved long ago (or before a restart)
/// must not start a notice and a 30-minute cadence that no resolution will ever end.
bool opens_unknown_incident(const incident_event& ev) {
    switch (ev.type) {
        case incident_event_type::resolved:
        case incident_event_type::annotated:
        case incident_event_type::status_update_published: return false;
        default: break;
    }
    const auto& status = ev.incident.status;
    return status && (*status == "triggered" || *status == "acknowledged");
}

}  // namespace

std::string_view to_string(incident_event_type t) noexcept {
    switch (t) {
        case incident_event_type::triggered: return "triggered";
        case incident_event_type::acknowledged: return "acknowledged";
        case incident_event_type::unacknowledged: return "unacknowledged";
        case incident_event_type::resolved: return "resolved";
        case incident_event_type::reopened: return "reopened";
        case incident_event_type::escalated: return "escalated";
        case incident_event_type::reassigned: return "reassigned";
        case incident_event_type::priority_updated: return "priority_updated";
        case incident_event_type::annotated: return "annotated";
        case incident_event_type::status_update_published: return "status_update_published";
    }
    return "unknown";
}

std::string_view to_string(channel c) noexcept {
    return c == channel::status ? "status" : "operations";
}

std::string_view to_string(post_kind k) noexcept {
    switch (k) {
        case post_kind::notice: return "notice";
        case post_kind::update: return "update";
        case post_kind::relay: return "relay";
        case post_kind::resolved: return "resolved";
        case post_kind::reopened: return "reopened";
        case post_kind::summary: return "summary";
        case post_kind::timeline: return "timeline";
        case post_kind::storm: return "storm";
    }
    return "unknown";
}

std::string_view to_string(merge_reason r) noexcept {
    return r == merge_reason::storm ? "storm" : "untracked";
}

namespace {

constexpr std::size_t max_timeline = 60;

millis widest_before(const std::shared_ptr<const rule_set>& rules) {
    millis widest{0};
    const auto walk = [&](const auto& self, const condition& c) -> void {
        if (c.what == condition::op::signal) {
            widest = std::max(widest, c.signal.window.before);
        }
        for (const auto& child : c.children) {
            self(self, child);
        }
    };
    if (rules) {
        for (const auto& r : rules->rules) {
            walk(walk, r.when);
        }
        for (const auto& w : rules->warnings) {
            walk(walk, w.when);
        }
    }
    return widest;
}

}  // namespace

engine::engine(engine_settings settings)
    : settings_(std::move(settings)),
      log_(settings_.signals),
      widest_before_(widest_before(settings_.rules)) {}

void engine::reconfigure(engine_settings settings) {
    const bool rules_changed = settings.rules != settings_.rules;
    settings_ = std::move(settings);
    log_.reconfigure(settings_.signals);
    widest_before_ = widest_before(settings_.rules);
    if (rules_changed) {
        // New rules may rank differently: refresh every open incident's summary on the
        // next tick (next_wake says when).
        for (auto& [id, inc] : incidents_) {
            if (inc.open()) {
                mark_dirty(inc, inc.ops.last_sent.value_or(inc.opened_at));
            }
        }
    }
}

void engine::note(incident& inc, wall_time at, std::string text) {
    if (inc.timeline.size() < max_timeline) {
        inc.timeline.push_back(timeline_entry{at, std::move(text)});
    }
}

namespace {

rank_input make_rank_input(const incident& inc, const engine_settings& s, wall_time now) {
    rank_input in;
    in.start = inc.started;
    in.now = now;
    in.service.id = inc.service_id;
    in.service.name = inc.service_name.empty() ? inc.service_id : inc.service_name;
    if (const auto it = s.services.find(inc.service_id); it != s.services.end()) {
        in.service.name = it->second.name;
        in.service.workloads = it->second.workloads;
    }
    return in;
}

}  // namespace

ranking engine::rank_incident(const incident& inc, wall_time now) const {
    if (!settings_.rules) {
        return {};
    }
    return rank(*settings_.rules, log_, sources_, make_rank_input(inc, settings_, now));
}

std::string engine::dominant_status(const incident& inc, wall_time now) const {
    const auto r = rank_incident(inc, now);
    const suspect* top = r.likely(settings_.operations.min_share);
    return top != nullptr && top->share >= settings_.operations.dominance_share ? top->status_text
                                                                                : std::string{};
}

void engine::cancel_refresh(incident& inc) {
    if (inc.ops.due) {
        ops_due_.erase({*inc.ops.due, inc.id});
        inc.ops.due.reset();
    }
}

void engine::mark_dirty(incident& inc, wall_time now) {
    if (!settings_.operations.enabled || !settings_.rules || !inc.open() || inc.ops.due ||
        !inc.storm.empty()) {
        return;  // a storm's incidents have no summary of their own
    }
    auto due = now;
    if (inc.ops.last_sent) {
        due = std::max(due, *inc.ops.last_sent + settings_.operations.edit_interval);
    }
    inc.ops.due = due;
    ops_due_.insert({due, inc.id});
}

void engine::mark_all_dirty(wall_time now) {
    for (auto& [id, inc] : incidents_) {
        if (inc.open()) {
            mark_dirty(inc, now);
        }
    }
}

void engine::refresh_operations(incident& inc, wall_time now, decisions& out) {
    cancel_refresh(inc);
    if (!settings_.operations.enabled || !settings_.rules) {
        return;
    }
    const ranking r = rank_incident(inc, now);
    auto text = render::operations_summary(inc, r, settings_, now);
    std::string shown = text.title + "\n" + text.body;
    const suspect* top = r.top();
    const std::string top_id = top == nullptr ? std::string{} : top->id;
    const std::string base = inc.id + "/" + std::to_string(inc.epoch) + "/summary/";
    post p{
        .to = channel::operations,
        .kind = post_kind::summary,
        .incident_id = inc.id,
        .key = {},
        .at = now,
        .text = std::move(text),
        .coalescible = false,
        .edit_of = {},
        .merged = {},
    };
    if (inc.ops.summaries == 0 || top_id != inc.ops.top) {
        // A new top suspect gets a new message, so the channel tells the story.
        inc.ops.summaries += 1;
        inc.ops.edits = 0;
        p.key = base + std::to_string(inc.ops.summaries);
        const suspect* named = r.likely(settings_.operations.min_share);
        note(
            inc,
            now,
            top == nullptr ? std::string{"#operations: no likely cause found yet"}
            : named == nullptr
                ? "#operations: no likely cause yet (leads: " + top->title + ", " + percent_text(top->share) +
                      ")"
                : "#operations: top suspect " + top->title + " (" + percent_text(top->share) + ")"
        );
    } else if (shown != inc.ops.shown) {
        inc.ops.edits += 1;
        p.edit_of = base + std::to_string(inc.ops.summaries);
        p.key = p.edit_of + "/edit/" + std::to_string(inc.ops.edits);
    } else {
        return;  // nothing a reader would see changed
    }
    inc.ops.top = top_id;
    inc.ops.shown = std::move(shown);
    inc.ops.last_sent = now;
    out.posts.push_back(std::move(p));
}

void engine::run_due(wall_time now, decisions& out) {
    while (!ops_due_.empty() && ops_due_.begin()->first <= now) {
        const auto id = ops_due_.begin()->second;
        auto it = incidents_.find(id);
        if (it == incidents_.end()) {
            ops_due_.erase(ops_due_.begin());
            continue;
        }
        refresh_operations(it->second, now, out);
    }
}

decisions engine::apply(input in) {
    return std::visit(
        [&](auto&& what) -> decisions {
            using T = std::decay_t<decltype(what)>;
            if constexpr (std::is_same_v<T, incident_event>) {
                return on_event(what, in.at);
            } else if constexpr (std::is_same_v<T, signal>) {
                return on_signal(std::move(what), in.at);
            } else if constexpr (std::is_same_v<T, source_report>) {
                return on_source_status(what.source, std::move(what.status), in.at);
            } else if constexpr (std::is_same_v<T, evidence_gathered>) {
                return on_evidence_gathered(what, in.at);
            } else {
                return on_tick(in.at);
            }
        },
        std::move(in.what)
    );
}

decisions engine::on_signal(signal s, wall_time now) {
    decisions out;
    const auto at = s.at;
    if (log_.add(std::move(s), now)) {
        for (auto& [id, inc] : incidents_) {
            // A signal far older than any rule looks back cannot change this incident.
            if (inc.open() && at >= inc.started - widest_before_) {
                mark_dirty(inc, now);
            }
        }
    }
    run_due(now, out);
    return finish(std::move(out));
}

decisions engine::on_source_status(std::string_view source, source_status status, wall_time now) {
    decisions out;
    auto it = sources_.find(source);
    const bool changed =
        it == sources_.end() || it->second.state != status.state || it->second.error != status.error;
    if (it == sources_.end()) {
        status.since = now;
        sources_.emplace(std::string{source}, std::move(status));
    } else if (changed) {
        status.since = it->second.state == status.state ? it->second.since : now;
        it->second = std::move(status);
    }
    if (changed) {
        mark_all_dirty(now);
        run_due(now, out);
    }
    return finish(std::move(out));
}

const incident* engine::find(std::string_view id) const {
    const auto it = incidents_.find(id);
    return it == incidents_.end() ? nullptr : &it->second;
}

std::size_t engine::open_count() const noexcept {
    return open_;
}

std::optional<wall_time> engine::next_wake() const {
    std::optional<wall_time> next;
    if (!due_.empty()) {
        next = due_.begin()->first;
    }
    if (!ops_due_.empty() && (!next || ops_due_.begin()->first < *next)) {
        next = ops_due_.begin()->first;
    }
    const auto earliest = [&](std::optional<wall_time> t) {
        if (t && (!next || *t < *next)) {
            next = t;
        }
    };
    earliest(storm_end());
    for (const auto& [key, s] : storms_) {
        earliest(s.due);
    }
    return next;
}

void engine::reschedule(incident& inc, wall_time next) {
    due_.erase({inc.next_update, inc.id});  // absent for an incident that just (re)opened
    inc.next_update = next;
    due_.insert({next, inc.id});
}

void engine::close(incident& inc, wall_time at) {
    due_.erase({inc.next_update, inc.id});
    cancel_refresh(inc);
    inc.state = incident_state::resolved;
    inc.resolved_at = at;
    inc.forget_at = at + settings_.resolved_retention;
    expiry_.insert({inc.forget_at, inc.id});
    open_ -= 1;
}

void engine::forget_expired(wall_time now) {
    while (!tombstone_expiry_.empty() && tombstone_expiry_.begin()->first <= now) {
        const auto node = tombstone_expiry_.extract(tombstone_expiry_.begin());
        const auto it = tombstones_.find(node.value().second);
        if (it != tombstones_.end() && it->second + settings_.resolved_retention <= now) {
            tombstones_.erase(it);
        }
    }
    while (!expiry_.empty() && expiry_.begin()->first <= now) {
        const auto node = expiry_.extract(expiry_.begin());
        const auto it = incidents_.find(node.value().second);
        // A reopened incident left expiry_ when it reopened, so this one is still resolved.
        if (it != incidents_.end() && !it->second.open()) {
            incidents_.erase(it);
        }
    }
}

decisions engine::finish(decisions d) const {
    d.next_wake = next_wake();
    return d;
}

std::vector<incident_view> engine::incidents_view() const {
    std::vector<incident_view> out;
    out.reserve(incidents_.size());
    for (const auto& [id, inc] : incidents_) {
        out.push_back(incident_view{id, inc.state, !inc.alert_summary.empty() || !inc.alert_details.empty()});
    }
    return out;
}

void engine::open_epoch(
    incident& inc, wall_time now, decisions& out, post_kind kind, std::optional<wall_time> late
) {
    inc.opened_at = now;
    inc.changed_at = now;
    inc.updates_posted = 0;
    inc.relays_posted = 0;
    inc.resolved_at.reset();
    inc.latest_news.clear();
    inc.latest_news_at.reset();
    cancel_refresh(inc);
    inc.ops = {};
    inc.timeline.clear();
    note(inc, inc.started, kind == post_kind::reopened ? "reopened" : "triggered");
    if (!inc.storm.empty()) {
        // Counted in the storm post by the caller: no schedule, notice or summary of its own.
        note(inc, now, "#status: counted in the storm post");
        return;
    }
    reschedule(inc, now + settings_.reminder_interval);
    auto text = kind == post_kind::reopened ? render::status_reopened(inc, settings_, now, late)
                                            : render::status_notice(inc, settings_, now, late);
    out.posts.push_back(make_status_post(inc, kind, 0, now, std::move(text)));
    note(inc, now, late ? "#status: notice posted (late)" : "#status: notice posted");
    first_summary(inc, now, out);
}

void engine::first_summary(incident& inc, wall_time now, decisions& out) {
    const millis wait = settings_.operations.gather_deadline;
    if (wait <= millis{0} || !settings_.operations.enabled || !settings_.rules) {
        refresh_operations(inc, now, out);  // with the notice
        return;
    }
    // What the sources saw before the page may be minutes old (a poll interval), and the
    // first summary is the one engineers read: it waits, a few seconds at most, for each
    // source to look again. Signals meanwhile find the refresh pending and add nothing.
    inc.ops.due = now + wait;
    ops_due_.insert({*inc.ops.due, inc.id});
    out.gather.push_back(gather_request{inc.id, inc.epoch, inc.started - widest_before_, now, now + wait});
}

decisions engine::on_evidence_gathered(const evidence_gathered& g, wall_time now) {
    decisions out;
    const auto it = incidents_.find(g.incident);
    // Only a first summary still waiting: later evidence edits it through the usual refresh.
    if (it != incidents_.end() && it->second.open() && it->second.epoch == g.epoch &&
        it->second.ops.summaries == 0 && it->second.ops.due) {
        refresh_operations(it->second, now, out);
    }
    return finish(std::move(out));
}

void engine::reopen(
    incident& inc, wall_time started, wall_time now, decisions& out, std::optional<wall_time> late
) {
    expiry_.erase({inc.forget_at, inc.id});
    inc.state = incident_state::triggered;
    open_ += 1;
    inc.acknowledged_by.clear();
    inc.epoch += 1;
    inc.started = started;
    inc.storm.clear();  // its old storm counted it as resolved
    if (storming(inc.id, false, now)) {
        count_in_storm(&inc, inc.service_id, inc.service_name, inc.title, post_kind::reopened, now);
    }
    open_epoch(inc, now, out, post_kind::reopened, late);
}

void engine::resolve(
    incident& inc, wall_time at, wall_time now, decisions& out, std::optional<wall_time> late
) {
    if (!inc.storm.empty()) {
        resolve_in_storm(inc, at, now);
        return;
    }
    close(inc, at);
    inc.changed_at = now;
    out.posts.push_back(
        make_status_post(inc, post_kind::resolved, 0, now, render::status_resolved(inc, settings_, now, late))
    );
    note(inc, now, late ? "#status: resolved posted (late)" : "#status: resolved posted");
    if (settings_.operations.enabled && settings_.rules) {
        const ranking final_ranking = rank_incident(inc, now);
        out.posts.push_back(post{
            .to = channel::operations,
            .kind = post_kind::timeline,
            .incident_id = inc.id,
            .key = inc.id + "/" + std::to_string(inc.epoch) + "/timeline",
            .at = now,
            .text = render::operations_timeline(inc, final_ranking, settings_, now),
            .coalescible = false,
            .edit_of = {},
            .merged = {},
        });
    }
}

decisions engine::reconcile(const incident_event& ev, wall_time now) {
    decisions out;
    forget_expired(now);
    if (ev.type == incident_event_type::annotated) {
        // A note read from PagerDuty's log (its webhook lost?): the latest news, dated when it
        // was written, unless the engine knows it or newer news (a webhook that did arrive is
        // stamped when it arrived, which is after the note was written).
        const auto it = incidents_.find(ev.incident.id);
        if (it != incidents_.end() && it->second.open() && !ev.message.empty()) {
            incident& inc = it->second;
            const wall_time at = event_time(ev.occurred_at, now);
            const bool known =
                inc.latest_news == ev.message || (inc.latest_news_at && *inc.latest_news_at >= at);
            if (!known && at >= inc.started) {
                inc.latest_news = ev.message;
                inc.latest_news_is_status_update = false;
                inc.latest_news_at = at;
            }
        }
        return finish(std::move(out));
    }
    const auto& status = ev.incident.status;
    if (ev.incident.id.empty() || !status) {
        return finish(std::move(out));
    }
    const bool open_there = *status == "triggered" || *status == "acknowledged";
    if (!open_there && *status != "resolved") {
        return finish(std::move(out));
    }
    // The state was read when the request left; a later time would be a clock gone wrong.
    const wall_time as_of = std::min(ev.as_of.value_or(now), now);
    const auto late_if = [&](wall_time happened) -> std::optional<wall_time> {
        return now - happened > settings_.late_after ? std::optional<wall_time>{happened} : std::nullopt;
    };

    auto it = incidents_.find(ev.incident.id);
    if (it == incidents_.end()) {
        if (!open_there) {
            return finish(std::move(out));  // never announced: nothing to resolve
        }
        if (const auto t = tombstones_.find(ev.incident.id); t != tombstones_.end() && as_of < t->second) {
            return finish(std::move(out));  // a webhook said resolved after this was read
        }
        if (untracked_ids_.contains(ev.incident.id)) {
            return finish(std::move(out));  // counted in a storm already
        }
        // Triggered while we were down, or its webhook was lost: the notice, marked late.
        const wall_time started = ev.incident.created_at && *ev.incident.created_at <= now
                                      ? *ev.incident.created_at
                                      : event_time(ev.occurred_at, now);
        incident* admitted = admit(ev.incident, started, post_kind::notice, now, out, late_if(started));
        if (admitted == nullptr) {
            return finish(std::move(out));
        }
        incident& fresh = *admitted;
        if (*status == "acknowledged") {
            fresh.state = incident_state::acknowledged;
            fresh.acknowledged_by = ev.agent;
            note(fresh, now, ev.agent.empty() ? "acknowledged" : "acknowledged by " + ev.agent);
        }
        return finish(std::move(out));
    }

    incident& inc = it->second;
    bool reopened = false;
    if (as_of < inc.changed_at) {
        // Read before the engine's last change (a webhook, or a newer answer): only what
        // does not change with state (the first alert) is taken.
        if (take_alert(inc, ev.incident)) {
            mark_dirty(inc, now);
            run_due(now, out);
        }
        return finish(std::move(out));
    }
    const bool alert_news = take_alert(inc, ev.incident);
    inc.merge(ev.incident);
    if (inc.open()) {
        if (!open_there) {
            const wall_time at = event_time(ev.occurred_at, now);
            resolve(inc, at, now, out, late_if(at));
        } else if (*status == "acknowledged" && inc.state == incident_state::triggered) {
            inc.state = incident_state::acknowledged;
            inc.acknowledged_by = ev.agent;
            inc.changed_at = now;
            note(inc, now, ev.agent.empty() ? "acknowledged" : "acknowledged by " + ev.agent);
        } else if (*status == "triggered" && inc.state == incident_state::acknowledged) {
            inc.state = incident_state::triggered;
            inc.acknowledged_by.clear();
            inc.changed_at = now;
        }
    } else if (open_there && ev.occurred_at && inc.resolved_at && *ev.occurred_at > *inc.resolved_at) {
        reopened = true;
        // Open at PagerDuty since after it resolved here: it reopened and the webhook was lost.
        const wall_time at = event_time(ev.occurred_at, now);
        reopen(inc, at, now, out, late_if(at));
        if (*status == "acknowledged") {
            inc.state = incident_state::acknowledged;
            inc.acknowledged_by = ev.agent;
        }
    }
    if (alert_news && !reopened && inc.open()) {
        // The indicator is new: the #operations summary shows it at its next refresh.
        mark_dirty(inc, now);
        run_due(now, out);
    }
    return finish(std::move(out));
}

decisions engine::on_event(const incident_event& ev, wall_time now) {
    decisions out = ev.origin == event_origin::reconciliation ? reconcile(ev, now) : on_webhook(ev, now);
    run_storms(now, out);
    return finish(std::move(out));
}

decisions engine::on_webhook(const incident_event& ev, wall_time now) {
    decisions out;
    forget_expired(now);
    if (ev.incident.id.empty()) {
        return finish(std::move(out));
    }
    const bool reopening =
        ev.type == incident_event_type::reopened || ev.type == incident_event_type::triggered;

    auto it = incidents_.find(ev.incident.id);
    if (it == incidents_.end() && untracked_ids_.contains(ev.incident.id)) {
        // Counted in a storm past the open limit: its later events are not counted again.
        if (ev.type == incident_event_type::resolved) {
            untracked_ids_.erase(ev.incident.id);
            tombstones_.insert_or_assign(ev.incident.id, now);
            tombstone_expiry_.insert({now + settings_.resolved_retention, ev.incident.id});
        }
        return finish(std::move(out));
    }
    if (it == incidents_.end()) {
        if (!opens_unknown_incident(ev)) {
            if (ev.type == incident_event_type::resolved) {
                // Remembered, so that a reconciliation read before this cannot open it.
                tombstones_.insert_or_assign(ev.incident.id, now);
                tombstone_expiry_.insert({now + settings_.resolved_retention, ev.incident.id});
            }
            return finish(std::move(out));
        }
        // First word of an open incident we never saw trigger (we started late, or the
        // trigger was lost upstream): users still deserve the notice.
        const wall_time started = ev.incident.created_at && *ev.incident.created_at <= now
                                      ? *ev.incident.created_at
                                      : event_time(ev.occurred_at, now);
        const auto kind = ev.type == incident_event_type::reopened ? post_kind::reopened : post_kind::notice;
        if (admit(ev.incident, started, kind, now, out) == nullptr) {
            return finish(std::move(out));  // past the open limit: counted in the storm
        }
        it = incidents_.find(ev.incident.id);
    } else if (!it->second.open()) {
        if (!reopening) {
            // A late acknowledgement or note for a resolved incident changes nothing users see.
            return finish(std::move(out));
        }
        incident& inc = it->second;
        inc.merge(ev.incident);
        reopen(inc, event_time(ev.occurred_at, now), now, out, std::nullopt);
    }

    incident& inc = it->second;
    inc.merge(ev.incident);
    switch (ev.type) {
        case incident_event_type::triggered:
        case incident_event_type::reopened:
            // Already open: a repeated trigger adds nothing users need to hear.
            break;
        case incident_event_type::acknowledged:
            if (inc.state == incident_state::acknowledged && inc.acknowledged_by == ev.agent) {
                break;  // already known (a reconciliation told it first)
            }
            inc.state = incident_state::acknowledged;
            inc.acknowledged_by = ev.agent;
            inc.changed_at = now;
            note(inc, now, ev.agent.empty() ? "acknowledged" : "acknowledged by " + ev.agent);
            break;
        case incident_event_type::unacknowledged:
            inc.state = incident_state::triggered;
            inc.acknowledged_by.clear();
            inc.changed_at = now;
            break;
        case incident_event_type::escalated:
        case incident_event_type::reassigned:
        case incident_event_type::priority_updated: break;
        case incident_event_type::annotated:
            inc.latest_news = ev.message;
            inc.latest_news_is_status_update = false;
            inc.latest_news_at = now;
            break;
        case incident_event_type::status_update_published: {
            inc.latest_news = ev.message;
            inc.latest_news_is_status_update = true;
            inc.latest_news_at = now;
            inc.relays_posted += 1;
            out.posts.push_back(make_status_post(
                inc, post_kind::relay, inc.relays_posted, now, render::status_relay(inc, settings_, now)
            ));
            note(inc, now, "#status: PagerDuty status update relayed");
            // The relay is this period's update: the next one is a full interval away. A
            // storm's incident has no schedule (a person wrote this, so it is posted).
            if (inc.storm.empty()) {
                reschedule(inc, now + settings_.reminder_interval);
            }
            break;
        }
        case incident_event_type::resolved:
            resolve(inc, event_time(ev.occurred_at, now), now, out, {});
            break;
    }
    return finish(std::move(out));
}

decisions engine::on_tick(wall_time now) {
    decisions out;
    forget_expired(now);
    log_.expire(now);
    end_storm_if_over(now);
    run_storms(now, out);
    run_due(now, out);
    while (!due_.empty() && due_.begin()->first <= now) {
        incident& inc = incidents_.find(due_.begin()->second)->second;
        inc.updates_posted += 1;
        out.posts.push_back(make_status_post(
            inc,
            post_kind::update,
            inc.updates_posted,
            now,
            render::status_update(inc, settings_, now, dominant_status(inc, now))
        ));
        note(inc, now, "#status: update " + std::to_string(inc.updates_posted) + " posted");
        auto next = inc.next_update + settings_.reminder_interval;
        if (next <= now) {
            // We were not woken for a whole interval (suspended host): one update
            // now, then a fresh cadence, rather than a burst of stale ones.
            next = now + settings_.reminder_interval;
        }
        reschedule(inc, next);
    }
    return finish(std::move(out));
}

// ---------------------------------------------------------------------------------------------
// Storms: more new incidents in a window than limits.storm_threshold, or one past
// limits.max_open_incidents. One post per channel for all of them, edited as it grows.

namespace {

/// Services listed by name in a storm; the others are counted together.
constexpr std::size_t max_storm_services = 50;

void add_merge(std::vector<merged_posts>& v, post_kind kind, merge_reason reason) {
    for (auto& m : v) {
        if (m.kind == kind && m.reason == reason) {
            m.count += 1;
            return;
        }
    }
    v.push_back(merged_posts{kind, reason, 1});
}

std::string storm_service_name(const engine_settings& s, std::string_view id, std::string_view pager_name) {
    if (const auto it = s.services.find(id); it != s.services.end()) {
        return it->second.name;
    }
    if (!pager_name.empty()) {
        return std::string{pager_name};
    }
    return id.empty() ? std::string{"Unknown service"} : std::string{id};
}

void add_storm_line(storm_state& s, std::string_view id, std::string name, std::string_view title) {
    if (const auto it = s.services.find(id); it != s.services.end()) {
        it->second.count += 1;
        return;
    }
    if (s.services.size() >= max_storm_services) {
        s.other_incidents += 1;
        return;
    }
    s.services.emplace(std::string{id}, storm_line{std::move(name), std::string{title}, 1});
    s.service_order.emplace_back(id);
}

}  // namespace

const storm_state* engine::current_storm() const {
    const auto it = storms_.find(current_storm_);
    return current_storm_.empty() || it == storms_.end() ? nullptr : &it->second;
}

std::optional<wall_time> engine::storm_end() const {
    if (current_storm_.empty()) {
        return std::nullopt;
    }
    const auto& lim = settings_.limits;
    // Over once fewer than the threshold opened in the last window (the oldest of the last
    // `threshold` opens leaves it) and none came past the limit in it.
    std::optional<wall_time> end;
    if (lim.storm_threshold > 0 && recent_opens_.size() >= lim.storm_threshold) {
        end = recent_opens_[recent_opens_.size() - lim.storm_threshold].first + lim.storm_window;
    }
    if (last_untracked_) {
        const auto t = *last_untracked_ + lim.storm_window;
        end = end ? std::max(*end, t) : t;
    }
    if (!end) {
        const auto* s = current_storm();
        end = (s != nullptr ? s->last_opened : wall_time{}) + lim.storm_window;
    }
    return end;
}

void engine::end_storm_if_over(wall_time now) {
    const auto end = storm_end();
    if (!end || *end > now) {
        return;
    }
    const auto it = storms_.find(current_storm_);
    current_storm_.clear();
    if (it != storms_.end()) {
        it->second.ended = *end;
        storm_dirty(it->second, now);
    }
}

bool engine::storm_under_way(wall_time now) {
    end_storm_if_over(now);
    if (!current_storm_.empty()) {
        return true;
    }
    const auto& lim = settings_.limits;
    const auto in_window = std::count_if(recent_opens_.begin(), recent_opens_.end(), [&](const auto& o) {
        return o.first > now - lim.storm_window;
    });
    return lim.storm_threshold > 0 && static_cast<std::size_t>(in_window) >= lim.storm_threshold;
}

bool engine::untrack_oldest_storm_incident(wall_time now) {
    while (!storm_members_.empty()) {
        const std::string id = std::move(storm_members_.front());
        storm_members_.pop_front();
        const auto it = incidents_.find(id);
        if (it == incidents_.end() || !it->second.open() || it->second.storm.empty()) {
            continue;  // resolved, reopened on its own, or forgotten since
        }
        incident& inc = it->second;
        if (const auto st = storms_.find(inc.storm); st != storms_.end()) {
            st->second.open -= st->second.open > 0 ? 1 : 0;
            st->second.untracked += 1;
            storm_dirty(st->second, now);
        }
        remember_untracked(id);
        due_.erase({inc.next_update, inc.id});
        cancel_refresh(inc);
        open_ -= 1;
        incidents_.erase(it);
        return true;
    }
    return false;
}

void engine::remember_untracked(const std::string& id) {
    if (untracked_ids_.insert(id).second) {
        untracked_order_.push_back(id);
        while (untracked_order_.size() > std::max<std::size_t>(settings_.limits.max_open_incidents, 1)) {
            untracked_ids_.erase(untracked_order_.front());
            untracked_order_.pop_front();
        }
    }
}

bool engine::storming(std::string_view id, bool over_limit, wall_time now) {
    end_storm_if_over(now);
    const auto& lim = settings_.limits;
    while (!recent_opens_.empty() && recent_opens_.front().first <= now - lim.storm_window) {
        recent_opens_.pop_front();
    }
    const bool too_many = lim.storm_threshold > 0 && recent_opens_.size() >= lim.storm_threshold;
    if (current_storm_.empty() && (too_many || over_limit)) {
        storm_state s;
        s.key = "storm/" + std::to_string(now.time_since_epoch().count());
        s.started = recent_opens_.empty() ? now : recent_opens_.front().first;
        s.last_opened = now;
        s.by_limit = !too_many;
        // The incidents of the window so far were posted one by one; they join the storm, so
        // that its figures count them and their resolutions post nothing more.
        for (const auto& [at, earlier] : recent_opens_) {
            const auto it = incidents_.find(earlier);
            if (it == incidents_.end() || !it->second.storm.empty()) {
                continue;  // counted past the limit, or in a storm before
            }
            incident& inc = it->second;
            s.opened += 1;
            s.posted_alone += 1;
            add_storm_line(
                s, inc.service_id, storm_service_name(settings_, inc.service_id, inc.service_name), inc.title
            );
            inc.storm = s.key;
            if (!inc.open()) {
                s.resolved += 1;
                continue;
            }
            s.open += 1;
            note_storm_member(inc.id);
            due_.erase({inc.next_update, inc.id});
            if (inc.ops.summaries == 0 && inc.ops.due && settings_.operations.enabled && settings_.rules) {
                add_merge(s.merged_ops, post_kind::summary, merge_reason::storm);
            }
            cancel_refresh(inc);
            note(inc, now, "#status: counted in the storm post from now on");
        }
        storm_dirty(s, now);
        current_storm_ = s.key;
        storms_.emplace(s.key, std::move(s));
    }
    if (lim.storm_threshold > 0) {
        recent_opens_.emplace_back(now, std::string{id});
        while (recent_opens_.size() > lim.storm_threshold) {
            recent_opens_.pop_front();
        }
    }
    return !current_storm_.empty();
}

void engine::count_in_storm(
    incident* inc,
    std::string_view service_id,
    std::string_view service_name,
    std::string_view title,
    post_kind kind,
    wall_time now
) {
    auto& s = storms_.at(current_storm_);
    s.opened += 1;
    s.last_opened = now;
    add_storm_line(s, service_id, storm_service_name(settings_, service_id, service_name), title);
    if (inc == nullptr) {
        s.untracked += 1;
        add_merge(s.merged_status, kind, merge_reason::untracked);
    } else {
        inc->storm = s.key;
        note_storm_member(inc->id);
        s.open += 1;
        add_merge(s.merged_status, kind, merge_reason::storm);
        if (settings_.operations.enabled && settings_.rules) {
            add_merge(s.merged_ops, post_kind::summary, merge_reason::storm);
        }
    }
    storm_dirty(s, now);
}

void engine::note_storm_member(const std::string& id) {
    storm_members_.push_back(id);
    if (storm_members_.size() > 2 * std::max<std::size_t>(settings_.limits.max_open_incidents, 1)) {
        // Most are resolved by now: keep the ones still open in a storm, in order.
        std::erase_if(storm_members_, [&](const std::string& m) {
            const auto it = incidents_.find(m);
            return it == incidents_.end() || !it->second.open() || it->second.storm.empty();
        });
    }
}

void engine::storm_dirty(storm_state& s, wall_time now) {
    if (s.due) {
        return;
    }
    s.due = s.last_sent ? std::max(now, *s.last_sent + settings_.limits.storm_edit_interval) : now;
}

void engine::resolve_in_storm(incident& inc, wall_time at, wall_time now) {
    close(inc, at);
    inc.changed_at = now;
    note(inc, now, "#status: resolution counted in the storm post");
    const auto it = storms_.find(inc.storm);
    if (it == storms_.end()) {
        return;
    }
    storm_state& s = it->second;
    s.open -= s.open > 0 ? 1 : 0;
    s.resolved += 1;
    add_merge(s.merged_status, post_kind::resolved, merge_reason::storm);
    if (settings_.operations.enabled && settings_.rules) {
        add_merge(s.merged_ops, post_kind::timeline, merge_reason::storm);
    }
    storm_dirty(s, now);
}

incident* engine::admit(
    const incident_facts& facts,
    wall_time started,
    post_kind kind,
    wall_time now,
    decisions& out,
    std::optional<wall_time> late
) {
    bool over_limit = open_ >= settings_.limits.max_open_incidents;
    if (over_limit && !storm_under_way(now) && untrack_oldest_storm_incident(now)) {
        // Outside a storm a new incident is worth more than following a storm's incident,
        // which is only a figure in its storm post: it takes that one's place.
        over_limit = false;
    }
    const bool in_storm = storming(facts.id, over_limit, now);
    if (over_limit) {
        last_untracked_ = now;
        count_in_storm(
            nullptr,
            facts.service_id.value_or(""),
            facts.service_name.value_or(""),
            facts.title.value_or(""),
            kind,
            now
        );
        remember_untracked(facts.id);
        return nullptr;
    }
    incident fresh;
    fresh.id = facts.id;
    fresh.merge(facts);
    fresh.started = started;
    auto& inc = incidents_.emplace(fresh.id, std::move(fresh)).first->second;
    open_ += 1;
    if (in_storm) {
        count_in_storm(&inc, inc.service_id, inc.service_name, inc.title, kind, now);
    }
    open_epoch(inc, now, out, kind, late);
    return &inc;
}

void engine::run_storms(wall_time now, decisions& out) {
    const bool ops = settings_.operations.enabled && settings_.rules;
    for (auto it = storms_.begin(); it != storms_.end();) {
        storm_state& s = it->second;
        if (s.due && *s.due <= now) {
            const auto make =
                [&](channel to, const std::string& base, int& edits, std::vector<merged_posts>& merged) {
                    post p{
                        .to = to,
                        .kind = post_kind::storm,
                        .incident_id = s.key,
                        .key = base,
                        .at = now,
                        .text = to == channel::status ? render::status_storm(s, settings_, now)
                                                      : render::operations_storm(s, settings_, now),
                        .coalescible = false,
                        .edit_of = {},
                        .merged = std::exchange(merged, {}),
                    };
                    if (s.posted) {
                        edits += 1;
                        p.edit_of = base;
                        p.key = base + "/edit/" + std::to_string(edits);
                    }
                    out.posts.push_back(std::move(p));
                };
            make(channel::status, s.key + "/status", s.status_edits, s.merged_status);
            if (ops) {
                make(channel::operations, s.key + "/operations", s.ops_edits, s.merged_ops);
            }
            s.merged_ops.clear();
            s.posted = true;
            s.last_sent = now;
            s.due.reset();
        }
        // Said all there is to say: ended, nothing open, nothing due.
        if (s.ended && s.open == 0 && !s.due) {
            it = storms_.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace runbookd
