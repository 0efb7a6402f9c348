#pragma once
// Config -> components: THE explicit list of the integrations the daemon can run, one line
// each (docs/architecture.md, "Adding an integration"). No self-registration.

#include "config/config.hpp"
#include "core/event.hpp"
#include "core/signal.hpp"
#include "core/source_health.hpp"
#include "intake/endpoint.hpp"
#include "log/log.hpp"
#include "notify/notifier.hpp"
#include "sources/source.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Registry;
}
namespace runbookd::intake::pagerduty {
class webhook_handler;
}
namespace runbookd::sources::kubernetes {
class cluster;
}

namespace runbookd::app {

/// What the daemon gives the catalog to build with: the loop, the metrics, the log, and
/// where every integration's findings go.
struct wiring {
    boost::asio::any_io_executor loop;
    prometheus::Registry& metrics;
    log::logger log;
    std::function<void(std::string)> redact;
    std::function<void(incident_event&&)> on_event;
    std::function<void(signal)> on_signal;
    std::function<void(std::string_view source, source_status)> on_status;
    /// The engine's view of its incidents, for a source that reconciles (pagerduty_api).
    std::function<std::vector<incident_view>()> incidents = {};
};

struct named_source {
    std::string name;  ///< "postgres": the component, the `source` label, the ranking's name
    std::unique_ptr<sources::source> source;
};

/// Every configured integration, made but not started.
struct components {
    std::unique_ptr<notify::notifier> notifier;
    std::vector<std::unique_ptr<intake::endpoint>> intakes;
    std::vector<named_source> sources;  ///< started in this order, stopped in reverse
    /// Typed views of two entries above, for what only they do: PagerDuty's signing
    /// secrets reload live; the cluster resolves services' label selectors.
    intake::pagerduty::webhook_handler* pagerduty = nullptr;
    sources::kubernetes::cluster* kubernetes = nullptr;

    components();
    components(components&&) noexcept;
    components& operator=(components&&) noexcept;
    ~components();
};

/// Makes every integration `c` configures. Each source's status sink also sets
/// runbookd_source_up{source}. Throws std::runtime_error on a start-up failure (a CA
/// file, a key or a kubeconfig that cannot be read).
components build(const config::config& c, wiring& w);

}  // namespace runbookd::app
