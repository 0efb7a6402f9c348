#pragma once
// Config -> components: the one explicit list of notifiers (and, later, sources).

#include "config/config.hpp"
#include "log/log.hpp"
#include "net/http_client.hpp"
#include "notify/notifier.hpp"
#include "sources/gcp/credentials.hpp"
#include "sources/kubernetes/source.hpp"
#include "sources/poller.hpp"
#include "sources/postgres/source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <prometheus/registry.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace runbookd::app {

/// What build_notifier made; the client (if any) must outlive the notifier.
struct notifier_parts {
    std::unique_ptr<net::http_client> http;
    std::unique_ptr<notify::notifier> notifier;
    std::FILE* console_file = nullptr;  ///< owned when not stdout
};

/// Constructs the configured notifier. Throws std::runtime_error on start-up failures.
notifier_parts build_notifier(
    const config::config& cfg, boost::asio::any_io_executor ex, const log::logger& log
);

/// The Kubernetes source and what it needs; all empty when there is no cluster to watch.
struct kubernetes_parts {
    std::unique_ptr<net::http_client> http;
    std::unique_ptr<sources::kubernetes::credentials> creds;
    std::unique_ptr<sources::kubernetes::source> source;
    std::string origin;                   ///< "in-cluster", "kubeconfig FILE (context NAME)"
    std::vector<std::string> namespaces;  ///< what it watches
    std::string default_namespace;        ///< the service account's or the context's
    std::string token;                    ///< a fixed token from the kubeconfig, to redact
};

/// The namespaces to watch: the configured ones, else those named in services.*.kubernetes
/// ("*" when one is a pattern), else `fallback` (the service account's namespace).
std::vector<std::string> watched_namespaces(const config::config& cfg, const std::string& fallback);

/// Each `namespace/selector` entry of services.*.kubernetes followed by the Deployments it
/// picks now ("darklang/app=bwd" then "darklang/bwdserver-deployment"), so that
/// `related: service` matches them. The selector entry stays: it matches no name itself.
void resolve_selectors(
    std::map<std::string, service_info, std::less<>>& services, const sources::kubernetes::source& source
);

/// Builds the Kubernetes source per `kubernetes.enabled` (not started). Throws
/// std::runtime_error on a start-up failure (an unreadable kubeconfig, no cluster with
/// `enabled: true`).
kubernetes_parts build_kubernetes(
    const config::config& cfg,
    boost::asio::any_io_executor ex,
    const log::logger& log,
    prometheus::Registry& registry,
    sources::kubernetes::source::signal_sink on_signal,
    sources::kubernetes::source::status_sink on_status
);

/// The polling sources (Cloud SQL, the status feed, Postgres) and what they need; a
/// member is empty when its source is not configured.
struct poll_parts {
    std::unique_ptr<net::http_client> google_http;
    std::unique_ptr<sources::gcp::credentials> google_creds;
    std::unique_ptr<sources::poller> cloudsql;
    std::unique_ptr<sources::poller> gcp_status;
    /// The Postgres monitor blocks: it runs on its own thread, joined when this is destroyed
    /// (bounded by the connect and statement timeouts, and by TCP keepalives and
    /// tcp_user_timeout when the database stops answering).
    std::unique_ptr<boost::asio::thread_pool> postgres_worker;
    std::unique_ptr<sources::postgres::monitor> postgres_monitor;
    std::unique_ptr<sources::postgres::source> postgres;
    std::vector<std::string> secrets;  ///< for the log sink to redact (the DSN's password...)
    std::vector<std::pair<std::string, std::string>> started;  ///< source -> what it polls, for the log

    poll_parts() = default;
    poll_parts(poll_parts&&) = default;
    poll_parts& operator=(poll_parts&&) = default;
    ~poll_parts();

    void start();
    /// Pending waits end and requests in flight fail; a Postgres poll in flight finishes on
    /// its thread (its outcome dropped).
    void stop();
};

/// Builds the configured polling sources (not started). `on_status` gets the source's name.
/// Throws std::runtime_error on a start-up failure (a CA file or key that cannot be loaded).
poll_parts build_pollers(
    const config::config& cfg,
    boost::asio::any_io_executor ex,
    const log::logger& log,
    prometheus::Registry& registry,
    sources::signal_sink on_signal,
    std::function<void(std::string_view, source_status)> on_status
);

}  // namespace runbookd::app
