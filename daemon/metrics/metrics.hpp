#pragma once
// The process's metrics registry and its text exposition, served at /metrics by
// our own HTTP server (no second server from prometheus-cpp's pull exposer).

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace runbookd::metrics {

/// Owns the registry every component registers its metrics in.
class exposition {
public:
    exposition();
    prometheus::Registry& registry() noexcept { return *registry_; }
    /// The text format 0.0.4 body of /metrics.
    std::string render() const;

private:
    std::shared_ptr<prometheus::Registry> registry_;
};

/// Content-Type of render()'s output.
inline constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Process-wide metrics: build, loop health, configuration, bugs.
struct daemon_metrics {
    explicit daemon_metrics(prometheus::Registry& r);

    prometheus::Gauge& open_incidents;
    prometheus::Gauge& loop_lag_seconds;
    prometheus::Gauge& store_recovery_seconds;
    prometheus::Gauge& config_reload_successful;
    prometheus::Gauge& config_reload_timestamp;
    prometheus::Family<prometheus::Gauge>& config_hash;
    prometheus::Gauge& config_restart_required;
    prometheus::Counter& bugs;
    prometheus::Gauge& ready;
    prometheus::Gauge& rules_loaded;
    prometheus::Family<prometheus::Gauge>& rules_hash;
    prometheus::Gauge& signal_log_signals;
    prometheus::Counter& signal_log_evicted;
};

}  // namespace runbookd::metrics
