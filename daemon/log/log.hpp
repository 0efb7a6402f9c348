#pragma once
// Structured JSON logs: one event per line, constant lower-case messages, values in fields.

#include <cstdio>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace runbookd::log {

enum class level { debug, info, warn, error };

/// One key/value pair of a log event.
struct field {
    using value_type = std::variant<std::string, long long, double, bool>;
    std::string key;
    value_type value;

    field(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
    field(std::string k, std::string_view v) : key(std::move(k)), value(std::string{v}) {}
    field(std::string k, const char* v) : key(std::move(k)), value(std::string{v}) {}
    field(std::string k, bool v) : key(std::move(k)), value(v) {}
    field(std::string k, double v) : key(std::move(k)), value(v) {}
    template <class I>
    requires std::is_integral_v<I> &&(!std::is_same_v<I, bool>)field(std::string k, I v)
        : key(std::move(k)), value(static_cast<long long>(v)) {}
};

/// Where lines go. Thread-safe: the loop thread and the blocking pool both log.
class sink {
public:
    /// Writes to a C stream (stdout in production).
    explicit sink(std::FILE* out);
    /// Hands every line to `capture` (tests).
    explicit sink(std::function<void(std::string_view)> capture);

    /// Registers a secret: any line containing it has it replaced with "<secret>".
    /// Defence in depth: secrets are typed and never formatted on purpose.
    void add_secret(std::string value);

    void write(std::string line);

    /// Batches lines: instead of one write(2) per line, lines are buffered and written by
    /// one job handed to `defer` (e.g. asio::post to the loop), so a busy loop iteration
    /// costs one system call. At most one flush job is pending at a time.
    void batch_with(std::function<void(std::function<void()>)> defer);

    /// Writes whatever is buffered now (shutdown, tests).
    void flush();

    ~sink();

private:
    void flush_locked();

    std::mutex mutex_;
    std::FILE* out_ = nullptr;
    std::function<void(std::function<void()>)> defer_;
    std::string buffer_;
    bool flush_pending_ = false;
    std::function<void(std::string_view)> capture_;
    std::vector<std::string> secrets_;
};

/// A logger with fixed fields (component, incident...). Cheap to copy.
class logger {
public:
    logger(std::shared_ptr<sink> out, level min);

    /// A logger that adds `key=value` to every event (replacing an earlier `key`).
    logger with(std::string key, std::string value) const;

    void debug(std::string_view msg, std::initializer_list<field> fields = {}) const;
    void info(std::string_view msg, std::initializer_list<field> fields = {}) const;
    void warn(std::string_view msg, std::initializer_list<field> fields = {}) const;
    void error(std::string_view msg, std::initializer_list<field> fields = {}) const;

    bool enabled(level l) const noexcept { return l >= min_; }
    void set_level(level l) noexcept { min_ = l; }
    sink& output() const noexcept { return *out_; }

private:
    void emit(level l, std::string_view msg, std::initializer_list<field> fields) const;

    std::shared_ptr<sink> out_;
    level min_;
    std::vector<field> fixed_;
};

/// A logger that drops everything (tests that do not look at logs).
logger discard();

}  // namespace runbookd::log
