#include "config/config.hpp"

#include "yaml/section.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

// Tests run with the repository root as the working directory (see tests/CMakeLists.txt),
// so fixtures and the *_file paths inside them are relative to it.

namespace runbookd::config {
namespace {

using namespace std::chrono_literals;

const std::string fixtures = "tests/data/config/";

/// A fake environment: tests never call setenv, so they can run in parallel.
env_lookup env_of(std::map<std::string, std::string, std::less<>> vars) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        if (const auto it = vars.find(name); it != vars.end()) {
            return it->second;
        }
        return std::nullopt;
    };
}

/// Every variable any fixture uses, except the ones that must be unset.
env_lookup fixture_env() {
    return env_of({
        {"LISTEN_ADDR", "127.0.0.1"},
        {"LISTEN_PORT", "9000"},
        {"MAX_BODY", "2048"},
        {"HEADER_TIMEOUT", "3s"},
        {"PD_SECRET_OLD", "old-secret"},
        {"PD_SECRET_NEW", "new-secret"},
        {"SERVICE_NAME", "Editor"},
        {"MAX_BODY_BAD", "12k"},
        {"LEAKY_SECRET", "hunter2-LEAKY-VALUE"},
    });
}

/// Every secret value written into a fixture (inline, in a secret file, or in fixture_env()).
/// None may ever appear in a problem.
const std::vector<std::string> fixture_secrets{
    "s3cret",
    "hunter2-LEAKY-VALUE",
    "INLINE-LEAK-TOKEN",
    "INLINE-SECRET-TOKEN-4242",
    "TOKEN-ID-CASE-5150",
    "FILE-SECRET-TOKEN-7781",
    "status-TOKEN_1",
    "old-secret",
    "new-secret",
    "FIXTURE-KEY-NOT-A-REAL-KEY-9931",
    "MIIEvQIBADANBgkqhkiG9w0B",  // a line of secrets/google_key.json's private key
    "FILE-DSN-PASSWORD-3141",
    "URL-PASSWORD-6021",
    "QUERY-TOKEN-8462",
    "PROBE-PASSWORD-5150",
    "PATH-TOKEN-9317abcdef",
    "ABCDEF1234567890abcdef1234",
    "ONE-TOKEN-1",
    "TWO-TOKEN-2",
};

std::string dump(const std::vector<problem>& problems) {
    std::ostringstream out;
    for (const auto& p : problems) {
        out << "\n  " << p.to_string();
    }
    return out.str();
}

load_result load_fixture(const std::string& name) {
    return load(fixtures + name, fixture_env());
}

// --- files that load -------------------------------------------------------------------------

TEST(config_good, example_yaml_loads_with_its_variables_set) {
    const auto r = load(
        "config/example.yaml",
        env_of(
            {{"PAGERDUTY_WEBHOOK_SECRET", "pd-secret"},
             {"DISCORD_STATUS_WEBHOOK_URL", "https://discord.com/api/webhooks/1234567890/status-token"},
             {"DISCORD_OPERATIONS_WEBHOOK_URL", "https://discord.com/api/webhooks/987654321/ops-token"}}
        )
    );
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const config& c = *r.value;
    EXPECT_EQ(c.source_path, "config/example.yaml");
    EXPECT_EQ(c.hash.size(), 64u);
    EXPECT_EQ(c.server.address, "0.0.0.0");
    EXPECT_EQ(c.server.port, 8080);
    EXPECT_EQ(c.server.max_body_bytes, 1048576u);
    EXPECT_EQ(c.server.header_timeout, 10s);
    EXPECT_EQ(c.server.max_connections, 512u);
    EXPECT_EQ(c.log.level, log_level::info);
    ASSERT_EQ(c.pagerduty.webhook_secrets.size(), 1u);
    EXPECT_EQ(c.pagerduty.webhook_secrets[0].reveal(), "pd-secret");
    EXPECT_EQ(c.pagerduty.dedupe_capacity, 10000u);
    EXPECT_EQ(c.status.reminder_interval, 30min);
    EXPECT_EQ(c.notify.kind, notifier_kind::discord);
    EXPECT_EQ(c.notify.coalesce_window, 2s);
    EXPECT_EQ(c.discord.base_url, "") << "deprecated: each webhook URL names its host";
    EXPECT_EQ(c.discord.status.root, "https://discord.com/api/v10");
    EXPECT_EQ(c.discord.ca_file, "");
    EXPECT_EQ(c.discord.status.id, "1234567890");
    EXPECT_EQ(c.discord.status.token.reveal(), "status-token");
    EXPECT_EQ(c.discord.operations.id, "987654321");
    EXPECT_EQ(c.console.path, "-");
    ASSERT_EQ(c.services.size(), 2u);
    EXPECT_EQ(c.services.at("PSRV2AB").name, "Custom domains");
}

TEST(config_good, example_yaml_without_its_variables_names_each_one) {
    const auto r = load("config/example.yaml", env_of({}));
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.problems.size(), 3u) << dump(r.problems);
    EXPECT_EQ(r.problems[0].message, "environment variable 'PAGERDUTY_WEBHOOK_SECRET' is not set");
    EXPECT_EQ(r.problems[1].message, "environment variable 'DISCORD_STATUS_WEBHOOK_URL' is not set");
    EXPECT_EQ(r.problems[2].message, "environment variable 'DISCORD_OPERATIONS_WEBHOOK_URL' is not set");
}

TEST(config_good, demo_yaml_loads) {
    const auto r = load(
        "config/demo.yaml", env_of({{"RUNBOOKD_DEMO_SECRET", "demo"}, {"RUNBOOKD_DEMO_PROBE_PORT", "8081"}})
    );
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const config& c = *r.value;
    EXPECT_EQ(c.server.address, "127.0.0.1");
    EXPECT_EQ(c.server.port, 0);
    EXPECT_EQ(c.notify.kind, notifier_kind::console);
    EXPECT_EQ(c.notify.coalesce_window, 200ms);
    EXPECT_EQ(c.status.reminder_interval, 5s);
    EXPECT_FALSE(c.discord.status.configured());
}

TEST(config_good, minimal_file_keeps_every_default) {
    const auto r = load_fixture("good_minimal.yaml");
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const config& c = *r.value;
    const config defaults;
    EXPECT_EQ(c.server.address, defaults.server.address);
    EXPECT_EQ(c.server.port, defaults.server.port);
    EXPECT_EQ(c.server.max_body_bytes, defaults.server.max_body_bytes);
    EXPECT_EQ(c.server.idle_timeout, defaults.server.idle_timeout);
    EXPECT_EQ(c.log.level, log_level::info);
    EXPECT_EQ(c.status.reminder_interval, 30min);
    EXPECT_EQ(c.status.default_impact, defaults.status.default_impact);
    EXPECT_EQ(c.discord.base_url, defaults.discord.base_url);
    EXPECT_EQ(c.discord.username, "runbookd");
    EXPECT_TRUE(c.services.empty());
    EXPECT_EQ(c.kubernetes, defaults.kubernetes);
    EXPECT_EQ(c.kubernetes.enabled, sources::kubernetes::config::mode::automatic);
    // The polling sources are off until named: no cloud access without credentials.
    EXPECT_EQ(c.google, defaults.google);
    EXPECT_TRUE(c.cloudsql.instance.empty());
    EXPECT_FALSE(c.gcp_status.enabled);
    EXPECT_FALSE(c.postgres.configured());
}

TEST(config_good, an_admin_listener_and_the_intake_limits) {
    const auto r = load_fixture("good_admin_listen.yaml");
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const config& c = *r.value;
    ASSERT_TRUE(c.server.admin.has_value());
    EXPECT_EQ(c.server.admin->address, "0.0.0.0");
    EXPECT_EQ(c.server.admin->port, 9090);
    EXPECT_EQ(c.server.max_connections, 256u);
    EXPECT_EQ(c.server.max_connections_per_client, 16u);
    EXPECT_EQ(c.pagerduty.max_age, 30min);
    // Unset, there is no admin listener, 64 connections a client and an hour of age.
    const config defaults;
    EXPECT_FALSE(defaults.server.admin.has_value());
    EXPECT_EQ(defaults.server.max_connections_per_client, 64u);
    EXPECT_EQ(defaults.pagerduty.max_age, 1h);
}

TEST(config_good, full_file_sets_every_key) {
    const auto r = load_fixture("good_full.yaml");
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const config& c = *r.value;
    EXPECT_EQ(c.server.address, "::1");
    EXPECT_EQ(c.server.port, 9443);
    EXPECT_EQ(c.server.max_body_bytes, 65536u);
    EXPECT_EQ(c.server.header_timeout, 5s);
    EXPECT_EQ(c.server.body_timeout, 15s);
    EXPECT_EQ(c.server.idle_timeout, 2min);
    EXPECT_EQ(c.server.max_connections, 64u);
    EXPECT_EQ(c.log.level, log_level::debug);
    EXPECT_EQ(c.pagerduty.webhook_secrets.size(), 2u);
    EXPECT_EQ(c.pagerduty.dedupe_capacity, 500u);
    EXPECT_EQ(c.status.reminder_interval, 90min);
    EXPECT_EQ(c.status.default_impact, "Things may be slow.");
    EXPECT_EQ(c.notify.kind, notifier_kind::discord);
    EXPECT_EQ(c.notify.drain_timeout, 5s);
    EXPECT_EQ(c.notify.coalesce_window, 0s);
    EXPECT_EQ(c.discord.base_url, "http://127.0.0.1:8443/api/v10");  // trailing slash stripped
    EXPECT_EQ(c.discord.ca_file, "tests/data/config/secrets/ca.pem");
    EXPECT_EQ(c.discord.username, "incident-bot");
    EXPECT_EQ(c.discord.request_timeout, 3s);
    EXPECT_EQ(c.discord.status.id, "123456789012345678");
    EXPECT_EQ(c.discord.status.token.reveal(), "AbC-d_E9");
    EXPECT_EQ(c.discord.operations.id, "42");
    EXPECT_EQ(c.discord.operations.token.reveal(), "tok");
    EXPECT_EQ(c.console.path, "/var/log/runbookd/posts.log");
    EXPECT_EQ(c.kubernetes.enabled, sources::kubernetes::config::mode::off);
    EXPECT_EQ(c.kubernetes.kubeconfig, "tests/data/config/secrets/ca.pem");
    EXPECT_EQ(c.kubernetes.context, "gke_acme_us-east1_prod");
    EXPECT_EQ(c.kubernetes.namespaces, std::vector<std::string>{"*"});
    EXPECT_FALSE(c.kubernetes.nodes);
    EXPECT_EQ(c.kubernetes.version_interval, 2min);
    EXPECT_EQ(c.kubernetes.watch_timeout, 7min);
    EXPECT_EQ(c.kubernetes.request_timeout, 9s);
    EXPECT_EQ(c.kubernetes.service_account_dir, "/run/sa");
    EXPECT_EQ(c.google.credentials, sources::google::config::credential_kind::key_file);
    EXPECT_EQ(c.google.key_file, "tests/data/config/secrets/google_key.json");
    EXPECT_NE(c.google.key_json.reveal().find("BEGIN PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(c.google.project, "acme-other") << "google.project wins over the key file's";
    EXPECT_EQ(c.google.metadata_url, "http://metadata.google.internal");
    EXPECT_EQ(c.google.token_url, "https://127.0.0.1:9444/token");
    EXPECT_EQ(c.google.monitoring_url, "https://127.0.0.1:9444");
    EXPECT_EQ(c.google.sqladmin_url, "https://127.0.0.1:9445");
    EXPECT_EQ(c.google.ca_file, "tests/data/config/secrets/ca.pem");
    EXPECT_EQ(c.google.request_timeout, 4s);
    EXPECT_EQ(c.cloudsql.instance, "dark-west");
    EXPECT_EQ(c.cloudsql.monitoring_interval, 30s);
    EXPECT_EQ(c.cloudsql.instance_interval, 2min);
    EXPECT_EQ(c.cloudsql.lookback, 20min);
    EXPECT_TRUE(c.gcp_status.enabled);
    EXPECT_EQ(c.gcp_status.url, "https://127.0.0.1:9446/incidents.json");
    EXPECT_EQ(c.gcp_status.interval, 3min);
    EXPECT_EQ(c.gcp_status.products, std::vector<std::string>{"Cloud SQL"});
    EXPECT_EQ(c.gcp_status.locations, (std::vector<std::string>{"us-central1", "global"}));
    EXPECT_TRUE(c.postgres.configured());
    EXPECT_NE(c.postgres.dsn.reveal().find("FILE-DSN-PASSWORD-3141"), std::string::npos);
    EXPECT_EQ(c.postgres.instance, "dark-west-primary");
    EXPECT_EQ(c.postgres.interval, 20s);
    EXPECT_EQ(c.postgres.connect_timeout, 3s);
    EXPECT_EQ(c.postgres.statement_timeout, 2s);
    EXPECT_EQ(c.postgres.long_query_threshold, 2min);
    EXPECT_EQ(c.postgres.migration_threshold, 0s);
    EXPECT_EQ(c.postgres.idle_in_transaction_threshold, 90s);
    EXPECT_EQ(c.postgres.lock_wait_threshold, 15s);
    EXPECT_EQ(c.postgres.query_max, 120u);
    EXPECT_FALSE(c.postgres.redact_literals);
    EXPECT_EQ(c.postgres.redact_patterns, std::vector<std::string>{"[0-9a-f]{8}-[0-9a-f-]{27}"});
    EXPECT_EQ(c.postgres.exclude_applications, std::vector<std::string>{"pg_dump"});
    EXPECT_TRUE(c.postgres.exclude_users.empty());
    ASSERT_EQ(c.services.size(), 2u);
    EXPECT_EQ(c.services.at("PF9KMXH").name, "Editor");
    EXPECT_EQ(c.services.at("PF9KMXH").impact, "");
    EXPECT_EQ(
        c.services.at("PF9KMXH").workloads,
        (std::vector<std::string>{"darklang/bwdserver-deployment", "darklang/app=bwd,tier!=batch", "cron-*/*"}
        )
    );
    EXPECT_EQ(c.services.at("PSRV2AB").name, "Custom domains");
}

TEST(config_good, engine_settings_come_from_status_and_services) {
    const auto r = load_fixture("good_full.yaml");
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const engine_settings s = r.value->engine();
    EXPECT_EQ(s.reminder_interval, 90min);
    EXPECT_EQ(s.default_impact, "Things may be slow.");
    EXPECT_EQ(s.services.size(), 2u);
    EXPECT_EQ(s.services.at("PSRV2AB").name, "Custom domains");
    EXPECT_EQ(s.resolved_retention, engine_settings{}.resolved_retention);
}

TEST(config_good, hash_is_the_sha256_of_the_text) {
    const std::string text = "pagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\n";
    const auto r = parse(text, "inline.yaml", env_of({}));
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    EXPECT_EQ(r.value->hash, "c6e7975fc566ec10bdd18b9c721d5f35ae2fa93ec24a0324142a382577a3643a");
    EXPECT_EQ(r.value->source_path, "");  // only load() knows the path
}

// --- ${VAR} and *_file -----------------------------------------------------------------------

TEST(config_env, variables_are_substituted_before_types_are_parsed) {
    const auto r = load_fixture("good_env.yaml");
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const config& c = *r.value;
    EXPECT_EQ(c.server.address, "127.0.0.1");
    EXPECT_EQ(c.server.port, 9000);
    EXPECT_EQ(c.server.max_body_bytes, 2048u);
    EXPECT_EQ(c.server.header_timeout, 3s);
    ASSERT_EQ(c.pagerduty.webhook_secrets.size(), 2u);
    EXPECT_EQ(c.pagerduty.webhook_secrets[0].reveal(), "old-secret");
    EXPECT_EQ(c.pagerduty.webhook_secrets[1].reveal(), "new-secret");
    EXPECT_EQ(c.status.default_impact, "Costs $5 and shows ${NOT_A_VAR} verbatim.");
    EXPECT_EQ(c.services.at("PF9KMXH").name, "Editor");
}

TEST(config_env, the_lookup_is_only_asked_for_referenced_names) {
    std::vector<std::string> asked;
    const env_lookup spy = [&asked](std::string_view name) -> std::optional<std::string> {
        asked.emplace_back(name);
        return "x";
    };
    const auto r = parse(
        "pagerduty:\n  webhook_secrets: [\"${A}-${B}\"]\nnotify:\n  kind: console\n", "inline.yaml", spy
    );
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    EXPECT_EQ(asked, (std::vector<std::string>{"A", "B"}));
    EXPECT_EQ(r.value->pagerduty.webhook_secrets[0].reveal(), "x-x");
}

TEST(config_env, the_default_lookup_reads_the_process_environment) {
    // PATH is set in every environment the tests run in; nothing here calls setenv.
    const auto r =
        parse("pagerduty:\n  webhook_secrets: [\"${PATH}\"]\nnotify:\n  kind: console\n", "inline.yaml");
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    EXPECT_FALSE(r.value->pagerduty.webhook_secrets[0].empty());
}

TEST(config_env, an_invalid_variable_name_is_an_error) {
    const auto r = parse(
        "pagerduty:\n  webhook_secrets: [\"${1X}\"]\nnotify:\n  kind: console\n", "inline.yaml", env_of({})
    );
    ASSERT_EQ(r.problems.size(), 1u) << dump(r.problems);
    EXPECT_EQ(r.problems[0].path, "pagerduty.webhook_secrets[0]");
    EXPECT_EQ(
        r.problems[0].message,
        "invalid environment variable name in '${...}' (letters, digits and '_', not "
        "starting with a digit)"
    );
}

TEST(config_files, secrets_come_from_files_and_combine_with_inline_ones) {
    const auto r = load_fixture("good_secret_files.yaml");
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const config& c = *r.value;
    std::vector<std::string> secrets;
    for (const auto& s : c.pagerduty.webhook_secrets) {
        secrets.push_back(s.reveal());
    }
    // Inline first, then one per non-empty line of the file, whitespace trimmed.
    EXPECT_EQ(secrets, (std::vector<std::string>{"inline-secret", "first-secret", "second-secret"}));
    EXPECT_EQ(c.discord.status.id, "111");
    EXPECT_EQ(c.discord.status.token.reveal(), "status-TOKEN_1");
    EXPECT_EQ(c.discord.operations.id, "222");
    EXPECT_EQ(c.discord.operations.token.reveal(), "ops-TOKEN_2");
}

// --- one fixture per validation rule ---------------------------------------------------------

struct bad_case {
    std::string file;
    int line;
    int column;
    std::string path;
    std::string message;

    friend std::ostream& operator<<(std::ostream& os, const bad_case& c) { return os << c.file; }
};

class config_bad : public ::testing::TestWithParam<bad_case> {};

TEST_P(config_bad, reports_one_problem_at_the_offending_node) {
    const bad_case& c = GetParam();
    const auto r = load_fixture(c.file);
    EXPECT_FALSE(r.ok());
    ASSERT_EQ(r.problems.size(), 1u) << dump(r.problems);
    const problem& p = r.problems[0];
    EXPECT_EQ(p.file, fixtures + c.file);
    EXPECT_EQ(p.line, c.line);
    EXPECT_EQ(p.column, c.column);
    EXPECT_EQ(p.path, c.path);
    EXPECT_EQ(p.message, c.message);
}

const std::string webhook_hint =
    " (expected https://discord.com/api/webhooks/<id>/<token>, or "
    "https://HOST[:PORT][/PATH]/webhooks/<id>/<token>)";

INSTANTIATE_TEST_SUITE_P(
    rules,
    config_bad,
    ::testing::Values(
        bad_case{"bad_syntax.yaml", 4, 1, "", "YAML syntax error: end of sequence flow not found"},
        bad_case{"bad_unknown_key.yaml", 3, 3, "server.listn", "unknown key 'listn'; did you mean 'listen'?"},
        bad_case{"bad_unknown_key_far.yaml", 6, 1, "tracing", "unknown key 'tracing'"},
        bad_case{"bad_duplicate_key.yaml", 6, 3, "notify.kind", "duplicate key 'kind'"},
        bad_case{"bad_type_map.yaml", 8, 5, "console.path", "expected a string, got a map"},
        bad_case{"bad_type_section.yaml", 2, 6, "log", "expected a map, got a string"},
        bad_case{
            "bad_empty_value.yaml", 3, 3, "server.header_timeout", "expected a duration, got an empty value"},
        bad_case{"bad_not_integer.yaml", 3, 19, "server.max_body_bytes", "'1.5' is not a whole number"},
        bad_case{"bad_negative.yaml", 3, 20, "server.max_connections", "must not be negative"},
        bad_case{"bad_zero_count.yaml", 4, 20, "pagerduty.dedupe_capacity", "must be at least 1"},
        bad_case{
            "bad_deploys_no_secret.yaml",
            6,
            1,
            "deploys",
            "at least one secret is required (github_secrets, github_secrets_file, generic_secrets or "
            "generic_secrets_file)"},
        bad_case{
            "bad_service_github.yaml",
            9,
            14,
            "services.PF9KMXH.github[0]",
            "'acme' is not owner/repo or owner/repo@environment (letters, digits, '-', '_', '.')"},
        bad_case{
            "bad_duration.yaml",
            3,
            19,
            "server.header_timeout",
            "'10 seconds' is not a duration (e.g. 250ms, 90s, 30m, 1h30m; at most 366d)"},
        bad_case{"bad_zero_timeout.yaml", 7, 20, "discord.request_timeout", "must be greater than 0"},
        bad_case{"bad_reminder_interval.yaml", 5, 22, "status.reminder_interval", "must be at least 1s"},
        bad_case{
            "bad_log_level.yaml",
            3,
            10,
            "log.level",
            "'warning' is not one of debug, info, warn, error; did you mean 'warn'?"},
        bad_case{"bad_notify_kind.yaml", 5, 9, "notify.kind", "'slack' is not one of discord, console"},
        bad_case{
            "bad_service_selector.yaml",
            9,
            18,
            "services.PF9KMXH.kubernetes[0]",
            "'darklang/app=bwd,tier=' is not namespace/deployment or namespace/label=value (lower-case "
            "names; "
            "'*' alone or at the end of either part)"},
        bad_case{
            "bad_postgres_sslmode.yaml",
            7,
            8,
            "postgres.dsn",
            "sslmode=require does not verify the server; use sslmode=verify-full (with sslrootcert) for a "
            "remote host, or connect through the Cloud SQL Auth Proxy on 127.0.0.1"},
        bad_case{
            "bad_postgres_dsn.yaml",
            7,
            8,
            "postgres.dsn",
            "not a libpq connection string (keyword=value pairs, or a postgresql:// URI)"},
        bad_case{
            "bad_postgres_redact.yaml",
            8,
            27,
            "postgres.redact_patterns[1]",
            "not a regular expression: Mismatched '(' and ')' in regular expression"},
        bad_case{
            "bad_google_metadata_url.yaml",
            8,
            17,
            "google.metadata_url",
            "'http://10.0.0.7': plain http is allowed only for the metadata server (169.254.169.254, "
            "metadata.google.internal) or a loopback host"},
        bad_case{
            "bad_cloudsql_no_project.yaml",
            6,
            1,
            "google.project",
            "required for cloudsql (or a key_file whose project_id names it)"},
        bad_case{
            "bad_google_key.yaml",
            7,
            13,
            "google.key_file",
            "'tests/data/config/secrets/google_key_unreadable.json': its private_key cannot sign: the "
            "private key "
            "is not a readable PEM key"},
        bad_case{
            "bad_google_token_uri.yaml",
            7,
            13,
            "google.key_file",
            "'tests/data/config/secrets/google_key_http_token_uri.json': its token_uri: plain http is "
            "allowed "
            "only for a loopback host (127.0.0.1, [::1] or localhost); use https"},
        bad_case{
            "bad_cloudsql_lookback.yaml",
            11,
            13,
            "cloudsql.lookback",
            "must be at least monitoring_interval + 3m (8m): Cloud SQL data arrives up to 3 minutes late"},
        bad_case{
            "bad_gcp_status_products.yaml",
            8,
            13,
            "gcp_status.products",
            "must name at least one product (\"Cloud SQL\", as the feed titles it)"},
        bad_case{
            "bad_cloudsql_instance.yaml",
            9,
            13,
            "cloudsql.instance",
            "the instance ID alone (dark-west), without the project"},
        bad_case{
            "bad_kubernetes_namespace.yaml",
            7,
            26,
            "kubernetes.namespaces[1]",
            "'Prod_2' is not a namespace name (lower-case letters, digits, '-')"},
        bad_case{
            "bad_kubernetes_enabled.yaml",
            7,
            12,
            "kubernetes.enabled",
            "'yes' is not one of auto, true, false"},
        bad_case{
            "bad_listen_hostname.yaml",
            3,
            11,
            "server.listen",
            "'localhost:8080': the address must be a numeric IPv4 or IPv6 address; host names "
            "are not resolved (use e.g. 0.0.0.0 or 127.0.0.1)"},
        bad_case{
            "bad_listen_port.yaml",
            3,
            11,
            "server.listen",
            "'0.0.0.0:70000': the port must be a number from 0 to 65535"},
        bad_case{
            "bad_listen_ipv6.yaml",
            3,
            11,
            "server.listen",
            "'::1:8080': an IPv6 address must be in brackets, e.g. [::1]:8080"},
        bad_case{
            "bad_unset_env.yaml",
            4,
            7,
            "pagerduty.webhook_secrets[0]",
            "environment variable 'PD_SECRET_UNSET' is not set"},
        bad_case{
            "bad_env_unterminated.yaml",
            5,
            19,
            "status.default_impact",
            "'${' without a closing '}' (write '$${' for a literal '${')"},
        bad_case{
            "bad_env_number.yaml",
            3,
            19,
            "server.max_body_bytes",
            "the value substituted into '${MAX_BODY_BAD}' is not a whole number"},
        bad_case{
            "bad_webhook_url.yaml",
            5,
            23,
            "discord.status_webhook_url",
            "not a Discord webhook URL: the scheme must be https" + webhook_hint},
        bad_case{
            "bad_webhook_id.yaml",
            5,
            23,
            "discord.status_webhook_url",
            "not a Discord webhook URL: the webhook id must be all digits" + webhook_hint},
        bad_case{
            "bad_webhook_file_content.yaml",
            7,
            32,
            "discord.operations_webhook_url_file",
            "'tests/data/config/secrets/discord_bad_url.txt' does not hold a Discord webhook "
            "URL: the path must end in /webhooks/<id>/<token>" +
                webhook_hint},
        bad_case{
            "bad_webhook_both.yaml",
            6,
            3,
            "discord.status_webhook_url_file",
            "set either status_webhook_url or status_webhook_url_file, not both"},
        bad_case{
            "bad_webhook_missing.yaml",
            6,
            1,
            "discord.status_webhook_url",
            "required when notify.kind is discord (set status_webhook_url or "
            "status_webhook_url_file)"},
        bad_case{
            "bad_webhook_file_unreadable.yaml",
            5,
            28,
            "discord.status_webhook_url_file",
            "cannot read 'tests/data/config/secrets/missing.txt': No such file or directory"},
        bad_case{
            "bad_base_url_http.yaml",
            7,
            13,
            "discord.base_url",
            "'http://discord.example.com/api': plain http is allowed only for a loopback host "
            "(127.0.0.1, [::1] or localhost); use https"},
        bad_case{
            "bad_base_url_shape.yaml",
            7,
            13,
            "discord.base_url",
            "'discord.com/api/v10': expected http(s)://host[:port][/path]"},
        bad_case{
            "bad_ca_file.yaml",
            7,
            12,
            "discord.ca_file",
            "cannot read CA file 'tests/data/config/secrets/missing-ca.pem': No such file or "
            "directory"},
        bad_case{
            "bad_secrets_file_unreadable.yaml",
            3,
            25,
            "pagerduty.webhook_secrets_file",
            "cannot read 'tests/data/config/secrets/missing.txt': No such file or directory"},
        bad_case{
            "bad_secrets_file_blank.yaml",
            3,
            25,
            "pagerduty.webhook_secrets_file",
            "'tests/data/config/secrets/blank.txt' holds no secret (one per line)"},
        bad_case{
            "bad_no_secret.yaml",
            3,
            3,
            "pagerduty.webhook_secrets",
            "at least one webhook signing secret is required (webhook_secrets or "
            "webhook_secrets_file)"},
        bad_case{"bad_empty_secret.yaml", 3, 31, "pagerduty.webhook_secrets[1]", "the secret is empty"},
        bad_case{
            "bad_secrets_not_list.yaml",
            3,
            20,
            "pagerduty.webhook_secrets",
            "expected a list of strings, got a string"},
        bad_case{
            "bad_service_name.yaml",
            7,
            3,
            "services.PF9KMXH.name",
            "required: the service's name as users see it"},
        bad_case{
            "bad_service_id.yaml",
            7,
            3,
            "services.editor service",
            "'editor service' is not a PagerDuty service id (letters and digits, e.g. PF9KMXH)"},
        bad_case{
            "bad_admin_listen.yaml",
            4,
            17,
            "server.admin_listen",
            "'127.0.0.1:8080': must be another port than server.listen's"},
        bad_case{"bad_multi_document.yaml", 7, 1, "", "only one YAML document is allowed"}
    ),
    [](const ::testing::TestParamInfo<bad_case>& param) {
        return param.param.file.substr(0, param.param.file.find('.'));
    }
);

TEST(config_bad_many, every_problem_is_collected_in_file_order) {
    const auto r = load_fixture("bad_many.yaml");
    ASSERT_FALSE(r.ok());
    struct where {
        int line;
        int column;
        std::string path;
        bool operator==(const where&) const = default;
    };
    std::vector<where> got;
    for (const auto& p : r.problems) {
        got.push_back({p.line, p.column, p.path});
    }
    const std::vector<where> want{
        {4, 19, "server.max_body_bytes"},
        {5, 17, "server.idle_timeout"},
        {7, 3, "log.levle"},
        {9, 21, "pagerduty.webhook_secrets[0]"},
        {12, 1, "discord.status_webhook_url"},
        {13, 13, "discord.base_url"},
        {16, 11, "services.PF9KMXH.name"},
    };
    EXPECT_EQ(got, want) << dump(r.problems);
    EXPECT_EQ(r.problems[2].message, "unknown key 'levle'; did you mean 'level'?");
    EXPECT_EQ(r.problems[6].message, "must not be empty");
}

TEST(config_bad_many, an_empty_file_reports_the_required_keys_at_its_start) {
    const auto r = parse("", "empty.yaml", env_of({}));
    ASSERT_EQ(r.problems.size(), 2u) << dump(r.problems);
    EXPECT_EQ(
        r.problems[0].to_string(),
        "empty.yaml:1:1: pagerduty.webhook_secrets: at least one webhook signing secret is "
        "required (webhook_secrets or webhook_secrets_file)"
    );
    EXPECT_EQ(r.problems[1].path, "discord.status_webhook_url");
}

// --- secrets never leak ----------------------------------------------------------------------

TEST(config_secrets, no_secret_value_appears_in_any_problem) {
    const auto r = load_fixture("bad_secret_leak.yaml");
    ASSERT_FALSE(r.ok());
    // Every field in the fixture is wrong, and each one holds a secret in some form.
    EXPECT_EQ(r.problems.size(), 7u) << dump(r.problems);
    for (const auto& p : r.problems) {
        for (const auto& s : fixture_secrets) {
            EXPECT_EQ(p.to_string().find(s), std::string::npos)
                << "secret '" << s << "' leaked in: " << p.to_string();
        }
    }
}

TEST(config_secrets, no_bad_fixture_leaks_a_secret) {
    for (const std::string file :
         {"bad_webhook_url.yaml",
          "bad_webhook_id.yaml",
          "bad_webhook_file_content.yaml",
          "bad_webhook_both.yaml",
          "bad_env_number.yaml",
          "bad_empty_secret.yaml",
          "bad_secrets_not_list.yaml",
          "bad_many.yaml",
          "bad_syntax.yaml",
          "bad_url_credentials.yaml"}) {
        const auto r = load_fixture(file);
        ASSERT_FALSE(r.ok()) << file;
        for (const auto& p : r.problems) {
            for (const auto& s : fixture_secrets) {
                EXPECT_EQ(p.to_string().find(s), std::string::npos)
                    << file << ": secret '" << s << "' leaked in: " << p.to_string();
            }
        }
    }
}

TEST(config_secrets, a_url_is_quoted_without_its_credentials) {
    const auto r = load_fixture("bad_url_credentials.yaml");
    ASSERT_FALSE(r.ok());
    std::map<std::string, std::string> by_path;
    for (const auto& p : r.problems) {
        by_path[p.path] = p.message;
    }
    // The value is still shown, so the reader knows which one is meant; its secrets are not.
    EXPECT_EQ(
        by_path["discord.base_url"],
        "'https://<redacted>@discord.com/api': credentials in the URL are not allowed"
    ) << dump(r.problems);
    EXPECT_EQ(
        by_path["promql.url"],
        "'https://prom.example.com/api?token=<redacted>&org=<redacted>': a query or fragment is not "
        "allowed; expected http(s)://host[:port][/path]"
    ) << dump(r.problems);
    EXPECT_EQ(
        by_path["probes.targets[0].url"],
        "'https://<redacted>@api.example.com/health': credentials in the URL are not allowed (the URL "
        "is shown in #operations)"
    ) << dump(r.problems);
    EXPECT_TRUE(by_path["server.listen"].starts_with("'https://discord.com/api/webhooks/<redacted>': "))
        << dump(r.problems);
    EXPECT_TRUE(by_path["server.admin_listen"].starts_with("'https://example.com/hook/<redacted>/x': "))
        << dump(r.problems);
    // A long value is cut at 60 characters, never inside a <redacted>.
    EXPECT_TRUE(by_path["pagerduty_api.url"].starts_with(
        "'https://api.pagerduty.example.com/v2?first=<redacted>&s=...': "
    )) << dump(r.problems);
}

TEST(config_secrets, redact_credentials_keeps_what_names_the_value) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"https://discord.com/api/webhooks/123/tok-en_1", "https://discord.com/api/webhooks/<redacted>"},
        {"https://user:pw@example.com:8443/a/b?x=1#frag",
         "https://<redacted>@example.com:8443/a/b?x=<redacted>#<redacted>"},
        {"https://example.com/services/T000/B000/XXXXXXXXXXXXXXXX1234",
         "https://example.com/services/T000/B000/<redacted>"},
        {"https://example.com?token", "https://example.com?<redacted>"},
        {"https://prometheus.example.com/api/v1", "https://prometheus.example.com/api/v1"},
        {"postgres://app:pw@db:5432/x", "postgres://<redacted>@db:5432/x"},
        {"host=db user=app password=pw sslmode=require",
         "host=db user=app password=<redacted> sslmode=require"},
        {"app:pw@db:5432", "<redacted>@db:5432"},
        {"0.0.0.0:8080", "0.0.0.0:8080"},
        {"[::1]:8080", "[::1]:8080"},
        {"30 minutes", "30 minutes"},
    };
    for (const auto& [in, out] : cases) {
        EXPECT_EQ(yaml::redact_credentials(in), out) << in;
    }
}

TEST(config_secrets, a_secret_prints_as_a_placeholder) {
    std::ostringstream out;
    out << secret<std::string>{"s3cret"};
    EXPECT_EQ(out.str(), "<secret>");
}

// --- the structured strings, as tables -------------------------------------------------------

std::string with_discord(std::string_view key, std::string_view value) {
    return "pagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\ndiscord:\n  " +
           std::string{key} + ": \"" + std::string{value} + "\"\n";
}

std::string with_listen(std::string_view value) {
    return "server:\n  listen: \"" + std::string{value} +
           "\"\npagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\n";
}

struct webhook_case {
    std::string url;
    std::string id;  // empty: rejected
    std::string token;
    std::string root = "https://discord.com/api/v10";
};

TEST(config_tables, discord_webhook_urls) {
    const std::vector<webhook_case> cases{
        {"https://discord.com/api/webhooks/123/abc-DEF_9", "123", "abc-DEF_9"},
        {"https://discordapp.com/api/webhooks/123/tok", "123", "tok", "https://discordapp.com/api/v10"},
        {"https://canary.discord.com/api/webhooks/123/tok",
         "123",
         "tok",
         "https://canary.discord.com/api/v10"},
        {"https://ptb.discord.com/api/webhooks/123/tok", "123", "tok", "https://ptb.discord.com/api/v10"},
        {"https://discord.com/api/v10/webhooks/456/tok", "456", "tok"},
        {"https://Discord.com/api/v9/webhooks/456/tok", "456", "tok", "https://Discord.com/api/v9"},
        // Any HTTPS host and port: a proxy, a test server. Its path is kept as written.
        {"https://discord.com:443/api/webhooks/1/tok", "1", "tok", "https://discord.com:443/api/v10"},
        {"https://127.0.0.1:8443/api/webhooks/7/tok", "7", "tok", "https://127.0.0.1:8443/api/v10"},
        {"https://[::1]:8443/api/v10/webhooks/7/tok", "7", "tok", "https://[::1]:8443/api/v10"},
        {"https://proxy.internal:9443/discord/webhooks/7/tok",
         "7",
         "tok",
         "https://proxy.internal:9443/discord"},
        {"https://hooks.example.com/webhooks/7/tok", "7", "tok", "https://hooks.example.com"},
        {"http://discord.com/api/webhooks/1/tokensecretA", "", ""},
        {"http://127.0.0.1:8443/api/webhooks/1/tokensecretB", "", ""},
        {"https://discord.com/api/webhooks/1/tokensecretC?wait=true", "", ""},
        {"https://discord.com/api/webhooks/1/tokensecretD/extra", "", ""},
        {"https://discord.com/api/webhooks/1/", "", ""},
        {"https://discord.com/api/webhooks/tokensecretE", "", ""},
        {"https://discord.com/api/vX/webhooks/1/tokensecretF", "", ""},
        {"https://discord.com/webhooks/1/tokensecretG", "", ""},
        {"https://proxy.internal:0/webhooks/1/tokensecretH", "", ""},
        {"https://proxy.internal:99999/webhooks/1/tokensecretH", "", ""},
        {"https://user:pw@proxy.internal/webhooks/1/tokensecretH", "", ""},
        {"https://pro_xy.internal/webhooks/1/tokensecretH", "", ""},
        {"https:///webhooks/1/tokensecretH", "", ""},
        {"discord.com/api/webhooks/1/tokensecretI", "", ""},
    };
    for (const auto& c : cases) {
        const auto r = parse(with_discord("status_webhook_url", c.url), "inline.yaml", env_of({}));
        if (!c.id.empty()) {
            ASSERT_TRUE(r.ok()) << c.url << dump(r.problems);
            EXPECT_EQ(r.value->discord.status.id, c.id) << c.url;
            EXPECT_EQ(r.value->discord.status.token.reveal(), c.token) << c.url;
            EXPECT_EQ(r.value->discord.status.root, c.root) << c.url;
            continue;
        }
        ASSERT_EQ(r.problems.size(), 1u) << c.url << dump(r.problems);
        const problem& p = r.problems[0];
        EXPECT_EQ(p.path, "discord.status_webhook_url");
        EXPECT_TRUE(p.message.starts_with("not a Discord webhook URL: ")) << p.message;
        EXPECT_EQ(p.message.find("tokensecret"), std::string::npos) << p.message;
        EXPECT_EQ(p.message.find(c.url), std::string::npos) << p.message;
    }
}

TEST(config_tables, a_deprecated_base_url_still_works_but_not_with_a_url_naming_its_own_host) {
    const std::string on_discord =
        with_discord("status_webhook_url", "https://discord.com/api/webhooks/1/tok");
    const auto kept =
        parse(on_discord + "  base_url: \"https://127.0.0.1:8443/api/v10\"\n", "inline.yaml", env_of({}));
    ASSERT_TRUE(kept.ok()) << dump(kept.problems);
    EXPECT_EQ(
        notify::discord::webhook_root(kept.value->discord, kept.value->discord.status),
        "https://127.0.0.1:8443/api/v10"
    );
    const auto own_host = parse(
        with_discord("status_webhook_url", "https://127.0.0.1:9443/api/webhooks/1/tok") +
            "  base_url: \"https://127.0.0.1:8443/api/v10\"\n",
        "inline.yaml",
        env_of({})
    );
    ASSERT_EQ(own_host.problems.size(), 1u) << dump(own_host.problems);
    EXPECT_EQ(own_host.problems[0].path, "discord.base_url");
    EXPECT_TRUE(
        own_host.problems[0].message.starts_with("deprecated, and the webhook URLs name their own host")
    ) << own_host.problems[0].message;
    const auto plain = parse(on_discord, "inline.yaml", env_of({}));
    ASSERT_TRUE(plain.ok()) << dump(plain.problems);
    EXPECT_EQ(
        notify::discord::webhook_root(plain.value->discord, plain.value->discord.status),
        "https://discord.com/api/v10"
    );
}

TEST(config_tables, an_empty_webhook_url_means_not_configured) {
    const auto r = parse(with_discord("operations_webhook_url", ""), "inline.yaml", env_of({}));
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    EXPECT_FALSE(r.value->discord.operations.configured());
}

struct listen_case {
    std::string text;
    std::string address;  // empty: rejected
    std::uint16_t port = 0;
};

TEST(config_tables, listen_addresses) {
    const std::vector<listen_case> cases{
        {"0.0.0.0:8080", "0.0.0.0", 8080},
        {"127.0.0.1:0", "127.0.0.1", 0},
        {"10.1.2.3:65535", "10.1.2.3", 65535},
        {"[::]:8080", "::", 8080},
        {"[::1]:1", "::1", 1},
        {"[fe80::1:2]:443", "fe80::1:2", 443},
        {"[::1]8080", "", 0},
        {"[127.0.0.1]:80", "", 0},
        {"1.2.3:80", "", 0},
        {"0.0.0.0:", "", 0},
        {"0.0.0.0:-1", "", 0},
        {"0.0.0.0:65536", "", 0},
        {":8080", "", 0},
        {"8080", "", 0},
        {"example.com:443", "", 0},
    };
    for (const auto& c : cases) {
        const auto r = parse(with_listen(c.text), "inline.yaml", env_of({}));
        if (!c.address.empty()) {
            ASSERT_TRUE(r.ok()) << c.text << dump(r.problems);
            EXPECT_EQ(r.value->server.address, c.address) << c.text;
            EXPECT_EQ(r.value->server.port, c.port) << c.text;
            continue;
        }
        ASSERT_EQ(r.problems.size(), 1u) << c.text << dump(r.problems);
        EXPECT_EQ(r.problems[0].path, "server.listen") << c.text;
        EXPECT_EQ(r.problems[0].line, 2) << c.text;
        EXPECT_EQ(r.problems[0].column, 11) << c.text;
    }
}

// --- certs: ----------------------------------------------------------------------------------

std::string with_certs(std::string_view certs) {
    return "pagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\n"
           "services:\n  PAPI001:\n    name: API\n"
           "certs:\n" +
           std::string{certs};
}

TEST(config_certs, targets_and_every_key_are_read_with_defaults) {
    const auto r = parse(
        with_certs("  targets:\n"
                   "    - host: api.example.com\n"
                   "      services: [PAPI001]\n"
                   "    - host: api.example.com\n"
                   "      port: 8443\n"
                   "      address: 10.0.0.7\n"
                   "      address: \"\"\n"),
        "inline.yaml",
        env_of({})
    );
    // A duplicate key is refused by the walker; read the same without it.
    ASSERT_FALSE(r.ok());
    const auto ok = parse(
        with_certs("  interval: 10m\n  warn_within: 30d\n  concurrency: 4\n  timeout: 3s\n"
                   "  targets:\n"
                   "    - host: api.example.com\n"
                   "      services: [PAPI001]\n"
                   "    - host: api.example.com\n"
                   "      port: 8443\n"
                   "      address: 10.0.0.7\n"
                   "    - host: 10.0.0.8\n"
                   "      address: \"\"\n"),
        "inline.yaml",
        env_of({})
    );
    ASSERT_TRUE(ok.ok()) << dump(ok.problems);
    const auto& c = ok.value->certs;
    ASSERT_EQ(c.targets.size(), 3u);
    EXPECT_EQ(c.targets[0].host, "api.example.com");
    EXPECT_EQ(c.targets[0].port, 443);
    EXPECT_EQ(c.targets[0].services, std::vector<std::string>{"PAPI001"});
    EXPECT_EQ(c.targets[1].port, 8443);
    EXPECT_EQ(c.targets[1].address, "10.0.0.7");
    EXPECT_EQ(c.targets[2].address, "") << "an empty address resolves the host";
    EXPECT_EQ(c.interval, 10min);
    EXPECT_EQ(c.warn_within, 30 * 24h);
    EXPECT_EQ(c.concurrency, 4u);
    EXPECT_EQ(c.timeout, 3s);
    EXPECT_TRUE(c.enabled());

    const auto off = parse(with_certs("  interval: 1m\n"), "inline.yaml", env_of({}));
    ASSERT_TRUE(off.ok()) << dump(off.problems);
    EXPECT_FALSE(off.value->certs.enabled()) << "no target, no source";
    EXPECT_EQ(sources::certs::config{}.interval, 5min);
    EXPECT_EQ(sources::certs::config{}.warn_within, 14 * 24h);
}

TEST(config_certs, each_bad_target_is_reported_where_it_is) {
    const auto r = parse(
        with_certs("  targets:\n"
                   "    - port: 443\n"              // line 10: no host
                   "    - host: \"bad host!\"\n"    // line 11
                   "    - host: ok.example.com\n"   // line 12
                   "      port: 70000\n"            // line 13
                   "    - host: dup.example.com\n"  // line 14
                   "    - host: dup.example.com\n"  // line 15: a second time
                   "    - host: svc.example.com\n"  // line 16
                   "      services: [PNOPE99]\n"    // line 17: no such service
                   "      ca_fil: /x\n"),           // line 18: unknown key
        "inline.yaml",
        env_of({})
    );
    ASSERT_FALSE(r.ok());
    std::vector<std::string> got;
    for (const auto& p : r.problems) {
        got.push_back(std::to_string(p.line) + " " + p.path + ": " + p.message);
    }
    const auto has = [&](std::string_view needle) {
        return std::any_of(got.begin(), got.end(), [&](const std::string& g) {
            return g.find(needle) != std::string::npos;
        });
    };
    EXPECT_TRUE(has("10 certs.targets[0].host: required")) << dump(r.problems);
    EXPECT_TRUE(has("11 certs.targets[1].host: 'bad host!': not a host name")) << dump(r.problems);
    EXPECT_TRUE(has("13 certs.targets[2].port: '70000' is not a port")) << dump(r.problems);
    EXPECT_TRUE(has("15 certs.targets[4].host: 'dup.example.com:443' is already a target"))
        << dump(r.problems);
    EXPECT_TRUE(has("10 certs.targets: target svc.example.com: 'PNOPE99' is not a service under services:"))
        << dump(r.problems);
    EXPECT_TRUE(has("18 certs.targets[5].ca_fil: unknown key 'ca_fil'; did you mean 'ca_file'?"))
        << dump(r.problems);
}

struct base_url_case {
    std::string text;
    std::string normalised;  // empty: rejected
};

TEST(config_tables, discord_base_urls) {
    const std::vector<base_url_case> cases{
        {"https://discord.com/api/v10", "https://discord.com/api/v10"},
        {"https://discord.com/api/v10/", "https://discord.com/api/v10"},
        {"https://proxy.internal:8443", "https://proxy.internal:8443"},
        {"https://[2001:db8::1]:8443/api", "https://[2001:db8::1]:8443/api"},
        {"http://127.0.0.1:9000/api", "http://127.0.0.1:9000/api"},
        {"http://localhost:9000", "http://localhost:9000"},
        {"http://[::1]:9000/", "http://[::1]:9000"},
        {"http://10.0.0.1/api", ""},
        {"http://localhost.example.com/api", ""},
        {"ftp://discord.com/api", ""},
        {"https://user:pass@discord.com/api", ""},
        {"https://discord.com:0/api", ""},
        {"https://discord.com:99999/api", ""},
        {"https://discord.com/api?x=1", ""},
        {"https:///api", ""},
        {"https://[::1/api", ""},
    };
    for (const auto& c : cases) {
        const auto r = parse(with_discord("base_url", c.text), "inline.yaml", env_of({}));
        if (!c.normalised.empty()) {
            ASSERT_TRUE(r.ok()) << c.text << dump(r.problems);
            EXPECT_EQ(r.value->discord.base_url, c.normalised);
            continue;
        }
        ASSERT_EQ(r.problems.size(), 1u) << c.text << dump(r.problems);
        EXPECT_EQ(r.problems[0].path, "discord.base_url") << c.text;
    }
}

TEST(config_tables, unknown_keys_suggest_close_names) {
    struct suggest_case {
        std::string key;
        std::string message;
    };
    const std::vector<suggest_case> cases{
        {"lsiten", "unknown key 'lsiten'; did you mean 'listen'?"},  // transposition
        {"max_body_byte", "unknown key 'max_body_byte'; did you mean 'max_body_bytes'?"},
        {"listen_address", "unknown key 'listen_address'; did you mean 'listen'?"},  // prefix
        {"port", "unknown key 'port'"},
    };
    for (const auto& c : cases) {
        const auto r = parse(
            "server:\n  " + c.key + ": 1\npagerduty:\n  webhook_secrets: [s]\nnotify:\n  kind: console\n",
            "inline.yaml",
            env_of({})
        );
        ASSERT_EQ(r.problems.size(), 1u) << c.key << dump(r.problems);
        EXPECT_EQ(r.problems[0].message, c.message);
        EXPECT_EQ(r.problems[0].path, "server." + c.key);
    }
}

// --- problems as text ------------------------------------------------------------------------

TEST(config_problem, to_string_has_file_position_path_and_message) {
    EXPECT_EQ(
        (problem{"a.yaml", 3, 7, "server.listen", "bad"}).to_string(), "a.yaml:3:7: server.listen: bad"
    );
    EXPECT_EQ((problem{"a.yaml", 0, 0, "server.listen", "bad"}).to_string(), "a.yaml: server.listen: bad");
    EXPECT_EQ(
        (problem{"a.yaml", 4, 1, "", "YAML syntax error: x"}).to_string(), "a.yaml:4:1: YAML syntax error: x"
    );
}

TEST(config_problem, a_missing_file_has_no_position) {
    const auto r = load(fixtures + "does-not-exist.yaml", env_of({}));
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_EQ(r.problems[0].line, 0);
    EXPECT_EQ(
        r.problems[0].to_string(),
        "tests/data/config/does-not-exist.yaml: cannot read the configuration file: No such "
        "file or directory"
    );
}

// --- services.<id>.postgres -------------------------------------------------------------------

std::string with_service_postgres(std::string_view postgres) {
    return "pagerduty:\n  webhook_secrets: [\"s\"]\nnotify:\n  kind: console\n"
           "services:\n  PAPI001:\n    name: API\n    postgres:\n" +
           std::string{postgres};
}

TEST(config_services, postgres_sessions_are_read_by_application_and_user) {
    const auto r = parse(
        with_service_postgres("      applications: [\"api-*\", worker]\n      users: [api]\n"),
        "inline.yaml",
        env_of({})
    );
    ASSERT_TRUE(r.ok()) << dump(r.problems);
    const auto& svc = r.value->services.at("PAPI001");
    EXPECT_EQ(svc.postgres_applications, (std::vector<std::string>{"api-*", "worker"}));
    EXPECT_EQ(svc.postgres_users, std::vector<std::string>{"api"});
}

TEST(config_services, postgres_patterns_are_checked) {
    const struct {
        std::string yaml;
        std::string path;
        std::string message;
    } cases[] = {
        {"      applications: [\"a*b\"]\n",
         "services.PAPI001.postgres.applications[0]",
         "'a*b' is not an application_name pattern ('*' alone or at the end only)"},
        {"      users: [\"*x\"]\n",
         "services.PAPI001.postgres.users[0]",
         "'*x' is not a user name pattern ('*' alone or at the end only)"},
        {"      {}\n",
         "services.PAPI001.postgres",
         "name the service's sessions by applications (application_name) or users"},
        {"      application: [api]\n", "services.PAPI001.postgres.application", ""},
    };
    for (const auto& c : cases) {
        const auto r = parse(with_service_postgres(c.yaml), "inline.yaml", env_of({}));
        ASSERT_FALSE(r.problems.empty()) << c.yaml;
        EXPECT_EQ(r.problems[0].path, c.path) << c.yaml << dump(r.problems);
        if (!c.message.empty()) {
            EXPECT_EQ(r.problems[0].message, c.message) << c.yaml;
        }
    }
}

}  // namespace
}  // namespace runbookd::config
