#include "rules/scenario.hpp"

#include "rules/inputs.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <ostream>
#include <span>
#include <sstream>

namespace runbookd::rules {
namespace {

using yaml::entry;

constexpr std::array<std::string_view, 10> file_keys{
    "name",
    "start",
    "until",
    "settings",
    "services",
    "rule_files",
    "sources",
    "timeline",
    "expect",
    "reason"};
constexpr std::array<std::string_view, 6> settings_keys{
    "reminder_interval", "edit_interval", "dominance_share", "min_share", "max_suspects", "operations"};
constexpr std::array<std::string_view, 6> step_keys{"at", "page", "incident", "agent", "message", "signal"};
constexpr std::array<std::string_view, 2> source_step_keys{"at", "source"};
constexpr std::array<std::string_view, 3> source_keys{"name", "state", "error"};
constexpr std::array<std::string_view, 6> incident_keys{
    "id", "title", "service", "number", "url", "priority"};
constexpr std::array<std::string_view, 7> expect_keys{
    "top",
    "top3",
    "status_posts",
    "operations_posts",
    "status_contains",
    "operations_contains",
    "first_operations_within"};
constexpr std::array<std::string_view, 10> event_names{
    "triggered",
    "acknowledged",
    "unacknowledged",
    "resolved",
    "reopened",
    "escalated",
    "reassigned",
    "priority_updated",
    "annotated",
    "status_update_published"};

class scenario_loader {
public:
    explicit scenario_loader(const std::string& path) : w_(path) { s_.file = path; }

    scenario_load run(std::string_view text) {
        scenario_load out;
        if (auto doc = w_.document(text)) {
            read(*doc);
        }
        out.problems = w_.take();
        if (out.problems.empty()) {
            out.value = std::move(s_);
        }
        return out;
    }

private:
    void read(const YAML::Node& doc) {
        const auto top = w_.map(doc, "", file_keys);
        if (!top) {
            return;
        }
        s_.start = *parse_rfc3339("2026-03-05T16:00:00Z");
        if (const entry* n = yaml::find(*top, "name")) {
            s_.name = w_.string(*n).value_or("");
        }
        if (const entry* r = yaml::find(*top, "reason")) {
            read_reason(*r);
        }
        if (const entry* st = yaml::find(*top, "start")) {
            s_.start = w_.instant(*st).value_or(s_.start);
        }
        s_.settings.operations.edit_interval = std::chrono::seconds{30};
        if (const entry* st = yaml::find(*top, "settings")) {
            read_settings(*st);
        }
        if (const entry* sv = yaml::find(*top, "services")) {
            if (auto svcs = inputs::read_services(w_, *sv)) {
                s_.settings.services = std::move(*svcs);
            }
        }
        if (auto files = inputs::read_rule_files(w_, yaml::find(*top, "rule_files"))) {
            s_.rule_files = std::move(*files);
        }
        if (auto src = inputs::read_sources(w_, yaml::find(*top, "sources"), s_.start)) {
            s_.sources = std::move(*src);
        }
        const entry* timeline = yaml::find(*top, "timeline");
        if (timeline == nullptr) {
            w_.report(doc.Mark(), "timeline", "required: the steps of the scenario");
            return;
        }
        wall_time last = s_.start;
        if (auto items = w_.list(*timeline)) {
            for (const auto& item : *items) {
                read_step(item);
                if (!s_.steps.empty()) {
                    last = std::max(last, s_.steps.back().at);
                }
            }
        }
        std::stable_sort(
            s_.steps.begin(),
            s_.steps.end(),
            [](const scenario_step& a, const scenario_step& b) { return a.at < b.at; }
        );
        s_.until = last + std::chrono::minutes{1};
        if (const entry* u = yaml::find(*top, "until")) {
            if (auto d = w_.duration(*u, true)) {
                s_.until = s_.start + *d;
            }
        }
        if (const entry* x = yaml::find(*top, "expect")) {
            read_expect(*x);
        }
    }

    void read_settings(const entry& e) {
        const auto keys = w_.map(e.value, e.path, settings_keys);
        if (!keys) {
            return;
        }
        for (const auto& k : *keys) {
            if (k.name == "reminder_interval") {
                s_.settings.reminder_interval = w_.duration(k).value_or(s_.settings.reminder_interval);
            } else if (k.name == "edit_interval") {
                s_.settings.operations.edit_interval =
                    w_.duration(k).value_or(s_.settings.operations.edit_interval);
            } else if (k.name == "dominance_share") {
                s_.settings.operations.dominance_share = w_.number(k, 0.01, 1).value_or(0.6);
            } else if (k.name == "min_share") {
                s_.settings.operations.min_share = w_.number(k, 0, 1).value_or(0.3);
            } else if (k.name == "max_suspects") {
                s_.settings.operations.max_suspects = w_.count(k, 1).value_or(3);
            } else if (auto v = w_.string(k)) {
                if (*v != "on" && *v != "off") {
                    w_.report(k, "'" + *v + "' is not on or off");
                }
                s_.settings.operations.enabled = *v != "off";
            }
        }
    }

    void read_reason(const entry& r) {
        auto v = w_.string(r);
        if (!v) {
            return;
        }
        if (v->find_first_of("\r\n") != std::string::npos) {
            w_.report(r, "the reasoning is one line");
            return;
        }
        s_.reason = std::move(*v);
    }

    /// Remembers where a rule id is named, to check it against the rules once they load.
    void name_rule(const entry& e, const std::string& id) {
        const auto m = e.value.Mark();
        s_.named.push_back(named_rule{
            id, problem{w_.file(), m.is_null() ? 1 : m.line + 1, m.is_null() ? 1 : m.column + 1, e.path, {}}}
        );
    }

    /// `top3: [bad-deploy, server-wont-restart]`: at most three distinct rule ids, in any order.
    std::vector<std::string> read_top3(const entry& k) {
        std::vector<std::string> ids;
        const auto items = w_.list(k);
        if (!items) {
            return ids;
        }
        if (items->size() > 3) {
            w_.report(k, "at most three causes, not " + std::to_string(items->size()));
        }
        for (const auto& i : *items) {
            auto v = w_.string(i);
            if (!v) {
                continue;
            }
            if (*v == "none") {
                w_.report(i, "'none' is not a cause: leave it out (top3: [] when no cause is acceptable)");
            } else if (std::find(ids.begin(), ids.end(), *v) != ids.end()) {
                w_.report(i, "'" + *v + "' is already listed");
            } else {
                name_rule(i, *v);
                ids.push_back(std::move(*v));
            }
        }
        return ids;
    }

    void read_expect(const entry& x) {
        const auto keys = w_.map(x.value, x.path, expect_keys);
        if (!keys) {
            return;
        }
        scenario_expectation e;
        for (const auto& k : *keys) {
            if (k.name == "top") {
                e.top = w_.string(k);
                if (e.top && *e.top != "none") {
                    name_rule(k, *e.top);
                }
            } else if (k.name == "top3") {
                e.top3 = read_top3(k);
            } else if (k.name == "status_posts") {
                e.status_posts = w_.count(k, 0);
            } else if (k.name == "operations_posts") {
                e.operations_posts = w_.count(k, 0);
            } else if (k.name == "status_contains") {
                e.status_contains = w_.strings(k);
            } else if (k.name == "operations_contains") {
                e.operations_contains = w_.strings(k);
            } else {
                e.first_operations_within = w_.duration(k);
            }
        }
        if (const entry* t3 = yaml::find(*keys, "top3")) {
            if (!e.top) {
                w_.report(*t3, "top3 needs top: the cause expected first");
            } else if (*e.top != "none" &&
                       e.top3 && std::find(e.top3->begin(), e.top3->end(), *e.top) == e.top3->end()) {
                w_.report(*t3, "the acceptable top three leave out top '" + *e.top + "'");
            }
        }
        s_.expect = std::move(e);
    }

    void read_step(const entry& item) {
        if (item.value.IsMap() && item.value["source"].IsDefined()) {
            read_source_step(item);
            return;
        }
        const auto keys = w_.map(item.value, item.path, step_keys);
        if (!keys) {
            return;
        }
        wall_time at = s_.start;
        if (const entry* a = yaml::find(*keys, "at")) {
            if (auto d = w_.duration(*a, true)) {
                at = s_.start + *d;
            }
        } else {
            w_.report(
                item.value.Mark(), item.path + ".at", "required: the offset from start, e.g. -5m or 30s"
            );
        }
        const entry* page = yaml::find(*keys, "page");
        const entry* sig = yaml::find(*keys, "signal");
        if ((page == nullptr) == (sig == nullptr)) {
            w_.report(item, "a step is one of page, signal or source");
            return;
        }
        if (sig != nullptr) {
            if (auto s = inputs::read_signal(w_, *sig, at)) {
                s->at = at;
                s_.steps.push_back(scenario_step{at, std::move(*s)});
            }
            return;
        }
        incident_event ev;
        if (auto name = w_.string(*page)) {
            const auto it = std::find(event_names.begin(), event_names.end(), *name);
            if (it == event_names.end()) {
                w_.report(
                    *page, "'" + *name + "' is not a PagerDuty event (triggered, acknowledged, resolved, ...)"
                );
                return;
            }
            ev.type = static_cast<incident_event_type>(it - event_names.begin());
        }
        ev.event_id = "replay-" + std::to_string(s_.steps.size());
        ev.occurred_at = at;
        ev.incident.id = last_incident_;
        if (const entry* inc = yaml::find(*keys, "incident")) {
            read_incident(*inc, ev.incident);
        }
        if (ev.incident.id.empty()) {
            w_.report(
                item.value.Mark(),
                item.path + ".incident",
                "required on the first page: the incident's id, title and service"
            );
            return;
        }
        last_incident_ = ev.incident.id;
        // Every replayed event carries the incident's status, as PagerDuty's do.
        switch (ev.type) {
            case incident_event_type::resolved: ev.incident.status = "resolved"; break;
            case incident_event_type::acknowledged: ev.incident.status = "acknowledged"; break;
            default: ev.incident.status = "triggered"; break;
        }
        if (const entry* a = yaml::find(*keys, "agent")) {
            ev.agent = w_.string(*a).value_or("");
        }
        if (const entry* m = yaml::find(*keys, "message")) {
            ev.message = w_.string(*m).value_or("");
        }
        s_.steps.push_back(scenario_step{at, std::move(ev)});
    }

    void read_incident(const entry& e, incident_facts& f) {
        const auto keys = w_.map(e.value, e.path, incident_keys);
        if (!keys) {
            return;
        }
        for (const auto& k : *keys) {
            auto v = w_.string(k);
            if (!v) {
                continue;
            }
            if (k.name == "id") {
                f.id = *v;
            } else if (k.name == "title") {
                f.title = *v;
            } else if (k.name == "service") {
                f.service_id = *v;
            } else if (k.name == "url") {
                f.url = *v;
            } else if (k.name == "priority") {
                f.priority = *v;
            } else if (auto n = w_.count(k, 0)) {
                f.number = static_cast<long long>(*n);
            }
        }
    }

    void read_source_step(const entry& item) {
        const auto keys = w_.map(item.value, item.path, source_step_keys);
        if (!keys) {
            return;
        }
        wall_time at = s_.start;
        if (const entry* a = yaml::find(*keys, "at")) {
            at = s_.start + w_.duration(*a, true).value_or(millis{0});
        }
        const entry* src = yaml::find(*keys, "source");
        const auto m = w_.map(src->value, src->path, source_keys);
        if (!m) {
            return;
        }
        source_report r;
        if (const entry* n = yaml::find(*m, "name")) {
            r.source = w_.string(*n).value_or("");
            const auto& kinds = signal_catalogue();
            if (std::none_of(kinds.begin(), kinds.end(), [&](const signal_kind& k) {
                    return k.source == r.source;
                })) {
                w_.report(*n, "'" + r.source + "' is not a source of any signal kind (docs/signals.md)");
            }
        } else {
            w_.report(src->value.Mark(), src->path + ".name", "required: the source's name, e.g. postgres");
        }
        if (const entry* st = yaml::find(*m, "state")) {
            const auto v = w_.string(*st).value_or("");
            if (v != "healthy" && v != "failing") {
                w_.report(*st, "'" + v + "' is not healthy or failing");
            }
            r.status.state = v == "failing" ? source_state::failing : source_state::healthy;
        }
        if (const entry* er = yaml::find(*m, "error")) {
            r.status.error = w_.string(*er).value_or("");
        }
        s_.steps.push_back(scenario_step{at, std::move(r)});
    }

    yaml::walker w_;
    scenario s_;
    std::string last_incident_;
};

bool any_contains(const std::vector<replayed_post>& posts, channel c, const std::string& text) {
    return std::any_of(posts.begin(), posts.end(), [&](const replayed_post& r) {
        return r.p.to == c && (r.p.text.title.find(text) != std::string::npos ||
                               r.p.text.body.find(text) != std::string::npos);
    });
}

std::vector<std::string> check(
    const scenario_expectation& e, const std::vector<replayed_post>& posts, const scenario& s
) {
    std::vector<std::string> misses;
    const auto count = [&](channel c) {
        return static_cast<std::size_t>(
            std::count_if(posts.begin(), posts.end(), [&](const replayed_post& r) { return r.p.to == c; })
        );
    };
    if (e.status_posts && count(channel::status) != *e.status_posts) {
        misses.push_back(
            "status_posts: expected " + std::to_string(*e.status_posts) + ", got " +
            std::to_string(count(channel::status))
        );
    }
    if (e.operations_posts && count(channel::operations) != *e.operations_posts) {
        misses.push_back(
            "operations_posts: expected " + std::to_string(*e.operations_posts) + ", got " +
            std::to_string(count(channel::operations))
        );
    }
    for (const auto& t : e.status_contains) {
        if (!any_contains(posts, channel::status, t)) {
            misses.push_back("status_contains: no #status post contains \"" + t + "\"");
        }
    }
    for (const auto& t : e.operations_contains) {
        if (!any_contains(posts, channel::operations, t)) {
            misses.push_back("operations_contains: no #operations post contains \"" + t + "\"");
        }
    }
    if (e.first_operations_within) {
        std::optional<wall_time> page;
        for (const auto& step : s.steps) {
            if (std::holds_alternative<incident_event>(step.what)) {
                page = step.at;
                break;
            }
        }
        const auto first = std::find_if(posts.begin(), posts.end(), [](const replayed_post& r) {
            return r.p.to == channel::operations;
        });
        if (!page || first == posts.end() || first->at - *page > *e.first_operations_within) {
            misses.push_back(
                "first_operations_within: no #operations post within " +
                format_duration(*e.first_operations_within) + " of the page"
            );
        }
    }
    return misses;
}

/// The top suspect of the last #operations summary of the incident of the last page step,
/// and the ranking it was made from (ranked again at that instant: the log and the rules
/// give the same ranking for the same instant).
diagnosis last_diagnosis(const engine& core, const scenario& s) {
    diagnosis d;
    for (auto it = s.steps.rbegin(); it != s.steps.rend(); ++it) {
        const auto* ev = std::get_if<incident_event>(&it->what);
        if (ev == nullptr) {
            continue;
        }
        const incident* inc = core.find(ev->incident.id);
        if (inc == nullptr || !inc->ops.last_sent) {
            return d;
        }
        const ranking r = core.rank_incident(*inc, *inc->ops.last_sent);
        if (!inc->ops.top.empty()) {
            d.top = inc->ops.top;
            // A weak lead or a true tie is listed, but not named as the likely cause.
            const suspect* likely = r.likely(s.settings.operations.min_share);
            d.named = likely != nullptr && likely->id == d.top;
        }
        for (const auto& x : r.suspects) {
            d.suspects.push_back(ranked{x.id, x.share, x.evidence.size()});
        }
        return d;
    }
    return d;
}

std::string shares_text(const std::vector<ranked>& suspects) {
    if (suspects.empty()) {
        return "(no suspect)";
    }
    std::string out;
    for (std::size_t i = 0; i < suspects.size(); ++i) {
        out += (i == 0 ? "" : ", ") + std::to_string(i + 1) + ". " + suspects[i].id + " " +
               percent_text(suspects[i].share);
    }
    return out;
}

std::string named_text(const diagnosis& d) {
    if (d.top == "none" || d.suspects.empty()) {
        return "none";
    }
    const std::string top = d.top + " " + percent_text(d.suspects.front().share);
    return d.named ? top : "none (weak lead " + top + ")";
}

}  // namespace

scenario_load load_scenario(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        scenario_load out;
        out.problems.push_back(problem{path, 0, 0, {}, "cannot read the scenario file"});
        return out;
    }
    std::stringstream text;
    text << file.rdbuf();
    return parse_scenario(path, text.str());
}

scenario_load parse_scenario(const std::string& path, std::string_view text) {
    return scenario_loader{path}.run(text);
}

std::vector<problem> unknown_rule_ids(const scenario& s, const rule_set& rules) {
    std::vector<problem> out;
    for (const auto& n : s.named) {
        const auto is = [&](const auto& list) {
            return std::any_of(list.begin(), list.end(), [&](const auto& r) { return r.id == n.id; });
        };
        if (is(rules.rules)) {
            continue;
        }
        problem p = n.where;
        p.message = is(rules.warnings) ? "'" + n.id + "' is a warning, and a warning is never a cause"
                                       : "no rule '" + n.id + "' in the rules (" + rules.origin + ")";
        out.push_back(std::move(p));
    }
    return out;
}

replay_result replay(const scenario& s, std::shared_ptr<const rule_set> rules) {
    replay_result out;
    engine_settings settings = s.settings;
    settings.rules = std::move(rules);
    settings.signals.retention = std::chrono::hours{24 * 7};
    engine core{settings};
    const auto record = [&](decisions d, wall_time now) {
        for (auto& p : d.posts) {
            out.posts.push_back(replayed_post{now, std::move(p)});
        }
    };
    for (const auto& [name, status] : s.sources) {
        record(core.apply(input{s.start, source_report{name, status}}), s.start);
    }
    const auto run_until = [&](wall_time t) {
        while (const auto wake = core.next_wake()) {
            if (*wake > t) {
                break;
            }
            record(core.apply(input{*wake, tick{}}), *wake);
        }
    };
    // Signals from before the start are known when the replay begins.
    for (const auto& step : s.steps) {
        run_until(step.at);
        input in = step;
        in.at = std::max(step.at, s.start);
        record(core.apply(std::move(in)), std::max(step.at, s.start));
    }
    run_until(s.until);
    out.found = last_diagnosis(core, s);
    if (s.expect) {
        out.misses = check(*s.expect, out.posts, s);
        if (s.expect->top && !meets(out.found, *s.expect->top)) {
            out.misses.push_back("top: expected " + *s.expect->top + ", got " + named_text(out.found));
        }
    }
    return out;
}

bool meets(const diagnosis& d, const std::string& expected) {
    return expected == "none" ? !d.named : d.top == expected;
}

scenario_score judge(const scenario& s, const replay_result& r) {
    scenario_score out;
    out.file = s.file;
    out.name = s.name;
    out.reason = s.reason;
    if (s.expect) {
        out.expected = s.expect->top.value_or("none");
        out.acceptable = s.expect->top3;
    }
    out.found = r.found;
    const auto& ranking = out.found.suspects;
    const std::size_t shown = std::min<std::size_t>(3, ranking.size());
    const auto first3 = std::span{ranking}.first(shown);
    out.top1 = meets(out.found, out.expected);
    const bool all_acceptable =
        !out.acceptable || std::all_of(first3.begin(), first3.end(), [&](const ranked& x) {
            return std::find(out.acceptable->begin(), out.acceptable->end(), x.id) != out.acceptable->end();
        });
    const bool expected_in_3 =
        out.expected == "none" ? out.top1 : std::any_of(first3.begin(), first3.end(), [&](const ranked& x) {
            return x.id == out.expected;
        });
    out.top3 = expected_in_3 && all_acceptable;
    if (out.found.named && !ranking.empty()) {
        const ranked& named = ranking.front();
        const double dominance = s.settings.operations.dominance_share;
        if (!out.top1 && named.share >= dominance) {
            out.overconfident = "names " + named.id + " at " + percent_text(named.share) + " (dominance " +
                                percent_text(dominance) + "), expected " + out.expected;
        } else if (out.top1 && named.evidence == 0) {
            out.overconfident =
                "names " + named.id + " at " + percent_text(named.share) + " with no evidence";
        }
    }
    return out;
}

corpus_score tally(std::vector<scenario_score> scenarios) {
    corpus_score c;
    for (const auto& x : scenarios) {
        c.top1 += x.top1 ? 1 : 0;
        c.top3 += x.top3 ? 1 : 0;
        c.overconfident += x.overconfident.empty() ? 0 : 1;
        if (x.found.top == "none" || x.found.suspects.empty()) {
            continue;
        }
        const double share = x.found.suspects.front().share;
        if (!x.top1) {
            c.wrong_shares.push_back(share);
        } else if (x.expected != "none") {
            c.right_shares.push_back(share);
        }
    }
    std::sort(c.right_shares.begin(), c.right_shares.end());
    std::sort(c.wrong_shares.begin(), c.wrong_shares.end());
    c.scenarios = std::move(scenarios);
    return c;
}

double median(const std::vector<double>& ascending) {
    const std::size_t n = ascending.size();
    if (n == 0) {
        return 0;
    }
    return n % 2 == 1 ? ascending[n / 2] : (ascending[n / 2 - 1] + ascending[n / 2]) / 2;
}

void write_score(const corpus_score& c, std::ostream& out) {
    for (const auto& x : c.scenarios) {
        const char* mark = x.top1 ? (x.top3 ? "ok    " : "top3  ") : "MISS  ";
        out << mark << x.file << ": ";
        if (x.top1) {
            out << named_text(x.found);
        } else {
            out << "expected " << x.expected << ", got " << named_text(x.found);
        }
        out << '\n';
        if (!x.top1 || !x.top3) {
            out << "    ranking: " << shares_text(x.found.suspects) << '\n';
            if (x.acceptable) {
                std::string list;
                for (const auto& id : *x.acceptable) {
                    list += (list.empty() ? "" : ", ") + id;
                }
                out << "    acceptable top three: " << (list.empty() ? "(no suspect)" : list) << '\n';
            }
            if (!x.reason.empty()) {
                out << "    reason: " << x.reason << '\n';
            }
        }
    }
    const auto ratio = [&](std::size_t k) {
        return std::to_string(k) + "/" + std::to_string(c.scenarios.size()) +
               (c.scenarios.empty() ? "" : " (" + percent_text(double(k) / double(c.scenarios.size())) + ")");
    };
    const auto shares = [](const std::vector<double>& v) {
        if (v.empty()) {
            return std::string{"none"};
        }
        return std::to_string(v.size()) + ", median share " + percent_text(median(v)) + ", max " +
               percent_text(v.back());
    };
    out << "\ntop-1: " << ratio(c.top1) << '\n';
    out << "top-3: " << ratio(c.top3) << '\n';
    out << "correct top suspects: " << shares(c.right_shares) << '\n';
    out << "wrong top suspects: " << shares(c.wrong_shares) << '\n';
    out << "overconfident: " << c.overconfident << '\n';
    for (const auto& x : c.scenarios) {
        if (!x.overconfident.empty()) {
            out << "    " << x.file << ": " << x.overconfident << '\n';
        }
    }
}

}  // namespace runbookd::rules
