#include "rules/rules.hpp"

#include "core/signal.hpp"
#include "core/suggest.hpp"
#include "crypto/digest.hpp"
#include "rules/calendars.hpp"
#include "rules/names.hpp"
#include "yaml/walker.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <set>
#include <sstream>

namespace runbookd::rules {
namespace {

using namespace std::chrono_literals;
using yaml::entries;
using yaml::entry;

constexpr std::array<std::string_view, 4> file_keys{"rules", "warnings", "effects", "calendars"};
constexpr std::array<std::string_view, 9> rule_keys{
    "id", "title", "prior", "when", "recency", "evidence", "actions", "clear", "status_text"};
constexpr std::array<std::string_view, 3> warning_keys{"id", "when", "text"};
/// Condition keys about ranking and the summary's cause blocks, which a warning has none of.
constexpr std::array<std::string_view, 3> ranking_only_keys{"strength", "evidence", "clear"};
constexpr std::array<std::string_view, 15> signal_keys{
    "name",
    "signal",
    "where",
    "value",
    "count",
    "sustained",
    "quiet_for",
    "rollout",
    "window",
    "related",
    "explained",
    "explained_by",
    "strength",
    "evidence",
    "clear"};
constexpr std::array<std::string_view, 5> effect_keys{"id", "explains", "by", "join", "window"};
/// One bit each in a ranking's memo (rank.cpp, explanations), one kept for "computed".
constexpr std::size_t max_effects = 63;
constexpr std::array<std::string_view, 3> rollout_values{"rolled_out", "elsewhere", "not_elsewhere"};
constexpr std::array<std::string_view, 4> calendar_leaf_keys{"name", "calendar", "strength", "evidence"};
constexpr std::array<std::string_view, 5> label_ops{"equals", "not", "matches", "in", "not_in"};
constexpr std::array<std::string_view, 2> value_keys{"above", "below"};
constexpr std::array<std::string_view, 1> count_keys{"at_least"};
constexpr std::array<std::string_view, 2> window_keys{"before", "after"};
constexpr std::array<std::string_view, 3> recency_keys{"half_life", "floor", "of"};
constexpr std::array<std::string_view, 2> related_values{"service", "any"};
constexpr std::array<std::string_view, 5> node_keys{"signal", "calendar", "all", "any", "none"};
constexpr std::array<std::string_view, 7> clear_placeholders{
    "count", "max", "min", "latest", "window", "service", "kind"};
constexpr std::array<std::string_view, 3> calendar_placeholders{"local_time", "window", "service"};
constexpr std::size_t max_status_text = 200;

using rules::words;  // names.hpp's, for lists of names; this one for placeholder sets

/// The placeholders a template may use, for messages: sorted, comma-separated.
std::string words(const std::set<std::string>& ws) {
    std::string out;
    for (const auto& w : ws) {
        out += (out.empty() ? "" : ", ") + w;
    }
    return out;
}

class rule_loader {
public:
    explicit rule_loader(std::string_view file) : w_(std::string{file}) {}

    load_result run(std::string_view text) {
        auto set = std::make_shared<rule_set>();
        effects_ = &set->effects;
        set->origin = w_.file();
        set->hash = crypto::sha256_hex(text);
        if (auto doc = w_.document(text)) {
            if (auto top = w_.map(*doc, "", file_keys)) {
                if (yaml::find(*top, "rules") == nullptr && yaml::find(*top, "warnings") == nullptr) {
                    w_.report(doc->Mark(), "rules", "required: a list of rules (or of warnings)");
                }
                // Effects first: leaves name them, wherever they are in the file.
                if (const entry* list = yaml::find(*top, "effects")) {
                    read_effects(*list, *set);
                }
                // Named calendars too: leaves name them, wherever they are in the file.
                if (const entry* list = yaml::find(*top, "calendars")) {
                    calendars_.read(w_, *list);
                }
                // In the file's order, so that a repeated id is reported where it repeats.
                for (const auto& list : *top) {
                    if (list.name == "effects" || list.name == "calendars") {
                        continue;
                    }
                    const bool of_rules = list.name == "rules";
                    auto items = w_.list(list);
                    if (!items) {
                        continue;
                    }
                    if (items->empty()) {
                        w_.report(
                            list,
                            of_rules ? "a rules file needs at least one rule"
                                     : "warnings needs at least one warning (leave the key out for none)"
                        );
                    }
                    for (const auto& item : *items) {
                        if (of_rules) {
                            read_rule(item, *set);
                        } else {
                            read_warning(item, *set);
                        }
                    }
                }
            }
        }
        calendars_.report_unused(w_);
        load_result out;
        out.problems = w_.take();
        if (out.problems.empty()) {
            out.value = std::move(set);
        }
        return out;
    }

private:
    /// The entry `key` of the map `item`, or nullptr after reporting that it is required.
    const entry* required_key(
        const entry& item, const yaml::entries& keys, std::string_view key, std::string_view what
    ) {
        const entry* e = yaml::find(keys, key);
        if (e == nullptr) {
            w_.report(
                item.value.Mark(), item.path + "." + std::string{key}, "required: " + std::string{what}
            );
        }
        return e;
    }

    void read_rule(const entry& item, rule_set& set) {
        const auto keys = w_.map(item.value, item.path, rule_keys);
        if (!keys) {
            return;
        }
        rule r;
        leaf_names_.clear();
        r.file = w_.file();
        r.line = item.value.Mark().line + 1;
        const std::size_t before = w_.problem_count();
        const auto required = [&](std::string_view key, std::string_view what) {
            return required_key(item, *keys, key, what);
        };
        if (const entry* e = required("id", "a short lower-case name, e.g. bad-deploy")) {
            r.id = read_id(*e, set, "rule");
        }
        if (const entry* e = required("title", "the cause as the runbook names it")) {
            if (auto t = w_.string(*e)) {
                r.title = *t;
            }
        }
        if (const entry* e = yaml::find(*keys, "prior")) {
            if (auto p = w_.number(*e, 0.0001, 1)) {
                r.prior = *p;
            }
        }
        std::vector<const signal_kind*> positive;
        if (const entry* e = required("when", "the condition (signal, calendar, all, any or none)")) {
            if (auto c = read_condition(*e, positive, false)) {
                r.when = std::move(*c);
            }
        }
        if (const entry* e = yaml::find(*keys, "recency")) {
            if (auto m = w_.map(e->value, e->path, recency_keys)) {
                recency rec;
                if (const entry* h = yaml::find(*m, "half_life")) {
                    if (auto d = w_.duration(*h)) {
                        if (d->count() <= 0) {
                            w_.report(*h, "must be greater than 0");
                        } else {
                            rec.half_life = *d;
                        }
                    }
                }
                if (const entry* f = yaml::find(*m, "floor")) {
                    if (auto v = w_.number(*f, 0, 1)) {
                        rec.floor = *v;
                    }
                }
                if (const entry* o = yaml::find(*m, "of")) {
                    if (auto items = w_.list(*o)) {
                        for (const auto& kind_entry : *items) {
                            auto k = w_.string(kind_entry);
                            if (!k) {
                                continue;
                            }
                            if (std::none_of(positive.begin(), positive.end(), [&](const signal_kind* p) {
                                    return p->name == *k;
                                })) {
                                w_.report(
                                    kind_entry, "'" + *k + "' is not a kind this rule's conditions read"
                                );
                                continue;
                            }
                            rec.of.push_back(*k);
                        }
                    }
                }
                r.recent = rec;
            }
        }
        // Rule-level templates are rendered for each supporting signal that carries every
        // label they name; they may name any label of the rule's (non-negated) kinds.
        std::set<std::string> allowed = rule_labels(positive);
        if (const entry* e = yaml::find(*keys, "evidence")) {
            r.evidence = read_template(*e, allowed, "labels of this rule's signal kinds and built-ins");
        }
        if (const entry* e = yaml::find(*keys, "actions")) {
            if (auto items = w_.list(*e)) {
                for (const auto& a : *items) {
                    r.actions.push_back(
                        read_template(a, allowed, "labels of this rule's signal kinds and built-ins")
                    );
                }
            }
        }
        if (const entry* e = yaml::find(*keys, "clear")) {
            r.clear = read_template(
                *e, names(clear_placeholders), "statistics of the rule's first signal condition"
            );
        }
        if (const entry* e = yaml::find(*keys, "status_text")) {
            if (auto t = w_.string(*e)) {
                if (t->find_first_of("{}") != std::string::npos) {
                    w_.report(*e, "status_text is for users and takes no placeholders");
                } else if (t->size() > max_status_text) {
                    w_.report(*e, "at most " + std::to_string(max_status_text) + " characters");
                } else {
                    r.status_text = *t;
                }
            }
        }
        if (w_.problem_count() == before) {
            set.rules.push_back(std::move(r));
        }
    }

    /// A warning: `id`, `when` and the `text` of its line. Its conditions are read as a
    /// rule's, less what only ranking uses (strength, evidence, clear).
    void read_warning(const entry& item, rule_set& set) {
        const auto keys = w_.map(item.value, item.path, warning_keys);
        if (!keys) {
            return;
        }
        warning wn;
        leaf_names_.clear();
        wn.file = w_.file();
        wn.line = item.value.Mark().line + 1;
        const std::size_t before = w_.problem_count();
        const auto required = [&](std::string_view key, std::string_view what) {
            return required_key(item, *keys, key, what);
        };
        if (const entry* e = required("id", "a short lower-case name, e.g. cert-expires-soon")) {
            wn.id = read_id(*e, set, "warning");
        }
        std::vector<const signal_kind*> positive;
        if (const entry* e = required("when", "the condition (signal, calendar, all, any or none)")) {
            in_warning_ = true;
            if (auto c = read_condition(*e, positive, false)) {
                wn.when = std::move(*c);
            }
            in_warning_ = false;
        }
        if (const entry* e = required(
                "text",
                "the line shown in #operations, e.g. \"the certificate of {host} expires in {value|days}\""
            )) {
            wn.text = read_template(
                *e, rule_labels(positive), "labels of this warning's signal kinds and built-ins"
            );
        }
        if (w_.problem_count() == before) {
            set.warnings.push_back(std::move(wn));
        }
    }

    /// `effects:`: "this signal is explained by that one" (core/rule.hpp, effect).
    void read_effects(const entry& list, rule_set& set) {
        auto items = w_.list(list);
        if (!items) {
            return;
        }
        if (items->empty()) {
            w_.report(list, "effects needs at least one effect (leave the key out for none)");
        }
        if (items->size() > max_effects) {
            w_.report(list, "at most " + std::to_string(max_effects) + " effects");
            return;
        }
        for (const auto& item : *items) {
            read_effect(item, set);
        }
    }

    void read_effect(const entry& item, rule_set& set) {
        const auto keys = w_.map(item.value, item.path, effect_keys);
        if (!keys) {
            return;
        }
        effect ef;
        ef.file = w_.file();
        ef.line = item.value.Mark().line + 1;
        const std::size_t before = w_.problem_count();
        if (const entry* e = required_key(item, *keys, "id", "a short lower-case name, e.g. node-change")) {
            if (auto id = w_.string(*e)) {
                if (!valid_id(*id)) {
                    w_.report(*e, "'" + *id + "' is not an id (lower-case letters, digits, '-' and '_')");
                } else if (std::any_of(set.effects.begin(), set.effects.end(), [&](const effect& o) {
                               return o.id == *id;
                           })) {
                    w_.report(*e, "duplicate effect id '" + *id + "'");
                } else {
                    ef.id = *id;
                }
            }
        }
        std::vector<std::pair<const signal_kind*, const entry*>> kinds;
        const auto kind_list = [&](std::string_view key, std::string_view what, std::vector<std::string>& out
                               ) {
            const entry* e = required_key(item, *keys, key, what);
            if (e == nullptr) {
                return;
            }
            auto names_of = w_.list(*e);
            if (!names_of) {
                return;
            }
            if (names_of->empty()) {
                w_.report(*e, std::string{key} + " needs at least one kind");
            }
            for (const auto& k : *names_of) {
                if (const signal_kind* kind = signal_kind_at(k)) {
                    out.push_back(std::string{kind->name});
                    kinds.emplace_back(kind, e);
                }
            }
        };
        kind_list("explains", "the kinds of the signals explained, e.g. [k8s.restart]", ef.explains);
        kind_list("by", "the kinds of the signals that explain them, e.g. [k8s.version_change]", ef.by);
        if (const entry* e = required_key(item, *keys, "join", "the labels both carry, e.g. [node]")) {
            if (auto labels = w_.list(*e)) {
                if (labels->empty()) {
                    w_.report(*e, "join needs at least one label");
                }
                for (const auto& l : *labels) {
                    auto name = w_.string(l);
                    if (!name) {
                        continue;
                    }
                    // Every kind on both sides must carry it, or nothing of that kind would join.
                    for (const auto& [kind, at] : kinds) {
                        if (std::find(kind->labels.begin(), kind->labels.end(), *name) ==
                            kind->labels.end()) {
                            w_.report(
                                l,
                                "'" + std::string{kind->name} + "' has no label '" + *name +
                                    "' to join on (labels: " + words(kind->labels) + ")"
                            );
                        }
                    }
                    ef.join.push_back(*name);
                }
            }
        }
        if (const entry* e = yaml::find(*keys, "window")) {
            read_window(*e, ef.window);
        }
        if (w_.problem_count() == before) {
            set.effects.push_back(std::move(ef));
        }
    }

    /// The catalogue entry the string at `e` names, or nullptr after reporting.
    const signal_kind* signal_kind_at(const entry& e) {
        auto name = w_.string(e);
        if (!name) {
            return nullptr;
        }
        const signal_kind* kind = find_signal_kind(*name);
        if (kind == nullptr) {
            std::vector<std::string_view> known;
            for (const auto& sk : signal_catalogue()) {
                known.push_back(sk.name);
            }
            w_.report(
                e, "unknown signal kind '" + *name + "'" + suggestion(*name, known) + " (docs/signals.md)"
            );
        }
        return kind;
    }

    void read_window(const entry& e, time_window& out) {
        if (auto m = w_.map(e.value, e.path, window_keys)) {
            if (const entry* b = yaml::find(*m, "before")) {
                if (auto d = w_.duration(*b)) {
                    out.before = *d;
                }
            }
            if (const entry* a = yaml::find(*m, "after")) {
                if (auto d = w_.duration(*a)) {
                    out.after = *d;
                }
            }
        }
    }

    /// A rule's or warning's id (`what`): valid, and not yet taken by either in this file.
    /// "" after reporting.
    std::string read_id(const entry& e, const rule_set& set, std::string_view what) {
        auto id = w_.string(e);
        if (!id) {
            return {};
        }
        if (!valid_id(*id)) {
            w_.report(e, "'" + *id + "' is not an id (lower-case letters, digits, '-' and '_')");
            return {};
        }
        const bool rule_has =
            std::any_of(set.rules.begin(), set.rules.end(), [&](const rule& o) { return o.id == *id; });
        const bool warning_has = std::any_of(set.warnings.begin(), set.warnings.end(), [&](const warning& o) {
            return o.id == *id;
        });
        if (rule_has || warning_has) {
            const std::string_view owner = rule_has ? "rule" : "warning";
            w_.report(
                e,
                owner == what ? "duplicate " + std::string{what} + " id '" + *id + "'"
                              : "id '" + *id + "' is already a " + std::string{owner} + "'s"
            );
            return {};
        }
        return *id;
    }

    /// Reports the keys of a condition in a warning that only ranking reads.
    void refuse_ranking_keys(const yaml::entries& keys) {
        if (!in_warning_) {
            return;
        }
        for (const auto k : ranking_only_keys) {
            if (const entry* e = yaml::find(keys, k)) {
                w_.report(
                    e->key.Mark(),
                    e->path,
                    "'" + std::string{k} +
                        "' does not apply in a warning: it is not ranked, and its only line is its text"
                );
            }
        }
    }

    static std::set<std::string> names(std::span<const std::string_view> ws) {
        return {ws.begin(), ws.end()};
    }

    static std::set<std::string> rule_labels(const std::vector<const signal_kind*>& kinds) {
        if (kinds.empty()) {
            return {"service"};  // only calendar conditions: no signal to take labels from
        }
        std::set<std::string> out = names(builtin_placeholders());
        for (const auto* k : kinds) {
            out.insert(k->labels.begin(), k->labels.end());
        }
        return out;
    }

    text_template read_template(
        const entry& e, const std::set<std::string>& allowed, std::string_view whose
    ) {
        auto text = w_.string(e);
        if (!text) {
            return {};
        }
        std::string error;
        auto t = text_template::parse(*text, error);
        if (!t) {
            w_.report(e, error);
            return {};
        }
        for (const auto& p : t->parts()) {
            if (p.placeholder && !allowed.contains(p.text)) {
                std::vector<std::string_view> candidates(allowed.begin(), allowed.end());
                w_.report(
                    e,
                    "unknown placeholder '{" + p.text + "}'" + suggestion(p.text, candidates) +
                        " (available: " + words(allowed) + "; " + std::string{whose} + ")"
                );
            }
        }
        return std::move(*t);
    }

    /// A condition node: exactly one of signal, calendar, all, any, none.
    std::optional<condition> read_condition(
        const entry& e, std::vector<const signal_kind*>& positive, bool negated
    ) {
        if (!e.value.IsMap()) {
            w_.report(e, "expected a condition: a map with one of signal, calendar, all, any or none");
            return std::nullopt;
        }
        std::vector<std::string_view> present;
        for (const auto k : node_keys) {
            if (e.value[std::string{k}].IsDefined()) {
                present.push_back(k);
            }
        }
        if (present.size() != 1) {
            w_.report(
                e,
                present.empty() ? "a condition needs one of signal, calendar, all, any or none"
                                : "a condition has exactly one of signal, calendar, all, any or none, not " +
                                      std::to_string(present.size())
            );
            return std::nullopt;
        }
        condition c;
        if (present.front() == "signal") {
            c.what = condition::op::signal;
            auto leaf = read_signal(e, positive, negated);
            if (!leaf) {
                return std::nullopt;
            }
            c.signal = std::move(*leaf);
            return c;
        }
        if (present.front() == "calendar") {
            c.what = condition::op::calendar;
            auto leaf = read_calendar_leaf(e);
            if (!leaf) {
                return std::nullopt;
            }
            c.calendar = std::move(*leaf);
            return c;
        }
        const std::string_view op = present.front();
        c.what = op == "all" ? condition::op::all : op == "any" ? condition::op::any : condition::op::none;
        const std::array<std::string_view, 1> only{op};
        const auto keys = w_.map(e.value, e.path, only);
        if (!keys || keys->empty()) {
            return std::nullopt;
        }
        const auto items = w_.list(keys->front());
        if (!items) {
            return std::nullopt;
        }
        if (items->empty()) {
            w_.report(keys->front(), std::string{op} + " needs at least one condition");
            return std::nullopt;
        }
        bool ok = true;
        for (const auto& item : *items) {
            auto child = read_condition(item, positive, negated || c.what == condition::op::none);
            ok = ok && child.has_value();
            if (child) {
                c.children.push_back(std::move(*child));
            }
        }
        return ok ? std::optional{std::move(c)} : std::nullopt;
    }

    std::optional<signal_test> read_signal(
        const entry& node, std::vector<const signal_kind*>& positive, bool negated
    ) {
        const auto keys = w_.map(node.value, node.path, signal_keys);
        if (!keys) {
            return std::nullopt;
        }
        const std::size_t before = w_.problem_count();
        refuse_ranking_keys(*keys);
        signal_test t;
        t.name = read_leaf_name(*keys);
        const signal_kind* kind = nullptr;
        kind = signal_kind_at(*yaml::find(*keys, "signal"));
        if (kind == nullptr) {
            return std::nullopt;
        }
        t.kind = std::string{kind->name};
        const std::set<std::string> labels(kind->labels.begin(), kind->labels.end());
        if (const entry* e = yaml::find(*keys, "where")) {
            if (auto m = w_.map(e->value, e->path, {})) {
                for (const auto& lt : *m) {
                    if (!labels.contains(lt.name)) {
                        std::vector<std::string_view> candidates(kind->labels.begin(), kind->labels.end());
                        w_.report(
                            lt.key.Mark(),
                            lt.path,
                            "'" + t.kind + "' has no label '" + lt.name + "'" +
                                suggestion(lt.name, candidates) + " (labels: " + words(kind->labels) + ")"
                        );
                        continue;
                    }
                    if (auto test = read_label_test(lt)) {
                        test->index = label_index(*kind, lt.name);
                        t.where.push_back(std::move(*test));
                    }
                }
            }
        }
        if (const entry* e = yaml::find(*keys, "value")) {
            if (kind->value.empty()) {
                w_.report(*e, "'" + t.kind + "' signals carry no value");
            } else if (auto m = w_.map(e->value, e->path, value_keys)) {
                if (const entry* a = yaml::find(*m, "above")) {
                    t.above = w_.number(*a, -1e18, 1e18);
                }
                if (const entry* b = yaml::find(*m, "below")) {
                    t.below = w_.number(*b, -1e18, 1e18);
                }
                if (m->empty()) {
                    w_.report(*e, "value needs above, below or both");
                }
            }
        }
        if (const entry* e = yaml::find(*keys, "count")) {
            if (auto m = w_.map(e->value, e->path, count_keys)) {
                if (const entry* a = yaml::find(*m, "at_least")) {
                    if (auto n = w_.count(*a, 1)) {
                        t.at_least = *n;
                    }
                }
            }
        }
        if (const entry* e = yaml::find(*keys, "sustained")) {
            if (auto d = w_.duration(*e)) {
                t.sustained = *d;
            }
        }
        if (const entry* e = yaml::find(*keys, "quiet_for")) {
            if (auto d = w_.duration(*e)) {
                t.quiet_for = *d;
            }
        }
        if (const entry* e = yaml::find(*keys, "rollout")) {
            if (!labels.contains("commit")) {
                w_.report(*e, "'" + t.kind + "' signals carry no commit to match against a rollout");
            } else if (auto v = w_.string(*e)) {
                const auto it = std::find(rollout_values.begin(), rollout_values.end(), *v);
                if (it == rollout_values.end()) {
                    w_.report(
                        *e,
                        "'" + *v + "' is not one of rolled_out, elsewhere, not_elsewhere" +
                            suggestion(*v, rollout_values)
                    );
                } else {
                    t.rollout = static_cast<signal_test::rollout_test>(it - rollout_values.begin() + 1);
                }
            }
        }
        if (const entry* e = yaml::find(*keys, "window")) {
            read_window(*e, t.window);
        }
        read_explained(*keys, t);
        if (const entry* e = yaml::find(*keys, "related")) {
            if (auto v = w_.string(*e)) {
                if (std::find(related_values.begin(), related_values.end(), *v) == related_values.end()) {
                    w_.report(*e, "'" + *v + "' is not one of service, any" + suggestion(*v, related_values));
                } else if (*v == "service") {
                    if (!labels.contains("deployment") && !labels.contains("service") &&
                        !labels.contains("services")) {
                        w_.report(
                            *e,
                            "'" + t.kind +
                                "' signals name no workload or service, so they cannot be related to one"
                        );
                    }
                    t.related = true;
                }
            }
        }
        if (const entry* e = yaml::find(*keys, "strength")) {
            if (auto v = w_.number(*e, 0.0001, 1)) {
                t.strength = *v;
            }
        }
        std::set<std::string> allowed = labels;
        const auto builtins = builtin_placeholders();
        allowed.insert(builtins.begin(), builtins.end());
        if (const entry* e = yaml::find(*keys, "evidence")) {
            t.evidence = read_template(*e, allowed, "labels of " + t.kind + " and built-ins");
        }
        if (const entry* e = yaml::find(*keys, "clear")) {
            t.clear = read_template(*e, names(clear_placeholders), "statistics of this condition's signals");
        }
        if (!negated) {
            positive.push_back(kind);
        }
        return w_.problem_count() == before ? std::optional{std::move(t)} : std::nullopt;
    }

    /// `explained: include` or `explained_by: ID` / `[ID, ...]`: effects of this file that
    /// explain the leaf's kind.
    void read_explained(const yaml::entries& keys, signal_test& t) {
        const entry* inc = yaml::find(keys, "explained");
        const entry* by = yaml::find(keys, "explained_by");
        if (inc != nullptr && by != nullptr) {
            w_.report(
                *by,
                "explained_by counts only what an effect explains; explained: include counts "
                "everything: give one of them"
            );
            return;
        }
        if (inc != nullptr) {
            if (auto v = w_.string(*inc)) {
                if (*v != "include") {
                    w_.report(
                        *inc,
                        "'" + *v +
                            "' is not include (explained signals are skipped unless a "
                            "condition says include, or names the effect with explained_by)"
                    );
                } else {
                    t.explained = signal_test::explained_test::include;
                }
            }
        }
        if (by == nullptr) {
            return;
        }
        std::vector<entry> ids;
        if (by->value.IsSequence()) {
            if (auto items = w_.list(*by)) {
                ids = *items;
            }
            if (ids.empty()) {
                w_.report(*by, "explained_by needs at least one effect id");
            }
        } else {
            ids.push_back(*by);
        }
        for (const auto& e : ids) {
            auto id = w_.string(e);
            if (!id) {
                continue;
            }
            const auto it = std::find_if(effects_->begin(), effects_->end(), [&](const effect& o) {
                return o.id == *id;
            });
            if (it == effects_->end()) {
                std::vector<std::string_view> known;
                for (const auto& o : *effects_) {
                    known.push_back(o.id);
                }
                w_.report(
                    e,
                    "no effect '" + *id + "' in this file" + suggestion(*id, known) +
                        " (effects: " + words(known) + ")"
                );
            } else if (std::find(it->explains.begin(), it->explains.end(), t.kind) == it->explains.end()) {
                w_.report(e, "effect '" + *id + "' does not explain " + t.kind + " signals");
            } else {
                t.explained_by.push_back(*id);
            }
        }
        t.explained = signal_test::explained_test::only;
    }

    std::optional<label_test> read_label_test(const entry& e) {
        label_test t;
        t.label = e.name;
        if (e.value.IsScalar()) {
            t.values.push_back(e.value.Scalar());
            return t;
        }
        const auto m = w_.map(e.value, e.path, label_ops);
        if (!m) {
            return std::nullopt;
        }
        if (m->size() != 1) {
            w_.report(e, "a label test is a value, or a map with one of equals, not, matches, in, not_in");
            return std::nullopt;
        }
        const entry& op = m->front();
        if (op.name == "in" || op.name == "not_in") {
            t.how = op.name == "in" ? label_test::op::in : label_test::op::not_in;
            const auto items = w_.list(op);
            if (!items) {
                return std::nullopt;
            }
            for (const auto& item : *items) {
                if (auto v = w_.string(item, false)) {
                    t.values.push_back(*v);
                }
            }
            return t;
        }
        auto v = w_.string(op, false);
        if (!v) {
            return std::nullopt;
        }
        t.values.push_back(*v);
        if (op.name == "equals") {
            t.how = label_test::op::equals;
        } else if (op.name == "not") {
            t.how = label_test::op::not_equals;
        } else {
            t.how = label_test::op::matches;
            try {
                t.pattern =
                    std::make_shared<const std::regex>(*v, std::regex::ECMAScript | std::regex::optimize);
            } catch (const std::regex_error& err) {
                w_.report(op, "invalid regular expression: " + std::string{err.what()});
                return std::nullopt;
            }
        }
        return t;
    }

    std::optional<calendar_test> read_calendar_leaf(const entry& node) {
        const auto keys = w_.map(node.value, node.path, calendar_leaf_keys);
        if (!keys) {
            return std::nullopt;
        }
        const std::size_t before = w_.problem_count();
        refuse_ranking_keys(*keys);
        calendar_test t;
        const entry* cal = yaml::find(*keys, "calendar");
        if (auto window = calendars_.leaf(w_, *cal)) {
            t.window = std::move(*window);
        }
        t.name = read_leaf_name(*keys);
        if (const entry* e = yaml::find(*keys, "strength")) {
            if (auto v = w_.number(*e, 0.0001, 1)) {
                t.strength = *v;
            }
        }
        if (const entry* e = yaml::find(*keys, "evidence")) {
            t.evidence = read_template(*e, names(calendar_placeholders), "calendar evidence");
        }
        return w_.problem_count() == before ? std::optional{std::move(t)} : std::nullopt;
    }

    /// A leaf's optional `name:`: an id, unique within its rule or warning, by which
    /// configuration tunes the leaf (rules/tuning.hpp). "" when absent or reported.
    std::string read_leaf_name(const yaml::entries& keys) {
        const entry* e = yaml::find(keys, "name");
        if (e == nullptr) {
            return {};
        }
        auto name = w_.string(*e);
        if (!name) {
            return {};
        }
        if (!valid_id(*name)) {
            w_.report(*e, "'" + *name + "' is not a leaf name (lower-case letters, digits, '-' and '_')");
            return {};
        }
        if (!leaf_names_.insert(*name).second) {
            w_.report(*e, "another leaf of this rule is named '" + *name + "'");
            return {};
        }
        return *name;
    }

    yaml::walker w_;
    bool in_warning_ = false;                       ///< reading a warning's condition
    named_calendars calendars_;                     ///< the file's `calendars:`
    std::set<std::string> leaf_names_;              ///< of the rule or warning being read
    const std::vector<effect>* effects_ = nullptr;  ///< the file's effects, read before its rules
};

}  // namespace

load_result parse(std::string_view yaml_text, std::string_view file) {
    return rule_loader{file}.run(yaml_text);
}

load_result load(const std::vector<std::string>& paths) {
    if (paths.empty()) {
        auto out = parse(embedded_pack(), embedded_name);
        if (out.value) {
            auto set = std::make_shared<rule_set>(*out.value);
            set->origin = "embedded runbook pack";
            out.value = std::move(set);
        }
        return out;
    }
    auto merged = std::make_shared<rule_set>();
    load_result out;
    std::string hashes;
    for (const auto& path : paths) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            out.problems.push_back(problem{path, 0, 0, {}, "cannot read the rules file"});
            continue;
        }
        std::stringstream text;
        text << in.rdbuf();
        auto one = parse(text.str(), path);
        out.problems.insert(out.problems.end(), one.problems.begin(), one.problems.end());
        if (!one.value) {
            continue;
        }
        hashes += one.value->hash;
        // An id names one rule or warning across every file (tests and logs refer to it).
        const auto defined_at = [&](const std::string& id) -> std::string {
            for (const auto& o : merged->rules) {
                if (o.id == id) {
                    return o.file + ":" + std::to_string(o.line);
                }
            }
            for (const auto& o : merged->warnings) {
                if (o.id == id) {
                    return o.file + ":" + std::to_string(o.line);
                }
            }
            return {};
        };
        for (const auto& r : one.value->rules) {
            if (const auto at = defined_at(r.id); !at.empty()) {
                out.problems.push_back(problem{
                    path, r.line, 1, "rules", "rule id '" + r.id + "' is also defined at " + at});
                continue;
            }
            merged->rules.push_back(r);
        }
        for (const auto& wn : one.value->warnings) {
            if (const auto at = defined_at(wn.id); !at.empty()) {
                out.problems.push_back(problem{
                    path, wn.line, 1, "warnings", "warning id '" + wn.id + "' is also defined at " + at});
                continue;
            }
            merged->warnings.push_back(wn);
        }
        for (const auto& ef : one.value->effects) {
            // Effects apply to every file's conditions: one id, one relation.
            const auto same = std::find_if(
                merged->effects.begin(), merged->effects.end(), [&](const effect& o) { return o.id == ef.id; }
            );
            if (same != merged->effects.end()) {
                out.problems.push_back(problem{
                    path,
                    ef.line,
                    1,
                    "effects",
                    "effect id '" + ef.id + "' is also defined at " + same->file + ":" +
                        std::to_string(same->line)});
                continue;
            }
            merged->effects.push_back(ef);
        }
        if (merged->effects.size() > max_effects) {
            out.problems.push_back(problem{
                path, 0, 0, "effects", "at most " + std::to_string(max_effects) + " effects in all files"});
        }
        merged->origin += (merged->origin.empty() ? "" : ", ") + path;
    }
    if (out.problems.empty()) {
        merged->hash = crypto::sha256_hex(hashes);
        out.value = std::move(merged);
    }
    return out;
}

}  // namespace runbookd::rules
