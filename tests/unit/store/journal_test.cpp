#include "store/journal.hpp"

#include <gtest/gtest.h>

namespace runbookd::store::journal {
namespace {

std::string three_records() {
    std::string text = header();
    frame(text, "{\"a\":1}");
    frame(text, "{\"b\":2}");
    frame(text, "{\"c\":3}");
    return text;
}

TEST(journal, reads_back_what_was_framed) {
    const std::string text = three_records();
    const scan s = read(text);
    EXPECT_EQ(s.error, "");
    ASSERT_EQ(s.records.size(), 3u);
    EXPECT_EQ(s.records[0], "{\"a\":1}");
    EXPECT_EQ(s.records[2], "{\"c\":3}");
    EXPECT_EQ(s.good, text.size());
    EXPECT_EQ(s.torn, 0u);
}

TEST(journal, an_empty_file_is_an_empty_journal) {
    const scan s = read("");
    EXPECT_EQ(s.error, "");
    EXPECT_TRUE(s.records.empty());
}

TEST(journal, crc32c_is_castagnoli) {
    // The check value of CRC-32C (RFC 3720, appendix B.4).
    EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
}

TEST(journal, every_cut_of_the_last_record_is_a_torn_tail_and_keeps_the_rest) {
    const std::string full = three_records();
    std::string two = header();
    frame(two, "{\"a\":1}");
    frame(two, "{\"b\":2}");
    for (std::size_t cut = two.size() + 1; cut < full.size(); ++cut) {
        const scan s = read(std::string_view{full}.substr(0, cut));
        ASSERT_EQ(s.error, "") << "cut at " << cut;
        EXPECT_EQ(s.records.size(), 2u) << "cut at " << cut;
        EXPECT_EQ(s.good, two.size());
        EXPECT_EQ(s.good + s.torn, cut);
    }
}

TEST(journal, a_cut_header_is_a_torn_tail_of_an_empty_journal) {
    const scan s = read(header().substr(0, 10));
    EXPECT_EQ(s.error, "");
    EXPECT_TRUE(s.records.empty());
    EXPECT_EQ(s.torn, 10u);
}

TEST(journal, a_zero_filled_tail_is_torn) {
    std::string text = three_records();
    const auto good = text.size();
    text.append(4096, '\0');
    const scan s = read(text);
    EXPECT_EQ(s.error, "");
    EXPECT_EQ(s.records.size(), 3u);
    EXPECT_EQ(s.good, good);
    EXPECT_EQ(s.torn, 4096u);
}

TEST(journal, a_last_record_with_a_bad_checksum_is_torn) {
    std::string text = three_records();
    text.back() = 'X';
    const scan s = read(text);
    EXPECT_EQ(s.error, "");
    EXPECT_EQ(s.records.size(), 2u);
}

TEST(journal, a_bad_record_with_good_data_after_it_is_corruption) {
    std::string text = three_records();
    text[header_size + frame_overhead + 2] ^= 0x20;  // inside the first payload
    const scan s = read(text);
    EXPECT_NE(s.error.find("checksum does not match at byte 24"), std::string::npos) << s.error;
    EXPECT_NE(s.error.find("with data after it"), std::string::npos);
}

TEST(journal, an_impossible_length_before_the_end_is_corruption) {
    std::string text = three_records();
    text[header_size + 3] = '\x7f';  // the first record's length, now 2 GiB
    const scan s = read(text);
    EXPECT_NE(s.error.find("impossible length"), std::string::npos) << s.error;
}

TEST(journal, a_foreign_file_is_refused) {
    EXPECT_EQ(
        read("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").error, "not a runbookd journal (no header)"
    );
    EXPECT_EQ(read("hello").error, "not a runbookd journal (no header)");
}

TEST(journal, another_version_is_refused) {
    std::string text = header();
    text[magic.size()] = 2;
    EXPECT_NE(read(text).error.find("journal version 2 is not 1"), std::string::npos);
}

}  // namespace
}  // namespace runbookd::store::journal
