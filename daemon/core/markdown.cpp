#include "core/markdown.hpp"

#include <string_view>

namespace runbookd {
namespace {

// Escaped anywhere: inline formatting, links, spoilers and mention syntax.
constexpr std::string_view markdown_specials = "\\*_~`|[]()<";
// Escaped only where they start a line: headings, block quotes, list items.
constexpr std::string_view line_start_specials = "#>-";
constexpr std::string_view zero_width_space = "\u200b";
constexpr std::string_view ellipsis = "\u2026";

/// Length in bytes of the UTF-8 sequence starting with `lead`, or 1 for an invalid lead.
std::size_t sequence_length(unsigned char lead) {
    if (lead < 0x80) {
        return 1;
    }
    if ((lead & 0xE0) == 0xC0) {
        return 2;
    }
    if ((lead & 0xF0) == 0xE0) {
        return 3;
    }
    if ((lead & 0xF8) == 0xF0) {
        return 4;
    }
    return 1;
}

}  // namespace

std::string escape_markdown(std::string_view text, bool single_line) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    bool line_start = true;  // only spaces seen since the start of the line
    for (const char c : text) {
        if (c == '\r') {
            continue;
        }
        const bool escape = markdown_specials.find(c) != std::string_view::npos ||
                            (line_start && line_start_specials.find(c) != std::string_view::npos);
        line_start = (c == '\n' && !single_line) || (line_start && c == ' ');
        if (c == '\n' && single_line) {
            out += ' ';
        } else if (escape) {
            out += '\\';
            out += c;
        } else if (c == '@') {
            out += '@';
            out += zero_width_space;
        } else {
            out += c;
        }
    }
    return out;
}

std::string plain_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '\r') {
            continue;
        }
        if (c == '\n') {
            out += ' ';
        } else if (c == '@') {
            out += '@';
            out += zero_width_space;
        } else {
            out += c;
        }
    }
    return out;
}

std::size_t utf16_length(std::string_view text) {
    std::size_t units = 0;
    for (std::size_t i = 0; i < text.size();) {
        const auto len = sequence_length(static_cast<unsigned char>(text[i]));
        units += len == 4 ? 2 : 1;
        i += len;
    }
    return units;
}

std::string truncate_utf16(std::string_view text, std::size_t max_units) {
    if (utf16_length(text) <= max_units) {
        return std::string{text};
    }
    if (max_units == 0) {
        return {};
    }
    const std::size_t budget = max_units - 1;  // one unit for the ellipsis
    std::size_t units = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto len = sequence_length(static_cast<unsigned char>(text[i]));
        const std::size_t u = len == 4 ? 2 : 1;
        if (units + u > budget || i + len > text.size()) {
            break;
        }
        units += u;
        i += len;
    }
    // Never leave a dangling escape backslash at the cut.
    std::size_t end = i;
    std::size_t backslashes = 0;
    while (backslashes < end && text[end - 1 - backslashes] == '\\') {
        ++backslashes;
    }
    if (backslashes % 2 == 1) {
        --end;
    }
    std::string out{text.substr(0, end)};
    out += ellipsis;
    return out;
}

}  // namespace runbookd
