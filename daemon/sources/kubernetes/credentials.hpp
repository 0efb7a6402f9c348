#pragma once
// The Authorization header for each request: a fixed token, a token file re-read every
// minute (bound service-account tokens rotate hourly), or an exec plugin's ExecCredential
// cached until it expires or the server answers 401. api-facts §4.1, §4.10.

#include "core/error.hpp"
#include "loop/clock.hpp"
#include "sources/kubernetes/access.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace runbookd::sources::kubernetes {

/// The ExecCredential a plugin printed: its token and when it expires.
struct exec_credential {
    std::string token;
    std::optional<wall_time> expires;
};

/// Reads a plugin's stdout (api-facts §4.10). Client certificates are not accepted: the
/// TLS context is fixed at start, so such a plugin is reported as unsupported.
result<exec_credential> parse_exec_credential(std::string_view json, std::string_view api_version);

/// Runs on the loop executor; not thread-safe.
class credentials {
public:
    /// An exec plugin that has not answered within `exec_timeout` is killed (with its
    /// process group) and the call fails.
    credentials(
        boost::asio::any_io_executor ex,
        cluster_access access,
        std::chrono::milliseconds exec_timeout = std::chrono::seconds{30}
    );
    ~credentials();
    credentials(const credentials&) = delete;
    credentials& operator=(const credentials&) = delete;

    /// "Bearer <token>", or "" when the client certificate is the credential. Concurrent
    /// callers share one plugin run.
    boost::asio::awaitable<result<std::string>> authorization();

    /// The server answered 401 to `authorization` (the header that was sent): the next
    /// call runs the plugin again; a token file is re-read on every call until it holds a
    /// different token. A 401 for a token already replaced changes nothing.
    void rejected(std::string_view authorization) noexcept;

    /// Shutdown: kills a running plugin; later calls fail at once.
    void cancel() noexcept;

    static constexpr std::chrono::minutes file_refresh{1};

private:
    /// One plugin process: its stdout and what became of it.
    struct plugin_run {
        plugin_run(boost::asio::any_io_executor ex, int fd, pid_t p) : out(ex, fd), pid(p) {}
        void kill() noexcept;

        boost::asio::posix::stream_descriptor out;
        pid_t pid;
        bool reaped = false;
        bool timed_out = false;
        std::vector<loop::timer*> waiters;  ///< callers waiting for this run's answer
    };

    boost::asio::awaitable<result<exec_credential>> run_plugin();

    boost::asio::any_io_executor ex_;
    cluster_access access_;
    std::chrono::milliseconds exec_timeout_;
    plugin_run* running_ = nullptr;
    bool stopping_ = false;
    std::string cached_;
    std::string rejected_;                                   ///< the file token the server refused
    std::optional<loop::steady_clock::time_point> read_at_;  ///< token file
    std::optional<wall_time> expires_;                       ///< exec credential
    bool have_exec_ = false;
};

}  // namespace runbookd::sources::kubernetes
