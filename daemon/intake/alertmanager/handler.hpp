#pragma once
// POST /webhooks/alertmanager: authenticate, parse, de-duplicate, hand to the engine, answer.

#include "core/engine.hpp"
#include "core/event.hpp"
#include "core/secret.hpp"
#include "intake/alertmanager/config.hpp"
#include "intake/alertmanager/parse.hpp"
#include "intake/endpoint.hpp"
#include "log/log.hpp"
#include "net/router.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace runbookd::intake::alertmanager {

/// The last state seen of each of the `capacity` most recently notified groups. A repeat
/// notification (Alertmanager's repeat_interval, a retry, a second replica of an HA pair)
/// carries the state already seen; a new state (an alert added, the group resolved, the
/// group firing again) does not.
class last_states {
public:
    explicit last_states(std::size_t capacity) : capacity_(capacity) {}
    /// True when `state` is not `group`'s last state; then it becomes it.
    bool update(const std::string& group, const std::string& state);
    /// True when `state` is `group`'s last state; the group then counts as just notified, as
    /// update() would have it. Nothing changes otherwise.
    bool repeats(const std::string& group, const std::string& state);
    std::size_t size() const noexcept { return by_group_.size(); }

private:
    struct entry {
        std::string state;
        std::list<std::string>::iterator at;
    };
    std::size_t capacity_;
    std::list<std::string> order_;  ///< least recently notified first
    std::unordered_map<std::string, entry> by_group_;
};

/// The credentials Alertmanager's http_config sends, checked in constant time.
class credentials {
public:
    credentials(
        const std::vector<secret<std::string>>& bearer_tokens,
        std::string_view user,
        std::string_view password
    );
    enum class check { valid, missing, unsupported_scheme, mismatch };
    /// `authorization`: the header's value ("Bearer …" or "Basic …").
    check verify(std::string_view authorization) const;

private:
    std::vector<std::string> bearer_digests_;  ///< SHA-256 hex of each token
    std::string basic_digest_;                 ///< SHA-256 hex of "user:password"; "" when off
};

/// The webhook endpoint. Runs on the loop thread and answers at once.
class webhook_handler final : public endpoint {
public:
    using event_sink = std::function<void(incident_event&&)>;

    webhook_handler(
        const config& cfg, mapping map, event_sink sink, log::logger log, prometheus::Registry& metrics
    );

    std::string_view path() const noexcept override { return "/webhooks/alertmanager"; }
    net::response handle(const net::request& req) override { return (*this)(req); }
    net::response operator()(const net::request& req);

private:
    prometheus::Counter& counter(std::string_view result);
    net::response duplicate(const net::request& req, const group_state& state);
    net::response refuse(
        const net::request& req, std::string_view result, unsigned status, std::string_view why
    );

    credentials auth_;
    mapping map_;
    last_states seen_;
    event_sink sink_;
    log::logger log_;
    prometheus::Family<prometheus::Counter>& results_;
    prometheus::Counter* accepted_ = nullptr;
    prometheus::Counter* duplicate_ = nullptr;
    prometheus::Counter* firing_ = nullptr;
    prometheus::Counter* resolved_ = nullptr;
    prometheus::Counter* unmapped_ = nullptr;
};

/// The endpoint for `cfg` and the services' `alertmanager:` matchers; nullptr when the
/// section is off. Its credentials are registered for redaction.
std::unique_ptr<webhook_handler> make(
    const config& cfg, const std::map<std::string, service_info, std::less<>>& services, context& cx
);

}  // namespace runbookd::intake::alertmanager
