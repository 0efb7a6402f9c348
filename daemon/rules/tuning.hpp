#pragma once
// Configuration that tunes a loaded rule pack without copying it (docs/rules.md,
// "Overrides"): `calendars:` replaces keys of the pack's named calendars, and
// `rules.overrides:` sets a rule's prior and recency or the parameters of one of its named
// leaves. Read with the configuration; applied each time the pack loads (at start and on
// SIGHUP). `test-rules` and `replay` use the pack as written.

#include "core/calendar.hpp"
#include "core/problem.hpp"
#include "core/time.hpp"
#include "rules/rules.hpp"

#include <bitset>
#include <memory>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace runbookd::yaml {
class walker;
}

namespace runbookd::rules {

/// Where a configured value was written, for the problems found once the pack has loaded.
struct site {
    std::string file;
    int line = 0;
    int column = 0;
    std::string path;  ///< "rules.overrides.db-trouble.cpu.value.above"

    problem at(std::string message) const { return problem{file, line, column, path, std::move(message)}; }
};

/// One configured parameter.
struct setting {
    /// prior, half_life, floor (a rule's); before, after, above, below, at_least, sustained,
    /// quiet_for, strength (a leaf's).
    std::string field;
    double number = 0;   ///< prior, floor, above, below, at_least, strength
    millis duration{0};  ///< half_life, before, after, sustained, quiet_for
    site where;
};

/// `rules.overrides.<rule>` (a rule's prior and recency) or `rules.overrides.<rule>.<leaf>`
/// (the parameters of the leaf named <leaf> in that rule or warning).
struct rule_override {
    std::string rule;  ///< a rule's or warning's id
    std::string leaf;  ///< a leaf's `name`; "" for the rule itself
    site where;        ///< the address
    std::vector<setting> settings;
};

/// `calendars.<name>`: the keys it has replace those of the pack's calendar <name>.
struct calendar_override {
    std::string name;
    site where;
    local_window window;  ///< the values of the keys it has
    std::bitset<6> keys;  ///< which, in calendar_keys' order: days, weeks, months, from, to, tz
};

/// Everything the configuration tunes.
struct tuning {
    std::vector<calendar_override> calendars;
    std::vector<rule_override> overrides;
    std::string digest;  ///< of both sections as read; folded into the tuned pack's hash

    bool empty() const noexcept { return calendars.empty() && overrides.empty(); }
    friend bool operator==(const tuning& a, const tuning& b) { return a.digest == b.digest; }
};

/// Reads the configuration root's `calendars:` and `rules.overrides:` into `out`, reporting
/// to `w` what is wrong with their shape and values. What needs the pack (ids, leaf names,
/// calendar names, a leaf's kind) is checked by apply().
void read_tuning(yaml::walker& w, const YAML::Node& root, tuning& out);

/// `pack` with `t` applied, or every problem, each at its place in the configuration: an
/// unknown rule, leaf or calendar (with "did you mean"), a parameter its leaf does not
/// have, a calendar that would never hold.
load_result apply(const std::shared_ptr<const rule_set>& pack, const tuning& t);

/// load(paths), then apply(t).
load_result load(const std::vector<std::string>& paths, const tuning& t);

}  // namespace runbookd::rules
