#pragma once
// Drives an engine the way the daemon's wake-up timer does, for core tests.

#include "core/engine.hpp"

#include <vector>

namespace runbookd::test {

/// Ticks exactly at each wake-up until `until`; returns every post made meanwhile.
inline std::vector<post> run_until(engine& e, wall_time until) {
    std::vector<post> posts;
    while (auto wake = e.next_wake()) {
        if (*wake > until) {
            break;
        }
        auto d = e.on_tick(*wake);
        posts.insert(posts.end(), d.posts.begin(), d.posts.end());
    }
    return posts;
}

}  // namespace runbookd::test
