#include "cluster/lease.hpp"

#include "loop/clock.hpp"
#include "sources/kubernetes/credentials.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <array>
#include <exception>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

namespace runbookd::cluster {

namespace asio = boost::asio;
using json = nlohmann::json;

std::string format_micro_time(wall_time t) {
    // wall_time holds milliseconds: "….250Z" becomes "….250000Z".
    std::string text = format_rfc3339(t);
    text.insert(text.size() - 1, "000");
    return text;
}

namespace {

/// A Lease's spec as client-go's LeaderElectionRecord holds it.
struct record {
    std::string holder;
    long long duration_seconds = 0;
    std::string acquire_time;
    std::string renew_time;
    std::uint64_t transitions = 0;

    friend bool operator==(const record&, const record&) = default;
};

record record_of(const json& object) {
    record r;
    const auto spec = object.find("spec");
    if (spec == object.end() || !spec->is_object()) {
        return r;
    }
    const auto text = [&](const char* key) {
        const auto f = spec->find(key);
        return f != spec->end() && f->is_string() ? f->get<std::string>() : std::string{};
    };
    r.holder = text("holderIdentity");
    r.acquire_time = text("acquireTime");
    r.renew_time = text("renewTime");
    if (const auto d = spec->find("leaseDurationSeconds"); d != spec->end() && d->is_number_integer()) {
        r.duration_seconds = d->get<long long>();
    }
    if (const auto n = spec->find("leaseTransitions"); n != spec->end() && n->is_number_unsigned()) {
        r.transitions = n->get<std::uint64_t>();
    }
    return r;
}

json spec_of(const record& r) {
    return json{
        {"holderIdentity", r.holder},
        {"leaseDurationSeconds", r.duration_seconds},
        {"acquireTime", r.acquire_time},
        {"renewTime", r.renew_time},
        {"leaseTransitions", r.transitions}};
}

/// Why a lease request failed, as the failures metric labels it.
enum class reason {
    transport,
    credentials,
    unauthorized,
    forbidden,
    conflict,
    not_found,
    server_error,
    http_error,
    invalid_reply
};
constexpr std::array<std::string_view, 9> reason_names{
    "transport",
    "credentials",
    "unauthorized",
    "forbidden",
    "conflict",
    "not_found",
    "server_error",
    "http_error",
    "invalid_reply"};

/// A request's outcome: the object the server answered, or why not.
struct outcome {
    std::optional<json> object;
    std::optional<reason> failed;
    std::string detail;
    bool ok() const { return object.has_value(); }
};

}  // namespace

struct lease_elector::impl : std::enable_shared_from_this<impl> {
    impl(
        asio::any_io_executor e,
        net::http_client& h,
        sources::kubernetes::credentials& c,
        lease_settings s,
        leader_callbacks cb,
        log::logger l,
        prometheus::Registry& registry
    )
        : ex(e),
          http(h),
          creds(c),
          settings(std::move(s)),
          callbacks(std::move(cb)),
          log(l.with("lease", settings.ns + "/" + settings.name).with("identity", settings.identity)),
          pause(e),
          deadline(e),
          rng(std::random_device{}()),
          leader_gauge(prometheus::BuildGauge()
                           .Name("runbookd_leader")
                           .Help("1 while this replica leads (holds the Lease and renews in time), else 0.")
                           .Register(registry)
                           .Add({})),
          lease_transitions_gauge(
              prometheus::BuildGauge()
                  .Name("runbookd_leader_lease_transitions")
                  .Help("The Lease's leaseTransitions as last observed (the fencing token).")
                  .Register(registry)
                  .Add({})
          ),
          transitions_family(prometheus::BuildCounter()
                                 .Name("runbookd_leader_transitions_total")
                                 .Help("Times this replica started or stopped leading.")
                                 .Register(registry)),
          started(transitions_family.Add({{"change", "started"}})),
          stopped(transitions_family.Add({{"change", "stopped"}})),
          failures_family(prometheus::BuildCounter()
                              .Name("runbookd_leader_lease_failures_total")
                              .Help("Lease requests (get, create, update) that failed, by reason.")
                              .Register(registry)) {
        for (const auto name : reason_names) {
            failures.push_back(&failures_family.Add({{"reason", std::string{name}}}));
        }
    }

    // --- requests ---------------------------------------------------------------------------

    std::string lease_url() const {
        return settings.server + "/apis/coordination.k8s.io/v1/namespaces/" + settings.ns + "/leases/" +
               settings.name;
    }

    outcome fail(reason why, std::string detail) {
        failures[static_cast<std::size_t>(why)]->Increment();
        if (failure_streak++ == 0) {
            log.warn(
                "lease request failed",
                {{"reason", reason_names[static_cast<std::size_t>(why)]}, {"detail", detail}}
            );
        } else {
            log.debug(
                "lease request failed",
                {{"reason", reason_names[static_cast<std::size_t>(why)]}, {"detail", detail}}
            );
        }
        return outcome{std::nullopt, why, std::move(detail)};
    }

    /// One request; 200 and 201 answer the object. A 404 to a GET is no failure (the Lease
    /// is absent) and is not counted.
    asio::awaitable<outcome> request(std::string method, std::string url, std::string body) {
        auto auth = co_await creds.authorization();
        if (!auth) {
            co_return fail(reason::credentials, auth.error().detail);
        }
        net::http_call call;
        call.method = method;
        call.url = std::move(url);
        call.body = std::move(body);
        call.headers["Accept"] = "application/json";
        call.headers["User-Agent"] = "runbookd";
        if (!call.body.empty()) {
            call.headers["Content-Type"] = "application/json";
        }
        if (!auth->empty()) {
            call.headers["Authorization"] = *auth;
        }
        call.max_body = 1024 * 1024;
        // A leader's request must not outlive its renew deadline; a follower's is bounded
        // by the same length.
        auto timeout = settings.renew_deadline;
        if (leading) {
            timeout = std::max<std::chrono::milliseconds>(
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline_at - loop::steady_clock::now()
                ),
                std::chrono::milliseconds{100}
            );
        }
        call.timeout = timeout;
        auto reply = co_await http.send(std::move(call));
        if (!reply) {
            co_return fail(reason::transport, reply.error().error.detail);
        }
        if (reply->status == 200 || reply->status == 201) {
            auto parsed = json::parse(reply->body, nullptr, false);
            if (parsed.is_discarded() || !parsed.is_object()) {
                co_return fail(reason::invalid_reply, "the API server answered a Lease that is not JSON");
            }
            if (failure_streak > 0) {
                log.info("lease requests recovered", {{"failures", failure_streak}});
                failure_streak = 0;
            }
            co_return outcome{std::move(parsed), std::nullopt, {}};
        }
        const std::string message = status_message(reply->body);
        const auto detail = [&](std::string what) {
            return method + " lease: " + what + (message.empty() ? std::string{} : ": " + message);
        };
        switch (reply->status) {
            case 401:
                creds.rejected(*auth);  // re-read the token file or re-run the plugin
                co_return fail(reason::unauthorized, detail("unauthorized (401)"));
            case 403:
                co_return fail(
                    reason::forbidden,
                    detail("forbidden (403): check the Lease Role in deploy/kubernetes/ha/")
                );
            case 404:
                if (method == "GET") {
                    co_return outcome{std::nullopt, reason::not_found, "absent"};
                }
                co_return fail(reason::not_found, detail("not found (404)"));
            case 409: co_return fail(reason::conflict, detail("conflict (409): another replica wrote first"));
            default:
                co_return fail(
                    reply->status >= 500 ? reason::server_error : reason::http_error,
                    detail("HTTP " + std::to_string(reply->status))
                );
        }
    }

    /// The `message` of a Kubernetes Status answer, cut short; "" when there is none.
    static std::string status_message(const std::string& body) {
        auto parsed = json::parse(body, nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object()) {
            return {};
        }
        const auto m = parsed.find("message");
        if (m == parsed.end() || !m->is_string()) {
            return {};
        }
        auto text = m->get<std::string>();
        return text.size() > 200 ? text.substr(0, 200) : text;
    }

    asio::awaitable<outcome> put(const record& r) {
        json object = cached;
        object["spec"] = spec_of(r);
        co_return co_await request("PUT", lease_url(), object.dump());
    }

    asio::awaitable<outcome> create(const record& r) {
        json object{
            {"apiVersion", "coordination.k8s.io/v1"},
            {"kind", "Lease"},
            {"metadata", {{"name", settings.name}, {"namespace", settings.ns}}},
            {"spec", spec_of(r)}};
        co_return co_await request(
            "POST",
            settings.server + "/apis/coordination.k8s.io/v1/namespaces/" + settings.ns + "/leases",
            object.dump()
        );
    }

    // --- what was observed --------------------------------------------------------------------

    /// The Lease as read or written: a record that differs from the last one restarts its
    /// expiry on this replica's clock (client-go's observedTime).
    void observe(json object) {
        const record r = record_of(object);
        cached = std::move(object);
        lease_transitions_gauge.Set(static_cast<double>(r.transitions));
        if (seen && r == observed) {
            return;
        }
        const bool new_holder = !seen || r.holder != observed.holder;
        observed = r;
        observed_at = loop::steady_clock::now();
        seen = true;
        if (new_holder) {
            log.info(
                "lease holder changed",
                {{"holder", r.holder}, {"transitions", static_cast<long long>(r.transitions)}}
            );
            if (callbacks.on_new_leader) {
                callbacks.on_new_leader(r.holder);
            }
        }
    }

    bool expired() const {
        return observed_at + std::chrono::seconds{observed.duration_seconds} <= loop::steady_clock::now();
    }

    // --- leading ------------------------------------------------------------------------------

    /// A write sent at `sent` succeeded: lead (or go on leading) until sent + renew_deadline.
    void wrote(loop::steady_clock::time_point sent, bool renewal) {
        const auto until = sent + settings.renew_deadline;
        if (stopping || until <= loop::steady_clock::now()) {
            return;  // too late to lead on it; the next attempt starts a new term
        }
        if (renewal && !leading) {
            return;  // the deadline passed while the renewal was in flight
        }
        arm_deadline(until);
        if (leading) {
            return;
        }
        leading = true;
        token = observed.transitions;
        leader_gauge.Set(1);
        started.Increment();
        log.info("started leading", {{"fencing_token", static_cast<long long>(token)}});
        if (callbacks.on_started_leading) {
            callbacks.on_started_leading(token);
        }
    }

    void arm_deadline(loop::steady_clock::time_point until) {
        deadline_at = until;
        deadline.expires_at(until);
        deadline.async_wait([self = weak_from_this()](boost::system::error_code ec) {
            auto me = self.lock();
            // A re-armed timer cancels the wait; a wait already due when it was re-armed
            // runs anyway, so the time is checked too.
            if (!me || ec || loop::steady_clock::now() < me->deadline_at) {
                return;
            }
            me->step_down("renew deadline passed");
        });
    }

    void step_down(std::string_view why) {
        if (!leading) {
            return;
        }
        leading = false;
        deadline.cancel();
        leader_gauge.Set(0);
        stopped.Increment();
        log.warn("stopped leading", {{"reason", why}, {"fencing_token", static_cast<long long>(token)}});
        if (callbacks.on_stopped_leading) {
            callbacks.on_stopped_leading();
        }
    }

    // --- the loop -----------------------------------------------------------------------------

    /// client-go's tryAcquireOrRenew: one attempt to acquire or renew.
    asio::awaitable<void> attempt() {
        const auto sent = loop::steady_clock::now();
        const std::string now = format_micro_time(loop::wall_now());
        const auto duration_seconds =
            std::chrono::duration_cast<std::chrono::seconds>(settings.lease_duration).count();

        if (leading) {
            // The fast path: write the copy we hold, assuming no one else wrote since.
            record renewal = observed;
            renewal.renew_time = now;
            renewal.duration_seconds = duration_seconds;
            auto put_outcome = co_await put(renewal);
            if (put_outcome.ok()) {
                observe(std::move(*put_outcome.object));
                wrote(sent, true);
                co_return;
            }
            if (stopping) {
                co_return;
            }
        }

        auto got = co_await request("GET", lease_url(), {});
        if (stopping) {
            co_return;
        }
        if (!got.ok()) {
            if (got.failed != reason::not_found) {
                co_return;
            }
            record fresh{settings.identity, duration_seconds, now, now, 0};
            auto made = co_await create(fresh);
            if (made.ok()) {
                observe(std::move(*made.object));
                wrote(sent, false);
            }
            co_return;
        }
        observe(std::move(*got.object));
        const bool ours = observed.holder == settings.identity;
        if (leading && !ours) {
            step_down("another replica holds the lease");
        }
        if (!observed.holder.empty() && !ours && !expired()) {
            co_return;  // held, and not expired by our clock
        }
        record next{settings.identity, duration_seconds, now, now, observed.transitions + 1};
        const bool renewal = leading && ours;
        if (renewal) {
            next.acquire_time = observed.acquire_time;
            next.transitions = observed.transitions;
        }
        auto put_outcome = co_await put(next);
        if (put_outcome.ok()) {
            observe(std::move(*put_outcome.object));
            wrote(sent, renewal);
        }
    }

    /// run() with the state kept alive by the coroutine's own frame.
    static asio::awaitable<void> run_owned(std::shared_ptr<impl> self) { co_await self->run(); }

    asio::awaitable<void> run() {
        log.info(
            "leader election started",
            {{"lease_duration_ms", static_cast<long long>(settings.lease_duration.count())},
             {"renew_deadline_ms", static_cast<long long>(settings.renew_deadline.count())},
             {"retry_period_ms", static_cast<long long>(settings.retry_period.count())}}
        );
        while (!stopping) {
            co_await attempt();
            if (stopping) {
                break;
            }
            auto wait = std::chrono::duration_cast<loop::steady_clock::duration>(settings.retry_period);
            if (!leading && settings.jitter > 0) {
                std::uniform_real_distribution<double> share{0.0, settings.jitter};
                wait += std::chrono::duration_cast<loop::steady_clock::duration>(
                    std::chrono::duration<double, std::milli>(
                        static_cast<double>(settings.retry_period.count()) * share(rng)
                    )
                );
            }
            pause.expires_after(wait);
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (settings.release_on_stop) {
            co_await release();
        }
        finish();
    }

    /// client-go's release: an empty holder, leaseDurationSeconds 1, both times now. The
    /// PUT carries the resourceVersion last seen, so it cannot clear another's term; on a
    /// conflict the Lease is read again and, if it still names us, released once more.
    asio::awaitable<void> release() {
        for (int tries = 0; tries < 2; ++tries) {
            if (!seen || observed.holder != settings.identity || cached.is_null()) {
                co_return;
            }
            const std::string now = format_micro_time(loop::wall_now());
            record cleared{"", 1, now, now, observed.transitions};
            auto put_outcome = co_await put(cleared);
            if (put_outcome.ok()) {
                observe(std::move(*put_outcome.object));
                log.info("lease released");
                co_return;
            }
            if (put_outcome.failed != reason::conflict) {
                co_return;
            }
            auto got = co_await request("GET", lease_url(), {});
            if (!got.ok()) {
                co_return;
            }
            observe(std::move(*got.object));
        }
    }

    void finish() {
        running = false;
        auto waiting = std::move(on_done);
        on_done.clear();
        for (auto& done : waiting) {
            if (done) {
                done();
            }
        }
    }

    asio::any_io_executor ex;
    net::http_client& http;
    sources::kubernetes::credentials& creds;
    lease_settings settings;
    leader_callbacks callbacks;
    log::logger log;
    loop::timer pause;
    loop::timer deadline;
    std::mt19937 rng;

    bool running = false;
    bool stopping = false;
    bool leading = false;
    std::uint64_t token = 0;
    loop::steady_clock::time_point deadline_at{};
    json cached;  ///< the Lease as last read or written (its metadata.resourceVersion)
    record observed;
    bool seen = false;
    loop::steady_clock::time_point observed_at{};
    long long failure_streak = 0;
    std::vector<std::function<void()>> on_done;

    prometheus::Gauge& leader_gauge;
    prometheus::Gauge& lease_transitions_gauge;
    prometheus::Family<prometheus::Counter>& transitions_family;
    prometheus::Counter& started;
    prometheus::Counter& stopped;
    prometheus::Family<prometheus::Counter>& failures_family;
    std::vector<prometheus::Counter*> failures;
};

lease_elector::lease_elector(
    asio::any_io_executor ex,
    net::http_client& http,
    sources::kubernetes::credentials& creds,
    lease_settings settings,
    leader_callbacks callbacks,
    log::logger log,
    prometheus::Registry& registry
)
    : impl_(std::make_shared<impl>(
          ex, http, creds, std::move(settings), std::move(callbacks), std::move(log), registry
      )) {}

lease_elector::~lease_elector() {
    impl_->stopping = true;
    impl_->pause.cancel();
    impl_->deadline.cancel();
}

void lease_elector::start() {
    if (impl_->running || impl_->stopping) {
        return;
    }
    impl_->running = true;
    // Detached is safe: the coroutine holds the state alive (shared_ptr) and ends once stop()
    // sets `stopping` and cancels its pause, or its request ends (bounded by its timeout);
    // an exception is logged rather than lost.
    asio::co_spawn(impl_->ex, impl::run_owned(impl_), [self = impl_](const std::exception_ptr& e) {
        if (!e) {
            return;
        }
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            self->log.error("leader election failed", {{"error", ex.what()}});
        }
        self->step_down("leader election failed");
        self->finish();
    });
}

void lease_elector::stop(std::function<void()> done) {
    auto& s = *impl_;
    s.stopping = true;
    s.pause.cancel();
    s.step_down("stopping");
    if (!s.running) {
        if (done) {
            asio::post(s.ex, std::move(done));
        }
        return;
    }
    s.on_done.push_back(std::move(done));
}

bool lease_elector::is_leader() const noexcept {
    return impl_->leading;
}

std::uint64_t lease_elector::fencing_token() const noexcept {
    return impl_->token;
}

std::string lease_elector::leader() const {
    return impl_->observed.holder;
}

}  // namespace runbookd::cluster
