#include "app/cli/commands.hpp"

#include "app/daemon.hpp"
#include "config/config.hpp"
#include "core/version.hpp"
#include "log/log.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdio>
#include <iostream>

namespace runbookd::app::cli {

int run(const std::string& config_path) {
    auto sink = std::make_shared<log::sink>(stdout);
    const log::logger boot{sink, log::level::info};
    auto loaded = config::load(config_path);
    if (!loaded.ok()) {
        for (const auto& p : loaded.problems) {
            boot.error("invalid config", {{"problem", p.to_string()}});
        }
        return exit_invalid_config;
    }
    boost::asio::io_context ioc{1};
    // Log lines written during one loop iteration leave in one write(2).
    sink->batch_with([&ioc](std::function<void()> flush) { boost::asio::post(ioc, std::move(flush)); });
    int code = exit_ok;
    try {
        daemon d{ioc, std::move(*loaded.value), sink};
        d.start();
        ioc.run();
    } catch (const std::exception& e) {
        sink->batch_with({});
        boot.error("daemon failed", {{"error", e.what()}});
        code = exit_runtime;
    }
    sink->batch_with({});
    sink->flush();
    return code;
}

int check_config(const std::string& path, std::ostream& out, std::ostream& err) {
    const auto loaded = config::load(path);
    if (!loaded.ok()) {
        for (const auto& p : loaded.problems) {
            err << p.to_string() << '\n';
        }
        err << loaded.problems.size() << (loaded.problems.size() == 1 ? " problem" : " problems") << " in "
            << path << '\n';
        return exit_invalid_config;
    }
    out << path << ": ok (" << loaded.value->services.size() << " services, sha256 "
        << loaded.value->hash.substr(0, 12) << ")\n";
    return exit_ok;
}

int version(std::ostream& out) {
    out << "runbookd " << runbookd::version() << " (" << runbookd::revision() << ")\n";
    return exit_ok;
}

}  // namespace runbookd::app::cli
