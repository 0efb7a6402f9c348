#include "core/selector.hpp"

#include <algorithm>
#include <cctype>

namespace runbookd {

std::optional<label_selector> parse_selector(std::string_view text) {
    label_selector out;
    const auto valid = [](std::string_view s, bool key) {
        return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [key](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' ||
                   (key && c == '/');
        });
    };
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string_view part = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        label_requirement r;
        std::size_t op = part.find("!=");
        std::size_t op_len = 2;
        r.equal = op == std::string_view::npos;
        if (r.equal) {
            op = part.find("==");
            if (op == std::string_view::npos) {
                op = part.find('=');
                op_len = 1;
            }
        }
        if (op == std::string_view::npos || !valid(part.substr(0, op), true) ||
            !valid(part.substr(op + op_len), false) || (comma != std::string_view::npos && text.empty())) {
            return std::nullopt;
        }
        r.key = std::string{part.substr(0, op)};
        r.value = std::string{part.substr(op + op_len)};
        out.push_back(std::move(r));
    }
    if (out.empty()) {
        return std::nullopt;
    }
    return out;
}

bool selects(const label_selector& selector, const std::vector<std::pair<std::string, std::string>>& labels) {
    return std::all_of(selector.begin(), selector.end(), [&](const label_requirement& r) {
        const auto it =
            std::find_if(labels.begin(), labels.end(), [&](const auto& l) { return l.first == r.key; });
        const bool equal = it != labels.end() && it->second == r.value;
        return equal == r.equal;
    });
}

}  // namespace runbookd
