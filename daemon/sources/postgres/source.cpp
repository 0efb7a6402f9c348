#include "sources/postgres/source.hpp"

#include "loop/clock.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/gauge.h>

namespace runbookd::sources::postgres {
namespace asio = boost::asio;

struct source::state {
    asio::any_io_executor worker;
    blocking_poll poll;
    source_settings settings;
    prometheus::Gauge& sessions;

    asio::awaitable<poll_outcome> run() {
        // The blocking poll runs on the worker; this coroutine resumes on the loop.
        monitor_outcome got = co_await asio::co_spawn(
            worker, [this]() -> asio::awaitable<monitor_outcome> { co_return poll(); }, asio::use_awaitable
        );
        const wall_time now = loop::wall_now();
        if (!got) {
            poll_failure f{got.error().error, std::nullopt, {}};
            if (!got.error().unreachable) {
                co_return f;
            }
            // The failure is itself evidence: handed over before the source turns failing.
            co_return poll_failure{
                f.error, std::nullopt, {unreachable_signal(settings.activity, f.error.detail, now)}};
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
    : state_(std::make_shared<state>(state{
          std::move(worker),
          std::move(poll),
          settings,
          prometheus::BuildGauge()
              .Name("runbookd_postgres_sessions_read")
              .Help("Sessions the last Postgres poll read (not idle past the youngest threshold, or in a "
                    "lock wait)")
              .Register(registry)
              .Add({})})) {
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
}

}  // namespace runbookd::sources::postgres
