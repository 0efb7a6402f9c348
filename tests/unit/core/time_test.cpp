#include "core/time.hpp"

#include <gtest/gtest.h>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

TEST(time, parses_durations) {
    EXPECT_EQ(parse_duration("30m"), millis{30min});
    EXPECT_EQ(parse_duration("90s"), millis{90s});
    EXPECT_EQ(parse_duration("1h30m"), millis{90min});
    EXPECT_EQ(parse_duration("250ms"), millis{250});
    EXPECT_EQ(parse_duration("2d"), millis{48h});
    EXPECT_FALSE(parse_duration(""));
    EXPECT_FALSE(parse_duration("30"));
    EXPECT_FALSE(parse_duration("m"));
    EXPECT_FALSE(parse_duration("-5s"));
    EXPECT_FALSE(parse_duration("5 s"));
    EXPECT_FALSE(parse_duration("99999999999999h"));
}

TEST(time, formats_durations_round_trip) {
    for (auto d : {millis{30min}, millis{90min}, millis{250}, millis{1h + 1s + 1ms}}) {
        EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
    }
}

TEST(time, parses_rfc3339) {
    const auto t = parse_rfc3339("2020-10-02T18:45:22.169Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(format_rfc3339(*t), "2020-10-02T18:45:22.169Z");
    EXPECT_EQ(format_rfc3339_seconds(*t), "2020-10-02T18:45:22Z") << "dropped, not rounded";
    EXPECT_EQ(parse_rfc3339("2020-04-09T17:16:27+02:00"), parse_rfc3339("2020-04-09T15:16:27Z"));
    EXPECT_FALSE(parse_rfc3339("yesterday"));
    EXPECT_FALSE(parse_rfc3339("2020-04-09T15:16:27Zjunk"));
}

TEST(time, human_duration_reads_naturally) {
    EXPECT_EQ(human_duration(45s), "45s");
    EXPECT_EQ(human_duration(12min), "12m");
    EXPECT_EQ(human_duration(65min), "1h 05m");
}

TEST(time, human_days_counts_whole_days_and_falls_back_under_one) {
    EXPECT_EQ(human_days(24h * 9), "9 days");
    EXPECT_EQ(human_days(24h * 10 - 1s), "9 days");  // rounded down: never sooner than said
    EXPECT_EQ(human_days(24h), "1 day");
    EXPECT_EQ(human_days(-24h * 3), "3 days");
    EXPECT_EQ(human_days(20h), "20h 00m");
    EXPECT_EQ(human_days(24h - 1s), "23h 59m");
}

}  // namespace
}  // namespace runbookd

namespace runbookd {
namespace {

TEST(time, rfc3339_edge_cases) {
    EXPECT_EQ(parse_rfc3339("2020-10-02T18:45:22Z"), parse_rfc3339("2020-10-02T18:45:22.000Z"));
    EXPECT_EQ(parse_rfc3339("2020-10-02T18:45:22.5Z"), parse_rfc3339("2020-10-02T18:45:22.500Z"));
    EXPECT_EQ(parse_rfc3339("2020-10-02T18:45:22.123456Z"), parse_rfc3339("2020-10-02T18:45:22.123Z"));
    EXPECT_EQ(parse_rfc3339("2020-10-02T13:45:22-05:00"), parse_rfc3339("2020-10-02T18:45:22Z"));
    EXPECT_EQ(parse_rfc3339("2020-10-02t18:45:22z"), parse_rfc3339("2020-10-02T18:45:22Z"));
    for (const char* bad :
         {"",
          "2020-10-02",
          "2020-13-02T18:45:22Z",
          "2020-02-30T18:45:22Z",
          "2020-10-02T24:00:00Z",
          "2020-10-02T18:45:22",
          "2020-10-02T18:45:22.Z",
          "2020-10-02T18:45:22+5:00",
          "2020-10-02 18:45:22Z",
          "20201002T184522Z"}) {
        EXPECT_FALSE(parse_rfc3339(bad)) << bad;
    }
}

}  // namespace
}  // namespace runbookd
