#pragma once
// Calendar windows as written in YAML: a rule pack's named `calendars:`, a calendar leaf
// (a map, or the name of one of the pack's calendars), and the configuration's
// `calendars:` section that replaces a named calendar's keys. One reader for all three, so
// each accepts the same keys with the same messages (docs/rules.md, "Calendars").

#include "core/calendar.hpp"
#include "yaml/walker.hpp"

#include <array>
#include <optional>
#include <string_view>
#include <vector>

namespace runbookd::rules {

/// The keys of a calendar map.
inline constexpr std::array<std::string_view, 6> calendar_keys{"days", "weeks", "months", "from", "to", "tz"};

/// Reads the calendar map `e` onto `w`: the keys it has replace w's, the others keep theirs.
/// false after reporting.
bool read_window(yaml::walker& wk, const yaml::entry& e, local_window& w);

/// Reports at `e` a window that never holds (from equal to to, or from at 24:00).
bool check_window(yaml::walker& wk, const yaml::entry& e, const local_window& w);

/// A pack's `calendars:`, the windows its calendar leaves may name. Names are valid within
/// the file that defines them.
class named_calendars {
public:
    /// `calendars: {maintenance: {days: [tue, wed], from: "10:00", to: "13:00", tz: ...}}`.
    void read(yaml::walker& wk, const yaml::entry& e);

    /// A leaf's `calendar:`: one of the names, or a window written out. nullopt after reporting.
    std::optional<local_window> leaf(yaml::walker& wk, const yaml::entry& e);

    /// Reports each calendar no leaf named (a misspelt name would otherwise go unseen).
    void report_unused(yaml::walker& wk) const;

private:
    struct named {
        local_window window;
        yaml::entry at;
        bool used = false;
        bool valid = false;  ///< read without a problem
    };
    std::vector<named> list_;
    bool unresolved_ = false;  ///< a leaf named a calendar the file does not have
};

}  // namespace runbookd::rules
