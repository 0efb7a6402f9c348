#pragma once
// The daemon's typed configuration, loaded from one YAML file.
// The reference for every key is docs/configuration.md; keep the two in sync.

#include "cluster/config.hpp"
#include "core/engine.hpp"
#include "core/error.hpp"
#include "core/problem.hpp"
#include "intake/alertmanager/config.hpp"
#include "intake/deploys/config.hpp"
#include "intake/pagerduty/config.hpp"
#include "notify/console/config.hpp"
#include "notify/discord/config.hpp"
#include "rules/tuning.hpp"
#include "sources/certs/config.hpp"
#include "sources/cloudsql/config.hpp"
#include "sources/gcp_status/config.hpp"
#include "sources/google/config.hpp"
#include "sources/kubernetes/config.hpp"
#include "sources/pagerduty_api/config.hpp"
#include "sources/postgres/config.hpp"
#include "sources/probes/config.hpp"
#include "sources/promql/config.hpp"
#include "store/config.hpp"
#include "yaml/section.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::config {

using std::chrono::milliseconds;

/// A numeric address and a port (0: any free port), as `host:port` reads.
struct listen_address {
    std::string address;
    std::uint16_t port = 0;

    friend bool operator==(const listen_address&, const listen_address&) = default;
};

/// `server:`: the webhook listener. `listen: "host:port"` fills address and port.
struct server_config {
    std::string address = "0.0.0.0";
    std::uint16_t port = 8080;
    std::size_t max_body_bytes = 1024 * 1024;
    milliseconds header_timeout = std::chrono::seconds{10};
    milliseconds body_timeout = std::chrono::seconds{30};
    milliseconds idle_timeout = std::chrono::seconds{60};
    std::size_t max_connections = 512;
    std::size_t max_connections_per_client = 64;
    /// `admin_listen`: a second listener serving only /healthz, /readyz and /metrics, with
    /// connection limits of its own; unset, there is none.
    std::optional<listen_address> admin;

    friend bool operator==(const server_config&, const server_config&) = default;
};

/// `log.level`.
enum class log_level { debug, info, warn, error };

/// `log:`.
struct log_config {
    log_level level = log_level::info;
};

/// `status:`: the #status channel's schedule and wording.
struct status_config {
    milliseconds reminder_interval = std::chrono::minutes{30};
    std::string default_impact = "Some users may see errors or slowness.";
};

/// `notify.kind`.
enum class notifier_kind { discord, console };

/// `notify:`: the outbox, shared by every notifier.
struct notify_config {
    notifier_kind kind = notifier_kind::discord;
    milliseconds drain_timeout = std::chrono::seconds{10};
    milliseconds coalesce_window = std::chrono::seconds{2};
    /// Posts queued per channel; past it the oldest reminder goes first (docs/configuration.md).
    std::size_t max_queued_posts = 1000;

    friend bool operator==(const notify_config&, const notify_config&) = default;
};

/// `rules:`: the rule pack. No files means the embedded runbook pack (rules/runbook.yaml).
struct rules_config {
    std::vector<std::string> files;  ///< read relative to the working directory, in order
    /// `rules.overrides:` and the root's `calendars:`, applied each time the pack loads
    /// (rules::load(files, tuning)).
    rules::tuning tuning;

    friend bool operator==(const rules_config&, const rules_config&) = default;
};

/// `operations:`: how #operations is kept current.
struct operations_config {
    milliseconds edit_interval = std::chrono::seconds{30};
    /// How long the first summary of an incident waits for the sources to look again (0: off).
    milliseconds gather_deadline = std::chrono::seconds{3};
    double dominance_share = 0.6;
    double min_share = 0.3;  ///< a top suspect below it is not named ("no likely cause yet")
    std::size_t max_suspects = 3;
};

/// `signals:`: the signal log's bounds.
struct signals_config {
    milliseconds retention = std::chrono::hours{12};
    std::size_t max_signals = 200000;
};

/// `limits:`: bounds under an alert storm (docs/configuration.md#limits).
struct limits_config {
    std::size_t max_open_incidents = 5000;
    std::size_t storm_threshold = 10;  ///< 0: only max_open_incidents starts a storm
    milliseconds storm_window = std::chrono::minutes{5};
    milliseconds storm_edit_interval = std::chrono::seconds{10};

    friend bool operator==(const limits_config&, const limits_config&) = default;
};

/// Everything `runbookd run` needs. Built only by load(); always valid once built.
struct config {
    std::string source_path;  ///< the file it came from, for logs and reload
    std::string hash;         ///< hex SHA-256 of the file text, exported as a metric
    server_config server;
    log_config log;
    status_config status;
    notify_config notify;
    rules_config rules;
    operations_config operations;
    signals_config signals;
    limits_config limits;
    std::map<std::string, service_info, std::less<>> services;

    // Each integration's own section (its folder's config.hpp), listed in each_section().
    intake::pagerduty::config pagerduty;
    sources::pagerduty_api::config pagerduty_api;
    intake::deploys::config deploys;
    intake::alertmanager::config alertmanager;
    notify::discord::config discord;
    notify::console::config console;
    sources::kubernetes::config kubernetes;
    cluster::config leader_election;
    sources::google::config google;
    sources::cloudsql::config cloudsql;
    sources::gcp_status::config gcp_status;
    sources::postgres::config postgres;
    sources::certs::config certs;
    sources::probes::config probes;
    sources::promql::config promql;
    store::config store;

    /// The engine's view of this configuration. The rule pack and whether #operations has
    /// a destination are the caller's to set (app/).
    engine_settings engine() const;
};

/// Every integration section, in docs/configuration.md's order, as (key, member pointer).
/// The loader reads each one with its folder's `read(section&, T&)`; reload compares each
/// one. Adding an integration's section is one line here.
template <class F>
void each_section(F&& f) {
    f("pagerduty", &config::pagerduty);
    f("pagerduty_api", &config::pagerduty_api);
    f("deploys", &config::deploys);
    f("alertmanager", &config::alertmanager);
    f("discord", &config::discord);
    f("console", &config::console);
    f("kubernetes", &config::kubernetes);
    f("leader_election", &config::leader_election);
    f("google", &config::google);
    f("cloudsql", &config::cloudsql);
    f("gcp_status", &config::gcp_status);
    f("postgres", &config::postgres);
    f("certs", &config::certs);
    f("probes", &config::probes);
    f("promql", &config::promql);
    f("store", &config::store);
}

/// One problem in a configuration file (core/problem.hpp).
using problem = runbookd::problem;

/// Every problem found, or the config.
struct load_result {
    std::optional<config> value;
    std::vector<problem> problems;
    bool ok() const noexcept { return value.has_value(); }
};

/// Function used to read ${VAR}; the default reads the process environment.
using env_lookup = yaml::env_lookup;

/// Parses and validates YAML text. `file` names it in problems; `*_file` paths are
/// read relative to the working directory. Never throws for bad input: every problem
/// found is returned, sorted by position, and no message contains a secret's value.
/// Reads files (`*_file`, `ca_file`), so call it off the loop thread or at start-up.
load_result parse(std::string_view yaml_text, std::string_view file, const env_lookup& env = {});

/// Reads and parses a file; sets config::source_path. An unreadable file is one problem
/// with line 0.
load_result load(const std::string& path, const env_lookup& env = {});

}  // namespace runbookd::config
