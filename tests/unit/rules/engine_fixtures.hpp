#pragma once
// What the engine tests of #operations share: the service "API" (PAPI, workloads prod/api)
// with the embedded runbook pack, the signals they put in its log, and the #operations
// posts of a decision. Header-only, for tests.
#include "core/engine.hpp"
#include "rules/rules.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace runbookd::engine_fixtures {

using namespace std::chrono_literals;

inline const wall_time t0 = *parse_rfc3339("2026-03-05T16:00:00Z");

/// The service PAPI ("API", prod/api), #status every 30 minutes, the embedded pack.
inline engine_settings api_settings(millis edit_interval = 30s) {
    engine_settings s;
    s.reminder_interval = 30min;
    s.services.emplace("PAPI", service_info{"API", "Requests may fail.", {"prod/api"}});
    s.operations.edit_interval = edit_interval;
    auto r = rules::load({});
    EXPECT_TRUE(r.ok());
    s.rules = r.value;
    return s;
}

inline signal rollout(wall_time at, std::string image = "api:2") {
    signal s;
    s.kind = "k8s.rollout";
    s.at = at;
    s.subject = "api";
    s.source = "kubernetes";
    s.set("namespace", "prod");
    s.set("deployment", "api");
    s.set("image", std::move(image));
    s.set("previous_image", "api:1");
    s.set("image_changed", "true");
    s.set("revision", "7");
    return s;
}

inline signal crashloop(wall_time at, std::string pod) {
    signal s;
    s.kind = "k8s.waiting";
    s.at = at;
    s.subject = pod;
    s.source = "kubernetes";
    s.set("namespace", "prod");
    s.set("deployment", "api");
    s.set("pod", std::move(pod));
    s.set("container", "api");
    s.set("reason", "CrashLoopBackOff");
    return s;
}

/// The #operations posts of `d`, in order.
inline std::vector<const post*> operations(const decisions& d) {
    std::vector<const post*> out;
    for (const auto& p : d.posts) {
        if (p.to == channel::operations) {
            out.push_back(&p);
        }
    }
    return out;
}

}  // namespace runbookd::engine_fixtures
