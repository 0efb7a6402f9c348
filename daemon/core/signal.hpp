#pragma once
// Signals: small, timestamped facts about the outside world that sources emit and rules
// read ("deployment bwdserver rolled out image X at 11:02"). The catalogue of kinds lives
// here and in docs/signals.md; keep the two in sync.

#include "core/time.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd {

struct signal_kind;

/// One fact. Its labels are the ones the catalogue lists for its kind, stored as values in
/// the catalogue's order: ranking reads a label by position, with no name to compare, and
/// the fields it reads for every signal it visits come first, so that they share a cache
/// line (docs/benchmarks.md, "Ranking").
struct signal {
    wall_time at;                       ///< when it happened (not when it was seen)
    std::optional<double> value;        ///< the kind's measure, when it has one
    std::vector<std::string> values;    ///< label values, in the order of info->labels
    const signal_kind* info = nullptr;  ///< the catalogue entry of `kind` (set by set_kind)
    std::string kind;                   ///< dotted vocabulary: "k8s.rollout", "db.cpu"
    std::string subject;
    std::string source;  ///< the source that emitted it ("kubernetes", "replay")
    /// The world gave no time for it: `at` is when the daemon saw it, and evidence says
    /// "seen 4m before the alert" rather than pretend it happened then.
    bool seen = false;

    /// Sets the kind and sizes the labels to the catalogue's; false (labels cleared) when
    /// the catalogue does not know the kind.
    bool set_kind(std::string_view k);

    /// The value of label `name` ("" when unset), or nullptr when the kind has no such label.
    const std::string* find(std::string_view name) const noexcept;

    /// The value of the kind's `i`th catalogue label, or nullptr.
    const std::string* label_at(std::size_t i) const noexcept {
        return i < values.size() ? &values[i] : nullptr;
    }

    /// Sets label `name`; false when the kind has no such label (nothing is stored).
    bool set(std::string_view name, std::string text);
};

/// What the catalogue knows of one kind.
struct signal_kind {
    std::string_view name;                     ///< "k8s.rollout"
    std::string_view source;                   ///< the source that emits it: "kubernetes", "cloudsql", ...
    std::span<const std::string_view> labels;  ///< labels every signal of this kind carries
    std::string_view value;                    ///< the value's unit: "", "ratio", "seconds", ...
    std::string_view summary;                  ///< one line, for docs and errors
    /// The kind tells of its own source's failure (db.unreachable): it stays checkable
    /// while that source is failing, when every other kind of the source is not.
    bool tells_failure = false;
};

/// Every kind rules may refer to.
std::span<const signal_kind> signal_catalogue() noexcept;

/// The catalogue entry for `kind`, or nullptr.
const signal_kind* find_signal_kind(std::string_view kind) noexcept;

/// Position of `label` among `kind.labels`, or kind.labels.size() when it is not one.
std::size_t label_index(const signal_kind& kind, std::string_view label) noexcept;

/// Placeholders every template may use whatever its signal's kind: subject, kind,
/// source, value, at, ago, service, count.
std::span<const std::string_view> builtin_placeholders() noexcept;

}  // namespace runbookd
