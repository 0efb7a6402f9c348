#pragma once
// Ranking: every rule against the signal log, around one incident's start. Pure and
// deterministic: the same rules, log, source health and instants give the same ranking.

#include "core/rule.hpp"
#include "core/signal_log.hpp"
#include "core/source_health.hpp"
#include "core/time.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace runbookd {

/// The paged service as rules see it (`related: service`).
struct service_scope {
    std::string id;    ///< PagerDuty service id
    std::string name;  ///< display name
    /// "namespace/deployment" patterns; either side may be "*" or end in "*". Empty: the
    /// service's workloads are not known, so every signal counts as related.
    std::vector<std::string> workloads;
};

struct rank_input {
    wall_time start;  ///< the incident's start: windows are relative to it
    wall_time now;    ///< nothing after now is looked at
    service_scope service;
    std::size_t max_evidence = 3;       ///< evidence lines per suspect
    std::size_t max_actions = 6;        ///< actions per suspect
    std::size_t max_warning_lines = 3;  ///< lines per warning that holds
    /// How likely, before any evidence, the cause of a page is none the pack names (or left
    /// no trace a source can see): part of the "unknown" mass (docs/rules.md, "Shares").
    double unlisted = 0.5;
};

/// What evidence of strength `s` multiplies a cause's odds by: base^s, so a full match makes a
/// cause 100 times likelier, strength 0.5 ten times; recency `r` is how likely the evidence is
/// about this incident, so the factor is r x base^s + (1 - r).
inline constexpr double evidence_base = 100;

/// A cause the evidence points to.
struct suspect {
    std::string id;
    std::string title;
    double prior = 0;
    double strength = 0;  ///< 0..1, from the condition tree
    double recency = 1;   ///< 0..1, from the closest supporting signal
    double score = 0;     ///< prior x (1 + recency x (evidence_base^strength - 1))
    double share = 0;     ///< score / (every suspect's score + the unknown mass)
    /// How specific the evidence is: for each condition that found it, 1 + its label and
    /// value tests (a calendar condition: 1). Breaks ties of score.
    std::size_t specificity = 0;
    millis closest = millis::max();     ///< the supporting signal closest to the start; breaks ties
    bool tied = false;                  ///< as likely as the suspect before it, by every measure
    std::vector<std::string> evidence;  ///< raw text (outside text unescaped)
    std::vector<std::string> actions;   ///< raw text, names filled in
    std::string status_text;
};

/// A cause with no supporting signal: why we say so.
struct checked {
    std::string id;
    std::string title;
    std::string detail;  ///< what was checked ("Cloud SQL CPU peaked at 23%"), or why it could not be
};

/// One line of a warning that holds (rule.hpp), rendered for one supporting signal.
struct warning_line {
    std::string id;    ///< the warning's id
    std::string text;  ///< raw text (outside text unescaped)
};

struct ranking {
    /// Best first: by score, then specificity, then the closest evidence; a true tie keeps
    /// the rules' order and marks the later suspect `tied`.
    std::vector<suspect> suspects;
    std::vector<checked> clear;          ///< in rule order
    std::vector<checked> not_checkable;  ///< in rule order
    std::vector<warning_line> warnings;  ///< in warning order; not causes, never in the shares
    /// The share of what could not be checked or is not in the pack: the priors of the
    /// not checkable causes and the unlisted mass, over the same total as the suspects'.
    double unknown = 1;

    const suspect* top() const noexcept { return suspects.empty() ? nullptr : &suspects.front(); }

    /// The top suspect if it may be named as the likely cause: at least `min_share`, and not
    /// tied with the next; else nullptr ("no likely cause yet").
    const suspect* likely(double min_share) const noexcept {
        const suspect* t = top();
        const bool tie = suspects.size() > 1 && suspects[1].tied;
        return t != nullptr && t->share >= min_share && !tie ? t : nullptr;
    }
};

/// One part of a `services.*.kubernetes` pattern: "*" matches anything, "prefix*" a prefix,
/// anything else itself.
bool workload_glob(std::string_view pattern, std::string_view text);

/// Whether a container image's tag carries `commit` (a lower-case hex SHA): some token of
/// the tag, split at '-', '_', '.' or '+', of at least 7 hex digits, is a prefix of it
/// ("gcr.io/dark/api:4f2a9c1", "api:v1.4-4f2a9c1e"). How a CI deploy and the Kubernetes
/// rollout it caused are known to be one story.
bool image_carries(std::string_view image, std::string_view commit);

/// Ranks every rule, and renders the lines of every warning that holds. `sources` says
/// which sources are configured and healthy; a kind whose source is absent or failing makes
/// the conditions on it "not checkable" (a warning on it just does not hold).
ranking rank(const rule_set& rules, const signal_log& log, const source_map& sources, const rank_input& in);

/// "4m before the alert", "2m after the alert", "at the alert".
std::string relative_to_alert(wall_time at, wall_time start);

}  // namespace runbookd
