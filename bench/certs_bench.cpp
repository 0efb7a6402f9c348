// One round of the certs source's checks against many TLS endpoints (bench/certs.py starts
// nginx with one port per endpoint and passes --ca and --targets), against a plain OpenSSL
// client doing the same handshakes, in the same process and run.
//
// - runbookd: checker::check_all over every target on an io_context in this thread, with
//   the daemon's defaults (16 at a time, 10 s per target): the round's wall time and the
//   process's CPU (getrusage RUSAGE_SELF: user + sys) per handshake.
// - reference: plain OpenSSL, blocking sockets, one target after the other: connect,
//   SSL_new on one SSL_CTX holding the CA file, SNI, SSL_set1_host, SSL_connect with
//   SSL_VERIFY_PEER, the earliest notAfter of SSL_get_peer_cert_chain, then close without
//   close_notify (as runbookd does). CPU per handshake the same way; its wall time is
//   sequential.
// - reference-concurrent: the same handshakes on non-blocking sockets, as many at a time
//   as runbookd, driven by poll(): the same work with the same batching of wake-ups.
//
// Rounds rotate the order of the three (after one warm-up round of each), so drift of the
// machine weighs on all alike. Prints one JSON object per line (round -1 is the warm-up):
//   {"client":"runbookd","round":0,"wall_ms":..,"cpu_us":..,"user_us":..,"sys_us":..,"handshakes":200}
// Exits 1 when any handshake does not verify or its chain is not read.
//
//   bench_certs --ca=FILE --targets=FILE [--rounds=5] [--concurrency=16] [--timeout-ms=10000]
//               [--only=runbookd|reference|reference-concurrent]   (one client alone, for a profiler)
//   (targets: one "host port" a line; every target connects to 127.0.0.1)

#include "sources/certs/check.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace certs = runbookd::sources::certs;
using namespace std::chrono_literals;

struct cpu_sample {
    double user_us = 0;
    double sys_us = 0;
};

cpu_sample process_cpu() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto us = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec);
    };
    return {us(ru.ru_utime), us(ru.ru_stime)};
}

struct round_figures {
    double wall_ms = 0;
    double user_us = 0;
    double sys_us = 0;
    std::size_t handshakes = 0;
    long rss_kib = 0;  ///< VmRSS halfway through the round (runbookd) or at its end (references)
};

/// VmRSS of this process, in KiB (0 when /proc cannot tell).
long rss_kib() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr) {
        return 0;
    }
    char line[256];
    long kib = 0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    std::fclose(f);
    return kib;
}

/// The RSS a client sampled during its last round (0: sample at the end).
long mid_round_rss = 0;

void print(std::string_view client, int round, const round_figures& f) {
    std::printf(
        "{\"client\":\"%.*s\",\"round\":%d,\"wall_ms\":%.3f,\"cpu_us\":%.1f,\"user_us\":%.1f,\"sys_us\":%.1f,"
        "\"handshakes\":%zu,\"rss_kib\":%ld}\n",
        static_cast<int>(client.size()),
        client.data(),
        round,
        f.wall_ms,
        f.user_us + f.sys_us,
        f.user_us,
        f.sys_us,
        f.handshakes,
        f.rss_kib
    );
    std::fflush(stdout);
}

/// Measures `body` (which returns the handshakes it completed): wall time and process CPU.
template <class F>
round_figures measure(F&& body) {
    mid_round_rss = 0;
    const auto c0 = process_cpu();
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t n = body();
    const auto t1 = std::chrono::steady_clock::now();
    const auto c1 = process_cpu();
    return {
        std::chrono::duration<double, std::milli>(t1 - t0).count(),
        c1.user_us - c0.user_us,
        c1.sys_us - c0.sys_us,
        n,
        mid_round_rss != 0 ? mid_round_rss : rss_kib()};
}

// ------------------------------------------------------------------ runbookd

struct runbookd_client {
    asio::io_context ioc;
    certs::checker checker{ioc.get_executor()};
    const std::vector<certs::target>& targets;
    std::size_t concurrency;
    std::chrono::milliseconds timeout;

    runbookd_client(
        const std::vector<certs::target>& t,
        const std::string& ca,
        std::size_t c,
        std::chrono::milliseconds to
    )
        : targets(t), concurrency(c), timeout(to) {
        if (auto loaded = checker.load_trust(ca); !loaded) {
            throw std::runtime_error("load_trust: " + loaded.error().detail);
        }
    }

    std::size_t round() {
        std::vector<certs::check_result> results;
        std::exception_ptr failure;
        std::size_t seen = 0;  // the source hands each result over as it ends; so does this
        const std::size_t half = targets.size() / 2;
        // Named: check_all keeps a reference to it for the whole round.
        const certs::checker::on_result each = [&seen, half](std::size_t, const certs::check_result&) {
            if (++seen == half) {
                mid_round_rss = rss_kib();  // while the other half is in flight
            }
        };
        asio::co_spawn(
            ioc,
            checker.check_all(targets, concurrency, timeout, each),
            [&](std::exception_ptr e, std::vector<certs::check_result> r) {
                failure = e;
                results = std::move(r);
            }
        );
        ioc.restart();
        ioc.run();
        if (failure) {
            std::rethrow_exception(failure);
        }
        std::size_t ok = 0;
        for (std::size_t i = 0; i < results.size(); ++i) {
            const auto& r = results[i];
            if (r.outcome != runbookd::net::tls_outcome::ok || !r.chain || r.chain->certs.size() < 2) {
                throw std::runtime_error(
                    "runbookd: " + targets[i].host + ":" + std::to_string(targets[i].port) + ": " + r.detail +
                    (r.chain ? " (chain of " + std::to_string(r.chain->certs.size()) + ")" : " (no chain)")
                );
            }
            ++ok;
        }
        if (seen != results.size()) {
            throw std::runtime_error("runbookd: the callback saw " + std::to_string(seen) + " results");
        }
        return ok;
    }
};

// ------------------------------------------------------------------ reference

std::string openssl_error() {
    char buf[256];
    const unsigned long e = ::ERR_get_error();
    ::ERR_error_string_n(e, buf, sizeof buf);
    ::ERR_clear_error();
    return e ? buf : "no OpenSSL error";
}

sockaddr_in address_of(const certs::target& t) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(t.port);
    ::inet_pton(AF_INET, t.address.c_str(), &addr.sin_addr);
    return addr;
}

/// The earliest notAfter of the chain the server sent (0 when it sent fewer than 2).
std::time_t earliest_not_after(SSL* ssl) {
    const STACK_OF(X509)* chain = ::SSL_get_peer_cert_chain(ssl);
    const int n = chain ? sk_X509_num(chain) : 0;
    std::time_t earliest = 0;
    for (int i = 0; i < n; ++i) {
        std::tm tm{};
        if (::ASN1_TIME_to_tm(::X509_get0_notAfter(sk_X509_value(chain, i)), &tm) == 1) {
            const std::time_t at = ::timegm(&tm);
            earliest = i == 0 ? at : std::min(earliest, at);
        }
    }
    return n >= 2 ? earliest : 0;
}

struct reference_client {
    SSL_CTX* ctx = nullptr;
    const std::vector<certs::target>& targets;
    std::chrono::milliseconds timeout;

    reference_client(const std::vector<certs::target>& t, const std::string& ca, std::chrono::milliseconds to)
        : targets(t), timeout(to) {
        ctx = ::SSL_CTX_new(::TLS_client_method());
        if (ctx == nullptr || ::SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            ::SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
            throw std::runtime_error("reference: SSL_CTX: " + openssl_error());
        }
        ::SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    ~reference_client() { ::SSL_CTX_free(ctx); }
    reference_client(const reference_client&) = delete;
    reference_client& operator=(const reference_client&) = delete;

    /// A new SSL on `fd` with SNI and the host check for `t`.
    SSL* new_ssl(int fd, const certs::target& t) {
        SSL* ssl = ::SSL_new(ctx);
        ::SSL_set_fd(ssl, fd);
        // SSL_set_tlsext_host_name without its C cast.
        ::SSL_ctrl(
            ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(t.host.c_str())
        );
        ::SSL_set1_host(ssl, t.host.c_str());
        return ssl;
    }

    [[noreturn]] void fail(const certs::target& t, const std::string& why) {
        throw std::runtime_error("reference: " + t.host + ":" + std::to_string(t.port) + ": " + why);
    }

    std::string handshake_error(SSL* ssl) {
        return "SSL_connect: " + openssl_error() +
               " (verify: " + ::X509_verify_cert_error_string(::SSL_get_verify_result(ssl)) + ")";
    }

    /// One full handshake on a blocking socket; returns the earliest notAfter of the chain.
    std::time_t one(const certs::target& t) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw std::runtime_error("reference: socket");
        }
        // Every wait bounded: the send timeout also bounds connect() on Linux.
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
        tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        const sockaddr_in addr = address_of(t);
        std::string failure;
        std::time_t earliest = 0;
        SSL* ssl = nullptr;
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            failure = "connect failed";
        } else {
            ssl = new_ssl(fd, t);
            if (::SSL_connect(ssl) != 1) {
                failure = handshake_error(ssl);
            } else if ((earliest = earliest_not_after(ssl)) == 0) {
                failure = "no chain of 2 read";
            }
        }
        ::SSL_free(ssl);  // closed without close_notify, as runbookd does
        ::close(fd);
        if (!failure.empty()) {
            fail(t, failure);
        }
        return earliest;
    }

    /// Every target, one after the other.
    std::size_t round() {
        std::size_t ok = 0;
        for (const auto& t : targets) {
            if (one(t) > 0) {
                ++ok;
            }
        }
        return ok;
    }

    /// Every target, `concurrency` at a time: non-blocking sockets and SSL_connect driven by
    /// poll(), each within `timeout`. The same work as round(), with the same batching of
    /// wake-ups as an event loop gets.
    std::size_t round_concurrent(std::size_t concurrency) {
        struct slot {
            int fd = -1;
            SSL* ssl = nullptr;
            std::size_t target = 0;
            bool connecting = false;
            short events = 0;
            std::chrono::steady_clock::time_point deadline;
        };
        std::vector<slot> slots(std::clamp<std::size_t>(concurrency, 1, targets.size()));
        std::size_t next = 0;
        std::size_t ok = 0;
        auto finish = [](slot& s) {
            ::SSL_free(s.ssl);  // closed without close_notify, as runbookd does
            ::close(s.fd);
            s = slot{};
        };
        auto start = [&](slot& s) {
            if (next >= targets.size()) {
                return;
            }
            s.target = next++;
            const auto& t = targets[s.target];
            s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (s.fd < 0) {
                throw std::runtime_error("reference: socket");
            }
            s.deadline = std::chrono::steady_clock::now() + timeout;
            const sockaddr_in addr = address_of(t);
            if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
                s.connecting = false;
                s.ssl = new_ssl(s.fd, t);
                s.events = POLLOUT;  // SSL_connect at the next turn sends the ClientHello
            } else if (errno == EINPROGRESS) {
                s.connecting = true;
                s.events = POLLOUT;
            } else {
                fail(t, "connect failed");
            }
        };
        // Advances one slot whose socket is ready; true when its handshake is over.
        auto advance = [&](slot& s) {
            const auto& t = targets[s.target];
            if (s.connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) {
                    fail(t, "connect failed");
                }
                s.connecting = false;
                s.ssl = new_ssl(s.fd, t);
            }
            const int rc = ::SSL_connect(s.ssl);
            if (rc == 1) {
                if (earliest_not_after(s.ssl) == 0) {
                    fail(t, "no chain of 2 read");
                }
                ++ok;
                return true;
            }
            switch (::SSL_get_error(s.ssl, rc)) {
                case SSL_ERROR_WANT_READ: s.events = POLLIN; return false;
                case SSL_ERROR_WANT_WRITE: s.events = POLLOUT; return false;
                default: fail(t, handshake_error(s.ssl));
            }
        };
        for (auto& s : slots) {
            start(s);
        }
        std::vector<pollfd> fds;
        std::vector<slot*> owners;
        for (;;) {
            fds.clear();
            owners.clear();
            auto earliest = std::chrono::steady_clock::time_point::max();
            for (auto& s : slots) {
                if (s.fd >= 0) {
                    fds.push_back({s.fd, s.events, 0});
                    owners.push_back(&s);
                    earliest = std::min(earliest, s.deadline);
                }
            }
            if (fds.empty()) {
                return ok;
            }
            const auto wait =
                std::chrono::ceil<std::chrono::milliseconds>(earliest - std::chrono::steady_clock::now());
            const int n =
                ::poll(fds.data(), fds.size(), static_cast<int>(std::max<std::int64_t>(wait.count(), 0)));
            if (n < 0 && errno != EINTR) {
                throw std::runtime_error("reference: poll failed");
            }
            const auto now = std::chrono::steady_clock::now();
            for (std::size_t i = 0; i < fds.size(); ++i) {
                slot& s = *owners[i];
                if (fds[i].revents != 0) {
                    if (advance(s)) {
                        finish(s);
                        start(s);
                    }
                } else if (now >= s.deadline) {
                    fail(targets[s.target], "timed out");
                }
            }
        }
    }
};

// ------------------------------------------------------------------ main

std::string option(int argc, char** argv, std::string_view name, std::string fallback) {
    const std::string prefix = "--" + std::string{name} + "=";
    for (int i = 1; i < argc; ++i) {
        if (std::string_view{argv[i]}.starts_with(prefix)) {
            return argv[i] + prefix.size();
        }
    }
    return fallback;
}

std::vector<certs::target> read_targets(const std::string& path, const std::string& ca) {
    std::ifstream in{path};
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    std::vector<certs::target> out;
    std::string host;
    int port = 0;
    while (in >> host >> port) {
        certs::target t;
        t.host = host;
        t.port = static_cast<std::uint16_t>(port);
        t.address = "127.0.0.1";
        t.ca_file = ca;
        out.push_back(std::move(t));
    }
    if (out.empty()) {
        throw std::runtime_error("no targets in " + path);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string ca = option(argc, argv, "ca", "");
        const std::string targets_file = option(argc, argv, "targets", "");
        if (ca.empty() || targets_file.empty()) {
            std::cerr << "usage: bench_certs --ca=FILE --targets=FILE [--rounds=5] [--concurrency=16] "
                         "[--timeout-ms=10000]\n";
            return 2;
        }
        const int rounds = std::stoi(option(argc, argv, "rounds", "5"));
        const auto concurrency =
            static_cast<std::size_t>(std::stoul(option(argc, argv, "concurrency", "16")));
        const std::chrono::milliseconds timeout{std::stol(option(argc, argv, "timeout-ms", "10000"))};
        const std::string only = option(argc, argv, "only", "");  // one client alone, for a profiler
        const auto targets = read_targets(targets_file, ca);

        runbookd_client ours{targets, ca, concurrency, timeout};
        reference_client ref{targets, ca, timeout};
        struct client {
            std::string_view name;
            std::function<std::size_t()> round;
        };
        const std::vector<client> clients{
            {"runbookd", [&] { return ours.round(); }},
            {"reference", [&] { return ref.round(); }},
            {"reference-concurrent", [&] { return ref.round_concurrent(concurrency); }},
        };
        // Warm-up (pages in both paths, fills the allocator's free lists), then rounds in a
        // rotating order so that drift of the machine weighs on every client alike.
        for (int r = -1; r < rounds; ++r) {
            for (std::size_t k = 0; k < clients.size(); ++k) {
                const auto& c = clients[(k + static_cast<std::size_t>(std::max(r, 0))) % clients.size()];
                if (only.empty() || only == c.name) {
                    print(c.name, r, measure(c.round));
                }
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_certs: " << e.what() << "\n";
        return 1;
    }
}
