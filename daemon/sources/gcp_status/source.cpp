#include "sources/gcp_status/source.hpp"

#include "loop/clock.hpp"
#include "net/https_client.hpp"
#include "sources/gcp_status/parse.hpp"
#include "sources/google/api.hpp"

#include <memory>

namespace runbookd::sources::gcp_status {
namespace {

namespace asio = boost::asio;

class status_source final : public sources::source {
public:
    status_source(const config& cfg, const google::config& g, context& cx)
        : http_(std::make_unique<net::https_client>(
              cx.loop, net::tls_options{g.ca_file, {}, {}, {}}, cx.log.with("component", "gcp_status_http")
          )),
          poller_(std::make_unique<poller>(
              cx.loop,
              "gcp_status",
              poll_jobs(*http_, cfg, g.request_timeout),
              cx.to.on_signal,
              cx.to.on_status,
              cx.log,
              cx.metrics
          )),
          url_(cfg.url) {}

    void refresh(
        const refresh_window& /*window*/, loop::steady_clock::time_point /*deadline*/, refresh_done done
    ) override {
        poller_->refresh(std::move(done));
    }
    std::string describe() const override { return url_; }

    void start() override { poller_->start(); }

    void stop() override {
        poller_->stop();
        http_->shutdown();
    }

private:
    std::unique_ptr<net::http_client> http_;  ///< before the poller, whose job uses it
    std::unique_ptr<poller> poller_;
    std::string url_;
};

}  // namespace

std::vector<poll_job> poll_jobs(
    net::http_client& http, const config& cfg, std::chrono::milliseconds request_timeout
) {
    auto c = std::make_shared<const config>(cfg);
    auto run = [&http, c, request_timeout]() -> asio::awaitable<poll_outcome> {
        auto body = co_await google::get(http, nullptr, c->url, request_timeout, "status feed");
        if (!body) {
            co_return body.error();
        }
        auto incidents = parse_status_feed(*body);
        if (!incidents) {
            co_return google::poll_failed(incidents.error().detail);
        }
        co_return poll_result{incident_signals(*incidents, c->products, c->locations, loop::wall_now())};
    };
    return {{"feed", cfg.interval, std::move(run)}};
}

std::unique_ptr<sources::source> make(const config& cfg, const google::config& g, context& cx) {
    if (!cfg.enabled) {
        return nullptr;
    }
    return std::make_unique<status_source>(cfg, g, cx);
}

}  // namespace runbookd::sources::gcp_status
