#pragma once
// Config -> components: the one explicit list of notifiers (and, later, sources).

#include "config/config.hpp"
#include "log/log.hpp"
#include "net/http_client.hpp"
#include "notify/notifier.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstdio>
#include <memory>

namespace runbookd::app {

/// What build_notifier made; the client (if any) must outlive the notifier.
struct notifier_parts {
    std::unique_ptr<net::http_client> http;
    std::unique_ptr<notify::notifier> notifier;
    std::FILE* console_file = nullptr;  ///< owned when not stdout
};

/// Constructs the configured notifier. Throws std::runtime_error on start-up failures.
notifier_parts build_notifier(
    const config::config& cfg, boost::asio::any_io_executor ex, const log::logger& log
);

}  // namespace runbookd::app
