#include "metrics/metrics.hpp"

#include "core/version.hpp"

#include <prometheus/text_serializer.h>

namespace runbookd::metrics {

exposition::exposition() : registry_(std::make_shared<prometheus::Registry>()) {
    prometheus::BuildGauge()
        .Name("runbookd_build_info")
        .Help("Build information; always 1.")
        .Register(*registry_)
        .Add({{"version", std::string{version()}}, {"revision", std::string{revision()}}})
        .Set(1);
}

std::string exposition::render() const {
    const prometheus::TextSerializer serializer;
    return serializer.Serialize(registry_->Collect());
}

daemon_metrics::daemon_metrics(prometheus::Registry& r)
    : open_incidents(prometheus::BuildGauge()
                         .Name("runbookd_open_incidents")
                         .Help("Incidents triggered and not yet resolved.")
                         .Register(r)
                         .Add({})),
      loop_lag_seconds(prometheus::BuildGauge()
                           .Name("runbookd_event_loop_lag_seconds")
                           .Help("How late the last event-loop heartbeat timer fired.")
                           .Register(r)
                           .Add({})),
      store_recovery_seconds(
          prometheus::BuildGauge()
              .Name("runbookd_store_recovery_seconds")
              .Help("How long the start-up recovery from the state store took (read and replay).")
              .Register(r)
              .Add({})
      ),
      config_reload_successful(prometheus::BuildGauge()
                                   .Name("runbookd_config_last_reload_successful")
                                   .Help("1 if the last configuration load or reload succeeded.")
                                   .Register(r)
                                   .Add({})),
      config_reload_timestamp(prometheus::BuildGauge()
                                  .Name("runbookd_config_last_reload_success_timestamp_seconds")
                                  .Help("Time of the last successful configuration load.")
                                  .Register(r)
                                  .Add({})),
      config_hash(prometheus::BuildGauge()
                      .Name("runbookd_config_hash")
                      .Help("1 for the SHA-256 (label) of the configuration in use.")
                      .Register(r)),
      config_restart_required(
          prometheus::BuildGauge()
              .Name("runbookd_config_restart_required")
              .Help("1 when the file on disk changed parts that apply only after a restart.")
              .Register(r)
              .Add({})
      ),
      bugs(prometheus::BuildCounter()
               .Name("runbookd_bugs_total")
               .Help("Internal invariant violations (RUNBOOKD_BUG); should stay 0.")
               .Register(r)
               .Add({})),
      ready(prometheus::BuildGauge()
                .Name("runbookd_ready")
                .Help("1 once the daemon serves and posts.")
                .Register(r)
                .Add({})),
      rules_loaded(prometheus::BuildGauge()
                       .Name("runbookd_rules_loaded")
                       .Help("Rules in the rule pack in use.")
                       .Register(r)
                       .Add({})),
      rules_hash(prometheus::BuildGauge()
                     .Name("runbookd_rules_hash")
                     .Help("1 for the SHA-256 (label) of the rule pack in use.")
                     .Register(r)),
      signal_log_signals(prometheus::BuildGauge()
                             .Name("runbookd_signal_log_signals")
                             .Help("Signals held in the signal log.")
                             .Register(r)
                             .Add({})),
      signal_log_evicted(prometheus::BuildCounter()
                             .Name("runbookd_signal_log_evicted_total")
                             .Help("Signals dropped because the log was full (signals.max_signals).")
                             .Register(r)
                             .Add({})) {}

}  // namespace runbookd::metrics
