// The Kubernetes source in process: CPU to follow a watch stream of 1,000 Pod events
// (line splitting, reading, diffing, signals), against parsing the same lines with
// nlohmann::json (what reading them the obvious way costs), and the heap held for a
// cluster of 10,000 pods and 2,000 deployments after listing it.
#include "sources/kubernetes/source.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <malloc.h>
#include <map>

namespace {

using namespace runbookd;
using namespace runbookd::sources::kubernetes;
namespace asio = boost::asio;

/// A Pod as the API server writes it (about 4 KB with managedFields, spec and status).
std::string pod_json(
    const std::string& ns, const std::string& name, const std::string& deploy, int restarts
) {
    nlohmann::json pod = {
        {"kind", "Pod"},
        {"apiVersion", "v1"},
        {"metadata",
         {{"name", name},
          {"generateName", deploy + "-7d9f5c6b8-"},
          {"namespace", ns},
          {"uid", "0b5b6c1e-4c5d-4f6e-8a9b-1c2d3e4f5a6b"},
          {"resourceVersion", "123456789"},
          {"creationTimestamp", "2026-11-29T10:00:00Z"},
          {"labels", {{"app", deploy}, {"pod-template-hash", "7d9f5c6b8"}}},
          {"ownerReferences",
           {{{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"name", deploy + "-7d9f5c6b8"},
             {"uid", "1b5b6c1e-4c5d-4f6e-8a9b-1c2d3e4f5a6b"},
             {"controller", true},
             {"blockOwnerDeletion", true}}}},
          {"managedFields",
           {{{"manager", "kube-controller-manager"},
             {"operation", "Update"},
             {"apiVersion", "v1"},
             {"time", "2026-11-29T10:00:00Z"},
             {"fieldsType", "FieldsV1"},
             {"fieldsV1",
              {{"f:metadata",
                {{"f:generateName", nlohmann::json::object()},
                 {"f:labels", {{".", nlohmann::json::object()}}}}},
               {"f:spec",
                {{"f:containers", {{"k:{\"name\":\"app\"}", {{"f:image", nlohmann::json::object()}}}}}}}}}},
            {{"manager", "kubelet"},
             {"operation", "Update"},
             {"apiVersion", "v1"},
             {"time", "2026-11-29T10:01:00Z"},
             {"fieldsType", "FieldsV1"},
             {"subresource", "status"},
             {"fieldsV1",
              {{"f:status",
                {{"f:conditions", nlohmann::json::object()},
                 {"f:containerStatuses", nlohmann::json::object()}}}}}}}}}},
        {"spec",
         {{"containers",
           {{{"name", "app"},
             {"image", "gcr.io/acme/" + deploy + ":1.42.0"},
             {"ports", {{{"containerPort", 8080}, {"protocol", "TCP"}}}},
             {"env",
              {{{"name", "MODE"}, {"value", "production"}}, {{"name", "REGION"}, {"value", "us-east1"}}}},
             {"resources",
              {{"limits", {{"cpu", "1"}, {"memory", "512Mi"}}},
               {"requests", {{"cpu", "250m"}, {"memory", "256Mi"}}}}},
             {"livenessProbe", {{"httpGet", {{"path", "/healthz"}, {"port", 8080}}}, {"periodSeconds", 10}}},
             {"terminationMessagePath", "/dev/termination-log"},
             {"imagePullPolicy", "IfNotPresent"}}}},
          {"restartPolicy", "Always"},
          {"terminationGracePeriodSeconds", 30},
          {"dnsPolicy", "ClusterFirst"},
          {"serviceAccountName", "default"},
          {"nodeName", "gke-prod-pool-1-abcd"},
          {"tolerations",
           {{{"key", "node.kubernetes.io/not-ready"},
             {"operator", "Exists"},
             {"effect", "NoExecute"},
             {"tolerationSeconds", 300}}}}}},
        {"status",
         {{"phase", "Running"},
          {"conditions",
           {{{"type", "Ready"},
             {"status", "False"},
             {"lastTransitionTime", "2026-11-29T10:00:00Z"},
             {"reason", "ContainersNotReady"}},
            {{"type", "PodScheduled"}, {"status", "True"}, {"lastTransitionTime", "2026-11-29T10:00:00Z"}}}},
          {"hostIP", "10.128.0.12"},
          {"podIP", "10.4.1.23"},
          {"startTime", "2026-11-29T10:00:00Z"},
          {"containerStatuses",
           {{{"name", "app"},
             {"state",
              {{"waiting",
                {{"reason", "CrashLoopBackOff"}, {"message", "back-off 5m0s restarting failed container"}}}}},
             {"lastState",
              {{"terminated",
                {{"exitCode", 137},
                 {"reason", "OOMKilled"},
                 {"startedAt", "2026-11-29T10:05:00Z"},
                 {"finishedAt", "2026-11-29T10:06:00Z"},
                 {"containerID", "containerd://abcdef0123456789"}}}}},
             {"ready", false},
             {"restartCount", restarts},
             {"image", "gcr.io/acme/" + deploy + ":1.42.0"},
             {"imageID", "gcr.io/acme/web@sha256:0123456789abcdef0123456789abcdef"},
             {"started", false}}}},
          {"qosClass", "Burstable"}}}};
    return pod.dump();
}

std::string deployment_json(const std::string& ns, const std::string& name) {
    nlohmann::json d = {
        {"metadata",
         {{"name", name},
          {"namespace", ns},
          {"generation", 4},
          {"resourceVersion", "99"},
          {"annotations", {{"deployment.kubernetes.io/revision", "4"}}},
          {"managedFields",
           {{{"manager", "argocd"}, {"operation", "Update"}, {"time", "2026-11-29T09:00:00Z"}}}}}},
        {"spec",
         {{"replicas", 5},
          {"selector", {{"matchLabels", {{"app", name}}}}},
          {"template",
           {{"metadata", {{"labels", {{"app", name}}}}},
            {"spec", {{"containers", {{{"name", "app"}, {"image", "gcr.io/acme/" + name + ":1.42.0"}}}}}}}}}},
        {"status",
         {{"observedGeneration", 4},
          {"replicas", 5},
          {"updatedReplicas", 5},
          {"availableReplicas", 5},
          {"conditions",
           {{{"type", "Progressing"}, {"status", "True"}, {"reason", "NewReplicaSetAvailable"}}}}}}};
    return d.dump();
}

std::string list_of(const std::vector<std::string>& items, std::size_t from, std::size_t to, bool more) {
    std::string out = R"({"metadata":{"resourceVersion":"1000")";
    if (more) {
        out += R"(,"continue":")" + std::to_string(to) + R"(")";
    }
    out += R"(},"items":[)";
    for (std::size_t i = from; i < to; ++i) {
        out += (i > from ? "," : "") + items[i];
    }
    return out + "]}";
}

/// Lists come from pages made in advance; a watch waits on `gate`, then streams its body in
/// 16 KiB pieces (as a TLS record would bring it), then ends.
class canned_api final : public net::http_client {
public:
    explicit canned_api(asio::io_context& ioc) : gate(ioc) {
        gate.expires_at(asio::steady_timer::time_point::max());
    }

    asio::awaitable<boost::system::result<net::http_reply, net::transport_failure>> send(net::http_call call
    ) override {
        const auto path = call.url.substr(call.url.find('/', 8));
        if (path.starts_with("/version")) {
            co_return net::http_reply{200, {}, R"({"gitVersion":"v1.29.4"})"};
        }
        const auto cont = call.url.find("continue=");
        const std::string key = path.substr(0, path.find('?')) + "#" +
                                (cont == std::string::npos ? std::string{"0"} : call.url.substr(cont + 9));
        const auto it = pages.find(key);
        co_return net::http_reply{
            200, {}, it == pages.end() ? R"({"metadata":{"resourceVersion":"1"},"items":[]})" : it->second};
    }

    asio::awaitable<boost::system::result<net::http_reply, net::transport_failure>> stream(
        net::http_call call, body_sink sink
    ) override {
        if (call.url.find("/pods?") == std::string::npos || watch_body.empty()) {
            co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
            co_return net::transport_failure{make_failure(errc::shutting_down, "end"), false};
        }
        sink({});
        co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
        const std::string body = std::move(watch_body);
        watch_body.clear();
        for (std::size_t at = 0; at < body.size(); at += 16 * 1024) {
            sink(std::string_view{body}.substr(at, 16 * 1024));
        }
        done = true;
        co_return net::transport_failure{make_failure(errc::shutting_down, "end"), false};
    }

    std::map<std::string, std::string> pages;  ///< "path#continue" -> body
    std::string watch_body;
    asio::steady_timer gate;
    bool done = false;
};

source_settings settings() {
    source_settings s;
    s.server = "https://127.0.0.1:6443";
    s.namespaces = {"*"};
    s.nodes = false;
    return s;
}

/// 1,000 MODIFIED events: 100 pods, each restarting ten times.
std::vector<std::string> restart_lines() {
    std::vector<std::string> out;
    for (int round = 1; round <= 10; ++round) {
        for (int p = 0; p < 100; ++p) {
            out.push_back(
                R"({"type":"MODIFIED","object":)" +
                pod_json("prod", "web-7d9f5c6b8-" + std::to_string(p), "web", round) + "}\n"
            );
        }
    }
    return out;
}

void watch_1000_pod_events(benchmark::State& state) {
    const auto lines = restart_lines();
    std::string body;
    for (const auto& l : lines) {
        body += l;
    }
    std::vector<std::string> pods;
    for (int p = 0; p < 100; ++p) {
        pods.push_back(pod_json("prod", "web-7d9f5c6b8-" + std::to_string(p), "web", 0));
    }
    std::size_t signals = 0;
    for (auto _ : state) {
        state.PauseTiming();
        asio::io_context ioc;
        canned_api api{ioc};
        api.pages["/api/v1/pods#0"] = list_of(pods, 0, pods.size(), false);
        api.watch_body = body;
        cluster_access access;
        access.token = "t";
        credentials creds{ioc.get_executor(), access};
        prometheus::Registry registry;
        source src{
            ioc.get_executor(),
            api,
            creds,
            settings(),
            [&](signal) { ++signals; },
            [](source_status) {},
            log::discard(),
            registry};
        src.start();
        ioc.poll();  // listed; every watch waits at the gate
        state.ResumeTiming();
        api.gate.cancel();
        while (!api.done) {
            ioc.poll_one();
        }
        state.PauseTiming();
        src.stop();
        ioc.poll();
        state.ResumeTiming();
    }
    state.counters["events"] = 1000;
    state.counters["signals_per_run"] =
        static_cast<double>(signals) / static_cast<double>(state.iterations());
    state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(watch_1000_pod_events)->Unit(benchmark::kMicrosecond);

/// The reference: nlohmann::json::parse of the same 1,000 lines, nothing else.
void reference_nlohmann_parse_1000(benchmark::State& state) {
    const auto lines = restart_lines();
    for (auto _ : state) {
        for (const auto& l : lines) {
            auto doc = nlohmann::json::parse(l);
            benchmark::DoNotOptimize(doc);
        }
    }
    state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(reference_nlohmann_parse_1000)->Unit(benchmark::kMicrosecond);

/// Listing 10,000 pods and 2,000 deployments (500 a page): time, and heap held after.
void list_10k_pods_2k_deployments(benchmark::State& state) {
    std::vector<std::string> pods;
    std::vector<std::string> deployments;
    for (int i = 0; i < 10'000; ++i) {
        const std::string deploy = "svc-" + std::to_string(i / 5);
        pods.push_back(
            pod_json("ns-" + std::to_string(i % 20), deploy + "-7d9f5c6b8-" + std::to_string(i), deploy, 0)
        );
    }
    for (int i = 0; i < 2'000; ++i) {
        deployments.push_back(deployment_json("ns-" + std::to_string(i % 20), "svc-" + std::to_string(i)));
    }
    double held = 0;
    std::size_t objects = 0;
    for (auto _ : state) {
        asio::io_context ioc;
        canned_api api{ioc};
        for (std::size_t at = 0; at < pods.size(); at += 500) {
            api.pages["/api/v1/pods#" + std::to_string(at)] =
                list_of(pods, at, at + 500, at + 500 < pods.size());
        }
        for (std::size_t at = 0; at < deployments.size(); at += 500) {
            api.pages["/apis/apps/v1/deployments#" + std::to_string(at)] =
                list_of(deployments, at, at + 500, at + 500 < deployments.size());
        }
        cluster_access access;
        access.token = "t";
        credentials creds{ioc.get_executor(), access};
        prometheus::Registry registry;
        const auto before = mallinfo2().uordblks;
        source src{
            ioc.get_executor(),
            api,
            creds,
            settings(),
            [](signal) {},
            [](source_status) {},
            log::discard(),
            registry};
        src.start();
        ioc.poll();
        held = static_cast<double>(mallinfo2().uordblks - before);
        objects = src.objects();
        state.PauseTiming();
        src.stop();
        api.gate.cancel();
        ioc.poll();
        state.ResumeTiming();
    }
    state.counters["objects"] = static_cast<double>(objects);
    state.counters["held_MiB"] = held / (1024.0 * 1024.0);
    state.counters["bytes_per_object"] = held / static_cast<double>(objects);
}
BENCHMARK(list_10k_pods_2k_deployments)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
