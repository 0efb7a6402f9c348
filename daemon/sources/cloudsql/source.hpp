#pragma once
// The cloudsql source (docs/signals.md, "The Cloud SQL source"): Cloud Monitoring's Cloud
// SQL metrics (job `monitoring`) and the Cloud SQL Admin instance (job `instance`), read with
// a Google access token. Each job is one for sources::poller, which owns cadence, backoff
// and health.

#include "net/http_client.hpp"
#include "sources/cloudsql/config.hpp"
#include "sources/google/config.hpp"
#include "sources/google/credentials.hpp"
#include "sources/poller.hpp"
#include "sources/source.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace runbookd::sources::cloudsql {

/// One Cloud Monitoring metric of the instance and the signal kind its points become.
struct metric {
    std::string type;                    ///< "cloudsql.googleapis.com/database/cpu/utilization"
    std::string kind;                    ///< "db.cpu"
    std::string reducer = "REDUCE_MAX";  ///< across series (num_backends has one per database)
};

/// db.cpu, db.memory and db.connections (num_backends, summed over databases).
std::vector<metric> default_metrics();

/// Jobs "monitoring" (every `cfg.monitoring_interval`, one query per metric over
/// monitoring_window) and "instance" (every `cfg.instance_interval`) for instance
/// `cfg.instance` of project `g.project`, at `g`'s API URLs with `g.request_timeout`. Each
/// point (metric, series, interval end) is handed over once, dated at its interval's end,
/// when it first appears: a late point within `cfg.reread` of a read's end is still read.
/// `http` and `creds` must outlive the jobs, which run on their executor.
std::vector<poll_job> poll_jobs(
    net::http_client& http,
    google::credentials& creds,
    const config& cfg,
    const google::config& g,
    std::vector<metric> metrics = default_metrics()
);

/// The interval one monitoring read asks for.
struct read_window {
    wall_time start;
    wall_time end;
};

/// The read at `now`: ending on the last whole minute before `now`; starting `cfg.lookback`
/// before that on the first read (`last_end` empty), else `cfg.reread` before the last
/// complete read's end, but no further back than the longer of the two before this end.
read_window monitoring_window(const config& cfg, wall_time now, std::optional<wall_time> last_end);

/// The timeSeries.list URL of `m` for `w`, without a page token.
std::string time_series_url(
    const config& cfg, const google::config& g, const metric& m, const read_window& w
);

/// The cloudsql source, with its own HTTPS client (trusting `g.ca_file`) and Google
/// credentials (`g`'s key file, else the metadata server); the key's private key goes to
/// `cx.redact`. nullptr while `cfg` names no instance. Throws std::runtime_error on a
/// start-up failure: a CA file that cannot be loaded, a key file that cannot be read
/// ("google.key_file: ...").
std::unique_ptr<sources::source> make(const config& cfg, const google::config& g, context& cx);

}  // namespace runbookd::sources::cloudsql
