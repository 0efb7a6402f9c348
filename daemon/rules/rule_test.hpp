#pragma once
// `runbookd test-rules FILE...`: rule unit tests in YAML, in the spirit of
// `promtool test rules` (docs/rules.md, "Testing rules").

#include "core/problem.hpp"

#include <iosfwd>
#include <string>
#include <vector>

namespace runbookd::rules {

/// What one run of test files found.
struct test_summary {
    int passed = 0;
    int failed = 0;
    std::vector<problem> problems;  ///< files that could not be loaded (each counts as failed)
};

/// Runs every test in `files`, printing "ok"/"FAIL" per test and a readable diff for each
/// failure to `out`, problems to `err`, and a closing "N passed, M failed" line to `out`.
test_summary run_rule_tests(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);

}  // namespace runbookd::rules
