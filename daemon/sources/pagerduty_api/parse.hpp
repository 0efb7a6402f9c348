#pragma once
// PagerDuty's REST API v2 (api-facts §1.2) -> incidents and reconciliation events, pure: no
// sockets, no clock. The requests' URLs are built here too, so that tests see what is asked.

#include "core/error.hpp"
#include "core/event.hpp"
#include "core/signal.hpp"
#include "core/time.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
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

/// What a log entry (`GET /log_entries`, api-facts §1.2) can tell that a lost webhook would
/// have: a note, an acknowledgement, its undoing, a resolution. Other types are ignored.
enum class log_kind { note, acknowledged, unacknowledged, resolved, other };
log_kind log_kind_of(std::string_view type) noexcept;

/// The bytes of a note's text kept (a webhook's note is "trimmed" by PagerDuty too).
constexpr std::size_t max_note = 2000;

/// One log entry, as far as reconciliation uses it.
struct log_entry {
    std::string id;
    log_kind kind = log_kind::other;
    std::string incident_id;  ///< incident.id
    wall_time created_at{};   ///< when it happened at PagerDuty
    std::string agent;        ///< agent.summary ("" when automation or unknown)
    /// A note's text: `channel.content`, else `channel.summary` when the channel is a note;
    /// nullopt when the entry does not carry it (then GET /incidents/{id}/notes).
    std::optional<std::string> note;
};

/// One page of `GET /log_entries`. Entries of the four kinds above are kept, up to
/// `max_entries`; `ignored` counts the other types, `unusable` those without an id, type,
/// incident id or created_at, `over` those past `max_entries`. `read` is the page's size.
struct log_page {
    std::vector<log_entry> entries;
    bool more = false;
    std::size_t read = 0;
    std::size_t ignored = 0;
    std::size_t unusable = 0;
    std::size_t over = 0;
};
result<log_page> parse_log_page(std::string_view body, std::size_t max_entries);

/// What one reconciliation's log entries come to, per incident: the latest change of
/// state (acknowledged, unacknowledged, resolved) and the latest note. Older ones are
/// superseded: the engine keeps one state and one piece of latest news per incident.
struct log_digest {
    std::map<std::string, log_entry, std::less<>> state;
    std::map<std::string, log_entry, std::less<>> note;
};
void add_to_digest(log_digest& d, std::vector<log_entry> entries);

/// The incident's PagerDuty status after a state entry: "acknowledged", "triggered"
/// (unacknowledged), "resolved"; "" for a note or another kind.
std::string_view status_after(log_kind k) noexcept;

/// The reconciliation event for a log entry read by a request sent at `as_of`: the state
/// entries as `acknowledged`/`unacknowledged`/`resolved` with incident.status set (the
/// engine's reconcile path de-duplicates them by state and time), a note as `annotated`
/// with its text in `message` (the engine takes it as the latest news unless it knows it,
/// or newer news). occurred_at is the entry's created_at; agent is who did it.
incident_event log_event(const log_entry& e, wall_time as_of);

/// `GET /incidents/{id}/notes`: the newest note's text and time; nullopt when none.
struct api_note {
    std::string content;
    wall_time created_at{};
    std::string user;
};
result<std::optional<api_note>> parse_notes(std::string_view body);

/// An id as PagerDuty makes them (letters and digits, at most 64): the only ids put in a path.
bool valid_id(std::string_view id) noexcept;

/// `base/incidents?statuses[]=triggered&statuses[]=acknowledged&date_range=all&...`
std::string incidents_url(
    std::string_view base, const std::vector<std::string>& service_ids, std::size_t offset
);
std::string incident_url(std::string_view base, std::string_view id);
std::string alerts_url(std::string_view base, std::string_view id);
std::string notes_url(std::string_view base, std::string_view id);
/// `base/log_entries?since=...&until=...&is_overview=true&include[]=incidents&time_zone=UTC&limit=100&offset=N`
std::string log_entries_url(std::string_view base, wall_time since, wall_time until, std::size_t offset);

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

/// One maintenance window (`GET /maintenance_windows`): while it runs, PagerDuty opens no
/// incident on its services. Someone planned work on them.
struct maintenance_window {
    std::string id;
    wall_time start{};  ///< start_time
    wall_time end{};    ///< end_time (moved to the moment it was ended, if ended early)
    std::string description;
    std::vector<std::string> service_ids;
    std::vector<std::string> service_names;  ///< services[].summary
    std::string url;                         ///< html_url
};

/// The services of one window kept, at most, and the bytes of its description.
constexpr std::size_t max_window_services = 50;
constexpr std::size_t max_window_description = 500;

/// One page of `GET /maintenance_windows`. Windows without a usable id, start_time or
/// end_time are skipped and counted.
struct maintenance_page {
    std::vector<maintenance_window> windows;
    bool more = false;
    std::size_t skipped = 0;
};
result<maintenance_page> parse_maintenance_page(std::string_view body);

/// `base/maintenance_windows?filter=open&limit=100&offset=N`: the ongoing windows and the
/// future ones (PagerDuty's filter values: past, future, ongoing, open, all).
std::string maintenance_windows_url(std::string_view base, std::size_t offset);

/// How far ahead an upcoming window is taken: its signal is dated at its start, and ranking
/// counts it only from then, so the next reads are in time to see it moved or cancelled.
constexpr auto maintenance_horizon = std::chrono::hours{1};

/// The pagerduty.maintenance signal of `w`, dated at its start (source `pagerduty_api`,
/// subject the window's id; `services` comma-separated ids, `start`/`end` "15:30 UTC").
signal maintenance_signal(const maintenance_window& w);

/// How long a 429 asks us to wait: `Retry-After`, else `ratelimit-reset` (seconds, api-facts
/// §1.2); nullopt when neither is a number.
std::optional<std::chrono::milliseconds> retry_after(
    std::string_view retry_after_header, std::string_view reset_header
);

/// "401: Invalid API key" from an error reply (the envelope's error.message, bounded), or the
/// status alone when the body is not PagerDuty's error envelope.
std::string error_text(unsigned status, std::string_view body);

}  // namespace runbookd::sources::pagerduty_api
