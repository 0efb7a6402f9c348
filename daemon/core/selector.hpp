#pragma once
// Label selectors, as Kubernetes writes them: the config validates them and the Kubernetes
// source matches Deployments with them (`services.<id>.kubernetes: [darklang/app=bwd]`).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd {

/// An equality-based label selector ("app=bwdserver,tier!=batch"), as in
/// `services.<id>.kubernetes: [darklang/app=bwdserver]`.
struct label_requirement {
    std::string key;
    std::string value;
    bool equal = true;  ///< "=" or "=="; false: "!="
};
using label_selector = std::vector<label_requirement>;

/// nullopt unless `text` is one or more comma-separated key=value, key==value or
/// key!=value requirements.
std::optional<label_selector> parse_selector(std::string_view text);

/// Whether `labels` satisfy every requirement (a missing key is "not equal").
bool selects(const label_selector& selector, const std::vector<std::pair<std::string, std::string>>& labels);

}  // namespace runbookd
