#include "app/catalog.hpp"

#include "intake/alertmanager/handler.hpp"
#include "intake/deploys/handler.hpp"
#include "intake/pagerduty/handler.hpp"
#include "loop/clock.hpp"
#include "notify/console/console_notifier.hpp"
#include "notify/discord/discord_notifier.hpp"
#include "sources/certs/source.hpp"
#include "sources/cloudsql/source.hpp"
#include "sources/gcp_status/source.hpp"
#include "sources/kubernetes/cluster.hpp"
#include "sources/pagerduty_api/source.hpp"
#include "sources/postgres/source.hpp"
#include "sources/probes/source.hpp"
#include "sources/promql/source.hpp"

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace runbookd::app {

components::components() = default;
components::components(components&&) noexcept = default;
components& components::operator=(components&&) noexcept = default;
components::~components() = default;

namespace {

/// The source side of an intake whose findings are signals (deploy webhooks): healthy while
/// its route is served, so that rules on its kinds are checkable, and "not configured"
/// without it. Webhooks cannot fail to arrive in a way we could see; refusals are counted by
/// the intake's own metrics.
class served_route final : public sources::source {
public:
    served_route(std::string route, std::function<void(source_status)> on_status)
        : route_(std::move(route)), on_status_(std::move(on_status)) {}
    std::string describe() const override { return "webhook endpoint POST " + route_; }
    void start() override { on_status_(source_status{source_state::healthy, {}, loop::wall_now()}); }
    void stop() override {}

private:
    std::string route_;
    std::function<void(source_status)> on_status_;
};

/// What every integration's context is made of: a logger naming it, and a status sink
/// bound to its name that also keeps runbookd_source_up{source}.
struct contexts {
    explicit contexts(wiring& wires)
        : w(wires),
          up(prometheus::BuildGauge()
                 .Name("runbookd_source_up")
                 .Help("1 while the source is healthy (every job's or watch's last request succeeded), else 0"
                 )
                 .Register(wires.metrics)) {}

    sources::context source(const std::string& name) {
        auto& gauge = up.Add({{"source", name}});
        gauge.Set(0);
        return sources::context{
            w.loop,
            w.log.with("component", name),
            w.metrics,
            sources::sinks{
                w.on_signal,
                [&gauge, name, to = w.on_status](source_status s) {
                    gauge.Set(s.state == source_state::healthy ? 1 : 0);
                    to(name, std::move(s));
                },
                w.on_event},
            w.redact,
            w.incidents};
    }

    intake::context intake(const std::string& name) {
        return intake::context{w.log.with("component", name), w.metrics, {w.on_event, w.on_signal}, w.redact};
    }

    /// Makes and keeps a source; `make_it(cx)` returns nullptr when its section is off.
    template <class Make>
    auto* add_source(components& out, const std::string& name, Make&& make_it) {
        auto cx = source(name);
        auto made = make_it(cx);
        auto* raw = made.get();
        if (made) {
            out.sources.push_back(named_source{name, std::move(made)});
        } else {
            up.Remove(&up.Add({{"source", name}}));  // present only for the sources configured
        }
        return raw;
    }

    /// Makes and keeps an intake that emits incident events; `make_it(cx)` returns nullptr
    /// when its section is off.
    template <class Make>
    void add_intake(components& out, const std::string& name, Make&& make_it) {
        auto icx = intake(name);
        if (auto made = make_it(icx)) {
            out.intakes.push_back(std::move(made));
        }
    }

    /// Makes and keeps an intake that emits signals, and its source side (served_route).
    template <class Make>
    void add_signal_intake(components& out, const std::string& name, Make&& make_it) {
        auto icx = intake(name);
        auto made = make_it(icx);
        if (!made) {
            return;
        }
        std::string route{made->path()};
        out.intakes.push_back(std::move(made));
        add_source(out, name, [&](sources::context& s) -> std::unique_ptr<sources::source> {
            return std::make_unique<served_route>(std::move(route), s.to.on_status);
        });
    }

    wiring& w;
    prometheus::Family<prometheus::Gauge>& up;
};

}  // namespace

components build(const config::config& c, wiring& w) {
    components out;
    contexts cx{w};
    out.notifier = c.notify.kind == config::notifier_kind::discord
                       ? notify::discord::make(c.discord, w.loop, w.log, w.metrics)
                       : notify::console::make(c.console);

    {
        auto icx = cx.intake("pagerduty");
        auto pagerduty = intake::pagerduty::make(c.pagerduty, icx);
        out.pagerduty = pagerduty.get();
        out.intakes.push_back(std::move(pagerduty));
    }
    cx.add_intake(out, "alertmanager", [&](auto& i) {
        return intake::alertmanager::make(c.alertmanager, c.services, i);
    });

    out.kubernetes = cx.add_source(out, "kubernetes", [&](auto& s) {
        return sources::kubernetes::make(c.kubernetes, c.services, s);
    });
    cx.add_source(out, "cloudsql", [&](auto& s) { return sources::cloudsql::make(c.cloudsql, c.google, s); });
    cx.add_source(out, "gcp_status", [&](auto& s) {
        return sources::gcp_status::make(c.gcp_status, c.google, s);
    });
    cx.add_source(out, "postgres", [&](auto& s) {
        return sources::postgres::make(c.postgres, c.services, s);
    });
    cx.add_source(out, "certs", [&](auto& s) { return sources::certs::make(c.certs, s); });
    cx.add_signal_intake(out, "deploys", [&](auto& i) {
        return intake::deploys::make(c.deploys, c.services, i);
    });
    cx.add_source(out, "probes", [&](auto& s) { return sources::probes::make(c.probes, s); });
    cx.add_source(out, "promql", [&](auto& s) { return sources::promql::make(c.promql, s); });
    cx.add_source(out, "pagerduty_api", [&](auto& s) {
        return sources::pagerduty_api::make(c.pagerduty_api, s);
    });
    return out;
}

}  // namespace runbookd::app
