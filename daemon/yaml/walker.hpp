#pragma once
// Shared by the configuration, rules, rule-test and scenario loaders: walks a yaml-cpp
// tree, reports every problem as file:line:col with its key path, and rejects unknown keys
// with "did you mean". Linked privately by config and rules (yaml-cpp never reaches core).

#include "core/problem.hpp"
#include "core/time.hpp"
#include "yaml/section.hpp"

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::yaml {

/// One key of a map (or one item of a list) with its position and key path.
struct entry {
    std::string name;
    YAML::Node key;  ///< undefined for list items
    YAML::Node value;
    std::string path;
};

using entries = std::vector<entry>;

/// Collects problems for one file. Every reader returns nullopt after reporting.
class walker {
public:
    explicit walker(std::string file) : file_(std::move(file)) {}

    /// Parses `text` into one document; reports syntax errors and extra documents.
    std::optional<YAML::Node> document(std::string_view text);

    void report(const YAML::Mark& at, std::string path, std::string message);
    void report(const entry& at, std::string message);

    /// The entries of a map whose keys must be in `known` (unknown and duplicate keys are
    /// reported and skipped). A null node is an empty map.
    std::optional<entries> map(
        const YAML::Node& node, const std::string& path, std::span<const std::string_view> known
    );
    /// The items of a list; a null node is an empty list.
    std::optional<entries> list(const entry& e);

    std::optional<std::string> string(const entry& e, bool non_empty = true);
    /// A list of non-empty strings; the items that are not are reported and left out.
    std::vector<std::string> strings(const entry& e);
    std::optional<double> number(const entry& e, double min, double max);
    std::optional<std::size_t> count(const entry& e, std::size_t min);
    /// "5m", "1h30m"; with `signed_ok`, "-5m" and "0" too (offsets from an instant).
    std::optional<millis> duration(const entry& e, bool signed_ok = false);
    std::optional<wall_time> instant(const entry& e);

    const std::string& file() const noexcept { return file_; }
    std::size_t problem_count() const noexcept { return problems_.size(); }
    /// Every problem, sorted by position.
    std::vector<problem> take();

private:
    std::string file_;
    std::vector<problem> problems_;
};

/// A section over `node` (a map, or null for an absent one). `env` null: no ${VAR}
/// substitution (scenario and rule-test files). `mark` is where a missing key is reported.
section make_section(
    walker& w, const env_lookup* env, const YAML::Node& node, const YAML::Mark& mark, std::string path
);

/// "a map", "a list", "a string" or "an empty value", for messages.
const char* kind_of(const YAML::Node& n);

/// True for a missing or null node (`key:` with nothing after it).
bool is_null(const YAML::Node& n);

/// The entry named `name`, or nullptr.
const entry* find(const entries& es, std::string_view name);

/// A key path of a list item: "rules[3]".
std::string item_path(const std::string& path, std::size_t i);

}  // namespace runbookd::yaml
