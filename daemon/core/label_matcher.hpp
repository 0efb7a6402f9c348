#pragma once
// Label matchers, as Alertmanager writes them in a route's `matchers:` (name="value",
// name!="value", name=~"regex", name!~"regex"): the config validates them and the
// Alertmanager intake maps an alert to a service with them
// (`services.<id>.alertmanager: ['service="editor"', 'env=~"prod|canary"']`).
// https://prometheus.io/docs/alerting/latest/configuration/#matcher

#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd {

struct label_matcher {
    enum class op { equal, not_equal, regex, not_regex };
    std::string name;
    op kind = op::equal;
    std::string value;
    /// Compiled for regex and not_regex; anchored at both ends, as Alertmanager's are.
    std::shared_ptr<const std::regex> re;

    /// Whether `labels` satisfy this matcher. A missing label is the empty string (as in
    /// Alertmanager: `team=""` matches an alert without `team`).
    bool matches(const std::vector<std::pair<std::string, std::string>>& labels) const;

    friend bool operator==(const label_matcher& a, const label_matcher& b) {
        return a.name == b.name && a.kind == b.kind && a.value == b.value;
    }
};

/// The matcher in `text`, or why it is not one (never quoting the text: the caller does).
/// The value is double-quoted (with \" \\ \n escapes) or bare; the regex syntax is
/// ECMAScript, which agrees with Alertmanager's RE2 for the usual `a|b`, `.*`, `[0-9]+`.
struct matcher_parse {
    std::optional<label_matcher> matcher;
    std::string reason;  ///< set when matcher is empty
};
matcher_parse parse_label_matcher(std::string_view text);

/// Whether `labels` satisfy every matcher (an empty list matches nothing: a service
/// without matchers is never chosen by labels).
bool matches_all(
    const std::vector<label_matcher>& matchers, const std::vector<std::pair<std::string, std::string>>& labels
);

}  // namespace runbookd
