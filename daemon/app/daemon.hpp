#pragma once
// The daemon's lifecycle: build components from the config, serve, post, reload, drain.

#include "config/config.hpp"
#include "core/rule.hpp"
#include "log/log.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>

namespace runbookd::app {

/// Everything `runbookd run` owns. Lives on one io_context thread.
class daemon {
public:
    /// Builds every component (app/build.cpp's one explicit list). Throws std::runtime_error
    /// on a start-up failure (unreadable CA file, console path).
    daemon(
        boost::asio::io_context& ioc,
        config::config cfg,
        std::shared_ptr<const rule_set> rules,
        std::shared_ptr<log::sink> sink
    );
    ~daemon();
    daemon(const daemon&) = delete;
    daemon& operator=(const daemon&) = delete;

    /// Binds the server, starts the outbox and timers, installs SIGTERM/SIGINT/SIGHUP.
    /// Returns the bound endpoint. Throws on bind failure.
    boost::asio::ip::tcp::endpoint start();

    /// Begins the bounded shutdown (what SIGTERM does); the io_context then runs out of work.
    void shutdown();

    /// Re-reads the config file and its rules; keeps the old ones when either is invalid.
    /// Returns true when the new one was applied.
    bool reload();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// `runbookd run --config FILE`: loads, starts, runs until SIGTERM. Returns the exit code.
int run(const std::string& config_path);

}  // namespace runbookd::app
