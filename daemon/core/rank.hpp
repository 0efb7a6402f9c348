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
};

/// A cause the evidence points to.
struct suspect {
    std::string id;
    std::string title;
    double prior = 0;
    double strength = 0;                ///< 0..1, from the condition tree
    double recency = 1;                 ///< 0..1, from the closest supporting signal
    double score = 0;                   ///< prior x strength x recency
    double share = 0;                   ///< score / sum of every suspect's score
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
    std::vector<suspect> suspects;       ///< best first; ties by prior, then id
    std::vector<checked> clear;          ///< in rule order
    std::vector<checked> not_checkable;  ///< in rule order
    std::vector<warning_line> warnings;  ///< in warning order; not causes, never in the shares

    const suspect* top() const noexcept { return suspects.empty() ? nullptr : &suspects.front(); }
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
