#pragma once
// Where the cluster is and how to prove who we are: in-cluster service account or a
// kubeconfig (token, client certificate, exec credential plugin). api-facts §4.1, §4.10.

#include "core/error.hpp"
#include "net/https_client.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd::sources::kubernetes {

/// A kubeconfig `user.exec` credential plugin (gke-gcloud-auth-plugin and the like).
struct exec_plugin {
    std::string api_version;  ///< client.authentication.k8s.io/v1 or v1beta1
    std::string command;
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;
    std::string cluster_info;  ///< spec.cluster for KUBERNETES_EXEC_INFO (provideClusterInfo)
    std::string install_hint;
};

/// Everything needed to talk to one API server.
struct cluster_access {
    std::string server;               ///< https://host:port, no trailing slash
    net::tls_options tls;             ///< the cluster's CA; a client certificate if any
    std::string token;                ///< a fixed bearer token (a secret)
    std::string token_file;           ///< a token file, re-read every minute (rotation)
    std::optional<exec_plugin> exec;  ///< a plugin that prints an ExecCredential
    std::string default_namespace;    ///< the service account's, or the context's
    std::string origin;               ///< "in-cluster" or "kubeconfig FILE (context NAME)"
};

using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

/// In-cluster access from KUBERNETES_SERVICE_HOST/PORT and the service-account files in
/// `account_dir` (token, ca.crt, namespace). nullopt when the variables are unset: the
/// process is not in a cluster. An error when they are set but the files are unreadable.
result<std::optional<cluster_access>> in_cluster(const env_lookup& env, const std::string& account_dir);

/// Access from a kubeconfig file; `context` empty means its current-context. Relative
/// paths in the file are relative to the file. Errors name the file, line and key.
result<cluster_access> from_kubeconfig(const std::string& path, const std::string& context);

/// The process environment as an env_lookup.
env_lookup process_env();

}  // namespace runbookd::sources::kubernetes
