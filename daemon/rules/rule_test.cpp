#include "rules/rule_test.hpp"

#include "core/rank.hpp"
#include "rules/inputs.hpp"
#include "rules/rules.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>

namespace runbookd::rules {
namespace {

using yaml::entry;

constexpr std::array<std::string_view, 3> file_keys{"rule_files", "services", "tests"};
constexpr std::array<std::string_view, 7> test_keys{
    "name", "start", "service", "at", "sources", "signals", "expect"};
constexpr std::array<std::string_view, 11> expect_keys{
    "top",
    "order",
    "min_share",
    "max_share",
    "tied",
    "clear",
    "not_checkable",
    "actions_include",
    "evidence_include",
    "warnings",
    "warnings_include"};
/// A Thursday, 11:00 in New York: outside the maintenance window unless a test moves it.
constexpr std::string_view default_start = "2026-03-05T16:00:00Z";

struct expectation {
    std::optional<std::string> top;  ///< "none" for no suspect
    std::vector<std::string> order;
    std::map<std::string, double> min_share;  ///< "unknown": the unknown mass
    std::map<std::string, double> max_share;  ///< a rule that is no suspect passes
    std::vector<std::string> tied;            ///< suspects shown as one tie
    std::vector<std::string> clear;
    std::vector<std::string> not_checkable;
    std::vector<std::string> actions_include;
    std::vector<std::string> evidence_include;
    std::optional<std::vector<std::string>> warnings;  ///< exactly these warnings hold, in order
    std::vector<std::string> warnings_include;
};

struct test_case {
    std::string name;
    int line = 0;
    wall_time start;
    millis at{std::chrono::minutes{10}};
    std::string service;
    source_map sources;
    std::vector<signal> signals;
    expectation expect;
};

std::string fixed(double v) {
    std::ostringstream o;
    o.setf(std::ios::fixed);
    o.precision(2);
    o << v;
    return o.str();
}

/// The ranking as the failure diff shows it.
std::string describe(const ranking& r) {
    std::string out = "    got:\n";
    int i = 0;
    for (const auto& s : r.suspects) {
        out += "      " + std::to_string(++i) + ". " + s.id + " " + percent_text(s.share) +
               (s.tied ? " (tied)" : "") + "  (prior " + fixed(s.prior) + ", strength " + fixed(s.strength) +
               ", recency " + fixed(s.recency) + ", specificity " + std::to_string(s.specificity) + ")\n";
        for (const auto& e : s.evidence) {
            out += "           evidence: " + e + "\n";
        }
        for (const auto& a : s.actions) {
            out += "           action:   " + a + "\n";
        }
    }
    if (r.suspects.empty()) {
        out += "      (no suspect)\n";
    } else {
        out += "      unknown " + percent_text(r.unknown) + "\n";
    }
    for (const auto& c : r.clear) {
        out += "      clear: " + c.id + " (" + c.detail + ")\n";
    }
    for (const auto& c : r.not_checkable) {
        out += "      not checkable: " + c.id + " (" + c.detail + ")\n";
    }
    for (const auto& w : r.warnings) {
        out += "      warning: " + w.id + " (" + w.text + ")\n";
    }
    return out;
}

bool has_id(const std::vector<checked>& v, const std::string& id) {
    return std::any_of(v.begin(), v.end(), [&](const checked& c) { return c.id == id; });
}

const suspect* find_suspect(const ranking& r, const std::string& id) {
    const auto it =
        std::find_if(r.suspects.begin(), r.suspects.end(), [&](const suspect& s) { return s.id == id; });
    return it == r.suspects.end() ? nullptr : &*it;
}

/// Every way `r` misses `e`, one line each.
std::vector<std::string> check(const expectation& e, const ranking& r) {
    std::vector<std::string> misses;
    const suspect* top = r.top();
    if (e.top) {
        const std::string got = top == nullptr ? "none" : top->id;
        if (got != *e.top) {
            misses.push_back("top: expected " + *e.top + ", got " + got);
        }
    }
    for (std::size_t i = 0; i < e.order.size(); ++i) {
        const std::string got = i < r.suspects.size() ? r.suspects[i].id : "(nothing)";
        if (got != e.order[i]) {
            misses.push_back("order[" + std::to_string(i) + "]: expected " + e.order[i] + ", got " + got);
        }
    }
    for (const auto& [id, share] : e.min_share) {
        const suspect* s = find_suspect(r, id);
        if (id == "unknown") {
            if (r.unknown + 1e-9 < share) {
                misses.push_back(
                    "min_share unknown: expected at least " + percent_text(share) + ", got " +
                    percent_text(r.unknown)
                );
            }
        } else if (s == nullptr) {
            misses.push_back(
                "min_share " + id + ": expected at least " + percent_text(share) + ", but it is not a suspect"
            );
        } else if (s->share + 1e-9 < share) {
            misses.push_back(
                "min_share " + id + ": expected at least " + percent_text(share) + ", got " +
                percent_text(s->share)
            );
        }
    }
    for (const auto& [id, share] : e.max_share) {
        const suspect* s = find_suspect(r, id);
        const double got = id == "unknown" ? r.unknown : s == nullptr ? 0 : s->share;
        if (got > share + 1e-9) {
            misses.push_back(
                "max_share " + id + ": expected at most " + percent_text(share) + ", got " + percent_text(got)
            );
        }
    }
    if (!e.tied.empty()) {
        // Every named suspect in one run of the ranking whose members after the first are tied.
        std::vector<std::size_t> at;
        for (const auto& id : e.tied) {
            const suspect* s = find_suspect(r, id);
            if (s == nullptr) {
                misses.push_back("tied: " + id + " is not a suspect");
            } else {
                at.push_back(static_cast<std::size_t>(s - r.suspects.data()));
            }
        }
        if (at.size() == e.tied.size()) {
            std::sort(at.begin(), at.end());
            for (std::size_t i = at.front() + 1; i <= at.back(); ++i) {
                if (!r.suspects[i].tied) {
                    misses.push_back(
                        "tied: " + r.suspects[i].id + " is not tied with " + r.suspects[i - 1].id
                    );
                }
            }
        }
    }
    for (const auto& id : e.clear) {
        if (!has_id(r.clear, id)) {
            misses.push_back("clear: expected " + id + " to be checked and clear");
        }
    }
    for (const auto& id : e.not_checkable) {
        if (!has_id(r.not_checkable, id)) {
            misses.push_back("not_checkable: expected " + id + " to be not checkable");
        }
    }
    const auto any_has = [&](const std::string& text, bool actions) {
        return std::any_of(r.suspects.begin(), r.suspects.end(), [&](const suspect& s) {
            const auto& lines = actions ? s.actions : s.evidence;
            return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
                return l.find(text) != std::string::npos;
            });
        });
    };
    for (const auto& a : e.actions_include) {
        if (!any_has(a, true)) {
            misses.push_back("actions_include: no action contains \"" + a + "\"");
        }
    }
    for (const auto& a : e.evidence_include) {
        if (!any_has(a, false)) {
            misses.push_back("evidence_include: no evidence line contains \"" + a + "\"");
        }
    }
    if (e.warnings) {
        // One id per warning that holds, however many lines it has.
        std::vector<std::string> got;
        for (const auto& w : r.warnings) {
            if (got.empty() || got.back() != w.id) {
                got.push_back(w.id);
            }
        }
        if (got != *e.warnings) {
            const auto list = [](const std::vector<std::string>& ids) {
                std::string out;
                for (const auto& id : ids) {
                    out += (out.empty() ? "" : ", ") + id;
                }
                return "[" + out + "]";
            };
            misses.push_back("warnings: expected " + list(*e.warnings) + ", got " + list(got));
        }
    }
    for (const auto& text : e.warnings_include) {
        if (std::none_of(r.warnings.begin(), r.warnings.end(), [&](const warning_line& w) {
                return w.text.find(text) != std::string::npos;
            })) {
            misses.push_back("warnings_include: no warning line contains \"" + text + "\"");
        }
    }
    return misses;
}

class test_loader {
public:
    explicit test_loader(const std::string& path) : w_(path) {}

    /// Returns the tests, or nothing with problems recorded.
    bool load(std::string_view text) {
        auto doc = w_.document(text);
        if (!doc) {
            return false;
        }
        const auto top = w_.map(*doc, "", file_keys);
        if (!top) {
            return false;
        }
        if (auto files = inputs::read_rule_files(w_, yaml::find(*top, "rule_files"))) {
            files_ = std::move(*files);
        }
        if (const entry* s = yaml::find(*top, "services")) {
            if (auto svcs = inputs::read_services(w_, *s)) {
                services_ = std::move(*svcs);
            }
        }
        const entry* list = yaml::find(*top, "tests");
        if (list == nullptr) {
            w_.report(doc->Mark(), "tests", "required: a list of tests");
        } else if (auto items = w_.list(*list)) {
            for (const auto& item : *items) {
                read_test(item);
            }
        }
        return w_.problem_count() == 0;
    }

    std::vector<problem> problems() { return w_.take(); }
    const std::vector<std::string>& rule_files() const { return files_; }
    const std::vector<test_case>& tests() const { return tests_; }
    const std::map<std::string, service_info, std::less<>>& services() const { return services_; }

private:
    void read_test(const entry& item) {
        const auto keys = w_.map(item.value, item.path, test_keys);
        if (!keys) {
            return;
        }
        test_case t;
        t.line = item.value.Mark().line + 1;
        t.start = *parse_rfc3339(default_start);
        if (const entry* n = yaml::find(*keys, "name")) {
            t.name = w_.string(*n).value_or("");
        } else {
            w_.report(item.value.Mark(), item.path + ".name", "required: what the test shows");
        }
        if (const entry* s = yaml::find(*keys, "start")) {
            t.start = w_.instant(*s).value_or(t.start);
        }
        if (const entry* s = yaml::find(*keys, "service")) {
            t.service = w_.string(*s).value_or("");
            if (!services_.contains(t.service)) {
                w_.report(*s, "service '" + t.service + "' is not under services:");
            }
        }
        if (const entry* a = yaml::find(*keys, "at")) {
            t.at = w_.duration(*a, true).value_or(t.at);
        }
        if (auto src = inputs::read_sources(w_, yaml::find(*keys, "sources"), t.start)) {
            t.sources = std::move(*src);
        }
        if (const entry* s = yaml::find(*keys, "signals")) {
            if (auto items = w_.list(*s)) {
                for (const auto& sig : *items) {
                    if (auto parsed = inputs::read_signal(w_, sig, t.start)) {
                        t.signals.push_back(std::move(*parsed));
                    }
                }
            }
        }
        if (const entry* x = yaml::find(*keys, "expect")) {
            read_expect(*x, t.expect);
        } else {
            w_.report(item.value.Mark(), item.path + ".expect", "required: what the ranking must show");
        }
        tests_.push_back(std::move(t));
    }

    void read_expect(const entry& x, expectation& e) {
        const auto keys = w_.map(x.value, x.path, expect_keys);
        if (!keys) {
            return;
        }
        if (keys->empty()) {
            w_.report(
                x,
                "expect needs at least one of top, order, min_share, max_share, tied, clear, not_checkable, "
                "actions_include, evidence_include, warnings, warnings_include"
            );
        }
        for (const auto& k : *keys) {
            if (k.name == "top") {
                e.top = w_.string(k);
            } else if (k.name == "order") {
                e.order = w_.strings(k);
            } else if (k.name == "clear") {
                e.clear = w_.strings(k);
            } else if (k.name == "not_checkable") {
                e.not_checkable = w_.strings(k);
            } else if (k.name == "actions_include") {
                e.actions_include = w_.strings(k);
            } else if (k.name == "evidence_include") {
                e.evidence_include = w_.strings(k);
            } else if (k.name == "warnings") {
                e.warnings = w_.strings(k);
            } else if (k.name == "warnings_include") {
                e.warnings_include = w_.strings(k);
            } else if (k.name == "tied") {
                e.tied = w_.strings(k);
                if (e.tied.size() == 1) {
                    w_.report(k, "a tie needs at least two suspects");
                }
            } else if (auto m = w_.map(k.value, k.path, {})) {
                auto& shares = k.name == "min_share" ? e.min_share : e.max_share;
                for (const auto& s : *m) {
                    if (auto v = w_.number(s, 0, 1)) {
                        shares[s.name] = *v;
                    }
                }
            }
        }
    }

    yaml::walker w_;
    std::vector<std::string> files_;
    std::map<std::string, service_info, std::less<>> services_;
    std::vector<test_case> tests_;
};

/// Every rule and warning id the expectation names must exist, each where it can appear,
/// or the test could pass vacuously.
std::vector<std::string> unknown_ids(const expectation& e, const rule_set& rules) {
    std::vector<std::string> named = e.order;
    named.insert(named.end(), e.tied.begin(), e.tied.end());
    named.insert(named.end(), e.clear.begin(), e.clear.end());
    named.insert(named.end(), e.not_checkable.begin(), e.not_checkable.end());
    for (const auto* shares : {&e.min_share, &e.max_share}) {
        for (const auto& [id, share] : *shares) {
            if (id != "unknown") {
                named.push_back(id);
            }
        }
    }
    if (e.top && *e.top != "none") {
        named.push_back(*e.top);
    }
    const auto is_rule = [&](const std::string& id) {
        return std::any_of(rules.rules.begin(), rules.rules.end(), [&](const rule& r) { return r.id == id; });
    };
    const auto is_warning = [&](const std::string& id) {
        return std::any_of(rules.warnings.begin(), rules.warnings.end(), [&](const warning& w) {
            return w.id == id;
        });
    };
    std::vector<std::string> out;
    for (const auto& id : named) {
        if (is_warning(id)) {
            out.push_back("expectation names warning '" + id + "' as a cause; a warning never is one");
        } else if (!is_rule(id)) {
            out.push_back("expectation names rule '" + id + "', which the rule files do not define");
        }
    }
    for (const auto& id : e.warnings.value_or(std::vector<std::string>{})) {
        if (!is_warning(id)) {
            out.push_back("expectation names warning '" + id + "', which the rule files do not define");
        }
    }
    return out;
}

}  // namespace

test_summary run_rule_tests(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
    test_summary sum;
    for (const auto& path : files) {
        std::ifstream file(path, std::ios::binary);
        if (!file) {
            sum.problems.push_back(problem{path, 0, 0, {}, "cannot read the test file"});
            sum.failed += 1;
            continue;
        }
        std::stringstream text;
        text << file.rdbuf();
        test_loader loader{path};
        const bool ok = loader.load(text.str());
        auto problems = loader.problems();
        if (!ok) {
            sum.problems.insert(sum.problems.end(), problems.begin(), problems.end());
            sum.failed += 1;
            continue;
        }
        const auto rules = load(loader.rule_files());
        if (!rules.ok()) {
            sum.problems.insert(sum.problems.end(), rules.problems.begin(), rules.problems.end());
            sum.failed += 1;
            continue;
        }
        for (const auto& t : loader.tests()) {
            signal_log log{signal_log_settings{std::chrono::hours{24 * 7}, 10'000'000}};
            const wall_time now = t.start + t.at;
            for (const auto& s : t.signals) {
                log.add(s, now);
            }
            rank_input in;
            in.start = t.start;
            in.now = now;
            if (const auto it = loader.services().find(t.service); it != loader.services().end()) {
                in.service = service_scope{t.service, it->second.name, it->second.workloads};
            }
            const ranking r = rank(*rules.value, log, t.sources, in);
            auto misses = unknown_ids(t.expect, *rules.value);
            const auto more = check(t.expect, r);
            misses.insert(misses.end(), more.begin(), more.end());
            if (misses.empty()) {
                sum.passed += 1;
                out << "ok    " << path << ":" << t.line << ": " << t.name << "\n";
                continue;
            }
            sum.failed += 1;
            out << "FAIL  " << path << ":" << t.line << ": " << t.name << "\n";
            for (const auto& m : misses) {
                out << "    " << m << "\n";
            }
            out << describe(r);
        }
    }
    for (const auto& p : sum.problems) {
        err << p.to_string() << "\n";
    }
    out << sum.passed << " passed, " << sum.failed << " failed\n";
    return sum;
}

}  // namespace runbookd::rules
