#pragma once
// The CLI's commands. Each returns the process exit code (docs/operations.md):
// 0 success, 1 invalid configuration, 2 usage error, 3 runtime failure.

#include <iosfwd>
#include <string>
#include <vector>

namespace runbookd::app::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_invalid_config = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_runtime = 3;

/// `runbookd run --config FILE`: serves until SIGTERM/SIGINT.
int run(const std::string& config_path);

/// `runbookd check-config FILE`: prints every problem (file:line:col: path: message) to
/// `err`, or a one-line summary to `out`.
int check_config(const std::string& path, std::ostream& out, std::ostream& err);

/// `runbookd test-rules FILE...`: runs rule unit tests; 0 when all pass, 1 otherwise.
int test_rules(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);

/// `runbookd replay SCENARIO [--format text|json]`: prints every post the scenario makes,
/// with its virtual time; 1 when the scenario is invalid or its expectations are not met.
int replay(const std::string& scenario_path, const std::string& format, std::ostream& out, std::ostream& err);

/// `runbookd replay --score DIR`: replays every scenario in DIR (`*.yaml`, not recursive)
/// and scores each diagnosis against its `expect.top` and `expect.top3`; 0 when every
/// scored scenario names its expected top cause first, 1 otherwise or when any scenario is
/// invalid or none is scored.
int replay_score(const std::string& dir, std::ostream& out, std::ostream& err);

/// `runbookd version`.
int version(std::ostream& out);

}  // namespace runbookd::app::cli
