#pragma once
// What the webhook intakes' unit tests share: their recorded payloads and their secrets.

#include "core/secret.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace runbookd::intake::test_support {

/// The recorded payload tests/data/<vendor>/<name> (tests run from the repository root).
inline std::string fixture(const std::string& vendor, const std::string& name) {
    std::ifstream in{"tests/data/" + vendor + "/" + name};
    EXPECT_TRUE(in) << vendor << "/" << name;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// Signing secrets, as a config would hold them.
inline std::vector<secret<std::string>> secrets(std::initializer_list<const char*> values) {
    std::vector<secret<std::string>> out;
    for (const auto* v : values) {
        out.emplace_back(v);
    }
    return out;
}

}  // namespace runbookd::intake::test_support
