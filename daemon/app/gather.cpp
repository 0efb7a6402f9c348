#include "app/gather.hpp"

#include "loop/clock.hpp"

#include <boost/asio/post.hpp>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace runbookd::app {

namespace asio = boost::asio;

namespace {

/// One incident's gathering: which sources have answered, and whether it is over (all
/// answered, or the deadline passed). Held by each source's callback and by the timer.
struct gathering {
    gathering(asio::any_io_executor ex, std::size_t sources)
        : answered(sources, false), left(sources), timer(ex) {}

    std::string incident;
    loop::steady_clock::time_point began;
    std::vector<bool> answered;
    std::size_t left;
    std::function<void()> done;
    loop::timer timer;
    bool over = false;
};

}  // namespace

struct gatherer::impl : std::enable_shared_from_this<impl> {
    impl(
        asio::any_io_executor ex,
        const std::vector<named_source>& list,
        log::logger logger,
        prometheus::Registry& registry
    )
        : executor(std::move(ex)),
          sources(list),
          log(std::move(logger)),
          seconds(
              prometheus::BuildHistogram()
                  .Name("runbookd_gather_seconds")
                  .Help("From an incident's page to the last source's answer to the page-time refresh, for "
                        "gatherings that beat their deadline")
                  .Register(registry)
                  .Add(
                      {}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10}
                  )
          ),
          gathers(prometheus::BuildCounter()
                      .Name("runbookd_gathers_total")
                      .Help("Page-time gatherings, by outcome: complete (every source answered before the "
                            "deadline) or deadline")
                      .Register(registry)),
          late(prometheus::BuildCounter()
                   .Name("runbookd_gather_late_total")
                   .Help("Sources that had not answered a page-time refresh by its deadline")
                   .Register(registry)) {
        gathers.Add({{"outcome", "complete"}});
        gathers.Add({{"outcome", "deadline"}});
        for (const auto& s : sources) {
            late.Add({{"source", s.name}});
        }
    }

    void answer(const std::shared_ptr<gathering>& g, std::size_t index) {
        if (g->answered[index]) {
            return;  // a second answer from a source that broke the once rule
        }
        g->answered[index] = true;
        g->left -= 1;
        if (g->over) {
            log.info(
                "late answer to the page-time refresh",
                {{"incident", g->incident}, {"source", sources[index].name}}
            );
            return;
        }
        if (g->left == 0) {
            complete(g);
        }
    }

    void complete(const std::shared_ptr<gathering>& g) {
        g->over = true;
        g->timer.cancel();
        const double took = std::chrono::duration<double>(loop::steady_clock::now() - g->began).count();
        seconds.Observe(took);
        gathers.Add({{"outcome", "complete"}}).Increment();
        log.info("evidence gathered", {{"incident", g->incident}, {"seconds", took}});
        // Posted: a source may answer from inside refresh(), within the caller's feed().
        asio::post(executor, std::move(g->done));
    }

    void expire(gathering& g) {
        g.over = true;
        gathers.Add({{"outcome", "deadline"}}).Increment();
        std::string pending;
        for (std::size_t i = 0; i < sources.size(); ++i) {
            if (!g.answered[i]) {
                late.Add({{"source", sources[i].name}}).Increment();
                pending += (pending.empty() ? "" : ",") + sources[i].name;
            }
        }
        log.warn(
            "evidence gathering past its deadline", {{"incident", g.incident}, {"waiting_for", pending}}
        );
    }

    asio::any_io_executor executor;
    const std::vector<named_source>& sources;
    log::logger log;
    prometheus::Histogram& seconds;
    prometheus::Family<prometheus::Counter>& gathers;
    prometheus::Family<prometheus::Counter>& late;
};

gatherer::gatherer(
    asio::any_io_executor loop,
    const std::vector<named_source>& sources,
    log::logger log,
    prometheus::Registry& registry
)
    : impl_(std::make_shared<impl>(std::move(loop), sources, std::move(log), registry)) {}

gatherer::~gatherer() = default;

void gatherer::start(const gather_request& r, std::function<void()> done) {
    auto g = std::make_shared<gathering>(impl_->executor, impl_->sources.size());
    g->incident = r.incident_id;
    g->began = loop::steady_clock::now();
    g->done = std::move(done);
    const auto deadline = loop::deadline_for(r.deadline);
    g->timer.expires_at(deadline);
    g->timer.async_wait([weak = std::weak_ptr<impl>{impl_}, g](boost::system::error_code ec) {
        const auto self = weak.lock();
        if (!ec && self && !g->over) {
            self->expire(*g);
        }
    });
    const sources::refresh_window window{r.from, r.to};
    if (impl_->sources.empty()) {
        impl_->complete(g);  // nothing to wait for
        return;
    }
    for (std::size_t i = 0; i < impl_->sources.size(); ++i) {
        impl_->sources[i].source->refresh(window, deadline, [weak = std::weak_ptr<impl>{impl_}, g, i] {
            if (const auto self = weak.lock()) {
                self->answer(g, i);
            }
        });
    }
}

}  // namespace runbookd::app
