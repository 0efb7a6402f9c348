// The list/watch loops against an API that answers by path, under manual time.
#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"
#include "sources/kubernetes/source.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <variant>

namespace runbookd::sources::kubernetes {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using answer = std::variant<net::http_reply, net::transport_failure>;

/// Answers each request from the queue of its kind and path ("LIST /api/v1/...",
/// "WATCH /api/v1/...", "GET /version"). Empty queues answer: an empty list, a watch that
/// comes up and drops, and version v1.29.0.
class routed_http final : public net::http_client {
public:
    void push(const std::string& route, answer a) { routes_[route].push_back(std::move(a)); }
    /// Answers to a LIST of `route` come `d` later (in virtual time).
    void delay(const std::string& route, std::chrono::milliseconds d) { delays_[route] = d; }
    void push(const std::string& route, unsigned status, std::string body) {
        push(route, net::http_reply{status, {}, std::move(body)});
    }

    boost::asio::awaitable<boost::system::result<net::http_reply, net::transport_failure>> send(
        net::http_call call
    ) override {
        const std::string path = path_of(call.url);
        const std::string route = (path == "/version" ? "GET " : "LIST ") + path;
        calls.push_back(call);
        if (const auto d = delays_.find(route); d != delays_.end()) {
            loop::timer t{co_await boost::asio::this_coro::executor};
            t.expires_after(d->second);
            co_await t.async_wait(boost::asio::use_awaitable);
        }
        co_return next(
            route,
            path == "/version"
                ? net::http_reply{200, {}, R"({"gitVersion":"v1.29.0"})"}
                : net::http_reply{200, {}, R"({"metadata":{"resourceVersion":"1"},"items":[]})"}
        );
    }

    boost::asio::awaitable<boost::system::result<net::http_reply, net::transport_failure>> stream(
        net::http_call call, body_sink sink
    ) override {
        const std::string route = "WATCH " + path_of(call.url);
        calls.push_back(call);
        auto res = next(
            route, net::transport_failure{make_failure(errc::upstream_unavailable, "reset", true), true}
        );
        if (!res && res.error().sent) {
            sink({});  // the default: up, then dropped
            co_return res;
        }
        if (res && res->status == 200) {
            std::string body = std::move(res->body);
            res->body.clear();
            if (sink({})) {
                for (std::size_t at = 0; at < body.size(); at += 5) {  // lines split across pieces
                    if (!sink(std::string_view{body}.substr(at, 5))) {
                        break;
                    }
                }
            }
        }
        co_return res;
    }

    /// The calls whose URL contains `text`.
    std::vector<net::http_call> calls_with(std::string_view text) const {
        std::vector<net::http_call> out;
        for (const auto& c : calls) {
            if (c.url.find(text) != std::string::npos) {
                out.push_back(c);
            }
        }
        return out;
    }

    std::vector<net::http_call> calls;

private:
    static std::string path_of(const std::string& url) {
        const auto start = url.find('/', url.find("//") + 2);
        return url.substr(start, url.find('?') - start);
    }

    boost::system::result<net::http_reply, net::transport_failure> next(
        const std::string& route, answer fallback
    ) {
        auto& queue = routes_[route];
        answer a = queue.empty() ? std::move(fallback) : std::move(queue.front());
        if (!queue.empty()) {
            queue.pop_front();
        }
        if (auto* r = std::get_if<net::http_reply>(&a)) {
            return std::move(*r);
        }
        return std::get<net::transport_failure>(std::move(a));
    }

    std::map<std::string, std::deque<answer>> routes_;
    std::map<std::string, std::chrono::milliseconds> delays_;
};

const std::string pods = "/api/v1/namespaces/prod/pods";
const std::string deployments = "/apis/apps/v1/namespaces/prod/deployments";
const std::string configmaps = "/api/v1/namespaces/prod/configmaps";
const std::string events = "/api/v1/namespaces/prod/events";
const std::string nodes = "/api/v1/nodes";
const std::string replicasets = "/apis/apps/v1/namespaces/prod/replicasets";
const std::string certificates = "/apis/cert-manager.io/v1/namespaces/prod/certificates";

std::string pod(long long restarts, std::string_view rv = "5") {
    return R"({"metadata":{"name":"web-7d9f-x","namespace":"prod","resourceVersion":")" + std::string{rv} +
           R"(","labels":{"pod-template-hash":"7d9f"},"ownerReferences":[{"kind":"ReplicaSet","name":"web-7d9f"}]},
           "status":{"containerStatuses":[{"name":"app","restartCount":)" +
           std::to_string(restarts) +
           R"(,"lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled","finishedAt":"2026-03-05T15:59:00Z"}}}]}})";
}

std::string deployment(
    std::string_view image,
    std::string_view revision = "1",
    std::string_view name = "web",
    std::string_view volumes = ""
) {
    return R"({"metadata":{"name":")" + std::string{name} +
           R"(","namespace":"prod","generation":2,"resourceVersion":"9",
           "annotations":{"deployment.kubernetes.io/revision":")" +
           std::string{revision} + R"("}},
           "spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"app","image":")" +
           std::string{image} + R"("}])" +
           (volumes.empty() ? std::string{} : R"(,"volumes":)" + std::string{volumes}) +
           R"(}}},"status":{"observedGeneration":2}})";
}

/// A ReplicaSet of Deployment "web" (its revision, creation and image).
std::string replicaset(
    std::string_view name, std::string_view revision, std::string_view created, std::string_view image
) {
    return R"({"metadata":{"name":")" + std::string{name} + R"(","namespace":"prod","resourceVersion":"61",
           "creationTimestamp":")" +
           std::string{created} + R"(",
           "annotations":{"deployment.kubernetes.io/revision":")" +
           std::string{revision} + R"("},
           "ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","controller":true}]},
           "spec":{"template":{"spec":{"containers":[{"name":"app","image":")" +
           std::string{image} + R"("}]}}}})";
}

std::string list_of(std::string_view rv, const std::vector<std::string>& items, std::string_view cont = "") {
    std::string out = R"({"metadata":{"resourceVersion":")" + std::string{rv} + R"(")";
    if (!cont.empty()) {
        out += R"(,"continue":")" + std::string{cont} + R"(")";
    }
    out += R"(},"items":[)";
    for (std::size_t i = 0; i < items.size(); ++i) {
        out += (i ? "," : "") + items[i];
    }
    return out + "]}";
}

/// One watch line: the object on one line, as the API server writes it.
std::string line(std::string_view type, std::string object) {
    std::replace(object.begin(), object.end(), '\n', ' ');
    return R"({"type":")" + std::string{type} + R"(","object":)" + object + "}\n";
}

struct harness {
    explicit harness(std::vector<std::string> namespaces = {"prod"}, bool with_nodes = true) {
        token_dir = fs::temp_directory_path() / ("runbookd-k8s-" + std::to_string(::getpid()));
        fs::create_directories(token_dir);
        write_token("token-1");
        cluster_access access;
        access.server = "https://127.0.0.1:6443";
        access.token_file = (token_dir / "token").string();
        creds = std::make_unique<credentials>(ioc.get_executor(), access);
        source_settings settings;
        settings.server = access.server;
        settings.namespaces = std::move(namespaces);
        settings.nodes = with_nodes;
        src = std::make_unique<source>(
            ioc.get_executor(),
            http,
            *creds,
            settings,
            [this](signal s) { signals.push_back(std::move(s)); },
            [this](source_status s) { statuses.push_back(std::move(s)); },
            log::logger{
                std::make_shared<log::sink>([this](std::string_view l) { log_lines.emplace_back(l); }),
                log::level::debug},
            registry
        );
    }
    ~harness() {
        src->stop();
        fakes::drain(ioc);
        fs::remove_all(token_dir);
    }

    void write_token(const std::string& t) { std::ofstream(token_dir / "token") << t << "\n"; }

    std::vector<const signal*> of_kind(std::string_view kind) const {
        std::vector<const signal*> out;
        for (const auto& s : signals) {
            if (s.kind == kind) {
                out.push_back(&s);
            }
        }
        return out;
    }

    fakes::manual_time clock{fakes::at("2026-03-05T16:00:00Z")};
    boost::asio::io_context ioc;
    routed_http http;
    prometheus::Registry registry;
    fs::path token_dir;
    std::unique_ptr<credentials> creds;
    std::unique_ptr<source> src;
    /// The log lines whose text contains `text`.
    std::vector<std::string> logged(std::string_view text) const {
        std::vector<std::string> out;
        for (const auto& l : log_lines) {
            if (l.find(text) != std::string::npos) {
                out.push_back(l);
            }
        }
        return out;
    }

    std::vector<signal> signals;
    std::vector<source_status> statuses;
    std::vector<std::string> log_lines;
};

/// ConfigMap "web-config" listed with data a=1, then edited to a=2 (`metadata` is added to
/// the edited object's metadata).
void push_configmap_edit(harness& h, std::string_view metadata = "") {
    h.http.push(
        "LIST " + configmaps,
        200,
        list_of("30", {R"({"metadata":{"name":"web-config","namespace":"prod"},"data":{"a":"1"}})"})
    );
    h.http.push(
        "WATCH " + configmaps,
        200,
        line(
            "MODIFIED",
            R"({"metadata":{"name":"web-config","namespace":"prod","resourceVersion":"31")" +
                std::string{metadata} + R"(},"data":{"a":"2"}})"
        )
    );
}

std::string label(const signal& s, std::string_view name) {
    const std::string* v = s.find(name);
    return v == nullptr ? "<absent>" : *v;
}

TEST(kubernetes_source, lists_then_watches_and_turns_each_change_into_a_signal) {
    harness h;
    h.http.push("LIST " + pods, 200, list_of("10", {pod(0)}));
    h.http.push("WATCH " + pods, 200, line("MODIFIED", pod(1, "11")));
    h.http.push("LIST " + deployments, 200, list_of("20", {deployment("web:1")}));
    h.http.push("WATCH " + deployments, 200, line("MODIFIED", deployment("web:2", "2")));
    h.http.push(
        "WATCH " + replicasets,
        200,
        line("ADDED", replicaset("web-5f6a", "2", "2026-03-05T15:58:30Z", "web:2"))
    );
    push_configmap_edit(h);
    h.http.push(
        "WATCH " + events,
        200,
        line(
            "ADDED",
            R"({"metadata":{"name":"e1","namespace":"prod","resourceVersion":"41"},"type":"Warning","reason":"Unhealthy",
                        "message":"Readiness probe failed","involvedObject":{"kind":"Pod","name":"web-7d9f-x","namespace":"prod"},"count":3,
                        "lastTimestamp":"2026-03-05T15:58:00Z"})"
        )
    );
    h.http.push(
        "LIST " + nodes,
        200,
        list_of(
            "50",
            {R"({"metadata":{"name":"n1"},"spec":{},"status":{"nodeInfo":{"kubeletVersion":"v1.29.3"}}})"}
        )
    );
    h.http.push(
        "WATCH " + nodes,
        200,
        line(
            "MODIFIED",
            R"({"metadata":{"name":"n1","resourceVersion":"51"},"spec":{"unschedulable":true},"status":{"nodeInfo":{"kubeletVersion":"v1.29.3"}}})"
        )
    );
    h.src->start();
    fakes::drain(h.ioc);

    ASSERT_EQ(h.of_kind("k8s.restart").size(), 1u);
    const signal& restart = *h.of_kind("k8s.restart")[0];
    EXPECT_EQ(label(restart, "deployment"), "web");
    EXPECT_EQ(label(restart, "reason"), "OOMKilled");
    ASSERT_EQ(h.of_kind("k8s.rollout").size(), 1u);
    EXPECT_EQ(label(*h.of_kind("k8s.rollout")[0], "image"), "web:2");
    EXPECT_EQ(label(*h.of_kind("k8s.rollout")[0], "previous_image"), "web:1");
    EXPECT_EQ(label(*h.of_kind("k8s.rollout")[0], "replicaset"), "web-5f6a");
    EXPECT_EQ(
        h.of_kind("k8s.rollout")[0]->at, *parse_rfc3339("2026-03-05T15:58:30Z")
    );  // its ReplicaSet's creation
    // The Warning about the pod: the pod's ReplicaSet (and node, when scheduled).
    EXPECT_EQ(label(*h.of_kind("k8s.warning")[0], "replicaset"), "web-7d9f");
    EXPECT_EQ(label(*h.of_kind("k8s.warning")[0], "deployment"), "web");
    ASSERT_EQ(h.of_kind("k8s.config_change").size(), 1u);
    EXPECT_EQ(label(*h.of_kind("k8s.config_change")[0], "object"), "cm/web-config");
    ASSERT_EQ(h.of_kind("k8s.warning").size(), 1u);
    EXPECT_EQ(label(*h.of_kind("k8s.warning")[0], "reason"), "Unhealthy");
    ASSERT_EQ(h.of_kind("k8s.version_change").size(), 1u);
    EXPECT_EQ(label(*h.of_kind("k8s.version_change")[0], "to"), "cordoned");
    EXPECT_EQ(label(*h.of_kind("k8s.version_change")[0], "node"), "n1");
    ASSERT_EQ(h.of_kind("k8s.node").size(), 1u);
    EXPECT_EQ(label(*h.of_kind("k8s.node")[0], "change"), "cordoned");
    EXPECT_TRUE(h.of_kind("k8s.node")[0]->seen);  // no taint to date it

    // Each watch resumed from its list's resourceVersion, with bookmarks, and selectors kept.
    ASSERT_FALSE(h.http.calls_with(pods + "?watch=1&allowWatchBookmarks=true&resourceVersion=10").empty());
    ASSERT_FALSE(h.http.calls_with(events + "?watch=1").empty());
    EXPECT_NE(
        h.http.calls_with(events + "?watch=1")[0].url.find("fieldSelector=type%3DWarning"), std::string::npos
    );
    for (const auto& c : h.http.calls) {
        EXPECT_EQ(c.headers.at("Authorization"), "Bearer token-1");
    }
    // Listing (failing), then healthy once every watch is up.
    ASSERT_GE(h.statuses.size(), 2u);
    EXPECT_EQ(h.statuses.front().state, source_state::failing);
    EXPECT_NE(h.statuses.front().error.find("listing the cluster"), std::string::npos);
    EXPECT_TRUE(h.statuses.front().pending);  // not a failure to report: /readyz waits for it
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
    EXPECT_TRUE(h.src->synced());
    EXPECT_EQ(h.src->objects(), 6u);  // pod, deployment, replicaset, configmap, event, node
}

TEST(kubernetes_source, started_after_a_rollout_it_tells_it_at_its_replicasets_creation) {
    harness h({"prod"}, false);
    // Revision 5 rolled out three hours ago; revision 4 is the one before. "api" is at
    // revision 3 with nothing to date it by: it is not told as if it had just happened.
    h.http.push(
        "LIST " + deployments, 200, list_of("20", {deployment("web:5", "5"), deployment("api:3", "3", "api")})
    );
    h.http.push(
        "LIST " + replicasets,
        200,
        list_of(
            "21",
            {replicaset("web-4444", "4", "2026-03-01T09:00:00Z", "web:4"),
             replicaset("web-5555", "5", "2026-03-05T13:00:00Z", "web:5")}
        )
    );
    h.src->start();
    fakes::drain(h.ioc);
    h.clock.advance(3s);  // past any wait for a ReplicaSet
    fakes::drain(h.ioc);
    ASSERT_EQ(h.of_kind("k8s.rollout").size(), 1u);
    const signal& s = *h.of_kind("k8s.rollout")[0];
    EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T13:00:00Z"));
    EXPECT_FALSE(s.seen);
    EXPECT_EQ(label(s, "deployment"), "web");
    EXPECT_EQ(label(s, "replicaset"), "web-5555");
    EXPECT_EQ(label(s, "previous_image"), "web:4");
    EXPECT_EQ(label(s, "image_changed"), "true");
}

TEST(kubernetes_source, a_rollout_waits_briefly_for_its_replicaset_then_is_told_without_it) {
    harness h({"prod"}, false);
    h.http.push("LIST " + deployments, 200, list_of("20", {deployment("web:1")}));
    h.http.push("WATCH " + deployments, 200, line("MODIFIED", deployment("web:2", "2")));
    h.src->start();
    fakes::drain(h.ioc);
    EXPECT_TRUE(h.of_kind("k8s.rollout").empty());  // its ReplicaSet may be on its way
    h.clock.advance(2s);
    fakes::drain(h.ioc);
    ASSERT_EQ(h.of_kind("k8s.rollout").size(), 1u);
    EXPECT_TRUE(h.of_kind("k8s.rollout")[0]->seen);  // nothing in the objects dates it
    EXPECT_EQ(label(*h.of_kind("k8s.rollout")[0], "previous_image"), "web:1");
}

TEST(kubernetes_source, replicasets_forbidden_are_said_once_and_rollouts_are_dated_from_the_deployment) {
    harness h({"prod"}, false);
    h.http.push(
        "LIST " + replicasets,
        403,
        R"({"kind":"Status","message":"replicasets.apps is forbidden: User \"system:serviceaccount:ops:runbookd\" cannot list resource \"replicasets\" in API group \"apps\"","reason":"Forbidden","code":403})"
    );
    h.http.push("LIST " + deployments, 200, list_of("20", {deployment("web:1")}));
    h.http.push("WATCH " + deployments, 200, line("MODIFIED", deployment("web:2", "2")));
    h.src->start();
    fakes::drain(h.ioc);
    ASSERT_EQ(h.of_kind("k8s.rollout").size(), 1u);  // no ReplicaSet to wait for
    EXPECT_EQ(h.logged("ReplicaSets forbidden; not watching them").size(), 1u);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
    EXPECT_TRUE(h.src->synced());
}

TEST(kubernetes_source, a_configmap_edit_is_told_for_each_deployment_that_mounts_it) {
    harness h({"prod"}, false);
    const std::string mounts = R"([{"name":"cfg","configMap":{"name":"web-config"}}])";
    h.http.push(
        "LIST " + deployments,
        200,
        list_of(
            "20",
            {deployment("web:1", "1", "web", mounts),
             deployment("cron:1", "1", "cron", mounts),
             deployment("api:1", "1", "api")}
        )
    );
    push_configmap_edit(
        h,
        R"(,"managedFields":[{"manager":"kubectl-edit","operation":"Update","time":"2026-03-05T15:50:00Z"}])"
    );
    // The ConfigMaps' watch may come before the Deployments are listed: list them first.
    h.src->start();
    fakes::drain(h.ioc);
    const auto changes = h.of_kind("k8s.config_change");
    std::vector<std::string> users;
    for (const auto* c : changes) {
        users.push_back(label(*c, "deployment"));
        EXPECT_EQ(c->at, *parse_rfc3339("2026-03-05T15:50:00Z"));
    }
    std::sort(users.begin(), users.end());
    EXPECT_EQ(users, (std::vector<std::string>{"cron", "web"}));
}

TEST(kubernetes_source, a_node_deleted_is_a_k8s_node_signal) {
    harness h({"prod"}, true);
    const std::string n2 =
        R"({"metadata":{"name":"n2","creationTimestamp":"2026-03-05T10:00:00Z","resourceVersion":"52"},"spec":{},"status":{"nodeInfo":{"kubeletVersion":"v1.29.3"}}})";
    h.http.push("LIST " + nodes, 200, list_of("50", {n2}));
    h.http.push("WATCH " + nodes, 200, line("DELETED", n2));
    h.src->start();
    fakes::drain(h.ioc);
    std::vector<std::string> changes;
    for (const auto* s : h.of_kind("k8s.node")) {
        changes.push_back(label(*s, "change") + " " + label(*s, "node"));
    }
    EXPECT_EQ(changes, (std::vector<std::string>{"created n2", "deleted n2"}));
    EXPECT_EQ(h.of_kind("k8s.node")[0]->at, *parse_rfc3339("2026-03-05T10:00:00Z"));
}

/// A watch that ends with its resourceVersion expired (in-stream ERROR 410): a relist follows.
const std::string expired =
    R"json({"type":"ERROR","object":{"kind":"Status","message":"too old resource version","reason":"Expired","code":410}})json"
    "\n";

/// A list of events with one Warning about pod web-7d9f-x; `more`: more of its fields.
std::string readiness_warning(std::string_view more = "") {
    return list_of(
        "40",
        {R"({"metadata":{"name":"e1","namespace":"prod"},"type":"Warning","reason":"Unhealthy",
            "message":"Readiness probe failed","involvedObject":{"kind":"Pod","name":"web-7d9f-x","namespace":"prod"},)" +
         std::string{more} + R"("count":5,"lastTimestamp":"2026-03-05T15:51:00Z"})"}
    );
}

/// A node of pool-4 on `version`, created at `created`.
std::string pool_node(std::string_view name, std::string_view version, std::string_view created) {
    return R"({"metadata":{"name":")" + std::string{name} + R"(","creationTimestamp":")" +
           std::string{created} +
           R"(","labels":{"cloud.google.com/gke-nodepool":"pool-4"}},"spec":{},"status":{"nodeInfo":{"kubeletVersion":")" +
           std::string{version} + R"("}}})";
}

TEST(
    kubernetes_source, started_after_an_upgrade_replaced_a_node_it_tells_the_version_change_at_its_creation
) {
    harness h({"prod"}, true);
    const auto listed = list_of(
        "50",
        {pool_node("pool-4-9f1c", "v1.30.2-gke.1023000", "2026-03-05T15:54:00Z"),
         pool_node("pool-4-2b7d", "v1.29.4-gke.1043000", "2025-08-17T10:00:00Z"),
         pool_node("pool-4-c81a", "v1.29.4-gke.1043000", "2025-08-17T10:00:00Z")}
    );
    h.http.push("LIST " + nodes, 200, listed);
    // ...and the same nodes listed again after an expiry: nothing new.
    h.http.push("WATCH " + nodes, 200, expired);
    h.http.push("LIST " + nodes, 200, listed);
    h.src->start();
    fakes::drain(h.ioc);
    ASSERT_EQ(h.http.calls_with(nodes + "?limit=").size(), 2u);
    ASSERT_EQ(h.of_kind("k8s.version_change").size(), 1u);
    const signal& s = *h.of_kind("k8s.version_change")[0];
    EXPECT_EQ(label(s, "node"), "pool-4-9f1c");
    EXPECT_EQ(label(s, "object"), "node/pool-4-9f1c");
    EXPECT_EQ(label(s, "from"), "v1.29.4-gke.1043000");
    EXPECT_EQ(label(s, "to"), "v1.30.2-gke.1023000");
    EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T15:54:00Z"));
    EXPECT_FALSE(s.seen);
    EXPECT_EQ(h.of_kind("k8s.node").size(), 3u);  // each one's creation
}

/// Pod web-7d9f-x on node `node`, its container restarted `restarts` times, the last one
/// ending at 15:48 (SIGTERM).
std::string restarted_pod(long long restarts, std::string_view node) {
    return R"({"metadata":{"name":"web-7d9f-x","namespace":"prod","resourceVersion":"5",
           "labels":{"pod-template-hash":"7d9f"},"ownerReferences":[{"kind":"ReplicaSet","name":"web-7d9f"}]},
           "spec":{"nodeName":")" +
           std::string{node} + R"("},
           "status":{"containerStatuses":[{"name":"app","restartCount":)" +
           std::to_string(restarts) +
           R"(,"state":{"running":{"startedAt":"2026-03-05T15:48:05Z"}},
           "lastState":{"terminated":{"exitCode":143,"reason":"Error","finishedAt":"2026-03-05T15:48:00Z"}}}]}})";
}

TEST(kubernetes_source, started_after_a_pod_restarted_it_tells_the_last_restart_once_at_its_time) {
    harness h({"prod"}, false);
    h.http.push("LIST " + pods, 200, list_of("10", {restarted_pod(2, "pool-4-9f1c")}));
    h.http.push("WATCH " + pods, 200, expired);
    h.http.push("LIST " + pods, 200, list_of("100", {restarted_pod(2, "pool-4-9f1c")}));
    h.src->start();
    fakes::drain(h.ioc);
    ASSERT_EQ(h.http.calls_with(pods + "?limit=").size(), 2u);
    ASSERT_EQ(h.of_kind("k8s.restart").size(), 1u);  // the relist does not tell it again
    const signal& s = *h.of_kind("k8s.restart")[0];
    EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T15:48:00Z"));
    EXPECT_FALSE(s.seen);
    EXPECT_EQ(s.value, 2.0);
    EXPECT_EQ(label(s, "exit_code"), "143");
    EXPECT_EQ(label(s, "node"), "pool-4-9f1c");
    EXPECT_EQ(label(s, "replicaset"), "web-7d9f");
    EXPECT_EQ(label(s, "deployment"), "web");
}

TEST(kubernetes_source, warnings_listed_before_their_pods_wait_for_them_to_name_their_workload) {
    harness h({"prod"}, false);
    h.http.delay("LIST " + pods, 1s);
    h.http.push("LIST " + pods, 200, list_of("10", {restarted_pod(0, "pool-4-9f1c")}));
    h.http.push("LIST " + events, 200, readiness_warning());
    h.src->start();
    fakes::drain(h.ioc);
    EXPECT_TRUE(h.of_kind("k8s.warning").empty());  // its pod is not known yet
    h.clock.advance(1s);
    fakes::drain(h.ioc);
    ASSERT_EQ(h.of_kind("k8s.warning").size(), 1u);
    const signal& s = *h.of_kind("k8s.warning")[0];
    EXPECT_EQ(label(s, "deployment"), "web");
    EXPECT_EQ(label(s, "replicaset"), "web-7d9f");
    EXPECT_EQ(label(s, "node"), "pool-4-9f1c");
    EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T15:51:00Z"));
}

TEST(kubernetes_source, warnings_listed_while_pods_cannot_be_are_told_without_them) {
    harness h({"prod"}, false);
    h.http.delay("LIST " + pods, 1s);
    h.http.push("LIST " + pods, 403, R"({"kind":"Status","message":"pods is forbidden","code":403})");
    h.http.push("LIST " + events, 200, readiness_warning(R"("source":{"host":"pool-4-9f1c"},)"));
    h.src->start();
    fakes::drain(h.ioc);
    h.clock.advance(1s);
    fakes::drain(h.ioc);
    ASSERT_EQ(h.of_kind("k8s.warning").size(), 1u);
    EXPECT_EQ(label(*h.of_kind("k8s.warning")[0], "deployment"), "");
    EXPECT_EQ(label(*h.of_kind("k8s.warning")[0], "node"), "pool-4-9f1c");
}

TEST(kubernetes_source, a_refresh_is_answered_at_once_when_synced_else_at_the_first_sync_or_deadline) {
    harness h({"prod"}, false);
    const net::transport_failure refused{make_failure(errc::upstream_unavailable, "refused", true), false};
    h.http.push("LIST " + pods, refused);
    h.src->start();
    fakes::drain(h.ioc);
    ASSERT_FALSE(h.src->synced());
    int answered = 0;
    h.src->refresh(loop::steady_clock::now() + 5s, [&] { ++answered; });
    int late = 0;
    h.src->refresh(loop::steady_clock::now() + 500ms, [&] { ++late; });
    fakes::drain(h.ioc);
    EXPECT_EQ(answered + late, 0);
    h.clock.advance(500ms);  // the second one's deadline
    fakes::drain(h.ioc);
    EXPECT_EQ(late, 1);
    h.clock.advance(500ms);  // the pods list is retried (within [0.5, 1] s) and succeeds: synced
    fakes::drain(h.ioc);
    ASSERT_TRUE(h.src->synced());
    EXPECT_EQ(answered, 1);
    EXPECT_EQ(late, 1);
    h.clock.advance(5s);  // the first one's deadline passes: not answered twice
    fakes::drain(h.ioc);
    EXPECT_EQ(answered, 1);
    int now_synced = 0;
    h.src->refresh(loop::steady_clock::now() + 5s, [&] { ++now_synced; });
    EXPECT_EQ(now_synced, 1);  // at once, inside the call
}

TEST(kubernetes_source, pages_through_a_list_with_its_continue_token) {
    harness h({"prod"}, false);
    h.http.push("LIST " + pods, 200, list_of("10", {pod(0)}, "tok+/="));
    h.http.push("LIST " + pods, 200, list_of("10", {}));
    h.src->start();
    fakes::drain(h.ioc);
    const auto lists = h.http.calls_with(pods + "?limit=");
    ASSERT_EQ(lists.size(), 2u);
    EXPECT_EQ(lists[0].url.find("continue="), std::string::npos);
    EXPECT_NE(lists[1].url.find("&continue=tok%2B%2F%3D"), std::string::npos);
    EXPECT_FALSE(h.http.calls_with(pods + "?watch=1&allowWatchBookmarks=true&resourceVersion=10&").empty());
    EXPECT_EQ(h.src->objects(), 1u);
}

TEST(kubernetes_source, an_expired_version_relists_and_reports_what_changed_meanwhile) {
    harness h({"prod"}, false);
    h.http.push("LIST " + pods, 200, list_of("10", {pod(0)}));
    // In-stream expiry (ERROR 410 Expired), then a relist that finds the pod restarted.
    h.http.push(
        "WATCH " + pods,
        200,
        R"json({"type":"ERROR","object":{"kind":"Status","status":"Failure","message":"too old resource version: 10 (99)","reason":"Expired","code":410}})json"
        "\n"
    );
    h.http.push("LIST " + pods, 200, list_of("100", {pod(2)}));
    // ...and a 410 on the watch request itself relists too.
    h.http.push("WATCH " + pods, 410, R"({"kind":"Status","reason":"Expired","code":410})");
    h.http.push("LIST " + pods, 200, list_of("200", {pod(2)}));
    h.src->start();
    fakes::drain(h.ioc);
    // A second expiry in a row relists after a backoff, not at once (no relist storm).
    EXPECT_EQ(h.http.calls_with(pods + "?limit=").size(), 2u);
    h.clock.advance(1s);
    fakes::drain(h.ioc);

    EXPECT_EQ(h.http.calls_with(pods + "?limit=").size(), 3u);
    ASSERT_EQ(h.of_kind("k8s.restart").size(), 1u);
    EXPECT_EQ(h.of_kind("k8s.restart")[0]->value, 2.0);  // two restarts while we were not watching
    EXPECT_FALSE(h.http.calls_with(pods + "?watch=1&allowWatchBookmarks=true&resourceVersion=200").empty());
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
}

TEST(kubernetes_source, bookmarks_move_the_resume_point) {
    harness h({"prod"}, false);
    h.http.push("LIST " + pods, 200, list_of("10", {}));
    h.http.push(
        "WATCH " + pods,
        200,
        R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"777"}}})"
        "\n"
    );
    h.src->start();
    fakes::drain(h.ioc);
    // The stream ended (the server's timeout) with a line read: resume at once from 777.
    EXPECT_FALSE(h.http.calls_with(pods + "?watch=1&allowWatchBookmarks=true&resourceVersion=777").empty());
}

TEST(kubernetes_source, an_unreachable_api_is_failing_until_it_answers_again) {
    harness h({"prod"}, false);
    const net::transport_failure refused{
        make_failure(errc::upstream_unavailable, "https://127.0.0.1:6443: connect: Connection refused", true),
        false};
    h.http.push("LIST " + pods, refused);
    h.http.push("LIST " + pods, refused);
    h.src->start();
    fakes::drain(h.ioc);
    ASSERT_FALSE(h.statuses.empty());
    EXPECT_EQ(h.statuses.back().state, source_state::failing);
    EXPECT_NE(
        h.statuses.back().error.find("pods: https://127.0.0.1:6443: connect: Connection refused"),
        std::string::npos
    );
    EXPECT_EQ(h.http.calls_with(pods + "?limit=").size(), 1u);  // waiting out the backoff

    // Backoff with jitter: the second attempt within [0.5, 1] s, the third within [1, 2] s.
    h.clock.advance(1s);
    fakes::drain(h.ioc);
    EXPECT_EQ(h.http.calls_with(pods + "?limit=").size(), 2u);
    EXPECT_EQ(h.statuses.back().state, source_state::failing);
    h.clock.advance(2s);
    fakes::drain(h.ioc);
    EXPECT_EQ(h.http.calls_with(pods + "?limit=").size(), 3u);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
}

TEST(kubernetes_source, a_401_rereads_the_rotated_token_and_files_are_reread_every_minute) {
    harness h({"prod"}, false);
    h.http.push(
        "LIST " + pods,
        401,
        R"({"kind":"Status","message":"Unauthorized","reason":"Unauthorized","code":401})"
    );
    h.src->start();
    fakes::drain(h.ioc);
    EXPECT_EQ(h.statuses.back().state, source_state::failing);
    EXPECT_NE(h.statuses.back().error.find("unauthorized (401)"), std::string::npos);
    h.write_token("token-2");
    h.clock.advance(1s);
    fakes::drain(h.ioc);
    const auto lists = h.http.calls_with(pods + "?limit=");
    ASSERT_EQ(lists.size(), 2u);
    EXPECT_EQ(lists[1].headers.at("Authorization"), "Bearer token-2");  // re-read at once after the 401
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);

    // Without a 401, a rotated file is picked up within a minute.
    h.write_token("token-3");
    h.clock.advance(61s);
    fakes::drain(h.ioc);
    EXPECT_EQ(h.http.calls.back().headers.at("Authorization"), "Bearer token-3");
}

TEST(kubernetes_source, a_forbidden_list_names_the_resource_and_the_missing_permission) {
    harness h({"prod"}, false);
    h.http.push(
        "LIST " + pods,
        403,
        R"({"kind":"Status","message":"pods is forbidden: User \"system:serviceaccount:ops:runbookd\" cannot list resource \"pods\"","reason":"Forbidden","code":403})"
    );
    h.src->start();
    fakes::drain(h.ioc);
    EXPECT_EQ(h.statuses.back().state, source_state::failing);
    EXPECT_NE(
        h.statuses.back().error.find("forbidden (403) to list/watch pods: pods is forbidden"),
        std::string::npos
    );
}

TEST(kubernetes_source, an_unreadable_watch_line_relists_instead_of_guessing) {
    harness h({"prod"}, false);
    h.http.push("LIST " + pods, 200, list_of("10", {}));
    h.http.push("WATCH " + pods, 200, "{not json\n");
    h.src->start();
    fakes::drain(h.ioc);
    EXPECT_EQ(h.http.calls_with(pods + "?limit=").size(), 2u);
}

TEST(kubernetes_source, the_control_plane_version_is_polled_and_a_change_is_a_signal) {
    harness h({"prod"}, false);
    h.http.push("GET /version", 200, R"({"gitVersion":"v1.29.4-gke.100"})");
    h.http.push("GET /version", 200, R"({"gitVersion":"v1.30.1-gke.200"})");
    h.src->start();
    fakes::drain(h.ioc);
    EXPECT_TRUE(h.of_kind("k8s.version_change").empty());
    // The poller's cadence: version_interval (1m), the first wait jittered by up to 10%.
    h.clock.advance(67s);
    fakes::drain(h.ioc);
    ASSERT_EQ(h.of_kind("k8s.version_change").size(), 1u);
    const signal& s = *h.of_kind("k8s.version_change")[0];
    EXPECT_EQ(label(s, "object"), "control-plane");
    EXPECT_EQ(label(s, "from"), "v1.29.4-gke.100");
    EXPECT_EQ(label(s, "to"), "v1.30.1-gke.200");
}

TEST(kubernetes_source, every_namespace_uses_the_cluster_wide_paths) {
    harness h({"*"}, true);
    h.src->start();
    fakes::drain(h.ioc);
    EXPECT_FALSE(h.http.calls_with("/api/v1/pods?limit=500").empty());
    EXPECT_FALSE(h.http.calls_with("/apis/apps/v1/deployments?limit=500").empty());
    EXPECT_TRUE(h.http.calls_with("/namespaces/").empty());
}

TEST(kubernetes_source, a_label_selector_picks_deployments_and_a_label_change_tells_the_owner) {
    harness h({"prod"}, false);
    const auto labelled = [](std::string_view name, std::string_view app) {
        return R"({"metadata":{"name":")" + std::string{name} +
               R"(","namespace":"prod","resourceVersion":"9"},
               "spec":{"template":{"metadata":{"labels":{"app":")" +
               std::string{app} + R"("}},"spec":{"containers":[]}}}})";
    };
    h.http.push(
        "LIST " + deployments, 200, list_of("20", {labelled("web-a", "web"), labelled("api", "api")})
    );
    h.http.push(
        "WATCH " + deployments,
        200,
        line("ADDED", labelled("web-b", "web")) + line("MODIFIED", labelled("api", "web"))
    );
    int moved = 0;
    h.src->on_workloads_changed([&] { ++moved; });
    h.src->start();
    fakes::drain(h.ioc);
    const auto selector = *parse_selector("app=web");
    EXPECT_EQ(
        h.src->deployments_matching("prod", selector),
        (std::vector<std::string>{"prod/api", "prod/web-a", "prod/web-b"})
    );
    EXPECT_EQ(h.src->deployments_matching("other", selector), std::vector<std::string>{});
    EXPECT_EQ(h.src->deployments_matching("pr*", *parse_selector("app!=web")), std::vector<std::string>{});
    EXPECT_EQ(moved, 3);  // the list, the new deployment, the relabelled one
}

// --- cert-manager Certificates ---------------------------------------------------------------

std::string certificate(std::string_view name, std::string_view rv, std::string_view not_after, bool ready) {
    return R"({"metadata":{"name":")" + std::string{name} + R"(","namespace":"prod","resourceVersion":")" +
           std::string{rv} + R"(","creationTimestamp":"2026-01-01T00:00:00Z"},
           "spec":{"secretName":")" +
           std::string{name} + R"(-tls","dnsNames":["shop.example.com","www.shop.example.com"],
           "issuerRef":{"name":"letsencrypt","kind":"ClusterIssuer","group":"cert-manager.io"}},
           "status":{"notAfter":")" +
           std::string{not_after} +
           R"(","renewalTime":"2026-03-01T00:00:00Z","conditions":[{"type":"Ready","status":")" +
           (ready ? "True" : "False") + R"(","reason":")" + (ready ? "Ready" : "Expired") +
           R"(","message":"m","lastTransitionTime":"2026-03-05T15:00:00Z"}]}})";
}

const std::string crd_absent =
    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404})";

TEST(kubernetes_source, certificates_are_listed_and_watched_and_each_change_is_a_cert_expiry) {
    harness h({"prod"}, false);
    h.http.push(
        "LIST " + certificates, 200, list_of("60", {certificate("shop", "60", "2026-06-01T00:00:00Z", true)})
    );
    h.http.push(
        "WATCH " + certificates,
        200,
        line("MODIFIED", certificate("shop", "61", "2026-06-01T00:00:00Z", true)) +  // no change that counts
            line("MODIFIED", certificate("shop", "62", "2026-03-05T15:00:00Z", false)) +
            line("ADDED", certificate("api", "63", "2026-09-01T00:00:00Z", true))
    );
    h.src->start();
    fakes::drain(h.ioc);

    const auto found = h.of_kind("cert.expiry");
    ASSERT_EQ(found.size(), 3u);  // the listed one, its expiry, the new one
    EXPECT_EQ(found[0]->subject, "prod/shop");
    EXPECT_EQ(found[0]->source, "kubernetes");
    EXPECT_EQ(label(*found[0], "outcome"), "ok");
    EXPECT_EQ(label(*found[0], "host"), "shop.example.com");
    EXPECT_EQ(label(*found[1], "outcome"), "expired");
    EXPECT_EQ(label(*found[1], "error"), "Ready False: Expired: m");
    EXPECT_EQ(found[1]->value, -3600.0);  // notAfter 15:00, seen at 16:00
    EXPECT_EQ(found[1]->at, *parse_rfc3339("2026-03-05T15:00:00Z"));
    EXPECT_EQ(found[2]->subject, "prod/api");
    EXPECT_FALSE(
        h.http.calls_with(certificates + "?watch=1&allowWatchBookmarks=true&resourceVersion=60").empty()
    );
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
    EXPECT_TRUE(h.src->synced());
    EXPECT_EQ(h.src->objects(), 2u);
    EXPECT_TRUE(h.logged("cert-manager Certificates").empty());
}

TEST(kubernetes_source, without_the_certificate_crd_it_says_so_once_and_stays_healthy) {
    harness h({"prod", "shop"}, false);
    const std::string other = "/apis/cert-manager.io/v1/namespaces/shop/certificates";
    h.http.push("LIST " + certificates, 404, crd_absent);
    h.http.push("LIST " + certificates, 404, crd_absent);
    for (int i = 0; i < 10; ++i) {
        h.http.push("LIST " + other, 404, crd_absent);
    }
    h.src->start();
    fakes::drain(h.ioc);

    EXPECT_EQ(h.statuses.back().state, source_state::healthy) << h.statuses.back().error;
    EXPECT_TRUE(h.src->synced());
    const auto said = h.logged("cert-manager Certificates not found; not watching them");
    ASSERT_EQ(said.size(), 1u);  // once for the source, not once per namespace
    EXPECT_NE(said[0].find(R"("level":"info")"), std::string::npos) << said[0];
    EXPECT_TRUE(h.logged("kubernetes source failing").empty());
    EXPECT_TRUE(h.http.calls_with(certificates + "?watch=1").empty());
    EXPECT_EQ(h.http.calls_with(certificates + "?limit=").size(), 1u);

    // No retry loop: nothing for minutes, then a quiet look every 10 minutes.
    h.clock.advance(9min);
    fakes::drain(h.ioc);
    EXPECT_EQ(h.http.calls_with(certificates + "?limit=").size(), 1u);
    h.clock.advance(1min);
    fakes::drain(h.ioc);
    EXPECT_EQ(h.http.calls_with(certificates + "?limit=").size(), 2u);
    EXPECT_EQ(h.logged("cert-manager Certificates not found").size(), 1u);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);

    // cert-manager installed later: found at the next look, then watched.
    h.http.push(
        "LIST " + certificates, 200, list_of("70", {certificate("shop", "70", "2026-06-01T00:00:00Z", true)})
    );
    h.clock.advance(10min);
    fakes::drain(h.ioc);
    EXPECT_EQ(h.http.calls_with(certificates + "?limit=").size(), 3u);
    EXPECT_EQ(h.logged("cert-manager Certificates found; watching them").size(), 1u);
    EXPECT_FALSE(h.http.calls_with(certificates + "?watch=1").empty());
    EXPECT_EQ(h.of_kind("cert.expiry").size(), 1u);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
}

TEST(kubernetes_source, certificates_forbidden_are_said_once_with_the_verb_and_the_source_stays_healthy) {
    harness h({"prod"}, false);
    const std::string forbidden =
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"certificates.cert-manager.io is forbidden: User \"system:serviceaccount:runbookd:runbookd\" cannot list resource \"certificates\" in API group \"cert-manager.io\" in the namespace \"prod\"","reason":"Forbidden","details":{"group":"cert-manager.io","kind":"certificates"},"code":403})";
    for (int i = 0; i < 3; ++i) {
        h.http.push("LIST " + certificates, 403, forbidden);
    }
    h.src->start();
    fakes::drain(h.ioc);
    for (int i = 0; i < 3; ++i) {
        h.clock.advance(10min);
        fakes::drain(h.ioc);
    }
    EXPECT_EQ(h.http.calls_with(certificates + "?limit=").size(), 4u);  // at start, then every 10 min
    const auto said = h.logged("cert-manager Certificates forbidden; not watching them");
    ASSERT_EQ(said.size(), 1u);
    EXPECT_NE(said[0].find(R"("level":"warn")"), std::string::npos) << said[0];
    EXPECT_NE(said[0].find(R"("verb":"list")"), std::string::npos) << said[0];
    EXPECT_NE(said[0].find(R"("resource":"certificates.cert-manager.io")"), std::string::npos) << said[0];
    EXPECT_NE(said[0].find("cannot list resource"), std::string::npos) << said[0];
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
    EXPECT_TRUE(h.src->synced());

    // list granted but not watch: said once for the watch, no list/watch loop.
    harness w({"prod"}, false);
    for (int i = 0; i < 3; ++i) {
        w.http.push(
            "WATCH " + certificates,
            403,
            R"({"kind":"Status","status":"Failure","message":"cannot watch resource \"certificates\"","reason":"Forbidden","code":403})"
        );
    }
    w.src->start();
    fakes::drain(w.ioc);
    EXPECT_EQ(w.http.calls_with(certificates + "?watch=1").size(), 1u);
    EXPECT_EQ(w.http.calls_with(certificates + "?limit=").size(), 1u);
    const auto watch_said = w.logged("cert-manager Certificates forbidden");
    ASSERT_EQ(watch_said.size(), 1u);
    EXPECT_NE(watch_said[0].find(R"("verb":"watch")"), std::string::npos) << watch_said[0];
    EXPECT_EQ(w.statuses.back().state, source_state::healthy);
}

TEST(kubernetes_source, other_failures_of_certificates_fail_the_source_like_any_resource) {
    harness h({"prod"}, false);
    h.http.push(
        "LIST " + certificates,
        500,
        R"({"kind":"Status","message":"etcdserver: request timed out","code":500})"
    );
    h.src->start();
    fakes::drain(h.ioc);
    EXPECT_EQ(h.statuses.back().state, source_state::failing);
    EXPECT_NE(h.statuses.back().error.find("certificates: HTTP 500"), std::string::npos)
        << h.statuses.back().error;
    h.clock.advance(1s);
    fakes::drain(h.ioc);
    EXPECT_EQ(h.statuses.back().state, source_state::healthy);
}

}  // namespace
}  // namespace runbookd::sources::kubernetes
