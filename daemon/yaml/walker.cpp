#include "yaml/walker.hpp"

#include "core/suggest.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace runbookd::yaml {
const char* kind_of(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map: return "a map";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Scalar: return "a string";
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined: break;
    }
    return "an empty value";
}

bool is_null(const YAML::Node& n) {
    return !n.IsDefined() || n.IsNull();
}

namespace {

/// Where to report a problem with `e`: its value, or its key when the value is empty
/// (yaml-cpp places an empty value at the next token, often on the next line).
YAML::Mark mark_of(const entry& e) {
    if (is_null(e.value) && e.key.IsDefined()) {
        return e.key.Mark();
    }
    return e.value.IsDefined() ? e.value.Mark() : YAML::Mark::null_mark();
}

}  // namespace

std::string item_path(const std::string& path, std::size_t i) {
    return path + "[" + std::to_string(i) + "]";
}

const entry* find(const entries& es, std::string_view name) {
    const auto it = std::find_if(es.begin(), es.end(), [&](const entry& e) { return e.name == name; });
    return it == es.end() ? nullptr : &*it;
}

void walker::report(const YAML::Mark& at, std::string path, std::string message) {
    problems_.push_back(problem{
        file_,
        at.is_null() ? 1 : at.line + 1,
        at.is_null() ? 1 : at.column + 1,
        std::move(path),
        std::move(message)});
}

void walker::report(const entry& at, std::string message) {
    report(mark_of(at), at.path, std::move(message));
}

std::optional<YAML::Node> walker::document(std::string_view text) {
    try {
        auto docs = YAML::LoadAll(std::string{text});
        if (docs.size() > 1) {
            report(docs[1].Mark(), "", "only one YAML document is allowed");
            return std::nullopt;
        }
        return docs.empty() ? YAML::Node{} : docs.front();
    } catch (const YAML::Exception& e) {
        report(e.mark, "", "YAML syntax error: " + e.msg);
        return std::nullopt;
    }
}

std::optional<entries> walker::map(
    const YAML::Node& node, const std::string& path, std::span<const std::string_view> known
) {
    entries out;
    if (is_null(node)) {
        return out;
    }
    if (!node.IsMap()) {
        report(node.Mark(), path, std::string{"expected a map, got "} + kind_of(node));
        return std::nullopt;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
        const YAML::Node key = it->first;
        if (!key.IsScalar()) {
            report(key.Mark(), path, std::string{"a key must be a string, got "} + kind_of(key));
            continue;
        }
        const std::string& name = key.Scalar();
        const std::string key_path = path.empty() ? name : path + "." + name;
        if (find(out, name) != nullptr) {
            report(key.Mark(), key_path, "duplicate key '" + name + "'");
            continue;
        }
        if (!known.empty() && std::find(known.begin(), known.end(), name) == known.end()) {
            report(key.Mark(), key_path, "unknown key '" + name + "'" + suggestion(name, known));
            continue;
        }
        out.push_back(entry{name, key, it->second, key_path});
    }
    return out;
}

std::optional<entries> walker::list(const entry& e) {
    entries out;
    if (is_null(e.value)) {
        return out;
    }
    if (!e.value.IsSequence()) {
        report(e, std::string{"expected a list, got "} + kind_of(e.value));
        return std::nullopt;
    }
    for (std::size_t i = 0; i < e.value.size(); ++i) {
        out.push_back(entry{std::to_string(i), YAML::Node{}, e.value[i], item_path(e.path, i)});
    }
    return out;
}

std::optional<std::string> walker::string(const entry& e, bool non_empty) {
    if (!e.value.IsScalar()) {
        report(e, std::string{"expected a string, got "} + kind_of(e.value));
        return std::nullopt;
    }
    if (non_empty && e.value.Scalar().empty()) {
        report(e, "must not be empty");
        return std::nullopt;
    }
    return e.value.Scalar();
}

std::vector<std::string> walker::strings(const entry& e) {
    std::vector<std::string> out;
    if (auto items = list(e)) {
        for (const auto& i : *items) {
            if (auto v = string(i)) {
                out.push_back(*v);
            }
        }
    }
    return out;
}

std::optional<double> walker::number(const entry& e, double min, double max) {
    auto text = string(e);
    if (!text) {
        return std::nullopt;
    }
    double v = 0;
    const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc{} || ptr != text->data() + text->size() || !std::isfinite(v)) {
        report(e, "'" + *text + "' is not a number");
        return std::nullopt;
    }
    if (v < min || v > max) {
        report(
            e, "must be from " + std::to_string(min).substr(0, 4) + " to " + std::to_string(max).substr(0, 4)
        );
        return std::nullopt;
    }
    return v;
}

std::optional<std::size_t> walker::count(const entry& e, std::size_t min) {
    auto text = string(e);
    if (!text) {
        return std::nullopt;
    }
    std::size_t v = 0;
    const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc{} || ptr != text->data() + text->size()) {
        report(e, "'" + *text + "' is not a whole number");
        return std::nullopt;
    }
    if (v < min) {
        report(e, "must be at least " + std::to_string(min));
        return std::nullopt;
    }
    return v;
}

std::optional<millis> walker::duration(const entry& e, bool signed_ok) {
    auto text = string(e);
    if (!text) {
        return std::nullopt;
    }
    std::string_view t = *text;
    const bool negative = signed_ok && t.starts_with('-');
    if (negative) {
        t.remove_prefix(1);
    }
    if (signed_ok && (t == "0" || t.empty())) {
        return millis{0};
    }
    const auto d = parse_duration(t);
    if (!d) {
        report(
            e,
            "'" + *text + "' is not a duration (e.g. 90s, 30m, 1h30m" + (signed_ok ? "; -5m before" : "") +
                ")"
        );
        return std::nullopt;
    }
    return negative ? -*d : *d;
}

std::optional<wall_time> walker::instant(const entry& e) {
    auto text = string(e);
    if (!text) {
        return std::nullopt;
    }
    auto t = parse_rfc3339(*text);
    if (!t) {
        report(e, "'" + *text + "' is not an RFC 3339 time (e.g. 2026-03-03T16:00:00Z)");
    }
    return t;
}

std::vector<problem> walker::take() {
    std::stable_sort(problems_.begin(), problems_.end(), [](const problem& a, const problem& b) {
        return std::pair{a.line, a.column} < std::pair{b.line, b.column};
    });
    return std::move(problems_);
}

}  // namespace runbookd::yaml
