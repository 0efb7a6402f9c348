#pragma once
// One problem in a configuration, rules, rule-test or scenario file: where and what.

#include <string>

namespace runbookd {

struct problem {
    std::string file;
    int line = 0;         ///< 1-based; 0 when the problem has no position (a missing file)
    int column = 0;       ///< 1-based
    std::string path;     ///< key path, e.g. "discord.request_timeout" or "rules[2].when.any[0].signal"
    std::string message;  ///< never contains a secret's value

    /// "file:line:col: path: message".
    std::string to_string() const;
};

}  // namespace runbookd
