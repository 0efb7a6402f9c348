#include "sources/postgres/activity.hpp"

#include "core/rank.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace runbookd::sources::postgres {
namespace {

constexpr std::string_view ddl_words[] = {
    "alter", "create", "drop", "reindex", "truncate", "cluster", "vacuum full", "refresh materialized"};

bool excluded(const std::vector<std::string>& patterns, std::string_view name) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
        return workload_glob(p, name);
    });
}

bool is_excluded(const session& x, const activity_settings& s) {
    return excluded(s.exclude_applications, x.application) || excluded(s.exclude_users, x.user);
}

double seconds(std::chrono::milliseconds d) {
    return static_cast<double>(d.count()) / 1000.0;
}

/// Skips whitespace and SQL comments (-- to the end of the line, /* ... */).
std::string_view skip_blank(std::string_view q) {
    for (;;) {
        const auto start = q.find_first_not_of(" \t\r\n\f");
        q = start == std::string_view::npos ? std::string_view{} : q.substr(start);
        if (q.starts_with("--")) {
            const auto eol = q.find('\n');
            q = eol == std::string_view::npos ? std::string_view{} : q.substr(eol + 1);
        } else if (q.starts_with("/*")) {
            const auto end = q.find("*/");
            q = end == std::string_view::npos ? std::string_view{} : q.substr(end + 2);
        } else {
            return q;
        }
    }
}

/// Cuts `text` to at most `max` characters (code points), ending with "…" when cut.
std::string cut(std::string text, std::size_t max) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) {
            continue;  // a continuation byte
        }
        if (chars == max) {
            text.resize(i);
            text += "…";
            return text;
        }
        ++chars;
    }
    return text;
}

signal make(std::string_view kind, const std::string& subject, wall_time now) {
    signal sig;
    sig.set_kind(kind);
    sig.at = now;
    sig.subject = subject;
    sig.source = "postgres";
    return sig;
}

/// Replaces string literals with '?': '...' (a doubled quote stays inside), E'...' (and
/// its backslash escapes), and dollar-quoted $tag$...$tag$ bodies. An unterminated one runs
/// to the end.
std::string redact_literals(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '$') {
            // $tag$ where tag is empty or an identifier not starting with a digit ($1 is a parameter).
            std::size_t j = i + 1;
            while (j < text.size() &&
                   (std::isalnum(static_cast<unsigned char>(text[j])) != 0 || text[j] == '_')) {
                ++j;
            }
            const bool tag = j < text.size() && text[j] == '$' &&
                             (j == i + 1 || std::isdigit(static_cast<unsigned char>(text[i + 1])) == 0);
            if (tag) {
                const std::string_view delimiter = text.substr(i, j - i + 1);
                const auto end = text.find(delimiter, j + 1);
                out += "'?'";
                i = end == std::string_view::npos ? text.size() : end + delimiter.size() - 1;
                continue;
            }
            out += c;
            continue;
        }
        if (c != '\'') {
            out += c;
            continue;
        }
        const bool escapes =
            !out.empty() && (out.back() == 'E' || out.back() == 'e') &&
            (out.size() == 1 || std::isalnum(static_cast<unsigned char>(out[out.size() - 2])) == 0);
        std::size_t j = i + 1;
        while (j < text.size()) {
            if (escapes && text[j] == '\\') {
                j += 2;
            } else if (text[j] == '\'' && j + 1 < text.size() && text[j + 1] == '\'') {
                j += 2;
            } else if (text[j] == '\'') {
                break;
            } else {
                ++j;
            }
        }
        out += "'?'";
        i = std::min(j, text.size());
    }
    return out;
}

}  // namespace

std::vector<std::regex> compile_patterns(const std::vector<std::string>& patterns) {
    std::vector<std::regex> out;
    out.reserve(patterns.size());
    for (const auto& p : patterns) {
        out.emplace_back(p);
    }
    return out;
}

std::chrono::milliseconds youngest_age(const activity_settings& s) {
    return std::min({s.long_query, s.migration, s.idle_in_transaction, s.lock_wait});
}

bool looks_like_ddl(std::string_view query) {
    const std::string_view q = skip_blank(query);
    for (const std::string_view word : ddl_words) {
        if (q.size() < word.size()) {
            continue;
        }
        bool same = true;
        for (std::size_t i = 0; i < word.size() && same; ++i) {
            const char c = q[i];
            const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
            // "vacuum full": any run of blanks between the two words would do; one is usual.
            same = lower == word[i] || (word[i] == ' ' && (c == '\t' || c == '\n'));
        }
        const bool whole =
            q.size() == word.size() || !std::isalnum(static_cast<unsigned char>(q[word.size()]));
        if (same && whole) {
            return true;
        }
    }
    return false;
}

std::string shown_query(std::string_view query, const activity_settings& s) {
    // Bounded before any regex runs over it (a post shows query_max characters at most),
    // and cut between characters, never inside one.
    std::size_t keep = std::min(query.size(), s.query_max * 4 + 64);
    while (keep < query.size() && keep > 0 && (static_cast<unsigned char>(query[keep]) & 0xC0) == 0x80) {
        --keep;
    }
    std::string text{query.substr(0, keep)};
    if (s.redact_literals) {
        text = redact_literals(text);
    }
    for (const auto& pattern : s.redact_patterns) {
        text = std::regex_replace(text, pattern, "[redacted]");
    }
    // One line: a post's evidence line must not be broken by the query's layout.
    std::string flat;
    flat.reserve(text.size());
    bool blank = false;
    for (const char c : text) {
        const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
        if (space) {
            blank = !flat.empty();
            continue;
        }
        if (blank) {
            flat += ' ';
            blank = false;
        }
        flat += c;
    }
    return cut(std::move(flat), s.query_max);
}

std::vector<signal> activity_signals(const snapshot& snap, const activity_settings& s, wall_time now) {
    std::vector<signal> out;
    const auto by_pid = [&](long long pid) -> const session* {
        const auto it = std::find_if(snap.sessions.begin(), snap.sessions.end(), [&](const session& x) {
            return x.pid == pid;
        });
        return it == snap.sessions.end() ? nullptr : &*it;
    };
    for (const session& x : snap.sessions) {
        if (is_excluded(x, s)) {
            continue;
        }
        const std::string pid = std::to_string(x.pid);
        const bool idle_in_tx = x.state.starts_with("idle in transaction");
        const bool ddl = x.exclusive || looks_like_ddl(x.query);
        if (x.state == "active" && x.query_age) {
            const double age = *x.query_age;
            if (age >= seconds(ddl ? s.migration : s.long_query)) {
                signal sig = make("db.long_query", pid, now);
                sig.value = age;
                sig.set("pid", pid);
                sig.set("query", shown_query(x.query, s));
                sig.set("state", x.state);
                sig.set("user", x.user);
                sig.set("application", x.application);
                sig.set("is_ddl", ddl ? "true" : "false");
                const auto build = std::find_if(
                    snap.index_builds.begin(),
                    snap.index_builds.end(),
                    [&](const index_build& b) { return b.pid == x.pid; }
                );
                if (build != snap.index_builds.end()) {
                    std::string progress = build->command + ", " + build->phase;
                    if (build->blocks_total > 0) {
                        progress += ", " + std::to_string(build->blocks_done * 100 / build->blocks_total) +
                                    "% of blocks";
                    }
                    sig.set("progress", std::move(progress));
                }
                out.push_back(std::move(sig));
            }
        } else if (idle_in_tx && x.state_age && *x.state_age >= seconds(s.idle_in_transaction)) {
            signal sig = make("db.idle_in_transaction", pid, now);
            sig.value = *x.state_age;
            sig.set("pid", pid);
            sig.set("query", shown_query(x.query, s));
            sig.set("user", x.user);
            sig.set("application", x.application);
            out.push_back(std::move(sig));
        }
        const std::optional<double> waited = x.waited ? x.waited : x.state_age;
        if (x.wait_event_type == "Lock" && !x.blocked_by.empty() && waited &&
            *waited >= seconds(s.lock_wait)) {
            // Blame the root of the chain: a blocker that does not itself wait (its cancel
            // frees the queue), following blockers that wait until one is found.
            const auto waits = [&](long long p) {
                const session* b = by_pid(p);
                return b != nullptr && b->wait_event_type == "Lock" && !b->blocked_by.empty();
            };
            const auto pick = [&](const std::vector<long long>& blockers) {
                const auto root =
                    std::find_if(blockers.begin(), blockers.end(), [&](long long p) { return !waits(p); });
                return root != blockers.end() ? *root : blockers.front();
            };
            long long blamed = pick(x.blocked_by);
            for (std::vector<long long> seen{x.pid};
                 waits(blamed) && std::find(seen.begin(), seen.end(), blamed) == seen.end();) {
                seen.push_back(blamed);
                blamed = pick(by_pid(blamed)->blocked_by);
            }
            const session* blocker = by_pid(blamed);
            signal sig = make("db.lock_wait", pid, now);
            sig.value = *waited;
            sig.set("pid", pid);
            sig.set("blocked_by", std::to_string(blamed));
            sig.set("query", shown_query(x.query, s));
            sig.set(
                "blocker_query",
                blocker == nullptr ? std::string{"(not visible to the monitor)"}
                                   : shown_query(blocker->query, s)
            );
            out.push_back(std::move(sig));
        }
    }
    if (snap.max_connections > 0) {
        signal sig = make("db.connections", s.instance, now);
        sig.value = static_cast<double>(snap.client_connections);
        sig.set("instance", s.instance);
        sig.set("max", std::to_string(snap.max_connections - snap.reserved_connections));
        out.push_back(std::move(sig));
    }
    return out;
}

signal unreachable_signal(const activity_settings& s, std::string error, wall_time now) {
    signal sig = make("db.unreachable", s.instance, now);
    sig.set("instance", s.instance);
    sig.set("error", std::move(error));
    return sig;
}

std::vector<long long> parse_pid_array(std::string_view text) {
    std::vector<long long> out;
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] < '0' || text[i] > '9') {
            ++i;
            continue;
        }
        long long v = 0;
        const auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
        i = static_cast<std::size_t>(ptr - text.data());
        // 0 is a prepared transaction: no backend to cancel, still a blocker worth naming.
        if (ec == std::errc{} && std::find(out.begin(), out.end(), v) == out.end()) {
            out.push_back(v);
        }
    }
    return out;
}

}  // namespace runbookd::sources::postgres
