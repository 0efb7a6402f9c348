#include "cluster/lease.hpp"
#include "net/https_client.hpp"
#include "sources/kubernetes/access.hpp"
#include "sources/kubernetes/config.hpp"
#include "sources/kubernetes/credentials.hpp"

#include <array>
#include <stdexcept>
#include <unistd.h>

namespace runbookd::cluster {

namespace {

/// This replica's name: POD_NAME (the Downward API), else the host name (a pod's
/// hostname is its name too).
std::string default_identity(const sources::kubernetes::env_lookup& env) {
    if (auto pod = env("POD_NAME"); pod && !pod->empty()) {
        return *pod;
    }
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) == 0 && host[0] != '\0') {
        return host.data();
    }
    throw std::runtime_error(
        "leader_election.identity is unset and neither POD_NAME nor the host name is known"
    );
}

class lease_elector_with_client final : public elector {
public:
    lease_elector_with_client(
        lease_settings settings,
        sources::kubernetes::cluster_access access,
        boost::asio::any_io_executor ex,
        leader_callbacks callbacks,
        const log::logger& log,
        prometheus::Registry& registry
    )
        : description_(
              "lease " + settings.ns + "/" + settings.name + " as " + settings.identity + " (" +
              access.origin + ")"
          ),
          http_(ex, access.tls, log.with("component", "leader_election_http")),
          creds_(ex, std::move(access)),
          elector_(ex, http_, creds_, std::move(settings), std::move(callbacks), log, registry) {}

    void start() override { elector_.start(); }

    void stop(std::function<void()> done) override {
        elector_.stop([this, done = std::move(done)] {
            http_.shutdown();
            creds_.cancel();
            if (done) {
                done();
            }
        });
    }

    bool is_leader() const noexcept override { return elector_.is_leader(); }
    std::uint64_t fencing_token() const noexcept override { return elector_.fencing_token(); }
    std::string describe() const override { return description_; }

private:
    std::string description_;
    net::https_client http_;
    sources::kubernetes::credentials creds_;
    lease_elector elector_;
};

}  // namespace

std::unique_ptr<elector> make(
    const config& cfg,
    const sources::kubernetes::config& k8s,
    boost::asio::any_io_executor ex,
    leader_callbacks callbacks,
    log::logger log,
    prometheus::Registry& registry,
    const std::function<void(std::string)>& redact
) {
    if (!cfg.enabled) {
        return nullptr;
    }
    const auto env = sources::kubernetes::process_env();
    std::optional<sources::kubernetes::cluster_access> access;
    auto inside = sources::kubernetes::in_cluster(env, k8s.service_account_dir);
    if (!inside) {
        throw std::runtime_error("leader_election: " + inside.error().detail);
    }
    if (*inside) {
        access = std::move(**inside);
    } else if (!k8s.kubeconfig.empty()) {
        auto from_file = sources::kubernetes::from_kubeconfig(k8s.kubeconfig, k8s.context);
        if (!from_file) {
            throw std::runtime_error("leader_election: " + from_file.error().detail);
        }
        access = std::move(*from_file);
    } else {
        throw std::runtime_error(
            "leader_election.enabled is true but there is no cluster: KUBERNETES_SERVICE_HOST is unset "
            "and kubernetes.kubeconfig is empty"
        );
    }
    if (!access->token.empty() && redact) {
        redact(access->token);
    }
    lease_settings settings;
    settings.server = access->server;
    settings.ns = !cfg.ns.empty()                      ? cfg.ns
                  : !access->default_namespace.empty() ? access->default_namespace
                                                       : std::string{"default"};
    settings.name = cfg.name;
    settings.identity = cfg.identity.empty() ? default_identity(env) : cfg.identity;
    settings.lease_duration = cfg.lease_duration;
    settings.renew_deadline = cfg.renew_deadline;
    settings.retry_period = cfg.retry_period;
    settings.release_on_stop = cfg.release_on_shutdown;
    auto named = log.with("component", "leader_election");
    return std::make_unique<lease_elector_with_client>(
        std::move(settings), std::move(*access), ex, std::move(callbacks), named, registry
    );
}

}  // namespace runbookd::cluster
