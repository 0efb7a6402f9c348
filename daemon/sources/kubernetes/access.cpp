#include "sources/kubernetes/access.hpp"

#include "crypto/base64.hpp"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace runbookd::sources::kubernetes {
namespace {

failure config_error(std::string detail) {
    return make_failure(errc::config_invalid, std::move(detail));
}

std::optional<std::string> read_file(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read '" + path + "'";
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    const auto last = s.find_last_not_of(" \t\r\n");
    return first == std::string::npos ? std::string{} : s.substr(first, last - first + 1);
}

/// "https://" + host:port, with brackets around an IPv6 address (JoinHostPort).
std::string join_host_port(const std::string& host, const std::string& port) {
    const bool v6 = host.find(':') != std::string::npos && !host.starts_with('[');
    return "https://" + (v6 ? "[" + host + "]" : host) + ":" + port;
}

/// Reads one kubeconfig; every error is "FILE:LINE:COL: key.path: message".
class kubeconfig_reader {
public:
    explicit kubeconfig_reader(std::string path)
        : path_(std::move(path)), dir_(std::filesystem::path(path_).parent_path()) {}

    result<cluster_access> read(const std::string& wanted_context) {
        std::string error;
        const auto text = read_file(path_, error);
        if (!text) {
            return config_error("kubeconfig: " + error);
        }
        YAML::Node root;
        try {
            root = YAML::Load(*text);
        } catch (const YAML::Exception& e) {
            return config_error(where(e.mark, "") + e.msg);
        }
        if (!root.IsMap()) {
            return config_error(path_ + ": not a kubeconfig (expected a map)");
        }
        std::string context_name = wanted_context;
        if (context_name.empty()) {
            context_name = scalar(root["current-context"]);
            if (context_name.empty()) {
                return config_error(
                    where(root.Mark(), "current-context") + "not set; name a context in kubernetes.context"
                );
            }
        }
        const YAML::Node context = named(root, "contexts", context_name, "context");
        if (!context) {
            return config_error(
                where(root["contexts"].Mark(), "contexts") + "no context named '" + context_name + "'"
            );
        }
        cluster_access access;
        access.origin = "kubeconfig " + path_ + " (context " + context_name + ")";
        access.default_namespace = scalar(context["namespace"]);
        if (access.default_namespace.empty()) {
            access.default_namespace = "default";
        }
        const std::string cluster_name = scalar(context["cluster"]);
        const YAML::Node cluster = named(root, "clusters", cluster_name, "cluster");
        if (!cluster) {
            return config_error(
                where(context.Mark(), "contexts." + context_name + ".cluster") + "no cluster named '" +
                cluster_name + "'"
            );
        }
        if (auto r = read_cluster(cluster, cluster_name, access); !r) {
            return r.error();
        }
        const std::string user_name = scalar(context["user"]);
        const YAML::Node user = named(root, "users", user_name, "user");
        if (!user) {
            return config_error(
                where(context.Mark(), "contexts." + context_name + ".user") + "no user named '" + user_name +
                "'"
            );
        }
        if (auto r = read_user(user, user_name, cluster, access); !r) {
            return r.error();
        }
        return access;
    }

private:
    std::string where(const YAML::Mark& m, const std::string& key) const {
        std::string out = path_;
        if (!m.is_null()) {
            out += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
        }
        return out + ": " + (key.empty() ? std::string{} : key + ": ");
    }

    static std::string scalar(const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : std::string{}; }

    /// The `field` of the item of list `list` whose name is `name`.
    static YAML::Node named(
        const YAML::Node& root, const char* list, const std::string& name, const char* field
    ) {
        const YAML::Node items = root[list];
        if (!items || !items.IsSequence()) {
            return YAML::Node{YAML::NodeType::Undefined};
        }
        for (const auto& item : items) {
            if (item.IsMap() && scalar(item["name"]) == name && item[field] && item[field].IsMap()) {
                return item[field];
            }
        }
        return YAML::Node{YAML::NodeType::Undefined};
    }

    std::string resolve(const std::string& p) const {
        return p.empty() || std::filesystem::path(p).is_absolute() ? p : (dir_ / p).string();
    }

    /// A PEM from `key` (a path) or `key-data` (base64).
    result<std::string> pem(const YAML::Node& node, const std::string& key, const std::string& path) {
        const std::string data_key = key + "-data";
        if (const auto data = scalar(node[data_key]); !data.empty()) {
            auto decoded = crypto::base64_decode(data);
            if (!decoded) {
                return config_error(where(node[data_key].Mark(), path + "." + data_key) + "not valid base64");
            }
            return std::move(*decoded);
        }
        if (const auto file = scalar(node[key]); !file.empty()) {
            std::string error;
            auto text = read_file(resolve(file), error);
            if (!text) {
                return config_error(where(node[key].Mark(), path + "." + key) + error);
            }
            return std::move(*text);
        }
        return std::string{};
    }

    result<void> read_cluster(const YAML::Node& cluster, const std::string& name, cluster_access& access) {
        const std::string path = "clusters." + name;
        access.server = scalar(cluster["server"]);
        while (access.server.ends_with('/')) {
            access.server.pop_back();
        }
        if (!access.server.starts_with("https://")) {
            return config_error(
                where(cluster.Mark(), path + ".server") + "must be an https:// URL (got '" + access.server +
                "')"
            );
        }
        if (const auto skip = cluster["insecure-skip-tls-verify"]; skip && scalar(skip) == "true") {
            return config_error(
                where(skip.Mark(), path + ".insecure-skip-tls-verify") +
                "TLS verification is always on; give the cluster's CA (certificate-authority-data)"
            );
        }
        auto ca = pem(cluster, "certificate-authority", path);
        if (!ca) {
            return ca.error();
        }
        access.tls.ca_pem = std::move(*ca);  // empty: the system trust store
        return {};
    }

    result<void> read_user(
        const YAML::Node& user, const std::string& name, const YAML::Node& cluster, cluster_access& access
    ) {
        const std::string path = "users." + name;
        access.token = scalar(user["token"]);
        if (const auto file = scalar(user["tokenFile"]); !file.empty()) {
            access.token_file = resolve(file);
        }
        auto cert = pem(user, "client-certificate", path);
        auto key = pem(user, "client-key", path);
        if (!cert) {
            return cert.error();
        }
        if (!key) {
            return key.error();
        }
        if (cert->empty() != key->empty()) {
            return config_error(where(user.Mark(), path) + "client-certificate and client-key come together");
        }
        access.tls.client_cert_pem = std::move(*cert);
        access.tls.client_key_pem = std::move(*key);
        if (const YAML::Node exec = user["exec"]; exec && exec.IsMap()) {
            exec_plugin plugin;
            plugin.api_version = scalar(exec["apiVersion"]);
            plugin.command = scalar(exec["command"]);
            plugin.install_hint = scalar(exec["installHint"]);
            if (plugin.command.empty()) {
                return config_error(where(exec.Mark(), path + ".exec.command") + "required");
            }
            if (plugin.api_version != "client.authentication.k8s.io/v1" &&
                plugin.api_version != "client.authentication.k8s.io/v1beta1") {
                return config_error(
                    where(exec.Mark(), path + ".exec.apiVersion") + "'" + plugin.api_version +
                    "' is not client.authentication.k8s.io/v1 or v1beta1"
                );
            }
            if (const auto args = exec["args"]; args && args.IsSequence()) {
                for (const auto& a : args) {
                    plugin.args.push_back(scalar(a));
                }
            }
            if (const auto env = exec["env"]; env && env.IsSequence()) {
                for (const auto& e : env) {
                    plugin.env.emplace_back(scalar(e["name"]), scalar(e["value"]));
                }
            }
            if (scalar(exec["provideClusterInfo"]) == "true") {
                nlohmann::json info{{"server", access.server}};
                if (const auto data = scalar(cluster["certificate-authority-data"]); !data.empty()) {
                    info["certificate-authority-data"] = data;
                }
                plugin.cluster_info = info.dump();
            }
            access.exec = std::move(plugin);
        }
        if (user["auth-provider"]) {
            return config_error(
                where(user["auth-provider"].Mark(), path + ".auth-provider") +
                "auth-provider plugins were removed from Kubernetes; use an exec plugin "
                "(gke-gcloud-auth-plugin)"
            );
        }
        if (access.token.empty() && access.token_file.empty() && !access.exec &&
            access.tls.client_cert_pem.empty()) {
            return config_error(
                where(user.Mark(), path) + "no credentials (token, tokenFile, client-certificate or exec)"
            );
        }
        return {};
    }

    std::string path_;
    std::filesystem::path dir_;
};

}  // namespace

env_lookup process_env() {
    return [](std::string_view name) -> std::optional<std::string> {
        if (const char* v = std::getenv(std::string{name}.c_str())) {
            return std::string{v};
        }
        return std::nullopt;
    };
}

result<std::optional<cluster_access>> in_cluster(const env_lookup& env, const std::string& account_dir) {
    const auto host = env("KUBERNETES_SERVICE_HOST");
    const auto port = env("KUBERNETES_SERVICE_PORT");
    if (!host || !port || host->empty() || port->empty()) {
        return std::optional<cluster_access>{};
    }
    cluster_access access;
    access.origin = "in-cluster";
    access.server = join_host_port(*host, *port);
    access.token_file = account_dir + "/token";
    access.tls.ca_file = account_dir + "/ca.crt";
    std::string error;
    if (!read_file(access.token_file, error)) {
        return config_error("in-cluster: " + error + " (is a service account token mounted?)");
    }
    if (!read_file(access.tls.ca_file, error)) {
        return config_error("in-cluster: " + error);
    }
    if (auto ns = read_file(account_dir + "/namespace", error)) {
        access.default_namespace = trim(*ns);
    }
    return std::optional{std::move(access)};
}

result<cluster_access> from_kubeconfig(const std::string& path, const std::string& context) {
    return kubeconfig_reader{path}.read(context);
}

}  // namespace runbookd::sources::kubernetes
