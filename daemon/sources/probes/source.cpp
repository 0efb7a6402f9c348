#include "sources/probes/source.hpp"

#include "loop/clock.hpp"
#include "sources/poller.hpp"
#include "sources/probes/check.hpp"
#include "sources/probes/parse.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <set>
#include <stdexcept>
#include <utility>

namespace runbookd::sources::probes {

namespace asio = boost::asio;

namespace {

/// A counting semaphore: a check holds one of `concurrency` places in the channel's buffer
/// while it runs; the others wait in async_send.
using slots = asio::experimental::channel<void(boost::system::error_code)>;

/// What every target's job needs; shared with the checks in flight, so that a source
/// destroyed while checks are pending leaves them something to finish against.
struct state {
    state(const config& c, std::vector<endpoint> where, context& cx)
        : cfg(c),
          endpoints(std::move(where)),
          trackers(cfg.targets.size()),
          gfe_now(cfg.targets.size(), false),
          probe(cx.loop),
          places(cx.loop, cfg.concurrency),
          log(cx.log),
          checks(
              prometheus::BuildCounter()
                  .Name("runbookd_probe_checks_total")
                  .Help("HTTP probe checks, by outcome (ok, wrong_status, body_mismatch, timed_out, reset, "
                        "refused, tls_error, dns_failure, bad_response)")
                  .Register(cx.metrics)
          ),
          signals(prometheus::BuildCounter()
                      .Name("runbookd_probe_signals_total")
                      .Help("probe.failure and probe.recovered signals sent, by kind")
                      .Register(cx.metrics)),
          up(prometheus::BuildGauge()
                 .Name("runbookd_probe_up")
                 .Help("1 when the target's last check passed, 0 when it failed")
                 .Register(cx.metrics)),
          duration(prometheus::BuildHistogram()
                       .Name("runbookd_probe_duration_seconds")
                       .Help("Time from the start of one probe check to its result")
                       .Register(cx.metrics)
                       .Add(
                           {},
                           prometheus::Histogram::BucketBoundaries{
                               0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
                       )) {
        for (const auto o : every_outcome) {
            by_outcome.emplace(o, &checks.Add({{"outcome", std::string{to_string(o)}}}));
        }
        failures = &signals.Add({{"kind", "probe.failure"}});
        recoveries = &signals.Add({{"kind", "probe.recovered"}});
        for (const auto& t : cfg.targets) {
            up_of.push_back(&up.Add({{"target", t.name}}));
        }
    }

    /// Distinct hosts whose last answer was Google's load-balancer error page.
    std::size_t gfe_hosts() const {
        std::set<std::string> hosts;
        for (std::size_t i = 0; i < gfe_now.size(); ++i) {
            if (gfe_now[i]) {
                hosts.insert(endpoints[i].host);
            }
        }
        return hosts.size();
    }

    /// What check `i`'s result means: metrics, the target's verdict, and its signals.
    poll_result settle(std::size_t i, const check_result& r) {
        const auto& t = cfg.targets[i];
        const bool ok = r.what == outcome::ok;
        by_outcome.at(r.what)->Increment();
        duration.Observe(std::chrono::duration<double>(r.took).count());
        up_of[i]->Set(ok ? 1 : 0);
        gfe_now[i] = r.google_frontend;
        if (!ok) {
            log.debug(
                "probe failed", {{"target", t.name}, {"outcome", to_string(r.what)}, {"error", r.detail}}
            );
        }
        const auto at = loop::wall_now();
        const thresholds th{cfg.failures_before_alert, cfg.flap_window, cfg.flap_changes};
        const verdict v = trackers[i].observe(ok, at, th);
        poll_result out;
        if (v.what == verdict::kind::failure) {
            failures->Increment();
            out.signals.push_back(failure_signal(t, r, v, at, gfe_hosts()));
        } else if (v.what == verdict::kind::recovered) {
            recoveries->Increment();
            out.signals.push_back(recovered_signal(t, r, v, at));
        }
        return out;
    }

    config cfg;
    std::vector<endpoint> endpoints;
    std::vector<tracker> trackers;
    std::vector<bool> gfe_now;
    prober probe;
    slots places;
    log::logger log;
    prometheus::Family<prometheus::Counter>& checks;
    prometheus::Family<prometheus::Counter>& signals;
    prometheus::Family<prometheus::Gauge>& up;
    prometheus::Histogram& duration;
    std::map<outcome, prometheus::Counter*> by_outcome;
    prometheus::Counter* failures = nullptr;
    prometheus::Counter* recoveries = nullptr;
    std::vector<prometheus::Gauge*> up_of;
    bool stopped = false;
};

/// Gives a place back when the check holding it ends, however it ends.
struct place_held {
    explicit place_held(slots& s) : s_(s) {}
    ~place_held() {
        s_.try_receive([](boost::system::error_code) {});
    }
    place_held(const place_held&) = delete;
    place_held& operator=(const place_held&) = delete;

private:
    slots& s_;
};

/// One check of target `i`, once a place is free. A target that fails is evidence, not a
/// failure of the source.
asio::awaitable<poll_outcome> check_one(std::shared_ptr<state> s, std::size_t i) {
    auto [ec] =
        co_await s->places.async_send(boost::system::error_code{}, asio::as_tuple(asio::use_awaitable));
    if (ec || s->stopped) {
        co_return poll_result{};  // stopping: the channel was closed
    }
    check_result r;
    {
        const place_held held{s->places};
        r = co_await s->probe.check(s->cfg.targets[i], s->endpoints[i], s->cfg.targets[i].timeout);
    }
    if (s->stopped) {
        co_return poll_result{};  // stopping: the outcome is dropped
    }
    co_return s->settle(i, r);
}

class probe_source final : public sources::source {
public:
    probe_source(const config& cfg, std::vector<endpoint> where, context& cx)
        : state_(std::make_shared<state>(cfg, std::move(where), cx)) {
        // Every CA file at start: a bad one is a start-up error, not a failed check later.
        std::set<std::string> files;
        for (std::size_t i = 0; i < state_->cfg.targets.size(); ++i) {
            if (state_->endpoints[i].tls) {
                files.insert(state_->cfg.targets[i].ca_file);
            }
        }
        for (const auto& f : files) {
            if (auto loaded = state_->probe.load_trust(f); !loaded) {
                throw std::runtime_error("probes: " + loaded.error().detail);
            }
        }
        std::vector<poll_job> jobs;
        for (std::size_t i = 0; i < state_->cfg.targets.size(); ++i) {
            const auto& t = state_->cfg.targets[i];
            jobs.push_back(poll_job{t.name, t.interval, [s = state_, i] { return check_one(s, i); }});
        }
        poller_ = std::make_unique<poller>(
            cx.loop, "probes", std::move(jobs), cx.to.on_signal, cx.to.on_status, cx.log, cx.metrics
        );
    }

    void refresh(
        const refresh_window& /*window*/, loop::steady_clock::time_point /*deadline*/, refresh_done done
    ) override {
        poller_->refresh(std::move(done));
    }
    std::string describe() const override {
        const auto& c = state_->cfg;
        return std::to_string(c.targets.size()) + (c.targets.size() == 1 ? " target" : " targets") +
               " every " + format_duration(c.interval) + ", " + std::to_string(c.concurrency) +
               " at a time, failing after " + std::to_string(c.failures_before_alert) + " in a row";
    }

    void start() override { poller_->start(); }

    void stop() override {
        state_->stopped = true;
        state_->places.close();
        state_->probe.abort_all();
        poller_->stop();
    }

private:
    std::shared_ptr<state> state_;
    std::unique_ptr<poller> poller_;
};

}  // namespace

std::unique_ptr<sources::source> make(const config& cfg, context& cx) {
    if (!cfg.enabled()) {
        return nullptr;
    }
    config resolved = cfg;
    std::vector<endpoint> where;
    for (auto& t : resolved.targets) {
        if (t.ca_file.empty()) {
            t.ca_file = cfg.ca_file;
        }
        if (t.timeout.count() == 0) {
            t.timeout = cfg.timeout;
        }
        if (t.interval.count() == 0) {
            t.interval = cfg.interval;
        }
        auto p = parse_url(t.url);
        if (!p.where) {
            throw std::runtime_error("probes: target " + t.name + ": " + p.reason);
        }
        where.push_back(std::move(*p.where));
    }
    return std::make_unique<probe_source>(resolved, std::move(where), cx);
}

}  // namespace runbookd::sources::probes
