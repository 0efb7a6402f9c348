#include "app/daemon.hpp"

#include "app/catalog.hpp"
#include "app/gather.hpp"
#include "core/engine.hpp"
#include "intake/pagerduty/handler.hpp"
#include "loop/clock.hpp"
#include "metrics/metrics.hpp"
#include "net/http_server.hpp"
#include "net/router.hpp"
#include "notify/outbox.hpp"
#include "rules/rules.hpp"
#include "sources/kubernetes/cluster.hpp"
#include "store/config.hpp"
#include "store/store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <csignal>
#include <functional>
#include <set>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace runbookd::app {

namespace asio = boost::asio;
namespace http = boost::beast::http;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

log::level to_log_level(config::log_level l) {
    switch (l) {
        case config::log_level::debug: return log::level::debug;
        case config::log_level::info: return log::level::info;
        case config::log_level::warn: return log::level::warn;
        case config::log_level::error: return log::level::error;
    }
    return log::level::info;
}

net::server_limits limits_from(const config::server_config& s) {
    net::server_limits l;
    l.max_body_bytes = s.max_body_bytes;
    l.header_timeout = s.header_timeout;
    l.body_timeout = s.body_timeout;
    l.idle_timeout = s.idle_timeout;
    l.max_connections = s.max_connections;
    l.max_connections_per_client = s.max_connections_per_client;
    return l;
}

/// The admin listener's limits (server.admin_listen): the main listener's timeouts, and a
/// connection budget and body limit of its own, so no webhook traffic can use them up.
net::server_limits admin_limits_from(const config::server_config& s) {
    auto l = limits_from(s);
    l.max_body_bytes = 4096;  // probes and scrapes send none
    l.max_connections = 64;
    l.max_connections_per_client = 16;
    return l;
}

notify::outbox_settings outbox_settings_from(const config::notify_config& n) {
    notify::outbox_settings s;
    s.min_spacing = n.coalesce_window;
    s.max_queued = n.max_queued_posts;
    return s;
}

/// Whether a request's query asks for the long answer (`/readyz?verbose`, `?verbose=1`).
bool wants_verbose(std::string_view target) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) {
        return false;
    }
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view item = rest.substr(0, amp);
        if (item == "verbose" || item.starts_with("verbose=")) {
            return true;
        }
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
    return false;
}

/// The config's secrets, registered before anything could log them (and again on reload,
/// for a rotated one). The integrations also register what they derive (tokens, a DSN's
/// password) through their context.
void register_secrets(log::sink& sink, const config::config& cfg) {
    for (const auto& s : cfg.pagerduty.webhook_secrets) {
        sink.add_secret(s.reveal());
    }
    for (const auto* hook : {&cfg.discord.status, &cfg.discord.operations}) {
        if (hook->configured()) {
            sink.add_secret(hook->token.reveal());
        }
    }
}

/// The configured state store; the daemon does not start without it (throws).
std::unique_ptr<store::store> open_store(
    const store::config& c, asio::io_context& ioc, log::logger log, prometheus::Registry& metrics
) {
    auto s = store::make(c, ioc.get_executor(), std::move(log), metrics);
    if (!s) {
        throw std::runtime_error(s.error().detail);
    }
    return std::move(*s);
}

}  // namespace

struct daemon::impl {
    impl(
        asio::io_context& io,
        config::config c,
        std::shared_ptr<const rule_set> r,
        std::shared_ptr<log::sink> s
    )
        : ioc(io),
          cfg(std::move(c)),
          rules(std::move(r)),
          sink(std::move(s)),
          log(sink, to_log_level(cfg.log.level)),
          daemon_metrics(exposition.registry()),
          wires{
              ioc.get_executor(),
              exposition.registry(),
              log,
              [this](std::string secret) { sink->add_secret(std::move(secret)); },
              [this](incident_event&& ev) { on_event(std::move(ev)); },
              [this](signal sig) { on_signal(std::move(sig)); },
              [this](std::string_view source, source_status status) {
                  on_source_status(source, std::move(status));
              },
              [this] { return core.incidents_view(); }},
          built((register_secrets(*sink, cfg), build(cfg, wires))),
          core(engine_settings_for(cfg)),
          outbox(
              ioc.get_executor(),
              *built.notifier,
              outbox_settings_from(cfg.notify),
              log.with("component", "outbox"),
              exposition.registry()
          ),
          gather(ioc.get_executor(), built.sources, log.with("component", "gather"), exposition.registry()),
          state(open_store(cfg.store, ioc, log.with("component", "store"), exposition.registry())),
          server(
              ioc.get_executor(),
              routes,
              limits_from(cfg.server),
              log.with("component", "server"),
              exposition.registry()
          ),
          wake(ioc),
          heartbeat(ioc),
          signals(ioc, SIGTERM, SIGINT, SIGHUP) {
        if (built.kubernetes != nullptr) {
            built.kubernetes->on_workloads_changed([this] { apply_settings(engine_settings_for(cfg), false); }
            );
        }
        for (const auto& intake : built.intakes) {
            routes.add(
                http::verb::post,
                std::string{intake->path()},
                [ep = intake.get()](const net::request& req) { return ep->handle(req); }
            );
        }
        routes.add(http::verb::get, "/healthz", [](const net::request& req) {
            return net::make_response(req, http::status::ok, "ok\n", "text/plain");
        });
        for (const auto& named : built.sources) {
            first_sync.emplace(named.name, first_look{});
        }
        routes.add(http::verb::get, "/readyz", [this](const net::request& req) { return readyz(req); });
        routes.add(http::verb::get, "/metrics", [this](const net::request& req) {
            daemon_metrics.open_incidents.Set(static_cast<double>(core.open_count()));
            record_signal_log();
            return net::make_response(req, http::status::ok, exposition.render(), metrics::content_type);
        });
        // The main listener keeps serving the three as well, for probes set up before the
        // admin listener existed.
        admin_routes = routes.only({"/healthz", "/readyz", "/metrics"});
        record_config(true);
        record_rules();
    }

    /// /readyz: 200 once serving with the config loaded and every source past its first look
    /// (synced, or failing for a reason it gave); 503 naming what it waits for. `?verbose`
    /// lists every check, `[+]` passed and `[-]` not yet, as Kubernetes' own /readyz does.
    net::response readyz(const net::request& req) const {
        std::string checks = "[+]config loaded\n";
        std::string waiting;
        for (const auto& [name, look] : first_sync) {
            checks += (look.done ? "[+]" : "[-]") + name + ": " + look.state + "\n";
            if (!look.done) {
                waiting += (waiting.empty() ? "" : ", ") + name;
            }
        }
        const std::string verdict = stopping          ? "not ready: shutting down"
                                    : !serving        ? "not ready: starting"
                                    : waiting.empty() ? "ready"
                                                      : "not ready: waiting for " + waiting;
        const bool ok = verdict == "ready";
        return net::make_response(
            req,
            ok ? http::status::ok : http::status::service_unavailable,
            (wants_verbose(req.target()) ? checks : std::string{}) + verdict + "\n",
            "text/plain"
        );
    }

    bool is_ready() const {
        if (!serving || stopping) {
            return false;
        }
        for (const auto& [name, look] : first_sync) {
            if (!look.done) {
                return false;
            }
        }
        return true;
    }

    /// Keeps runbookd_ready in step with /readyz, and says once when the sources are in.
    void record_ready() {
        const bool now_ready = is_ready();
        daemon_metrics.ready.Set(now_ready ? 1 : 0);
        if (now_ready && !sources_in) {
            sources_in = true;
            log.info("sources answered", {{"sources", static_cast<int>(first_sync.size())}});
        }
    }

    void record_config(bool ok) {
        daemon_metrics.config_reload_successful.Set(ok ? 1 : 0);
        if (ok) {
            daemon_metrics.config_reload_timestamp.Set(
                std::chrono::duration<double>(loop::wall_now().time_since_epoch()).count()
            );
            if (config_hash_gauge != nullptr) {
                daemon_metrics.config_hash.Remove(config_hash_gauge);
            }
            config_hash_gauge = &daemon_metrics.config_hash.Add({{"sha256", cfg.hash}});
            config_hash_gauge->Set(1);
        }
    }

    /// The engine's settings: the config's, the rule pack, and whether #operations has a
    /// destination (without one, no summary is ranked or rendered).
    engine_settings engine_settings_for(const config::config& c) const {
        engine_settings s = c.engine();
        s.rules = rules;
        s.operations.enabled = built.notifier->has_channel(channel::operations);
        return s;
    }

    /// Gives the engine `s` with label selectors resolved against the cluster. With
    /// `always` false, only when the resolved workloads differ from the running ones.
    void apply_settings(engine_settings s, bool always) {
        if (built.kubernetes != nullptr) {
            built.kubernetes->resolve_selectors(s.services);
        }
        std::map<std::string, std::vector<std::string>> workloads;
        for (const auto& [id, service] : s.services) {
            workloads.emplace(id, service.workloads);
        }
        if (!always && workloads == running_workloads) {
            return;
        }
        if (!always) {
            log.info("service workloads changed", {{"services", static_cast<int>(workloads.size())}});
        }
        running_workloads = std::move(workloads);
        core.reconfigure(std::move(s));
    }

    void record_rules() {
        daemon_metrics.rules_loaded.Set(static_cast<double>(rules->rules.size()));
        if (rules_hash_gauge != nullptr) {
            daemon_metrics.rules_hash.Remove(rules_hash_gauge);
        }
        rules_hash_gauge = &daemon_metrics.rules_hash.Add({{"sha256", rules->hash}});
        rules_hash_gauge->Set(1);
    }

    void record_signal_log() {
        const auto& log_of_signals = core.signals();
        daemon_metrics.signal_log_signals.Set(static_cast<double>(log_of_signals.size()));
        const double evicted = static_cast<double>(log_of_signals.evicted());
        if (evicted > daemon_metrics.signal_log_evicted.Value()) {
            daemon_metrics.signal_log_evicted.Increment(evicted - daemon_metrics.signal_log_evicted.Value());
        }
    }

    void on_event(incident_event&& ev) { feed(input{loop::wall_now(), std::move(ev)}); }

    void on_signal(signal&& sig) {
        if (log.enabled(log::level::debug)) {
            // Every label a field of its own; no value when the signal has none.
            log::logger line = log;
            if (sig.info != nullptr) {
                for (std::size_t i = 0; i < sig.info->labels.size(); ++i) {
                    line = line.with(std::string{sig.info->labels[i]}, *sig.label_at(i));
                }
            }
            if (sig.value) {
                line.debug(
                    "signal",
                    {{"kind", sig.kind},
                     {"subject", sig.subject},
                     {"source", sig.source},
                     {"at", format_rfc3339(sig.at)},
                     {"value", *sig.value}}
                );
            } else {
                line.debug(
                    "signal",
                    {{"kind", sig.kind},
                     {"subject", sig.subject},
                     {"source", sig.source},
                     {"at", format_rfc3339(sig.at)}}
                );
            }
        }
        feed(input{loop::wall_now(), std::move(sig)});
    }

    void on_source_status(std::string_view source, source_status&& status) {
        log.info(
            "source status", {{"source", source}, {"state", to_string(status.state)}, {"error", status.error}}
        );
        if (const auto it = first_sync.find(source); it != first_sync.end()) {
            it->second.done = it->second.done || !status.pending;
            it->second.state = status.state == source_state::healthy ? std::string{"healthy"}
                               : status.pending                      ? "pending: " + status.error
                                                                     : "failing: " + status.error;
            record_ready();
        }
        feed(input{loop::wall_now(), source_report{std::string{source}, std::move(status)}});
    }

    /// The one shell -> core boundary: every intake event, signal, source report and tick
    /// goes through here, one engine call each, and its posts go to the outbox in order.
    /// Each input is journaled first: what the engine decides follows from what is kept.
    void feed(input in) {
        state->append(in);
        decisions d = core.apply(std::move(in));
        for (auto& p : d.posts) {
            log.info(
                "post decided",
                {{"channel", std::string{to_string(p.to)}},
                 {"kind", std::string{to_string(p.kind)}},
                 {"incident", p.incident_id},
                 {"key", p.key}}
            );
            outbox.enqueue(std::move(p));
        }
        for (const auto& r : d.gather) {
            gather.start(r, [this, id = r.incident_id, epoch = r.epoch] {
                if (!stopping) {
                    feed(input{loop::wall_now(), evidence_gathered{id, epoch}});
                }
            });
        }
        daemon_metrics.open_incidents.Set(static_cast<double>(core.open_count()));
        // The wake loop recomputes its deadline from the engine.
        wake.cancel();
        if (state->growth() >= cfg.store.compact_bytes) {
            compact_state();
        }
    }

    /// Rebuilds the engine and the outbox from the state store, before anything is served:
    /// every kept input through the engine again (its posts were journaled as the outbox's
    /// changes, so they are dropped here), then the outbox's changes. Then the journal is
    /// compacted, and from now on every input and change is journaled.
    void recover_state() {
        const auto started = loop::steady_clock::now();
        auto kept = state->recover();
        if (!kept) {
            throw std::runtime_error(kept.error().detail);
        }
        std::size_t inputs = 0;
        std::size_t changes = 0;
        for (auto& r : *kept) {
            if (auto* in = std::get_if<input>(&r)) {
                if (const auto* ev = std::get_if<incident_event>(&in->what)) {
                    for (const auto& intake : built.intakes) {
                        intake->recovered(*ev);
                    }
                }
                (void)core.apply(std::move(*in));
                ++inputs;
            } else {
                outbox.restore(std::get<notify::change>(r));
                ++changes;
            }
        }
        kept->clear();
        compact_state();
        outbox.journal(notify::journal_hooks{
            .record = [this](const notify::change& c) { state->append(c); },
            .before_send = [this]() -> asio::awaitable<void> { (void)co_await state->sync(); },
        });
        server.before_reply([this](const net::request& req, net::response& res) {
            return durable_reply(req, res);
        });
        const double seconds = std::chrono::duration<double>(loop::steady_clock::now() - started).count();
        daemon_metrics.store_recovery_seconds.Set(seconds);
        log.info(
            "state recovered",
            {{"store", state->describe()},
             {"inputs", static_cast<long long>(inputs)},
             {"outbox_changes", static_cast<long long>(changes)},
             {"open_incidents", static_cast<long long>(core.open_count())},
             {"queued_posts",
              static_cast<long long>(outbox.depth(channel::status) + outbox.depth(channel::operations))},
             {"seconds", seconds}}
        );
    }

    /// Rewrites the journal to what still matters: every input about an incident the engine
    /// still knows, resolves of unknown incidents while they are remembered, signals within
    /// their retention, time passing since the oldest incident began, each source's last
    /// report, and the outbox as it is.
    void compact_state() {
        const auto now = loop::wall_now();
        const millis resolved_retention = engine_settings{}.resolved_retention;
        wall_time since = now - std::max(cfg.signals.retention, resolved_retention);
        std::set<std::string, std::less<>> known;
        for (const auto& v : core.incidents_view()) {
            if (const auto* inc = core.find(v.id)) {
                since = std::min({since, inc->started, inc->opened_at});
            }
            known.insert(v.id);
        }
        store::compaction c;
        for (const auto& [name, status] : core.sources()) {
            c.base.push_back(input{std::min(status.since, since), source_report{name, status}});
        }
        const wall_time signals_since = now - cfg.signals.retention;
        const wall_time resolved_since = now - resolved_retention;
        c.keep = [known = std::move(known), since, signals_since, resolved_since](const input& in) {
            if (const auto* ev = std::get_if<incident_event>(&in.what)) {
                return known.contains(ev->incident.id) ||
                       (ev->type == incident_event_type::resolved && in.at >= resolved_since);
            }
            if (std::holds_alternative<signal>(in.what)) {
                return in.at >= signals_since;
            }
            if (const auto* g = std::get_if<evidence_gathered>(&in.what)) {
                return known.contains(g->incident);
            }
            return in.at >= since;  // ticks and source reports
        };
        c.outbox = outbox.state();
        state->compact(std::move(c));
    }

    /// A webhook is answered once what it fed the engine is durable; 503 (the sender
    /// retries) when the store cannot make it so.
    asio::awaitable<void> durable_reply(const net::request& req, net::response& res) {
        if (req.method() != http::verb::post || res.result_int() >= 300) {
            co_return;
        }
        if (const auto r = co_await state->sync(); !r) {
            res = net::make_error(req, http::status::service_unavailable, "state store unavailable; retry");
        }
    }

    /// One timer drives the engine: it sleeps until the engine's next_wake.
    asio::awaitable<void> wake_loop() {
        while (!stopping) {
            const auto next = core.next_wake();
            wake.expires_at(next ? loop::deadline_for(*next) : loop::steady_clock::time_point::max());
            auto [ec] = co_await wake.async_wait(tuple_awaitable);
            if (stopping) {
                break;
            }
            if (ec == asio::error::operation_aborted) {
                continue;  // rescheduled by feed()
            }
            feed(input{loop::wall_now(), tick{}});
        }
    }

    /// Measures how late a 1 s timer fires: the event loop's lag.
    asio::awaitable<void> heartbeat_loop() {
        constexpr auto period = std::chrono::seconds{1};
        while (!stopping) {
            const auto expected = loop::steady_clock::now() + period;
            heartbeat.expires_at(expected);
            auto [ec] = co_await heartbeat.async_wait(tuple_awaitable);
            if (ec || stopping) {
                break;
            }
            const auto lag = loop::steady_clock::now() - expected;
            daemon_metrics.loop_lag_seconds.Set(std::chrono::duration<double>(lag).count());
        }
    }

    asio::awaitable<void> signal_loop() {
        while (!stopping) {
            auto [ec, signo] = co_await signals.async_wait(tuple_awaitable);
            if (ec) {
                break;
            }
            if (signo == SIGHUP) {
                reload();
            } else {
                log.info("signal received", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"}});
                begin_shutdown();
            }
        }
    }

    bool reload() {
        auto loaded = config::load(cfg.source_path);
        if (!loaded.ok()) {
            record_config(false);
            for (const auto& p : loaded.problems) {
                log.error("config reload rejected", {{"problem", p.to_string()}});
            }
            return false;
        }
        // The rules are validated before anything is swapped: an invalid rule keeps the old
        // config and the old rules, exactly as an invalid config does.
        auto next_rules = rules::load(loaded.value->rules.files, loaded.value->rules.tuning);
        if (!next_rules.ok()) {
            record_config(false);
            for (const auto& p : next_rules.problems) {
                log.error("rules reload rejected", {{"problem", p.to_string()}});
            }
            return false;
        }
        config::config next = std::move(*loaded.value);
        register_secrets(*sink, next);
        // Sockets, notifier and outbox are built once: changes there wait for a restart.
        // They are logged, exported, and kept as they run, so what we report is true.
        bool restart = false;
        const auto keep = [&](std::string_view section, auto& next_part, const auto& running) {
            if (!(next_part == running)) {
                log.warn("config change needs a restart", {{"section", section}});
                next_part = running;
                restart = true;
            }
        };
        keep("server", next.server, cfg.server);
        keep("notify", next.notify, cfg.notify);
        // PagerDuty's signing secrets are the one part of an integration that reloads live
        // (a rotation); every other change to an integration's section waits for a restart.
        auto secrets = std::move(next.pagerduty.webhook_secrets);
        next.pagerduty.webhook_secrets = cfg.pagerduty.webhook_secrets;
        config::each_section([&](std::string_view name, auto member) {
            keep(name, next.*member, cfg.*member);
        });
        next.pagerduty.webhook_secrets = std::move(secrets);
        if (built.kubernetes != nullptr &&
            built.kubernetes->namespaces_differ(next.kubernetes, next.services)) {
            // New namespaces named under services.*.kubernetes are watched after a restart.
            log.warn("config change needs a restart", {{"section", "services.*.kubernetes namespaces"}});
            restart = true;
        }
        {
            // The Alertmanager intake compiled its service matchers when it was made.
            const auto matchers = [](const config::config& c) {
                std::vector<std::pair<std::string, std::vector<std::string>>> out;
                for (const auto& [id, svc] : c.services) {
                    if (!svc.alertmanager.empty()) {
                        out.emplace_back(id, svc.alertmanager);
                    }
                }
                return out;
            };
            if (next.alertmanager.enabled() && matchers(next) != matchers(cfg)) {
                log.warn("config change needs a restart", {{"section", "services.*.alertmanager"}});
                restart = true;
            }
        }
        {
            // The Postgres source read whose sessions are whose when it was made.
            const auto sessions = [](const config::config& c) {
                std::vector<std::tuple<std::string, std::vector<std::string>, std::vector<std::string>>> out;
                for (const auto& [id, svc] : c.services) {
                    out.emplace_back(id, svc.postgres_applications, svc.postgres_users);
                }
                return out;
            };
            if (next.postgres.enabled() && sessions(next) != sessions(cfg)) {
                log.warn("config change needs a restart", {{"section", "services.*.postgres"}});
                restart = true;
            }
        }
        daemon_metrics.config_restart_required.Set(restart ? 1 : 0);
        if (next_rules.value->hash != rules->hash) {
            rules = std::move(next_rules.value);
            log.info(
                "rules reloaded",
                {{"rules", static_cast<int>(rules->rules.size())}, {"origin", rules->origin}}
            );
        }
        apply_settings(engine_settings_for(next), true);
        record_rules();
        built.pagerduty->set_secrets(next.pagerduty.webhook_secrets);
        log.set_level(to_log_level(next.log.level));
        cfg = std::move(next);
        record_config(true);
        log.info("config reloaded", {{"sha256", cfg.hash}});
        wake.cancel();
        return true;
    }

    void begin_shutdown() {
        if (stopping) {
            return;
        }
        stopping = true;
        record_ready();
        // Detached: the coroutine captures `this`, which lives until ioc.run() returns.
        asio::co_spawn(ioc, shutdown_steps(), asio::detached);
    }

    /// LIFO teardown: each step is named, and a failing step does not stop the rest.
    asio::awaitable<void> shutdown_steps() {
        const auto step = [this](std::string_view name, const std::function<void()>& f) {
            try {
                f();
            } catch (const std::exception& e) {
                log.error("shutdown step failed", {{"step", name}, {"error", e.what()}});
            }
        };
        step("stop accepting", [&] {
            server.stop();
            if (admin_server) {
                admin_server->stop();
            }
        });
        step("stop sources", [&] {
            for (auto it = built.sources.rbegin(); it != built.sources.rend(); ++it) {
                it->source->stop();
            }
        });
        step("stop engine timer", [&] { wake.cancel(); });
        const bool drained = co_await outbox.drain(cfg.notify.drain_timeout);
        step("stop outbox", [&] { outbox.stop(); });
        step("close state store", [&] { state->close(); });
        // A send still in flight past the drain deadline is aborted, so exit is bounded
        // by drain_timeout rather than by the notifier's request timeout.
        step("abort in-flight requests", [&] { built.notifier->abort(); });
        step("stop timers", [&] {
            heartbeat.cancel();
            signals.cancel();
        });
        log.info("stopped", {{"drained", drained}});
    }

    asio::io_context& ioc;
    config::config cfg;
    std::shared_ptr<const rule_set> rules;
    std::shared_ptr<log::sink> sink;
    log::logger log;
    metrics::exposition exposition;
    metrics::daemon_metrics daemon_metrics;
    prometheus::Gauge* config_hash_gauge = nullptr;
    prometheus::Gauge* rules_hash_gauge = nullptr;
    wiring wires;
    components built;  ///< the catalog's: notifier, intakes, sources
    engine core;
    notify::outbox outbox;
    gatherer gather;
    std::unique_ptr<store::store> state;  ///< what survives a restart (store:)
    net::router routes;
    net::http_server server;
    net::router admin_routes;                        ///< /healthz, /readyz and /metrics only
    std::unique_ptr<net::http_server> admin_server;  ///< on server.admin_listen, when set
    std::map<std::string, std::vector<std::string>> running_workloads;  ///< resolved, as in the engine
    loop::timer wake;
    loop::timer heartbeat;
    asio::signal_set signals;
    /// What each configured source has said since start: /readyz waits for its first look.
    struct first_look {
        bool done = false;                    ///< synced, or failing for a reason it gave
        std::string state = "no report yet";  ///< "healthy", "pending: ...", "failing: ..."
    };
    std::map<std::string, first_look, std::less<>> first_sync;
    bool serving = false;     ///< listening, sources started
    bool sources_in = false;  ///< every source's first look was over once
    bool stopping = false;
};

daemon::daemon(
    asio::io_context& ioc,
    config::config cfg,
    std::shared_ptr<const rule_set> rules,
    std::shared_ptr<log::sink> sink
)
    : impl_(std::make_unique<impl>(ioc, std::move(cfg), std::move(rules), std::move(sink))) {}

daemon::~daemon() = default;

asio::ip::tcp::endpoint daemon::start() {
    auto& i = *impl_;
    if (i.cfg.leader_election.enabled) {
        // The elector (cluster/) is ready; two replicas also need the shared store.
        i.log.warn(
            "leader_election is not run by this version", {{"hint", "run one replica (docs/operations.md)"}}
        );
    }
    i.recover_state();
    const auto listening = [&i](std::string_view listener, const asio::ip::tcp::endpoint& at) {
        i.log.info(
            "listening",
            {{"component", "server"},
             {"listener", listener},
             {"address", at.address().to_string()},
             {"port", static_cast<int>(at.port())}}
        );
    };
    const auto ep = i.server.listen(i.cfg.server.address, i.cfg.server.port);
    listening("main", ep);
    if (const auto& admin = i.cfg.server.admin) {
        i.admin_server = std::make_unique<net::http_server>(
            i.ioc.get_executor(),
            i.admin_routes,
            admin_limits_from(i.cfg.server),
            i.log.with("component", "server"),
            i.exposition.registry(),
            "admin"
        );
        listening("admin", i.admin_server->listen(admin->address, admin->port));
    }
    i.outbox.start();
    // Detached is safe for these three: each ends when `stopping` is set and its timer
    // is cancelled, and each handles its own errors as values.
    asio::co_spawn(i.ioc, i.wake_loop(), asio::detached);       // detached: see above
    asio::co_spawn(i.ioc, i.heartbeat_loop(), asio::detached);  // detached: see above
    asio::co_spawn(i.ioc, i.signal_loop(), asio::detached);     // detached: see above
    for (const auto& [name, source] : i.built.sources) {
        source->start();
        i.log.info("source started", {{"source", name}, {"reads", source->describe()}});
    }
    i.serving = true;
    i.record_ready();
    i.log.info(
        "ready",
        {{"notifier", std::string{i.built.notifier->kind()}},
         {"reminder_interval", format_duration(i.cfg.status.reminder_interval)},
         {"rules", static_cast<int>(i.rules->rules.size())},
         {"rules_origin", i.rules->origin},
         {"config_sha256", i.cfg.hash}}
    );
    return ep;
}

void daemon::shutdown() {
    impl_->begin_shutdown();
}

bool daemon::reload() {
    return impl_->reload();
}

}  // namespace runbookd::app
