#pragma once
// Scenarios for `runbookd replay`: a timeline of incident events, signals and source
// health, run through the real engine and renderer under virtual time
// (docs/rules.md, "Replaying scenarios").

#include "core/engine.hpp"
#include "core/event.hpp"
#include "core/input.hpp"
#include "core/post.hpp"
#include "core/problem.hpp"

#include <iosfwd>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace runbookd::rules {

/// One timeline step: the engine's own input (core/input.hpp). A signal's step is at the
/// signal's time; replay applies one from before the start at the start.
using scenario_step = input;

/// A rule id the file names, and where, so that an id the rules do not define is reported
/// at its place rather than let an expectation pass or fail vacuously.
struct named_rule {
    std::string id;
    problem where;  ///< file, line, column and key path; `message` unset
};

/// What the scenario's author expects; checked by replay.
struct scenario_expectation {
    std::optional<std::string> top;  ///< top suspect of the last #operations summary
    /// The acceptable top three, in any order (`replay --score`); `[]` for none at all.
    std::optional<std::vector<std::string>> top3;
    std::optional<std::size_t> status_posts;
    std::optional<std::size_t> operations_posts;
    std::vector<std::string> status_contains;
    std::vector<std::string> operations_contains;
    std::optional<millis> first_operations_within;  ///< of the first page
};

struct scenario {
    std::string name;
    std::string file;
    wall_time start;  ///< T0: offsets in the file are from here
    wall_time until;  ///< replay stops here
    engine_settings settings;
    std::vector<std::string> rule_files;  ///< empty: the embedded pack
    source_map sources;                   ///< at T0
    std::vector<scenario_step> steps;     ///< in time order
    std::optional<scenario_expectation> expect;
    std::string reason;             ///< one line: why the expected top cause is the right one
    std::vector<named_rule> named;  ///< every rule id `expect` names
};

struct scenario_load {
    std::optional<scenario> value;
    std::vector<problem> problems;
};

/// Reads a scenario file (rule files are named relative to it). Never throws.
scenario_load load_scenario(const std::string& path);

/// Parses a scenario's text as if read from `path`. Never throws.
scenario_load parse_scenario(const std::string& path, std::string_view text);

/// A problem for each rule id the scenario's expectations name that `rules` does not
/// define as a rule (a warning is never a cause).
std::vector<problem> unknown_rule_ids(const scenario& s, const rule_set& rules);

/// A post as replay prints it.
struct replayed_post {
    wall_time at;
    post p;
};

/// One suspect of a ranking, as a score reads it.
struct ranked {
    std::string id;
    double share = 0;
    std::size_t evidence = 0;  ///< evidence lines
};

/// What the last #operations summary of the scenario's incident concluded.
struct diagnosis {
    std::string top = "none";      ///< its first suspect; "none" when it had none
    bool named = false;            ///< it names `top` as the likely cause
    std::vector<ranked> suspects;  ///< the ranking it was made from, best first
};

/// Whether a diagnosis is what `expected` says: that rule first, or for "none", no cause
/// named as the likely one (weak leads may be listed).
bool meets(const diagnosis& d, const std::string& expected);

struct replay_result {
    std::vector<replayed_post> posts;
    std::vector<std::string> misses;  ///< expectations not met; empty when none or all met
    diagnosis found;                  ///< top "none" when the scenario has no page or no summary
};

/// Runs the scenario through a fresh engine under virtual time: every step at its instant,
/// every wake-up the engine asks for in between, until `until`.
replay_result replay(const scenario& s, std::shared_ptr<const rule_set> rules);

/// How one scenario's diagnosis compares with what its author expects (`replay --score`).
struct scenario_score {
    std::string file;
    std::string name;
    std::string reason;
    std::string expected;                                ///< a rule id, or "none"
    std::optional<std::vector<std::string>> acceptable;  ///< expect.top3, when given
    diagnosis found;
    bool top1 = false;  ///< the expected top cause is first (meets)
    /// The expected cause is among the first three suspects ("none": none was named), and
    /// every one of the first three is acceptable when `acceptable` is given.
    bool top3 = false;
    std::string overconfident;  ///< why the named top is overconfident; "" when it is not
};

/// Judges one replayed scenario that has `expect.top`. `dominance_share` is the share from
/// which a wrong top suspect is overconfident (the scenario's own setting).
scenario_score judge(const scenario& s, const replay_result& r);

/// The corpus's figures.
struct corpus_score {
    std::vector<scenario_score> scenarios;  ///< as judged, in the order given
    std::size_t top1 = 0;
    std::size_t top3 = 0;
    std::vector<double> right_shares;  ///< shares of correct top suspects, ascending
    std::vector<double> wrong_shares;  ///< shares of wrong top suspects, ascending
    std::size_t overconfident = 0;
};

corpus_score tally(std::vector<scenario_score> scenarios);

/// The median of ascending values (the mean of the middle two for an even count); 0 for none.
double median(const std::vector<double>& ascending);

/// The score's report: a line per scenario (`ok`, `top3` for a top-three miss, `MISS`), the
/// ranking and reasoning of each miss, the overconfident ones and the figures.
void write_score(const corpus_score& c, std::ostream& out);

}  // namespace runbookd::rules
