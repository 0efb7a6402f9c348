#include "core/rank.hpp"

#include "core/signal.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <tuple>
#include <unordered_map>

namespace runbookd {
namespace {

constexpr std::string_view rollout_kind = "k8s.rollout";
constexpr std::string_view deploy_kind = "deploy.ci";

/// One supporting signal and the leaf that found it.
struct found {
    const signal* s = nullptr;
    const signal_test* leaf = nullptr;
    millis distance{0};  ///< |s.at - start|
    std::size_t leaf_count = 0;
    std::size_t place = 0;  ///< 0 for its leaf's closest signal, 1 for the next, ...
};

/// What a condition (sub)tree concluded.
struct outcome {
    bool matched = false;
    bool checkable = true;
    double strength = 0;
    std::vector<found> support;               ///< closest to the start first, capped
    std::vector<std::string> calendar_lines;  ///< evidence from calendar leaves
    /// Why leaves could not be checked: (reason, kind), one per kind.
    std::vector<std::pair<std::string, std::string>> unchecked;
    std::vector<std::string> checked;  ///< what was checked and found clear
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

}  // namespace

bool image_carries(std::string_view image, std::string_view commit) {
    // A short SHA has 7 hex digits at least (git's default abbreviation); anything shorter
    // would match by chance.
    constexpr std::size_t min_sha = 7;
    const auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    if (commit.size() < min_sha || !std::all_of(commit.begin(), commit.end(), is_hex)) {
        return false;
    }
    // The tag: after the last ':' of the last path segment, before any "@sha256:" digest.
    if (const auto digest = image.find('@'); digest != std::string_view::npos) {
        image = image.substr(0, digest);
    }
    const auto slash = image.rfind('/');
    const auto colon = image.rfind(':');
    if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) {
        return false;  // no tag (":latest" implied): nothing names a commit
    }
    std::string_view tag = image.substr(colon + 1);
    // "4f2a9c1", "v1.4-4f2a9c1", "main_4f2a9c1e..." : any token of the tag that is a prefix of
    // the commit, in lower case.
    while (!tag.empty()) {
        const auto end = tag.find_first_of("-_.+");
        const std::string_view token = tag.substr(0, end);
        tag = end == std::string_view::npos ? std::string_view{} : tag.substr(end + 1);
        if (token.size() < min_sha || token.size() > commit.size()) {
            continue;
        }
        bool prefix = true;
        for (std::size_t i = 0; i < token.size() && prefix; ++i) {
            const char c =
                token[i] >= 'A' && token[i] <= 'F' ? static_cast<char>(token[i] - 'A' + 'a') : token[i];
            prefix = c == commit[i];
        }
        if (prefix) {
            return true;
        }
    }
    return false;
}

bool workload_glob(std::string_view pattern, std::string_view text) {
    if (pattern == "*") {
        return true;
    }
    if (pattern.ends_with('*')) {
        return text.starts_with(pattern.substr(0, pattern.size() - 1));
    }
    return pattern == text;
}

namespace {

bool passes(const label_test& t, const signal& s) {
    const std::string* v = s.label_at(t.index);
    const std::string_view value = v == nullptr ? std::string_view{} : std::string_view{*v};
    switch (t.how) {
        case label_test::op::equals: return v != nullptr && value == t.values.front();
        case label_test::op::not_equals: return v == nullptr || value != t.values.front();
        case label_test::op::matches:
            return v != nullptr && std::regex_match(v->begin(), v->end(), *t.pattern);
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

/// Whether the comma-separated ids of a `services` label ("PAPI001,PWWW002", "*") name
/// `id`; spaces around an id are ignored.
bool lists_service(std::string_view ids, std::string_view id) {
    while (!ids.empty()) {
        const auto comma = ids.find(',');
        std::string_view item = ids.substr(0, comma);
        ids = comma == std::string_view::npos ? std::string_view{} : ids.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') {
            item.remove_prefix(1);
        }
        while (!item.empty() && item.back() == ' ') {
            item.remove_suffix(1);
        }
        if (item == "*" || item == id) {
            return true;
        }
    }
    return false;
}

/// `related: service`, with the service's patterns split once rather than per signal, and
/// label positions remembered from one signal to the next.
class relation {
public:
    /// For signals of `kind` (nullptr: any kind, labels found by name).
    relation(const service_scope& service, const signal_kind* kind) : service_(service), kind_(kind) {
        if (kind != nullptr) {
            deployment_ = label_index(*kind, "deployment");
            namespace_ = label_index(*kind, "namespace");
            service_label_ = label_index(*kind, "service");
            services_ = label_index(*kind, "services");
        }
        for (const auto& w : service.workloads) {
            const auto slash = w.find('/');
            const std::string_view all{w};
            patterns_.push_back(
                slash == std::string::npos ? pattern{"*", all}
                                           : pattern{all.substr(0, slash), all.substr(slash + 1)}
            );
        }
    }

    bool holds(const signal& s) {
        const bool by_position = kind_ != nullptr && s.info == kind_;
        const std::string* deployment = by_position ? s.label_at(deployment_) : s.find("deployment");
        const std::string* svc = by_position ? s.label_at(service_label_) : s.find("service");
        // A signal that says which services it bears on (a certificate, through the services
        // its target serves) is taken at its word, whatever the service's workloads.
        if (const std::string* ids = by_position ? s.label_at(services_) : s.find("services")) {
            if (!ids->empty()) {
                // With no paged service id to look for, nothing can exclude the signal.
                return service_.id.empty() || lists_service(*ids, service_.id);
            }
            if (deployment == nullptr && svc == nullptr) {
                return true;  // it names no service at all, and nothing else can exclude it
            }
        }
        if (patterns_.empty()) {
            return true;  // the service's workloads are not configured: nothing can be excluded
        }
        const std::string* ns = by_position ? s.label_at(namespace_) : s.find("namespace");
        for (const auto& p : patterns_) {
            if (deployment != nullptr && !deployment->empty() && workload_glob(p.name, *deployment) &&
                (ns == nullptr || workload_glob(p.ns, *ns))) {
                return true;
            }
            if (svc != nullptr && !svc->empty() && workload_glob(p.name, *svc)) {
                return true;
            }
        }
        return svc != nullptr && !svc->empty() && (*svc == service_.id || *svc == service_.name);
    }

private:
    struct pattern {
        std::string_view ns;
        std::string_view name;
    };
    const service_scope& service_;
    const signal_kind* kind_;
    std::vector<pattern> patterns_;
    std::size_t deployment_ = 0;
    std::size_t namespace_ = 0;
    std::size_t service_label_ = 0;
    std::size_t services_ = 0;
};

millis distance(wall_time a, wall_time b) {
    return a < b ? b - a : a - b;
}

/// Keeps the `cap` supporting signals of one leaf closest to the start, closest first, one
/// per subject: repeated samples of one query or pod would only repeat the same line.
void keep_closest(std::vector<found>& v, found f, std::size_t cap) {
    if (v.size() == cap && v.back().distance <= f.distance) {
        return;  // no closer than any kept: the common case, decided without the subject
    }
    const auto same =
        std::find_if(v.begin(), v.end(), [&](const found& o) { return o.s->subject == f.s->subject; });
    if (same != v.end()) {
        if (same->distance <= f.distance) {
            return;
        }
        v.erase(same);
    }
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

/// Whether each signal is related to the service, per kind, computed at most once per
/// ranking: several leaves (and rules) read the same kinds.
class relation_memo {
public:
    /// One kind's memo; valid for the ranking.
    class of_kind {
    public:
        of_kind(const signal_log::series& series, const service_scope& service, const signal_kind* kind)
            : series_(series), known_(series.size(), 0), rel_(service, kind) {}

        bool holds(signal_log::series::const_iterator it) {
            auto& known = known_[static_cast<std::size_t>(it - series_.begin())];
            if (known == 0) {
                known = rel_.holds(*it) ? 2 : 1;
            }
            return known == 2;
        }

    private:
        const signal_log::series& series_;
        std::vector<std::uint8_t> known_;  ///< 0 unknown, 1 unrelated, 2 related
        relation rel_;
    };

    explicit relation_memo(const service_scope& service) : service_(service) {}

    of_kind& for_kind(const signal_log& log, const std::string& kind) {
        auto it = by_kind_.find(kind);
        if (it == by_kind_.end()) {
            it = by_kind_.try_emplace(kind, log.all_of(kind), service_, find_signal_kind(kind)).first;
        }
        return it->second;
    }

private:
    const service_scope& service_;
    std::map<std::string, of_kind, std::less<>> by_kind_;
};

/// Which signals the pack's `effects:` explain, each effect looked up at most once per signal
/// per ranking, and only when a condition asks: a bit per effect (rules.cpp refuses more than
/// 63). The causes of each effect are indexed by their joined labels the first time they are
/// needed.
class explanations {
public:
    using mask = std::uint64_t;

    explanations(const rule_set& rules, const signal_log& log, wall_time start, wall_time now)
        : rules_(rules),
          log_(log),
          now_(now),
          causes_(rules.effects.size()),
          since_(rules.effects.size(), now) {
        // The earliest cause each effect may need: before the earliest signal a condition on
        // one of its kinds reads, by the effect's window.
        const auto widest = [&](const auto& self, const condition& c, const effect& e, millis& before
                            ) -> void {
            if (c.what == condition::op::signal &&
                std::find(e.explains.begin(), e.explains.end(), c.signal.kind) != e.explains.end()) {
                before = std::max(before, c.signal.window.before);
            }
            for (const auto& child : c.children) {
                self(self, child, e, before);
            }
        };
        for (std::size_t i = 0; i < rules.effects.size(); ++i) {
            millis before{0};
            for (const auto& r : rules.rules) {
                widest(widest, r.when, rules.effects[i], before);
            }
            for (const auto& w : rules.warnings) {
                widest(widest, w.when, rules.effects[i], before);
            }
            since_[i] = start - before - rules.effects[i].window.after;
        }
    }

    /// The effects that may explain signals of `kind`; 0: none, and nothing to look up.
    mask about(std::string_view kind) const {
        mask m = 0;
        for (std::size_t i = 0; i < rules_.effects.size(); ++i) {
            const auto& ex = rules_.effects[i].explains;
            if (std::find(ex.begin(), ex.end(), kind) != ex.end()) {
                m |= mask{1} << i;
            }
        }
        return m;
    }

    /// The bits of the effects in `ids` (unknown ids, which rules.cpp refuses, are none).
    mask named(const std::vector<std::string>& ids) const {
        mask m = 0;
        for (std::size_t i = 0; i < rules_.effects.size(); ++i) {
            if (std::find(ids.begin(), ids.end(), rules_.effects[i].id) != ids.end()) {
                m |= mask{1} << i;
            }
        }
        return m;
    }

    /// "node-change, new-replicaset": the ids of the effects in `m`.
    std::string names(mask m) const {
        std::string out;
        for (std::size_t i = 0; i < rules_.effects.size(); ++i) {
            if ((m & (mask{1} << i)) != 0) {
                out += (out.empty() ? "" : ", ") + rules_.effects[i].id;
            }
        }
        return out;
    }

private:
    struct kind_memo {
        kind_memo(
            const signal_log::series& s, mask m, const signal_kind* k, const std::vector<effect>& effects
        )
            : series(s), done(s.size(), 0), hit(s.size(), 0), about(m), kind(k) {
            // Where each effect's join label sits in this kind (one label, the usual case).
            for (const auto& e : effects) {
                join_at.push_back(
                    k != nullptr && e.join.size() == 1 ? label_index(*k, e.join.front()) : npos
                );
            }
        }
        static constexpr std::size_t npos = static_cast<std::size_t>(-1);
        const signal_log::series& series;
        std::vector<mask> done;  ///< per signal, the effects looked up
        std::vector<mask> hit;   ///< per signal, those of them that explain it
        mask about;              ///< the effects that explain this kind
        const signal_kind* kind;
        std::vector<std::size_t> join_at;
    };

public:
    /// One kind's memo, looked up once per condition rather than once per signal.
    class of_kind {
    public:
        of_kind(explanations& owner, kind_memo& memo) : owner_(owner), memo_(memo) {}

        /// The effects among `candidates` that explain the signal at `it`; each effect is
        /// looked up once per signal, and only when asked about.
        mask of(signal_log::series::const_iterator it, mask candidates) {
            const auto i = static_cast<std::size_t>(it - memo_.series.begin());
            if (const mask need = candidates & memo_.about & ~memo_.done[i]; need != 0) {
                memo_.hit[i] |= owner_.explain(*it, memo_, need);
                memo_.done[i] |= need;
            }
            return memo_.hit[i] & candidates;
        }

        /// The first effect (in the pack's order) among `candidates` that explains the
        /// signal at `it`, or 0: enough to skip it, with no look-up of the others.
        mask first_of(signal_log::series::const_iterator it, mask candidates) {
            for (std::size_t e = 0; e < 64 && (candidates >> e) != 0; ++e) {
                if (const mask bit = candidates & (mask{1} << e); bit != 0 && of(it, bit) != 0) {
                    return bit;
                }
            }
            return 0;
        }

    private:
        explanations& owner_;
        kind_memo& memo_;
    };

    of_kind for_kind(const std::string& kind) {
        auto memo = memo_.find(kind);
        if (memo == memo_.end()) {
            memo =
                memo_
                    .try_emplace(kind, log_.all_of(kind), about(kind), find_signal_kind(kind), rules_.effects)
                    .first;
        }
        return of_kind{*this, memo->second};
    }

private:
    struct by_key_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    /// One effect's causes: the times (sorted) of the causes with each joined key.
    /// Keys are views of the causes' own labels (the log does not change during a ranking), or
    /// of joined keys kept in keys_: indexing copies no label.
    using cause_index = std::unordered_map<std::string_view, std::vector<wall_time>, by_key_hash>;

    /// The join labels' values, '\x1f'-separated; false when one is empty (nothing joins
    /// on an unknown node or ReplicaSet).
    static bool key_of(const signal& s, const effect& e, std::string& key) {
        key.clear();
        for (const auto& label : e.join) {
            const std::string* v = s.find(label);
            if (v == nullptr || v->empty()) {
                return false;
            }
            key += (key.empty() ? "" : "\x1f") + *v;
        }
        return true;
    }

    const cause_index& causes(std::size_t i) {
        auto& slot = causes_[i];
        if (!slot) {
            slot.emplace();
            const effect& e = rules_.effects[i];
            std::string key;
            for (const auto& kind : e.by) {
                const signal_kind* k = find_signal_kind(kind);
                const std::size_t at =
                    k != nullptr && e.join.size() == 1 ? label_index(*k, e.join.front()) : kind_memo::npos;
                for (const signal& c : log_.between(kind, since_[i], now_)) {
                    if (at != kind_memo::npos && c.info == k) {
                        if (const std::string* v = c.label_at(at); v != nullptr && !v->empty()) {
                            (*slot)[*v].push_back(c.at);
                        }
                    } else if (key_of(c, e, key)) {
                        (*slot)[keys_.emplace_back(key)].push_back(c.at);
                    }
                }
            }
            if (e.by.size() > 1) {
                for (auto& [k, times] : *slot) {
                    std::sort(times.begin(), times.end());
                }
            }
        }
        return *slot;
    }

    mask explain(const signal& s, const kind_memo& memo, mask candidates) {
        mask out = 0;
        std::string key;
        for (std::size_t i = 0; i < rules_.effects.size(); ++i) {
            if ((candidates & (mask{1} << i)) == 0) {
                continue;
            }
            const effect& e = rules_.effects[i];
            std::string_view joined;
            if (e.join.size() == 1) {
                // One label, the usual case: looked up as it is, with no key to build.
                const std::string* v = s.info == memo.kind && memo.join_at[i] != kind_memo::npos
                                           ? s.label_at(memo.join_at[i])
                                           : s.find(e.join.front());
                if (v == nullptr || v->empty()) {
                    continue;
                }
                joined = *v;
            } else if (key_of(s, e, key)) {
                joined = key;
            } else {
                continue;
            }
            const auto& index = causes(i);
            const auto found = index.find(joined);
            if (found == index.end()) {
                continue;
            }
            // A cause from `after` before the signal up to `before` after it.
            const auto& times = found->second;
            const auto first = std::lower_bound(times.begin(), times.end(), s.at - e.window.after);
            if (first != times.end() && *first <= s.at + e.window.before) {
                out |= mask{1} << i;
            }
        }
        return out;
    }

    const rule_set& rules_;
    const signal_log& log_;
    wall_time now_;
    std::vector<std::optional<cause_index>> causes_;
    std::deque<std::string> keys_;  ///< joined keys of several labels, which the index views
    std::vector<wall_time> since_;  ///< per effect, the earliest cause worth indexing
    std::map<std::string, kind_memo, std::less<>> memo_;
};

class evaluator {
public:
    evaluator(
        const signal_log& log,
        const source_map& sources,
        const rank_input& in,
        relation_memo& related,
        explanations& explained
    )
        : log_(log), sources_(sources), in_(in), related_(related), explained_(explained) {}

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
                    // Each leaf kept its closest few; all of them stay, so every leaf that
                    // held can speak in the evidence and the actions.
                    out.support.insert(out.support.end(), k.support.begin(), k.support.end());
                    out.calendar_lines.insert(
                        out.calendar_lines.end(), k.calendar_lines.begin(), k.calendar_lines.end()
                    );
                }
                for (auto& u : k.unchecked) {
                    if (std::find(out.unchecked.begin(), out.unchecked.end(), u) == out.unchecked.end()) {
                        out.unchecked.push_back(std::move(u));
                    }
                }
                out.checked.insert(out.checked.end(), k.checked.begin(), k.checked.end());
            }
        };
        const bool all_checkable =
            std::all_of(kids.begin(), kids.end(), [](const outcome& k) { return k.checkable; });
        if (c.what == condition::op::all) {
            out.matched = std::all_of(kids.begin(), kids.end(), [](const outcome& k) { return k.matched; });
            out.strength = 1;
            for (const auto& k : kids) {
                out.strength = std::min(out.strength, k.strength);
            }
            out.checkable = out.matched || all_checkable;
            gather(out.matched);
        } else if (c.what == condition::op::any) {
            // Independent evidence adds up (noisy-or), but two children that found one story
            // (a CI deploy and the rollout that carries its commit) are one piece of it: an
            // effect is not a second cause. Each story counts once, at its strongest.
            const auto story = stories(kids);
            std::vector<double> strongest(kids.size(), 0);
            for (std::size_t i = 0; i < kids.size(); ++i) {
                if (kids[i].matched) {
                    out.matched = true;
                    strongest[story[i]] = std::max(strongest[story[i]], kids[i].strength);
                }
            }
            double miss = 1;
            for (const double s : strongest) {
                miss *= 1 - s;
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
            // "None of these happened" holds only when every one of them could be checked.
            out.matched = all_checkable &&
                          std::none_of(kids.begin(), kids.end(), [](const outcome& k) { return k.matched; });
            out.strength = out.matched ? 1 : 0;
            out.checkable = all_checkable;
            gather(false);
        }
        return out;
    }

    /// For each child, the first child of its story: children that held are one story
    /// when a supporting deploy.ci of one carries the commit of a supporting k8s.rollout's
    /// image in the other.
    static std::vector<std::size_t> stories(const std::vector<outcome>& kids) {
        std::vector<std::size_t> story(kids.size());
        for (std::size_t i = 0; i < kids.size(); ++i) {
            story[i] = i;
        }
        const auto one_deploy = [](const found& a, const found& b) {
            const auto ci_and_rollout = [](const signal& ci, const signal& ro) {
                if (ci.kind != deploy_kind || ro.kind != rollout_kind) {
                    return false;
                }
                const std::string* commit = ci.find("commit");
                const std::string* image = ro.find("image");
                return commit != nullptr && image != nullptr && image_carries(*image, *commit);
            };
            return ci_and_rollout(*a.s, *b.s) || ci_and_rollout(*b.s, *a.s);
        };
        for (std::size_t i = 0; i < kids.size(); ++i) {
            for (std::size_t j = i + 1; j < kids.size(); ++j) {
                if (!kids[i].matched || !kids[j].matched || story[j] != j) {
                    continue;
                }
                for (const auto& a : kids[i].support) {
                    if (std::any_of(kids[j].support.begin(), kids[j].support.end(), [&](const found& b) {
                            return one_deploy(a, b);
                        })) {
                        story[j] = story[i];
                        break;
                    }
                }
            }
        }
        return story;
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
        if (it->second.state == source_state::failing && (k == nullptr || !k->tells_failure)) {
            return "the " + std::string{src} + " source is failing" +
                   (it->second.error.empty() ? std::string{} : ": " + it->second.error);
        }
        return {};
    }

    outcome leaf(const signal_test& t) {
        outcome out;
        if (auto why = unavailable(t.kind); !why.empty()) {
            out.checkable = false;
            out.unchecked.emplace_back(std::move(why), t.kind);
            return out;
        }
        bool exclude_elsewhere = t.rollout == signal_test::rollout_test::not_elsewhere;
        if (t.rollout != signal_test::rollout_test::any) {
            // Whether it rolled out is Kubernetes' to say: without it, a finding cannot be
            // made, and an exclusion excludes nothing.
            if (auto why = unavailable(rollout_kind); !why.empty()) {
                if (!exclude_elsewhere) {
                    out.checkable = false;
                    out.unchecked.emplace_back(std::move(why), std::string{rollout_kind});
                    return out;
                }
                exclude_elsewhere = false;
            }
        }
        const wall_time from = in_.start - t.window.before;
        const wall_time to = std::min(in_.start + t.window.after, in_.now);
        // For `quiet_for`: each subject's last signal up to now, whether in the window or not.
        std::map<std::string_view, wall_time> last_of;
        if (t.quiet_for) {
            for (const signal& s : log_.between(t.kind, from, in_.now)) {
                auto& last = last_of[s.subject];
                last = std::max(last, s.at);
            }
        }
        leaf_stats stats;
        std::size_t count = 0;
        std::vector<found> support;
        // For `sustained`: per subject, when the current run of matching samples began.
        struct sample_run {
            std::optional<wall_time> begun;  ///< when the current run of matching samples began
            wall_time last;                  ///< the subject's previous sample
        };
        std::map<std::string_view, sample_run> runs;
        const auto window = log_.between(t.kind, from, to);
        relation_memo::of_kind* memo = t.related ? &related_.for_kind(log_, t.kind) : nullptr;
        // Effects: which may explain this kind, and which this leaf asks for.
        const auto effects =
            t.explained == signal_test::explained_test::include ? 0 : explained_.about(t.kind);
        const auto wanted =
            t.explained == signal_test::explained_test::only ? explained_.named(t.explained_by) : 0;
        std::size_t explained_away = 0;
        explanations::mask explained_by = 0;
        std::optional<explanations::of_kind> explained;
        if (effects != 0) {
            explained.emplace(explained_.for_kind(t.kind));
        }
        for (auto it = window.begin(); it != window.end(); ++it) {
            const signal& s = *it;
            // The relation first: decided once per signal and remembered, it is cheaper than
            // the label tests the next condition on the kind would run again.
            if (memo != nullptr && !memo->holds(it)) {
                continue;
            }
            if (!std::all_of(t.where.begin(), t.where.end(), [&](const label_test& lt) {
                    return passes(lt, s);
                })) {
                continue;
            }
            if (t.explained == signal_test::explained_test::only) {
                if (effects == 0 || (explained->of(it, effects) & wanted) == 0) {
                    continue;  // not the effect this leaf counts
                }
            } else if (effects != 0) {
                if (const auto m = explained->first_of(it, effects); m != 0) {
                    explained_away += 1;  // an effect, not a second cause
                    explained_by |= m;
                    continue;
                }
            }
            if (t.quiet_for && (last_of[s.subject] > s.at || in_.now - s.at < *t.quiet_for)) {
                continue;  // its subject spoke again since, or not long enough ago
            }
            if ((t.rollout == signal_test::rollout_test::rolled_out ||
                 t.rollout == signal_test::rollout_test::elsewhere || exclude_elsewhere) &&
                !rollout_passes(t.rollout, s)) {
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
                auto& run = runs[s.subject];
                // A sample that does not match, or a gap longer than half the duration (the
                // series had no data), ends the run.
                if (!ok || (run.begun && s.at - run.last > *t.sustained / 2)) {
                    run.begun.reset();
                }
                run.last = s.at;
                if (!ok) {
                    continue;
                }
                if (!run.begun) {
                    run.begun = s.at;
                }
                const auto& begun = run.begun;
                if (s.at - *begun < *t.sustained) {
                    continue;  // matching, but not for long enough yet
                }
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
            for (std::size_t i = 0; i < support.size(); ++i) {
                support[i].leaf_count = count;
                support[i].place = i;
            }
            out.support = std::move(support);
        } else if (!t.clear.empty() || explained_away > 0) {
            std::string phrase = checked_phrase(t.clear, t, stats);
            if (explained_away > 0) {
                phrase += " (" + std::to_string(explained_away) + " " + t.kind + " explained by " +
                          explained_.names(explained_by) + ")";
            }
            out.checked.push_back(std::move(phrase));
        }
        return out;
    }

    /// The `rollout` test of one signal: where the rollouts whose image tag carries its
    /// commit are, from 2h before it (a CI system may report success well after the rollout
    /// began) until now. A signal without a commit is found by no test and excluded by none.
    bool rollout_passes(signal_test::rollout_test want, const signal& s) {
        const std::string* commit = s.find("commit");
        if (commit == nullptr || commit->empty()) {
            return want == signal_test::rollout_test::not_elsewhere;
        }
        const auto rollouts = log_.between(rollout_kind, s.at - std::chrono::hours{2}, in_.now);
        auto& memo = related_.for_kind(log_, std::string{rollout_kind});
        bool here = false;
        bool elsewhere = false;
        for (auto it = rollouts.begin(); it != rollouts.end(); ++it) {
            const std::string* image = it->find("image");
            if (image != nullptr && image_carries(*image, *commit)) {
                (memo.holds(it) ? here : elsewhere) = true;
            }
        }
        switch (want) {
            case signal_test::rollout_test::rolled_out: return here;
            case signal_test::rollout_test::elsewhere: return elsewhere && !here;
            case signal_test::rollout_test::not_elsewhere: return !elsewhere || here;
            case signal_test::rollout_test::any: break;
        }
        return true;
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
                t.evidence.empty() ? "the alert came at " + m.text + ", inside " + window
                                   : t.evidence.render(lookup)
            );
        } else {
            out.checked.push_back("the alert came at " + m.text + ", outside " + window);
        }
        return out;
    }

public:
    std::string checked_phrase(const text_template& clear, const signal_test& t, const leaf_stats& stats)
        const {
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
    relation_memo& related_;
    explanations& explained_;
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
        return clock_utc(s.at);
    }
    if (name == "ago") {
        // A time the world did not give is not passed off as when it happened.
        return (s.seen ? "seen " : "") + relative_to_alert(s.at, in.start);
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

/// Renders `t` for one signal: its labels, then the built-in placeholders. An action
/// (`need_values`) is not rendered with an empty label: "deploy/" would be a wrong command.
std::optional<std::string> render_for(
    const text_template& t, const found& f, const rank_input& in, bool need_values
) {
    return render_strict(t, [&](std::string_view name) -> std::optional<std::string> {
        if (const std::string* v = f.s->find(name)) {
            return need_values && v->empty() ? std::nullopt : std::optional{*v};
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

/// "the kubernetes source is not configured (k8s.rollout, k8s.waiting); ...": one
/// clause per reason, naming the kinds it leaves unchecked.
std::string unchecked_text(const std::vector<std::pair<std::string, std::string>>& unchecked) {
    std::vector<std::string> clauses;
    std::vector<bool> used(unchecked.size(), false);
    for (std::size_t i = 0; i < unchecked.size(); ++i) {
        if (used[i]) {
            continue;
        }
        std::string kinds;
        for (std::size_t j = i; j < unchecked.size(); ++j) {
            if (!used[j] && unchecked[j].first == unchecked[i].first) {
                used[j] = true;
                kinds += (kinds.empty() ? "" : ", ") + unchecked[j].second;
            }
        }
        clauses.push_back(unchecked[i].first + " (" + kinds + ")");
    }
    return join(clauses);
}

/// Orders supporting signals so that every leaf's closest signal comes first, then every
/// leaf's second...: each condition that held gets its say before any repeats itself.
void take_turns(std::vector<found>& support) {
    std::stable_sort(support.begin(), support.end(), [](const found& a, const found& b) {
        return std::pair{a.place, a.distance} < std::pair{b.place, b.distance};
    });
}

/// The lines of every warning that holds: its text for each supporting signal, in turns as
/// for evidence; once with `{service}` alone when only calendar or `none` conditions held.
/// Whatever cannot be checked simply does not hold: a warning is never "not checkable".
std::vector<warning_line> warning_lines(
    const rule_set& rules,
    const signal_log& log,
    const source_map& sources,
    const rank_input& in,
    relation_memo& related,
    explanations& explained
) {
    std::vector<warning_line> out;
    for (const warning& w : rules.warnings) {
        evaluator ev{log, sources, in, related, explained};
        outcome o = ev.eval(w.when);
        if (!o.matched) {
            continue;
        }
        take_turns(o.support);
        std::vector<std::string> lines;
        for (const auto& f : o.support) {
            if (auto line = render_for(w.text, f, in, false)) {
                add_unique(lines, std::move(*line), in.max_warning_lines);
            }
        }
        if (o.support.empty()) {
            if (auto line = render_strict(w.text, service_only(in))) {
                add_unique(lines, std::move(*line), in.max_warning_lines);
            }
        }
        for (auto& line : lines) {
            out.push_back(warning_line{w.id, std::move(line)});
        }
    }
    return out;
}

}  // namespace

std::string relative_to_alert(wall_time at, wall_time start) {
    if (distance(at, start) < std::chrono::seconds{1}) {
        return "at the alert";
    }
    return human_duration(distance(at, start)) + (at < start ? " before the alert" : " after the alert");
}

ranking rank(const rule_set& rules, const signal_log& log, const source_map& sources, const rank_input& in) {
    ranking out;
    double total = 0;
    double unknown = 0;  // the not checkable causes' priors, then the unlisted mass
    double priors = 0;
    relation_memo related{in.service};
    explanations explained{rules, log, in.start, in.now};
    for (const rule& r : rules.rules) {
        priors += r.prior;
        evaluator ev{log, sources, in, related, explained};
        outcome o = ev.eval(r.when);
        if (!o.matched) {
            if (!o.checkable) {
                // It may hold, as likely as its prior says: nothing was seen either way.
                unknown += r.prior;
                out.not_checkable.push_back(checked{r.id, r.title, unchecked_text(o.unchecked)});
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
        take_turns(o.support);
        if (r.recent && !o.support.empty()) {
            // The closest supporting signal of the kinds recency is about, else of any kind.
            const auto measured = [&](const found& f) {
                return r.recent->of.empty() ||
                       std::find(r.recent->of.begin(), r.recent->of.end(), f.s->kind) != r.recent->of.end();
            };
            const bool any_measured = std::any_of(o.support.begin(), o.support.end(), measured);
            auto closest = o.support.end();
            for (auto it = o.support.begin(); it != o.support.end(); ++it) {
                if ((!any_measured || measured(*it)) &&
                    (closest == o.support.end() || it->distance < closest->distance)) {
                    closest = it;
                }
            }
            const double halves = std::chrono::duration<double>(closest->distance).count() /
                                  std::chrono::duration<double>(r.recent->half_life).count();
            s.recency = r.recent->floor + (1 - r.recent->floor) * std::exp2(-halves);
        }
        // Evidence multiplies the cause's odds (docs/rules.md, "Shares"): by evidence_base^strength
        // if it is about this incident, which recency says how likely it is; by 1 if not.
        s.score = s.prior * (1 + s.recency * (std::pow(evidence_base, s.strength) - 1));
        s.specificity = o.calendar_lines.size();
        for (std::size_t i = 0; i < o.support.size(); ++i) {
            const signal_test* leaf = o.support[i].leaf;
            s.closest = std::min(s.closest, o.support[i].distance);
            const bool first_of_leaf = std::none_of(
                o.support.begin(),
                o.support.begin() + static_cast<std::ptrdiff_t>(i),
                [&](const found& f) { return f.leaf == leaf; }
            );
            if (first_of_leaf) {
                s.specificity += 1 + leaf->where.size() + (leaf->above || leaf->below ? 1 : 0) +
                                 (leaf->explained == signal_test::explained_test::only ? 1 : 0);
            }
        }
        for (const auto& line : o.calendar_lines) {
            add_unique(s.evidence, line, in.max_evidence);
        }
        for (const auto& f : o.support) {
            const text_template& t = f.leaf->evidence.empty() ? r.evidence : f.leaf->evidence;
            auto line = t.empty()
                            ? std::optional{f.s->kind + " " + f.s->subject + " " + *builtin("ago", f, in)}
                            : render_for(t, f, in, false);
            if (line) {
                add_unique(s.evidence, std::move(*line), in.max_evidence);
            }
        }
        for (const auto& f : o.support) {
            for (const auto& a : r.actions) {
                if (auto line = render_for(a, f, in, true)) {
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
    // What could not be looked at keeps its prior (likelihood 1), and so does a cause the pack
    // does not name: `unlisted` of the prior mass before any evidence.
    const double unlisted = std::clamp(in.unlisted, 0.0, 0.99);
    unknown += priors * unlisted / (1 - unlisted);
    for (auto& s : out.suspects) {
        s.share = s.score / (total + unknown);
    }
    out.unknown = total + unknown > 0 ? unknown / (total + unknown) : 1;
    out.warnings = warning_lines(rules, log, sources, in, related, explained);
    // Ties are broken by evidence, never by name: the more specific, then the closer to the
    // start. What is still equal is a tie, and is shown as one.
    const auto key = [](const suspect& s) {
        return std::tuple{-s.score, -static_cast<double>(s.specificity), s.closest};
    };
    std::stable_sort(out.suspects.begin(), out.suspects.end(), [&](const suspect& a, const suspect& b) {
        return key(a) < key(b);
    });
    for (std::size_t i = 1; i < out.suspects.size(); ++i) {
        out.suspects[i].tied = key(out.suspects[i]) == key(out.suspects[i - 1]);
    }
    return out;
}

}  // namespace runbookd
