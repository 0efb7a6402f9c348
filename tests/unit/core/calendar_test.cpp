#include "core/calendar.hpp"

#include "rules/zones.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

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

/// `from`-`to` local time in `zone` ("" for UTC) on the days, weeks and months given as bits.
local_window window(
    std::chrono::minutes from,
    std::chrono::minutes to,
    const std::string& zone,
    std::initializer_list<std::size_t> days,
    std::initializer_list<std::size_t> weeks,
    std::initializer_list<std::size_t> months = {}
) {
    local_window w;
    w.from = from;
    w.to = to;
    w.zone_name = zone;
    w.zone = zone.empty() ? nullptr : locate_zone(zone);
    for (const auto d : days) {
        w.days.set(d);
    }
    for (const auto wk : weeks) {
        w.weeks.set(wk);
    }
    for (const auto m : months) {
        w.months.set(m);
    }
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

/// The 1st and 2nd Tuesday or Wednesday of Jan, Apr, Jul and Oct, 10:00-13:00 New York.
local_window quarterly() {
    auto w = maintenance();
    w.months.set(0).set(3).set(6).set(9);
    w.weeks.set(0).set(1);
    return w;
}

TEST(calendar, weeks_are_the_nth_occurrence_of_the_weekday_in_the_month) {
    const auto w = quarterly();
    // July 2026 starts on a Wednesday: the 1st Wednesday is the 1st, the 1st Tuesday the 7th.
    EXPECT_TRUE(contains(w, at("2026-07-01T15:00:00Z")));   // Wed 1 Jul 11:00 EDT
    EXPECT_TRUE(contains(w, at("2026-07-07T15:00:00Z")));   // Tue 7 Jul
    EXPECT_TRUE(contains(w, at("2026-07-08T15:00:00Z")));   // Wed 8 Jul
    EXPECT_TRUE(contains(w, at("2026-07-14T15:00:00Z")));   // Tue 14 Jul, the 2nd Tuesday
    EXPECT_FALSE(contains(w, at("2026-07-15T15:00:00Z")));  // Wed 15 Jul, the 3rd Wednesday
    EXPECT_FALSE(contains(w, at("2026-07-21T15:00:00Z")));  // Tue 21 Jul, the 3rd
    // October 2026 starts on a Thursday: the 6th and 13th are its first two Tuesdays.
    EXPECT_TRUE(contains(w, at("2026-10-06T15:00:00Z")));
    EXPECT_TRUE(contains(w, at("2026-10-13T15:00:00Z")));
    EXPECT_FALSE(contains(w, at("2026-10-20T15:00:00Z")));
    // A first Tuesday outside the months: 2 June 2026.
    EXPECT_FALSE(contains(w, at("2026-06-02T15:00:00Z")));
    EXPECT_EQ(describe(w), "1st/2nd Tue/Wed 10:00-13:00 America/New_York in Jan/Apr/Jul/Oct");
}

TEST(calendar, last_is_within_the_final_seven_days_of_the_month) {
    auto w = window(9h, 17h, "", {5}, {last_week});         // the last Friday
    EXPECT_TRUE(contains(w, at("2026-02-27T12:00:00Z")));   // the last Friday of February
    EXPECT_FALSE(contains(w, at("2026-02-20T12:00:00Z")));  // a week earlier: the 20th + 7 is still February
    EXPECT_TRUE(contains(w, at("2026-07-31T12:00:00Z")));   // 31 Jul, the 5th Friday is the last
    EXPECT_EQ(describe(w), "last Fri 09:00-17:00 UTC");
    // The 4th and the last Friday of February 2026 are the same day.
    w.weeks.reset().set(3);
    EXPECT_TRUE(contains(w, at("2026-02-27T12:00:00Z")));
    // A 5th occurrence exists only in some months: March 2026 has five Tuesdays.
    const auto fifth = window(0h, 24h, "", {2}, {4});
    EXPECT_TRUE(contains(fifth, at("2026-03-31T12:00:00Z")));
    EXPECT_FALSE(contains(fifth, at("2026-03-24T12:00:00Z")));
    EXPECT_FALSE(contains(fifth, at("2026-02-24T12:00:00Z")));  // February's last Tuesday is its 4th
}

TEST(calendar, the_week_and_month_are_the_local_days_not_utcs) {
    // Mon 6 Apr 2026 21:00 in New York is already Tuesday the 7th in UTC.
    const auto w = window(20h, 23h, "America/New_York", {1}, {0}, {3});
    EXPECT_TRUE(contains(w, at("2026-04-07T01:00:00Z")));
    // Thu 30 Apr 23:30 UTC is still April in Los Angeles, 1 May 00:30 UTC too.
    const auto la = window(16h, 18h, "America/Los_Angeles", {}, {last_week}, {3});
    EXPECT_TRUE(contains(la, at("2026-04-30T23:30:00Z")));   // Thu 30 Apr 16:30 PDT
    EXPECT_TRUE(contains(la, at("2026-05-01T00:30:00Z")));   // Thu 30 Apr 17:30 PDT
    EXPECT_FALSE(contains(la, at("2026-05-01T01:30:00Z")));  // 18:30 PDT, closed
    EXPECT_EQ(describe(la), "every day of the last week 16:00-18:00 America/Los_Angeles in Apr");
}

TEST(calendar, an_overnight_window_keeps_the_week_and_month_of_the_day_it_opens) {
    const auto w = window(22h, 2h, "", {6}, {last_week}, {0});  // January's last Saturday night
    // Sat 31 Jan 2026 is January's last Saturday: its night runs into Sunday 1 February.
    EXPECT_TRUE(contains(w, at("2026-01-31T23:00:00Z")));
    EXPECT_TRUE(contains(w, at("2026-02-01T01:00:00Z")));
    EXPECT_FALSE(contains(w, at("2026-02-01T02:00:00Z")));
    // Sat 28 Feb is February's last Saturday, and February is not in the window.
    EXPECT_FALSE(contains(w, at("2026-02-28T23:00:00Z")));
    EXPECT_FALSE(contains(w, at("2026-03-01T01:00:00Z")));
    // Sat 24 Jan is not the last; neither is its night.
    EXPECT_FALSE(contains(w, at("2026-01-25T01:00:00Z")));
}

TEST(calendar, an_overnight_window_across_the_dst_change) {
    // Europe/London springs forward at 01:00 GMT on Sunday 29 March 2026, the night after
    // March's last Saturday. The window is local time: 23:00 GMT to 03:00 BST.
    const auto w = window(23h, 3h, "Europe/London", {6}, {last_week});
    EXPECT_TRUE(contains(w, at("2026-03-28T23:30:00Z")));   // Sat 23:30 GMT
    EXPECT_TRUE(contains(w, at("2026-03-29T00:30:00Z")));   // Sun 00:30 GMT
    EXPECT_TRUE(contains(w, at("2026-03-29T01:30:00Z")));   // Sun 02:30 BST
    EXPECT_FALSE(contains(w, at("2026-03-29T02:00:00Z")));  // Sun 03:00 BST: closed, an hour early in UTC
    EXPECT_EQ(to_local(w, at("2026-03-29T01:30:00Z")).text, "Sun 02:30 BST");
    // New York falls back at 02:00 EDT on Sunday 1 November 2026, the 1st Sunday: 01:30
    // happens twice, and both are inside a 1st-Sunday 01:00-02:00 window.
    const auto ny = window(1h, 2h, "America/New_York", {0}, {0}, {10});
    EXPECT_TRUE(contains(ny, at("2026-11-01T05:30:00Z")));   // 01:30 EDT
    EXPECT_TRUE(contains(ny, at("2026-11-01T06:30:00Z")));   // 01:30 EST
    EXPECT_FALSE(contains(ny, at("2026-11-01T07:30:00Z")));  // 02:30 EST
    EXPECT_FALSE(contains(ny, at("2026-11-08T06:30:00Z")));  // the 2nd Sunday
}

}  // namespace
}  // namespace runbookd
