#pragma once
// Readers shared by rule tests and scenarios: signals at offsets, source health, services.
// Private to runbookd::rules.

#include "core/engine.hpp"
#include "core/signal.hpp"
#include "core/source_health.hpp"
#include "yaml/walker.hpp"

#include <map>
#include <optional>
#include <string>

namespace runbookd::rules::inputs {

/// A signal at an offset from the incident's start. Labels the kind carries but the file
/// leaves out are set to "", as a real source would.
std::optional<signal> read_signal(yaml::walker& w, const yaml::entry& e, wall_time start);

/// `sources: {kubernetes: healthy, postgres: "failing: connection refused"}`. Without the
/// key, every source in the catalogue is healthy.
std::optional<source_map> read_sources(yaml::walker& w, const yaml::entry* e, wall_time start);

/// `services: {PF9KMXH: {name: Editor, impact: ..., kubernetes: [ns/deploy]}}`.
std::optional<std::map<std::string, service_info, std::less<>>> read_services(
    yaml::walker& w, const yaml::entry& e
);

/// Rule files named relative to the file that names them; none: the embedded pack.
std::optional<std::vector<std::string>> read_rule_files(yaml::walker& w, const yaml::entry* e);

}  // namespace runbookd::rules::inputs
