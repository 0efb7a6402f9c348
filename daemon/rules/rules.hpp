#pragma once
// YAML rule packs -> core::rule_set, with file:line:col problems (docs/rules.md).

#include "core/problem.hpp"
#include "core/rule.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::rules {

/// The rule set, or every problem found.
struct load_result {
    std::shared_ptr<const rule_set> value;
    std::vector<problem> problems;
    bool ok() const noexcept { return value != nullptr; }
};

/// Parses one rules document. `file` names it in problems and in each rule.
/// Never throws for bad input; reads no files.
load_result parse(std::string_view yaml_text, std::string_view file);

/// Loads and merges files in order; a rule id defined twice is a problem. Empty `paths`
/// loads the embedded pack.
load_result load(const std::vector<std::string>& paths);

/// The runbook pack built into the binary (rules/runbook.yaml at build time).
std::string_view embedded_pack() noexcept;

/// The name problems and logs give the embedded pack.
inline constexpr std::string_view embedded_name = "<embedded>/rules/runbook.yaml";

}  // namespace runbookd::rules
