#pragma once
// `services:`, read by one reader for the configuration, scenarios and rule tests alike,
// so a scenario accepts exactly what check-config accepts.

#include "core/engine.hpp"
#include "yaml/section.hpp"

#include <map>
#include <string>

namespace runbookd::yaml {

/// `services: {PF9KMXH: {name: Editor, impact: ..., kubernetes: [ns/deploy], postgres: {...}}}`:
/// `services` is the map under that key. Every problem goes to the section's document with its position.
std::map<std::string, service_info, std::less<>> read_services(const section& services);

/// "namespace/deployment", either side "*" or ending in "*"; or "namespace/selector", an
/// equality-based label selector of the deployments' pods ("app=web,tier!=batch").
bool valid_workload(std::string_view w);

/// An application_name or user pattern of `services.<id>.postgres`: not empty, "*" alone
/// or at the end ("editor-*"), matched as core/rank.hpp's workload_glob.
bool valid_session_pattern(std::string_view p);

/// "owner/repo" or "owner/repo@environment": a `services.<id>.github` entry.
bool valid_github_route(std::string_view r);

}  // namespace runbookd::yaml
