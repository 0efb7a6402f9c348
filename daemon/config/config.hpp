#pragma once
// The daemon's typed configuration, loaded from one YAML file.
// The reference for every key is docs/configuration.md; keep the two in sync.

#include "config/secret.hpp"
#include "core/engine.hpp"
#include "core/error.hpp"
#include "core/problem.hpp"

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

/// `server:`: the webhook listener. `listen: "host:port"` fills address and port.
struct server_config {
    std::string address = "0.0.0.0";
    std::uint16_t port = 8080;
    std::size_t max_body_bytes = 1024 * 1024;
    milliseconds header_timeout = std::chrono::seconds{10};
    milliseconds body_timeout = std::chrono::seconds{30};
    milliseconds idle_timeout = std::chrono::seconds{60};
    std::size_t max_connections = 512;

    friend bool operator==(const server_config&, const server_config&) = default;
};

/// `log.level`.
enum class log_level { debug, info, warn, error };

/// `log:`.
struct log_config {
    log_level level = log_level::info;
};

/// `pagerduty:`: webhook authentication and redelivery suppression.
struct pagerduty_config {
    /// `webhook_secrets` then the lines of `webhook_secrets_file`; never empty once loaded.
    std::vector<secret<std::string>> webhook_secrets;
    std::size_t dedupe_capacity = 10000;
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

    friend bool operator==(const notify_config&, const notify_config&) = default;
};

/// A Discord execute-webhook target: id and token parsed from the URL Discord shows.
struct discord_webhook {
    std::string id;
    secret<std::string> token;
    bool configured() const noexcept { return !id.empty(); }

    friend bool operator==(const discord_webhook&, const discord_webhook&) = default;
};

/// `discord:`. `status` is configured whenever notify.kind is discord.
struct discord_config {
    /// scheme://host[:port][/path] without a trailing slash; http only for a loopback host.
    std::string base_url = "https://discord.com/api/v10";
    std::string ca_file;  ///< empty: the system trust store
    std::string username = "runbookd";
    milliseconds request_timeout = std::chrono::seconds{10};
    discord_webhook status;
    discord_webhook operations;

    friend bool operator==(const discord_config&, const discord_config&) = default;
};

/// `console:`: the dry-run notifier.
struct console_config {
    std::string path = "-";  ///< "-" is stdout

    friend bool operator==(const console_config&, const console_config&) = default;
};

/// `rules:`: the rule pack. No files means the embedded runbook pack (rules/runbook.yaml).
struct rules_config {
    std::vector<std::string> files;  ///< read relative to the working directory, in order

    friend bool operator==(const rules_config&, const rules_config&) = default;
};

/// `operations:`: how #operations is kept current.
struct operations_config {
    milliseconds edit_interval = std::chrono::seconds{30};
    double dominance_share = 0.6;
    std::size_t max_suspects = 3;
};

/// `signals:`: the signal log's bounds.
struct signals_config {
    milliseconds retention = std::chrono::hours{12};
    std::size_t max_signals = 200000;
};

/// `kubernetes:`: the cluster source (docs/configuration.md).
struct kubernetes_config {
    enum class mode { automatic, on, off };
    /// automatic: in-cluster when KUBERNETES_SERVICE_HOST is set, else the kubeconfig if
    /// one is named, else no source. on: one of them must work (a start-up error if not).
    mode enabled = mode::automatic;
    std::string kubeconfig;  ///< out-of-cluster access; "" = in-cluster only
    std::string context;     ///< the kubeconfig context; "" = its current-context
    /// Watched namespaces; empty: those named in services.*.kubernetes, else the service
    /// account's (or the context's) namespace. ["*"]: every namespace.
    std::vector<std::string> namespaces;
    bool nodes = true;  ///< watch Nodes for upgrades (needs the ClusterRole in deploy/)
    milliseconds version_interval = std::chrono::minutes{1};
    milliseconds watch_timeout = std::chrono::minutes{5};
    milliseconds request_timeout = std::chrono::seconds{30};
    std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";

    friend bool operator==(const kubernetes_config&, const kubernetes_config&) = default;
};

/// `google:`: access to Google Cloud APIs, shared by `cloudsql` and `gcp_status`.
struct google_config {
    enum class credential_kind { automatic, metadata, key_file };
    /// automatic: the key file when one is named, else the metadata server.
    credential_kind credentials = credential_kind::automatic;
    std::string key_file;          ///< a service-account key (JSON); read at start
    secret<std::string> key_json;  ///< its contents
    std::string project;           ///< default: the key file's project_id
    std::string metadata_url = "http://169.254.169.254";
    std::string token_url;  ///< default: the key file's token_uri
    std::string monitoring_url = "https://monitoring.googleapis.com";
    std::string sqladmin_url = "https://sqladmin.googleapis.com";
    std::string ca_file;  ///< empty: the system trust store
    milliseconds request_timeout = std::chrono::seconds{10};
    friend bool operator==(const google_config&, const google_config&) = default;
};

/// `cloudsql:`: Cloud Monitoring metrics and the Cloud SQL Admin instance. Off while
/// `instance` is empty.
struct cloudsql_config {
    std::string instance;  ///< the instance ID, without the project
    milliseconds monitoring_interval = std::chrono::minutes{1};
    milliseconds instance_interval = std::chrono::minutes{5};
    milliseconds lookback = std::chrono::minutes{15};
    friend bool operator==(const cloudsql_config&, const cloudsql_config&) = default;
};

/// `gcp_status:`: the public Google Cloud status feed.
struct gcp_status_config {
    bool enabled = false;
    std::string url = "https://status.cloud.google.com/incidents.json";
    milliseconds interval = std::chrono::minutes{5};
    std::vector<std::string> products{
        "Cloud SQL",
        "Google Kubernetes Engine",
        "Cloud Load Balancing",
        "Cloud Pub/Sub",
        "Google Compute Engine"};
    std::vector<std::string> locations;  ///< empty: every location
    friend bool operator==(const gcp_status_config&, const gcp_status_config&) = default;
};

/// `postgres:`: the read-only monitoring connection. Off while no dsn is given.
struct postgres_config {
    secret<std::string> dsn;  ///< libpq keyword/value string or postgresql:// URI (may hold a password)
    std::string instance;     ///< label of db.connections / db.unreachable; default: cloudsql.instance or
                              ///< "dbname on host"
    milliseconds interval = std::chrono::seconds{15};
    milliseconds connect_timeout = std::chrono::seconds{5};
    milliseconds statement_timeout = std::chrono::seconds{5};
    milliseconds long_query_threshold = std::chrono::minutes{1};
    milliseconds migration_threshold = std::chrono::seconds{10};
    milliseconds idle_in_transaction_threshold = std::chrono::minutes{1};
    milliseconds lock_wait_threshold = std::chrono::seconds{5};
    std::size_t query_max = 300;
    bool redact_literals = true;
    std::vector<std::string> redact_patterns;  ///< ECMAScript regular expressions
    std::vector<std::string> exclude_applications{"pg_dump", "pg_dumpall", "pg_basebackup", "runbookd"};
    std::vector<std::string> exclude_users{
        "cloudsqladmin", "cloudsqlagent", "cloudsqlreplica", "cloudsqlimportexport"};
    bool configured() const noexcept { return !dsn.empty(); }
    friend bool operator==(const postgres_config&, const postgres_config&) = default;
};

/// Everything `runbookd run` needs. Built only by load(); always valid once built.
struct config {
    std::string source_path;  ///< the file it came from, for logs and reload
    std::string hash;         ///< hex SHA-256 of the file text, exported as a metric
    server_config server;
    log_config log;
    pagerduty_config pagerduty;
    status_config status;
    notify_config notify;
    discord_config discord;
    console_config console;
    rules_config rules;
    operations_config operations;
    signals_config signals;
    kubernetes_config kubernetes;
    google_config google;
    cloudsql_config cloudsql;
    gcp_status_config gcp_status;
    postgres_config postgres;
    std::map<std::string, service_info, std::less<>> services;

    /// The engine's view of this configuration. The rule pack and whether #operations has
    /// a destination are the caller's to set (app/).
    engine_settings engine() const;
};

/// One problem in a configuration file (core/problem.hpp).
using problem = runbookd::problem;

/// Every problem found, or the config.
struct load_result {
    std::optional<config> value;
    std::vector<problem> problems;
    bool ok() const noexcept { return value.has_value(); }
};

/// Function used to read ${VAR}; the default reads the process environment.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

/// Parses and validates YAML text. `file` names it in problems; `*_file` paths are
/// read relative to the working directory. Never throws for bad input: every problem
/// found is returned, sorted by position, and no message contains a secret's value.
/// Reads files (`*_file`, `ca_file`), so call it off the loop thread or at start-up.
load_result parse(std::string_view yaml_text, std::string_view file, const env_lookup& env = {});

/// Reads and parses a file; sets config::source_path. An unreadable file is one problem
/// with line 0.
load_result load(const std::string& path, const env_lookup& env = {});

}  // namespace runbookd::config
