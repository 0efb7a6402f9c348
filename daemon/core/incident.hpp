#pragma once
// One incident as the engine tracks it, and its #status schedule.

#include "core/event.hpp"
#include "core/time.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace runbookd {

enum class incident_state { triggered, acknowledged, resolved };

/// One line of an incident's story, for the #operations timeline on resolve.
struct timeline_entry {
    wall_time at;
    std::string text;  ///< raw: escaped when rendered
};

/// The #operations side of an incident: its summary message and when it may next change.
struct operations_state {
    int summaries = 0;  ///< summary messages posted this epoch; the current one is the last
    int edits = 0;      ///< edits of the current summary
    std::string top;    ///< top suspect's rule id in the current summary ("" when none)
    std::string shown;  ///< title and body last sent, so an unchanged ranking sends nothing
    std::optional<wall_time> last_sent;
    std::optional<wall_time> due;  ///< a refresh is pending and may go out at this time
};

/// The engine's copy of an incident. Plain data: the engine owns the transitions.
struct incident {
    std::string id;
    std::optional<long long> number;
    std::string title;
    std::string service_id;
    std::string service_name;  ///< PagerDuty's summary; the configured name wins when rendering
    std::string priority;
    std::string urgency;
    std::string url;
    std::vector<std::string> assignees;
    std::string alert_summary;  ///< the first alert's summary, raw (escaped when rendered)
    std::vector<std::pair<std::string, std::string>> alert_details;  ///< its custom details, bounded
    std::string pager = "PagerDuty";                                 ///< the paging system, for the footer
    std::string impact;  ///< the alert's own impact sentence ("" when none), raw

    incident_state state = incident_state::triggered;
    std::string acknowledged_by;
    wall_time started;    ///< PagerDuty's created_at (or reopened time), else first seen
    wall_time opened_at;  ///< when the engine posted the notice of this epoch
    std::optional<wall_time> resolved_at;
    wall_time forget_at;  ///< when a resolved incident is dropped (engine bookkeeping)
    int epoch = 0;        ///< bumped on every reopen; part of every post key
    /// When the engine last changed `state` (its `now`): a reconciliation read before it is stale.
    wall_time changed_at;

    wall_time next_update;  ///< when the next #status update is due (while open)
    int updates_posted = 0;
    int relays_posted = 0;

    std::string latest_news;  ///< latest status update or note, raw (escaped when rendered)
    bool latest_news_is_status_update = false;
    std::optional<wall_time> latest_news_at;

    operations_state ops;
    /// The storm this epoch was counted in ("" when posted on its own): no post of its own
    /// on #status or #operations; its resolution is counted in the storm post.
    std::string storm;
    std::vector<timeline_entry> timeline;  ///< bounded; see engine.cpp

    bool open() const noexcept { return state != incident_state::resolved; }

    /// Copies every field the event knows into this incident.
    void merge(const incident_facts& facts);
};

/// What the engine believes of one incident: what a reconciling source compares with
/// PagerDuty's answer.
struct incident_view {
    std::string id;
    incident_state state = incident_state::triggered;
    bool enriched = false;  ///< the first alert's summary or details are known
};

}  // namespace runbookd
