#include "sources/cloudsql/config.hpp"

#include "core/time.hpp"
#include "yaml/section.hpp"

namespace runbookd::sources::cloudsql {

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys({"instance", "monitoring_interval", "instance_interval", "lookback", "reread"});
    if (auto v = s.string("instance")) {
        if (v->find(':') != std::string::npos || v->find('/') != std::string::npos) {
            s.report("instance", "the instance ID alone (dark-west), without the project");
        } else {
            out.instance = std::move(*v);
        }
    }
    s.get("monitoring_interval", out.monitoring_interval, 1s);
    s.get("instance_interval", out.instance_interval, 1s);
    s.get("lookback", out.lookback, 1min);
    // 0 re-reads nothing: each read starts where the last ended, and a late point is lost.
    s.get("reread", out.reread, 0ms);
    // Cloud SQL data lags up to ~3 minutes: a shorter look back than interval + 3m would
    // let points slip between two polls.
    if (s.has("lookback") && out.lookback < out.monitoring_interval + 3min) {
        s.report(
            "lookback",
            "must be at least monitoring_interval + 3m (" + format_duration(out.monitoring_interval + 3min) +
                "): Cloud SQL data arrives up to 3 minutes late"
        );
    }
}

}  // namespace runbookd::sources::cloudsql
