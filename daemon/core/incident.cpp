#include "core/incident.hpp"

namespace runbookd {

void incident::merge(const incident_facts& facts) {
    if (facts.number) {
        number = facts.number;
    }
    if (facts.title) {
        title = *facts.title;
    }
    if (facts.service_id) {
        service_id = *facts.service_id;
    }
    if (facts.service_name) {
        service_name = *facts.service_name;
    }
    if (facts.priority) {
        priority = *facts.priority;
    }
    if (facts.urgency) {
        urgency = *facts.urgency;
    }
    if (facts.url) {
        url = *facts.url;
    }
    if (facts.assignees) {
        assignees = *facts.assignees;
    }
    if (facts.alert_summary) {
        alert_summary = *facts.alert_summary;
    }
    if (facts.alert_details) {
        alert_details = *facts.alert_details;
    }
    if (facts.pager && !facts.pager->empty()) {
        pager = *facts.pager;
    }
    if (facts.impact) {
        impact = *facts.impact;
    }
}

}  // namespace runbookd
