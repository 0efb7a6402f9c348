#include "sources/kubernetes/cluster.hpp"

#include "net/https_client.hpp"
#include "sources/kubernetes/access.hpp"
#include "sources/kubernetes/credentials.hpp"
#include "sources/kubernetes/source.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

namespace runbookd::sources::kubernetes {

namespace {

class watched_cluster final : public cluster {
public:
    watched_cluster(const config& cfg, const service_map& services, cluster_access access, context& cx)
        : origin_(access.origin),
          default_namespace_(access.default_namespace),
          namespaces_(watched_namespaces(cfg, services, access.default_namespace)),
          nodes_(cfg.nodes),
          http_(cx.loop, access.tls, cx.log.with("component", "kubernetes_http")) {
        if (!access.token.empty()) {
            cx.redact(access.token);
        }
        source_settings settings;
        settings.server = access.server;
        settings.namespaces = namespaces_;
        settings.nodes = cfg.nodes;
        settings.version_interval = cfg.version_interval;
        settings.watch_timeout = cfg.watch_timeout;
        settings.request_timeout = cfg.request_timeout;
        creds_ = std::make_unique<credentials>(cx.loop, std::move(access));
        watch_ = std::make_unique<kubernetes::source>(
            cx.loop, http_, *creds_, std::move(settings), cx.to.on_signal, cx.to.on_status, cx.log, cx.metrics
        );
    }

    std::string describe() const override {
        std::string namespaces;
        for (const auto& ns : namespaces_) {
            namespaces += (namespaces.empty() ? "" : ",") + ns;
        }
        return origin_ + ", namespaces " + namespaces + (nodes_ ? ", nodes" : "");
    }

    void start() override { watch_->start(); }

    void stop() override {
        watch_->stop();
        http_.shutdown();  // ends the watch streams
    }

    void refresh(const refresh_window& /*window*/, loop::steady_clock::time_point deadline, refresh_done done)
        override {
        // The watches hold every window already: only a source still listing has to be waited for.
        watch_->refresh(deadline, std::move(done));
    }

    void resolve_selectors(service_map& services) const override {
        for (auto& [id, service] : services) {
            std::vector<std::string> resolved;
            for (const auto& w : service.workloads) {
                resolved.push_back(w);
                const auto slash = w.find('/');
                if (w.find('=') == std::string::npos || slash == std::string::npos) {
                    continue;
                }
                if (const auto selector = parse_selector(std::string_view{w}.substr(slash + 1))) {
                    for (auto& d :
                         watch_->deployments_matching(std::string_view{w}.substr(0, slash), *selector)) {
                        resolved.push_back(std::move(d));
                    }
                }
            }
            service.workloads = std::move(resolved);
        }
    }

    void on_workloads_changed(std::function<void()> hook) override {
        watch_->on_workloads_changed(std::move(hook));
    }

    bool namespaces_differ(const config& cfg, const service_map& services) const override {
        return watched_namespaces(cfg, services, default_namespace_) != namespaces_;
    }

private:
    std::string origin_;
    std::string default_namespace_;
    std::vector<std::string> namespaces_;
    bool nodes_;
    net::https_client http_;
    std::unique_ptr<credentials> creds_;
    std::unique_ptr<kubernetes::source> watch_;
};

}  // namespace

std::vector<std::string> watched_namespaces(
    const config& cfg, const service_map& services, const std::string& fallback
) {
    if (!cfg.namespaces.empty()) {
        return cfg.namespaces;
    }
    std::vector<std::string> out;
    for (const auto& [id, service] : services) {
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

std::unique_ptr<cluster> make(const config& cfg, const service_map& services, context& cx) {
    if (cfg.enabled == config::mode::off) {
        return nullptr;
    }
    auto inside = in_cluster(process_env(), cfg.service_account_dir);
    if (!inside) {
        if (cfg.enabled == config::mode::on) {
            throw std::runtime_error(inside.error().detail);
        }
        // automatic: a pod without a mounted token (automountServiceAccountToken: false)
        // runs without the source rather than not at all.
        cx.log.warn("kubernetes source off", {{"reason", inside.error().detail}});
        return nullptr;
    }
    if (*inside) {
        return std::make_unique<watched_cluster>(cfg, services, std::move(**inside), cx);
    }
    if (!cfg.kubeconfig.empty()) {
        auto from_file = from_kubeconfig(cfg.kubeconfig, cfg.context);
        if (!from_file) {
            throw std::runtime_error(from_file.error().detail);
        }
        return std::make_unique<watched_cluster>(cfg, services, std::move(*from_file), cx);
    }
    if (cfg.enabled == config::mode::on) {
        throw std::runtime_error(
            "kubernetes.enabled is true but there is no cluster: KUBERNETES_SERVICE_HOST is unset "
            "and kubernetes.kubeconfig is empty"
        );
    }
    return nullptr;  // automatic, and no cluster in sight
}

}  // namespace runbookd::sources::kubernetes
