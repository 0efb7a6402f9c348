#pragma once
// The page-time gathering: when the engine opens an incident (decisions::gather), every
// source looks again at the incident's window (sources::source::refresh), and the daemon
// tells the engine when all have answered (evidence_gathered). The engine does not wait
// past the deadline; the sources still out then are logged and counted.

#include "app/catalog.hpp"
#include "core/post.hpp"
#include "log/log.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace prometheus {
class Registry;
}

namespace runbookd::app {

/// Runs on the loop executor only. `sources` must outlive it.
class gatherer {
public:
    gatherer(
        boost::asio::any_io_executor loop,
        const std::vector<named_source>& sources,
        log::logger log,
        prometheus::Registry& registry
    );
    ~gatherer();
    gatherer(const gatherer&) = delete;
    gatherer& operator=(const gatherer&) = delete;

    /// Asks every source to refresh `r`'s window. `done` is called once, on the loop and
    /// never from inside start(), when every source has answered before `r.deadline`; not
    /// at all when the deadline passes first (the engine has its own wake-up for it).
    void start(const gather_request& r, std::function<void()> done);

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace runbookd::app
