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

}  // namespace

result<exec_credential> parse_exec_credential(std::string_view text, std::string_view api_version) {
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return auth_error("the exec plugin did not print an ExecCredential (not JSON)");
    }
    if (doc.value("kind", "") != "ExecCredential") {
        return auth_error("the exec plugin printed kind '" + doc.value("kind", "") + "', not ExecCredential");
    }
    if (!api_version.empty() && doc.value("apiVersion", "") != api_version) {
        return auth_error(
            "the exec plugin answered apiVersion '" + doc.value("apiVersion", "") + "', not '" +
            std::string{api_version} + "'"
        );
    }
    const auto status = doc.find("status");
    if (status == doc.end() || !status->is_object()) {
        return auth_error("the ExecCredential has no status");
    }
    exec_credential cred;
    cred.token = status->value("token", "");
    if (cred.token.empty()) {
        if (status->contains("clientCertificateData")) {
            return auth_error(
                "the exec plugin returned a client certificate; only token credentials are supported"
            );
        }
        return auth_error("the ExecCredential has no status.token");
    }
    if (const auto exp = status->value("expirationTimestamp", ""); !exp.empty()) {
        cred.expires = parse_rfc3339(exp);
        if (!cred.expires) {
            return auth_error("the ExecCredential's expirationTimestamp is not RFC 3339");
        }
    }
    return cred;
}

credentials::credentials(asio::any_io_executor ex, cluster_access access)
    : ex_(std::move(ex)), access_(std::move(access)) {}

void credentials::rejected() noexcept {
    rejected_ = cached_;
    read_at_.reset();
    expires_.reset();
    have_exec_ = false;
}

asio::awaitable<result<std::string>> credentials::authorization() {
    if (access_.exec) {
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
        for (auto& s : v) {
            out.push_back(s.data());
        }
        out.push_back(nullptr);
        return out;
    };
    auto argv = pointers(arg_strings);
    auto envp = pointers(env_strings);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_end.fd, STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int spawned =
        ::posix_spawnp(&pid, plugin.command.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        co_return auth_error(
            "cannot run the exec plugin '" + plugin.command + "': " + std::strerror(spawned) + hint
        );
    }
    ::close(write_end.fd);
    write_end.fd = -1;

    // Read its stdout to the end, killing it when it takes longer than exec_timeout.
    asio::posix::stream_descriptor out{ex_, read_end.fd};
    read_end.fd = -1;  // owned by `out` now
    loop::timer deadline{ex_};
    deadline.expires_after(exec_timeout);
    bool timed_out = false;
    deadline.async_wait([pid, &timed_out](const boost::system::error_code& ec) {
        if (!ec) {
            timed_out = true;
            ::kill(pid, SIGKILL);
        }
    });
    std::string output;
    std::array<char, 4096> buf{};
    for (;;) {
        auto [ec, n] = co_await out.async_read_some(asio::buffer(buf), tuple_awaitable);
        output.append(buf.data(), n);
        if (ec || output.size() > max_plugin_output) {
            break;
        }
    }
    if (output.size() > max_plugin_output) {
        ::kill(pid, SIGKILL);
    }
    deadline.cancel();
    int status = 0;
    // Its stdout is closed: it is exiting. Give it up to 5 s more, then kill it.
    for (int waited = 0; ::waitpid(pid, &status, WNOHANG) == 0; ++waited) {
        if (timed_out || waited >= 500) {
            ::kill(pid, SIGKILL);
        }
        loop::timer pause{ex_};
        pause.expires_after(std::chrono::milliseconds{10});
        co_await pause.async_wait(tuple_awaitable);
    }
    if (output.size() > max_plugin_output) {
        co_return auth_error("the exec plugin printed more than 1 MiB");
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
