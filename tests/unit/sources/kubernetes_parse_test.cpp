// The pure half of the Kubernetes source, on objects shaped as in api-facts §4.
#include "sources/kubernetes/parse.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

namespace runbookd::sources::kubernetes {
namespace {

const wall_time now = *parse_rfc3339("2026-03-05T16:00:00Z");

std::string label(const signal& s, std::string_view name) {
    const std::string* v = s.find(name);
    return v == nullptr ? "<absent>" : *v;
}

/// A Warning event's signal, through the event reader.
result<std::optional<signal>> read_warning(std::string_view json, wall_time at) {
    auto e = parse_object<event_state>(json);
    if (!e) {
        return e.error();
    }
    return warning_signal(*e, nullptr, at);
}

std::string pod_json(
    long long restarts, std::string_view waiting, std::string_view last_reason = "OOMKilled"
) {
    return R"({"kind":"Pod","metadata":{"name":"bwdserver-deployment-7d9f5c6b8-x2x4q","namespace":"darklang",
      "labels":{"app":"bwdserver","pod-template-hash":"7d9f5c6b8"},
      "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"bwdserver-deployment-7d9f5c6b8","uid":"u1"}]},
      "spec":{"nodeName":"gke-prod-pool-1-aaaa","containers":[{"name":"bwdserver-ctr","image":"gcr.io/dark/bwd:4f2a"}]},
      "status":{"phase":"Running","containerStatuses":[{"name":"bwdserver-ctr","ready":false,"restartCount":)" +
           std::to_string(restarts) + R"(,"state":{"waiting":{"reason":")" + std::string{waiting} +
           R"(","message":"back-off 5m0s restarting failed container"}},
         "lastState":{"terminated":{"exitCode":137,"signal":0,"reason":")" +
           std::string{last_reason} +
           R"(","message":"","startedAt":"2026-03-05T15:58:00Z","finishedAt":"2026-03-05T15:59:30Z"}}}]}})";
}

std::string deployment_json(
    std::string_view image, std::string_view env, long long replicas, std::string_view reason
) {
    return R"({"kind":"Deployment","metadata":{"name":"bwdserver-deployment","namespace":"darklang","generation":7,
      "annotations":{"deployment.kubernetes.io/revision":"42"},
      "managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update","time":"2026-03-05T15:50:00Z"},
                       {"manager":"argocd","operation":"Update","time":"2026-03-05T15:55:00Z"}]},
      "spec":{"replicas":)" +
           std::to_string(replicas) + R"(,"progressDeadlineSeconds":600,
        "template":{"spec":{"containers":[{"name":"bwdserver-ctr","image":")" +
           std::string{image} + R"(","env":[{"name":"MODE","value":")" + std::string{env} + R"("}]}]}}},
      "status":{"observedGeneration":7,"replicas":3,"updatedReplicas":3,"readyReplicas":2,"availableReplicas":2,
        "unavailableReplicas":1,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"},
        {"type":"Progressing","status":"False","reason":")" +
           std::string{reason} + R"("}]}})";
}

TEST(kubernetes_watch, reads_every_event_type) {
    auto added = parse_event<pod_state>(
        R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"p","resourceVersion":"101"}}})"
    );
    ASSERT_TRUE(added);
    EXPECT_EQ(added->type, event_type::added);
    EXPECT_EQ(added->resource_version, "101");
    ASSERT_TRUE(added->object.has_value());
    EXPECT_EQ(added->object->name, "p");

    auto bookmark = parse_event<pod_state>(
        R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12746"}}})"
    );
    ASSERT_TRUE(bookmark);
    EXPECT_EQ(bookmark->type, event_type::bookmark);
    EXPECT_EQ(bookmark->resource_version, "12746");

    auto expired = parse_event<pod_state>(
        R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 123 (456)","reason":"Expired","code":410}})json"
    );
    ASSERT_TRUE(expired);
    EXPECT_EQ(expired->type, event_type::error);
    EXPECT_TRUE(expired->expired);
    EXPECT_EQ(expired->error, "too old resource version: 123 (456)");

    auto gone =
        parse_event<pod_state>(R"({"type":"ERROR","object":{"kind":"Status","reason":"Gone","message":"x"}})"
        );
    ASSERT_TRUE(gone);
    EXPECT_TRUE(gone->expired);  // servers up to 1.17 said Gone
    auto other = parse_event<pod_state>(
        R"({"type":"ERROR","object":{"kind":"Status","code":500,"reason":"InternalError"}})"
    );
    ASSERT_TRUE(other);
    EXPECT_FALSE(other->expired);
}

TEST(kubernetes_watch, malformed_input_is_an_error_never_a_crash) {
    for (std::string_view bad :
         {"", "{", "[]", "null", "{\"type\":\"SIDEWAYS\",\"object\":{}}", "\xff\xfe"}) {
        const auto r = parse_event<pod_state>(bad);
        EXPECT_FALSE(r.has_value()) << bad;
    }
    for (std::string_view bad : {"", "{}", "{\"metadata\":{}}", "not json", "[1,2]"}) {
        EXPECT_FALSE(parse_page<pod_state>(bad).has_value()) << bad;
        EXPECT_FALSE(parse_object<pod_state>(bad).has_value()) << bad;
        EXPECT_FALSE(parse_object<deployment_state>(bad).has_value()) << bad;
        EXPECT_FALSE(parse_object<configmap_state>(bad).has_value()) << bad;
        EXPECT_FALSE(parse_object<node_state>(bad).has_value()) << bad;
        EXPECT_FALSE(parse_object<event_state>(bad).has_value()) << bad;
        EXPECT_FALSE(parse_version(bad).has_value()) << bad;
    }
}

TEST(kubernetes_list, reads_the_page_and_its_continue_token) {
    const auto page = parse_page<pod_state>(
        R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"10245","continue":"tok"},"items":[{"metadata":{"name":"a"}},{"metadata":{}},{"metadata":{"name":"b"}}]})"
    );
    ASSERT_TRUE(page);
    EXPECT_EQ(page->resource_version, "10245");
    EXPECT_EQ(page->continue_token, "tok");
    ASSERT_EQ(page->items.size(), 2u);
    EXPECT_EQ(page->items[1].name, "b");
    EXPECT_EQ(page->skipped, 1u);  // the nameless item
}

TEST(kubernetes_pod, finds_its_deployment_and_containers) {
    const auto p = parse_object<pod_state>(pod_json(7, "CrashLoopBackOff"));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->ns, "darklang");
    EXPECT_EQ(p->deployment, "bwdserver-deployment");
    ASSERT_EQ(p->containers.size(), 1u);
    EXPECT_EQ(p->containers[0].restarts, 7);
    EXPECT_EQ(p->containers[0].waiting_reason, "CrashLoopBackOff");
    EXPECT_EQ(p->containers[0].last_exit_code, 137);
    EXPECT_EQ(p->containers[0].last_finished_at, parse_rfc3339("2026-03-05T15:59:30Z"));
}

TEST(kubernetes_pod, a_restart_and_a_new_crash_loop_become_signals) {
    const auto before = *parse_object<pod_state>(pod_json(6, "ContainerCreating"));
    const auto after = *parse_object<pod_state>(pod_json(7, "CrashLoopBackOff"));
    const auto signals = diff_pod(&before, after, now);
    ASSERT_EQ(signals.size(), 2u);
    const auto& restart = signals[0];
    EXPECT_EQ(restart.kind, "k8s.restart");
    EXPECT_EQ(restart.at, *parse_rfc3339("2026-03-05T15:59:30Z"));  // when it died, not when we saw it
    EXPECT_EQ(label(restart, "deployment"), "bwdserver-deployment");
    EXPECT_EQ(label(restart, "container"), "bwdserver-ctr");
    EXPECT_EQ(label(restart, "reason"), "OOMKilled");
    EXPECT_EQ(label(restart, "exit_code"), "137");
    EXPECT_EQ(restart.value, 1.0);
    EXPECT_EQ(restart.source, "kubernetes");
    const auto& waiting = signals[1];
    EXPECT_EQ(waiting.kind, "k8s.waiting");
    EXPECT_EQ(label(waiting, "reason"), "CrashLoopBackOff");
    EXPECT_EQ(waiting.at, *parse_rfc3339("2026-03-05T15:59:30Z"));  // back-off since its last exit
    EXPECT_FALSE(waiting.seen);
    // What ties them to their causes: the ReplicaSet (a rollout) and the node (a drain).
    for (const auto& s : signals) {
        EXPECT_EQ(label(s, "replicaset"), "bwdserver-deployment-7d9f5c6b8");
        EXPECT_EQ(label(s, "node"), "gke-prod-pool-1-aaaa");
    }

    // The same state again: nothing new.
    EXPECT_TRUE(diff_pod(&after, after, now).empty());
    // Starting up is not trouble.
    EXPECT_TRUE(diff_pod(nullptr, *parse_object<pod_state>(pod_json(0, "ContainerCreating")), now).empty());
}

TEST(kubernetes_pod, first_seen_after_restarts_it_tells_the_last_one_at_its_time) {
    // A daemon started after the crash loop began: its current trouble, and its restarts
    // told once, at the last termination (what the world dates), not at the time it looked.
    const auto seen = *parse_object<pod_state>(pod_json(7, "CrashLoopBackOff"));
    const auto first = diff_pod(nullptr, seen, now + std::chrono::minutes{3});
    ASSERT_EQ(first.size(), 2u);
    const signal& restart = first[0];
    EXPECT_EQ(restart.kind, "k8s.restart");
    EXPECT_EQ(restart.at, *parse_rfc3339("2026-03-05T15:59:30Z"));
    EXPECT_FALSE(restart.seen);
    EXPECT_EQ(restart.value, 7.0);  // every restart it had
    EXPECT_EQ(label(restart, "reason"), "OOMKilled");
    EXPECT_EQ(label(restart, "exit_code"), "137");
    EXPECT_EQ(label(restart, "node"), "gke-prod-pool-1-aaaa");
    EXPECT_EQ(label(restart, "replicaset"), "bwdserver-deployment-7d9f5c6b8");
    EXPECT_EQ(first[1].kind, "k8s.waiting");
    // Seen again later (a relist that does not know it): the same fact, at the same time.
    const auto again = diff_pod(nullptr, seen, now + std::chrono::minutes{30});
    ASSERT_EQ(again.size(), 2u);
    EXPECT_EQ(again[0].at, restart.at);
    EXPECT_EQ(again[0].values, restart.values);
    // Restarts the world does not date (no lastState.terminated) are not told as new.
    auto undated = seen;
    undated.containers[0].last_finished_at.reset();
    const auto quiet = diff_pod(nullptr, undated, now);
    EXPECT_TRUE(std::none_of(quiet.begin(), quiet.end(), [](const signal& s) {
        return s.kind == "k8s.restart";
    }));
}

/// A Deployment as the API server returns it mid-rollout or after: managedFields with a
/// status subresource entry (the controller's), the Progressing condition with both times.
std::string rolled_json(
    std::string_view image,
    long long generation,
    long long observed,
    std::string_view reason,
    std::string_view rs = "bwdserver-deployment-5f6a7b8c9"
) {
    const std::string message =
        reason == "NewReplicaSetCreated" ? "Created new replica set \"" + std::string{rs} + "\""
        : reason == "FoundNewReplicaSet" ? "Found new replica set \"" + std::string{rs} + "\""
        : reason == "NewReplicaSetAvailable"
            ? "ReplicaSet \"" + std::string{rs} + "\" has successfully progressed."
            : "ReplicaSet \"" + std::string{rs} + "\" is progressing.";
    return R"({"kind":"Deployment","metadata":{"name":"bwdserver-deployment","namespace":"darklang","generation":)" +
           std::to_string(generation) + R"(,
      "annotations":{"deployment.kubernetes.io/revision":"42"},
      "managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"apps/v1","time":"2026-03-05T12:59:58Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}},
                       {"manager":"kube-controller-manager","operation":"Update","apiVersion":"apps/v1","time":"2026-03-05T13:04:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{}},"subresource":"status"}]},
      "spec":{"replicas":3,"template":{"metadata":{"labels":{"app":"bwdserver"}},"spec":{"containers":[{"name":"bwdserver-ctr","image":")" +
           std::string{image} + R"("}]}}},
      "status":{"observedGeneration":)" +
           std::to_string(observed) + R"(,"replicas":3,"updatedReplicas":3,"availableReplicas":3,
        "conditions":[{"type":"Available","status":"True","lastUpdateTime":"2026-03-01T10:00:00Z","lastTransitionTime":"2026-03-01T10:00:00Z","reason":"MinimumReplicasAvailable"},
        {"type":"Progressing","status":")" +
           std::string{reason == "ProgressDeadlineExceeded" ? "False" : "True"} +
           R"(","lastUpdateTime":"2026-03-05T13:00:05Z","lastTransitionTime":"2026-03-05T13:10:00Z","reason":")" +
           std::string{reason} + R"(","message":")" +
           [&] {
               std::string m;
               for (char c : message) {
                   m += c == '"' ? std::string{"\\\""} : std::string(1, c);
               }
               return m;
           }() +
           R"("}]}})";
}

/// A ReplicaSet as the deployment controller makes it; `history`: the revision-history
/// annotation a rollback leaves on a ReplicaSet it brings back.
std::string replicaset_json(
    std::string_view name,
    std::string_view revision,
    std::string_view created,
    std::string_view image,
    std::string_view history = ""
) {
    return R"({"kind":"ReplicaSet","apiVersion":"apps/v1","metadata":{"name":")" + std::string{name} +
           R"(","namespace":"darklang","creationTimestamp":")" + std::string{created} +
           R"(","labels":{"app":"bwdserver","pod-template-hash":"5f6a7b8c9"},
      "annotations":{"deployment.kubernetes.io/desired-replicas":"3","deployment.kubernetes.io/max-replicas":"4","deployment.kubernetes.io/revision":")" +
           std::string{revision} + R"(")" +
           (history.empty()
                ? std::string{}
                : R"(,"deployment.kubernetes.io/revision-history":")" + std::string{history} + R"(")") +
           R"(},
      "ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"bwdserver-deployment","uid":"d1","controller":true,"blockOwnerDeletion":true}]},
      "spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"bwdserver-ctr","image":")" +
           std::string{image} + R"("}]}}},"status":{"replicas":3,"observedGeneration":1}})";
}

/// A Deployment whose last told state ran `before`, now in `json`.
deployment_state rolled(const std::string& json, std::string_view before = "gcr.io/dark/bwd:9c1e") {
    auto d = *parse_object<deployment_state>(json);
    d.told_template = "an older template";
    d.told_images = {container_image{"bwdserver-ctr", std::string{before}}};
    return d;
}

TEST(kubernetes_rollout, dated_at_its_new_replicaset_creation) {
    const auto d = rolled(rolled_json("gcr.io/dark/bwd:4f2a", 7, 7, "NewReplicaSetAvailable"));
    ASSERT_TRUE(rollout_due(d));
    const auto rs = *parse_object<replicaset_state>(replicaset_json(
        "bwdserver-deployment-5f6a7b8c9", "42", "2026-03-05T13:00:00Z", "gcr.io/dark/bwd:4f2a"
    ));
    EXPECT_EQ(rs.deployment, "bwdserver-deployment");
    EXPECT_EQ(rs.revision, "42");
    EXPECT_FALSE(rs.reused);
    const signal s = rollout_signal(d, &rs, now);
    EXPECT_EQ(s.kind, "k8s.rollout");
    EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T13:00:00Z"));  // three hours before `now`, not `now`
    EXPECT_FALSE(s.seen);
    EXPECT_EQ(label(s, "replicaset"), "bwdserver-deployment-5f6a7b8c9");
    EXPECT_EQ(label(s, "image"), "gcr.io/dark/bwd:4f2a");
    EXPECT_EQ(label(s, "previous_image"), "gcr.io/dark/bwd:9c1e");
    EXPECT_EQ(label(s, "image_changed"), "true");
    EXPECT_EQ(label(s, "revision"), "42");
    EXPECT_EQ(label(s, "namespace"), "darklang");
    EXPECT_EQ(label(s, "deployment"), "bwdserver-deployment");
}

TEST(kubernetes_rollout, a_rollback_to_an_old_replicaset_is_dated_by_the_progressing_condition) {
    const auto d = rolled(
        rolled_json("gcr.io/dark/bwd:9c1e", 8, 8, "FoundNewReplicaSet", "bwdserver-deployment-77c4d"),
        "gcr.io/dark/bwd:4f2a"
    );
    const auto rs = *parse_object<replicaset_state>(replicaset_json(
        "bwdserver-deployment-77c4d", "42", "2026-02-20T09:00:00Z", "gcr.io/dark/bwd:9c1e", "40"
    ));
    EXPECT_TRUE(rs.reused);
    const signal s = rollout_signal(d, &rs, now);
    EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T13:00:05Z"));  // lastUpdateTime, not the old creation
    EXPECT_EQ(label(s, "replicaset"), "bwdserver-deployment-77c4d");
    EXPECT_EQ(label(s, "previous_image"), "gcr.io/dark/bwd:4f2a");
}

TEST(kubernetes_rollout, without_its_replicaset_the_progressing_condition_names_and_dates_it) {
    for (const std::string_view reason :
         {"NewReplicaSetCreated", "ReplicaSetUpdated", "FoundNewReplicaSet"}) {
        const auto d = rolled(rolled_json("gcr.io/dark/bwd:4f2a", 7, 7, reason));
        const signal s = rollout_signal(d, nullptr, now);
        EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T13:00:05Z")) << reason;
        EXPECT_EQ(label(s, "replicaset"), "bwdserver-deployment-5f6a7b8c9") << reason;
        EXPECT_FALSE(s.seen);
    }
}

TEST(kubernetes_rollout, a_finished_one_without_its_replicaset_is_dated_by_the_last_spec_write) {
    // NewReplicaSetAvailable's lastUpdateTime is when it finished; the status subresource's
    // managedFields entry (13:04, the controller) is not a spec change: the user's 12:59:58 is.
    const auto d = rolled(rolled_json("gcr.io/dark/bwd:4f2a", 7, 7, "NewReplicaSetAvailable"));
    EXPECT_EQ(d.changed_by, "kubectl-client-side-apply");
    const signal s = rollout_signal(d, nullptr, now);
    EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T12:59:58Z"));
    EXPECT_FALSE(s.seen);
}

TEST(kubernetes_rollout, with_no_time_from_the_world_it_is_seen) {
    auto d = rolled(
        R"({"metadata":{"name":"web","namespace":"prod","generation":2,"annotations":{"deployment.kubernetes.io/revision":"2"}},
        "spec":{"template":{"spec":{"containers":[{"name":"bwdserver-ctr","image":"web:2"}]}}},"status":{"observedGeneration":2}})"
    );
    const signal s = rollout_signal(d, nullptr, now);
    EXPECT_EQ(s.at, now);
    EXPECT_TRUE(s.seen);
    EXPECT_EQ(label(s, "replicaset"), "");
}

TEST(kubernetes_rollout, due_once_the_controller_has_acted_and_only_once) {
    auto d = rolled(rolled_json("gcr.io/dark/bwd:4f2a", 8, 7, "NewReplicaSetAvailable"));
    EXPECT_FALSE(rollout_due(d));  // the spec is newer than the status: no new ReplicaSet yet
    d.observed_generation = 8;
    EXPECT_TRUE(rollout_due(d));
    d.told_template = d.template_hash;
    EXPECT_FALSE(rollout_due(d));
    // A ReplicaSet's creation in the future of a skewed clock is not after `now`.
    auto late = *parse_object<replicaset_state>(replicaset_json("x", "42", "2026-03-05T16:00:09Z", "i"));
    d.told_template.clear();
    EXPECT_EQ(rollout_signal(d, &late, now).at, now);
}

TEST(kubernetes_deployment, a_template_change_without_a_new_image_is_a_config_change) {
    const auto before =
        *parse_object<deployment_state>(deployment_json("img:1", "a", 3, "NewReplicaSetAvailable"));
    const auto after =
        *parse_object<deployment_state>(deployment_json("img:1", "b", 3, "NewReplicaSetAvailable"));
    const auto signals = diff_deployment(&before, after, now);
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(signals[0].kind, "k8s.config_change");
    EXPECT_EQ(label(signals[0], "object"), "deploy/bwdserver-deployment");
    EXPECT_EQ(label(signals[0], "changed_by"), "argocd");              // the newest managedFields entry
    EXPECT_EQ(signals[0].at, *parse_rfc3339("2026-03-05T15:55:00Z"));  // ...and its time
    EXPECT_FALSE(signals[0].seen);
}

TEST(kubernetes_deployment, a_stuck_rollout_is_dated_when_its_progressing_condition_turned_false) {
    const auto going = *parse_object<deployment_state>(rolled_json("img:2", 7, 7, "ReplicaSetUpdated"));
    const auto stuck =
        *parse_object<deployment_state>(rolled_json("img:2", 7, 7, "ProgressDeadlineExceeded"));
    const auto signals = diff_deployment(&going, stuck, now);
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(signals[0].kind, "k8s.rollout_stuck");
    EXPECT_EQ(signals[0].at, *parse_rfc3339("2026-03-05T13:10:00Z"));
    EXPECT_FALSE(signals[0].seen);
}

TEST(kubernetes_deployment, finds_the_configmaps_its_pod_template_uses) {
    const auto d = parse_object<deployment_state>(
        R"({"metadata":{"name":"web","namespace":"prod"},"spec":{"template":{"spec":{
        "initContainers":[{"name":"migrate","image":"m","envFrom":[{"configMapRef":{"name":"db-settings"}}]}],
        "containers":[{"name":"app","image":"a",
           "envFrom":[{"configMapRef":{"name":"app-env"}},{"secretRef":{"name":"app-secrets"}}],
           "env":[{"name":"MODE","valueFrom":{"configMapKeyRef":{"name":"flags","key":"mode"}}},
                  {"name":"POD","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}},
                  {"name":"PLAIN","value":"x"}]}],
        "volumes":[{"name":"cfg","configMap":{"name":"app-files","defaultMode":420}},
                   {"name":"tok","projected":{"sources":[{"serviceAccountToken":{"path":"token"}},
                      {"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},
                      {"configMap":{"name":"flags"}}]}},
                   {"name":"sec","secret":{"secretName":"tls"}}]}}}})"
    );
    ASSERT_TRUE(d);
    const std::vector<std::string> want{"app-env", "app-files", "db-settings", "flags", "kube-root-ca.crt"};
    EXPECT_EQ(d->configmaps, want);
}

TEST(kubernetes_deployment, scaling_is_not_a_change_and_a_stuck_rollout_is_told_once) {
    const auto three =
        *parse_object<deployment_state>(deployment_json("img:1", "a", 3, "NewReplicaSetAvailable"));
    const auto five =
        *parse_object<deployment_state>(deployment_json("img:1", "a", 5, "NewReplicaSetAvailable"));
    EXPECT_TRUE(diff_deployment(&three, five, now).empty());
    const auto stuck =
        *parse_object<deployment_state>(deployment_json("img:1", "a", 5, "ProgressDeadlineExceeded"));
    const auto signals = diff_deployment(&five, stuck, now);
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(signals[0].kind, "k8s.rollout_stuck");
    EXPECT_EQ(label(signals[0], "unavailable"), "1");
    EXPECT_TRUE(diff_deployment(&stuck, stuck, now).empty());
    EXPECT_EQ(diff_deployment(nullptr, stuck, now).size(), 1u);
    EXPECT_TRUE(diff_deployment(nullptr, five, now).empty());
}

TEST(kubernetes_deployment, rollout_status_follows_kubectl) {
    auto d = *parse_object<deployment_state>(deployment_json("img:1", "a", 3, "NewReplicaSetAvailable"));
    EXPECT_EQ(rollout_incomplete(d), "2 of 3 updated replicas available");
    d.available_replicas = 3;
    EXPECT_EQ(rollout_incomplete(d), std::nullopt);
    d.generation = 8;
    EXPECT_EQ(rollout_incomplete(d), "waiting for the deployment spec update to be observed");
    d.generation = 7;
    d.total_replicas = 4;
    EXPECT_EQ(rollout_incomplete(d), "1 old replicas pending termination");
    d.progressing_reason = "ProgressDeadlineExceeded";
    EXPECT_EQ(rollout_incomplete(d), "ProgressDeadlineExceeded");
}

TEST(kubernetes_configmap, only_a_data_change_counts) {
    const auto cm = [](std::string_view value, std::string_view label_value) {
        return *parse_object<configmap_state>(
            R"({"kind":"ConfigMap","metadata":{"name":"bwd-config","namespace":"darklang","labels":{"l":")" +
            std::string{label_value} +
            R"("},"managedFields":[{"manager":"kubectl-edit","operation":"Update","time":"2026-03-05T15:57:00Z"}]},"data":{"MODE":")" +
            std::string{value} + R"("}})"
        );
    };
    EXPECT_TRUE(diff_configmap(nullptr, cm("a", "x"), {}, now).empty());
    const auto original = cm("a", "x");
    EXPECT_TRUE(diff_configmap(&original, cm("a", "y"), {}, now).empty());  // a label is not data
    const auto signals = diff_configmap(&original, cm("b", "x"), {}, now);
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(label(signals[0], "deployment"), "");  // used by no Deployment we hold
    EXPECT_EQ(signals[0].kind, "k8s.config_change");
    EXPECT_EQ(label(signals[0], "object"), "cm/bwd-config");
    EXPECT_EQ(label(signals[0], "object_kind"), "ConfigMap");
    EXPECT_EQ(label(signals[0], "changed_by"), "kubectl-edit");
    EXPECT_EQ(signals[0].at, *parse_rfc3339("2026-03-05T15:57:00Z"));

    // One per Deployment whose pods use it, so each service's rules find it.
    const auto used = diff_configmap(&original, cm("b", "x"), {"bwdserver-deployment", "cron"}, now);
    ASSERT_EQ(used.size(), 2u);
    EXPECT_EQ(label(used[0], "deployment"), "bwdserver-deployment");
    EXPECT_EQ(label(used[1], "deployment"), "cron");
    EXPECT_EQ(used[1].at, *parse_rfc3339("2026-03-05T15:57:00Z"));
    // No managedFields time: seen, not dated.
    const auto unknown =
        *parse_object<configmap_state>(R"({"metadata":{"name":"c","namespace":"d"},"data":{"a":"2"}})");
    const auto seen = diff_configmap(&original, unknown, {}, now);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_TRUE(seen[0].seen);
    EXPECT_EQ(seen[0].at, now);
}

TEST(kubernetes_configmap, found_edited_by_the_first_list_its_last_edit_is_told_at_its_time) {
    const auto listed = [](std::string_view created, std::string_view edited) {
        return *parse_object<configmap_state>(
            R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"bwd-config","namespace":"darklang","creationTimestamp":")" +
            std::string{created} +
            R"(","managedFields":[{"manager":"kubectl-create","operation":"Update","apiVersion":"v1","time":")" +
            std::string{created} +
            R"(","fieldsType":"FieldsV1","fieldsV1":{"f:data":{}}},{"manager":"kubectl-edit","operation":"Update","apiVersion":"v1","time":")" +
            std::string{edited} +
            R"(","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:MODE":{}}}}]},"data":{"MODE":"b"}})"
        );
    };
    const auto edited = configmap_listed(
        listed("2026-03-01T10:00:00Z", "2026-03-05T15:50:00Z"), {"bwdserver-deployment"}, now
    );
    ASSERT_EQ(edited.size(), 1u);
    EXPECT_EQ(edited[0].at, *parse_rfc3339("2026-03-05T15:50:00Z"));
    EXPECT_EQ(label(edited[0], "deployment"), "bwdserver-deployment");
    EXPECT_EQ(label(edited[0], "changed_by"), "kubectl-edit");
    // Never written after its creation: nothing to tell.
    EXPECT_TRUE(configmap_listed(listed("2026-03-05T15:50:00Z", "2026-03-05T15:50:00Z"), {}, now).empty());
}

TEST(kubernetes_events, warnings_become_signals_and_normal_events_do_not) {
    const auto warning = read_warning(
        R"({"metadata":{"name":"e1","namespace":"darklang"},"type":"Warning","reason":"BackOff","message":"Back-off restarting failed container",
          "involvedObject":{"kind":"Pod","namespace":"darklang","name":"bwdserver-x"},"firstTimestamp":"2026-03-05T15:50:00Z",
          "lastTimestamp":"2026-03-05T15:58:00Z","count":5})",
        now
    );
    ASSERT_TRUE(warning);
    ASSERT_TRUE(warning->has_value());
    const signal& s = **warning;
    EXPECT_EQ(s.kind, "k8s.warning");
    EXPECT_EQ(label(s, "object"), "Pod/bwdserver-x");
    EXPECT_EQ(label(s, "reason"), "BackOff");
    EXPECT_EQ(s.value, 5.0);
    EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T15:58:00Z"));

    // Written through events.k8s.io: the legacy timestamps are null.
    const auto newer = read_warning(
        R"({"metadata":{"name":"e2","namespace":"darklang"},"type":"Warning","reason":"FailedScheduling","message":"0/3 nodes are available","involvedObject":{"kind":"Pod","name":"p"},
          "firstTimestamp":null,"lastTimestamp":null,"eventTime":"2026-03-05T15:40:00.000000Z","series":{"count":9,"lastObservedTime":"2026-03-05T15:59:00.000000Z"}})",
        now
    );
    ASSERT_TRUE(newer && newer->has_value());
    EXPECT_EQ((*newer)->at, *parse_rfc3339("2026-03-05T15:59:00Z"));
    EXPECT_EQ((*newer)->value, 9.0);

    const auto normal = read_warning(R"({"metadata":{"name":"e3"},"type":"Normal","reason":"Pulled"})", now);
    ASSERT_TRUE(normal);
    EXPECT_FALSE(normal->has_value());
}

TEST(kubernetes_events, a_pod_warning_names_the_pods_replicaset_and_node) {
    auto e = *parse_object<event_state>(
        R"({"metadata":{"name":"p.17a","namespace":"darklang"},"type":"Warning","reason":"Evicted","message":"The node was low on resource: memory.",
          "involvedObject":{"kind":"Pod","namespace":"darklang","name":"bwdserver-deployment-7d9f5c6b8-x2x4q"},
          "source":{"component":"kubelet","host":"gke-prod-pool-1-bbbb"},"lastTimestamp":"2026-03-05T15:58:00Z","count":1})"
    );
    const auto pod = *parse_object<pod_state>(pod_json(0, "ContainerCreating"));
    const auto s = warning_signal(e, &pod, now);
    ASSERT_TRUE(s);
    EXPECT_EQ(label(*s, "deployment"), "bwdserver-deployment");
    EXPECT_EQ(label(*s, "replicaset"), "bwdserver-deployment-7d9f5c6b8");
    EXPECT_EQ(label(*s, "node"), "gke-prod-pool-1-aaaa");  // where the pod runs
    // The pod gone (an evicted pod deleted): the kubelet's host is the node.
    const auto alone = warning_signal(e, nullptr, now);
    EXPECT_EQ(label(*alone, "node"), "gke-prod-pool-1-bbbb");
    EXPECT_EQ(label(*alone, "replicaset"), "");
    // No time at all: seen.
    e.last.reset();
    EXPECT_TRUE(warning_signal(e, nullptr, now)->seen);
}

TEST(kubernetes_pod, a_container_that_never_ran_waits_since_its_pod_stopped_being_ready) {
    const auto p = *parse_object<pod_state>(R"({"metadata":{"name":"web-5f6a-q","namespace":"prod",
        "ownerReferences":[{"kind":"ReplicaSet","name":"web-5f6a"}]},"spec":{"nodeName":"n2"},
      "status":{"conditions":[{"type":"Ready","status":"False","lastTransitionTime":"2026-03-05T15:40:00Z"},
          {"type":"ContainersReady","status":"False","lastTransitionTime":"2026-03-05T15:41:00Z","reason":"ContainersNotReady"}],
        "containerStatuses":[{"name":"app","restartCount":0,"state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image"}},"lastState":{}}]}})"
    );
    const auto signals = diff_pod(nullptr, p, now);
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(signals[0].at, *parse_rfc3339("2026-03-05T15:41:00Z"));
    EXPECT_EQ(label(signals[0], "replicaset"), "web-5f6a");
    EXPECT_EQ(label(signals[0], "node"), "n2");
}

/// A GKE node as the API server returns it; `extra_spec` and `ready` vary.
std::string node_json(
    std::string_view version,
    std::string_view extra_spec = "",
    std::string_view ready = "True",
    std::string_view extra_metadata = ""
) {
    return R"({"kind":"Node","apiVersion":"v1","metadata":{"name":"gke-prod-pool-1-aaaa","creationTimestamp":"2026-03-05T14:20:00Z",)" +
           std::string{extra_metadata} + R"("labels":{"cloud.google.com/gke-nodepool":"default-pool"}},
      "spec":{"podCIDR":"10.4.1.0/24","providerID":"gce://darklang-prod/us-central1-a/gke-prod-pool-1-aaaa")" +
           std::string{extra_spec} + R"(},
      "status":{"conditions":[{"type":"MemoryPressure","status":"False","lastTransitionTime":"2026-03-05T14:21:00Z","reason":"KubeletHasSufficientMemory"},
          {"type":"Ready","status":")" +
           std::string{ready} +
           R"(","lastHeartbeatTime":"2026-03-05T15:59:40Z","lastTransitionTime":"2026-03-05T15:30:00Z","reason":"KubeletReady"}],
        "nodeInfo":{"kubeletVersion":")" +
           std::string{version} + R"(","kubeProxyVersion":")" + std::string{version} + R"("}}})";
}

const std::string cordon_spec =
    R"(,"unschedulable":true,"taints":[{"key":"node.kubernetes.io/unschedulable","effect":"NoSchedule","timeAdded":"2026-03-05T15:10:00Z"}])";

std::vector<const signal*> of_kind(const std::vector<signal>& v, std::string_view kind) {
    std::vector<const signal*> out;
    for (const auto& s : v) {
        if (s.kind == kind) {
            out.push_back(&s);
        }
    }
    return out;
}

TEST(kubernetes_node, a_cordon_is_dated_by_its_taint) {
    const auto before = *parse_object<node_state>(node_json("v1.29.3-gke.100"));
    const auto after = *parse_object<node_state>(node_json("v1.29.3-gke.100", cordon_spec));
    const auto signals = diff_node(before, after, now);
    ASSERT_EQ(signals.size(), 2u);
    for (const auto& s : signals) {
        EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T15:10:00Z")) << s.kind;
        EXPECT_FALSE(s.seen);
        EXPECT_EQ(label(s, "node"), "gke-prod-pool-1-aaaa");
    }
    EXPECT_EQ(label(*of_kind(signals, "k8s.version_change")[0], "to"), "cordoned");
    EXPECT_EQ(label(*of_kind(signals, "k8s.node")[0], "change"), "cordoned");
    // `kubectl cordon` before the taint is added: seen.
    auto untainted = after;
    untainted.cordoned_at.reset();
    EXPECT_TRUE(diff_node(before, untainted, now)[0].seen);
}

TEST(kubernetes_node, not_ready_is_dated_by_its_condition_and_a_version_change_is_seen) {
    const auto ready = *parse_object<node_state>(node_json("v1.29.3-gke.100"));
    const auto down = *parse_object<node_state>(node_json("v1.29.3-gke.100", "", "Unknown"));
    const auto signals = diff_node(ready, down, now);
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_EQ(signals[0].kind, "k8s.node");
    EXPECT_EQ(label(signals[0], "change"), "not_ready");
    EXPECT_EQ(label(signals[0], "from"), "True");
    EXPECT_EQ(label(signals[0], "to"), "Unknown");
    EXPECT_EQ(signals[0].at, *parse_rfc3339("2026-03-05T15:30:00Z"));

    const auto upgraded = *parse_object<node_state>(node_json("v1.30.1-gke.200"));
    const auto changed = diff_node(ready, upgraded, now);
    ASSERT_EQ(changed.size(), 2u);
    for (const auto& s : changed) {
        EXPECT_TRUE(s.seen) << s.kind;  // a node keeps no time of its kubelet's version
        EXPECT_EQ(s.at, now);
        EXPECT_EQ(label(s, "from"), "v1.29.3-gke.100");
        EXPECT_EQ(label(s, "to"), "v1.30.1-gke.200");
    }
    EXPECT_EQ(label(*of_kind(changed, "k8s.node")[0], "change"), "version");
    EXPECT_TRUE(version_change("v1.29.4", "v1.30.1", now).seen);
}

TEST(kubernetes_node, a_new_node_is_dated_by_its_creation_and_a_deleted_one_by_its_deletion) {
    const auto fresh = *parse_object<node_state>(node_json("v1.30.1-gke.200"));
    // Joined while we watch, on a version the others do not run: replaced by an upgrade.
    const auto joined = node_added(fresh, "v1.29.3-gke.100", false, now);
    ASSERT_EQ(joined.size(), 2u);
    for (const auto& s : joined) {
        EXPECT_EQ(s.at, *parse_rfc3339("2026-03-05T14:20:00Z")) << s.kind;
    }
    EXPECT_EQ(label(*of_kind(joined, "k8s.node")[0], "change"), "created");
    EXPECT_EQ(label(*of_kind(joined, "k8s.version_change")[0], "from"), "v1.29.3-gke.100");
    // Found by the first list: its creation (dated), and a cordon only when its taint dates it.
    const auto listed = *parse_object<node_state>(node_json("v1.30.1-gke.200", cordon_spec));
    const auto first = node_added(listed, "", true, now);
    ASSERT_EQ(first.size(), 3u);
    for (const auto& s : first) {
        EXPECT_FALSE(s.seen) << s.kind;
    }
    auto untainted = listed;
    untainted.cordoned_at.reset();
    EXPECT_EQ(node_added(untainted, "", true, now).size(), 1u);

    // Found by the first list on a version the rest of its pool does not run yet: the
    // version change, at its creation.
    const auto listed_new = node_added(fresh, "v1.29.3-gke.100", true, now);
    ASSERT_EQ(of_kind(listed_new, "k8s.version_change").size(), 1u);
    const signal& changed = *of_kind(listed_new, "k8s.version_change")[0];
    EXPECT_EQ(changed.at, *parse_rfc3339("2026-03-05T14:20:00Z"));
    EXPECT_FALSE(changed.seen);
    EXPECT_EQ(label(changed, "node"), "gke-prod-pool-1-aaaa");
    EXPECT_EQ(label(changed, "from"), "v1.29.3-gke.100");
    EXPECT_EQ(label(changed, "to"), "v1.30.1-gke.200");
    auto undated = fresh;
    undated.created.reset();
    EXPECT_TRUE(node_added(undated, "v1.29.3-gke.100", true, now).empty());  // nothing dates it

    const auto deleting = *parse_object<node_state>(
        node_json("v1.29.3-gke.100", "", "True", R"("deletionTimestamp":"2026-03-05T15:50:00Z",)")
    );
    const signal deleted = node_deleted(deleting, now);
    EXPECT_EQ(deleted.kind, "k8s.node");
    EXPECT_EQ(label(deleted, "change"), "deleted");
    EXPECT_EQ(label(deleted, "node"), "gke-prod-pool-1-aaaa");
    EXPECT_EQ(deleted.at, *parse_rfc3339("2026-03-05T15:50:00Z"));
    EXPECT_TRUE(node_deleted(fresh, now).seen);
}

/// A node of `pool` on `version`, created at `created`.
node_state pool_node(std::string name, std::string pool, std::string version, std::string_view created) {
    node_state n;
    n.name = std::move(name);
    n.pool = std::move(pool);
    n.kubelet_version = std::move(version);
    n.created = parse_rfc3339(created);
    return n;
}

TEST(kubernetes_node, reads_its_node_pool) {
    EXPECT_EQ(parse_object<node_state>(node_json("v1.29.3-gke.100"))->pool, "default-pool");
}

TEST(kubernetes_node, a_node_newer_than_its_pool_on_another_version_replaced_one_of_them) {
    const auto upgraded = pool_node("pool-4-9f1c", "pool-4", "v1.30.2", "2026-03-05T15:54:00Z");
    const auto old_a = pool_node("pool-4-2b7d", "pool-4", "v1.29.4", "2025-08-17T10:00:00Z");
    const auto old_b = pool_node("pool-4-c81a", "pool-4", "v1.29.4", "2025-08-17T10:00:00Z");
    // Another pool, on its own version: not compared.
    const auto other = pool_node("pool-9-aaaa", "pool-9", "v1.28.9", "2025-01-01T00:00:00Z");
    const std::vector<const node_state*> nodes{&upgraded, &old_a, &old_b, &other};
    EXPECT_EQ(pool_version(upgraded, nodes), "v1.29.4");
    EXPECT_EQ(pool_version(old_a, nodes), "");  // the pool's own version
    EXPECT_EQ(pool_version(other, nodes), "");  // alone in its pool
    // Half the pool upgraded: a second replaced node still is; an old node did not change
    // to the old version (it is older than the new ones).
    const auto second = pool_node("pool-4-77aa", "pool-4", "v1.30.2", "2026-03-05T15:57:00Z");
    const std::vector<const node_state*> half{&upgraded, &second, &old_a, &old_b};
    EXPECT_EQ(pool_version(second, half), "v1.29.4");
    const std::vector<const node_state*> most{&upgraded, &second, &old_a};
    EXPECT_EQ(pool_version(old_a, most), "");
    // Every node agrees: nothing to tell.
    const auto same = pool_node("pool-4-9f1c", "pool-4", "v1.29.4", "2026-03-05T15:54:00Z");
    EXPECT_EQ(pool_version(same, {&same, &old_a, &old_b}), "");
    // No pool labels: all nodes are one pool.
    const auto bare_new = pool_node("n1", "", "v1.30.2", "2026-03-05T15:54:00Z");
    const auto bare_old = pool_node("n2", "", "v1.29.4", "2025-08-17T10:00:00Z");
    EXPECT_EQ(pool_version(bare_new, {&bare_new, &bare_old}), "v1.29.4");
    // Undated: no version change to date.
    auto undated = upgraded;
    undated.created.reset();
    EXPECT_EQ(pool_version(undated, nodes), "");
}

TEST(kubernetes_version, reads_git_version) {
    EXPECT_EQ(
        parse_version(
            R"({"major":"1","minor":"29","gitVersion":"v1.29.4-gke.1043002","platform":"linux/amd64"})"
        )
            .value(),
        "v1.29.4-gke.1043002"
    );
}

TEST(kubernetes_selector, parses_equality_selectors_and_matches_pod_labels) {
    const auto s = parse_selector("app=bwdserver,tier!=batch,app.kubernetes.io/part-of==dark");
    ASSERT_TRUE(s.has_value());
    ASSERT_EQ(s->size(), 3u);
    EXPECT_EQ((*s)[1].key, "tier");
    EXPECT_FALSE((*s)[1].equal);
    EXPECT_EQ((*s)[2].key, "app.kubernetes.io/part-of");
    const std::vector<std::pair<std::string, std::string>> web{
        {"app", "bwdserver"}, {"app.kubernetes.io/part-of", "dark"}, {"tier", "web"}};
    const std::vector<std::pair<std::string, std::string>> batch{
        {"app", "bwdserver"}, {"app.kubernetes.io/part-of", "dark"}, {"tier", "batch"}};
    const std::vector<std::pair<std::string, std::string>> untiered{
        {"app", "bwdserver"}, {"app.kubernetes.io/part-of", "dark"}};
    EXPECT_TRUE(selects(*s, web));
    EXPECT_FALSE(selects(*s, batch));
    EXPECT_TRUE(selects(*s, untiered));  // != holds for a missing key, as in Kubernetes
    for (std::string_view bad : {"", "app", "=x", "app=", "app=x,", ",app=x", "app=x y", "app in (a,b)"}) {
        EXPECT_FALSE(parse_selector(bad).has_value()) << bad;
    }
}

TEST(kubernetes_deployment, keeps_its_pod_template_labels_sorted) {
    const auto d = parse_object<deployment_state>(
        R"({"metadata":{"name":"web","namespace":"prod"},"spec":{"template":{"metadata":{"labels":{"tier":"web","app":"bwd"}},"spec":{}}}})"
    );
    ASSERT_TRUE(d);
    const std::vector<std::pair<std::string, std::string>> want{{"app", "bwd"}, {"tier", "web"}};
    EXPECT_EQ(d->pod_labels, want);
}

// --- cert-manager Certificates (cert-manager.io/v1) -------------------------------------------

/// A Certificate as cert-manager writes it; `status` is the whole status member ("" for none).
std::string certificate_json(std::string_view status, std::string_view name = "darklang-tls") {
    std::string out = R"({"apiVersion":"cert-manager.io/v1","kind":"Certificate","metadata":{"name":")" +
                      std::string{name} +
                      R"(","namespace":"darklang","creationTimestamp":"2026-01-05T10:00:00Z","generation":1,
          "resourceVersion":"4711","uid":"7f0c2a56-1c3e-4b9d-9a57-2f3c2b7d9e10"},
        "spec":{"secretName":"darklang-tls-secret","dnsNames":["darklang.com","www.darklang.com"],
          "issuerRef":{"name":"letsencrypt-prod","kind":"ClusterIssuer","group":"cert-manager.io"},
          "privateKey":{"algorithm":"ECDSA","rotationPolicy":"Always"},"usages":["digital signature","key encipherment"]})";
    if (!status.empty()) {
        out += R"(,"status":)" + std::string{status};
    }
    return out + "}";
}

const std::string ready_status =
    R"({"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"Certificate is up to date and has not expired",
        "lastTransitionTime":"2026-01-05T10:01:00Z","observedGeneration":1}],
      "notAfter":"2026-04-05T09:01:00Z","notBefore":"2026-01-05T09:01:00Z","renewalTime":"2026-03-06T09:01:00Z","revision":1})";

const std::string expired_status =
    R"({"conditions":[{"type":"Issuing","status":"False","reason":"Failed","message":"order failed","lastTransitionTime":"2026-03-05T12:00:00Z"},
        {"type":"Ready","status":"False","reason":"Expired","message":"Certificate expired on Thu, 05 Mar 2026 15:00:00 UTC",
        "lastTransitionTime":"2026-03-05T15:00:05Z","observedGeneration":1}],
      "notAfter":"2026-03-05T15:00:00Z","notBefore":"2025-12-05T15:00:00Z","renewalTime":"2026-02-03T15:00:00Z","revision":1})";

certificate_state certificate(std::string_view status) {
    auto c = parse_object<certificate_state>(certificate_json(status));
    EXPECT_TRUE(c) << (c ? "" : c.error().detail);
    return c ? *c : certificate_state{};
}

TEST(kubernetes_certificate, reads_spec_status_and_the_ready_condition) {
    const auto c = certificate(ready_status);
    EXPECT_EQ(c.ns, "darklang");
    EXPECT_EQ(c.name, "darklang-tls");
    EXPECT_EQ(c.secret_name, "darklang-tls-secret");
    EXPECT_EQ(c.dns_names, (std::vector<std::string>{"darklang.com", "www.darklang.com"}));
    EXPECT_EQ(c.issuer, "ClusterIssuer/letsencrypt-prod");
    EXPECT_EQ(c.created, parse_rfc3339("2026-01-05T10:00:00Z"));
    EXPECT_EQ(c.not_after, parse_rfc3339("2026-04-05T09:01:00Z"));
    EXPECT_EQ(c.bad_not_after, "");
    EXPECT_EQ(c.renewal_time, parse_rfc3339("2026-03-06T09:01:00Z"));
    EXPECT_EQ(c.ready, "True");
    EXPECT_EQ(c.ready_reason, "Ready");
    EXPECT_EQ(c.ready_message, "Certificate is up to date and has not expired");
    EXPECT_EQ(c.ready_since, parse_rfc3339("2026-01-05T10:01:00Z"));

    // The Ready condition is found among others, whatever its place.
    const auto e = certificate(expired_status);
    EXPECT_EQ(e.ready, "False");
    EXPECT_EQ(e.ready_reason, "Expired");
    EXPECT_EQ(e.ready_since, parse_rfc3339("2026-03-05T15:00:05Z"));
}

TEST(kubernetes_certificate, a_ready_certificate_is_an_ok_cert_expiry_with_every_label) {
    const auto s = diff_certificate(nullptr, certificate(ready_status), now);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->kind, "cert.expiry");
    EXPECT_EQ(s->source, "kubernetes");
    EXPECT_EQ(s->subject, "darklang/darklang-tls");
    EXPECT_EQ(s->at, *parse_rfc3339("2026-01-05T10:01:00Z"));  // when it last became Ready
    const auto left = *parse_rfc3339("2026-04-05T09:01:00Z") - now;
    ASSERT_TRUE(s->value.has_value());
    EXPECT_DOUBLE_EQ(*s->value, std::chrono::duration<double>(left).count());  // measured from now
    EXPECT_EQ(label(*s, "host"), "darklang.com");
    EXPECT_EQ(label(*s, "port"), "");
    EXPECT_EQ(label(*s, "outcome"), "ok");
    EXPECT_EQ(label(*s, "error"), "");
    EXPECT_EQ(label(*s, "not_after"), "2026-04-05T09:01:00Z");
    EXPECT_EQ(label(*s, "which"), "leaf");
    EXPECT_EQ(label(*s, "cert_subject"), "darklang/darklang-tls");
    EXPECT_EQ(label(*s, "sans"), "darklang.com,www.darklang.com");
    EXPECT_EQ(label(*s, "services"), "");
    EXPECT_EQ(label(*s, "expires_soon"), "false");
    // Every label of the kind is one the catalogue lists (set() refuses others).
    ASSERT_NE(s->info, nullptr);
    EXPECT_EQ(s->values.size(), s->info->labels.size());
}

TEST(kubernetes_certificate, an_expired_certificate_says_so_with_the_ready_reason) {
    const auto s = diff_certificate(nullptr, certificate(expired_status), now);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(label(*s, "outcome"), "expired");
    EXPECT_EQ(
        label(*s, "error"), "Ready False: Expired: Certificate expired on Thu, 05 Mar 2026 15:00:00 UTC"
    );
    EXPECT_EQ(s->value, -3600.0);  // an hour past notAfter at 16:00
    EXPECT_EQ(s->at, *parse_rfc3339("2026-03-05T15:00:05Z"));
    EXPECT_EQ(label(*s, "not_after"), "2026-03-05T15:00:00Z");

    // Past notAfter while Ready still says True (cert-manager not running): expired all the same.
    auto stale = certificate(ready_status);
    stale.not_after = *parse_rfc3339("2026-03-05T15:59:00Z");
    const auto t = certificate_signal(stale, now);
    EXPECT_EQ(label(t, "outcome"), "expired");
    EXPECT_EQ(label(t, "error"), "certificate has expired");
    EXPECT_EQ(t.value, -60.0);
}

TEST(kubernetes_certificate, without_a_status_it_is_not_ready_and_has_no_value) {
    const auto c = certificate("");
    EXPECT_FALSE(c.not_after.has_value());
    EXPECT_EQ(c.ready, "");
    const auto s = certificate_signal(c, now);
    EXPECT_EQ(label(s, "outcome"), "not_ready");
    EXPECT_EQ(label(s, "error"), "no Ready condition yet");
    EXPECT_FALSE(s.value.has_value());
    EXPECT_EQ(label(s, "not_after"), "");
    EXPECT_EQ(s.at, *parse_rfc3339("2026-01-05T10:00:00Z"));  // its creationTimestamp
    EXPECT_EQ(label(s, "host"), "darklang.com");

    // Nothing at all to date it by: dated when seen.
    const auto bare = parse_object<certificate_state>(R"({"metadata":{"name":"x","namespace":"n"}})");
    ASSERT_TRUE(bare);
    const auto b = certificate_signal(*bare, now);
    EXPECT_EQ(b.at, now);
    EXPECT_TRUE(b.seen);
    EXPECT_EQ(label(b, "host"), "");
    EXPECT_EQ(label(b, "sans"), "");
    EXPECT_EQ(label(b, "issuer"), "");
}

TEST(kubernetes_certificate, without_a_ready_condition_it_is_not_ready_yet) {
    const auto c = certificate(
        R"({"conditions":[{"type":"Issuing","status":"True","reason":"DoesNotExist","message":"Issuing certificate as Secret does not exist",
            "lastTransitionTime":"2026-03-05T15:59:30Z"}]})"
    );
    EXPECT_EQ(c.ready, "");
    EXPECT_FALSE(c.ready_since.has_value());
    const auto s = certificate_signal(c, now);
    EXPECT_EQ(label(s, "outcome"), "not_ready");
    EXPECT_EQ(label(s, "error"), "no Ready condition yet");
    EXPECT_EQ(s.at, *parse_rfc3339("2026-01-05T10:00:00Z"));  // no Ready transition: created

    // Ready Unknown (cert-manager's first reconcile) names its state too.
    const auto u = certificate(
        R"({"conditions":[{"type":"Ready","status":"Unknown","reason":"","message":"","lastTransitionTime":"2026-03-05T15:59:00Z"}]})"
    );
    EXPECT_EQ(label(certificate_signal(u, now), "error"), "Ready Unknown");
}

TEST(kubernetes_certificate, an_unreadable_not_after_is_no_value_and_is_said) {
    const auto c = certificate(
        R"({"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"ok","lastTransitionTime":"2026-03-01T00:00:00Z"}],
            "notAfter":"next tuesday","renewalTime":17})"
    );
    EXPECT_FALSE(c.not_after.has_value());
    EXPECT_EQ(c.bad_not_after, "next tuesday");
    EXPECT_FALSE(c.renewal_time.has_value());
    const auto s = certificate_signal(c, now);
    EXPECT_FALSE(s.value.has_value());
    EXPECT_EQ(label(s, "not_after"), "");
    EXPECT_EQ(label(s, "outcome"), "ok");  // Ready says so; we cannot say otherwise
    EXPECT_EQ(label(s, "error"), "status.notAfter is not RFC 3339: 'next tuesday'");

    // Wrong types are absent values, never a crash; a nameless one is an error.
    const auto odd = parse_object<certificate_state>(
        R"({"metadata":{"name":"odd","namespace":"n"},"spec":{"dnsNames":"a.example","issuerRef":[]},"status":{"notAfter":3,"conditions":{}}})"
    );
    ASSERT_TRUE(odd);
    EXPECT_TRUE(odd->dns_names.empty());
    EXPECT_FALSE(odd->not_after.has_value());
    EXPECT_FALSE(parse_object<certificate_state>(R"({"metadata":{"namespace":"n"}})"));
}

TEST(kubernetes_certificate, told_when_new_or_when_not_after_or_ready_change) {
    const auto before = certificate(ready_status);
    EXPECT_TRUE(diff_certificate(nullptr, before, now).has_value());
    EXPECT_FALSE(diff_certificate(&before, before, now).has_value());

    auto reworded = before;  // only the message or renewalTime: not a change
    reworded.ready_message = "Certificate is up to date";
    reworded.renewal_time = *parse_rfc3339("2026-03-07T00:00:00Z");
    EXPECT_FALSE(diff_certificate(&before, reworded, now).has_value());

    auto renewed = before;
    renewed.not_after = *parse_rfc3339("2026-06-03T16:00:00Z");
    const auto r = diff_certificate(&before, renewed, now);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(label(*r, "not_after"), "2026-06-03T16:00:00Z");

    auto failing = before;
    failing.ready = "False";
    failing.ready_reason = "Failed";
    failing.ready_message = "The certificate request has failed to complete and will be retried";
    failing.ready_since = *parse_rfc3339("2026-03-05T15:30:00Z");
    const auto f = diff_certificate(&before, failing, now);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(label(*f, "outcome"), "not_ready");
    EXPECT_EQ(f->at, *parse_rfc3339("2026-03-05T15:30:00Z"));

    auto future = before;  // a clock ahead of ours: never dated after now
    future.ready_since = now + std::chrono::minutes{5};
    EXPECT_EQ(certificate_signal(future, now).at, now);
}

TEST(kubernetes_certificate, reads_watch_lines_and_list_pages) {
    std::string line = R"({"type":"MODIFIED","object":)" + certificate_json(expired_status) + "}";
    std::replace(line.begin(), line.end(), '\n', ' ');
    const auto ev = parse_event<certificate_state>(line);
    ASSERT_TRUE(ev) << ev.error().detail;
    EXPECT_EQ(ev->type, event_type::modified);
    EXPECT_EQ(ev->resource_version, "4711");
    ASSERT_TRUE(ev->object.has_value());
    EXPECT_EQ(ev->object->ready_reason, "Expired");

    const auto page = parse_page<certificate_state>(
        R"({"apiVersion":"cert-manager.io/v1","kind":"CertificateList","metadata":{"resourceVersion":"4800"},"items":[)" +
        certificate_json(ready_status) + R"(,{"metadata":{}}]})"
    );
    ASSERT_TRUE(page);
    EXPECT_EQ(page->resource_version, "4800");
    ASSERT_EQ(page->items.size(), 1u);
    EXPECT_EQ(page->skipped, 1u);
}

}  // namespace
}  // namespace runbookd::sources::kubernetes
