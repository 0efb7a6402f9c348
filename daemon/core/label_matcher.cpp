#include "core/label_matcher.hpp"

#include "core/chars.hpp"

#include <algorithm>

namespace runbookd {
namespace {

bool valid_label_name(std::string_view n) {
    if (n.empty() || is_digit(n.front())) {
        return false;
    }
    return std::all_of(n.begin(), n.end(), [](char c) { return is_alnum(c) || c == '_'; });
}

/// A double-quoted value with Go's escapes; nullopt when unterminated or badly escaped.
std::optional<std::string> unquote(std::string_view q) {
    if (q.size() < 2 || q.front() != '"' || q.back() != '"') {
        return std::nullopt;
    }
    q = q.substr(1, q.size() - 2);
    std::string out;
    for (std::size_t i = 0; i < q.size(); ++i) {
        if (q[i] == '"') {
            return std::nullopt;
        }
        if (q[i] != '\\') {
            out += q[i];
            continue;
        }
        if (++i == q.size()) {
            return std::nullopt;
        }
        switch (q[i]) {
            case '\\': out += '\\'; break;
            case '"': out += '"'; break;
            case 'n': out += '\n'; break;
            default: return std::nullopt;
        }
    }
    return out;
}

const std::string& label_value(
    const std::vector<std::pair<std::string, std::string>>& labels, const std::string& name
) {
    static const std::string none;
    for (const auto& [k, v] : labels) {
        if (k == name) {
            return v;
        }
    }
    return none;
}

}  // namespace

matcher_parse parse_label_matcher(std::string_view text) {
    const std::string_view t = trim_blanks(text);
    const auto at = t.find_first_of("=!");
    if (at == std::string_view::npos) {
        return {std::nullopt, "expected name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\""};
    }
    label_matcher m;
    const std::string_view name = trim_blanks(t.substr(0, at));
    if (!valid_label_name(name)) {
        return {std::nullopt, "a label name is letters, digits and '_', not starting with a digit"};
    }
    m.name = std::string{name};
    std::string_view rest = t.substr(at);
    if (rest.starts_with("=~")) {
        m.kind = label_matcher::op::regex;
        rest.remove_prefix(2);
    } else if (rest.starts_with("!~")) {
        m.kind = label_matcher::op::not_regex;
        rest.remove_prefix(2);
    } else if (rest.starts_with("!=")) {
        m.kind = label_matcher::op::not_equal;
        rest.remove_prefix(2);
    } else if (rest.starts_with("=")) {
        m.kind = label_matcher::op::equal;
        rest.remove_prefix(1);
    } else {
        return {std::nullopt, "expected one of the operators =, !=, =~, !~ after the label name"};
    }
    rest = trim_blanks(rest);
    if (rest.starts_with('"')) {
        auto v = unquote(rest);
        if (!v) {
            return {
                std::nullopt, "the quoted value is not closed, or has an escape other than \\\" \\\\ \\n"};
        }
        m.value = std::move(*v);
    } else {
        if (rest.find('"') != std::string_view::npos) {
            return {std::nullopt, "a bare value cannot contain '\"'; quote the whole value"};
        }
        m.value = std::string{rest};
    }
    if (m.kind == label_matcher::op::regex || m.kind == label_matcher::op::not_regex) {
        try {
            m.re = std::make_shared<const std::regex>(m.value, std::regex::ECMAScript | std::regex::optimize);
        } catch (const std::regex_error& e) {
            return {std::nullopt, std::string{"invalid regular expression: "} + e.what()};
        }
    }
    return {std::move(m), {}};
}

bool label_matcher::matches(const std::vector<std::pair<std::string, std::string>>& labels) const {
    const std::string& v = label_value(labels, name);
    switch (kind) {
        case op::equal: return v == value;
        case op::not_equal: return v != value;
        case op::regex: return re && std::regex_match(v, *re);
        case op::not_regex: return re && !std::regex_match(v, *re);
    }
    return false;
}

bool matches_all(
    const std::vector<label_matcher>& matchers, const std::vector<std::pair<std::string, std::string>>& labels
) {
    return !matchers.empty() && std::all_of(matchers.begin(), matchers.end(), [&](const label_matcher& m) {
        return m.matches(labels);
    });
}

}  // namespace runbookd
