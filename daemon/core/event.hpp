#pragma once
// Engine inputs about incidents: PagerDuty's webhooks, and its REST API reconciled.

#include "core/time.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace runbookd {

/// What happened to an incident, in PagerDuty's vocabulary.
enum class incident_event_type {
    triggered,
    acknowledged,
    unacknowledged,
    resolved,
    reopened,
    escalated,
    reassigned,
    priority_updated,
    annotated,
    status_update_published,
};

/// The name used in logs, metrics and replay files ("triggered", "status_update_published").
std::string_view to_string(incident_event_type t) noexcept;

/// What an event knows of its incident. Unset fields are not known by this event
/// (a note carries only a reference) and leave the engine's copy unchanged.
struct incident_facts {
    std::string id;
    std::optional<long long> number;
    std::optional<std::string> title;
    std::optional<std::string> service_id;
    std::optional<std::string> service_name;
    std::optional<std::string> priority;
    std::optional<std::string> urgency;
    std::optional<std::string> url;
    std::optional<wall_time> created_at;
    std::optional<std::vector<std::string>> assignees;
    std::optional<std::string> status;  ///< PagerDuty's: "triggered", "acknowledged", "resolved"
    /// The first alert's summary and custom details (`body.details`), bounded by the
    /// source that fetched them: what the page is about, for #operations.
    std::optional<std::string> alert_summary;
    std::optional<std::vector<std::pair<std::string, std::string>>> alert_details;
    /// The paging system, named in every post's footer ("PagerDuty", "Alertmanager").
    std::optional<std::string> pager;
    /// What users see, in the alert's own words (an `impact` annotation); preferred to the
    /// service's configured impact.
    std::optional<std::string> impact;
};

/// Where an event comes from. A webhook tells of one change as it happens; a reconciliation
/// (PagerDuty's REST API, polled) tells of the incident's state as of `as_of`, which may
/// already be stale when it is applied.
enum class event_origin { webhook, reconciliation };

/// One authenticated, parsed, de-duplicated event about one incident.
struct incident_event {
    incident_event_type type = incident_event_type::triggered;
    std::string event_id;
    std::optional<wall_time> occurred_at;
    std::string agent;    ///< who did it ("" when automation or unknown)
    std::string message;  ///< note or status-update text, when the event carries one
    incident_facts incident;
    event_origin origin = event_origin::webhook;
    /// reconciliation: the daemon's time when the request that read this state was sent.
    /// Anything the engine learned after it is newer, and wins.
    std::optional<wall_time> as_of;
};

}  // namespace runbookd
