#include "sources/kubernetes/source.hpp"

#include "core/rank.hpp"
#include "loop/clock.hpp"
#include "net/url.hpp"
#include "sources/poller.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <malloc.h>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

namespace runbookd::sources::kubernetes {
namespace {

namespace asio = boost::asio;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
/// A list page of 500 pods with managedFields is a few MiB; a line is one object.
constexpr std::size_t max_page_bytes = 64 * 1024 * 1024;
constexpr std::size_t max_line_bytes = 16 * 1024 * 1024;
/// An optional resource the cluster does not serve (its CRD is not installed: 404) or we may
/// not read (403) is looked for again this often, quietly: cert-manager installed, or the
/// RBAC fixed, after runbookd started is picked up without a restart.
constexpr std::chrono::minutes optional_recheck{10};
/// The optional resources, as RBAC names them.
constexpr std::string_view certificates_resource = "certificates.cert-manager.io";
constexpr std::string_view replicasets_resource = "replicasets.apps";
/// A rollout's new ReplicaSet is waited for this long when its Deployment's watch event
/// comes before the ReplicaSet's (two streams, no order between them); then the rollout is
/// told without it, dated from the Deployment.
constexpr std::chrono::seconds replicaset_wait{2};

std::string key_of(const std::string& ns, const std::string& name) {
    return ns + "/" + name;
}
template <class State>
std::string key_of(const State& s) {
    return key_of(s.ns, s.name);
}
std::string key_of(const node_state& n) {
    return n.name;
}

// --- what a change of each kind of object means -------------------------------------------

/// What a change of one resource needs to know of the others, answered by the source from
/// every reflector: the Pod a Warning is about, the Deployments that use a ConfigMap.
class cluster_view {
public:
    virtual const pod_state* pod(const std::string& ns, const std::string& name) const = 0;
    virtual std::vector<std::string> configmap_users(const std::string& ns, const std::string& name)
        const = 0;

protected:
    ~cluster_view() = default;
};

template <class Cache>
std::vector<signal> changes(
    const cluster_view&, const Cache&, const pod_state* prev, pod_state& next, wall_time now, bool
) {
    return diff_pod(prev, next, now);
}
/// Rollouts are told by the source once the new ReplicaSet is known (settle_rollouts); here
/// the Deployment keeps what was last told. One first listed after a rollout (revision past
/// 1) has its last rollout told, if the world dates it.
template <class Cache>
std::vector<signal> changes(
    const cluster_view&,
    const Cache&,
    const deployment_state* prev,
    deployment_state& next,
    wall_time now,
    bool initial
) {
    if (prev != nullptr) {
        next.told_template = prev->told_template;
        next.told_images = prev->told_images;
    } else if (!initial || next.revision.empty() || next.revision == "1") {
        next.told_template = next.template_hash;  // created, not rolled out
        next.told_images = next.images;
    }
    return diff_deployment(prev, next, now);
}
template <class Cache>
std::vector<signal> changes(
    const cluster_view&, const Cache&, const replicaset_state*, replicaset_state&, wall_time, bool
) {
    return {};
}
template <class Cache>
std::vector<signal> changes(
    const cluster_view& view,
    const Cache&,
    const configmap_state* prev,
    configmap_state& next,
    wall_time now,
    bool
) {
    if (prev == nullptr || prev->data_hash == next.data_hash) {
        return {};
    }
    return diff_configmap(prev, next, view.configmap_users(next.ns, next.name), now);
}
/// A Warning with the Pod it is about, when held.
std::vector<signal> warning_of(const cluster_view& view, const event_state& e, wall_time now) {
    const pod_state* pod = e.involved_kind == "Pod"
                               ? view.pod(e.involved_ns.empty() ? e.ns : e.involved_ns, e.involved_name)
                               : nullptr;
    auto s = warning_signal(e, pod, now);
    return s ? std::vector<signal>{std::move(*s)} : std::vector<signal>{};
}
template <class Cache>
std::vector<signal> changes(
    const cluster_view& view, const Cache&, const event_state* prev, event_state& next, wall_time now, bool
) {
    // A Warning is told when new and each time its count goes up (the same event object
    // is updated as it repeats).
    if (prev != nullptr && next.count <= prev->count) {
        return {};
    }
    return warning_of(view, next, now);
}
template <class Cache>
std::vector<signal> changes(
    const cluster_view&,
    const Cache&,
    const certificate_state* prev,
    certificate_state& next,
    wall_time now,
    bool
) {
    auto s = diff_certificate(prev, next, now);
    return s ? std::vector<signal>{std::move(*s)} : std::vector<signal>{};
}
/// A node that changed; or a node new to us: its creation, and a kubelet version other than
/// its pool's when it replaced a node of it (pool_version). `cache`: the nodes as they are
/// now (the list just read, or those held while watching).
template <class Cache>
std::vector<signal> changes(
    const cluster_view&,
    const Cache& cache,
    const node_state* prev,
    node_state& next,
    wall_time now,
    bool initial
) {
    if (prev != nullptr) {
        return diff_node(*prev, next, now);
    }
    std::vector<const node_state*> nodes;
    nodes.reserve(cache.size());
    for (const auto& [name, n] : cache) {
        nodes.push_back(&n);
    }
    return node_added(next, pool_version(next, nodes), initial, now);
}

/// What an object's going away means: a node deleted (replaced, or scaled down).
template <class State>
std::vector<signal> gone(const State&, wall_time) {
    return {};
}
template <>
std::vector<signal> gone(const node_state& last, wall_time now) {
    return {node_deleted(last, now)};
}

/// Whether a change may change which Deployments a service's label selector picks.
template <class State>
bool moves_workloads(const State*, const State*) {
    return false;
}
template <>
bool moves_workloads(const deployment_state* prev, const deployment_state* next) {
    return prev == nullptr || next == nullptr || prev->pod_labels != next->pod_labels;
}

// --- one list+watch loop's resource -------------------------------------------------------

enum class watch_outcome { ended, dropped, expired, failed };

struct page_info {
    std::string resource_version;
    std::string continue_token;
};

struct line_info {
    event_type type = event_type::added;
    std::string resource_version;
    bool expired = false;
    std::string error;
};

/// One resource in one scope (pods in "prod", or nodes): the objects we hold and what to
/// do with a list page or a watch line. The loop itself lives in source::impl.
class reflector {
public:
    reflector(
        std::string resource_name,
        std::string api_path,
        std::string selectors,
        bool is_optional,
        std::string namespace_scope,
        const cluster_view& cluster
    )
        : resource(std::move(resource_name)),
          path(std::move(api_path)),
          query(std::move(selectors)),
          optional(is_optional),
          scope(std::move(namespace_scope)),
          view(cluster) {}
    virtual ~reflector() = default;
    reflector(const reflector&) = delete;
    reflector& operator=(const reflector&) = delete;

    virtual result<page_info> stage_page(std::string_view body) = 0;
    /// The staged list replaces what we held; differences become signals.
    virtual std::vector<signal> finish_list(wall_time now) = 0;
    virtual void abandon_list() = 0;
    /// Drops every object held (the resource went away: its CRD was removed).
    virtual void forget() = 0;
    virtual result<line_info> apply_line(std::string_view line, wall_time now, std::vector<signal>& out) = 0;
    virtual std::size_t size() const = 0;

    const std::string resource;  ///< "pods"
    const std::string path;      ///< "/api/v1/namespaces/prod/pods"
    const std::string query;     ///< extra selectors ("fieldSelector=type%3DWarning")
    /// A resource the cluster may not have (a CRD: cert-manager's Certificates): a 404 or
    /// 403 leaves it unwatched, rechecked now and then, and the source healthy.
    const bool optional;
    const std::string scope;  ///< the namespace listed, "" for all (or cluster-scoped)
    const cluster_view& view;
    bool unavailable = false;  ///< optional, and its last list or watch answered 404 or 403
    unsigned last_status = 0;  ///< HTTP status of the last list request; 0: no answer
    std::string resource_version;
    bool listed_once = false;
    /// configmaps: the edits found by the first list were told; events: the Warnings it
    /// found were (once the Pods they are about were listed).
    bool history_told = false;
    bool synced = false;
    std::string error;             ///< why the last attempt failed; "" when fine
    std::string pending;           ///< a partial watch line
    bool workloads_moved = false;  ///< set by a change that moves_workloads(); the loop clears it
    std::array<prometheus::Counter*, 5> events{};  ///< watch events by event_type, found once
    prometheus::Gauge* objects = nullptr;
};

template <class State>
class typed_reflector final : public reflector {
public:
    using reflector::reflector;
    using cache_type = std::unordered_map<std::string, State>;

    result<page_info> stage_page(std::string_view body) override {
        auto page = parse_page<State>(body);
        if (!page) {
            return page.error();
        }
        for (auto& item : page->items) {
            auto key = key_of(item);
            staged_.insert_or_assign(std::move(key), std::move(item));
        }
        return page_info{std::move(page->resource_version), std::move(page->continue_token)};
    }

    std::vector<signal> finish_list(wall_time now) override {
        std::vector<signal> out;
        const bool initial = !listed_once;
        workloads_moved = workloads_moved || staged_.size() != cache_.size();
        for (auto& [key, next] : staged_) {
            const auto it = cache_.find(key);
            workloads_moved =
                workloads_moved || moves_workloads<State>(it == cache_.end() ? nullptr : &it->second, &next);
            // The others as listed (not as held: the first list holds none yet).
            auto found =
                changes(view, staged_, it == cache_.end() ? nullptr : &it->second, next, now, initial);
            std::move(found.begin(), found.end(), std::back_inserter(out));
        }
        for (const auto& [key, last] : cache_) {
            if (!staged_.contains(key)) {  // deleted while we could not see
                auto found = gone(last, now);
                std::move(found.begin(), found.end(), std::back_inserter(out));
            }
        }
        cache_ = std::move(staged_);
        staged_ = {};
        listed_once = true;
        return out;
    }

    void abandon_list() override { staged_ = {}; }

    void forget() override {
        cache_ = {};
        staged_ = {};
    }

    result<line_info> apply_line(std::string_view line, wall_time now, std::vector<signal>& out) override {
        auto ev = parse_event<State>(line);
        if (!ev) {
            return ev.error();
        }
        line_info info{ev->type, std::move(ev->resource_version), ev->expired, std::move(ev->error)};
        if (!ev->object) {
            return info;
        }
        auto key = key_of(*ev->object);
        const auto it = cache_.find(key);
        if (ev->type == event_type::deleted) {
            if (it != cache_.end()) {
                workloads_moved = workloads_moved || moves_workloads<State>(&it->second, nullptr);
                cache_.erase(it);
                auto found = gone(*ev->object, now);  // its last state, as DELETED carries it
                std::move(found.begin(), found.end(), std::back_inserter(out));
            }
            return info;
        }
        workloads_moved = workloads_moved ||
                          moves_workloads<State>(it == cache_.end() ? nullptr : &it->second, &*ev->object);
        auto found =
            changes(view, cache_, it == cache_.end() ? nullptr : &it->second, *ev->object, now, false);
        std::move(found.begin(), found.end(), std::back_inserter(out));
        cache_.insert_or_assign(std::move(key), std::move(*ev->object));
        return info;
    }

    std::size_t size() const override { return cache_.size(); }

    const cache_type& objects() const { return cache_; }
    cache_type& objects() { return cache_; }

private:
    cache_type cache_;
    cache_type staged_;
};

}  // namespace

struct source::impl final : cluster_view {
    impl(
        asio::any_io_executor ex,
        net::http_client& h,
        credentials& c,
        source_settings s,
        signal_sink sig,
        status_sink st,
        log::logger l,
        prometheus::Registry& registry
    )
        : executor(std::move(ex)),
          http(h),
          creds(c),
          settings(std::move(s)),
          on_signal(std::move(sig)),
          on_status(std::move(st)),
          log(std::move(l)),
          rng(std::random_device{}()),
          events_family(prometheus::BuildCounter()
                            .Name("runbookd_kubernetes_watch_events_total")
                            .Help("Kubernetes watch events received, by resource and type.")
                            .Register(registry)),
          relists_family(prometheus::BuildCounter()
                             .Name("runbookd_kubernetes_relists_total")
                             .Help("Lists after the first, by resource: an expired resourceVersion.")
                             .Register(registry)),
          errors_family(prometheus::BuildCounter()
                            .Name("runbookd_kubernetes_errors_total")
                            .Help("Failed Kubernetes list, watch and version requests, by resource.")
                            .Register(registry)),
          objects_family(prometheus::BuildGauge()
                             .Name("runbookd_kubernetes_objects")
                             .Help("Kubernetes objects held in memory, by resource.")
                             .Register(registry)),
          up(prometheus::BuildGauge()
                 .Name("runbookd_kubernetes_up")
                 .Help("1 when every Kubernetes list and watch is synced and the API answers, else 0.")
                 .Register(registry)
                 .Add({})) {
        const bool all = settings.namespaces.size() == 1 && settings.namespaces.front() == "*";
        const auto scoped = [&](std::string_view group, std::string_view plural, const std::string& ns) {
            return std::string{group} + (ns.empty() ? std::string{} : "/namespaces/" + ns) + "/" +
                   std::string{plural};
        };
        const std::vector<std::string> scopes = all ? std::vector<std::string>{""} : settings.namespaces;
        for (const auto& ns : scopes) {
            add<pod_state>("pods", scoped("/api/v1", "pods", ns), "", false, ns);
            add<deployment_state>("deployments", scoped("/apis/apps/v1", "deployments", ns), "", false, ns);
            // ReplicaSets date rollouts; without the RBAC to read them (an older
            // deploy/kubernetes/rbac.yaml) rollouts are dated from their Deployments.
            add<replicaset_state>("replicasets", scoped("/apis/apps/v1", "replicasets", ns), "", true, ns);
            add<configmap_state>("configmaps", scoped("/api/v1", "configmaps", ns), "", false, ns);
            add<event_state>(
                "events", scoped("/api/v1", "events", ns), "fieldSelector=type%3DWarning", false, ns
            );
            // cert-manager's CRD: many clusters do not have it (optional).
            add<certificate_state>(
                "certificates", scoped("/apis/cert-manager.io/v1", "certificates", ns), "", true, ns
            );
        }
        if (settings.nodes) {
            add<node_state>("nodes", "/api/v1/nodes", "", false, "");
        }
        // Every series exists from the start, at zero (docs/metrics.md).
        for (const auto& r : reflectors) {
            r->objects = &objects_family.Add({{"resource", r->resource}});
            relists_family.Add({{"resource", r->resource}});
            errors_family.Add({{"resource", r->resource}});
            for (const auto t :
                 {event_type::added,
                  event_type::modified,
                  event_type::deleted,
                  event_type::bookmark,
                  event_type::error}) {
                r->events.at(static_cast<std::size_t>(t)) =
                    &events_family.Add({{"resource", r->resource}, {"type", std::string{to_string(t)}}});
            }
        }
        errors_family.Add({{"resource", "version"}});
        std::vector<poll_job> jobs;
        jobs.push_back(poll_job{"version", settings.version_interval, [this] { return poll_version(); }});
        version_poller = std::make_unique<sources::poller>(
            executor,
            "kubernetes",
            std::move(jobs),
            on_signal,
            [](source_status) {},  // see poll_version()
            log,
            registry,
            settings.backoff
        );
    }

    template <class State>
    void add(std::string resource, std::string path, std::string query, bool optional, std::string scope) {
        reflectors.push_back(std::make_unique<typed_reflector<State>>(
            std::move(resource), std::move(path), std::move(query), optional, std::move(scope), *this
        ));
    }

    /// The reflectors of one kind of object, for lookups across resources.
    template <class State>
    std::vector<typed_reflector<State>*> reflectors_of() const {
        std::vector<typed_reflector<State>*> out;
        for (const auto& r : reflectors) {
            if (auto* typed = dynamic_cast<typed_reflector<State>*>(r.get())) {
                out.push_back(typed);
            }
        }
        return out;
    }

    // --- what one resource asks of the others (cluster_view) ---------------------------------

    const pod_state* pod(const std::string& ns, const std::string& name) const override {
        const std::string key = key_of(ns, name);
        for (const auto* r : reflectors_of<pod_state>()) {
            if (const auto it = r->objects().find(key); it != r->objects().end()) {
                return &it->second;
            }
        }
        return nullptr;
    }

    std::vector<std::string> configmap_users(const std::string& ns, const std::string& name) const override {
        std::vector<std::string> out;
        for (const auto* r : reflectors_of<deployment_state>()) {
            for (const auto& [key, d] : r->objects()) {
                if (d.ns == ns && std::binary_search(d.configmaps.begin(), d.configmaps.end(), name)) {
                    out.push_back(d.name);
                }
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    // --- rollouts: a Deployment joined with its new ReplicaSet --------------------------------

    /// The ReplicaSets reflector that holds namespace `ns`, or nullptr (none configured).
    typed_reflector<replicaset_state>* replicasets_of(const std::string& ns) const {
        for (auto* r : reflectors_of<replicaset_state>()) {
            if (r->scope.empty() || r->scope == ns) {
                return r;
            }
        }
        return nullptr;
    }

    /// The ReplicaSet of `d`'s revision: the controller gives the new one the Deployment's
    /// revision (a rollback moves an old one to it). `below`: the newest one before it.
    static const replicaset_state* replicaset_of(
        const typed_reflector<replicaset_state>& r, const deployment_state& d, bool below
    ) {
        const replicaset_state* found = nullptr;
        long long found_rev = 0;
        const long long current = std::atoll(d.revision.c_str());
        for (const auto& [key, rs] : r.objects()) {
            if (rs.ns != d.ns || rs.deployment != d.name || rs.revision.empty()) {
                continue;
            }
            if (!below && rs.revision == d.revision) {
                return &rs;
            }
            const long long rev = std::atoll(rs.revision.c_str());
            if (below && rev < current && rev > found_rev) {
                found = &rs;
                found_rev = rev;
            }
        }
        return found;
    }

    /// Tells every rollout that is due (rollout_due) and whose new ReplicaSet is known, or
    /// cannot be: ReplicaSets not readable, or waited for (replicaset_wait) in vain. A
    /// Deployment's first rollout found by the first list is told only when the world
    /// dates it: a daemon started after a rollout does not report it as just seen.
    void settle_rollouts() {
        const wall_time now = loop::wall_now();
        for (auto* r : reflectors_of<deployment_state>()) {
            for (auto& [key, d] : r->objects()) {
                if (!rollout_due(d)) {
                    continue;
                }
                const auto* sets = replicasets_of(d.ns);
                const auto* rs =
                    sets != nullptr && !sets->unavailable ? replicaset_of(*sets, d, false) : nullptr;
                if (rs == nullptr && sets != nullptr && !sets->unavailable && !gave_up.contains(key)) {
                    hold(key, d.ns);
                    continue;
                }
                const bool history = d.told_template.empty();
                if (history && sets != nullptr) {
                    const auto* before = replicaset_of(*sets, d, true);
                    d.told_images = before != nullptr ? before->images : std::vector<container_image>{};
                }
                signal s = rollout_signal(d, rs, now);
                d.told_template = d.template_hash;
                d.told_images = d.images;
                if (!(history && s.seen)) {
                    on_signal(std::move(s));
                }
            }
        }
    }

    /// Waits for the new ReplicaSet of Deployment `key` (at least replicaset_wait, and until
    /// the ReplicaSets of `ns` have been listed or have failed), then tells the rollout
    /// with what is known.
    void hold(const std::string& key, const std::string& ns) {
        if (!holding.insert(key).second) {
            return;
        }
        // Detached is safe, as for the watch loops (start()): it ends once stop() cancels its
        // pause, and the owner keeps the source alive until the io_context has no more work.
        asio::co_spawn(executor, wait_for_replicaset(key, ns), asio::detached);
    }

    asio::awaitable<void> wait_for_replicaset(std::string key, std::string ns) {
        for (;;) {
            if (!co_await pause(replicaset_wait)) {
                co_return;
            }
            const auto* sets = replicasets_of(ns);
            if (sets == nullptr || sets->listed_once || sets->unavailable || !sets->error.empty()) {
                break;
            }
        }
        holding.erase(key);
        gave_up.insert(key);
        settle_rollouts();
        gave_up.erase(key);
    }

    void start() {
        report_health();
        // Detached is safe: each loop ends once stop() sets `stopping` and cancels its
        // pause, or its request fails when the owner shuts the http client down; the
        // owner keeps the source alive until the io_context has run out of work.
        for (auto& r : reflectors) {
            auto loop = guarded([this, &r] { return run(*r); }, r.get());
            asio::co_spawn(executor, std::move(loop), asio::detached);  // detached: see above
        }
        version_poller->start();
    }

    void stop() {
        stopping = true;
        for (auto* t : waits) {
            t->cancel();
        }
        version_poller->stop();
        answer_refreshes();  // a stopped source answers at once
    }

    // --- requests ---------------------------------------------------------------------------

    /// The call for `path_and_query`, with credentials; an error when they cannot be had.
    asio::awaitable<result<net::http_call>> call_for(std::string path_and_query) {
        auto auth = co_await creds.authorization();
        if (!auth) {
            co_return auth.error();
        }
        net::http_call call;
        call.url = settings.server + path_and_query;
        call.headers["Accept"] = "application/json";
        call.headers["User-Agent"] = "runbookd";
        if (!auth->empty()) {
            call.headers["Authorization"] = std::move(*auth);
        }
        call.timeout = settings.request_timeout;
        co_return call;
    }

    /// A readable reason for a non-2xx answer (never the URL: it may carry a token).
    /// `sent` is the Authorization header of the request.
    std::string describe(const std::string& resource, const net::http_reply& reply, const std::string& sent) {
        std::string why = status_message(reply.body);
        if (reply.status == 401) {
            creds.rejected(sent);  // re-read the token file or re-run the plugin
            return "unauthorized (401): the API server refused our credentials";
        }
        if (reply.status == 403) {
            return "forbidden (403) to list/watch " + resource + ": " +
                   (why.empty() ? std::string{"check the Role/ClusterRole in deploy/"} : why);
        }
        return "HTTP " + std::to_string(reply.status) + (why.empty() ? std::string{} : ": " + why);
    }

    /// Lists every page into the reflector; on success the staged list replaces the cache.
    asio::awaitable<result<void>> list(reflector& r) {
        r.last_status = 0;
        std::string continue_token;
        for (int restarts = 0;;) {
            std::string q = "?limit=" + std::to_string(settings.page_size);
            if (!r.query.empty()) {
                q += "&" + r.query;
            }
            if (!continue_token.empty()) {
                q += "&continue=" + net::percent_encode(continue_token);
            }
            auto call = co_await call_for(r.path + q);
            if (!call) {
                r.abandon_list();
                co_return call.error();
            }
            call->max_body = max_page_bytes;
            const std::string sent = call->headers["Authorization"];
            auto reply = co_await http.send(std::move(*call));
            if (stopping) {
                r.abandon_list();
                co_return make_failure(errc::shutting_down, "stopping");
            }
            r.last_status = reply ? reply->status : 0;
            if (!reply) {
                r.abandon_list();
                co_return reply.error().error;
            }
            if (reply->status == 410 && !continue_token.empty() && restarts++ < 3) {
                // The continue token expired (about 5 min): start the list again.
                r.abandon_list();
                continue_token.clear();
                continue;
            }
            if (reply->status != 200) {
                r.abandon_list();
                co_return make_failure(errc::upstream_unavailable, describe(r.resource, *reply, sent), true);
            }
            auto page = r.stage_page(reply->body);
            if (!page) {
                r.abandon_list();
                co_return page.error();
            }
            if (page->continue_token.empty()) {
                r.resource_version = std::move(page->resource_version);
                break;
            }
            continue_token = std::move(page->continue_token);
        }
        const bool relist = r.listed_once;
        auto found = r.finish_list(loop::wall_now());
        workloads_may_have_moved(r);
        r.objects->Set(static_cast<double>(count_of(r.resource)));
        // A list's pages (a few MiB each) were freed; give the pages back to the system
        // rather than keep them as free heap (the steady RSS of a large cluster).
        ::malloc_trim(0);
        if (relist) {
            relists_family.Add({{"resource", r.resource}}).Increment();
        }
        log.debug(
            "kubernetes list",
            {{"resource", r.resource},
             {"path", r.path},
             {"objects", static_cast<int>(r.size())},
             {"signals", static_cast<int>(found.size())}}
        );
        if (r.resource == "events" && !relist && !r.history_told) {
            // Listed before the Pods: their Warnings wait for them, to name their Deployment,
            // ReplicaSet and node (tell_held_warnings).
            r.history_told = pods_known(r.scope);
            if (!r.history_told) {
                found.clear();
            }
        }
        for (auto& s : found) {
            on_signal(std::move(s));
        }
        if (r.resource == "pods") {
            tell_held_warnings(r.scope);
        }
        if (joins_rollouts(r)) {
            settle_rollouts();
        }
        if (r.resource == "deployments" || r.resource == "configmaps") {
            tell_configmap_history(r.scope);
        }
        co_return result<void>{};
    }

    /// Once both the ConfigMaps and the Deployments of `scope` have been listed: the edits
    /// the first list of ConfigMaps found (configmap_listed), each for the Deployments
    /// that use it, which is why it waits for them.
    void tell_configmap_history(const std::string& scope) {
        const wall_time now = loop::wall_now();
        const auto deployments_listed = [&] {
            for (const auto* d : reflectors_of<deployment_state>()) {
                if (d->scope == scope && !d->listed_once) {
                    return false;
                }
            }
            return true;
        };
        for (auto* c : reflectors_of<configmap_state>()) {
            if (c->scope != scope || !c->listed_once || c->history_told || !deployments_listed()) {
                continue;
            }
            c->history_told = true;
            for (const auto& [key, cm] : c->objects()) {
                for (auto& s : configmap_listed(cm, configmap_users(cm.ns, cm.name), now)) {
                    on_signal(std::move(s));
                }
            }
        }
    }

    /// Whether the Pods of `scope` have been listed, or cannot be: a Warning about a pod
    /// read before them would not know its pod.
    bool pods_known(const std::string& scope) const {
        return std::all_of(reflectors.begin(), reflectors.end(), [&](const auto& p) {
            return p->resource != "pods" || p->scope != scope || p->listed_once || !p->error.empty();
        });
    }

    /// The Warnings the first list of events of `scope` found before its Pods were listed,
    /// told now that they are (or failed to be), each with its pod when held.
    void tell_held_warnings(const std::string& scope) {
        const wall_time now = loop::wall_now();
        for (auto* r : reflectors_of<event_state>()) {
            if (r->scope != scope || !r->listed_once || r->history_told) {
                continue;
            }
            r->history_told = true;
            for (const auto& [key, e] : r->objects()) {
                for (auto& s : warning_of(*this, e, now)) {
                    on_signal(std::move(s));
                }
            }
        }
    }

    static bool joins_rollouts(const reflector& r) {
        return r.resource == "deployments" || r.resource == "replicasets";
    }

    struct watch_result {
        watch_outcome outcome = watch_outcome::ended;
        std::string error;
        unsigned status = 0;  ///< the HTTP status of a watch that failed with an answer
    };

    asio::awaitable<watch_result> watch(reflector& r) {
        // client-go's choice: a random server-side timeout, so watches do not end together.
        const auto base = std::chrono::duration_cast<std::chrono::seconds>(settings.watch_timeout);
        const auto timeout = std::max<long long>(
            1, std::uniform_int_distribution<long long>{base.count(), base.count() * 2}(rng)
        );
        std::string q =
            "?watch=1&allowWatchBookmarks=true&resourceVersion=" + net::percent_encode(r.resource_version) +
            "&timeoutSeconds=" + std::to_string(timeout);
        if (!r.query.empty()) {
            q += "&" + r.query;
        }
        auto call = co_await call_for(r.path + q);
        if (!call) {
            co_return watch_result{watch_outcome::failed, call.error().detail};
        }
        call->timeout = std::chrono::seconds{timeout} + std::chrono::seconds{30};
        // A half-open connection (a NAT or load balancer that forgot it) shows as silence:
        // with bookmarks about every minute, two silent minutes mean reconnect.
        call->idle_timeout =
            std::max<std::chrono::milliseconds>(settings.request_timeout, std::chrono::minutes{2});
        r.pending.clear();
        bool stream_up = false;
        std::size_t lines = 0;
        const auto began = loop::steady_clock::now();
        std::optional<watch_result> stop_with;
        const std::string sent = call->headers["Authorization"];
        auto reply = co_await http.stream(std::move(*call), [&](std::string_view piece) {
            if (piece.empty() && !stream_up) {
                stream_up = true;  // the server accepted the watch
                if (!r.error.empty() || !r.synced) {
                    r.error.clear();
                    r.synced = true;
                    report_health();
                }
                return true;
            }
            // Only the new piece can hold the end of a line.
            const std::size_t scan_from = r.pending.size();
            r.pending.append(piece);
            std::size_t start = 0;
            for (auto nl = r.pending.find('\n', scan_from); nl != std::string::npos;
                 nl = r.pending.find('\n', start)) {
                const std::string_view line{r.pending.data() + start, nl - start};
                start = nl + 1;
                if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
                    continue;
                }
                ++lines;
                std::vector<signal> found;
                auto info = r.apply_line(line, loop::wall_now(), found);
                if (!info) {
                    // One bad line: we may have missed a change, so relist to be sure.
                    log.warn(
                        "kubernetes watch line unreadable",
                        {{"resource", r.resource}, {"error", info.error().detail}}
                    );
                    stop_with = watch_result{watch_outcome::expired, info.error().detail};
                    return false;
                }
                r.events.at(static_cast<std::size_t>(info->type))->Increment();
                if (info->type == event_type::error) {
                    stop_with = info->expired
                                    ? watch_result{watch_outcome::expired, info->error}
                                    : watch_result{watch_outcome::failed, "watch error: " + info->error};
                    return false;
                }
                if (!info->resource_version.empty()) {
                    r.resource_version = std::move(info->resource_version);
                }
                if (info->type == event_type::added || info->type == event_type::deleted) {
                    r.objects->Set(static_cast<double>(count_of(r.resource)));
                }
                for (auto& s : found) {
                    on_signal(std::move(s));
                }
                if (joins_rollouts(r) && info->type != event_type::bookmark) {
                    settle_rollouts();
                }
                workloads_may_have_moved(r);
            }
            r.pending.erase(0, start);
            if (r.pending.size() > max_line_bytes) {
                stop_with = watch_result{watch_outcome::expired, "a watch line is longer than 16 MiB"};
                return false;
            }
            return true;
        });
        r.objects->Set(static_cast<double>(count_of(r.resource)));
        if (stop_with) {
            co_return *stop_with;
        }
        if (!reply) {
            // A stream that was up and dropped reconnects quietly; one that never came up failed.
            co_return watch_result{
                stream_up ? watch_outcome::dropped : watch_outcome::failed, reply.error().error.detail};
        }
        if (reply->status == 410) {
            co_return watch_result{watch_outcome::expired, "resourceVersion expired (410)"};
        }
        if (reply->status != 200) {
            co_return watch_result{watch_outcome::failed, describe(r.resource, *reply, sent), reply->status};
        }
        if (lines == 0 && loop::steady_clock::now() - began < std::chrono::seconds{1}) {
            // Ended at once with nothing: pause as after a drop, not in a tight loop.
            co_return watch_result{watch_outcome::dropped, "the watch ended at once"};
        }
        co_return watch_result{watch_outcome::ended, {}};
    }

    // --- the loops ----------------------------------------------------------------------------

    /// Waits `d` unless stopping; returns false when stopping.
    asio::awaitable<bool> pause(std::chrono::milliseconds d) {
        if (stopping) {
            co_return false;
        }
        loop::timer t{executor};
        waits.push_back(&t);
        t.expires_after(d);
        co_await t.async_wait(tuple_awaitable);
        waits.erase(std::find(waits.begin(), waits.end(), &t));
        co_return !stopping;
    }

    /// How an optional resource is named in the log: RBAC's name and what it is.
    static std::pair<std::string_view, std::string_view> optional_names(const reflector& r) {
        return r.resource == "replicasets"
                   ? std::pair{replicasets_resource, std::string_view{"ReplicaSets"}}
                   : std::pair{certificates_resource, std::string_view{"cert-manager Certificates"}};
    }

    /// For an optional resource (cert-manager's Certificates, ReplicaSets) that the server
    /// does not serve (404: the CRD is not installed) or that we may not read (403: RBAC):
    /// stops holding it, says so once a source (info for 404, warn with the verb for 403),
    /// and keeps the source healthy. The caller looks again after optional_recheck. False,
    /// and nothing done, for any other resource or answer.
    bool set_unavailable(reflector& r, unsigned status, std::string_view verb, const std::string& error) {
        if (!r.optional || (status != 404 && status != 403)) {
            return false;
        }
        const auto [rbac_name, what] = optional_names(r);
        if (status == 404 && said.insert(r.resource + " 404").second) {
            log.info(
                std::string{what} + " not found; not watching them",
                {{"resource", std::string{rbac_name}}, {"path", r.path}, {"error", error}}
            );
        }
        if (status == 403 && said.insert(r.resource + " 403").second) {
            log.warn(
                std::string{what} + " forbidden; not watching them",
                {{"verb", verb}, {"resource", std::string{rbac_name}}, {"path", r.path}, {"error", error}}
            );
        }
        const bool was_available = !r.unavailable;
        r.unavailable = true;
        r.listed_once = false;  // when it comes back, its first list is not a relist
        r.forget();
        r.resource_version.clear();
        r.objects->Set(static_cast<double>(count_of(r.resource)));
        if (!r.synced || !r.error.empty()) {
            r.synced = true;  // nothing to sync: counts as synced for health
            r.error.clear();
            report_health();
        }
        if (was_available && r.resource == "replicasets") {
            settle_rollouts();  // the rollouts held for their ReplicaSet: told without it
        }
        return true;
    }

    void fail(reflector& r, const std::string& error) {
        errors_family.Add({{"resource", r.resource}}).Increment();
        if (r.error != error) {
            log.warn("kubernetes source failing", {{"resource", r.resource}, {"error", error}});
            r.error = error;
            report_health();
        }
        if (r.resource == "pods") {
            tell_held_warnings(r.scope);  // without their pods rather than not at all
        }
    }

    /// Runs `loop` until it returns; an exception (a bug) is logged, makes the source
    /// failing, and restarts the loop after the longest backoff instead of ending it.
    asio::awaitable<void> guarded(std::function<asio::awaitable<void>()> loop, reflector* r) {
        while (!stopping) {
            std::string error;
            try {
                co_await loop();
                co_return;
            } catch (const std::exception& e) {
                error = e.what();
            }
            log.error(
                "kubernetes loop failed; restarting",
                {{"resource", r != nullptr ? r->resource : std::string{"version"}}, {"error", error}}
            );
            if (r != nullptr) {
                fail(*r, "internal error: " + error);
            } else {
                version_error = "internal error: " + error;
                report_health();
            }
            if (!co_await pause(settings.backoff.cap)) {
                co_return;
            }
        }
    }

    asio::awaitable<void> run(reflector& r) {
        int failures = 0;
        int relists_in_row = 0;  // expiries one after another: back off, not a relist storm
        bool need_list = true;
        while (!stopping) {
            if (need_list) {
                auto listed = co_await list(r);
                if (stopping) {
                    break;
                }
                if (!listed) {
                    if (set_unavailable(r, r.last_status, "list", listed.error().detail)) {
                        failures = 0;
                        if (!co_await pause(optional_recheck)) {
                            break;
                        }
                        continue;
                    }
                    fail(r, listed.error().detail);
                    if (!co_await pause(settings.backoff.delay(++failures, rng))) {
                        break;
                    }
                    continue;
                }
                if (r.unavailable) {
                    r.unavailable = false;
                    said.erase(r.resource + " 404");  // should it go again, say so again
                    said.erase(r.resource + " 403");
                    const auto [rbac_name, what] = optional_names(r);
                    log.info(
                        std::string{what} + " found; watching them",
                        {{"resource", std::string{rbac_name}}, {"path", r.path}}
                    );
                }
                need_list = false;
            }
            auto w = co_await watch(r);
            if (stopping) {
                break;
            }
            switch (w.outcome) {
                case watch_outcome::ended:
                    failures = 0;  // the server's timeout: resume from the last version at once
                    relists_in_row = 0;
                    break;
                case watch_outcome::expired:
                    log.info("kubernetes relist", {{"resource", r.resource}, {"reason", w.error}});
                    need_list = true;
                    failures = 0;
                    if (++relists_in_row > 1 &&
                        !co_await pause(settings.backoff.delay(relists_in_row - 1, rng))) {
                        co_return;
                    }
                    break;
                case watch_outcome::dropped:
                    log.info("kubernetes watch dropped", {{"resource", r.resource}, {"error", w.error}});
                    failures = 0;
                    relists_in_row = 0;
                    if (!co_await pause(settings.backoff.delay(1, rng))) {
                        co_return;
                    }
                    break;
                case watch_outcome::failed:
                    // A CRD removed, or the watch verb not granted while list is: not a
                    // failure of the source, and no list/watch loop against a 403.
                    if (set_unavailable(r, w.status, "watch", w.error)) {
                        need_list = true;
                        failures = 0;
                        if (!co_await pause(optional_recheck)) {
                            co_return;
                        }
                        break;
                    }
                    fail(r, w.error);
                    if (!co_await pause(settings.backoff.delay(++failures, rng))) {
                        co_return;
                    }
                    break;
            }
        }
    }

    /// /version, one job of a sources::poller: its cadence (version_interval, the first wait
    /// jittered) and its backoff after a failure are the poller's, as for every polling
    /// source. Its health is not the poller's: it joins the watches' in report_health(), so
    /// the poller's own status is not used.
    asio::awaitable<poll_outcome> poll_version() {
        std::string error;
        poll_result found;
        auto call = co_await call_for("/version");
        if (!call) {
            error = call.error().detail;
        } else {
            const std::string sent = call->headers["Authorization"];
            auto reply = co_await http.send(std::move(*call));
            if (stopping) {
                co_return found;
            }
            if (!reply) {
                error = reply.error().error.detail;
            } else if (reply->status != 200) {
                error = describe("/version", *reply, sent);
            } else if (auto v = parse_version(reply->body); !v) {
                error = v.error().detail;
            } else {
                if (!control_plane.empty() && *v != control_plane) {
                    log.info("kubernetes control plane upgraded", {{"from", control_plane}, {"to", *v}});
                    found.signals.push_back(version_change(control_plane, *v, loop::wall_now()));
                }
                control_plane = std::move(*v);
            }
        }
        if (error != version_error) {
            if (!error.empty()) {
                // Logged by the poller ("source failing", job "version").
                errors_family.Add({{"resource", "version"}}).Increment();
            }
            version_error = error;
            report_health();
        }
        if (!error.empty()) {
            co_return poll_failure{make_failure(errc::upstream_unavailable, std::move(error)), {}, {}};
        }
        co_return found;
    }

    void workloads_may_have_moved(reflector& r) {
        if (r.workloads_moved) {
            r.workloads_moved = false;
            if (workloads_hook) {
                workloads_hook();
            }
        }
    }

    // --- health -------------------------------------------------------------------------------

    void report_health() {
        source_status status;
        status.since = loop::wall_now();
        std::size_t synced_count = 0;
        for (const auto& r : reflectors) {
            if (!r->error.empty() && status.error.empty()) {
                status.error = r->resource + ": " + r->error;
            }
            synced_count += r->synced ? 1 : 0;
        }
        if (status.error.empty() && !version_error.empty()) {
            status.error = "/version: " + version_error;
        }
        if (status.error.empty() && synced_count < reflectors.size()) {
            status.error = "listing the cluster (" + std::to_string(synced_count) + " of " +
                           std::to_string(reflectors.size()) + " resources synced)";
            status.pending = true;  // its first look is not over: /readyz waits for it
        }
        status.state = status.error.empty() ? source_state::healthy : source_state::failing;
        up.Set(status.error.empty() ? 1 : 0);
        if (synced_count == reflectors.size()) {
            answer_refreshes();
        }
        if (last_reported && last_reported->state == status.state && last_reported->error == status.error &&
            last_reported->pending == status.pending) {
            return;
        }
        if (status.state == source_state::healthy) {
            log.info("kubernetes source healthy", {{"resources", static_cast<int>(reflectors.size())}});
        }
        last_reported = status;
        on_status(std::move(status));
    }

    // --- page-time refresh ------------------------------------------------------------------

    /// The watches keep what we hold current: once every resource is listed and watched
    /// there is nothing to look at again, so a refresh is answered at once; before that,
    /// when the first lists are in, or at `deadline`, whichever comes first.
    void refresh(loop::steady_clock::time_point deadline, std::function<void()> done) {
        if (stopping || all_synced()) {
            done();
            return;
        }
        auto waiter = std::make_shared<std::function<void()>>(std::move(done));
        refresh_waiters.push_back(waiter);
        // Detached is safe, as for the watch loops (start()): it ends once stop() cancels its
        // pause; it shares the waiter, which stop() answers.
        asio::co_spawn(executor, refresh_deadline(deadline, waiter), asio::detached);
    }

    asio::awaitable<void> refresh_deadline(
        loop::steady_clock::time_point deadline, std::shared_ptr<std::function<void()>> waiter
    ) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - loop::steady_clock::now());
        co_await pause(std::max(left, std::chrono::milliseconds{0}));
        answer(waiter);
    }

    /// Calls a waiter's `done` once, and forgets it.
    void answer(const std::shared_ptr<std::function<void()>>& waiter) {
        const auto it = std::find(refresh_waiters.begin(), refresh_waiters.end(), waiter);
        if (it == refresh_waiters.end()) {
            return;  // already answered
        }
        refresh_waiters.erase(it);
        (*waiter)();
    }

    void answer_refreshes() {
        auto waiters = std::move(refresh_waiters);
        refresh_waiters.clear();
        for (auto& w : waiters) {
            (*w)();
        }
    }

    bool all_synced() const {
        return std::all_of(reflectors.begin(), reflectors.end(), [](const auto& r) {
            return r->synced && r->error.empty();
        });
    }

    std::size_t count_of(const std::string& resource) const {
        std::size_t n = 0;
        for (const auto& r : reflectors) {
            n += r->resource == resource ? r->size() : 0;
        }
        return n;
    }

    asio::any_io_executor executor;
    net::http_client& http;
    credentials& creds;
    source_settings settings;
    signal_sink on_signal;
    status_sink on_status;
    log::logger log;
    std::mt19937_64 rng;
    prometheus::Family<prometheus::Counter>& events_family;
    prometheus::Family<prometheus::Counter>& relists_family;
    prometheus::Family<prometheus::Counter>& errors_family;
    prometheus::Family<prometheus::Gauge>& objects_family;
    prometheus::Gauge& up;
    std::vector<std::unique_ptr<reflector>> reflectors;
    std::vector<loop::timer*> waits;
    std::string control_plane;
    std::string version_error;
    std::unique_ptr<sources::poller> version_poller;
    /// "<resource> 404" / "<resource> 403": an optional resource's absence already logged.
    std::set<std::string> said;
    std::set<std::string> holding;  ///< Deployments whose rollout waits for its ReplicaSet
    std::set<std::string> gave_up;  ///< ...and those that wait no longer
    /// Page-time refreshes waiting for the first sync (refresh()).
    std::vector<std::shared_ptr<std::function<void()>>> refresh_waiters;
    std::optional<source_status> last_reported;
    std::function<void()> workloads_hook;
    bool stopping = false;
};

source::source(
    asio::any_io_executor ex,
    net::http_client& http,
    credentials& creds,
    source_settings settings,
    signal_sink on_signal,
    status_sink on_status,
    log::logger log,
    prometheus::Registry& registry
)
    : impl_(std::make_unique<impl>(
          std::move(ex),
          http,
          creds,
          std::move(settings),
          std::move(on_signal),
          std::move(on_status),
          std::move(log),
          registry
      )) {}

source::~source() = default;

void source::start() {
    impl_->start();
}

void source::stop() {
    impl_->stop();
}

std::vector<std::string> source::deployments_matching(
    std::string_view ns_pattern, const label_selector& selector
) const {
    std::vector<std::string> out;
    for (const auto& r : impl_->reflectors) {
        const auto* deployments = dynamic_cast<const typed_reflector<deployment_state>*>(r.get());
        if (deployments == nullptr) {
            continue;
        }
        for (const auto& [key, d] : deployments->objects()) {
            if (workload_glob(ns_pattern, d.ns) && selects(selector, d.pod_labels)) {
                out.push_back(d.ns + "/" + d.name);
            }
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

void source::on_workloads_changed(std::function<void()> hook) {
    impl_->workloads_hook = std::move(hook);
}

std::size_t source::objects() const {
    std::size_t n = 0;
    for (const auto& r : impl_->reflectors) {
        n += r->size();
    }
    return n;
}

bool source::synced() const {
    return impl_->all_synced();
}

void source::refresh(loop::steady_clock::time_point deadline, std::function<void()> done) {
    impl_->refresh(deadline, std::move(done));
}

}  // namespace runbookd::sources::kubernetes
