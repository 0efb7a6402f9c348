#pragma once
// The Postgres source: polls the monitor on a worker thread every `interval` and turns
// each snapshot into db.* signals on the loop; a monitor that cannot connect is a
// db.unreachable signal and a failing source.

#include "log/log.hpp"
#include "sources/poller.hpp"
#include "sources/postgres/activity.hpp"
#include "sources/postgres/config.hpp"
#include "sources/postgres/monitor.hpp"
#include "sources/source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace runbookd {
struct service_info;
}

namespace runbookd::sources::postgres {

struct source_settings {
    activity_settings activity;
    std::chrono::milliseconds interval = std::chrono::seconds{15};
    /// A poll not back by then fails (with db.unreachable); the next one is not started
    /// while it still runs. Connect timeout + statement timeout + a margin.
    std::chrono::milliseconds deadline = std::chrono::seconds{15};
};

/// The loop of the source: job `activity` on a sources::poller, each run handing `poll` to
/// the worker and reading its outcome on the loop. Runs on `loop`; not thread-safe.
class monitor_poller {
public:
    /// `poll` blocks (monitor::poll): it runs on `worker`, its result is read on `loop`.
    using blocking_poll = std::function<monitor_outcome()>;

    monitor_poller(
        boost::asio::any_io_executor loop,
        boost::asio::any_io_executor worker,
        blocking_poll poll,
        source_settings settings,
        signal_sink on_signal,
        status_sink on_status,
        log::logger log,
        prometheus::Registry& registry
    );
    ~monitor_poller();
    monitor_poller(const monitor_poller&) = delete;
    monitor_poller& operator=(const monitor_poller&) = delete;

    void start();
    /// The job ends at once; a poll the worker is running finishes there (bounded by the
    /// connection's timeouts) and its outcome is dropped.
    void stop();
    /// The page-time refresh: one more poll as soon as none is running (sources::poller).
    void refresh(refresh_done done);

private:
    struct state;
    std::shared_ptr<state> state_;
    std::unique_ptr<poller> poller_;
};

/// The Postgres source: the monitor on `cfg.dsn` and its own worker thread, joined when the
/// source is destroyed (bounded by the connect and statement timeouts, and by TCP keepalives
/// and tcp_user_timeout when the database stops answering). The DSN and its password (when
/// 8 characters or more) go to `cx.redact`. nullptr while no dsn is configured. Throws
/// std::runtime_error when the dsn cannot be read ("postgres.dsn: ..."). `services` tells
/// whose sessions are whose (`services.<id>.postgres`), read once: a change needs a restart.
std::unique_ptr<sources::source> make(
    const config& cfg, const std::map<std::string, service_info, std::less<>>& services, context& cx
);

/// The `services.<id>.postgres` entries, in id order (services without one are left out).
std::vector<service_sessions> sessions_of(const std::map<std::string, service_info, std::less<>>& services);

}  // namespace runbookd::sources::postgres
