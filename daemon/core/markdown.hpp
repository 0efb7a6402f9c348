#pragma once
// Neutralises outside text before it goes into a post.

#include <cstddef>
#include <string>
#include <string_view>

namespace runbookd {

/// Escapes Discord markdown and defuses mentions in text that came from outside
/// (alert titles, notes, names): every markdown punctuation gets a backslash,
/// and "@" is followed by a zero-width space so "@everyone" and "<@123>" cannot ping
/// even where allowed_mentions were lost. Newlines become spaces when `single_line`.
std::string escape_markdown(std::string_view text, bool single_line = false);

/// Outside text for places Discord shows verbatim (embed footers): no markdown escapes,
/// which would show as backslashes; newlines become spaces and "@" is still followed by a
/// zero-width space, so the text can never become a mention.
std::string plain_text(std::string_view text);

/// Truncates UTF-8 text to at most `max_units` UTF-16 code units (Discord's safe
/// count), ending in "…" when cut; never splits a code point.
std::string truncate_utf16(std::string_view text, std::size_t max_units);

/// Length of UTF-8 text in UTF-16 code units (invalid bytes count as one each).
std::size_t utf16_length(std::string_view text);

}  // namespace runbookd
