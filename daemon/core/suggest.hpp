#pragma once
// "Did you mean ...?" for misspelt keys and names in configuration and rules.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace runbookd {

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so that
/// "lsiten" is one edit from "listen".
std::size_t edit_distance(std::string_view a, std::string_view b);

/// "; did you mean 'listen'?" when a candidate is within two edits, or when one is a prefix
/// of the other ("warning" for "warn"); else "".
std::string suggestion(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace runbookd
