#include "sources/postgres/source.hpp"

#include "loop/clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/gauge.h>

namespace runbookd::sources::postgres {
namespace asio = boost::asio;

struct source::state : std::enable_shared_from_this<state> {
    state(
        asio::any_io_executor l,
        asio::any_io_executor w,
        blocking_poll p,
        source_settings st,
        prometheus::Gauge& g
    )
        : loop(std::move(l)),
          worker(std::move(w)),
          poll(std::move(p)),
          settings(std::move(st)),
          sessions(g) {}

    /// One poll handed to the worker: its outcome, once back on the loop, and the timer the
    /// job waits on (cancelled when the outcome arrives, or at stop).
    struct pending {
        explicit pending(asio::any_io_executor ex) : wake(ex) {}
        std::optional<monitor_outcome> outcome;
        loop::timer wake;
    };

    asio::any_io_executor loop;
    asio::any_io_executor worker;
    blocking_poll poll;
    source_settings settings;
    prometheus::Gauge& sessions;
    std::shared_ptr<pending> current;  ///< the poll the worker runs, if any (loop thread only)
    bool stopping = false;

    asio::awaitable<poll_outcome> run() {
        const auto failed = [&](std::string why) {
            // Evidence as well: the database is not answering the monitor.
            return poll_failure{
                make_failure(errc::timed_out, why),
                std::nullopt,
                {unreachable_signal(settings.activity, why, loop::wall_now())}};
        };
        if (current) {
            co_return failed("the previous poll has not finished: the database does not answer");
        }
        auto p = std::make_shared<pending>(loop);
        current = p;
        // The worker blocks in libpq; its outcome comes back to the loop by a post. Should the
        // database stop answering mid-query (no RST, no FIN), the loop does not wait for TCP
        // to give up: the job fails at the deadline and the late outcome is dropped.
        asio::post(worker, [self = shared_from_this(), p] {
            auto outcome = self->poll();
            asio::post(self->loop, [self, p, outcome = std::move(outcome)]() mutable {
                p->outcome = std::move(outcome);
                p->wake.cancel();
                if (self->current == p) {
                    self->current.reset();
                }
            });
        });
        p->wake.expires_after(settings.deadline);
        co_await p->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!p->outcome) {
            co_return failed(
                stopping ? std::string{"stopped"}
                         : "no answer from the database within " + format_duration(settings.deadline)
            );
        }
        monitor_outcome got = std::move(*p->outcome);
        const wall_time now = loop::wall_now();
        if (!got) {
            poll_failure f{got.error().error, std::nullopt, {}};
            if (got.error().unreachable) {
                // The failure is itself evidence: handed over before the source turns failing.
                f.signals.push_back(unreachable_signal(settings.activity, f.error.detail, now));
            }
            co_return f;
        }
        sessions.Set(static_cast<double>(got->sessions.size()));
        co_return poll_result{activity_signals(*got, settings.activity, now)};
    }
};

source::source(
    asio::any_io_executor loop,
    asio::any_io_executor worker,
    blocking_poll poll,
    source_settings settings,
    signal_sink on_signal,
    status_sink on_status,
    log::logger log,
    prometheus::Registry& registry
)
    : state_(std::make_shared<state>(
          loop,
          std::move(worker),
          std::move(poll),
          settings,
          prometheus::BuildGauge()
              .Name("runbookd_postgres_sessions_read")
              .Help("Sessions the last Postgres poll read (not idle past the youngest threshold, or in a "
                    "lock wait)")
              .Register(registry)
              .Add({})
      )) {
    auto self = state_;
    poller_ = std::make_unique<poller>(
        std::move(loop),
        "postgres",
        std::vector<poll_job>{{"activity", settings.interval, [self] { return self->run(); }}},
        std::move(on_signal),
        std::move(on_status),
        std::move(log),
        registry
    );
}

source::~source() = default;

void source::start() {
    poller_->start();
}

void source::stop() {
    poller_->stop();
    state_->stopping = true;
    if (state_->current) {
        state_->current->wake.cancel();  // the job ends now; the worker's poll finishes on its own
    }
}

}  // namespace runbookd::sources::postgres
