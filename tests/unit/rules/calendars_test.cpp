// A pack's named calendars, weeks of the month, and leaf names (docs/rules.md).

#include "rules/rules.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>

namespace runbookd::rules {
namespace {

using namespace std::chrono_literals;

const std::string pack = R"yaml(calendars:
  maintenance:
    days: [tue, wed]
    weeks: [1, 2, last]
    months: [jan, apr, jul, oct]
    from: "10:00"
    to: "13:00"
    tz: America/New_York
rules:
  - id: db-maintenance
    title: Maintenance
    when:
      any:
        - signal: db.cpu
          name: cpu
          value: {above: 0.9}
        - calendar: maintenance
          name: window
          strength: 0.2
warnings:
  - id: quiet
    when:
      calendar: maintenance
    text: "inside the maintenance window"
)yaml";

TEST(named_calendars, a_leaf_names_a_calendar_of_its_file) {
    const auto r = parse(pack, "pack.yaml");
    ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
    const auto& any = r.value->rules.at(0).when;
    ASSERT_EQ(any.children.size(), 2u);
    EXPECT_EQ(any.children[0].signal.name, "cpu");
    const auto& cal = any.children[1].calendar;
    EXPECT_EQ(cal.name, "window");
    EXPECT_EQ(cal.window.name, "maintenance");
    EXPECT_TRUE(cal.window.days.test(2));
    EXPECT_TRUE(cal.window.days.test(3));
    EXPECT_TRUE(cal.window.weeks.test(0));
    EXPECT_TRUE(cal.window.weeks.test(1));
    EXPECT_FALSE(cal.window.weeks.test(2));
    EXPECT_TRUE(cal.window.weeks.test(last_week));
    EXPECT_EQ(cal.window.months.count(), 4u);
    EXPECT_EQ(cal.window.from, 10h);
    EXPECT_EQ(cal.window.to, 13h);
    EXPECT_NE(cal.window.zone, nullptr);
    EXPECT_DOUBLE_EQ(cal.strength, 0.2);
    // The warning names the same calendar.
    EXPECT_EQ(r.value->warnings.at(0).when.calendar.window.name, "maintenance");
    EXPECT_EQ(describe(cal.window), "1st/2nd/last Tue/Wed 10:00-13:00 America/New_York in Jan/Apr/Jul/Oct");
}

TEST(named_calendars, the_embedded_pack_names_its_maintenance_window) {
    const auto r = load({});
    ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
    bool found = false;
    for (const auto& rule : r.value->rules) {
        for (const auto& c : rule.when.children) {
            if (c.what == condition::op::calendar && c.calendar.window.name == "maintenance") {
                found = rule.id == "db-maintenance";
            }
        }
    }
    EXPECT_TRUE(found);
}

struct bad_pack {
    std::string name;
    std::string yaml;
    int line;
    int column;
    std::string path;
    std::string message;       ///< the whole message of the problem at `path`
    std::size_t problems = 1;  ///< how many the file has in all
};

void PrintTo(const bad_pack& c, std::ostream* os) {
    *os << c.name;
}

class bad_named_calendars : public ::testing::TestWithParam<bad_pack> {};

TEST_P(bad_named_calendars, are_refused_with_position_path_and_reason) {
    const auto& c = GetParam();
    const auto r = parse(c.yaml, "pack.yaml");
    ASSERT_FALSE(r.ok());
    std::string all;
    for (const auto& p : r.problems) {
        all += "\n  " + p.to_string();
    }
    ASSERT_EQ(r.problems.size(), c.problems) << all;
    const auto at = std::find_if(r.problems.begin(), r.problems.end(), [&](const problem& p) {
        return p.path == c.path;
    });
    ASSERT_NE(at, r.problems.end()) << all;
    const auto& p = *at;
    EXPECT_EQ(p.line, c.line) << p.to_string();
    EXPECT_EQ(p.column, c.column) << p.to_string();
    EXPECT_EQ(p.path, c.path) << p.to_string();
    EXPECT_EQ(p.message, c.message) << p.to_string();
}

const std::string one_rule = R"yaml(rules:
  - id: m
    title: M
    when:
      calendar: maintenance
)yaml";

INSTANTIATE_TEST_SUITE_P(
    packs,
    bad_named_calendars,
    ::testing::Values(
        bad_pack{
            "unknown_name",
            "calendars:\n  maintenance: {days: [tue], tz: UTC}\n" + one_rule.substr(0, one_rule.size() - 12) +
                "maintenanse\n",
            7,
            17,
            "rules[0].when.calendar",
            "'maintenanse' is not one of this file's calendars; did you mean 'maintenance'?"},
        bad_pack{
            "no_calendars",
            one_rule,
            5,
            17,
            "rules[0].when.calendar",
            "'maintenance' is not one of this file's calendars (it has none: define it under calendars:)"},
        bad_pack{
            "unused",
            "calendars:\n  maintenance: {days: [tue], tz: UTC}\n  freeze: {days: [fri], tz: UTC}\n" +
                one_rule,
            3,
            3,
            "calendars.freeze",
            "calendar 'freeze' is not used by any calendar leaf"},
        bad_pack{
            "week_out_of_range",
            "calendars:\n  maintenance: {weeks: [1, 6], tz: UTC}\n" + one_rule,
            2,
            28,
            "calendars.maintenance.weeks[1]",
            "'6' is not a week of the month (1 to 5: the nth such weekday; or last)"},
        bad_pack{
            "named_without_zone",
            "calendars:\n  maintenance: {days: [tue]}\n" + one_rule,
            2,
            3,
            "calendars.maintenance.tz",
            "required: the zone the window is in, e.g. America/New_York"},
        bad_pack{
            "bad_calendar_name",
            "calendars:\n  Maintenance: {days: [tue], tz: UTC}\n" + one_rule,
            2,
            3,
            "calendars.Maintenance",
            "'Maintenance' is not a calendar name (lower-case letters, digits, '-' and '_')",
            2},  // and the leaf's 'maintenance' is not one: did you mean 'Maintenance'?
        bad_pack{
            "duplicate_leaf_name",
            R"yaml(rules:
  - id: db
    title: DB
    when:
      any:
        - {signal: db.cpu, name: cpu, value: {above: 0.9}}
        - {signal: db.memory, name: cpu, value: {above: 0.9}}
)yaml",
            7,
            37,
            "rules[0].when.any[1].name",
            "another leaf of this rule is named 'cpu'"},
        bad_pack{
            "leaf_name_not_an_id",
            "rules:\n  - id: db\n    title: DB\n    when: {signal: db.cpu, name: CPU.high}\n",
            4,
            34,
            "rules[0].when.name",
            "'CPU.high' is not a leaf name (lower-case letters, digits, '-' and '_')"}
    ),
    [](const ::testing::TestParamInfo<bad_pack>& param_info) { return param_info.param.name; }
);

TEST(leaf_names, may_repeat_across_rules) {
    const auto r = parse(
        R"yaml(rules:
  - {id: a, title: A, when: {signal: db.cpu, name: cpu}}
  - {id: b, title: B, when: {signal: db.cpu, name: cpu}}
)yaml",
        "pack.yaml"
    );
    ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
    EXPECT_EQ(r.value->rules[1].when.signal.name, "cpu");
}

}  // namespace
}  // namespace runbookd::rules
