#include "rules/tuning.hpp"

#include "core/signal.hpp"
#include "core/suggest.hpp"
#include "crypto/digest.hpp"
#include "rules/calendars.hpp"
#include "rules/names.hpp"
#include "yaml/walker.hpp"

#include <algorithm>
#include <array>
#include <functional>

namespace runbookd::rules {
namespace {

using yaml::entry;

/// A rule's own parameters, and a leaf's; each group key's own keys.
constexpr std::array<std::string_view, 2> rule_fields{"prior", "recency"};
constexpr std::array<std::string_view, 6> leaf_fields{
    "window", "value", "count", "sustained", "quiet_for", "strength"};
constexpr std::array<std::string_view, 2> recency_fields{"half_life", "floor"};
constexpr std::array<std::string_view, 2> window_fields{"before", "after"};
constexpr std::array<std::string_view, 2> value_fields{"above", "below"};
constexpr std::array<std::string_view, 1> count_fields{"at_least"};

site site_at(const yaml::walker& w, const YAML::Mark& m, const std::string& path) {
    return site{w.file(), m.is_null() ? 1 : m.line + 1, m.is_null() ? 1 : m.column + 1, path};
}

/// Where a problem with `e`'s value belongs: the value, or its key when it is empty.
site value_site(const yaml::walker& w, const entry& e) {
    return site_at(w, yaml::is_null(e.value) && e.key.IsDefined() ? e.key.Mark() : e.value.Mark(), e.path);
}

/// One parameter's value, checked as the pack checks it.
void read_setting(yaml::walker& w, const entry& e, rule_override& out) {
    setting s{e.name, 0, millis{0}, value_site(w, e)};
    const auto& f = e.name;
    bool ok = false;
    if (f == "prior" || f == "strength" || f == "floor" || f == "above" || f == "below") {
        const bool bound = f == "above" || f == "below";
        const auto v = w.number(e, bound ? -1e18 : f == "floor" ? 0 : 0.0001, bound ? 1e18 : 1);
        ok = v.has_value();
        s.number = v.value_or(0);
    } else if (f == "at_least") {
        const auto v = w.count(e, 1);
        ok = v.has_value();
        s.number = static_cast<double>(v.value_or(1));
    } else if (const auto d = w.duration(e)) {
        ok = f != "half_life" || d->count() > 0;
        if (!ok) {
            w.report(e, "must be greater than 0");
        }
        s.duration = *d;
    }
    if (ok) {
        out.settings.push_back(std::move(s));
    }
}

/// The parameters under one address: `fields` directly, or a group of them (recency,
/// window, value, count) whose keys are the setting names.
void read_settings(
    yaml::walker& w, const entry& e, std::span<const std::string_view> fields, rule_override& out
) {
    const auto keys = w.map(e.value, e.path, {});
    if (!keys) {
        return;
    }
    if (keys->empty()) {
        w.report(e, "sets nothing: give one of " + words(fields));
        return;
    }
    const bool of_rule = out.leaf.empty();
    for (const auto& k : *keys) {
        if (std::find(fields.begin(), fields.end(), k.name) == fields.end()) {
            const auto& other = of_rule ? std::span<const std::string_view>{leaf_fields}
                                        : std::span<const std::string_view>{rule_fields};
            const bool elsewhere = std::find(other.begin(), other.end(), k.name) != other.end();
            w.report(
                k.key.Mark(),
                k.path,
                elsewhere ? (of_rule ? "'" + k.name + "' is a leaf's: address the leaf as " + out.rule +
                                           ".<leaf name>"
                                     : "'" + k.name + "' is the rule's: set it under " + out.rule)
                          : "unknown key '" + k.name + "'" + suggestion(k.name, fields) + " (one of " +
                                words(fields) + ")"
            );
            continue;
        }
        std::span<const std::string_view> group;
        if (k.name == "recency") {
            group = recency_fields;
        } else if (k.name == "window") {
            group = window_fields;
        } else if (k.name == "value") {
            group = value_fields;
        } else if (k.name == "count") {
            group = count_fields;
        }
        if (group.empty()) {
            read_setting(w, k, out);
            continue;
        }
        const auto sub = w.map(k.value, k.path, group);
        if (sub && sub->empty()) {
            w.report(k, "sets nothing: give " + words(group));
        }
        for (const auto& s : sub.value_or(yaml::entries{})) {
            read_setting(w, s, out);
        }
    }
}

void read_overrides(yaml::walker& w, const entry& e, tuning& out) {
    const auto addresses = w.map(e.value, e.path, {});
    for (const auto& a : addresses.value_or(yaml::entries{})) {
        rule_override o;
        o.where = site_at(w, a.key.Mark(), a.path);
        const auto dot = a.name.find('.');
        o.rule = a.name.substr(0, dot);
        o.leaf = dot == std::string::npos ? "" : a.name.substr(dot + 1);
        if (!valid_id(o.rule) || (dot != std::string::npos && !valid_id(o.leaf))) {
            w.report(
                a.key.Mark(),
                a.path,
                "'" + a.name +
                    "' is not a rule id or <rule id>.<leaf name> (lower-case letters, digits, "
                    "'-' and '_')"
            );
            continue;
        }
        const std::size_t before = w.problem_count();
        read_settings(w, a, o.leaf.empty() ? std::span<const std::string_view>{rule_fields} : leaf_fields, o);
        if (w.problem_count() == before) {
            out.overrides.push_back(std::move(o));
        }
    }
}

void read_calendars(yaml::walker& w, const entry& e, tuning& out) {
    const auto names = w.map(e.value, e.path, {});
    for (const auto& n : names.value_or(yaml::entries{})) {
        calendar_override c;
        c.name = n.name;
        c.where = site_at(w, n.key.Mark(), n.path);
        if (!n.value.IsMap()) {
            w.report(
                n,
                std::string{"expected a map of "} + words(calendar_keys) + ", got " + yaml::kind_of(n.value)
            );
            continue;
        }
        if (!read_window(w, n, c.window)) {
            continue;
        }
        const YAML::Node& keys = n.value;
        for (std::size_t i = 0; i < calendar_keys.size(); ++i) {
            c.keys.set(i, keys[std::string{calendar_keys[i]}].IsDefined());
        }
        if (c.keys.none()) {
            w.report(n, "sets nothing: give one of " + words(calendar_keys));
            continue;
        }
        out.calendars.push_back(std::move(c));
    }
}

// ---------------------------------------------------------------------------------------------
// Applying: every leaf of every rule and warning, by name.

void each_leaf(condition& c, const std::function<void(condition&)>& f) {
    if (c.what == condition::op::signal || c.what == condition::op::calendar) {
        f(c);
        return;
    }
    for (auto& child : c.children) {
        each_leaf(child, f);
    }
}

const std::string& leaf_name(const condition& c) {
    return c.what == condition::op::signal ? c.signal.name : c.calendar.name;
}

/// Sets one parameter on a signal leaf; "" or why it cannot.
std::string set_signal(signal_test& t, const setting& s, bool of_warning) {
    const auto& f = s.field;
    if (f == "before") {
        t.window.before = s.duration;
    } else if (f == "after") {
        t.window.after = s.duration;
    } else if (f == "above" || f == "below") {
        const signal_kind* kind = find_signal_kind(t.kind);
        if (kind == nullptr || kind->value.empty()) {
            return "'" + t.kind + "' signals carry no value";
        }
        (f == "above" ? t.above : t.below) = s.number;
    } else if (f == "at_least") {
        t.at_least = static_cast<std::size_t>(s.number);
    } else if (f == "sustained") {
        t.sustained = s.duration;
    } else if (f == "quiet_for") {
        t.quiet_for = s.duration;
    } else if (f == "strength") {
        if (of_warning) {
            return "a warning's leaves have no strength (it is not ranked)";
        }
        t.strength = s.number;
    }
    return {};
}

void set_rule(rule& r, const setting& s) {
    if (s.field == "prior") {
        r.prior = s.number;
        return;
    }
    auto rec = r.recent.value_or(recency{});
    if (s.field == "half_life") {
        rec.half_life = s.duration;
    } else {
        rec.floor = s.number;
    }
    r.recent = rec;
}

class applier {
public:
    explicit applier(rule_set& set) : set_(set) {}

    void calendar(const calendar_override& c) {
        bool found = false;
        const auto merge = [&](condition& leaf) {
            if (leaf.what != condition::op::calendar || leaf.calendar.window.name != c.name) {
                return;
            }
            found = true;
            auto& w = leaf.calendar.window;
            const auto& v = c.window;
            // calendar_keys' order: days, weeks, months, from, to, tz.
            w.days = c.keys.test(0) ? v.days : w.days;
            w.weeks = c.keys.test(1) ? v.weeks : w.weeks;
            w.months = c.keys.test(2) ? v.months : w.months;
            w.from = c.keys.test(3) ? v.from : w.from;
            w.to = c.keys.test(4) ? v.to : w.to;
            if (c.keys.test(5)) {
                w.zone = v.zone;
                w.zone_name = v.zone_name;
            }
            if (w.from == w.to || w.from == std::chrono::hours{24}) {
                never_ = true;
            }
        };
        never_ = false;
        each(merge);
        if (!found) {
            std::vector<std::string> names;
            each([&](condition& leaf) {
                if (leaf.what == condition::op::calendar && !leaf.calendar.window.name.empty()) {
                    names.push_back(leaf.calendar.window.name);
                }
            });
            problems.push_back(
                c.where.at("the rule pack has no calendar '" + c.name + "'" + hint(c.name, names))
            );
        } else if (never_) {
            problems.push_back(c.where.at(
                "calendar '" + c.name + "' would never hold (from must be before 24:00 and differ from to)"
            ));
        }
    }

    void override_one(const rule_override& o) {
        const auto r =
            std::find_if(set_.rules.begin(), set_.rules.end(), [&](const rule& x) { return x.id == o.rule; });
        const auto wn = std::find_if(set_.warnings.begin(), set_.warnings.end(), [&](const warning& x) {
            return x.id == o.rule;
        });
        if (r == set_.rules.end() && wn == set_.warnings.end()) {
            std::vector<std::string> ids;
            for (const auto& x : set_.rules) {
                ids.push_back(x.id);
            }
            for (const auto& x : set_.warnings) {
                ids.push_back(x.id);
            }
            problems.push_back(
                o.where.at("the rule pack has no rule or warning '" + o.rule + "'" + hint(o.rule, ids))
            );
            return;
        }
        const bool of_warning = r == set_.rules.end();
        if (o.leaf.empty()) {
            if (of_warning) {
                problems.push_back(o.where.at("'" + o.rule + "' is a warning: it has no prior or recency"));
                return;
            }
            for (const auto& s : o.settings) {
                set_rule(*r, s);
            }
            return;
        }
        condition& when = of_warning ? wn->when : r->when;
        condition* leaf = nullptr;
        std::vector<std::string> names;
        each_leaf(when, [&](condition& c) {
            if (!leaf_name(c).empty()) {
                names.push_back(leaf_name(c));
                leaf = leaf_name(c) == o.leaf ? &c : leaf;
            }
        });
        if (leaf == nullptr) {
            problems.push_back(o.where.at(
                "'" + o.rule + "' has no leaf named '" + o.leaf + "'" + hint(o.leaf, names) +
                (names.empty() ? " (it names none: give the leaf a name: in the pack)" : "")
            ));
            return;
        }
        for (const auto& s : o.settings) {
            std::string why;
            if (leaf->what == condition::op::calendar) {
                why = s.field != "strength"
                          ? "a calendar leaf takes only strength here; its window is set under "
                            "calendars:"
                      : of_warning ? "a warning's leaves have no strength (it is not ranked)"
                                   : "";
                if (why.empty()) {
                    leaf->calendar.strength = s.number;
                }
            } else {
                why = set_signal(leaf->signal, s, of_warning);
            }
            if (!why.empty()) {
                problems.push_back(s.where.at(why));
            }
        }
    }

    std::vector<problem> problems;

private:
    void each(const std::function<void(condition&)>& f) {
        for (auto& r : set_.rules) {
            each_leaf(r.when, f);
        }
        for (auto& w : set_.warnings) {
            each_leaf(w.when, f);
        }
    }

    /// "; did you mean 'x'?" among `names`, else the list of them (up to a line's worth).
    static std::string hint(const std::string& word, const std::vector<std::string>& names) {
        const std::vector<std::string_view> views(names.begin(), names.end());
        auto out = suggestion(word, views);
        if (out.empty() && !names.empty()) {
            out = " (known: " + words(views) + ")";
        }
        return out;
    }

    rule_set& set_;
    bool never_ = false;
};

}  // namespace

void read_tuning(yaml::walker& w, const YAML::Node& root, tuning& out) {
    if (!root.IsMap()) {
        return;  // reported by the configuration's reader
    }
    std::string text;
    if (const YAML::Node c = root["calendars"]; c.IsDefined()) {
        read_calendars(w, entry{"calendars", YAML::Node{}, c, "calendars"}, out);
        text += YAML::Dump(c);
    }
    if (const YAML::Node r = root["rules"]; r.IsDefined() && r.IsMap()) {
        if (const YAML::Node o = r["overrides"]; o.IsDefined()) {
            read_overrides(w, entry{"overrides", YAML::Node{}, o, "rules.overrides"}, out);
            text += "\n" + YAML::Dump(o);
        }
    }
    if (!out.empty()) {
        out.digest = crypto::sha256_hex(text);
    }
}

load_result apply(const std::shared_ptr<const rule_set>& pack, const tuning& t) {
    load_result out;
    if (t.empty()) {
        out.value = pack;
        return out;
    }
    auto set = std::make_shared<rule_set>(*pack);
    applier a{*set};
    for (const auto& c : t.calendars) {
        a.calendar(c);
    }
    for (const auto& o : t.overrides) {
        a.override_one(o);
    }
    out.problems = std::move(a.problems);
    std::stable_sort(out.problems.begin(), out.problems.end(), [](const problem& x, const problem& y) {
        return std::pair{x.line, x.column} < std::pair{y.line, y.column};
    });
    if (out.problems.empty()) {
        // A changed override is a changed rule set: reload swaps it in, logs and metrics show it.
        set->hash = crypto::sha256_hex(pack->hash + t.digest);
        set->origin +=
            ", tuned by " + (t.overrides.empty() ? t.calendars[0].where : t.overrides[0].where).file;
        out.value = std::move(set);
    }
    return out;
}

load_result load(const std::vector<std::string>& paths, const tuning& t) {
    auto pack = load(paths);
    if (!pack.ok()) {
        return pack;
    }
    return rules::apply(pack.value, t);
}

}  // namespace runbookd::rules
