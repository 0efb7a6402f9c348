#include "core/rank.hpp"

#include "core/signal.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace runbookd {
namespace {

/// One supporting signal and the leaf that found it.
struct found {
    const signal* s = nullptr;
    const signal_test* leaf = nullptr;
    millis distance{0};  ///< |s.at - start|
    std::size_t leaf_count = 0;
};

/// What a condition (sub)tree concluded.
struct outcome {
    bool matched = false;
    bool checkable = true;
    double strength = 0;
    std::vector<found> support;              ///< closest to the start first, capped
    std::vector<std::string> calendar_lines;  ///< evidence from calendar leaves
    std::vector<std::string> unchecked;      ///< why a leaf could not be checked
    std::vector<std::string> checked;        ///< what was checked and found clear
};

/// Population statistics of a leaf, for its "checked" phrase.
struct leaf_stats {
    std::size_t count = 0;
    std::optional<double> max;
    std::optional<double> min;
    std::optional<double> latest;
};

std::string number_text(double v) {
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "%.4g", v);
    return buf.data();
}

std::string clock_text(wall_time t) {
    const auto s = format_rfc3339(t);  // 2026-11-24T10:00:00.000Z
    return s.substr(11, 5) + " UTC";
}

bool glob(std::string_view pattern, std::string_view text) {
    if (pattern == "*") {
        return true;
    }
    if (pattern.ends_with('*')) {
        return text.starts_with(pattern.substr(0, pattern.size() - 1));
    }
    return pattern == text;
}

bool passes(const label_test& t, const signal& s) {
    const std::string* v = s.find(t.label);
    const std::string_view value = v == nullptr ? std::string_view{} : std::string_view{*v};
    switch (t.how) {
        case label_test::op::equals: return v != nullptr && value == t.values.front();
        case label_test::op::not_equals: return v == nullptr || value != t.values.front();
        case label_test::op::matches: return v != nullptr && std::regex_match(v->begin(), v->end(), *t.pattern);
        case label_test::op::in:
            return v != nullptr && std::find(t.values.begin(), t.values.end(), value) != t.values.end();
        case label_test::op::not_in:
            return v == nullptr || std::find(t.values.begin(), t.values.end(), value) == t.values.end();
    }
    return false;
}

bool value_ok(const signal_test& t, const signal& s) {
    if (!t.above && !t.below) {
        return true;
    }
    if (!s.value) {
        return false;
    }
    return (!t.above || *s.value > *t.above) && (!t.below || *s.value < *t.below);
}

millis distance(wall_time a, wall_time b) {
    return a < b ? b - a : a - b;
}

/// Keeps the `cap` supporting signals closest to the start, closest first.
void keep_closest(std::vector<found>& v, found f, std::size_t cap) {
    const auto pos = std::upper_bound(v.begin(), v.end(), f, [](const found& a, const found& b) {
        return a.distance < b.distance;
    });
    if (static_cast<std::size_t>(pos - v.begin()) >= cap) {
        return;
    }
    v.insert(pos, f);
    if (v.size() > cap) {
        v.pop_back();
    }
}

std::string window_text(const time_window& w) {
    return format_duration(w.before) + " before to " + format_duration(w.after) + " after the alert";
}

class evaluator {
public:
    evaluator(const signal_log& log, const source_map& sources, const rank_input& in)
        : log_(log), sources_(sources), in_(in) {}

    outcome eval(const condition& c) {
        switch (c.what) {
            case condition::op::signal: return leaf(c.signal);
            case condition::op::calendar: return calendar(c.calendar);
            case condition::op::all:
            case condition::op::any:
            case condition::op::none: break;
        }
        std::vector<outcome> kids;
        kids.reserve(c.children.size());
        for (const auto& child : c.children) {
            kids.push_back(eval(child));
        }
        outcome out;
        const auto gather = [&](bool support) {
            for (auto& k : kids) {
                if (support) {
                    for (const auto& f : k.support) {
                        keep_closest(out.support, f, cap());
                    }
                    out.calendar_lines.insert(out.calendar_lines.end(), k.calendar_lines.begin(), k.calendar_lines.end());
                }
                out.unchecked.insert(out.unchecked.end(), k.unchecked.begin(), k.unchecked.end());
                out.checked.insert(out.checked.end(), k.checked.begin(), k.checked.end());
            }
        };
        const bool all_checkable = std::all_of(kids.begin(), kids.end(), [](const outcome& k) { return k.checkable; });
        if (c.what == condition::op::all) {
            out.matched = std::all_of(kids.begin(), kids.end(), [](const outcome& k) { return k.matched; });
            out.strength = 1;
            for (const auto& k : kids) {
                out.strength = std::min(out.strength, k.strength);
            }
            out.checkable = out.matched || all_checkable;
            gather(out.matched);
        } else if (c.what == condition::op::any) {
            double miss = 1;
            for (const auto& k : kids) {
                if (k.matched) {
                    out.matched = true;
                    miss *= 1 - k.strength;  // independent evidence adds up (noisy-or)
                }
            }
            out.strength = out.matched ? 1 - miss : 0;
            out.checkable = out.matched || all_checkable;
            // Only the children that held support the cause.
            for (auto& k : kids) {
                if (!k.matched) {
                    k.support.clear();
                    k.calendar_lines.clear();
                }
            }
            gather(true);
        } else {
            out.matched = std::none_of(kids.begin(), kids.end(), [](const outcome& k) { return k.matched; });
            out.strength = out.matched ? 1 : 0;
            out.checkable = all_checkable;
            gather(false);
        }
        return out;
    }

    /// Stats of the first signal leaf's population, for a rule-level "checked" phrase.
    std::optional<std::pair<const signal_test*, leaf_stats>> first_stats;

private:
    std::size_t cap() const { return std::max<std::size_t>(in_.max_evidence, 3); }

    /// Empty when the kind can be checked, else why not.
    std::string unavailable(std::string_view kind) const {
        const signal_kind* k = find_signal_kind(kind);
        const std::string_view src = k == nullptr ? std::string_view{"unknown"} : k->source;
        const auto it = sources_.find(src);
        if (it == sources_.end()) {
            return "the " + std::string{src} + " source is not configured";
        }
        if (it->second.state == source_state::failing) {
            return "the " + std::string{src} + " source is failing" +
                   (it->second.error.empty() ? std::string{} : ": " + it->second.error);
        }
        return {};
    }

    outcome leaf(const signal_test& t) {
        outcome out;
        if (auto why = unavailable(t.kind); !why.empty()) {
            out.checkable = false;
            out.unchecked.push_back(t.kind + ": " + why);
            return out;
        }
        const wall_time from = in_.start - t.window.before;
        const wall_time to = std::min(in_.start + t.window.after, in_.now);
        leaf_stats stats;
        std::size_t count = 0;
        std::vector<found> support;
        // For `sustained`: per subject, when the current run of matching samples began.
        std::map<std::string_view, std::optional<wall_time>> run_start;
        std::set<std::string_view> sustained_subjects;
        for (const signal& s : log_.between(t.kind, from, to)) {
            if (t.related && !related_to(s, in_.service)) {
                continue;
            }
            if (!std::all_of(t.where.begin(), t.where.end(), [&](const label_test& lt) { return passes(lt, s); })) {
                continue;
            }
            stats.count += 1;
            if (s.value) {
                stats.max = std::max(stats.max.value_or(*s.value), *s.value);
                stats.min = std::min(stats.min.value_or(*s.value), *s.value);
                stats.latest = s.value;
            }
            const bool ok = value_ok(t, s);
            if (t.sustained) {
                auto& begun = run_start[s.subject];
                if (!ok) {
                    begun.reset();
                    continue;
                }
                if (!begun) {
                    begun = s.at;
                }
                if (s.at - *begun < *t.sustained) {
                    continue;  // matching, but not for long enough yet
                }
                sustained_subjects.insert(s.subject);
            } else if (!ok) {
                continue;
            }
            count += 1;
            keep_closest(support, found{&s, &t, distance(s.at, in_.start), 0}, cap());
        }
        if (!first_stats) {
            first_stats.emplace(&t, stats);
        }
        out.matched = count >= t.at_least && count > 0;
        if (out.matched) {
            out.strength = t.strength;
            for (auto& f : support) {
                f.leaf_count = count;
            }
            out.support = std::move(support);
        } else if (!t.clear.empty()) {
            out.checked.push_back(checked_phrase(t.clear, t, stats));
        }
        return out;
    }

    outcome calendar(const calendar_test& t) {
        outcome out;
        const auto m = to_local(t.window, in_.start);
        const auto window = describe(t.window);
        if (contains(t.window, in_.start)) {
            out.matched = true;
            out.strength = t.strength;
            const auto lookup = [&](std::string_view name) -> std::optional<std::string> {
                if (name == "local_time") {
                    return m.text;
                }
                if (name == "window") {
                    return window;
                }
                if (name == "service") {
                    return in_.service.name;
                }
                return std::nullopt;
            };
            out.calendar_lines.push_back(
                t.evidence.empty() ? "the alert came at " + m.text + ", inside " + window : t.evidence.render(lookup)
            );
        } else {
            out.checked.push_back("the alert came at " + m.text + ", outside " + window);
        }
        return out;
    }

public:
    std::string checked_phrase(const text_template& clear, const signal_test& t, const leaf_stats& stats) const {
        const bool needs_values = [&] {
            for (const auto& p : clear.parts()) {
                if (p.placeholder && (p.text == "max" || p.text == "min" || p.text == "latest")) {
                    return true;
                }
            }
            return false;
        }();
        if (clear.empty()) {
            return "no matching " + t.kind + " from " + window_text(t.window);
        }
        if (needs_values && !stats.max) {
            // An empty series is "no data", not zero: say so rather than invent a figure.
            return "no " + t.kind + " data from " + window_text(t.window);
        }
        const auto lookup = [&](std::string_view name) -> std::optional<std::string> {
            if (name == "count") {
                return std::to_string(stats.count);
            }
            if (name == "max" && stats.max) {
                return number_text(*stats.max);
            }
            if (name == "min" && stats.min) {
                return number_text(*stats.min);
            }
            if (name == "latest" && stats.latest) {
                return number_text(*stats.latest);
            }
            if (name == "window") {
                return window_text(t.window);
            }
            if (name == "service") {
                return in_.service.name;
            }
            if (name == "kind") {
                return t.kind;
            }
            return std::nullopt;
        };
        return clear.render(lookup);
    }

private:
    const signal_log& log_;
    const source_map& sources_;
    const rank_input& in_;
};

std::optional<std::string> builtin(std::string_view name, const found& f, const rank_input& in) {
    const signal& s = *f.s;
    if (name == "subject") {
        return s.subject;
    }
    if (name == "kind") {
        return s.kind;
    }
    if (name == "source") {
        return s.source;
    }
    if (name == "value") {
        return s.value ? std::optional{number_text(*s.value)} : std::nullopt;
    }
    if (name == "at") {
        return clock_text(s.at);
    }
    if (name == "ago") {
        return relative_to_alert(s.at, in.start);
    }
    if (name == "service") {
        return in.service.name;
    }
    if (name == "count") {
        return std::to_string(f.leaf_count);
    }
    return std::nullopt;
}

/// Renders `t`; nullopt when a placeholder has no value.
std::optional<std::string> render_strict(const text_template& t, const text_template::lookup& values) {
    bool missing = false;
    auto text = t.render([&](std::string_view name) {
        auto v = values(name);
        missing = missing || !v;
        return v;
    });
    if (missing) {
        return std::nullopt;
    }
    return text;
}

/// Renders `t` for one signal: its labels, then the built-in placeholders.
std::optional<std::string> render_for(const text_template& t, const found& f, const rank_input& in) {
    return render_strict(t, [&](std::string_view name) -> std::optional<std::string> {
        if (const std::string* v = f.s->find(name)) {
            return *v;
        }
        return builtin(name, f, in);
    });
}

text_template::lookup service_only(const rank_input& in) {
    return [&in](std::string_view name) -> std::optional<std::string> {
        return name == "service" ? std::optional{in.service.name} : std::nullopt;
    };
}

void add_unique(std::vector<std::string>& v, std::string s, std::size_t cap) {
    if (v.size() < cap && std::find(v.begin(), v.end(), s) == v.end()) {
        v.push_back(std::move(s));
    }
}

std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) {
        out += (out.empty() ? "" : "; ") + p;
    }
    return out;
}

}  // namespace

bool related_to(const signal& s, const service_scope& service) {
    if (service.workloads.empty()) {
        return true;  // the service's workloads are not configured: nothing can be excluded
    }
    const std::string* deployment = s.find("deployment");
    const std::string* ns = s.find("namespace");
    const std::string* svc = s.find("service");
    for (const auto& w : service.workloads) {
        const auto slash = w.find('/');
        const std::string_view want_ns = slash == std::string::npos ? std::string_view{"*"} : std::string_view{w}.substr(0, slash);
        const std::string_view want_name = slash == std::string::npos ? std::string_view{w} : std::string_view{w}.substr(slash + 1);
        if (deployment != nullptr && !deployment->empty() && glob(want_name, *deployment) &&
            (ns == nullptr || glob(want_ns, *ns))) {
            return true;
        }
        if (svc != nullptr && !svc->empty() && glob(want_name, *svc)) {
            return true;
        }
    }
    return svc != nullptr && !svc->empty() && (*svc == service.id || *svc == service.name);
}

std::string relative_to_alert(wall_time at, wall_time start) {
    if (distance(at, start) < std::chrono::seconds{1}) {
        return "at the alert";
    }
    return human_duration(distance(at, start)) + (at < start ? " before the alert" : " after the alert");
}

ranking rank(const rule_set& rules, const signal_log& log, const source_map& sources, const rank_input& in) {
    ranking out;
    double total = 0;
    for (const rule& r : rules.rules) {
        evaluator ev{log, sources, in};
        outcome o = ev.eval(r.when);
        if (!o.matched) {
            if (!o.checkable) {
                out.not_checkable.push_back(checked{r.id, r.title, join(o.unchecked)});
            } else if (!r.clear.empty()) {
                std::string detail;
                if (ev.first_stats) {
                    // The rule's text, with the first signal leaf's window and statistics.
                    detail = ev.checked_phrase(r.clear, *ev.first_stats->first, ev.first_stats->second);
                } else {
                    detail = r.clear.render(service_only(in));
                }
                out.clear.push_back(checked{r.id, r.title, std::move(detail)});
            } else if (!o.checked.empty()) {
                out.clear.push_back(checked{r.id, r.title, join(o.checked)});
            } else {
                // No leaf says what it checked: name the first signal condition.
                const signal_test* first = ev.first_stats ? ev.first_stats->first : nullptr;
                out.clear.push_back(checked{
                    r.id,
                    r.title,
                    first == nullptr ? std::string{"its conditions do not hold"}
                                     : ev.checked_phrase(text_template{}, *first, ev.first_stats->second)});
            }
            continue;
        }
        suspect s;
        s.id = r.id;
        s.title = r.title;
        s.prior = r.prior;
        s.strength = o.strength;
        s.status_text = r.status_text;
        if (r.recent && !o.support.empty()) {
            const double halves = std::chrono::duration<double>(o.support.front().distance).count() /
                                  std::chrono::duration<double>(r.recent->half_life).count();
            s.recency = r.recent->floor + (1 - r.recent->floor) * std::exp2(-halves);
        }
        s.score = s.prior * s.strength * s.recency;
        for (const auto& line : o.calendar_lines) {
            add_unique(s.evidence, line, in.max_evidence);
        }
        for (const auto& f : o.support) {
            const text_template& t = f.leaf->evidence.empty() ? r.evidence : f.leaf->evidence;
            auto line = t.empty() ? std::optional{f.s->kind + " " + f.s->subject + " " + relative_to_alert(f.s->at, in.start)}
                                  : render_for(t, f, in);
            if (line) {
                add_unique(s.evidence, std::move(*line), in.max_evidence);
            }
        }
        for (const auto& f : o.support) {
            for (const auto& a : r.actions) {
                if (auto line = render_for(a, f, in)) {
                    add_unique(s.actions, std::move(*line), in.max_actions);
                }
            }
        }
        if (o.support.empty()) {
            // Only calendar leaves held: actions that name no signal's labels still apply.
            for (const auto& a : r.actions) {
                if (auto line = render_strict(a, service_only(in))) {
                    add_unique(s.actions, std::move(*line), in.max_actions);
                }
            }
        }
        total += s.score;
        out.suspects.push_back(std::move(s));
    }
    for (auto& s : out.suspects) {
        s.share = total > 0 ? s.score / total : 0;
    }
    std::stable_sort(out.suspects.begin(), out.suspects.end(), [](const suspect& a, const suspect& b) {
        if (a.score != b.score) {
            return a.score > b.score;
        }
        if (a.prior != b.prior) {
            return a.prior > b.prior;
        }
        return a.id < b.id;
    });
    return out;
}

}  // namespace runbookd
