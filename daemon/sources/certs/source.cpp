#include "sources/certs/source.hpp"

#include "loop/clock.hpp"
#include "sources/poller.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

namespace runbookd::sources::certs {

namespace asio = boost::asio;
using net::tls_outcome;

namespace {

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out;
}

/// Where the earliest certificate sits: the server's own, one it chains through, or the
/// self-signed anchor the server sent along.
std::string_view which_of(const cert_info& c) {
    if (c.depth == 0) {
        return "leaf";
    }
    return c.subject == c.issuer ? "root" : "intermediate";
}

constexpr std::array every_outcome{
    tls_outcome::ok,
    tls_outcome::expired,
    tls_outcome::not_yet_valid,
    tls_outcome::name_mismatch,
    tls_outcome::untrusted_issuer,
    tls_outcome::handshake_failed,
    tls_outcome::refused,
    tls_outcome::timed_out,
    tls_outcome::unresolved};

/// What a round needs; shared with the round in flight, so that a source destroyed while
/// handshakes are pending leaves them something to finish against.
struct state {
    state(const config& c, context& cx)
        : cfg(c),
          check(cx.loop),
          on_signal(cx.to.on_signal),
          log(cx.log),
          not_after(
              prometheus::BuildGauge()
                  .Name("runbookd_cert_not_after_timestamp_seconds")
                  .Help("Unix time of the earliest notAfter of each target's certificate chain, as last read")
                  .Register(cx.metrics)
          ),
          checks(prometheus::BuildCounter()
                     .Name("runbookd_cert_checks_total")
                     .Help("Certificate checks, by outcome (ok, expired, not_yet_valid, name_mismatch, "
                           "untrusted_issuer, handshake_failed, refused, timed_out, unresolved)")
                     .Register(cx.metrics)),
          duration(prometheus::BuildHistogram()
                       .Name("runbookd_cert_check_duration_seconds")
                       .Help("Time from the start of one certificate check to its result")
                       .Register(cx.metrics)
                       .Add(
                           {},
                           prometheus::Histogram::BucketBoundaries{
                               0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
                       )) {
        for (const auto o : every_outcome) {
            by_outcome.emplace(o, &checks.Add({{"outcome", std::string{net::to_string(o)}}}));
        }
    }

    void record(const target& t, const check_result& r) {
        by_outcome.at(r.outcome)->Increment();
        duration.Observe(std::chrono::duration<double>(r.took).count());
        const std::string host = t.host + ":" + std::to_string(t.port);
        if (r.chain) {
            const auto& earliest = r.chain->certs[r.chain->earliest];
            auto& g = not_after.Add({{"host", t.host}, {"port", std::to_string(t.port)}});
            g.Set(std::chrono::duration<double>(earliest.not_after.time_since_epoch()).count());
        }
        if (r.outcome != tls_outcome::ok) {
            log.debug(
                "certificate check failed",
                {{"target", host}, {"outcome", net::to_string(r.outcome)}, {"error", r.detail}}
            );
        }
    }

    config cfg;
    certs::checker check;
    std::function<void(signal)> on_signal;
    log::logger log;
    prometheus::Family<prometheus::Gauge>& not_after;
    prometheus::Family<prometheus::Counter>& checks;
    prometheus::Histogram& duration;
    std::map<tls_outcome, prometheus::Counter*> by_outcome;
    bool stopped = false;
};

/// One round: every target, `concurrency` at a time, each signal handed over as its check
/// ends. A target that fails is evidence, not a failure of the source.
asio::awaitable<poll_outcome> round(std::shared_ptr<state> s) {
    // Named, not a temporary of the co_await expression (see checker::check_all).
    const checker::on_result each = [raw = s.get()](std::size_t i, const check_result& r) {
        if (raw->stopped) {
            return;  // stopping: the outcome is dropped
        }
        const auto& t = raw->cfg.targets[i];
        raw->record(t, r);
        raw->on_signal(expiry_signal(t, r, loop::wall_now(), raw->cfg.warn_within));
    };
    co_await s->check.check_all(s->cfg.targets, s->cfg.concurrency, s->cfg.timeout, each);
    co_return poll_result{};
}

class cert_source final : public sources::source {
public:
    cert_source(const config& cfg, context& cx) : state_(std::make_shared<state>(cfg, cx)) {
        // Every CA file at start: a bad one is a start-up error, not a failed check later.
        std::set<std::string> files;
        for (const auto& t : state_->cfg.targets) {
            files.insert(t.ca_file);
        }
        for (const auto& f : files) {
            if (auto loaded = state_->check.load_trust(f); !loaded) {
                throw std::runtime_error("certs: " + loaded.error().detail);
            }
        }
        std::vector<poll_job> jobs;
        jobs.push_back(poll_job{"round", state_->cfg.interval, [s = state_] { return round(s); }});
        poller_ = std::make_unique<poller>(
            cx.loop, "certs", std::move(jobs), cx.to.on_signal, cx.to.on_status, cx.log, cx.metrics
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
               " every " + format_duration(c.interval) + ", " + std::to_string(c.concurrency) + " at a time";
    }

    void start() override { poller_->start(); }

    void stop() override {
        state_->stopped = true;
        poller_->stop();
    }

private:
    std::shared_ptr<state> state_;
    std::unique_ptr<poller> poller_;
};

}  // namespace

signal expiry_signal(
    const target& t, const check_result& r, wall_time at, std::chrono::milliseconds warn_within
) {
    signal s;
    s.set_kind("cert.expiry");
    s.source = "certs";
    s.subject = t.host;
    s.at = at;
    s.set("host", t.host);
    s.set("port", std::to_string(t.port));
    s.set("outcome", std::string{net::to_string(r.outcome)});
    s.set("error", r.outcome == tls_outcome::ok ? std::string{} : r.detail);
    s.set("services", t.services.empty() ? std::string{"*"} : joined(t.services));
    bool soon = false;
    if (r.chain && !r.chain->certs.empty()) {
        const auto& leaf = r.chain->certs.front();
        const auto& earliest = r.chain->certs[r.chain->earliest];
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(earliest.not_after - at);
        s.value = std::chrono::duration<double>(left).count();
        soon = left.count() >= 0 && left <= warn_within;
        s.set("not_after", format_rfc3339_seconds(earliest.not_after));
        s.set("which", std::string{which_of(earliest)});
        s.set("cert_subject", leaf.subject);
        s.set("issuer", leaf.issuer);
        s.set("sans", joined(leaf.sans));
    }
    s.set("expires_soon", soon ? "true" : "false");
    return s;
}

std::unique_ptr<sources::source> make(const config& cfg, context& cx) {
    if (!cfg.enabled()) {
        return nullptr;
    }
    config resolved = cfg;
    for (auto& t : resolved.targets) {
        if (t.ca_file.empty()) {
            t.ca_file = cfg.ca_file;
        }
    }
    return std::make_unique<cert_source>(resolved, cx);
}

}  // namespace runbookd::sources::certs
