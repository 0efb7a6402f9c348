#include "sources/postgres/activity.hpp"

#include "core/rank.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace runbookd::sources::postgres {
namespace {

bool matches_any(const std::vector<std::string>& patterns, std::string_view name) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
        return workload_glob(p, name);
    });
}

bool is_excluded(const session& x, const activity_settings& s) {
    return matches_any(s.exclude_applications, x.application) || matches_any(s.exclude_users, x.user);
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

/// The first `n` words of a statement after comments, lower-cased: "(", ")" and "," are words
/// of their own, a quoted name or string is `"` or `'`. Stops at the end of the statement.
std::vector<std::string> leading_words(std::string_view q, std::size_t n) {
    std::vector<std::string> out;
    const auto word_char = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
    };
    while (out.size() < n) {
        q = skip_blank(q);
        if (q.empty() || q.front() == ';') {
            break;
        }
        const char c = q.front();
        if (word_char(c)) {
            std::size_t end = 0;
            std::string w;
            for (; end < q.size() && word_char(q[end]); ++end) {
                w += static_cast<char>(std::tolower(static_cast<unsigned char>(q[end])));
            }
            out.push_back(std::move(w));
            q.remove_prefix(end);
        } else if (c == '"' || c == '\'') {
            // A doubled quote stays inside; an unterminated one runs to the end.
            std::size_t end = 1;
            while (end < q.size() && !(q[end] == c && (end + 1 == q.size() || q[end + 1] != c))) {
                end += q[end] == c ? 2 : 1;
            }
            out.emplace_back(1, c);
            q.remove_prefix(std::min(end + 1, q.size()));
        } else {
            out.emplace_back(1, c);
            q.remove_prefix(1);
        }
    }
    return out;
}

/// Whether the parenthesised options at `words[i]` ("(" ... ")") turn `option` on: named
/// alone, or followed by true, on or 1. `i` ends past the ")".
bool option_on(const std::vector<std::string>& words, std::size_t& i, std::string_view option) {
    bool on = false;
    for (++i; i < words.size() && words[i] != ")"; ++i) {
        if (words[i] == option) {
            const std::string next = i + 1 < words.size() ? words[i + 1] : ")";
            on = next == "," || next == ")" || next == "true" || next == "on" || next == "1";
        }
    }
    ++i;
    return on;
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

statement_kind classify_statement(std::string_view query) {
    const std::vector<std::string> w = leading_words(query, 24);
    const auto at = [&](std::size_t i) -> std::string_view {
        return i < w.size() ? std::string_view{w[i]} : std::string_view{};
    };
    const auto online_if = [](bool concurrently) {
        return concurrently ? statement_kind::online : statement_kind::blocking;
    };
    const std::string_view first = at(0);
    if (first == "analyze" || first == "analyse") {
        return statement_kind::online;  // a ShareUpdateExclusiveLock: reads and writes go on
    }
    if (first == "vacuum") {
        // VACUUM FULL rewrites the table under an AccessExclusiveLock; plain VACUUM does not.
        std::size_t i = 1;
        return online_if(!(at(1) == "full" || (at(1) == "(" && option_on(w, i, "full"))));
    }
    if (first == "create") {
        const std::size_t i = at(1) == "unique" ? 2 : 1;
        return at(i) == "index" ? online_if(at(i + 1) == "concurrently") : statement_kind::blocking;
    }
    if (first == "drop") {
        return online_if(at(1) == "index" && at(2) == "concurrently");
    }
    if (first == "reindex") {
        // REINDEX [(CONCURRENTLY, ...)] {INDEX | TABLE | SCHEMA | DATABASE | SYSTEM} [CONCURRENTLY] name
        std::size_t i = 1;
        const bool in_options = at(1) == "(" && option_on(w, i, "concurrently");
        return online_if(in_options || at(i + 1) == "concurrently");
    }
    if (first == "refresh") {
        return at(1) != "materialized" ? statement_kind::other : online_if(at(3) == "concurrently");
    }
    if (first == "alter" || first == "truncate" || first == "cluster") {
        return statement_kind::blocking;
    }
    return statement_kind::other;
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

namespace {

/// A session waiting on a lock past the threshold, and the root of its chain.
struct chain_wait {
    const session* waiter;
    double waited;
    long long root;
};

const session* find_pid(const snapshot& snap, long long pid) {
    const auto it = std::find_if(snap.sessions.begin(), snap.sessions.end(), [&](const session& x) {
        return x.pid == pid;
    });
    return it == snap.sessions.end() ? nullptr : &*it;
}

/// The root of `x`'s chain: a blocker that does not itself wait (its cancel frees the
/// queue), following blockers that wait until one is found.
long long chain_root(const snapshot& snap, const session& x) {
    const auto waits = [&](long long p) {
        const session* b = find_pid(snap, p);
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
        blamed = pick(find_pid(snap, blamed)->blocked_by);
    }
    return blamed;
}

std::vector<chain_wait> chain_waits(const snapshot& snap, const activity_settings& s) {
    std::vector<chain_wait> out;
    for (const session& x : snap.sessions) {
        const std::optional<double> waited = x.waited ? x.waited : x.state_age;
        if (!is_excluded(x, s) && x.wait_event_type == "Lock" && !x.blocked_by.empty() && waited &&
            *waited >= seconds(s.lock_wait)) {
            out.push_back(chain_wait{&x, *waited, chain_root(snap, x)});
        }
    }
    return out;
}

/// The services a session belongs to, in id order: those naming its application_name, else
/// those naming its user (an application is the finer mark: one user often serves many).
std::vector<std::string> own_services(const session& x, const activity_settings& s) {
    std::vector<std::string> by_application;
    std::vector<std::string> by_user;
    for (const auto& svc : s.services) {
        if (matches_any(svc.applications, x.application)) {
            by_application.push_back(svc.id);
        } else if (matches_any(svc.users, x.user)) {
            by_user.push_back(svc.id);
        }
    }
    return by_application.empty() ? by_user : by_application;
}

/// Adds `more` to `ids`; false when `more` is empty (a session of no known service).
bool add_services(std::vector<std::string>& ids, std::vector<std::string> more) {
    if (more.empty()) {
        return false;
    }
    ids.insert(ids.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    return true;
}

std::string joined(std::vector<std::string> ids) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::string out;
    for (const auto& id : ids) {
        out += out.empty() ? id : "," + id;
    }
    return out;
}

/// `services` of a long query or idle transaction: its own, and, when it is a chain root,
/// those of the sessions waiting on it; "" when any of them is unmapped.
std::string session_services(
    const session& x, const std::vector<chain_wait>& waits, const activity_settings& s
) {
    std::vector<std::string> ids;
    if (!add_services(ids, own_services(x, s))) {
        return {};
    }
    for (const auto& w : waits) {
        if (w.root == x.pid && !add_services(ids, own_services(*w.waiter, s))) {
            return {};
        }
    }
    return joined(std::move(ids));
}

/// `services` of a lock wait: the waiter's and its chain root's; "" when the waiter is
/// unmapped (who suffers is unknown), the waiter's alone when the root is.
std::string wait_services(const chain_wait& w, const session* root, const activity_settings& s) {
    std::vector<std::string> ids;
    if (!add_services(ids, own_services(*w.waiter, s))) {
        return {};
    }
    if (root != nullptr) {
        add_services(ids, own_services(*root, s));
    }
    return joined(std::move(ids));
}

/// A db.long_query or db.idle_in_transaction of `x`: its pid the subject, with its query,
/// user, application and services.
signal session_signal(
    std::string_view kind,
    const session& x,
    double value,
    std::string services,
    const activity_settings& s,
    wall_time now
) {
    const std::string pid = std::to_string(x.pid);
    signal sig = make(kind, pid, now);
    sig.value = value;
    sig.set("pid", pid);
    sig.set("query", shown_query(x.query, s));
    sig.set("user", x.user);
    sig.set("application", x.application);
    sig.set("services", std::move(services));
    return sig;
}

signal long_query_signal(
    const session& x,
    const snapshot& snap,
    const activity_settings& s,
    statement_kind kind,
    bool migration,
    std::string services,
    wall_time now
) {
    signal sig = session_signal("db.long_query", x, *x.query_age, std::move(services), s, now);
    sig.set("state", x.state);
    sig.set("is_ddl", migration ? "true" : "false");
    sig.set(
        "ddl",
        kind == statement_kind::blocking ? "blocking"
        : kind == statement_kind::online ? "online"
                                         : ""
    );
    const auto build =
        std::find_if(snap.index_builds.begin(), snap.index_builds.end(), [&](const index_build& b) {
            return b.pid == x.pid;
        });
    if (build != snap.index_builds.end()) {
        std::string progress = build->command + ", " + build->phase;
        if (build->blocks_total > 0) {
            progress += ", " + std::to_string(build->blocks_done * 100 / build->blocks_total) + "% of blocks";
        }
        sig.set("progress", std::move(progress));
    }
    return sig;
}

}  // namespace

std::vector<signal> activity_signals(const snapshot& snap, const activity_settings& s, wall_time now) {
    std::vector<signal> out;
    const std::vector<chain_wait> waits = chain_waits(snap, s);
    const auto is_root = [&](long long pid) {
        return std::any_of(waits.begin(), waits.end(), [&](const chain_wait& w) { return w.root == pid; });
    };
    for (const session& x : snap.sessions) {
        if (is_excluded(x, s)) {
            continue;
        }
        if (x.state == "active" && x.query_age) {
            // Online maintenance is a migration only when someone waits on it; otherwise it
            // is a long query like any other (it may still load the database).
            const statement_kind kind = classify_statement(x.query);
            const bool migration = kind == statement_kind::blocking || x.exclusive ||
                                   (kind == statement_kind::online && is_root(x.pid));
            if (*x.query_age >= seconds(migration ? s.migration : s.long_query)) {
                out.push_back(
                    long_query_signal(x, snap, s, kind, migration, session_services(x, waits, s), now)
                );
            }
        } else if (x.state.starts_with("idle in transaction") && x.state_age && *x.state_age >= seconds(s.idle_in_transaction)) {
            out.push_back(session_signal(
                "db.idle_in_transaction", x, *x.state_age, session_services(x, waits, s), s, now
            ));
        }
    }
    for (const chain_wait& w : waits) {
        const session* blocker = find_pid(snap, w.root);
        const std::string pid = std::to_string(w.waiter->pid);
        signal sig = make("db.lock_wait", pid, now);
        sig.value = w.waited;
        sig.set("pid", pid);
        sig.set("blocked_by", std::to_string(w.root));
        sig.set("query", shown_query(w.waiter->query, s));
        sig.set(
            "blocker_query",
            blocker == nullptr ? std::string{"(not visible to the monitor)"} : shown_query(blocker->query, s)
        );
        sig.set("services", wait_services(w, blocker, s));
        out.push_back(std::move(sig));
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
