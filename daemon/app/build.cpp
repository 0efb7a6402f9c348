#include "app/build.hpp"

#include "net/https_client.hpp"
#include "notify/console/console_notifier.hpp"
#include "notify/discord/discord_notifier.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace runbookd::app {

notifier_parts build_notifier(
    const config::config& cfg, boost::asio::any_io_executor ex, const log::logger& log
) {
    notifier_parts parts;
    switch (cfg.notify.kind) {
        case config::notifier_kind::discord:
            parts.http = std::make_unique<net::https_client>(
                ex, net::tls_options{cfg.discord.ca_file}, log.with("component", "http_client")
            );
            parts.notifier = std::make_unique<notify::discord::discord_notifier>(
                *parts.http, cfg.discord, log.with("component", "discord")
            );
            break;
        case config::notifier_kind::console: {
            std::FILE* out = stdout;
            if (cfg.console.path != "-") {
                out = std::fopen(cfg.console.path.c_str(), "a");
                if (out == nullptr) {
                    throw std::runtime_error(
                        "cannot open console.path '" + cfg.console.path + "': " + std::strerror(errno)
                    );
                }
                parts.console_file = out;
            }
            parts.notifier = std::make_unique<notify::console::console_notifier>(out);
            break;
        }
    }
    return parts;
}

}  // namespace runbookd::app
