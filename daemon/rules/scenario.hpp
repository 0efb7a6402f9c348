#pragma once
// Scenarios for `runbookd replay`: a timeline of incident events, signals and source
// health, run through the real engine and renderer under virtual time
// (docs/rules.md, "Replaying scenarios").

#include "core/engine.hpp"
#include "core/event.hpp"
#include "core/input.hpp"
#include "core/post.hpp"
#include "core/problem.hpp"

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace runbookd::rules {

/// One timeline step: the engine's own input (core/input.hpp). A signal's step is at the
/// signal's time; replay applies one from before the start at the start.
using scenario_step = input;

/// What the scenario's author expects; checked by replay.
struct scenario_expectation {
    std::optional<std::string> top;  ///< top suspect of the last #operations summary
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
};

struct scenario_load {
    std::optional<scenario> value;
    std::vector<problem> problems;
};

/// Reads a scenario file (rule files are named relative to it). Never throws.
scenario_load load_scenario(const std::string& path);

/// A post as replay prints it.
struct replayed_post {
    wall_time at;
    post p;
};

struct replay_result {
    std::vector<replayed_post> posts;
    std::vector<std::string> misses;  ///< expectations not met; empty when none or all met
};

/// Runs the scenario through a fresh engine under virtual time: every step at its instant,
/// every wake-up the engine asks for in between, until `until`.
replay_result replay(const scenario& s, std::shared_ptr<const rule_set> rules);

}  // namespace runbookd::rules
