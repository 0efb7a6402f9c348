#include "sources/postgres/source.hpp"

#include "core/engine.hpp"
#include "loop/clock.hpp"
#include "sources/postgres/dsn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/gauge.h>

#include <algorithm>
#include <stdexcept>

namespace runbookd::sources::postgres {
namespace asio = boost::asio;

struct monitor_poller::state : std::enable_shared_from_this<state> {
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

monitor_poller::monitor_poller(
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

monitor_poller::~monitor_poller() = default;

void monitor_poller::start() {
    poller_->start();
}

void monitor_poller::refresh(refresh_done done) {
    poller_->refresh(std::move(done));
}

void monitor_poller::stop() {
    poller_->stop();
    state_->stopping = true;
    if (state_->current) {
        state_->current->wake.cancel();  // the job ends now; the worker's poll finishes on its own
    }
}

namespace {

class postgres_source final : public sources::source {
public:
    postgres_source(
        std::unique_ptr<monitor> m, source_settings settings, std::string description, context& cx
    )
        : monitor_(std::move(m)),
          loop_(
              cx.loop,
              worker_.get_executor(),
              [m = monitor_.get()] { return m->poll(); },
              std::move(settings),
              cx.to.on_signal,
              cx.to.on_status,
              cx.log,
              cx.metrics
          ),
          description_(std::move(description)) {}

    /// Waits for a poll the worker may still be running: the monitor must outlive it.
    ~postgres_source() override { worker_.join(); }

    postgres_source(const postgres_source&) = delete;
    postgres_source& operator=(const postgres_source&) = delete;

    std::string describe() const override { return description_; }

    void start() override { loop_.start(); }

    void stop() override { loop_.stop(); }
    void refresh(
        const refresh_window& /*window*/, loop::steady_clock::time_point /*deadline*/, refresh_done done
    ) override {
        loop_.refresh(std::move(done));
    }

private:
    // The monitor blocks: it runs on its own thread, never on the loop.
    asio::thread_pool worker_{1};
    std::unique_ptr<monitor> monitor_;
    monitor_poller loop_;
    std::string description_;  ///< "dbname on host:port as INSTANCE"
};

}  // namespace

std::vector<service_sessions> sessions_of(const std::map<std::string, service_info, std::less<>>& services) {
    std::vector<service_sessions> out;
    for (const auto& [id, svc] : services) {
        if (!svc.postgres_applications.empty() || !svc.postgres_users.empty()) {
            out.push_back(service_sessions{id, svc.postgres_applications, svc.postgres_users});
        }
    }
    return out;
}

std::unique_ptr<sources::source> make(
    const config& cfg, const std::map<std::string, service_info, std::less<>>& services, context& cx
) {
    if (!cfg.configured()) {
        return nullptr;
    }
    auto dsn = parse_dsn(cfg.dsn.reveal());
    if (!dsn) {
        throw std::runtime_error("postgres.dsn: " + dsn.error().detail);
    }
    // Redacted from every log line. A password shorter than 8 characters is not: it is
    // likely a common word ("postgres") whose redaction would blank out the logs.
    if (const auto it = dsn->find("password"); it != dsn->end() && it->second.size() >= 8) {
        cx.redact(it->second);
    }
    cx.redact(cfg.dsn.reveal());
    source_settings s;
    s.interval = cfg.interval;
    s.deadline = cfg.connect_timeout + cfg.statement_timeout + std::chrono::seconds{5};
    s.activity.instance = cfg.instance;
    s.activity.long_query = cfg.long_query_threshold;
    s.activity.migration = cfg.migration_threshold;
    s.activity.idle_in_transaction = cfg.idle_in_transaction_threshold;
    s.activity.lock_wait = cfg.lock_wait_threshold;
    s.activity.query_max = cfg.query_max;
    s.activity.redact_literals = cfg.redact_literals;
    s.activity.redact_patterns = compile_patterns(cfg.redact_patterns);
    s.activity.exclude_applications = cfg.exclude_applications;
    s.activity.exclude_users = cfg.exclude_users;
    s.activity.services = sessions_of(services);
    std::string description = describe(*dsn) + " as " + cfg.instance;
    auto m = std::make_unique<monitor>(
        monitor_dsn(std::move(*dsn), cfg.statement_timeout, cfg.connect_timeout),
        youngest_age(s.activity),
        // The server cuts the text before it is redacted and cut again for posts.
        std::max<std::size_t>(1024, cfg.query_max * 4)
    );
    return std::make_unique<postgres_source>(std::move(m), std::move(s), std::move(description), cx);
}

}  // namespace runbookd::sources::postgres
