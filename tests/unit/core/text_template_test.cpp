#include "core/text_template.hpp"

#include <gtest/gtest.h>

#include <map>

namespace runbookd {
namespace {

std::string render(std::string_view text, const std::map<std::string, std::string, std::less<>>& values) {
    std::string error;
    auto t = text_template::parse(text, error);
    EXPECT_TRUE(t.has_value()) << error;
    return t->render([&](std::string_view name) -> std::optional<std::string> {
        const auto it = values.find(name);
        return it == values.end() ? std::nullopt : std::optional{it->second};
    });
}

std::string parse_error(std::string_view text) {
    std::string error;
    EXPECT_FALSE(text_template::parse(text, error).has_value()) << text;
    return error;
}

TEST(text_template, fills_placeholders_and_keeps_literal_braces) {
    EXPECT_EQ(
        render(
            "kubectl rollout undo -n {namespace} deploy/{deployment}",
            {{"namespace", "darklang"}, {"deployment", "api"}}
        ),
        "kubectl rollout undo -n darklang deploy/api"
    );
    EXPECT_EQ(render("{{literal}} {x}", {{"x", "1"}}), "{literal} 1");
    EXPECT_EQ(render("unknown {nope}", {}), "unknown ?");
}

TEST(text_template, filters_format_numbers) {
    EXPECT_EQ(render("{v|percent}", {{"v", "0.974"}}), "97%");
    EXPECT_EQ(render("{v|duration}", {{"v", "840"}}), "14m");
    EXPECT_EQ(render("{v|duration}", {{"v", "-7200"}}), "2h 00m");
    EXPECT_EQ(render("expired {v|duration} ago", {{"v", "-7500"}}), "expired 2h 05m ago");
    EXPECT_EQ(render("{v|duration}", {{"v", "777600"}}), "216h 00m");  // 9 days: hence `days`
    EXPECT_EQ(render("in {v|days}", {{"v", "777600"}}), "in 9 days");
    EXPECT_EQ(render("in {v|days}", {{"v", "7.884e+05"}}), "in 9 days");  // as {value} renders it
    EXPECT_EQ(render("in {v|days}", {{"v", "86400"}}), "in 1 day");
    EXPECT_EQ(render("in {v|days}", {{"v", "43200"}}), "in 12h 00m");
    EXPECT_EQ(render("{v|days} ago", {{"v", "-172800"}}), "2 days ago");
    EXPECT_EQ(render("{v|round}", {{"v", "2.6"}}), "3");
    EXPECT_EQ(render("{v|percent}", {{"v", "not a number"}}), "not a number");
}

TEST(text_template, placeholders_are_listed_in_order) {
    std::string error;
    const auto t = text_template::parse("a {x} b {y|round}", error);
    ASSERT_TRUE(t);
    std::vector<std::string> names;
    for (const auto& p : t->parts()) {
        if (p.placeholder) {
            names.push_back(p.text + "|" + p.filter);
        }
    }
    EXPECT_EQ(names, (std::vector<std::string>{"x|", "y|round"}));
}

TEST(text_template, malformed_templates_are_refused_with_a_reason) {
    EXPECT_NE(parse_error("{unclosed").find("unclosed"), std::string::npos);
    EXPECT_NE(parse_error("stray }").find("unmatched"), std::string::npos);
    EXPECT_NE(parse_error("{has space}").find("not a placeholder"), std::string::npos);
    EXPECT_NE(
        parse_error("{x|upper}").find("unknown filter 'upper' (known: percent, duration, days, round)"),
        std::string::npos
    );
    EXPECT_NE(parse_error("{}").find("not a placeholder"), std::string::npos);
}

}  // namespace
}  // namespace runbookd
