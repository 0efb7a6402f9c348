#include "core/calendar.hpp"

#include "rules/zones.hpp"

#include <gtest/gtest.h>

namespace runbookd {
namespace {

using namespace std::chrono_literals;

/// Tue/Wed 10:00-13:00 America/New_York: the runbook's maintenance window.
local_window maintenance() {
    local_window w;
    w.days.set(2).set(3);
    w.from = 10h;
    w.to = 13h;
    w.zone_name = "America/New_York";
    w.zone = locate_zone(w.zone_name);
    return w;
}

wall_time at(const char* text) {
    return *parse_rfc3339(text);
}

TEST(calendar, the_zone_database_is_there) {
    ASSERT_NE(locate_zone("America/New_York"), nullptr);
    EXPECT_EQ(locate_zone("Mars/Olympus_Mons"), nullptr);
}

TEST(calendar, winter_tuesday_eleven_new_york_is_sixteen_utc) {
    const auto w = maintenance();
    EXPECT_TRUE(contains(w, at("2026-03-03T16:00:00Z")));   // Tue 11:00 EST
    EXPECT_FALSE(contains(w, at("2026-03-03T14:59:59Z")));  // Tue 09:59 EST
    EXPECT_TRUE(contains(w, at("2026-03-03T15:00:00Z")));   // Tue 10:00 EST: opens
    EXPECT_FALSE(contains(w, at("2026-03-03T18:00:00Z")));  // Tue 13:00 EST: closed
    EXPECT_FALSE(contains(w, at("2026-03-05T16:00:00Z")));  // Thu
    EXPECT_EQ(to_local(w, at("2026-03-03T16:05:00Z")).text, "Tue 11:05 EST");
}

TEST(calendar, summer_time_moves_the_window_an_hour_earlier_in_utc) {
    const auto w = maintenance();
    EXPECT_TRUE(contains(w, at("2026-07-07T15:00:00Z")));   // Tue 11:00 EDT
    EXPECT_FALSE(contains(w, at("2026-07-07T17:30:00Z")));  // Tue 13:30 EDT
    // The week DST starts (Sunday 2026-03-08): Tuesday 10:30 EDT is 14:30 UTC.
    EXPECT_TRUE(contains(w, at("2026-03-10T14:30:00Z")));
    EXPECT_FALSE(contains(w, at("2026-03-03T14:30:00Z")));  // a week earlier that was 09:30 EST
    EXPECT_EQ(to_local(w, at("2026-07-07T15:00:00Z")).text, "Tue 11:00 EDT");
}

TEST(calendar, overnight_windows_belong_to_the_day_they_open) {
    local_window w;
    w.days.set(5);  // Friday
    w.from = 22h;
    w.to = 2h;
    EXPECT_TRUE(contains(w, at("2026-03-06T23:00:00Z")));   // Fri 23:00 UTC
    EXPECT_TRUE(contains(w, at("2026-03-07T01:00:00Z")));   // Sat 01:00, still Friday's window
    EXPECT_FALSE(contains(w, at("2026-03-07T23:00:00Z")));  // Sat 23:00
    EXPECT_FALSE(contains(w, at("2026-03-06T01:00:00Z")));  // Fri 01:00 is Thursday's night
}

TEST(calendar, months_limit_the_window) {
    auto w = maintenance();
    w.months.set(0).set(3).set(6).set(9);  // quarterly: Jan, Apr, Jul, Oct
    EXPECT_TRUE(contains(w, at("2026-07-07T15:00:00Z")));
    EXPECT_FALSE(contains(w, at("2026-03-03T16:00:00Z")));
    EXPECT_EQ(describe(w), "Tue/Wed 10:00-13:00 America/New_York in Jan/Apr/Jul/Oct");
}

}  // namespace
}  // namespace runbookd
