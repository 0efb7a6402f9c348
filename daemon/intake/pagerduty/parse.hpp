#pragma once
// PagerDuty V3 webhook JSON -> engine events. Pure: no I/O (api-facts §1.1):
// https://developer.pagerduty.com/docs/webhooks/v3-overview

#include "core/error.hpp"
#include "core/event.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace runbookd::intake::pagerduty {

/// What a webhook turned out to be.
enum class payload_kind {
    incident,  ///< one of the incident events the engine acts on
    ping,      ///< "Send Test Event" (pagey.ping)
    ignored,   ///< a documented event type the engine has no use for (service.*, incident.task.*)
    unknown,   ///< an event type PagerDuty added after this code was written
};

struct parsed_webhook {
    payload_kind kind = payload_kind::unknown;
    std::string event_id;
    std::string event_type;
    std::optional<wall_time> occurred_at;  ///< event.occurred_at, when present and valid
    std::optional<incident_event> event;   ///< set when kind == incident
};

/// Parses one webhook body. Fields it does not know are ignored; a missing or mistyped
/// field it needs is a parse_failed failure naming the field.
result<parsed_webhook> parse_webhook(std::string_view body);

}  // namespace runbookd::intake::pagerduty
