#include "core/markdown.hpp"

#include <gtest/gtest.h>

namespace runbookd {
namespace {

TEST(markdown, escapes_formatting_and_mentions) {
    EXPECT_EQ(escape_markdown("a*b_c"), "a\\*b\\_c");
    EXPECT_EQ(escape_markdown("@here"), "@\u200bhere");
    EXPECT_EQ(escape_markdown("line1\nline2", true), "line1 line2");
    EXPECT_EQ(escape_markdown("[x](https://evil)"), "\\[x\\]\\(https://evil\\)");
}

TEST(markdown, escapes_block_syntax_only_at_line_start) {
    EXPECT_EQ(escape_markdown("editor-api is #1 > all"), "editor-api is #1 > all");
    EXPECT_EQ(escape_markdown("# heading"), "\\# heading");
    EXPECT_EQ(escape_markdown("  - item\n> quote"), "  \\- item\n\\> quote");
    EXPECT_EQ(escape_markdown("a\n# b", true), "a # b");
}

TEST(markdown, plain_text_keeps_punctuation_and_defuses_mentions) {
    EXPECT_EQ(plain_text("api_latency_high *P1*"), "api_latency_high *P1*");
    EXPECT_EQ(plain_text("a\r\nb @everyone"), "a b @\u200beveryone");
}

TEST(markdown, counts_utf16_units) {
    EXPECT_EQ(utf16_length("abc"), 3u);
    EXPECT_EQ(utf16_length("\u00e9"), 1u);
    EXPECT_EQ(utf16_length("\U0001F534"), 2u);
}

TEST(markdown, truncates_without_splitting_code_points) {
    EXPECT_EQ(truncate_utf16("hello", 5), "hello");
    EXPECT_EQ(truncate_utf16("hello world", 6), "hello\u2026");
    const auto cut = truncate_utf16("ab\U0001F534cd", 3);
    EXPECT_EQ(cut, "ab\u2026");
    EXPECT_LE(utf16_length(cut), 3u);
}

TEST(markdown, truncation_never_leaves_a_dangling_escape) {
    const auto cut = truncate_utf16("abc\\*def", 5);
    EXPECT_EQ(cut, "abc\u2026");
}

}  // namespace
}  // namespace runbookd
