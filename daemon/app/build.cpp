#include "app/build.hpp"

#include "net/https_client.hpp"
#include "notify/console/console_notifier.hpp"
#include "notify/discord/discord_notifier.hpp"

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

}  // namespace runbookd::app
