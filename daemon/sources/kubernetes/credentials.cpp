#include "sources/kubernetes/credentials.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;  // NOLINT: POSIX

namespace runbookd::sources::kubernetes {
namespace {

namespace asio = boost::asio;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
/// A credential is renewed this long before it expires, so no request carries a stale one.
constexpr auto expiry_margin = std::chrono::seconds{30};
constexpr std::size_t max_plugin_output = 1024 * 1024;

failure auth_error(std::string detail) {
    return make_failure(errc::upstream_rejected, "kubernetes credentials: " + std::move(detail), true);
}

/// Closes a descriptor when it goes out of scope.
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

/// The string at `key`, or "" when absent or of another type (never throws).
std::string text_of(const nlohmann::json& j, std::string_view key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace

result<exec_credential> parse_exec_credential(std::string_view text, std::string_view api_version) {
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return auth_error("the exec plugin did not print an ExecCredential (not JSON)");
    }
    if (text_of(doc, "kind") != "ExecCredential") {
        return auth_error("the exec plugin printed kind '" + text_of(doc, "kind") + "', not ExecCredential");
    }
    if (!api_version.empty() && text_of(doc, "apiVersion") != api_version) {
        return auth_error(
            "the exec plugin answered apiVersion '" + text_of(doc, "apiVersion") + "', not '" +
            std::string{api_version} + "'"
        );
    }
    const auto status = doc.find("status");
    if (status == doc.end() || !status->is_object()) {
        return auth_error("the ExecCredential has no status");
    }
    exec_credential cred;
    cred.token = text_of(*status, "token");
    if (cred.token.empty()) {
        if (status->contains("clientCertificateData")) {
            return auth_error(
                "the exec plugin returned a client certificate; only token credentials are supported"
            );
        }
        return auth_error("the ExecCredential has no status.token");
    }
    if (const auto exp = text_of(*status, "expirationTimestamp"); !exp.empty()) {
        cred.expires = parse_rfc3339(exp);
        if (!cred.expires) {
            return auth_error("the ExecCredential's expirationTimestamp is not RFC 3339");
        }
    }
    return cred;
}

credentials::credentials(
    asio::any_io_executor ex, cluster_access access, std::chrono::milliseconds exec_timeout
)
    : ex_(std::move(ex)), access_(std::move(access)), exec_timeout_(exec_timeout) {}

credentials::~credentials() {
    cancel();
}

void credentials::rejected(std::string_view authorization) noexcept {
    const std::string_view prefix = "Bearer ";
    const std::string_view sent =
        authorization.starts_with(prefix) ? authorization.substr(prefix.size()) : authorization;
    if (sent != cached_) {
        return;  // a late 401 for a token already replaced
    }
    rejected_ = cached_;
    read_at_.reset();
    expires_.reset();
    have_exec_ = false;
}

void credentials::cancel() noexcept {
    stopping_ = true;
    if (running_ != nullptr) {
        running_->kill();
    }
}

asio::awaitable<result<std::string>> credentials::authorization() {
    if (access_.exec) {
        // One plugin run at a time: concurrent callers wait for it and share its answer.
        while (running_ != nullptr && !stopping_) {
            loop::timer wait{ex_};
            wait.expires_after(exec_timeout_ + std::chrono::seconds{6});
            running_->waiters.push_back(&wait);
            co_await wait.async_wait(tuple_awaitable);
        }
        if (stopping_) {
            co_return make_failure(errc::shutting_down, "stopping");
        }
        const auto now = loop::wall_now();
        if (!have_exec_ || (expires_ && now + expiry_margin >= *expires_)) {
            auto cred = co_await run_plugin();
            if (!cred) {
                co_return cred.error();
            }
            cached_ = std::move(cred->token);
            expires_ = cred->expires;
            have_exec_ = true;
        }
        co_return "Bearer " + cached_;
    }
    if (!access_.token_file.empty()) {
        const auto now = loop::steady_clock::now();
        if (!read_at_ || now - *read_at_ >= file_refresh || (!rejected_.empty() && cached_ == rejected_)) {
            std::ifstream in(access_.token_file, std::ios::binary);
            std::ostringstream text;
            text << in.rdbuf();
            std::string token = text.str();
            while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
                token.pop_back();
            }
            if (!in || token.empty()) {
                // Keep the last good token: a rotation writes the file anew, briefly empty.
                if (cached_.empty()) {
                    co_return auth_error("cannot read the token file '" + access_.token_file + "'");
                }
            } else {
                cached_ = std::move(token);
                read_at_ = now;
            }
        }
        co_return "Bearer " + cached_;
    }
    if (!access_.token.empty()) {
        co_return "Bearer " + access_.token;
    }
    co_return std::string{};  // the client certificate authenticates
}

void credentials::plugin_run::kill() noexcept {
    if (pid > 0 && !reaped) {
        ::kill(-pid, SIGKILL);  // its process group: a wrapper's children too
    }
    boost::system::error_code ignored;
    out.close(ignored);  // the read ends even if a grandchild still holds the pipe
}

asio::awaitable<result<exec_credential>> credentials::run_plugin() {
    const exec_plugin& plugin = *access_.exec;
    const auto hint = plugin.install_hint.empty() ? std::string{} : " (" + plugin.install_hint + ")";
    std::array<int, 2> pipe_fds{-1, -1};
    if (::pipe2(pipe_fds.data(), O_CLOEXEC) != 0) {
        co_return auth_error(std::string{"pipe: "} + std::strerror(errno));
    }
    fd_guard read_end{pipe_fds[0]};
    fd_guard write_end{pipe_fds[1]};

    // The plugin's environment: ours, its own variables, and KUBERNETES_EXEC_INFO.
    nlohmann::json info{
        {"apiVersion", plugin.api_version}, {"kind", "ExecCredential"}, {"spec", {{"interactive", false}}}};
    if (!plugin.cluster_info.empty()) {
        info["spec"]["cluster"] = nlohmann::json::parse(plugin.cluster_info, nullptr, false);
    }
    std::vector<std::string> env_strings;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        env_strings.emplace_back(*e);
    }
    for (const auto& [name, value] : plugin.env) {
        env_strings.push_back(name + "=" + value);
    }
    env_strings.push_back("KUBERNETES_EXEC_INFO=" + info.dump());
    std::vector<std::string> arg_strings{plugin.command};
    arg_strings.insert(arg_strings.end(), plugin.args.begin(), plugin.args.end());
    const auto pointers = [](std::vector<std::string>& v) {
        std::vector<char*> out;
        for (auto& str : v) {
            out.push_back(str.data());
        }
        out.push_back(nullptr);
        return out;
    };
    auto argv = pointers(arg_strings);
    auto envp = pointers(env_strings);

    // Its own process group (killed as one on timeout), stdout to our pipe, and none of
    // our descriptors: Asio's sockets are not close-on-exec, and a plugin that lingers
    // must not keep the listener or a connection open.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_end.fd, STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = 0;
    const int spawned =
        ::posix_spawnp(&pid, plugin.command.c_str(), &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (spawned != 0) {
        co_return auth_error(
            "cannot run the exec plugin '" + plugin.command + "': " + std::strerror(spawned) + hint
        );
    }
    ::close(write_end.fd);
    write_end.fd = -1;

    // The run is shared: cancel() and the deadline kill it; waiting callers wake at its end.
    auto run = std::make_shared<plugin_run>(ex_, read_end.fd, pid);
    read_end.fd = -1;  // owned by run->out now
    running_ = run.get();
    loop::timer deadline{ex_};
    deadline.expires_after(exec_timeout_);
    deadline.async_wait([run](const boost::system::error_code& ec) {
        if (!ec) {
            run->timed_out = true;
            run->kill();
        }
    });
    std::string output;
    std::array<char, 4096> buf{};
    bool too_long = false;
    for (;;) {
        auto [ec, n] = co_await run->out.async_read_some(asio::buffer(buf), tuple_awaitable);
        output.append(buf.data(), n);
        if (ec) {
            break;
        }
        if (output.size() > max_plugin_output) {
            too_long = true;
            run->kill();
            break;
        }
    }
    // Its stdout is closed: it is exiting. Give it up to 5 s more, then kill it.
    int status = 0;
    for (int waited = 0; ::waitpid(pid, &status, WNOHANG) == 0; ++waited) {
        if (waited == 500) {
            run->kill();
        }
        loop::timer pause{ex_};
        pause.expires_after(std::chrono::milliseconds{10});
        co_await pause.async_wait(tuple_awaitable);
    }
    run->reaped = true;  // its pid may be reused from here on: never signal it again
    deadline.cancel();
    running_ = nullptr;
    for (auto* w : run->waiters) {
        w->cancel();
    }
    if (too_long) {
        co_return auth_error("the exec plugin printed more than 1 MiB");
    }
    if (run->timed_out || stopping_) {
        co_return auth_error(
            "the exec plugin '" + plugin.command + "' did not answer within " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(exec_timeout_).count()) + " s" +
            hint
        );
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        co_return auth_error(
            "the exec plugin '" + plugin.command + "' failed (" +
            (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status)) : std::string{"killed"}
            ) +
            ")" + hint
        );
    }
    co_return parse_exec_credential(output, plugin.api_version);
}

}  // namespace runbookd::sources::kubernetes
