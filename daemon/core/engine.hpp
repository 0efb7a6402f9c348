#pragma once
// The engine: incident lifecycle and the #status schedule. Pure: no I/O, no clock.
// Every call takes `now` and returns what to post and when to be woken next.

#include "core/event.hpp"
#include "core/incident.hpp"
#include "core/input.hpp"
#include "core/post.hpp"
#include "core/rank.hpp"
#include "core/rule.hpp"
#include "core/signal_log.hpp"
#include "core/source_health.hpp"
#include "core/time.hpp"

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd {

/// What users see of a PagerDuty service.
struct service_info {
    std::string name;    ///< display name in posts ("Editor")
    std::string impact;  ///< user-visible impact sentence ("Saving in the editor may fail.")
    /// Its Kubernetes workloads, "namespace/deployment" patterns (`related: service`).
    std::vector<std::string> workloads;
    /// Alertmanager label matchers, all of which an alert's labels satisfy when it is about
    /// this service (`alertmanager: ['service="editor"']`; core/label_matcher.hpp). The `{}`
    /// lets aggregate initialisations leave it out without a warning.
    std::vector<std::string> alertmanager{};
    /// The GitHub repositories that deploy it, `owner/repo` (any environment) or
    /// `owner/repo@environment`: a deploy webhook of one names this service (intake/deploys).
    std::vector<std::string> github{};
    /// Its database sessions (`services.<id>.postgres`): application_name and user patterns
    /// ("*" alone or at the end); the Postgres source names the service in db.* signals.
    std::vector<std::string> postgres_applications{};
    std::vector<std::string> postgres_users{};
};

/// How #operations is kept current.
struct operations_settings {
    bool enabled = true;  ///< an #operations destination exists
    /// At most one edit of a summary per interval: a burst of signals is coalesced.
    std::chrono::milliseconds edit_interval = std::chrono::seconds{30};
    /// A suspect with at least this share is named in #status updates (its status_text).
    double dominance_share = 0.6;
    /// A top suspect below this share is not named: "no likely cause yet" (docs/rules.md).
    double min_share = 0.3;
    std::size_t max_suspects = 3;  ///< suspects shown in full; the rest in one line
    /// How long an incident's first summary waits for the evidence its sources gather at
    /// the page (decisions::gather, then evidence_gathered). Zero: it goes out with the
    /// notice, and nothing is gathered (replay, where every signal is already in the log).
    std::chrono::milliseconds gather_deadline{0};
};

/// Bounds under an alert storm (`limits:`; docs/configuration.md).
struct limits_settings {
    /// Open incidents tracked one by one; past it, a new incident is only counted in the
    /// storm post (merge_reason::untracked).
    std::size_t max_open_incidents = 5000;
    /// More new incidents than this within `storm_window` is a storm: #status and
    /// #operations get one storm post each, edited as it grows, instead of a post per
    /// incident. 0: never (the limit on open incidents still starts one).
    std::size_t storm_threshold = 10;
    std::chrono::milliseconds storm_window = std::chrono::minutes{5};
    /// At most one edit of a storm post per interval; what happens meanwhile is in the next.
    std::chrono::milliseconds storm_edit_interval = std::chrono::seconds{10};
};

/// One storm's line for a service: how many of its incidents, and the first one's title.
struct storm_line {
    std::string service;  ///< display name, raw
    std::string title;    ///< the first incident's title, raw
    std::size_t count = 0;
    friend bool operator==(const storm_line&, const storm_line&) = default;
};

/// A burst of new incidents reported together (engine.cpp, docs/operations.md). Plain data.
struct storm_state {
    std::string key;  ///< "storm/<start, ms since the epoch>": the base of its post keys
    wall_time started;
    wall_time last_opened;
    std::optional<wall_time> ended;  ///< set when fewer than the threshold opened in a window
    bool by_limit = false;           ///< started by an incident past max_open_incidents
    std::size_t opened = 0;          ///< incidents counted (tracked, untracked, and adopted)
    std::size_t posted_alone = 0;    ///< of them, announced one by one before the storm began
    std::size_t untracked = 0;       ///< of them, past max_open_incidents
    std::size_t resolved = 0;        ///< tracked ones resolved since
    std::size_t open = 0;            ///< tracked ones still open
    /// By service id, first come first listed; at most max_storm_services, the rest in
    /// `other_incidents`.
    std::map<std::string, storm_line, std::less<>> services;
    std::vector<std::string> service_order;
    std::size_t other_incidents = 0;
    int status_edits = 0;  ///< edits of the #status storm post sent
    int ops_edits = 0;     ///< edits of the #operations storm post sent
    bool posted = false;   ///< its first posts went out
    std::optional<wall_time> last_sent;
    std::optional<wall_time> due;             ///< an edit is pending and may go out at this time
    std::vector<merged_posts> merged_status;  ///< folded since the last #status storm post
    std::vector<merged_posts> merged_ops;     ///< folded since the last #operations storm post
    friend bool operator==(const storm_state&, const storm_state&) = default;
};

/// The part of the configuration the engine reads.
struct engine_settings {
    std::chrono::milliseconds reminder_interval = std::chrono::minutes{30};
    /// How long a resolved incident is remembered (late events, reopen).
    std::chrono::milliseconds resolved_retention = std::chrono::hours{24};
    /// A notice, reopen or resolved post that a reconciliation makes more than this after
    /// the change happened at PagerDuty says so ("posted late: triggered at 14:02 UTC").
    std::chrono::milliseconds late_after = std::chrono::minutes{2};
    /// Impact sentence for a service with none configured.
    std::string default_impact = "Some users may see errors or slowness.";
    std::map<std::string, service_info, std::less<>> services;  ///< by PagerDuty service id
    operations_settings operations;
    signal_log_settings signals;
    limits_settings limits;
    /// The rule pack; null means no ranking and no #operations posts.
    std::shared_ptr<const rule_set> rules;
};

/// Owns every known incident. Runs on the loop thread only; not thread-safe by design.
class engine {
public:
    explicit engine(engine_settings settings);

    /// The one entry point for the shell and for replay: applies `in` at `in.at` and returns
    /// the posts it causes. The on_* functions below are its parts.
    decisions apply(input in);

    /// Applies one intake event; returns the posts it causes.
    decisions on_event(const incident_event& ev, wall_time now);

    /// Posts every #status update and #operations refresh that is due at `now`, and
    /// forgets old resolved incidents and signals.
    decisions on_tick(wall_time now);

    /// Adds a signal to the log; open incidents it may bear on get a (coalesced) refresh.
    decisions on_signal(signal s, wall_time now);

    /// Records what a source says of itself; rankings are refreshed as it may change them.
    decisions on_source_status(std::string_view source, source_status status, wall_time now);

    /// The page-time gathering of an incident is in: its first #operations summary, if it
    /// is still waiting, goes out now.
    decisions on_evidence_gathered(const evidence_gathered& g, wall_time now);

    /// Ranks an incident's likely causes now (replay, test-rules, benchmarks).
    ranking rank_incident(const incident& inc, wall_time now) const;

    /// The earliest time the engine wants on_tick, or nullopt when nothing is scheduled.
    std::optional<wall_time> next_wake() const;

    /// Replaces the settings (reload). Open incidents keep their schedule; a shorter
    /// interval takes effect after the next update.
    void reconfigure(engine_settings settings);

    /// Every incident the engine knows (open, or resolved and not yet forgotten), for a
    /// reconciling source. O(n).
    std::vector<incident_view> incidents_view() const;

    const incident* find(std::string_view id) const;
    std::size_t open_count() const noexcept;
    std::size_t known_count() const noexcept { return incidents_.size(); }
    const signal_log& signals() const noexcept { return log_; }
    const source_map& sources() const noexcept { return sources_; }
    /// Storms with incidents still open or posts still due, by key; the current one is
    /// current_storm().
    const std::map<std::string, storm_state, std::less<>>& storms() const noexcept { return storms_; }
    const storm_state* current_storm() const;

private:
    using slot = std::pair<wall_time, std::string>;

    decisions finish(decisions d) const;
    /// A webhook's event (on_event without the storm posts).
    decisions on_webhook(const incident_event& ev, wall_time now);
    /// A reconciliation's event: PagerDuty's state of the incident as of `ev.as_of`.
    decisions reconcile(const incident_event& ev, wall_time now);
    /// `late`: when the change happened, for a post made long after it.
    void open_epoch(
        incident& inc, wall_time now, decisions& out, post_kind kind, std::optional<wall_time> late = {}
    );
    /// A resolved incident opens again (epoch + 1) with the "problem is back" post.
    void reopen(
        incident& inc, wall_time started, wall_time now, decisions& out, std::optional<wall_time> late
    );
    /// Closes an open incident at `at` with its resolved post and #operations timeline.
    void resolve(incident& inc, wall_time at, wall_time now, decisions& out, std::optional<wall_time> late);
    /// Moves an open incident's next update; keeps `due_` in step.
    void reschedule(incident& inc, wall_time next);
    /// Marks an incident resolved at `at`; moves it from `due_` to `expiry_`.
    void close(incident& inc, wall_time at);
    void forget_expired(wall_time now);
    void note(incident& inc, wall_time at, std::string text);
    /// Drops a pending #operations refresh of `inc`, if any; keeps `ops_due_` in step.
    void cancel_refresh(incident& inc);
    /// Asks for an #operations refresh of `inc`, no sooner than edit_interval after the last.
    void mark_dirty(incident& inc, wall_time now);
    void mark_all_dirty(wall_time now);
    /// Re-ranks and posts a new summary, an edit, or nothing when nothing changed.
    void refresh_operations(incident& inc, wall_time now, decisions& out);
    /// The first summary of an epoch: now, or once the page-time gathering is in.
    void first_summary(incident& inc, wall_time now, decisions& out);
    void run_due(wall_time now, decisions& out);
    /// Whether a new incident (or a reopen) `id` opening at `now` belongs to a storm, which
    /// it starts when it is one too many for the window or comes past the open limit.
    bool storming(std::string_view id, bool over_limit, wall_time now);
    /// Whether a storm is under way at `now`, or the rate would start one.
    bool storm_under_way(wall_time now);
    /// Past the open limit outside a storm: the oldest open storm incident stops being
    /// followed (counted as untracked in its storm) to make room; false when there is none.
    bool untrack_oldest_storm_incident(wall_time now);
    void remember_untracked(const std::string& id);
    void note_storm_member(const std::string& id);
    /// Ends the current storm once fewer than the threshold opened in the last window.
    void end_storm_if_over(wall_time now);
    /// When the current storm will be over if nothing else opens.
    std::optional<wall_time> storm_end() const;
    /// Counts a new incident in the current storm (`inc` null: untracked, `facts` only).
    void count_in_storm(
        incident* inc,
        std::string_view service_id,
        std::string_view service_name,
        std::string_view title,
        post_kind kind,
        wall_time now
    );
    /// The storm posts due at `now`: the first ones, then edits, at most one per interval.
    void run_storms(wall_time now, decisions& out);
    void storm_dirty(storm_state& s, wall_time now);
    /// A storm incident resolved: counted in its storm, nothing posted of its own.
    void resolve_in_storm(incident& inc, wall_time at, wall_time now);
    /// An open-incident event with no incident: a webhook's or a reconciliation's new incident.
    incident* admit(
        const incident_facts& facts,
        wall_time started,
        post_kind kind,
        wall_time now,
        decisions& out,
        std::optional<wall_time> late = {}
    );
    std::string dominant_status(const incident& inc, wall_time now) const;

    engine_settings settings_;
    std::map<std::string, incident, std::less<>> incidents_;
    // Indexes, so that every call costs O(log n) in the number of incidents, not O(n):
    std::set<slot> due_;      ///< (next_update, id) of every open incident
    std::set<slot> expiry_;   ///< (when to forget, id) of every resolved incident
    std::set<slot> ops_due_;  ///< (refresh time, id) of every incident with a pending #operations refresh
    /// Incidents the engine never knew that a webhook said were resolved, by id: when, so
    /// that a reconciliation read before it cannot open them. Forgotten like resolved ones.
    std::map<std::string, wall_time, std::less<>> tombstones_;
    std::set<slot> tombstone_expiry_;
    std::size_t open_ = 0;
    signal_log log_;
    source_map sources_;
    millis widest_before_{0};  ///< the longest `before` window of any rule or warning
    // Storm bookkeeping (plain data, to be persisted with the incidents):
    /// The latest opens (time, incident id), at most limits.storm_threshold of them.
    std::deque<std::pair<wall_time, std::string>> recent_opens_;
    /// Every storm still shown (open incidents, or an edit due), by key.
    std::map<std::string, storm_state, std::less<>> storms_;
    std::string current_storm_;                ///< key of the storm under way, "" when none
    std::optional<wall_time> last_untracked_;  ///< when the last incident came past the limit
    /// Incidents counted as untracked, so their later events are not counted again;
    /// bounded by max_open_incidents (oldest forgotten first).
    std::set<std::string, std::less<>> untracked_ids_;
    std::deque<std::string> untracked_order_;
    /// Incidents counted in a storm, oldest first (some resolved or reopened since): the
    /// ones to stop following first when a new incident needs room past the open limit.
    std::deque<std::string> storm_members_;
};

}  // namespace runbookd
