#pragma once
// The Google Cloud pollers: Cloud Monitoring's Cloud SQL metrics and the Cloud SQL Admin
// instance (source `cloudsql`), and the public status feed (source `gcp_status`). Each is
// a list of jobs for sources::poller, which owns cadence, backoff and health.

#include "net/http_client.hpp"
#include "sources/gcp/credentials.hpp"
#include "sources/poller.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace runbookd::sources::gcp {

/// One Cloud Monitoring metric of the instance and the signal kind its points become.
struct metric {
    std::string type;                    ///< "cloudsql.googleapis.com/database/cpu/utilization"
    std::string kind;                    ///< "db.cpu"
    std::string reducer = "REDUCE_MAX";  ///< across series (num_backends has one per database)
};

/// db.cpu, db.memory and db.connections (num_backends, summed over databases).
std::vector<metric> default_metrics();

struct cloudsql_settings {
    std::string project;
    std::string instance;  ///< the instance ID, without the project
    std::string monitoring_url = "https://monitoring.googleapis.com";
    std::string sqladmin_url = "https://sqladmin.googleapis.com";
    std::chrono::milliseconds monitoring_interval = std::chrono::minutes{1};
    std::chrono::milliseconds instance_interval = std::chrono::minutes{5};
    /// How far back each monitoring poll looks (data shows up to ~3 minutes late); a point
    /// is handed over once, when first seen.
    std::chrono::milliseconds lookback = std::chrono::minutes{15};
    std::chrono::milliseconds request_timeout = std::chrono::seconds{10};
    std::vector<metric> metrics = default_metrics();
};

/// Jobs "monitoring" and "instance". `http` and `creds` must outlive the jobs.
std::vector<poll_job> cloudsql_jobs(net::http_client& http, credentials& creds, cloudsql_settings settings);

struct status_feed_settings {
    std::string url = "https://status.cloud.google.com/incidents.json";
    std::chrono::milliseconds interval = std::chrono::minutes{5};
    std::vector<std::string> products;   ///< titles, as the feed names them ("Cloud SQL")
    std::vector<std::string> locations;  ///< region ids; empty: every location
    std::chrono::milliseconds request_timeout = std::chrono::seconds{10};
};

/// Job "feed". `http` must outlive it.
std::vector<poll_job> status_feed_jobs(net::http_client& http, status_feed_settings settings);

/// The timeSeries.list URL of `m` for [end - lookback, end], without a page token. The
/// monitoring job ends its window on the last whole minute before now.
std::string time_series_url(const cloudsql_settings& s, const metric& m, wall_time end);

}  // namespace runbookd::sources::gcp
