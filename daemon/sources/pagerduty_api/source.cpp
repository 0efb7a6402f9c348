#include "sources/pagerduty_api/source.hpp"

#include "loop/clock.hpp"
#include "net/https_client.hpp"
#include "sources/pagerduty_api/parse.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_set>

namespace runbookd::sources::pagerduty_api {
namespace {

namespace asio = boost::asio;

/// An incident list page of 100 is a few hundred KB; more is not what we asked for.
constexpr std::size_t max_body = 8 * 1024 * 1024;

constexpr std::string_view endpoints[] = {
    "incidents", "incident", "alerts", "log_entries", "notes", "maintenance_windows"};
constexpr std::string_view skipped_entries[] = {
    "incident", "log_entry", "ignored_log_entry", "maintenance_window"};
/// The log is read from a little before the last reconciliation that read it: an entry
/// PagerDuty indexed late is not lost between two windows (what is read twice is
/// de-duplicated by the engine).
constexpr auto log_overlap = std::chrono::minutes{1};
/// Note entries handed to the engine, remembered so that the overlap's second read does not
/// ask for the notes or hand the note over again. The engine would ignore it anyway (it
/// compares with its latest news), so forgetting the oldest is harmless.
constexpr std::size_t notes_remembered = 1024;
constexpr std::string_view outcomes[] = {"ok", "rate_limited", "error"};

poll_failure failed(errc code, std::string what, std::optional<std::chrono::milliseconds> after = {}) {
    return poll_failure{
        make_failure(code, "pagerduty api: " + std::move(what), code != errc::upstream_rejected), after, {}};
}

/// What one GET came to: a 200's body, or why not.
struct got {
    std::string body;
    unsigned status = 0;  ///< 0: no answer (transport failure)
    std::string error;    ///< "" on a 200
    std::optional<std::chrono::milliseconds> retry_after;
    bool exhausted = false;  ///< ratelimit-remaining: 0 (ask nothing more before the reset)
    bool ok() const noexcept { return error.empty(); }
};

struct state {
    state(
        net::http_client& client,
        const config& c,
        std::function<std::vector<incident_view>()> view,
        prometheus::Registry& registry,
        log::logger logger
    )
        : http(client),
          cfg(c),
          incidents(std::move(view)),
          log(std::move(logger)),
          auth("Token token=" + c.token.reveal()),
          requests(prometheus::BuildCounter()
                       .Name("runbookd_pagerduty_api_requests_total")
                       .Help("Requests to PagerDuty's REST API, by endpoint (incidents, incident, alerts, "
                             "log_entries, notes, maintenance_windows) and outcome (ok, rate_limited, error)")
                       .Register(registry)),
          events(prometheus::BuildCounter()
                     .Name("runbookd_pagerduty_api_events_total")
                     .Help("Incident events a reconciliation handed to the engine, by PagerDuty status "
                           "(annotated: a note read from the log)")
                     .Register(registry)),
          skipped(prometheus::BuildCounter()
                      .Name("runbookd_pagerduty_api_skipped_total")
                      .Help("Entries skipped, by entry: incident (no usable id or status, or past the offset "
                            "bound's 10000), log_entry (unusable, or past log_entries_per_poll), "
                            "ignored_log_entry (a type reconciliation does not use), maintenance_window "
                            "(no usable id, start_time or end_time)")
                      .Register(registry)),
          truncated(
              prometheus::BuildCounter()
                  .Name("runbookd_pagerduty_api_truncated_total")
                  .Help("Reconciliations whose incident listing stopped at the offset bound (offset + limit "
                        "<= 10000), or whose log read stopped at log_entries_per_poll")
                  .Register(registry)
                  .Add({})
          ),
          open(prometheus::BuildGauge()
                   .Name("runbookd_pagerduty_api_open_incidents")
                   .Help("Incidents PagerDuty listed as triggered or acknowledged at the last reconciliation")
                   .Register(registry)
                   .Add({})) {
        for (const auto e : endpoints) {
            for (const auto o : outcomes) {
                requests.Add({{"endpoint", std::string{e}}, {"outcome", std::string{o}}});
            }
        }
        for (const auto s : {"triggered", "acknowledged", "resolved", "annotated"}) {
            events.Add({{"status", s}});
        }
        for (const auto e : skipped_entries) {
            skipped.Add({{"entry", std::string{e}}});
        }
    }

    asio::awaitable<got> get(std::string url, std::string_view endpoint) {
        net::http_call call;
        call.url = std::move(url);
        call.timeout = cfg.timeout;
        call.max_body = max_body;
        call.headers["Authorization"] = auth;
        call.headers["Accept"] = "application/vnd.pagerduty+json;version=2";
        auto reply = co_await http.send(std::move(call));
        got g;
        const auto count = [&](std::string_view outcome) {
            requests.Add({{"endpoint", std::string{endpoint}}, {"outcome", std::string{outcome}}}
            ).Increment();
        };
        if (!reply) {
            count("error");
            g.error = reply.error().error.detail;
            co_return g;
        }
        g.status = reply->status;
        const std::string remaining = reply->header("ratelimit-remaining");
        g.exhausted = remaining == "0";
        if (g.exhausted || reply->status == 429) {
            g.retry_after = retry_after(reply->header("retry-after"), reply->header("ratelimit-reset"));
        }
        if (reply->status == 200) {
            count("ok");
            g.body = std::move(reply->body);
            co_return g;
        }
        count(reply->status == 429 ? "rate_limited" : "error");
        g.error = error_text(reply->status, reply->body);
        co_return g;
    }

    net::http_client& http;
    config cfg;
    std::function<std::vector<incident_view>()> incidents;
    log::logger log;
    std::string auth;
    prometheus::Family<prometheus::Counter>& requests;
    prometheus::Family<prometheus::Counter>& events;
    prometheus::Family<prometheus::Counter>& skipped;
    prometheus::Counter& truncated;
    prometheus::Gauge& open;
    bool warned_truncated = false;
    /// Listed incidents whose alerts were read and held none (made by hand): not asked
    /// again while they stay listed.
    std::unordered_set<std::string> without_alert;
    /// The as_of of the last reconciliation that read the log to its end (or its cap).
    std::optional<wall_time> log_read_until;
    bool warned_log_cap = false;
    std::unordered_set<std::string> notes_told;
    std::deque<std::string> notes_told_order;

    void remember_note(const std::string& entry_id) {
        if (notes_told.insert(entry_id).second) {
            notes_told_order.push_back(entry_id);
            if (notes_told_order.size() > notes_remembered) {
                notes_told.erase(notes_told_order.front());
                notes_told_order.pop_front();
            }
        }
    }

    void skip(std::string_view entry, std::size_t n) {
        if (n > 0) {
            skipped.Add({{"entry", std::string{entry}}}).Increment(static_cast<double>(n));
        }
    }
};

/// The log entries since the last read (at most log_lookback ago) until `as_of`, digested,
/// up to log_entries_per_poll. A failure leaves log_read_until alone (the next reconciliation
/// reads the window again) and is logged; a 429 or used-up limit sets `rate_limited`.
asio::awaitable<log_digest> read_log(state& s, wall_time as_of, bool& rate_limited) {
    log_digest digest;
    const wall_time earliest = as_of - s.cfg.log_lookback;
    const wall_time since = s.log_read_until ? std::max(*s.log_read_until - log_overlap, earliest) : earliest;
    std::size_t read = 0;
    std::size_t offset = 0;
    bool capped = false;
    for (;;) {
        const got g = co_await s.get(log_entries_url(s.cfg.url, since, as_of, offset), "log_entries");
        if (!g.ok()) {
            rate_limited = g.status == 429;
            s.log.warn("log entries not read", {{"error", g.error}});
            co_return digest;
        }
        auto page = parse_log_page(g.body, s.cfg.log_entries_per_poll - read);
        if (!page) {
            s.log.warn("log entries unreadable", {{"error", page.error().detail}});
            co_return digest;
        }
        read += page->read;
        s.skip("log_entry", page->unusable + page->over);
        s.skip("ignored_log_entry", page->ignored);
        add_to_digest(digest, std::move(page->entries));
        bool past_bound = false;
        const auto next = next_offset(offset, page->more, past_bound);
        if (page->over > 0 || (next && read >= s.cfg.log_entries_per_poll) || past_bound) {
            capped = true;
            break;
        }
        if (!next) {
            break;
        }
        if (g.exhausted) {
            rate_limited = true;  // what was read is used; the window is read again next time
            co_return digest;
        }
        offset = *next;
    }
    if (capped) {
        s.truncated.Increment();
        if (!s.warned_log_cap) {
            s.log.warn(
                "more log entries than log_entries_per_poll; the rest of the window is skipped",
                {{"cap", static_cast<int>(s.cfg.log_entries_per_poll)}}
            );
            s.warned_log_cap = true;
        }
    }
    s.log_read_until = as_of;
    co_return digest;
}

/// A failed GET of a listing as a poll failure: 401/403 are final (the key), a 429 waits.
poll_failure listing_failed(const got& g, std::string_view what = "listing incidents") {
    if (g.status == 429) {
        return failed(errc::rate_limited, "rate limited (" + g.error + ")", g.retry_after);
    }
    if (g.status == 401 || g.status == 403) {
        return failed(errc::upstream_rejected, "the API key was refused (" + g.error + ")");
    }
    return failed(errc::upstream_unavailable, std::string{what} + ": " + g.error);
}

/// The ongoing maintenance windows, and those starting within maintenance_horizon, as
/// pagerduty.maintenance signals dated at their start. Handed over at every read: the
/// signal log keeps one of each (a window moved or ended early is a new fact).
asio::awaitable<poll_outcome> maintenance(std::shared_ptr<state> s) {
    const wall_time now = loop::wall_now();
    poll_result out;
    std::size_t offset = 0;
    for (;;) {
        const got g = co_await s->get(maintenance_windows_url(s->cfg.url, offset), "maintenance_windows");
        if (!g.ok()) {
            co_return listing_failed(g, "listing maintenance windows");
        }
        auto page = parse_maintenance_page(g.body);
        if (!page) {
            co_return poll_failure{page.error(), std::nullopt, {}};
        }
        s->skip("maintenance_window", page->skipped);
        for (const auto& w : page->windows) {
            if (w.start <= now + maintenance_horizon && w.end > w.start) {
                out.signals.push_back(maintenance_signal(w));
            }
        }
        bool past_bound = false;
        const auto next = next_offset(offset, page->more, past_bound);
        if (!next) {
            break;  // thousands of open windows: the first 10000 are plenty
        }
        if (g.exhausted) {
            co_return failed(
                errc::rate_limited, "rate limit used up (ratelimit-remaining: 0) while listing", g.retry_after
            );
        }
        offset = *next;
    }
    co_return out;
}

asio::awaitable<poll_outcome> reconcile(std::shared_ptr<state> s) {
    // Everything below was read no earlier than this: the engine ignores what it learned
    // after it from a webhook (engine::reconcile).
    const wall_time as_of = loop::wall_now();
    std::vector<api_incident> listed;
    std::unordered_set<std::string> seen;
    bool cut = false;
    std::size_t offset = 0;
    for (;;) {
        const got g = co_await s->get(incidents_url(s->cfg.url, s->cfg.service_ids, offset), "incidents");
        if (!g.ok()) {
            co_return listing_failed(g);
        }
        auto page = parse_incident_page(g.body, offset_bound - listed.size());
        if (!page) {
            co_return poll_failure{page.error(), std::nullopt, {}};
        }
        s->skip("incident", page->skipped);
        for (auto& inc : page->incidents) {
            // Pages shift while we read them (newest first): an incident seen twice is kept once.
            if (seen.insert(inc.id).second) {
                listed.push_back(std::move(inc));
            }
        }
        const auto next = next_offset(offset, page->more, cut);
        if (!next) {
            break;
        }
        if (g.exhausted) {
            co_return failed(
                errc::rate_limited, "rate limit used up (ratelimit-remaining: 0) while listing", g.retry_after
            );
        }
        offset = *next;
    }
    s->open.Set(static_cast<double>(listed.size()));
    if (cut) {
        s->truncated.Increment();
        if (!s->warned_truncated) {
            s->log.warn(
                "more open incidents than the API can list; the newest are reconciled",
                {{"listed", static_cast<int>(listed.size())}, {"bound", static_cast<int>(offset_bound)}}
            );
            s->warned_truncated = true;
        }
    }

    std::map<std::string, incident_view, std::less<>> known;  // sorted: lookups in a stable order
    if (s->incidents) {
        for (auto& v : s->incidents()) {
            known.emplace(v.id, std::move(v));
        }
    }
    poll_result out;
    std::size_t budget = s->cfg.lookups_per_poll;
    bool stop_lookups = false;
    log_digest logs;
    if (s->cfg.log_entries_per_poll > 0) {
        logs = co_await read_log(*s, as_of, stop_lookups);
    }
    const auto lookup_allowed = [&] { return budget > 0 && !stop_lookups; };
    const auto after_lookup = [&](const got& g) {
        budget -= 1;
        if (g.status == 429 || g.exhausted) {
            stop_lookups = true;  // the rest wait for the next reconciliation
        }
    };
    const auto emit = [&](incident_event ev) {
        s->events.Add({{"status", ev.incident.status.value_or("annotated")}}).Increment();
        out.events.push_back(std::move(ev));
    };
    std::map<std::string_view, std::string_view> listed_status;
    for (const auto& inc : listed) {
        listed_status.emplace(inc.id, inc.status);
    }

    // The log's latest change of state per incident the engine knows, when it differs from
    // the engine's view: who acknowledged, and when it resolved (from the world). A listed
    // incident's state is the listing's (read at the same as_of): the log's is used only
    // when they agree. For one not listed, only a resolution is taken (its lookup is saved).
    std::unordered_set<std::string> told;
    for (const auto& [id, entry] : logs.state) {
        const auto view = known.find(id);
        if (view == known.end() || view->second.state == incident_state::resolved) {
            continue;  // unknown: the listing opens it if it is open
        }
        const std::string_view status = status_after(entry.kind);
        const auto there = listed_status.find(id);
        if (there == listed_status.end() ? status != "resolved" : there->second != status) {
            continue;
        }
        const auto state_there = status == "acknowledged" ? incident_state::acknowledged
                                 : status == "triggered"  ? incident_state::triggered
                                                          : incident_state::resolved;
        if (view->second.state != state_there) {
            emit(log_event(entry, as_of));
            told.insert(id);
        }
    }

    // Open here, not listed there: ask for each (resolved? or only past the listing).
    for (const auto& [id, view] : known) {
        if (view.state == incident_state::resolved || seen.contains(id) || told.contains(id) ||
            !valid_id(id)) {
            continue;
        }
        if (!lookup_allowed()) {
            break;
        }
        const wall_time asked = loop::wall_now();
        const got g = co_await s->get(incident_url(s->cfg.url, id), "incident");
        after_lookup(g);
        if (!g.ok()) {
            s->log.debug("incident lookup failed", {{"incident", id}, {"error", g.error}});
            continue;
        }
        auto inc = parse_incident(g.body);
        if (!inc) {
            s->log.warn("incident lookup unreadable", {{"incident", id}, {"error", inc.error().detail}});
            continue;
        }
        if (inc->status == "resolved") {
            emit(reconciliation_event(*inc, asked));
        }
    }

    for (const auto& inc : listed) {
        const auto it = known.find(inc.id);
        const incident_view* view = it == known.end() ? nullptr : &it->second;
        std::optional<first_alert> alert;
        if (s->cfg.alerts && (view == nullptr || !view->enriched) && !s->without_alert.contains(inc.id) &&
            lookup_allowed()) {
            const got g = co_await s->get(alerts_url(s->cfg.url, inc.id), "alerts");
            after_lookup(g);
            if (g.ok()) {
                if (auto parsed = parse_alerts(g.body)) {
                    alert = std::move(*parsed);
                    if (!alert) {
                        s->without_alert.insert(inc.id);
                    }
                } else {
                    s->log.warn(
                        "alert list unreadable", {{"incident", inc.id}, {"error", parsed.error().detail}}
                    );
                }
            }
        }
        const auto state_there =
            inc.status == "acknowledged" ? incident_state::acknowledged : incident_state::triggered;
        if ((view == nullptr || view->state != state_there || alert) && (!told.contains(inc.id) || alert)) {
            emit(reconciliation_event(inc, as_of, alert));
        }
    }

    // The log's latest note per incident known open here or listed open there: the engine
    // takes it as the latest news unless it knows it (its webhook came) or newer news.
    for (auto& [id, entry] : logs.note) {
        const auto view = known.find(id);
        const bool open_here = view != known.end() && view->second.state != incident_state::resolved;
        if ((!open_here && !seen.contains(id)) || s->notes_told.contains(entry.id)) {
            continue;
        }
        if (!entry.note) {
            // The entry does not carry the text: the incident's notes do (the newest one).
            if (!lookup_allowed()) {
                continue;
            }
            const got g = co_await s->get(notes_url(s->cfg.url, id), "notes");
            after_lookup(g);
            if (!g.ok()) {
                s->log.debug("note lookup failed", {{"incident", id}, {"error", g.error}});
                continue;
            }
            auto note = parse_notes(g.body);
            if (!note) {
                s->log.warn("note list unreadable", {{"incident", id}, {"error", note.error().detail}});
                continue;
            }
            if (!*note) {
                continue;  // deleted since
            }
            entry.note = std::move((*note)->content);
            entry.created_at = std::max(entry.created_at, (*note)->created_at);
        }
        s->remember_note(entry.id);
        emit(log_event(entry, as_of));
    }
    // Bounded by what is listed now: an incident no longer open is forgotten.
    std::erase_if(s->without_alert, [&](const std::string& id) { return !seen.contains(id); });
    co_return out;
}

class api_source final : public sources::source {
public:
    api_source(const config& cfg, context& cx)
        : http_(std::make_unique<net::https_client>(
              cx.loop,
              net::tls_options{cfg.ca_file, {}, {}, {}},
              cx.log.with("component", "pagerduty_api_http")
          )),
          url_(cfg.url),
          interval_(cfg.interval) {
        auto jobs = poll_jobs(*http_, cfg, cx.incidents, cx.metrics, cx.log);
        poller_ =
            std::make_unique<poller>(cx.loop, "pagerduty_api", std::move(jobs), cx.to, cx.log, cx.metrics);
    }

    void refresh(
        const refresh_window& /*window*/, loop::steady_clock::time_point /*deadline*/, refresh_done done
    ) override {
        poller_->refresh(std::move(done));
    }
    std::string describe() const override {
        return url_ + " every " + format_duration(interval_) + " (API token)";
    }

    void start() override { poller_->start(); }

    void stop() override {
        poller_->stop();
        http_->shutdown();
    }

private:
    std::unique_ptr<net::http_client> http_;  ///< before the poller, whose job uses it
    std::unique_ptr<poller> poller_;
    std::string url_;
    std::chrono::milliseconds interval_;
};

}  // namespace

std::vector<poll_job> poll_jobs(
    net::http_client& http,
    const config& cfg,
    std::function<std::vector<incident_view>()> incidents,
    prometheus::Registry& metrics,
    log::logger log
) {
    auto s = std::make_shared<state>(http, cfg, std::move(incidents), metrics, std::move(log));
    std::vector<poll_job> jobs{{"reconcile", cfg.interval, [s] { return reconcile(s); }}};
    if (cfg.maintenance_windows) {
        jobs.push_back({"maintenance", cfg.interval, [s] { return maintenance(s); }});
    }
    return jobs;
}

poll_job reconcile_job(
    net::http_client& http,
    const config& cfg,
    std::function<std::vector<incident_view>()> incidents,
    prometheus::Registry& metrics,
    log::logger log
) {
    return std::move(poll_jobs(http, cfg, std::move(incidents), metrics, std::move(log)).front());
}

std::unique_ptr<sources::source> make(const config& cfg, context& cx) {
    if (!cfg.enabled()) {
        return nullptr;
    }
    cx.redact(cfg.token.reveal());
    return std::make_unique<api_source>(cfg, cx);
}

}  // namespace runbookd::sources::pagerduty_api
