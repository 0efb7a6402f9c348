#pragma once
// The rule model that rules/ parses YAML into and rank.cpp evaluates. Plain data: every
// template is parsed and every regex compiled when the rules load.

#include "core/calendar.hpp"
#include "core/text_template.hpp"
#include "core/time.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace runbookd {

/// One test on a label: equality, inequality, a regex (whole value), a set, or presence.
struct label_test {
    enum class op { equals, not_equals, matches, in, not_in };
    std::string label;
    std::size_t index = 0;  ///< the label's position in its kind's catalogue entry
    op how = op::equals;
    std::vector<std::string> values;            ///< one for equals/not_equals, the set for in/not_in
    std::shared_ptr<const std::regex> pattern;  ///< for matches
};

/// Where, relative to the incident's start, a condition looks for signals.
struct time_window {
    millis before = std::chrono::hours{1};
    millis after = std::chrono::hours{1};
};

/// A leaf: signals of one kind that match every test.
struct signal_test {
    std::string kind;
    std::vector<label_test> where;
    std::optional<double> above;  ///< value > above
    std::optional<double> below;  ///< value < below
    std::size_t at_least = 1;     ///< how many matching signals are needed
    /// The matching samples of one subject must span at least this long, with no
    /// non-matching sample of that subject in between ("CPU above 90% for 5 minutes").
    std::optional<millis> sustained;
    /// Only a signal that is the last of its subject up to now, at least this long ago,
    /// counts: the subject has gone quiet ("a deploy's statuses stopped at in_progress").
    std::optional<millis> quiet_for;
    /// For kinds with a `commit` label (deploy.ci): whether a k8s.rollout whose image tag
    /// carries the commit must be found (rank.cpp, image_carries).
    enum class rollout_test {
        any,         ///< not asked
        rolled_out,  ///< a rollout of the paged service's workloads carries it (needs Kubernetes)
        elsewhere,   ///< rollouts of other workloads carry it, none of the paged service's (needs Kubernetes)
        /// Not `elsewhere`: excludes only what is known to have rolled out elsewhere alone, so
        /// without Kubernetes, or without a commit, nothing is excluded.
        not_elsewhere,
    };
    rollout_test rollout = rollout_test::any;
    time_window window;
    bool related = false;  ///< only signals about the paged service's workloads count
    /// Signals an `effects:` entry explains (rule_set::effects): skipped by default, an effect
    /// not being a second cause; `include` counts them like any other; `only` counts nothing
    /// else, and only what one of `explained_by` explains.
    enum class explained_test { skip, include, only };
    explained_test explained = explained_test::skip;
    std::vector<std::string> explained_by;  ///< effect ids, for `only`
    double strength = 1.0;
    text_template evidence;  ///< overrides the rule's for signals this leaf found
    text_template clear;     ///< what "checked, clear" says of this leaf
    std::string name;        ///< optional, unique in its rule: configuration tunes it as <rule>.<name>
};

/// A leaf that holds when the incident started inside a recurring local-time window.
struct calendar_test {
    local_window window;
    double strength = 1.0;
    text_template evidence;  ///< placeholders: local_time, window
    std::string name;        ///< optional, unique in its rule: configuration tunes it as <rule>.<name>
};

/// A condition tree: a leaf, or all / any / none of the children.
struct condition {
    enum class op { signal, calendar, all, any, none };
    op what = op::signal;
    signal_test signal;
    calendar_test calendar;
    std::vector<condition> children;
};

/// Recency weighting: a supporting signal `d` away from the incident's start weighs
/// floor + (1 - floor) * 0.5^(d / half_life).
struct recency {
    millis half_life = std::chrono::minutes{15};
    double floor = 0.1;
    /// Only supporting signals of these kinds are measured (a rollout, not the crash loop
    /// it caused); empty, or none of them supporting: every supporting signal.
    std::vector<std::string> of;
};

/// One candidate cause from the runbook.
struct rule {
    std::string id;
    std::string title;
    double prior = 0.1;
    condition when;
    std::optional<recency> recent;
    text_template evidence;
    std::vector<text_template> actions;
    text_template clear;      ///< overrides the leaves' "checked" phrases
    std::string status_text;  ///< for #status when this cause dominates ("a bad deploy ...")
    std::string file;         ///< where it was defined, for messages
    int line = 0;
};

/// Something the engineers should know that is not a cause ("the certificate of www.test
/// expires in 9 days"): one line in the #operations summary, outside the ranked suspects,
/// for each signal that supports its condition. Never ranked, never counted as a cause,
/// never reported as "checked, clear" or "not checkable".
struct warning {
    std::string id;  ///< unique among the rules and warnings of a pack
    condition when;
    text_template text;  ///< rendered once per supporting signal
    std::string file;    ///< where it was defined, for messages
    int line = 0;
};

/// "This signal is explained by that one": a signal of one of `explains` is the effect of a
/// signal of one of `by` that carries the same non-empty value of every `join` label and
/// happened from `window.before` before it to `window.after` after it (the crash loops of
/// the ReplicaSet a rollout created; restarts on a node an upgrade replaced).
struct effect {
    std::string id;
    std::vector<std::string> explains;  ///< effect kinds
    std::vector<std::string> by;        ///< cause kinds
    std::vector<std::string> join;      ///< labels every kind of both lists carries
    time_window window{std::chrono::minutes{5}, std::chrono::hours{2}};
    std::string file;  ///< where it was defined, for messages
    int line = 0;
};

/// A loaded rule pack. Immutable once built; shared by the engine and reloads.
struct rule_set {
    std::vector<rule> rules;
    std::vector<warning> warnings;  ///< in the order written
    std::vector<effect> effects;    ///< in the order written; ids unique in the pack
    std::string origin;             ///< "rules/runbook.yaml", or "embedded runbook pack"
    std::string hash;               ///< of the source text(s), for logs and metrics
};

}  // namespace runbookd
