#pragma once
// Signals: small, timestamped facts about the outside world that sources emit and rules
// read ("deployment bwdserver rolled out image X at 11:02"). The catalogue of kinds lives
// here and in docs/signals.md; keep the two in sync.

#include "core/time.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd {

/// One label of a signal: (name, value).
using label = std::pair<std::string, std::string>;

/// One fact. Labels are few, so they are a vector sorted by name rather than a map.
struct signal {
    std::string kind;  ///< dotted vocabulary: "k8s.rollout", "db.cpu"
    wall_time at;      ///< when it happened (not when it was seen)
    std::string subject;
    std::vector<label> labels;    ///< sorted by name, names unique
    std::optional<double> value;  ///< the kind's measure, when it has one
    std::string source;           ///< the source that emitted it ("kubernetes", "replay")

    /// The value of label `name`, or nullptr when the signal does not carry it.
    const std::string* find(std::string_view name) const noexcept;

    /// Sets label `name`, keeping the labels sorted.
    void set(std::string_view name, std::string value);
};

/// What the catalogue knows of one kind.
struct signal_kind {
    std::string_view name;    ///< "k8s.rollout"
    std::string_view source;  ///< the source that emits it: "kubernetes", "cloudsql", ...
    std::span<const std::string_view> labels;  ///< labels every signal of this kind carries
    std::string_view value;                    ///< the value's unit: "", "ratio", "seconds", ...
    std::string_view summary;                  ///< one line, for docs and errors
};

/// Every kind rules may refer to.
std::span<const signal_kind> signal_catalogue() noexcept;

/// The catalogue entry for `kind`, or nullptr.
const signal_kind* find_signal_kind(std::string_view kind) noexcept;

/// Placeholders every template may use whatever its signal's kind: subject, kind,
/// source, value, at, ago, service, count.
std::span<const std::string_view> builtin_placeholders() noexcept;

}  // namespace runbookd
