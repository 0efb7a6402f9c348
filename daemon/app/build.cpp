#include "app/build.hpp"

#include "net/https_client.hpp"
#include "notify/console/console_notifier.hpp"
#include "notify/discord/discord_notifier.hpp"
#include "sources/gcp/source.hpp"
#include "sources/postgres/dsn.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace runbookd::app {

notifier_parts build_notifier(
    const config::config& cfg, boost::asio::any_io_executor ex, const log::logger& log
) {
    notifier_parts parts;
    switch (cfg.notify.kind) {
        case config::notifier_kind::discord: {
            net::tls_options tls;
            tls.ca_file = cfg.discord.ca_file;
            parts.http = std::make_unique<net::https_client>(ex, tls, log.with("component", "http_client"));
            parts.notifier = std::make_unique<notify::discord::discord_notifier>(
                *parts.http, cfg.discord, log.with("component", "discord")
            );
            break;
        }
        case config::notifier_kind::console: {
            std::FILE* out = stdout;
            if (cfg.console.path != "-") {
                out = std::fopen(cfg.console.path.c_str(), "a");
                if (out == nullptr) {
                    throw std::runtime_error(
                        "cannot open console.path '" + cfg.console.path + "': " + std::strerror(errno)
                    );
                }
                parts.console_file = out;
            }
            parts.notifier = std::make_unique<notify::console::console_notifier>(out);
            break;
        }
    }
    return parts;
}

std::vector<std::string> watched_namespaces(const config::config& cfg, const std::string& fallback) {
    if (!cfg.kubernetes.namespaces.empty()) {
        return cfg.kubernetes.namespaces;
    }
    std::vector<std::string> out;
    for (const auto& [id, service] : cfg.services) {
        for (const auto& workload : service.workloads) {
            const std::string ns = workload.substr(0, workload.find('/'));
            if (ns.find('*') != std::string::npos) {
                return {"*"};  // a namespace pattern: watch them all, the rules match
            }
            if (std::find(out.begin(), out.end(), ns) == out.end()) {
                out.push_back(ns);
            }
        }
    }
    if (out.empty()) {
        out.push_back(fallback.empty() ? std::string{"default"} : fallback);
    }
    return out;
}

void resolve_selectors(
    std::map<std::string, service_info, std::less<>>& services, const sources::kubernetes::source& source
) {
    for (auto& [id, service] : services) {
        std::vector<std::string> resolved;
        for (const auto& w : service.workloads) {
            resolved.push_back(w);
            const auto slash = w.find('/');
            if (w.find('=') == std::string::npos || slash == std::string::npos) {
                continue;
            }
            if (const auto selector = parse_selector(std::string_view{w}.substr(slash + 1))) {
                for (auto& d : source.deployments_matching(std::string_view{w}.substr(0, slash), *selector)) {
                    resolved.push_back(std::move(d));
                }
            }
        }
        service.workloads = std::move(resolved);
    }
}

kubernetes_parts build_kubernetes(
    const config::config& cfg,
    boost::asio::any_io_executor ex,
    const log::logger& log,
    prometheus::Registry& registry,
    sources::kubernetes::source::signal_sink on_signal,
    sources::kubernetes::source::status_sink on_status
) {
    namespace k8s = sources::kubernetes;
    const auto& kc = cfg.kubernetes;
    kubernetes_parts parts;
    if (kc.enabled == config::kubernetes_config::mode::off) {
        return parts;
    }
    std::optional<k8s::cluster_access> access;
    auto inside = k8s::in_cluster(k8s::process_env(), kc.service_account_dir);
    if (!inside) {
        if (kc.enabled == config::kubernetes_config::mode::on) {
            throw std::runtime_error(inside.error().detail);
        }
        // automatic: a pod without a mounted token (automountServiceAccountToken: false)
        // runs without the source rather than not at all.
        log.warn("kubernetes source off", {{"reason", inside.error().detail}});
        return parts;
    }
    if (*inside) {
        access = std::move(**inside);
    } else if (!kc.kubeconfig.empty()) {
        auto from_file = k8s::from_kubeconfig(kc.kubeconfig, kc.context);
        if (!from_file) {
            throw std::runtime_error(from_file.error().detail);
        }
        access = std::move(*from_file);
    } else if (kc.enabled == config::kubernetes_config::mode::on) {
        throw std::runtime_error(
            "kubernetes.enabled is true but there is no cluster: KUBERNETES_SERVICE_HOST is unset "
            "and kubernetes.kubeconfig is empty"
        );
    } else {
        return parts;  // automatic, and no cluster in sight
    }
    parts.origin = access->origin;
    parts.token = access->token;
    parts.default_namespace = access->default_namespace;
    parts.namespaces = watched_namespaces(cfg, access->default_namespace);
    parts.http =
        std::make_unique<net::https_client>(ex, access->tls, log.with("component", "kubernetes_http"));
    k8s::source_settings settings;
    settings.server = access->server;
    settings.namespaces = parts.namespaces;
    settings.nodes = kc.nodes;
    settings.version_interval = kc.version_interval;
    settings.watch_timeout = kc.watch_timeout;
    settings.request_timeout = kc.request_timeout;
    parts.creds = std::make_unique<k8s::credentials>(ex, std::move(*access));
    parts.source = std::make_unique<k8s::source>(
        ex,
        *parts.http,
        *parts.creds,
        std::move(settings),
        std::move(on_signal),
        std::move(on_status),
        log.with("component", "kubernetes"),
        registry
    );
    return parts;
}

poll_parts::~poll_parts() {
    if (postgres_worker) {
        postgres_worker->join();
    }
}

void poll_parts::start() {
    for (auto* p : {cloudsql.get(), gcp_status.get()}) {
        if (p != nullptr) {
            p->start();
        }
    }
    if (postgres) {
        postgres->start();
    }
}

void poll_parts::stop() {
    for (auto* p : {cloudsql.get(), gcp_status.get()}) {
        if (p != nullptr) {
            p->stop();
        }
    }
    if (google_http) {
        google_http->shutdown();
    }
    if (postgres) {
        postgres->stop();
    }
}

poll_parts build_pollers(
    const config::config& cfg,
    boost::asio::any_io_executor ex,
    const log::logger& log,
    prometheus::Registry& registry,
    sources::signal_sink on_signal,
    std::function<void(std::string_view, source_status)> on_status
) {
    namespace gcp = sources::gcp;
    namespace pg = sources::postgres;
    poll_parts parts;
    const auto status_of = [&](std::string name) {
        return [on_status, name](source_status s) { on_status(name, std::move(s)); };
    };
    if (!cfg.cloudsql.instance.empty() || cfg.gcp_status.enabled) {
        parts.google_http = std::make_unique<net::https_client>(
            ex, net::tls_options{cfg.google.ca_file, {}, {}, {}}, log.with("component", "google_http")
        );
    }
    if (!cfg.cloudsql.instance.empty()) {
        const auto& g = cfg.google;
        gcp::credential_settings creds;
        creds.metadata_url = g.metadata_url;
        creds.token_url = g.token_url;
        creds.timeout = g.request_timeout;
        const bool key =
            g.credentials == config::google_config::credential_kind::key_file ||
            (g.credentials == config::google_config::credential_kind::automatic && !g.key_file.empty());
        if (key) {
            auto parsed = gcp::parse_key_file(g.key_json.reveal());
            if (!parsed) {
                throw std::runtime_error("google.key_file: " + parsed.error().detail);
            }
            creds.from = gcp::credential_settings::kind::service_account;
            creds.key = std::move(*parsed);
            parts.secrets.push_back(creds.key.private_key);
        }
        parts.google_creds = std::make_unique<gcp::credentials>(
            ex, *parts.google_http, std::move(creds), log.with("component", "google")
        );
        gcp::cloudsql_settings s;
        s.project = g.project;
        s.instance = cfg.cloudsql.instance;
        s.monitoring_url = g.monitoring_url;
        s.sqladmin_url = g.sqladmin_url;
        s.monitoring_interval = cfg.cloudsql.monitoring_interval;
        s.instance_interval = cfg.cloudsql.instance_interval;
        s.lookback = cfg.cloudsql.lookback;
        s.request_timeout = g.request_timeout;
        parts.cloudsql = std::make_unique<sources::poller>(
            ex,
            "cloudsql",
            gcp::cloudsql_jobs(*parts.google_http, *parts.google_creds, std::move(s)),
            on_signal,
            status_of("cloudsql"),
            log.with("component", "cloudsql"),
            registry
        );
        parts.started.emplace_back(
            "cloudsql", g.project + ":" + cfg.cloudsql.instance + " with the " + parts.google_creds->origin()
        );
    }
    if (cfg.gcp_status.enabled) {
        gcp::status_feed_settings s;
        s.url = cfg.gcp_status.url;
        s.interval = cfg.gcp_status.interval;
        s.products = cfg.gcp_status.products;
        s.locations = cfg.gcp_status.locations;
        s.request_timeout = cfg.google.request_timeout;
        parts.gcp_status = std::make_unique<sources::poller>(
            ex,
            "gcp_status",
            gcp::status_feed_jobs(*parts.google_http, std::move(s)),
            on_signal,
            status_of("gcp_status"),
            log.with("component", "gcp_status"),
            registry
        );
        parts.started.emplace_back("gcp_status", cfg.gcp_status.url);
    }
    if (cfg.postgres.configured()) {
        const auto& p = cfg.postgres;
        auto dsn = pg::parse_dsn(p.dsn.reveal());
        if (!dsn) {
            throw std::runtime_error("postgres.dsn: " + dsn.error().detail);
        }
        // Redacted from every log line. A password shorter than 8 characters is not: it is
        // likely a common word ("postgres") whose redaction would blank out the logs.
        if (const auto it = dsn->find("password"); it != dsn->end() && it->second.size() >= 8) {
            parts.secrets.push_back(it->second);
        }
        parts.secrets.push_back(p.dsn.reveal());
        pg::source_settings s;
        s.interval = p.interval;
        s.deadline = p.connect_timeout + p.statement_timeout + std::chrono::seconds{5};
        s.activity.instance = p.instance;
        s.activity.long_query = p.long_query_threshold;
        s.activity.migration = p.migration_threshold;
        s.activity.idle_in_transaction = p.idle_in_transaction_threshold;
        s.activity.lock_wait = p.lock_wait_threshold;
        s.activity.query_max = p.query_max;
        s.activity.redact_literals = p.redact_literals;
        s.activity.redact_patterns = pg::compile_patterns(p.redact_patterns);
        s.activity.exclude_applications = p.exclude_applications;
        s.activity.exclude_users = p.exclude_users;
        const std::string where = pg::describe(*dsn);
        parts.postgres_monitor = std::make_unique<pg::monitor>(
            pg::monitor_dsn(std::move(*dsn), p.statement_timeout, p.connect_timeout),
            pg::youngest_age(s.activity),
            // The server cuts the text before it is redacted and cut again for posts.
            std::max<std::size_t>(1024, p.query_max * 4)
        );
        parts.postgres_worker = std::make_unique<boost::asio::thread_pool>(1);
        parts.postgres = std::make_unique<pg::source>(
            ex,
            parts.postgres_worker->get_executor(),
            [m = parts.postgres_monitor.get()] { return m->poll(); },
            std::move(s),
            on_signal,
            status_of("postgres"),
            log.with("component", "postgres"),
            registry
        );
        parts.started.emplace_back("postgres", where + " as " + p.instance);
    }
    return parts;
}

}  // namespace runbookd::app
