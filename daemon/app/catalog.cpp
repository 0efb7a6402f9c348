#include "app/catalog.hpp"

#include "intake/pagerduty/handler.hpp"
#include "notify/console/console_notifier.hpp"
#include "notify/discord/discord_notifier.hpp"
#include "sources/certs/source.hpp"
#include "sources/cloudsql/source.hpp"
#include "sources/gcp_status/source.hpp"
#include "sources/kubernetes/cluster.hpp"
#include "sources/postgres/source.hpp"

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace runbookd::app {

components::components() = default;
components::components(components&&) noexcept = default;
components& components::operator=(components&&) noexcept = default;
components::~components() = default;

namespace {

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
                }},
            w.redact};
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

    wiring& w;
    prometheus::Family<prometheus::Gauge>& up;
};

}  // namespace

components build(const config::config& c, wiring& w) {
    components out;
    contexts cx{w};
    out.notifier = c.notify.kind == config::notifier_kind::discord
                       ? notify::discord::make(c.discord, w.loop, w.log)
                       : notify::console::make(c.console);

    {
        auto icx = cx.intake("pagerduty");
        auto pagerduty = intake::pagerduty::make(c.pagerduty, icx);
        out.pagerduty = pagerduty.get();
        out.intakes.push_back(std::move(pagerduty));
    }

    out.kubernetes = cx.add_source(out, "kubernetes", [&](auto& s) {
        return sources::kubernetes::make(c.kubernetes, c.services, s);
    });
    cx.add_source(out, "cloudsql", [&](auto& s) { return sources::cloudsql::make(c.cloudsql, c.google, s); });
    cx.add_source(out, "gcp_status", [&](auto& s) {
        return sources::gcp_status::make(c.gcp_status, c.google, s);
    });
    cx.add_source(out, "postgres", [&](auto& s) { return sources::postgres::make(c.postgres, s); });
    cx.add_source(out, "certs", [&](auto& s) { return sources::certs::make(c.certs, s); });
    return out;
}

}  // namespace runbookd::app
