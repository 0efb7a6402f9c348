// cluster::make: the elector as the daemon builds it, from leader_election and kubernetes.
#include "cluster/lease.hpp"
#include "sources/kubernetes/config.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

namespace runbookd::cluster {
namespace {

namespace fs = std::filesystem;

struct elector_make : ::testing::Test {
    void SetUp() override {
        if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) {
            GTEST_SKIP() << "running inside a cluster: in-cluster access would be chosen";
        }
        dir = fs::temp_directory_path() / ("runbookd-elector-" + std::to_string(::getpid()));
        fs::create_directories(dir);
    }
    void TearDown() override { fs::remove_all(dir); }

    std::unique_ptr<elector> build(const config& cfg, const sources::kubernetes::config& k8s) {
        return make(
            cfg,
            k8s,
            ioc.get_executor(),
            {},
            log::logger{std::make_shared<log::sink>([](std::string_view) {}), log::level::debug},
            registry,
            [this](std::string s) { redacted.push_back(std::move(s)); }
        );
    }

    fs::path dir;
    boost::asio::io_context ioc;
    prometheus::Registry registry;
    std::vector<std::string> redacted;
};

TEST_F(elector_make, is_nothing_while_disabled) {
    EXPECT_EQ(build(config{}, sources::kubernetes::config{}), nullptr);
}

TEST_F(elector_make, without_a_cluster_is_a_start_up_error) {
    config cfg;
    cfg.enabled = true;
    sources::kubernetes::config k8s;
    k8s.service_account_dir = (dir / "none").string();
    try {
        build(cfg, k8s);
        FAIL() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(
            std::string{e.what()}.find("leader_election.enabled is true but there is no cluster"),
            std::string::npos
        ) << e.what();
    }
}

TEST_F(elector_make, uses_the_kubernetes_sections_kubeconfig_and_its_namespace) {
    const auto path = (dir / "config").string();
    std::ofstream(path) << R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: gke
  cluster: {server: "https://127.0.0.1:6443"}
contexts:
- name: prod
  context: {cluster: gke, user: tokened, namespace: ops}
users:
- name: tokened
  user: {token: secret-token}
)";
    config cfg;
    cfg.enabled = true;
    cfg.identity = "runbookd-1";
    sources::kubernetes::config k8s;
    k8s.service_account_dir = (dir / "none").string();
    k8s.kubeconfig = path;
    auto e = build(cfg, k8s);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->describe(), "lease ops/runbookd as runbookd-1 (kubeconfig " + path + " (context prod))");
    EXPECT_EQ(redacted, std::vector<std::string>{"secret-token"});
    EXPECT_FALSE(e->is_leader());

    cfg.ns = "elsewhere";
    cfg.identity.clear();  // POD_NAME, else the host name
    auto named = build(cfg, k8s);
    const std::string desc = named->describe();
    EXPECT_EQ(desc.rfind("lease elsewhere/runbookd as ", 0), 0u) << desc;
    EXPECT_EQ(desc.find("as  ("), std::string::npos) << desc;  // never an empty identity
}

}  // namespace
}  // namespace runbookd::cluster
