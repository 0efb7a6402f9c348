#pragma once
// The state store: what must survive a restart (docs/architecture.md, "State"). The daemon
// appends every input it feeds the engine and every change of the outbox; a webhook is
// answered once its input is durable (sync), and the outbox waits for sync before a request
// leaves. At start, recover() hands back what was kept, and the daemon replays it.

#include "core/error.hpp"
#include "store/record.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}

namespace runbookd::log {
class logger;
}

namespace runbookd::store {

struct config;

/// What a compaction keeps: `base` first (what the dropped inputs amounted to, such as each
/// source's last report), then of the inputs kept so far those `keep` accepts (it runs on
/// the store's own thread: it must only read what it captured), then `outbox`, the outbox's
/// current state as changes (the old changes are dropped).
struct compaction {
    std::vector<input> base;
    std::function<bool(const input&)> keep;
    std::vector<notify::change> outbox;
};

/// Runs on the loop executor (its file work on a thread of its own); not thread-safe.
class store {
public:
    virtual ~store() = default;
    /// For the start-up log line: where and how it keeps state.
    virtual std::string describe() const = 0;
    /// What was kept, in the order it was appended; once, before any append. A file that
    /// is not a journal, or is corrupt before its tail, is an error (the daemon refuses to
    /// start); a torn tail is cut and logged.
    virtual result<std::vector<record>> recover() = 0;
    /// Keeps `r`, after everything appended before it. Buffered: durable at the next sync.
    virtual void append(const record& r) = 0;
    /// Waits until everything appended so far is durable (written and fdatasync'd, with
    /// whatever else was appended meanwhile: one sync covers many callers).
    virtual boost::asio::awaitable<result<void>> sync() = 0;
    /// Bytes appended since the last compaction (the daemon decides when to compact).
    virtual std::uint64_t growth() const noexcept = 0;
    /// Rewrites the journal to what `c` keeps, atomically, after what is appended before.
    virtual void compact(compaction c) = 0;
    /// Writes what is pending and stops the store's thread.
    virtual void close() = 0;
};

/// The configured store: a journal in `cfg.dir`, or nothing kept (`memory`). Fails when
/// the directory cannot be made or is held by another runbookd.
result<std::unique_ptr<store>> make(
    const config& cfg, boost::asio::any_io_executor loop, log::logger log, prometheus::Registry& metrics
);

}  // namespace runbookd::store
