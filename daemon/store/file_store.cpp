// The journal in a directory (store::kind::file), and the store that keeps nothing
// (store::kind::memory). File work runs on one thread of the store's own: the loop appends
// framed records to a buffer, the thread writes and fdatasyncs them in batches (group
// commit), and posts each durable position back to the loop, which resumes its waiters.

#include "log/log.hpp"
#include "loop/clock.hpp"
#include "store/config.hpp"
#include "store/journal.hpp"
#include "store/store.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <optional>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace runbookd::store {

namespace asio = boost::asio;

namespace {

std::string os_error(const std::string& what, const std::string& path) {
    return what + " " + path + ": " + std::strerror(errno);
}

/// Writes all of `bytes`; false (errno set) on failure.
bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const auto n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool fsync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

/// Reads a journal's frames one at a time, from after its header, through a 1 MiB window.
/// For the store's own file, written whole by it: it stops at the first frame that is not.
class frame_reader {
public:
    explicit frame_reader(int fd) : fd_(fd) {
        if (fill(journal::header_size)) {
            pos_ = journal::header_size;
        }
    }

    std::optional<std::string_view> next() {
        if (!fill(journal::frame_overhead)) {
            return std::nullopt;
        }
        const std::size_t len = u32(pos_);
        if (len == 0 || len > journal::max_record || !fill(journal::frame_overhead + len)) {
            return std::nullopt;
        }
        const std::string_view payload{buf_.data() + pos_ + journal::frame_overhead, len};
        if (journal::crc32c(payload) != u32(pos_ + 4)) {
            return std::nullopt;
        }
        pos_ += journal::frame_overhead + len;
        return payload;
    }

private:
    std::uint32_t u32(std::size_t at) const { return journal::u32_at(buf_, at); }
    /// At least `need` bytes after pos_ in the window, or false at the end of the file.
    bool fill(std::size_t need) {
        if (buf_.size() - pos_ >= need) {
            return true;
        }
        buf_.erase(0, pos_);
        pos_ = 0;
        while (buf_.size() < need) {
            const std::size_t want = std::max(need - buf_.size(), std::size_t{1} << 20);
            const std::size_t had = buf_.size();
            buf_.resize(had + want);
            const auto n = ::read(fd_, buf_.data() + had, want);
            if (n < 0 && errno == EINTR) {
                buf_.resize(had);
                continue;
            }
            buf_.resize(had + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
            if (n <= 0) {
                return false;
            }
        }
        return true;
    }

    int fd_;
    std::string buf_;
    std::size_t pos_ = 0;
};

/// Keeps nothing: today's behaviour before a store, for tests and one-off runs.
class memory_store final : public store {
public:
    std::string describe() const override { return "memory (nothing survives a restart)"; }
    result<std::vector<record>> recover() override { return std::vector<record>{}; }
    void append(const record&) override {}
    asio::awaitable<result<void>> sync() override { co_return result<void>{}; }
    std::uint64_t growth() const noexcept override { return 0; }
    void compact(compaction) override {}
    void close() override {}
};

class file_store final : public store {
public:
    file_store(const config& cfg, asio::any_io_executor loop, log::logger log, prometheus::Registry& metrics)
        : dir_(cfg.dir),
          path_(cfg.dir + "/journal"),
          loop_(std::move(loop)),
          log_(std::move(log)),
          shared_(std::make_shared<shared>()),
          syncs_(prometheus::BuildCounter()
                     .Name("runbookd_store_syncs_total")
                     .Help("Group commits of the state journal (write + fdatasync), by result.")
                     .Register(metrics)),
          syncs_ok_(syncs_.Add({{"result", "ok"}})),
          syncs_error_(syncs_.Add({{"result", "error"}})),
          sync_seconds_(prometheus::BuildHistogram()
                            .Name("runbookd_store_sync_seconds")
                            .Help("Time of one group commit of the state journal (write + fdatasync).")
                            .Register(metrics)
                            .Add(
                                {},
                                prometheus::Histogram::BucketBoundaries{
                                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1}
                            )),
          journal_bytes_(prometheus::BuildGauge()
                             .Name("runbookd_store_journal_bytes")
                             .Help("Size of the state journal on disk.")
                             .Register(metrics)
                             .Add({})),
          compactions_(prometheus::BuildCounter()
                           .Name("runbookd_store_compactions_total")
                           .Help("Rewrites of the state journal to what still matters.")
                           .Register(metrics)
                           .Add({})),
          cut_bytes_(prometheus::BuildCounter()
                         .Name("runbookd_store_torn_bytes_total")
                         .Help("Bytes of a torn journal tail (a write a crash cut short) cut at start.")
                         .Register(metrics)
                         .Add({})) {}

    ~file_store() override { close(); }

    std::string describe() const override { return "file journal in " + dir_; }

    /// Makes the directory and takes its lock.
    result<void> open() {
        if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
            return make_failure(errc::config_invalid, os_error("cannot make the state directory", dir_));
        }
        const std::string lock_path = dir_ + "/lock";
        lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd_ < 0) {
            return make_failure(errc::config_invalid, os_error("cannot open", lock_path));
        }
        if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
            return make_failure(
                errc::config_invalid,
                "the state directory " + dir_ + " is in use by another runbookd (" + lock_path + " is locked)"
            );
        }
        return {};
    }

    result<std::vector<record>> recover() override {
        std::string text;
        {
            const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0 && errno != ENOENT) {
                return make_failure(errc::config_invalid, os_error("cannot read", path_));
            }
            if (fd >= 0) {
                char buf[1 << 16];
                for (;;) {
                    const auto n = ::read(fd, buf, sizeof buf);
                    if (n < 0 && errno == EINTR) {
                        continue;
                    }
                    if (n < 0) {
                        const auto e = os_error("cannot read", path_);
                        ::close(fd);
                        return make_failure(errc::config_invalid, e);
                    }
                    if (n == 0) {
                        break;
                    }
                    text.append(buf, static_cast<std::size_t>(n));
                }
                ::close(fd);
            }
        }
        const journal::scan scanned = journal::read(text);
        if (!scanned.error.empty()) {
            return make_failure(
                errc::config_invalid,
                path_ + ": " + scanned.error +
                    "; refusing to start on state it cannot trust (move the file aside to start empty)"
            );
        }
        std::vector<record> out;
        out.reserve(scanned.records.size());
        for (std::size_t i = 0; i < scanned.records.size(); ++i) {
            auto d = decode_group(scanned.records[i]);
            if (!d.error.empty()) {
                return make_failure(
                    errc::config_invalid,
                    path_ + ": record " + std::to_string(i + 1) + " cannot be read (" + d.error +
                        "); refusing to start on state it cannot trust (move the file aside to start empty)"
                );
            }
            for (auto& r : d.values) {
                out.push_back(std::move(r));
            }
        }
        if (scanned.torn > 0) {
            log_.warn(
                "state journal had a torn tail; cut",
                {{"path", path_}, {"bytes", static_cast<long long>(scanned.torn)}}
            );
            cut_bytes_.Increment(static_cast<double>(scanned.torn));
        }
        // Start on a clean file: what was read, rewritten whole (the tail cut), atomically.
        std::string fresh = journal::header();
        for (const auto payload : scanned.records) {
            journal::frame(fresh, payload);
        }
        if (auto r = replace_file(fresh); !r) {
            return r.error();
        }
        file_size_ = fresh.size();
        journal_bytes_.Set(static_cast<double>(file_size_));
        shared_->fd = fd_;
        fd_ = -1;  // the store's thread owns it from now on
        thread_ = std::thread([s = shared_, loop = loop_, path = path_, dir = dir_, this] {
            writer(s, loop, path, dir);
        });
        return out;
    }

    void append(const record& r) override {
        // Held until the loop's current handler is over: an input and the outbox changes it
        // causes (one feed()) become one frame, kept together or not at all.
        turn_bytes_ += turn_.emplace_back(encode(r)).size();
        if (turn_bytes_ > journal::max_record / 4) {
            publish();
        } else if (!publish_posted_) {
            publish_posted_ = true;
            asio::post(loop_, [this, alive = std::weak_ptr<int>{alive_}] {
                if (alive.lock()) {
                    publish();
                }
            });
        }
    }

    /// Hands what this turn appended to the store's thread, as one frame.
    void publish() {
        publish_posted_ = false;
        if (turn_.empty()) {
            return;
        }
        std::string payload;
        if (turn_.size() == 1) {
            payload = std::move(turn_.front());
        } else {
            payload.reserve(turn_bytes_ + turn_.size() + 1);
            payload += '[';
            for (const auto& one : turn_) {
                payload += one;
                payload += ',';
            }
            payload.back() = ']';
        }
        turn_.clear();
        turn_bytes_ = 0;
        std::string bytes;
        journal::frame(bytes, payload);
        appended_ += bytes.size();
        growth_ += bytes.size();
        std::lock_guard lock{shared_->m};
        if (shared_->pending.empty() || shared_->pending.back().compact) {
            shared_->pending.push_back(item{});
        }
        shared_->pending.back().bytes += bytes;
        shared_->pending.back().end = appended_;
        shared_->cv.notify_one();
    }

    asio::awaitable<result<void>> sync() override {
        publish();
        const std::uint64_t target = appended_;
        if (durable_ >= target) {
            co_return result<void>{};
        }
        // Resumed by settle() with whether the round that covers `target` failed.
        const bool failed = co_await asio::async_initiate<decltype(asio::use_awaitable), void(bool)>(
            [this, target](auto handler) { waiters_.emplace(target, std::move(handler)); },
            asio::use_awaitable
        );
        if (failed) {
            co_return make_failure(errc::upstream_unavailable, "state journal: " + last_error_, true);
        }
        co_return result<void>{};
    }

    std::uint64_t growth() const noexcept override { return growth_; }

    void compact(compaction c) override {
        publish();
        growth_ = 0;
        std::lock_guard lock{shared_->m};
        item it;
        it.compact = std::make_shared<compaction>(std::move(c));
        it.end = appended_;
        shared_->pending.push_back(std::move(it));
        shared_->cv.notify_one();
    }

    void close() override {
        if (thread_.joinable()) {
            publish();
            {
                std::lock_guard lock{shared_->m};
                shared_->stopping = true;
                shared_->cv.notify_one();
            }
            thread_.join();
            ::close(shared_->fd);
            shared_->fd = -1;
        }
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
        if (lock_fd_ >= 0) {
            ::close(lock_fd_);
            lock_fd_ = -1;
        }
    }

private:
    struct item {
        std::string bytes;
        std::shared_ptr<compaction> compact;
        std::uint64_t end = 0;  ///< logical position once this item is in
    };
    struct shared {
        std::mutex m;
        std::condition_variable cv;
        std::deque<item> pending;
        bool stopping = false;
        int fd = -1;  ///< the writer's; replaced by a compaction
    };
    /// What one round of the writer reports to the loop.
    struct report {
        std::uint64_t durable = 0;
        std::string error;
        double seconds = 0;
        std::size_t file_size = 0;
        bool compacted = false;
        std::size_t kept = 0;
    };

    /// Writes `text` as the whole journal: a new file, fsynced, renamed over the old one.
    result<void> replace_file(const std::string& text) {
        const std::string tmp = path_ + ".new";
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            return make_failure(errc::config_invalid, os_error("cannot write", tmp));
        }
        if (!write_all(fd, text) || ::fdatasync(fd) != 0 || ::rename(tmp.c_str(), path_.c_str()) != 0 ||
            !fsync_dir(dir_)) {
            const auto e = os_error("cannot write", path_);
            ::close(fd);
            return make_failure(errc::config_invalid, e);
        }
        if (::lseek(fd, 0, SEEK_END) < 0) {
            const auto e = os_error("cannot seek", path_);
            ::close(fd);
            return make_failure(errc::config_invalid, e);
        }
        if (fd_ >= 0) {
            ::close(fd_);
        }
        // Reopened for appending: the descriptor written is the renamed file's.
        ::close(fd);
        fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd_ < 0) {
            return make_failure(errc::config_invalid, os_error("cannot open", path_));
        }
        return {};
    }

    /// The journal rewritten to what `c` keeps; the new descriptor, or -1 (errno set).
    static int rewrite(
        const std::string& path,
        const std::string& dir,
        const compaction& c,
        std::size_t& size,
        std::size_t& kept
    ) {
        // Streamed, a frame at a time, so memory stays flat however large the journal.
        const int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (in < 0) {
            return -1;
        }
        const std::string tmp = path + ".new";
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            const int e = errno;
            ::close(in);
            errno = e;
            return -1;
        }
        std::string out = journal::header();
        size = 0;
        kept = 0;
        bool ok = true;
        const auto flush = [&](std::size_t above) {
            if (ok && out.size() > above) {
                ok = write_all(fd, out);
                size += out.size();
                out.clear();
            }
        };
        for (const auto& base : c.base) {
            journal::frame(out, encode(record{base}));
            ++kept;
        }
        frame_reader frames{in};
        while (const auto payload = frames.next()) {
            // The outbox's old changes are replaced by its state below: only inputs are read.
            if (payload->starts_with("{\"change\"")) {
                continue;
            }
            if (!payload->starts_with("[")) {
                auto d = decode(*payload);
                const auto* i = d.value ? std::get_if<input>(&*d.value) : nullptr;
                if (i != nullptr && c.keep(*i)) {
                    journal::frame(out, *payload);
                    ++kept;
                    flush(std::size_t{1} << 20);
                }
                continue;
            }
            for (const auto& r : decode_group(*payload).values) {
                const auto* i = std::get_if<input>(&r);
                if (i != nullptr && c.keep(*i)) {
                    journal::frame(out, encode(r));
                    ++kept;
                    flush(std::size_t{1} << 20);
                }
            }
        }
        ::close(in);
        for (const auto& ch : c.outbox) {
            journal::frame(out, encode(record{ch}));
            ++kept;
            flush(std::size_t{1} << 20);
        }
        flush(0);
        if (!ok || ::fdatasync(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0 || !fsync_dir(dir)) {
            const int e = errno;
            ::close(fd);
            errno = e;
            return -1;
        }
        ::close(fd);
        return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    }

    /// The store's thread: writes what is pending, fdatasyncs, reports; until stopped.
    void writer(
        std::shared_ptr<shared> s, asio::any_io_executor loop, const std::string& path, const std::string& dir
    ) {
        std::size_t size = file_size_;
        for (;;) {
            std::deque<item> batch;
            {
                std::unique_lock lock{s->m};
                s->cv.wait(lock, [&] { return s->stopping || !s->pending.empty(); });
                if (s->pending.empty() && s->stopping) {
                    return;
                }
                batch.swap(s->pending);
            }
            const auto started = loop::steady_clock::now();
            report rep;
            bool wrote = false;
            // What this round wrote since its last durable point: cut back on a failure, so
            // a half-written frame never sits before good ones, and written again next round.
            std::size_t mark = size;
            std::size_t unsynced = 0;
            for (std::size_t k = 0; k < batch.size() && rep.error.empty(); ++k) {
                auto& it = batch[k];
                if (it.compact) {
                    std::size_t kept = 0;
                    const int fd = rewrite(path, dir, *it.compact, size, kept);
                    if (fd < 0) {
                        rep.error = os_error("cannot compact", path);
                        break;
                    }
                    ::close(s->fd);
                    s->fd = fd;
                    rep.compacted = true;
                    rep.kept = kept;
                    rep.durable = it.end;  // the rewrite is fsynced: durable up to here
                    wrote = false;
                    mark = size;
                    unsynced = k + 1;
                    continue;
                }
                if (!write_all(s->fd, it.bytes)) {
                    rep.error = os_error("cannot write", path);
                    break;
                }
                size += it.bytes.size();
                wrote = true;
            }
            if (rep.error.empty() && wrote && ::fdatasync(s->fd) != 0) {
                rep.error = os_error("cannot fdatasync", path);
            }
            if (rep.error.empty()) {
                rep.durable = batch.back().end;
            } else {
                // Nothing after the last durable point counts: cut it, queue it again, and
                // try once more after a pause (the waiters are told it failed).
                if (::ftruncate(s->fd, static_cast<off_t>(mark)) == 0) {
                    size = mark;
                }
                std::unique_lock lock{s->m};
                for (std::size_t k = batch.size(); k-- > unsynced;) {
                    s->pending.push_front(std::move(batch[k]));
                }
                s->cv.wait_for(lock, std::chrono::milliseconds{200}, [&] { return s->stopping; });
                if (s->stopping) {
                    return;  // closing on a volume that refuses writes: nothing more to do
                }
            }
            rep.seconds = std::chrono::duration<double>(loop::steady_clock::now() - started).count();
            rep.file_size = size;
            // The report runs on the loop, and only while the store is alive there.
            asio::post(loop, [this, alive = std::weak_ptr<int>{alive_}, rep = std::move(rep)]() mutable {
                if (alive.lock()) {
                    settle(std::move(rep));
                }
            });
        }
    }

    void settle(report rep) {
        (rep.error.empty() ? syncs_ok_ : syncs_error_).Increment();
        sync_seconds_.Observe(rep.seconds);
        journal_bytes_.Set(static_cast<double>(rep.file_size));
        if (rep.compacted) {
            compactions_.Increment();
            log_.info(
                "state journal compacted",
                {{"records", static_cast<long long>(rep.kept)},
                 {"bytes", static_cast<long long>(rep.file_size)}}
            );
        }
        const bool failed = !rep.error.empty();
        if (failed) {
            last_error_ = rep.error;
            log_.error("state journal write failed", {{"error", rep.error}});
        }
        durable_ = std::max(durable_, rep.durable);
        // Resume every waiter this round covers (or every one, with the error).
        while (!waiters_.empty() && (failed || waiters_.begin()->first <= durable_)) {
            auto h = std::move(waiters_.begin()->second);
            waiters_.erase(waiters_.begin());
            std::move(h)(failed);
        }
    }

    std::string dir_;
    std::string path_;
    asio::any_io_executor loop_;
    log::logger log_;
    std::shared_ptr<shared> shared_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
    std::thread thread_;
    int fd_ = -1;
    int lock_fd_ = -1;
    std::size_t file_size_ = 0;
    std::uint64_t appended_ = 0;
    std::uint64_t durable_ = 0;
    std::uint64_t growth_ = 0;
    std::vector<std::string> turn_;  ///< records appended in the loop's current handler
    std::size_t turn_bytes_ = 0;
    bool publish_posted_ = false;
    std::string last_error_;
    std::multimap<std::uint64_t, asio::any_completion_handler<void(bool)>> waiters_;

    prometheus::Family<prometheus::Counter>& syncs_;
    prometheus::Counter& syncs_ok_;
    prometheus::Counter& syncs_error_;
    prometheus::Histogram& sync_seconds_;
    prometheus::Gauge& journal_bytes_;
    prometheus::Counter& compactions_;
    prometheus::Counter& cut_bytes_;
};

}  // namespace

result<std::unique_ptr<store>> make(
    const config& cfg, asio::any_io_executor loop, log::logger log, prometheus::Registry& metrics
) {
    if (cfg.kind == kind::memory) {
        return std::unique_ptr<store>{std::make_unique<memory_store>()};
    }
    auto s = std::make_unique<file_store>(cfg, std::move(loop), std::move(log), metrics);
    if (auto r = s->open(); !r) {
        return r.error();
    }
    return std::unique_ptr<store>{std::move(s)};
}

}  // namespace runbookd::store
