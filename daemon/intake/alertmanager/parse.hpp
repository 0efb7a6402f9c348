#pragma once
// Alertmanager's webhook JSON (version "4") -> engine events. Pure: no I/O.
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
//
// One alert group is one incident: its groupKey names it, `firing` opens it, `resolved`
// closes it. The engine speaks PagerDuty's vocabulary (core/event.hpp), so a group becomes
// an incident_event the way a PagerDuty webhook does.

#include "core/engine.hpp"
#include "core/error.hpp"
#include "core/event.hpp"
#include "core/label_matcher.hpp"
#include "core/time.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd::intake::alertmanager {

/// The only payload version Alertmanager has sent since 0.x; another is refused, not guessed.
inline constexpr std::string_view supported_version = "4";

using label_set = std::vector<std::pair<std::string, std::string>>;

struct alert {
    std::string status;  ///< "firing" or "resolved"
    label_set labels;
    label_set annotations;
    std::optional<wall_time> starts_at;
    std::optional<wall_time> ends_at;  ///< unset for Go's zero time ("0001-01-01T00:00:00Z")
    std::string fingerprint;
};

/// One webhook notification: an alert group's state.
struct notification {
    std::string version;
    std::string receiver;
    std::string status;  ///< "firing" or "resolved"
    std::string group_key;
    label_set group_labels;
    label_set common_labels;
    label_set common_annotations;
    std::string external_url;
    std::vector<alert> alerts;
    long long truncated_alerts = 0;
};

/// Parses one body. The version is read first: a body whose `version` is not "4" comes back
/// with only `version` set (the caller refuses it). A missing or mistyped field the mapping
/// needs is a parse_failed failure naming the field; fields it does not know are ignored.
result<notification> parse_notification(std::string_view body);

/// A service that alerts map to: every matcher must hold for a set of labels.
struct service_route {
    std::string id;  ///< its key under `services:`
    std::vector<label_matcher> matchers;
};

/// How a group becomes an incident: from `services:` and `alertmanager:`.
struct mapping {
    std::vector<service_route> services;  ///< tried in order; the first that matches wins
    std::vector<std::pair<std::string, std::string>> priorities;  ///< severity -> priority
    std::string severity_label = "severity";
};

/// Compiles the matchers of `services.<id>.alertmanager` (already validated by the config),
/// in the services' order; a service without matchers is left out.
std::vector<service_route> routes_from(const std::map<std::string, service_info, std::less<>>& services);

/// The engine's view of one notification.
struct translated {
    std::string group_id;  ///< the incident id: "am-" + 16 hex digits of SHA-256(groupKey)
    /// Identifies this state of the group: the status and the alerts in it (fingerprint and
    /// startsAt). Alertmanager's repeat notifications carry the same one.
    std::string state_key;
    bool mapped = false;  ///< some service's matchers held
    incident_event event;
};

/// Which group a notification is about and which state of it: all de-duplication needs,
/// without building the event.
struct group_state {
    std::string group_id;   ///< as translated::group_id
    std::string state_key;  ///< as translated::state_key
};
group_state state_of(const notification& n);

/// The same group and state read straight from a body, without building a document or a
/// notification: simdjson On-Demand reads `version`, `status`, `groupKey` and each alert's
/// `status`, `fingerprint` and `startsAt`, and checks the rest as parse_notification would
/// (valid JSON throughout, label and annotation sets of strings, a non-empty `alerts`).
/// When it answers, parse_notification(body) succeeds with version "4" and state_of gives
/// the same group_state. nullopt on any doubt: a body that parse_notification would refuse
/// or that is not version "4", a repeated key among those read, an alert without a
/// fingerprint, a number or escape simdjson reads differently, a body over 1 MiB; the
/// caller then parses in full. Keeps one parser per thread.
std::optional<group_state> peek_state(std::string_view body);

/// The group id for a groupKey (stable across restarts and replicas). It contains '-', so
/// it can never be taken for a PagerDuty incident id (letters and digits): the PagerDuty
/// REST reconciliation leaves these incidents alone.
std::string group_id(std::string_view group_key);

translated translate(const notification& n, const mapping& m);

}  // namespace runbookd::intake::alertmanager
