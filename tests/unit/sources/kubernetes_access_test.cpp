// Cluster access: in-cluster files, kubeconfigs (token, client certificate, exec plugin)
// and the exec plugin run for real (a shell script).
#include "crypto/base64.hpp"
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "sources/kubernetes/access.hpp"
#include "sources/kubernetes/credentials.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

namespace runbookd::sources::kubernetes {
namespace {

namespace fs = std::filesystem;

struct temp_dir {
    temp_dir() {
        path = fs::temp_directory_path() / ("runbookd-access-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(path);
    }
    ~temp_dir() { fs::remove_all(path); }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name) << text;
        return (path / name).string();
    }
    fs::path path;
};

env_lookup env_of(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        const auto it = vars.find(std::string{name});
        return it == vars.end() ? std::nullopt : std::optional{it->second};
    };
}

TEST(base64, decodes_and_rejects) {
    EXPECT_EQ(crypto::base64_decode("aGVsbG8=").value(), "hello");
    EXPECT_EQ(crypto::base64_decode("aGVs\nbG8h").value(), "hello!");
    EXPECT_EQ(crypto::base64_decode("").value(), "");
    EXPECT_FALSE(crypto::base64_decode("aGVsbG8").has_value());
    EXPECT_FALSE(crypto::base64_decode("a$==").has_value());
}

TEST(kubernetes_access, in_cluster_reads_the_service_account_and_brackets_ipv6) {
    temp_dir dir;
    dir.write("token", "t0k\n");
    dir.write("ca.crt", "-----BEGIN CERTIFICATE-----\n");
    dir.write("namespace", "ops\n");
    auto none = in_cluster(env_of({}), dir.path.string());
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());  // not in a cluster

    auto v6 = in_cluster(
        env_of({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
        dir.path.string()
    );
    ASSERT_TRUE(v6 && v6->has_value());
    EXPECT_EQ((*v6)->server, "https://[fd00::1]:443");
    EXPECT_EQ((*v6)->default_namespace, "ops");
    EXPECT_EQ((*v6)->token_file, (dir.path / "token").string());
    EXPECT_EQ((*v6)->tls.ca_file, (dir.path / "ca.crt").string());

    fs::remove(dir.path / "token");
    auto missing = in_cluster(
        env_of({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
        dir.path.string()
    );
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().detail.find("is a service account token mounted?"), std::string::npos);
}

TEST(kubernetes_access, a_kubeconfig_gives_server_ca_credentials_and_namespace) {
    temp_dir dir;
    dir.write("client.crt", "CERT");
    dir.write("client.key", "KEY");
    const auto path = dir.write("config", R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: gke
  cluster:
    server: https://34.1.2.3/
    certificate-authority-data: Q0EtUEVN
contexts:
- name: prod
  context: {cluster: gke, user: me, namespace: darklang}
- name: other
  context: {cluster: gke, user: tokened}
users:
- name: me
  user:
    client-certificate: client.crt
    client-key: client.key
- name: tokened
  user: {token: abc}
)");
    auto a = from_kubeconfig(path, "");
    ASSERT_TRUE(a) << a.error().detail;
    EXPECT_EQ(a->server, "https://34.1.2.3");
    EXPECT_EQ(a->tls.ca_pem, "CA-PEM");
    EXPECT_EQ(a->tls.client_cert_pem, "CERT");  // relative to the kubeconfig
    EXPECT_EQ(a->tls.client_key_pem, "KEY");
    EXPECT_EQ(a->default_namespace, "darklang");
    EXPECT_EQ(a->origin, "kubeconfig " + path + " (context prod)");

    auto b = from_kubeconfig(path, "other");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->token, "abc");
    EXPECT_EQ(b->default_namespace, "default");
}

TEST(kubernetes_access, kubeconfig_problems_name_the_file_line_and_key) {
    temp_dir dir;
    const auto insecure = dir.write("insecure", R"(current-context: c
clusters:
- name: k
  cluster:
    server: https://1.2.3.4
    insecure-skip-tls-verify: true
contexts:
- {name: c, context: {cluster: k, user: u}}
users:
- {name: u, user: {token: t}}
)");
    auto r = from_kubeconfig(insecure, "");
    ASSERT_FALSE(r);
    EXPECT_EQ(
        r.error().detail,
        insecure +
            ":6:31: clusters.k.insecure-skip-tls-verify: TLS verification is always on; give the "
            "cluster's CA (certificate-authority-data)"
    );
    auto no_context = from_kubeconfig(insecure, "nope");
    ASSERT_FALSE(no_context);
    EXPECT_NE(no_context.error().detail.find("contexts: no context named 'nope'"), std::string::npos);

    const auto bad_exec = dir.write("exec", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://1.2.3.4"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users:
- name: u
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}
)");
    auto e = from_kubeconfig(bad_exec, "");
    ASSERT_FALSE(e);
    EXPECT_NE(
        e.error().detail.find(":7:11: users.u.exec.apiVersion: 'client.authentication.k8s.io/v1alpha1'"),
        std::string::npos
    ) << e.error().detail;
    auto missing = from_kubeconfig((dir.path / "absent").string(), "");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().detail.find("cannot read"), std::string::npos);
}

TEST(kubernetes_access, exec_credentials_are_read_strictly) {
    const auto ok = parse_exec_credential(
        R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"ya29.x","expirationTimestamp":"2026-03-05T17:00:00Z"}})",
        "client.authentication.k8s.io/v1beta1"
    );
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->token, "ya29.x");
    EXPECT_EQ(ok->expires, fakes::at("2026-03-05T17:00:00Z"));
    EXPECT_FALSE(parse_exec_credential(
        R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}})",
        "client.authentication.k8s.io/v1"
    ));
    EXPECT_FALSE(parse_exec_credential("not json", ""));
    const auto cert = parse_exec_credential(
        R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"clientCertificateData":"x","clientKeyData":"y"}})",
        "client.authentication.k8s.io/v1"
    );
    ASSERT_FALSE(cert);
    EXPECT_NE(cert.error().detail.find("only token credentials are supported"), std::string::npos);
    EXPECT_FALSE(parse_exec_credential(
        R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t"}})",
        "client.authentication.k8s.io/v1beta1"
    ));
}

/// Runs credentials::authorization() to completion.
result<std::string> authorize(boost::asio::io_context& ioc, credentials& c) {
    std::optional<result<std::string>> out;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> { out = co_await c.authorization(); },
        boost::asio::detached
    );
    EXPECT_TRUE(fakes::run_until(
        ioc, [&] { return out.has_value(); }, std::chrono::seconds{20}
    ));
    ioc.restart();
    return out ? *out : result<std::string>{make_failure(errc::timed_out, "no answer")};
}

TEST(kubernetes_credentials, an_exec_plugin_runs_with_exec_info_and_is_cached_until_expiry_or_401) {
    temp_dir dir;
    const auto counter = (dir.path / "runs").string();
    // Prints a token naming the run and what KUBERNETES_EXEC_INFO and its own env said.
    const auto script = dir.write(
        "plugin.sh",
        "#!/bin/sh\n"
        "echo x >> '" +
            counter +
            "'\n"
            "n=$(wc -l < '" +
            counter +
            "' | tr -d ' ')\n"
            "case \"$KUBERNETES_EXEC_INFO\" in *'\"server\":\"https://1.2.3.4\"'*) c=cluster;; *) c=none;; "
            "esac\n"
            "printf "
            "'{\"apiVersion\":\"client.authentication.k8s.io/"
            "v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"run%s-%s-%s\",\"expirationTimestamp\":"
            "\"2099-01-01T00:00:00Z\"}}' \"$n\" \"$c\" \"$MY_VAR\"\n"
    );
    fs::permissions(script, fs::perms::owner_all);
    cluster_access access;
    exec_plugin plugin;
    plugin.api_version = "client.authentication.k8s.io/v1";
    plugin.command = script;
    plugin.env = {{"MY_VAR", "v"}};
    plugin.cluster_info = R"({"server":"https://1.2.3.4"})";
    access.exec = plugin;
    boost::asio::io_context ioc;
    credentials creds{ioc.get_executor(), access};
    EXPECT_EQ(authorize(ioc, creds).value(), "Bearer run1-cluster-v");
    EXPECT_EQ(authorize(ioc, creds).value(), "Bearer run1-cluster-v");  // cached
    creds.rejected("Bearer some-older-token");                          // a late 401 for another token: kept
    EXPECT_EQ(authorize(ioc, creds).value(), "Bearer run1-cluster-v");
    creds.rejected("Bearer run1-cluster-v");
    EXPECT_EQ(authorize(ioc, creds).value(), "Bearer run2-cluster-v");

    access.exec->command = dir.write("fail.sh", "#!/bin/sh\nexit 3\n");
    fs::permissions(access.exec->command, fs::perms::owner_all);
    access.exec->install_hint = "install gke-gcloud-auth-plugin";
    credentials failing{ioc.get_executor(), access};
    auto r = authorize(ioc, failing);
    ASSERT_FALSE(r);
    EXPECT_NE(
        r.error().detail.find("failed (exit status 3) (install gke-gcloud-auth-plugin)"), std::string::npos
    );

    access.exec->command = (dir.path / "absent").string();
    credentials absent{ioc.get_executor(), access};
    auto a = authorize(ioc, absent);
    ASSERT_FALSE(a);
    EXPECT_NE(a.error().detail.find("cannot run the exec plugin"), std::string::npos);
}

TEST(kubernetes_credentials, a_hung_plugin_is_killed_with_its_children_and_callers_share_one_run) {
    temp_dir dir;
    // A wrapper whose child keeps stdout open: only killing the process group ends the read.
    const auto hung = dir.write("hung.sh", "#!/bin/sh\nsleep 60 &\nsleep 60\n");
    fs::permissions(hung, fs::perms::owner_all);
    cluster_access access;
    exec_plugin plugin;
    plugin.api_version = "client.authentication.k8s.io/v1";
    plugin.command = hung;
    access.exec = plugin;
    boost::asio::io_context ioc;
    credentials slow{ioc.get_executor(), access, std::chrono::milliseconds{300}};
    auto r = authorize(ioc, slow);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().detail.find("did not answer within"), std::string::npos) << r.error().detail;

    // Three callers at once: one run, one answer for all.
    const auto counter = (dir.path / "runs").string();
    access.exec->command = dir.write(
        "once.sh",
        "#!/bin/sh\necho x >> '" + counter +
            "'\nsleep 0.2\n"
            "printf "
            "'{\"apiVersion\":\"client.authentication.k8s.io/"
            "v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"shared\"}}'\n"
    );
    fs::permissions(access.exec->command, fs::perms::owner_all);
    credentials shared{ioc.get_executor(), access};
    std::vector<std::optional<result<std::string>>> answers(3);
    for (auto& a : answers) {
        boost::asio::co_spawn(
            ioc,
            [&]() -> boost::asio::awaitable<void> { a = co_await shared.authorization(); },
            boost::asio::detached
        );
    }
    EXPECT_TRUE(fakes::run_until(
        ioc,
        [&] {
            return std::all_of(answers.begin(), answers.end(), [](const auto& a) { return a.has_value(); });
        },
        std::chrono::seconds{20}
    ));
    for (const auto& a : answers) {
        ASSERT_TRUE(a && *a);
        EXPECT_EQ(a->value(), "Bearer shared");
    }
    std::ifstream runs(counter);
    const auto lines =
        std::count(std::istreambuf_iterator<char>(runs), std::istreambuf_iterator<char>(), '\n');
    EXPECT_EQ(lines, 1);
}

}  // namespace
}  // namespace runbookd::sources::kubernetes
