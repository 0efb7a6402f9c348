#pragma once
// PagerDuty's REST API v2 (api-facts §1.2) -> incidents and reconciliation events, pure: no
// sockets, no clock. The requests' URLs are built here too, so that tests see what is asked.

#include "core/error.hpp"
#include "core/event.hpp"
#include "core/time.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd::sources::pagerduty_api {

/// The largest `limit` of a list request (api-facts §1.2, `GET /incidents`).
constexpr std::size_t page_limit = 100;
/// Classic pagination: `offset + limit` must not exceed 10000, or PagerDuty answers 400
/// (PagerDuty/developer-docs:docs/REST-API/09-Pagination.md). So at most 10000 incidents
/// can be listed; past that the listing stops (see next_offset).
constexpr std::size_t offset_bound = 10000;
/// The first alert's custom details kept per incident, and the bytes of each key and value.
constexpr std::size_t max_details = 10;
constexpr std::size_t max_detail_key = 100;
constexpr std::size_t max_detail_value = 500;
constexpr std::size_t max_summary = 1024;

/// One incident as the REST API shows it (the fields reconciliation and posts use).
struct api_incident {
    std::string id;
    std::optional<long long> number;  ///< incident_number
    std::string title;
    std::string status;  ///< triggered, acknowledged, resolved
    std::string url;     ///< html_url
    std::optional<wall_time> created_at;
    std::optional<wall_time> last_status_change_at;
    std::optional<wall_time> resolved_at;
    std::string service_id;
    std::string service_name;
    std::string priority;  ///< priority.summary ("P1"); "" when none
    std::string urgency;
    std::vector<std::string> assignees;  ///< assignments[].assignee.summary
    std::string acknowledged_by;         ///< the latest acknowledgements[].acknowledger.summary
};

/// One page of `GET /incidents`. Entries without a usable id or status are skipped and
/// counted; the rest are kept, up to `max_incidents` (more is counted in `skipped` too).
struct incident_page {
    std::vector<api_incident> incidents;
    bool more = false;
    std::size_t skipped = 0;
};
result<incident_page> parse_incident_page(std::string_view body, std::size_t max_incidents);

/// `GET /incidents/{id}`: `{"incident": {...}}`.
result<api_incident> parse_incident(std::string_view body);

/// The first alert of `GET /incidents/{id}/alerts`: its summary and `body.details`
/// (flattened one level: strings as they are, anything else as JSON; bounded).
struct first_alert {
    std::string summary;
    std::vector<std::pair<std::string, std::string>> details;
};
/// nullopt when the incident has no alert (an incident made by hand).
result<std::optional<first_alert>> parse_alerts(std::string_view body);

/// An id as PagerDuty makes them (letters and digits, at most 64): the only ids put in a path.
bool valid_id(std::string_view id) noexcept;

/// `base/incidents?statuses[]=triggered&statuses[]=acknowledged&date_range=all&...`
std::string incidents_url(
    std::string_view base, const std::vector<std::string>& service_ids, std::size_t offset
);
std::string incident_url(std::string_view base, std::string_view id);
std::string alerts_url(std::string_view base, std::string_view id);

/// The offset of the page after the one at `offset`, or nullopt when the listing ends:
/// `more` is false, or the next page would pass offset_bound (`truncated` is then set).
std::optional<std::size_t> next_offset(std::size_t offset, bool more, bool& truncated) noexcept;

/// The reconciliation event for what PagerDuty said of `inc`, read by a request sent at
/// `as_of` (event_origin::reconciliation). Its type follows the status; occurred_at is when
/// it took that status (resolved_at, else last_status_change_at). With `alert`, the
/// incident's first alert comes along.
incident_event reconciliation_event(
    const api_incident& inc, wall_time as_of, const std::optional<first_alert>& alert = std::nullopt
);

/// How long a 429 asks us to wait: `Retry-After`, else `ratelimit-reset` (seconds, api-facts
/// §1.2); nullopt when neither is a number.
std::optional<std::chrono::milliseconds> retry_after(
    std::string_view retry_after_header, std::string_view reset_header
);

/// "401: Invalid API key" from an error reply (the envelope's error.message, bounded), or the
/// status alone when the body is not PagerDuty's error envelope.
std::string error_text(unsigned status, std::string_view body);

}  // namespace runbookd::sources::pagerduty_api
