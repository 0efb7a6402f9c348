#pragma once
// The gcp_status source (docs/signals.md): the public Google Cloud status feed, read
// without a token (job `feed`), as a job for sources::poller, which owns cadence, backoff
// and health.

#include "net/http_client.hpp"
#include "sources/gcp_status/config.hpp"
#include "sources/google/config.hpp"
#include "sources/poller.hpp"
#include "sources/source.hpp"

#include <chrono>
#include <memory>
#include <vector>

namespace runbookd::sources::gcp_status {

/// Job "feed": every `cfg.interval`, the open incidents at `cfg.url` of `cfg.products` in
/// `cfg.locations` as gcp.incident signals. `http` must outlive it and runs it.
std::vector<poll_job> poll_jobs(
    net::http_client& http, const config& cfg, std::chrono::milliseconds request_timeout
);

/// The gcp_status source, with its own HTTPS client (trusting `g.ca_file`; requests bounded
/// by `g.request_timeout`). nullptr while `cfg.enabled` is false. Throws std::runtime_error
/// when the CA file cannot be loaded.
std::unique_ptr<sources::source> make(const config& cfg, const google::config& g, context& cx);

}  // namespace runbookd::sources::gcp_status
