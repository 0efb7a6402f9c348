#include "core/suggest.hpp"

#include "core/problem.hpp"

#include <algorithm>
#include <vector>

namespace runbookd {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Keys are short; the quadratic table is fine.
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    std::vector<std::size_t> d((n + 1) * (m + 1));
    const auto at = [m](std::size_t i, std::size_t j) { return i * (m + 1) + j; };
    for (std::size_t i = 0; i <= n; ++i) {
        d[at(i, 0)] = i;
    }
    for (std::size_t j = 0; j <= m; ++j) {
        d[at(0, j)] = j;
    }
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[at(i, j)] = std::min({d[at(i - 1, j)] + 1, d[at(i, j - 1)] + 1, d[at(i - 1, j - 1)] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[at(i, j)] = std::min(d[at(i, j)], d[at(i - 2, j - 2)] + 1);
            }
        }
    }
    return d[at(n, m)];
}

std::string suggestion(std::string_view word, std::span<const std::string_view> candidates) {
    std::size_t best = 3;
    std::string_view best_word;
    for (const auto c : candidates) {
        const auto dist = edit_distance(word, c);
        if (dist < best) {
            best = dist;
            best_word = c;
        }
    }
    if (best_word.empty() && word.size() >= 3) {
        for (const auto c : candidates) {
            if (word.starts_with(c) || c.starts_with(word)) {
                best_word = c;
                break;
            }
        }
    }
    if (best_word.empty()) {
        return {};
    }
    return "; did you mean '" + std::string{best_word} + "'?";
}

std::string problem::to_string() const {
    std::string out = file;
    if (line > 0) {
        out += ':' + std::to_string(line) + ':' + std::to_string(column);
    }
    out += ": ";
    if (!path.empty()) {
        out += path + ": ";
    }
    out += message;
    return out;
}

}  // namespace runbookd
