#include "config/config.hpp"

#include "core/selector.hpp"
#include "core/suggest.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "crypto/sign.hpp"
#include "sources/gcp/parse.hpp"
#include "sources/postgres/dsn.hpp"
#include "yaml/walker.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <regex>
#include <span>
#include <system_error>
#include <utility>

namespace runbookd::config {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view webhook_url_hint = "expected https://discord.com/api/webhooks/<id>/<token>";

/// Webhook names are 1-80 characters; a longer `username` override is rejected with a 400:
/// https://discord.com/developers/docs/resources/webhook#create-webhook
constexpr std::size_t discord_username_max = 80;

// Keys, per map, in the order the reference (docs/configuration.md) lists them.
constexpr std::array<std::string_view, 16> root_keys{
    "server",
    "log",
    "pagerduty",
    "status",
    "notify",
    "discord",
    "console",
    "rules",
    "operations",
    "signals",
    "kubernetes",
    "google",
    "cloudsql",
    "gcp_status",
    "postgres",
    "services"};
constexpr std::array<std::string_view, 6> server_keys{
    "listen", "max_body_bytes", "header_timeout", "body_timeout", "idle_timeout", "max_connections"};
constexpr std::array<std::string_view, 1> log_keys{"level"};
constexpr std::array<std::string_view, 3> pagerduty_keys{
    "webhook_secrets", "webhook_secrets_file", "dedupe_capacity"};
constexpr std::array<std::string_view, 2> status_keys{"reminder_interval", "default_impact"};
constexpr std::array<std::string_view, 3> notify_keys{"kind", "drain_timeout", "coalesce_window"};
constexpr std::array<std::string_view, 8> discord_keys{
    "base_url",
    "ca_file",
    "username",
    "request_timeout",
    "status_webhook_url",
    "status_webhook_url_file",
    "operations_webhook_url",
    "operations_webhook_url_file"};
constexpr std::array<std::string_view, 1> console_keys{"path"};
constexpr std::array<std::string_view, 1> rules_keys{"files"};
constexpr std::array<std::string_view, 3> operations_keys{"edit_interval", "dominance_share", "max_suspects"};
constexpr std::array<std::string_view, 2> signals_keys{"retention", "max_signals"};
constexpr std::array<std::string_view, 9> kubernetes_keys{
    "enabled",
    "kubeconfig",
    "context",
    "namespaces",
    "nodes",
    "version_interval",
    "watch_timeout",
    "request_timeout",
    "service_account_dir"};
constexpr std::array<std::string_view, 3> kubernetes_modes{"auto", "true", "false"};
constexpr std::array<std::string_view, 10> google_keys{
    "credentials",
    "key_file",
    "project",
    "metadata_url",
    "token_url",
    "monitoring_url",
    "sqladmin_url",
    "ca_file",
    "request_timeout",
    "scopes"};
constexpr std::array<std::string_view, 3> google_credential_kinds{"auto", "metadata", "key_file"};
constexpr std::array<std::string_view, 4> cloudsql_keys{
    "instance", "monitoring_interval", "instance_interval", "lookback"};
constexpr std::array<std::string_view, 5> gcp_status_keys{
    "enabled", "url", "interval", "products", "locations"};
constexpr std::array<std::string_view, 16> postgres_keys{
    "dsn",
    "dsn_file",
    "instance",
    "interval",
    "connect_timeout",
    "statement_timeout",
    "long_query_threshold",
    "migration_threshold",
    "idle_in_transaction_threshold",
    "lock_wait_threshold",
    "query_max",
    "redact_literals",
    "redact_patterns",
    "exclude_applications",
    "exclude_users",
    "password_file"};
constexpr std::array<std::string_view, 2> booleans{"true", "false"};
constexpr std::array<std::string_view, 3> service_keys{"name", "impact", "kubernetes"};

constexpr std::array<std::string_view, 4> log_levels{"debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 2> notifier_kinds{"discord", "console"};

// ---------------------------------------------------------------------------------------------
// Small pure helpers.

std::string join(std::string_view path, std::string_view key) {
    if (path.empty()) {
        return std::string{key};
    }
    std::string out{path};
    out += '.';
    out += key;
    return out;
}

std::string lower(std::string_view s) {
    std::string out{s};
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool all_digits(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

std::string_view trim(std::string_view s) noexcept {
    constexpr std::string_view ws = " \t\r\n\f\v";
    const auto first = s.find_first_not_of(ws);
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(ws);
    return s.substr(first, last - first + 1);
}

std::string list_words(std::span<const std::string_view> words) {
    std::string out;
    for (const auto w : words) {
        if (!out.empty()) {
            out += ", ";
        }
        out += w;
    }
    return out;
}

using yaml::is_null;
using yaml::kind_of;

// Reads a whole file. The reason names the OS error, never the contents.
struct file_text {
    std::string text;
    std::string error;  // empty on success, else e.g. "No such file or directory"
};

file_text read_whole_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        return {{}, "it is a directory"};
    }
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f{std::fopen(path.c_str(), "rb"), &std::fclose};
    if (!f) {
        return {{}, std::generic_category().message(errno)};
    }
    std::string out;
    std::array<char, 4096> buf{};
    while (true) {
        const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
        out.append(buf.data(), n);
        if (n < buf.size()) {
            break;
        }
    }
    if (std::ferror(f.get()) != 0) {
        return {{}, std::generic_category().message(errno)};
    }
    return {std::move(out), {}};
}

// ---------------------------------------------------------------------------------------------
// Pure validators for the structured strings. Each returns an empty string when the text is
// valid, else a reason that does not repeat the text (callers decide whether it may be shown).

struct webhook_parts {
    std::string id;
    std::string token;
    std::string reason;  // empty when valid; never contains the URL or its token
};

webhook_parts parse_webhook_url(std::string_view url) {
    constexpr std::string_view scheme = "https://";
    if (url.size() < scheme.size() || lower(url.substr(0, scheme.size())) != scheme) {
        return {{}, {}, "the scheme must be https"};
    }
    url.remove_prefix(scheme.size());
    const auto slash = url.find('/');
    const std::string host = lower(url.substr(0, slash));
    if (host != "discord.com" && host != "discordapp.com" && host != "canary.discord.com" &&
        host != "ptb.discord.com") {
        return {
            {}, {}, "the host must be discord.com, discordapp.com, canary.discord.com or ptb.discord.com"};
    }
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
    constexpr std::string_view bad_path = "the path must be /api/webhooks/<id>/<token>";
    if (!path.starts_with("/api/")) {
        return {{}, {}, std::string{bad_path}};
    }
    path.remove_prefix(5);
    // An optional API version segment: /api/v10/webhooks/...
    if (path.starts_with("v")) {
        const auto end = path.find('/');
        if (end == std::string_view::npos || !all_digits(path.substr(1, end - 1))) {
            return {{}, {}, std::string{bad_path}};
        }
        path.remove_prefix(end + 1);
    }
    if (!path.starts_with("webhooks/")) {
        return {{}, {}, std::string{bad_path}};
    }
    path.remove_prefix(9);
    const auto sep = path.find('/');
    if (sep == std::string_view::npos) {
        return {{}, {}, std::string{bad_path}};
    }
    const auto id = path.substr(0, sep);
    const auto token = path.substr(sep + 1);
    if (!all_digits(id)) {
        return {{}, {}, "the webhook id must be all digits"};
    }
    const auto token_char = [](char c) { return is_alpha(c) || is_digit(c) || c == '_' || c == '-'; };
    if (token.empty() || !std::all_of(token.begin(), token.end(), token_char)) {
        return {{}, {}, "the webhook token must be letters, digits, '_' or '-'"};
    }
    return {std::string{id}, std::string{token}, {}};
}

bool valid_port(std::string_view s, std::uint16_t& port) {
    unsigned value = 0;
    if (!all_digits(s) || s.size() > 5) {
        return false;
    }
    std::from_chars(s.data(), s.data() + s.size(), value);
    if (value > 65535) {
        return false;
    }
    port = static_cast<std::uint16_t>(value);
    return true;
}

bool is_ipv4(const std::string& s) {
    in_addr a{};
    return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
    in6_addr a{};
    return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

struct listen_parts {
    std::string address;
    std::uint16_t port = 0;
    std::string reason;  // empty when valid
};

listen_parts parse_listen(std::string_view text) {
    constexpr std::string_view shape =
        "expected address:port with a numeric address, e.g. 0.0.0.0:8080 or [::1]:8080";
    std::string host;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return {{}, 0, std::string{shape}};
        }
        host = std::string{text.substr(1, close - 1)};
        port_text = text.substr(close + 2);
        if (!is_ipv6(host)) {
            return {{}, 0, "the address in brackets must be a numeric IPv6 address"};
        }
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return {{}, 0, std::string{shape}};
        }
        host = std::string{text.substr(0, colon)};
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string::npos) {
            return {{}, 0, "an IPv6 address must be in brackets, e.g. [::1]:8080"};
        }
        if (host.empty()) {
            return {{}, 0, "the address is missing; use 0.0.0.0 for every IPv4 interface"};
        }
        if (!is_ipv4(host)) {
            return {
                {},
                0,
                "the address must be a numeric IPv4 or IPv6 address; host names are not "
                "resolved (use e.g. 0.0.0.0 or 127.0.0.1)"};
        }
    }
    std::uint16_t port = 0;
    if (!valid_port(port_text, port)) {
        return {{}, 0, "the port must be a number from 0 to 65535"};
    }
    return {std::move(host), port, {}};
}

struct base_url_parts {
    std::string url;     // normalised: no trailing slash
    std::string reason;  // empty when valid
};

/// `http_hosts`: hosts besides loopback that plain http may name (the metadata server's).
base_url_parts parse_base_url(std::string_view text, std::span<const std::string_view> http_hosts = {}) {
    constexpr std::string_view shape = "expected http(s)://host[:port][/path]";
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) {
        return {{}, std::string{shape}};
    }
    const std::string scheme = lower(text.substr(0, scheme_end));
    if (scheme != "https" && scheme != "http") {
        return {{}, "the scheme must be https (or http for a loopback host)"};
    }
    std::string_view rest = text.substr(scheme_end + 3);
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return {{}, "a query or fragment is not allowed; " + std::string{shape}};
    }
    const auto slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    if (authority.find('@') != std::string_view::npos) {
        return {{}, "credentials in the URL are not allowed"};
    }
    std::string host;
    std::string_view port_text;
    bool has_port = false;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return {{}, std::string{shape}};
        }
        host = std::string{authority.substr(1, close - 1)};
        if (!is_ipv6(host)) {
            return {{}, "the address in brackets must be a numeric IPv6 address"};
        }
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') {
                return {{}, std::string{shape}};
            }
            has_port = true;
            port_text = after.substr(1);
        }
    } else {
        const auto colon = authority.find(':');
        host = std::string{authority.substr(0, colon)};
        if (colon != std::string_view::npos) {
            has_port = true;
            port_text = authority.substr(colon + 1);
        }
        const auto host_char = [](char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '.'; };
        if (host.empty() || !std::all_of(host.begin(), host.end(), host_char)) {
            return {{}, "the host is missing or not a valid host name; " + std::string{shape}};
        }
    }
    std::uint16_t port = 0;
    if (has_port && (!valid_port(port_text, port) || port == 0)) {
        return {{}, "the port must be a number from 1 to 65535"};
    }
    if (scheme == "http") {
        const std::string h = lower(host);
        if (h != "127.0.0.1" && h != "::1" && h != "localhost" &&
            std::find(http_hosts.begin(), http_hosts.end(), h) == http_hosts.end()) {
            return {
                {},
                "plain http is allowed only for a loopback host (127.0.0.1, [::1] or "
                "localhost); use https"};
        }
    }
    std::string url = scheme + std::string{text.substr(scheme_end)};
    while (url.ends_with('/')) {
        url.pop_back();
    }
    return {std::move(url), {}};
}

// ---------------------------------------------------------------------------------------------
// The loader: walks the YAML tree once, fills a config, and records every problem it meets.

/// A scalar after ${VAR} substitution.
struct scalar {
    std::string text;          ///< after substitution
    std::string raw;           ///< as written in the file
    bool substituted = false;  ///< true when any ${VAR} was expanded
};

/// One known key of a map, with its position.
struct entry {
    YAML::Node key;
    YAML::Node value;
    std::string path;
};

/// A map's known keys. `mark` is where a missing key is reported: the map's own key, or
/// the start of the document for the top level.
struct section {
    YAML::Mark mark;
    std::string path;
    std::vector<std::pair<std::string, entry>> entries;

    const entry* find(std::string_view key) const {
        for (const auto& [k, e] : entries) {
            if (k == key) {
                return &e;
            }
        }
        return nullptr;
    }
};

class loader {
public:
    loader(std::string_view file, const env_lookup& env) : file_(file), env_(env) {}

    load_result run(std::string_view yaml_text) {
        config cfg;
        cfg.hash = crypto::sha256_hex(yaml_text);
        std::vector<YAML::Node> docs;
        try {
            docs = YAML::LoadAll(std::string{yaml_text});
        } catch (const YAML::Exception& e) {
            // yaml-cpp's messages are fixed texts ("end of map not found"); they never quote
            // the document, so a secret cannot leak through them.
            report(e.mark, "", "YAML syntax error: " + e.msg);
        }
        if (problems_.empty()) {
            try {
                const YAML::Node root = docs.empty() ? YAML::Node{} : docs.front();
                if (docs.size() > 1) {
                    report(docs[1].Mark(), "", "only one YAML document is allowed");
                }
                read_root(root, cfg);
            } catch (const std::exception& e) {
                // The walk only reads nodes it has type-checked; this is a bug, not bad input.
                report(YAML::Mark::null_mark(), "", std::string{"internal error: "} + e.what());
            }
        }
        std::stable_sort(problems_.begin(), problems_.end(), [](const problem& a, const problem& b) {
            return std::pair{a.line, a.column} < std::pair{b.line, b.column};
        });
        load_result out;
        if (problems_.empty()) {
            out.value = std::move(cfg);
        }
        out.problems = std::move(problems_);
        return out;
    }

private:
    // --- reporting ---------------------------------------------------------------------------

    void report(const YAML::Mark& m, std::string path, std::string message) {
        problem p;
        p.file = file_;
        // A null mark (a node with no position, e.g. an empty document) is reported at the
        // start of the file rather than without a position: the file itself was readable.
        p.line = m.is_null() ? 1 : m.line + 1;
        p.column = m.is_null() ? 1 : m.column + 1;
        p.path = std::move(path);
        p.message = std::move(message);
        problems_.push_back(std::move(p));
    }

    void report(const YAML::Node& at, std::string path, std::string message) {
        report(at.Mark(), std::move(path), std::move(message));
    }

    std::size_t problem_count() const noexcept { return problems_.size(); }

    // How a value may be shown in a message. A value that came from the environment may be a
    // secret put in the wrong place, so only the text as written in the file is quoted.
    static std::string shown(const scalar& s) {
        constexpr std::size_t max_shown = 60;
        std::string t = s.substituted ? s.raw : s.text;
        if (t.size() > max_shown) {
            t = t.substr(0, max_shown) + "...";
        }
        // One problem, one line: control characters (a block scalar's newlines) become '?'.
        std::replace_if(
            t.begin(), t.end(), [](char c) { return c >= 0 && c < 0x20; }, '?'
        );
        const std::string q = "'" + t + "'";
        return s.substituted ? "the value substituted into " + q : q;
    }

    // --- maps --------------------------------------------------------------------------------

    section open(
        const YAML::Node& node,
        const YAML::Mark& mark,
        const std::string& path,
        std::span<const std::string_view> known
    ) {
        section s;
        s.mark = mark;
        s.path = path;
        if (is_null(node)) {
            return s;  // "log:" with every key commented out means all defaults
        }
        if (!node.IsMap()) {
            report(node, path, std::string{"expected a map, got "} + kind_of(node));
            return s;
        }
        std::vector<std::string> seen;
        for (auto it = node.begin(); it != node.end(); ++it) {
            const YAML::Node key = it->first;
            if (!key.IsScalar()) {
                report(key, path, std::string{"a key must be a string, got "} + kind_of(key));
                continue;
            }
            const std::string& name = key.Scalar();
            const std::string key_path = join(path, name);
            if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
                report(key, key_path, "duplicate key '" + name + "'");
                continue;
            }
            seen.push_back(name);
            if (std::find(known.begin(), known.end(), name) == known.end()) {
                report(key, key_path, "unknown key '" + name + "'" + suggestion(name, known));
                continue;
            }
            s.entries.emplace_back(name, entry{key, it->second, key_path});
        }
        return s;
    }

    section sub(const section& parent, std::string_view key, std::span<const std::string_view> known) {
        if (const entry* e = parent.find(key)) {
            return open(e->value, e->key.Mark(), e->path, known);
        }
        section s;
        s.mark = parent.mark;
        s.path = join(parent.path, key);
        return s;
    }

    // --- scalars -----------------------------------------------------------------------------

    // Expands ${VAR} in `raw`; nullopt (with problems reported) when a variable is unset.
    std::optional<scalar> substitute(const std::string& raw, const YAML::Node& at, const std::string& path) {
        scalar out;
        out.raw = raw;
        bool ok = true;
        std::size_t i = 0;
        while (i < raw.size()) {
            if (raw.compare(i, 3, "$${") == 0) {
                out.text += "${";
                i += 3;
                continue;
            }
            if (raw.compare(i, 2, "${") != 0) {
                out.text += raw[i++];
                continue;
            }
            const auto close = raw.find('}', i + 2);
            if (close == std::string::npos) {
                report(at, path, "'${' without a closing '}' (write '$${' for a literal '${')");
                return std::nullopt;
            }
            const std::string name = raw.substr(i + 2, close - i - 2);
            const bool valid_name =
                !name.empty() && !is_digit(name[0]) && std::all_of(name.begin(), name.end(), [](char c) {
                    return is_alpha(c) || is_digit(c) || c == '_';
                });
            if (!valid_name) {
                // The text between the braces is not shown: it could be part of a secret.
                report(
                    at,
                    path,
                    "invalid environment variable name in '${...}' (letters, digits and '_', "
                    "not starting with a digit)"
                );
                ok = false;
            } else if (auto value = lookup(name)) {
                out.text += *value;
                out.substituted = true;
            } else {
                report(at, path, "environment variable '" + name + "' is not set");
                ok = false;
            }
            i = close + 1;
        }
        if (!ok) {
            return std::nullopt;
        }
        return out;
    }

    std::optional<std::string> lookup(const std::string& name) const {
        if (env_) {
            return env_(name);
        }
        if (const char* v = std::getenv(name.c_str())) {
            return std::string{v};
        }
        return std::nullopt;
    }

    std::optional<scalar> read_scalar(
        const YAML::Node& node,
        const std::string& path,
        std::string_view expected = "a string",
        const YAML::Node* key = nullptr
    ) {
        if (!node.IsScalar()) {
            // yaml-cpp places an empty value at the token after it (often the next line), so
            // a missing value is reported at its key instead.
            const YAML::Node& at = key != nullptr && is_null(node) ? *key : node;
            report(at, path, "expected " + std::string{expected} + ", got " + kind_of(node));
            return std::nullopt;
        }
        return substitute(node.Scalar(), node, path);
    }

    std::optional<scalar> read_scalar(const entry& e, std::string_view expected = "a string") {
        return read_scalar(e.value, e.path, expected, &e.key);
    }

    std::optional<std::string> read_string(const section& s, std::string_view key, bool non_empty) {
        const entry* e = s.find(key);
        if (e == nullptr) {
            return std::nullopt;
        }
        auto v = read_scalar(*e);
        if (!v) {
            return std::nullopt;
        }
        if (non_empty && v->text.empty()) {
            report(e->value, e->path, "must not be empty");
            return std::nullopt;
        }
        return std::move(v->text);
    }

    std::optional<std::uint64_t> read_count(const section& s, std::string_view key, std::uint64_t min) {
        const entry* e = s.find(key);
        if (e == nullptr) {
            return std::nullopt;
        }
        auto v = read_scalar(*e, "a whole number");
        if (!v) {
            return std::nullopt;
        }
        const std::string_view t = v->text;
        if (t.starts_with('-') && all_digits(t.substr(1))) {
            report(e->value, e->path, "must not be negative");
            return std::nullopt;
        }
        std::uint64_t n = 0;
        if (!all_digits(t)) {
            report(e->value, e->path, shown(*v) + " is not a whole number");
            return std::nullopt;
        }
        const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        if (ec != std::errc{} || ptr != t.data() + t.size()) {
            report(e->value, e->path, shown(*v) + " is too large");
            return std::nullopt;
        }
        if (n < min) {
            report(e->value, e->path, "must be at least " + std::to_string(min));
            return std::nullopt;
        }
        return n;
    }

    std::optional<milliseconds> read_duration(const section& s, std::string_view key, milliseconds min) {
        const entry* e = s.find(key);
        if (e == nullptr) {
            return std::nullopt;
        }
        auto v = read_scalar(*e, "a duration");
        if (!v) {
            return std::nullopt;
        }
        if (v->text.starts_with('-')) {
            report(e->value, e->path, "must not be negative");
            return std::nullopt;
        }
        const auto d = parse_duration(v->text);
        if (!d) {
            report(
                e->value,
                e->path,
                shown(*v) + " is not a duration (e.g. 250ms, 90s, 30m, 1h30m; at most 366d)"
            );
            return std::nullopt;
        }
        if (*d < min) {
            report(
                e->value,
                e->path,
                min == 1ms ? std::string{"must be greater than 0"}
                           : "must be at least " + format_duration(min)
            );
            return std::nullopt;
        }
        return *d;
    }

    // Returns the index of the value in `choices`.
    std::optional<std::size_t> read_choice(
        const section& s, std::string_view key, std::span<const std::string_view> choices
    ) {
        const entry* e = s.find(key);
        if (e == nullptr) {
            return std::nullopt;
        }
        auto v = read_scalar(*e);
        if (!v) {
            return std::nullopt;
        }
        const auto it = std::find(choices.begin(), choices.end(), v->text);
        if (it == choices.end()) {
            report(
                e->value,
                e->path,
                shown(*v) + " is not one of " + list_words(choices) +
                    (v->substituted ? std::string{} : suggestion(v->text, choices))
            );
            return std::nullopt;
        }
        return static_cast<std::size_t>(it - choices.begin());
    }

    // --- sections ----------------------------------------------------------------------------

    void read_root(const YAML::Node& root, config& cfg) {
        const YAML::Mark start = root.IsDefined() ? root.Mark() : YAML::Mark::null_mark();
        const section top = open(root, start, "", root_keys);
        read_server(sub(top, "server", server_keys), cfg.server);
        read_log(sub(top, "log", log_keys), cfg.log);
        read_pagerduty(sub(top, "pagerduty", pagerduty_keys), cfg.pagerduty);
        read_status(sub(top, "status", status_keys), cfg.status);
        const bool kind_known = read_notify(sub(top, "notify", notify_keys), cfg.notify);
        read_discord(
            sub(top, "discord", discord_keys),
            cfg.discord,
            kind_known && cfg.notify.kind == notifier_kind::discord
        );
        read_console(sub(top, "console", console_keys), cfg.console);
        read_rules(sub(top, "rules", rules_keys), cfg.rules);
        read_operations(sub(top, "operations", operations_keys), cfg.operations);
        read_signals(sub(top, "signals", signals_keys), cfg.signals);
        read_kubernetes(sub(top, "kubernetes", kubernetes_keys), cfg.kubernetes);
        read_cloudsql(sub(top, "cloudsql", cloudsql_keys), cfg.cloudsql);
        read_gcp_status(sub(top, "gcp_status", gcp_status_keys), cfg.gcp_status);
        read_google(sub(top, "google", google_keys), cfg.google, !cfg.cloudsql.instance.empty());
        std::string described;
        read_postgres(sub(top, "postgres", postgres_keys), cfg.postgres, described);
        if (cfg.postgres.configured() && cfg.postgres.instance.empty()) {
            // One name for the database in both sources' signals, when it is Cloud SQL.
            cfg.postgres.instance = cfg.cloudsql.instance.empty() ? described : cfg.cloudsql.instance;
        }
        read_services(top, cfg.services);
    }

    /// A list of non-empty strings; nullopt (with problems) when it is not one.
    std::optional<std::vector<std::string>> read_list(const entry& e) {
        if (is_null(e.value)) {
            return std::vector<std::string>{};
        }
        if (!e.value.IsSequence()) {
            report(e.value, e.path, std::string{"expected a list, got "} + kind_of(e.value));
            return std::nullopt;
        }
        std::vector<std::string> out;
        bool ok = true;
        for (std::size_t i = 0; i < e.value.size(); ++i) {
            const std::string path = e.path + "[" + std::to_string(i) + "]";
            auto v = read_scalar(e.value[i], path);
            if (!v) {
                ok = false;
            } else if (v->text.empty()) {
                report(e.value[i], path, "must not be empty");
                ok = false;
            } else {
                out.push_back(std::move(v->text));
            }
        }
        return ok ? std::optional{std::move(out)} : std::nullopt;
    }

    void read_rules(const section& s, rules_config& out) {
        if (const entry* e = s.find("files")) {
            if (auto files = read_list(*e)) {
                out.files = std::move(*files);
            }
        }
    }

    void read_operations(const section& s, operations_config& out) {
        if (auto v = read_duration(s, "edit_interval", 0ms)) {
            out.edit_interval = *v;
        }
        if (const entry* e = s.find("dominance_share")) {
            if (auto v = read_scalar(*e, "a number from 0 to 1")) {
                double d = 0;
                const auto [ptr, ec] = std::from_chars(v->text.data(), v->text.data() + v->text.size(), d);
                if (ec != std::errc{} || ptr != v->text.data() + v->text.size() || !(d > 0 && d <= 1)) {
                    report(e->value, e->path, shown(*v) + " is not a number greater than 0 and at most 1");
                } else {
                    out.dominance_share = d;
                }
            }
        }
        if (auto v = read_count(s, "max_suspects", 1)) {
            out.max_suspects = static_cast<std::size_t>(*v);
        }
    }

    void read_signals(const section& s, signals_config& out) {
        if (auto v = read_duration(s, "retention", 1min)) {
            out.retention = *v;
        }
        if (auto v = read_count(s, "max_signals", 1)) {
            out.max_signals = static_cast<std::size_t>(*v);
        }
    }

    void read_kubernetes(const section& s, kubernetes_config& out) {
        if (auto v = read_choice(s, "enabled", kubernetes_modes)) {
            out.enabled = std::array{
                kubernetes_config::mode::automatic,
                kubernetes_config::mode::on,
                kubernetes_config::mode::off}[*v];
        }
        if (const entry* e = s.find("kubeconfig")) {
            if (auto v = read_scalar(*e); v && !v->text.empty()) {
                if (auto f = read_whole_file(v->text); !f.error.empty()) {
                    report(e->value, e->path, "cannot read kubeconfig '" + v->text + "': " + f.error);
                }
                out.kubeconfig = std::move(v->text);
            }
        }
        if (auto v = read_string(s, "context", false)) {
            out.context = std::move(*v);
        }
        if (const entry* e = s.find("namespaces")) {
            if (auto list = read_list(*e)) {
                for (std::size_t i = 0; i < list->size(); ++i) {
                    const std::string& ns = (*list)[i];
                    const bool dns_label = ns.size() <= 63 && std::all_of(ns.begin(), ns.end(), [](char c) {
                                               return is_digit(c) || (c >= 'a' && c <= 'z') || c == '-';
                                           });
                    if (ns == "*" ? list->size() != 1 : !dns_label) {
                        report(
                            e->value[i],
                            e->path + "[" + std::to_string(i) + "]",
                            ns == "*"
                                ? std::string{"'*' (every namespace) stands alone"}
                                : "'" + ns + "' is not a namespace name (lower-case letters, digits, '-')"
                        );
                    }
                }
                out.namespaces = std::move(*list);
            }
        }
        if (auto v = read_choice(s, "nodes", booleans)) {
            out.nodes = *v == 0;
        }
        if (auto v = read_duration(s, "version_interval", 1s)) {
            out.version_interval = *v;
        }
        if (auto v = read_duration(s, "watch_timeout", 1s)) {
            out.watch_timeout = *v;
        }
        if (auto v = read_duration(s, "request_timeout", 1ms)) {
            out.request_timeout = *v;
        }
        if (auto v = read_string(s, "service_account_dir", true)) {
            out.service_account_dir = std::move(*v);
        }
    }

    /// A base URL (https, or http for a loopback host; `metadata` also allows the metadata
    /// server's link-local address and name, which are never routed off the node).
    void read_url(const section& s, std::string_view key, std::string& out, bool metadata = false) {
        const entry* e = s.find(key);
        if (e == nullptr) {
            return;
        }
        auto v = read_scalar(*e);
        if (!v) {
            return;
        }
        // The metadata server's link-local address and name are never routed off the node.
        constexpr std::string_view metadata_hosts[] = {"169.254.169.254", "metadata.google.internal"};
        auto parts = parse_base_url(
            v->text, metadata ? std::span{metadata_hosts} : std::span<const std::string_view>{}
        );
        if (!parts.reason.empty()) {
            if (metadata && parts.reason.starts_with("plain http")) {
                parts.reason =
                    "plain http is allowed only for the metadata server (169.254.169.254, "
                    "metadata.google.internal) or a loopback host";
            }
            report(e->value, e->path, shown(*v) + ": " + parts.reason);
        } else {
            out = std::move(parts.url);
        }
    }

    /// A list of ECMAScript regular expressions; each must compile.
    std::optional<std::vector<std::string>> read_patterns(const entry& e) {
        auto list = read_list(e);
        if (!list) {
            return std::nullopt;
        }
        bool ok = true;
        for (std::size_t i = 0; i < list->size(); ++i) {
            try {
                std::regex{(*list)[i]};
            } catch (const std::regex_error& x) {
                report(
                    e.value[i],
                    e.path + "[" + std::to_string(i) + "]",
                    "not a regular expression: " + std::string{x.what()}
                );
                ok = false;
            }
        }
        return ok ? list : std::nullopt;
    }

    void read_google(const section& s, google_config& out, bool needed) {
        if (auto v = read_choice(s, "credentials", google_credential_kinds)) {
            out.credentials = std::array{
                google_config::credential_kind::automatic,
                google_config::credential_kind::metadata,
                google_config::credential_kind::key_file}[*v];
        }
        if (const entry* e = s.find("key_file")) {
            if (auto v = read_scalar(*e); v && !v->text.empty()) {
                auto f = read_whole_file(v->text);
                if (!f.error.empty()) {
                    report(e->value, e->path, "cannot read the key file '" + v->text + "': " + f.error);
                } else if (auto key = sources::gcp::parse_key_file(f.text); !key) {
                    report(e->value, e->path, "'" + v->text + "': " + key.error().detail);
                } else if (std::string why; !crypto::rs256_sign(key->private_key, "runbookd", &why)) {
                    report(e->value, e->path, "'" + v->text + "': its private_key cannot sign: " + why);
                } else if (const auto uri = parse_base_url(key->token_uri);
                           !key->token_uri.empty() && !uri.reason.empty()) {
                    // The signed grant is a credential for an hour: it goes to https only.
                    report(e->value, e->path, "'" + v->text + "': its token_uri: " + uri.reason);
                } else {
                    out.key_json = secret<std::string>{std::move(f.text)};
                    if (out.project.empty()) {
                        out.project = key->project_id;
                    }
                }
                out.key_file = std::move(v->text);
            }
        }
        if (auto v = read_string(s, "project", true)) {
            out.project = std::move(*v);
        }
        if (out.credentials == google_config::credential_kind::key_file && out.key_file.empty()) {
            report(s.mark, join(s.path, "key_file"), "required when credentials is key_file");
        }
        read_url(s, "metadata_url", out.metadata_url, true);
        read_url(s, "token_url", out.token_url);
        read_url(s, "monitoring_url", out.monitoring_url);
        read_url(s, "sqladmin_url", out.sqladmin_url);
        if (const entry* e = s.find("ca_file")) {
            if (auto v = read_scalar(*e); v && !v->text.empty()) {
                if (auto f = read_whole_file(v->text); !f.error.empty()) {
                    report(e->value, e->path, "cannot read CA file '" + v->text + "': " + f.error);
                }
                out.ca_file = std::move(v->text);
            }
        }
        if (auto v = read_duration(s, "request_timeout", 1ms)) {
            out.request_timeout = *v;
        }
        if (const entry* e = s.find("scopes")) {
            report(e->key, e->path, "scopes are fixed (cloud-platform); remove this key");
        }
        if (needed && out.project.empty()) {
            report(
                s.mark,
                join(s.path, "project"),
                "required for cloudsql (or a key_file whose project_id names it)"
            );
        }
    }

    void read_cloudsql(const section& s, cloudsql_config& out) {
        if (auto v = read_string(s, "instance", false)) {
            if (v->find(':') != std::string::npos || v->find('/') != std::string::npos) {
                report(
                    s.find("instance")->value,
                    join(s.path, "instance"),
                    "the instance ID alone (dark-west), without the project"
                );
            } else {
                out.instance = std::move(*v);
            }
        }
        if (auto v = read_duration(s, "monitoring_interval", 1s)) {
            out.monitoring_interval = *v;
        }
        if (auto v = read_duration(s, "instance_interval", 1s)) {
            out.instance_interval = *v;
        }
        if (auto v = read_duration(s, "lookback", 1min)) {
            out.lookback = *v;
        }
        // Cloud SQL data lags up to ~3 minutes: a shorter look back than interval + 3m
        // would let points slip between two polls.
        if (const entry* e = s.find("lookback");
            e != nullptr && out.lookback < out.monitoring_interval + 3min) {
            report(
                e->value,
                e->path,
                "must be at least monitoring_interval + 3m (" +
                    format_duration(out.monitoring_interval + 3min) +
                    "): Cloud SQL data arrives up to 3 minutes late"
            );
        }
    }

    void read_gcp_status(const section& s, gcp_status_config& out) {
        if (auto v = read_choice(s, "enabled", booleans)) {
            out.enabled = *v == 0;
        }
        read_url(s, "url", out.url);
        if (auto v = read_duration(s, "interval", 1s)) {
            out.interval = *v;
        }
        if (const entry* e = s.find("products")) {
            if (auto list = read_list(*e)) {
                if (list->empty()) {
                    report(
                        e->value,
                        e->path,
                        "must name at least one product (\"Cloud SQL\", as the feed titles it)"
                    );
                } else {
                    out.products = std::move(*list);
                }
            }
        }
        if (const entry* e = s.find("locations")) {
            if (auto list = read_list(*e)) {
                out.locations = std::move(*list);
            }
        }
    }

    /// `described`: "dbname on host:port", the instance label when neither postgres.instance
    /// nor cloudsql.instance names one.
    void read_postgres(const section& s, postgres_config& out, std::string& described) {
        const entry* inline_dsn = s.find("dsn");
        const entry* file = s.find("dsn_file");
        if (inline_dsn != nullptr && file != nullptr) {
            report(file->key, file->path, "set either dsn or dsn_file, not both");
        } else if (const entry* from = inline_dsn != nullptr ? inline_dsn : file) {
            std::string text;
            if (auto v = read_scalar(*from)) {
                if (from == file && !v->text.empty()) {
                    auto f = read_whole_file(v->text);
                    if (!f.error.empty()) {
                        report(from->value, from->path, "cannot read '" + v->text + "': " + f.error);
                    }
                    text = std::string{trim(f.text)};
                } else {
                    text = std::move(v->text);
                }
            }
            if (!text.empty()) {
                // Messages name the key, never the string: it may hold a password.
                auto parsed = sources::postgres::parse_dsn(text);
                if (!parsed) {
                    report(from->value, from->path, parsed.error().detail);
                } else if (auto checked = sources::postgres::check_dsn(*parsed); !checked) {
                    report(from->value, from->path, checked.error().detail);
                } else {
                    described = sources::postgres::describe(*parsed);
                    out.dsn = secret<std::string>{std::move(text)};
                }
            }
        }
        if (const entry* e = s.find("password_file")) {
            report(
                e->key,
                e->path,
                "put the password in a passfile named by the dsn (passfile=PATH), or in dsn_file"
            );
        }
        if (auto v = read_string(s, "instance", true)) {
            out.instance = std::move(*v);
        }
        if (auto v = read_duration(s, "interval", 1s)) {
            out.interval = *v;
        }
        if (auto v = read_duration(s, "connect_timeout", 1s)) {
            out.connect_timeout = *v;
        }
        if (auto v = read_duration(s, "statement_timeout", 100ms)) {
            out.statement_timeout = *v;
        }
        if (auto v = read_duration(s, "long_query_threshold", 1s)) {
            out.long_query_threshold = *v;
        }
        if (auto v = read_duration(s, "migration_threshold", 0ms)) {
            out.migration_threshold = *v;
        }
        if (auto v = read_duration(s, "idle_in_transaction_threshold", 1s)) {
            out.idle_in_transaction_threshold = *v;
        }
        if (auto v = read_duration(s, "lock_wait_threshold", 0ms)) {
            out.lock_wait_threshold = *v;
        }
        if (auto v = read_count(s, "query_max", 20)) {
            out.query_max = static_cast<std::size_t>(*v);
        }
        if (auto v = read_choice(s, "redact_literals", booleans)) {
            out.redact_literals = *v == 0;
        }
        if (const entry* e = s.find("redact_patterns")) {
            if (auto list = read_patterns(*e)) {
                out.redact_patterns = std::move(*list);
            }
        }
        if (const entry* e = s.find("exclude_applications")) {
            if (auto list = read_list(*e)) {
                out.exclude_applications = std::move(*list);
            }
        }
        if (const entry* e = s.find("exclude_users")) {
            if (auto list = read_list(*e)) {
                out.exclude_users = std::move(*list);
            }
        }
    }

    /// "namespace/deployment", either side "*" or ending in "*"; or "namespace/selector",
    /// an equality-based label selector of the deployments' pods ("app=web,tier!=batch").
    static bool valid_workload(std::string_view w) {
        const auto slash = w.find('/');
        if (slash == std::string_view::npos || slash == 0 || slash + 1 == w.size()) {
            return false;
        }
        if (const std::string_view selector = w.substr(slash + 1);
            selector.find('=') != std::string_view::npos) {
            if (!parse_selector(selector)) {
                return false;
            }
            const std::string_view ns = w.substr(0, slash);
            return std::all_of(ns.begin(), ns.end(), [](char c) {
                return is_digit(c) || (c >= 'a' && c <= 'z') || c == '-' || c == '.' || c == '*';
            });
        }
        const auto part_ok = [](std::string_view p) {
            if (p.ends_with('*')) {
                p.remove_suffix(1);
            }
            return std::all_of(p.begin(), p.end(), [](char c) {
                return is_digit(c) || (c >= 'a' && c <= 'z') || c == '-' || c == '.';
            });
        };
        return part_ok(w.substr(0, slash)) && part_ok(w.substr(slash + 1));
    }

    void read_server(const section& s, server_config& out) {
        if (const entry* e = s.find("listen")) {
            if (auto v = read_scalar(*e)) {
                auto parts = parse_listen(v->text);
                if (!parts.reason.empty()) {
                    report(e->value, e->path, shown(*v) + ": " + parts.reason);
                } else {
                    out.address = std::move(parts.address);
                    out.port = parts.port;
                }
            }
        }
        if (auto v = read_count(s, "max_body_bytes", 1)) {
            out.max_body_bytes = static_cast<std::size_t>(*v);
        }
        if (auto v = read_duration(s, "header_timeout", 1ms)) {
            out.header_timeout = *v;
        }
        if (auto v = read_duration(s, "body_timeout", 1ms)) {
            out.body_timeout = *v;
        }
        if (auto v = read_duration(s, "idle_timeout", 1ms)) {
            out.idle_timeout = *v;
        }
        if (auto v = read_count(s, "max_connections", 1)) {
            out.max_connections = static_cast<std::size_t>(*v);
        }
    }

    void read_log(const section& s, log_config& out) {
        if (auto i = read_choice(s, "level", log_levels)) {
            constexpr std::array levels{log_level::debug, log_level::info, log_level::warn, log_level::error};
            out.level = levels.at(*i);
        }
    }

    void read_pagerduty(const section& s, pagerduty_config& out) {
        const std::size_t before = problem_count();
        std::vector<secret<std::string>> secrets;
        const entry* list = s.find("webhook_secrets");
        if (list != nullptr && !is_null(list->value)) {
            if (!list->value.IsSequence()) {
                report(
                    list->value,
                    list->path,
                    std::string{"expected a list of strings, got "} + kind_of(list->value)
                );
            } else {
                std::size_t i = 0;
                for (auto it = list->value.begin(); it != list->value.end(); ++it, ++i) {
                    const std::string path = list->path + "[" + std::to_string(i) + "]";
                    auto v = read_scalar(*it, path);
                    if (!v) {
                        continue;
                    }
                    if (v->text.empty()) {
                        report(*it, path, "the secret is empty");
                        continue;
                    }
                    secrets.emplace_back(std::move(v->text));
                }
            }
        }
        if (const entry* file = s.find("webhook_secrets_file")) {
            if (auto path = read_scalar(*file)) {
                if (path->text.empty()) {
                    report(file->value, file->path, "must not be empty");
                } else {
                    auto f = read_whole_file(path->text);
                    if (!f.error.empty()) {
                        report(file->value, file->path, "cannot read '" + path->text + "': " + f.error);
                    } else {
                        const std::size_t count = secrets.size();
                        std::string_view rest = f.text;
                        while (!rest.empty()) {
                            const auto nl = rest.find('\n');
                            const auto line = trim(rest.substr(0, nl));
                            if (!line.empty()) {
                                secrets.emplace_back(std::string{line});
                            }
                            rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
                        }
                        if (secrets.size() == count) {
                            report(
                                file->value, file->path, "'" + path->text + "' holds no secret (one per line)"
                            );
                        }
                    }
                }
            }
        }
        // Only when nothing else went wrong: an unset ${VAR} already explains the absence.
        if (secrets.empty() && problem_count() == before) {
            const YAML::Mark at = list != nullptr ? list->key.Mark() : s.mark;
            report(
                at,
                join(s.path, "webhook_secrets"),
                "at least one webhook signing secret is required (webhook_secrets or "
                "webhook_secrets_file)"
            );
        }
        out.webhook_secrets = std::move(secrets);
        if (auto v = read_count(s, "dedupe_capacity", 1)) {
            out.dedupe_capacity = static_cast<std::size_t>(*v);
        }
    }

    void read_status(const section& s, status_config& out) {
        if (auto v = read_duration(s, "reminder_interval", 1s)) {
            out.reminder_interval = *v;
        }
        if (auto v = read_string(s, "default_impact", true)) {
            out.default_impact = std::move(*v);
        }
    }

    // Returns false when notify.kind was set but invalid, so dependent checks can stay quiet.
    bool read_notify(const section& s, notify_config& out) {
        bool kind_known = true;
        if (s.find("kind") != nullptr) {
            const auto i = read_choice(s, "kind", notifier_kinds);
            kind_known = i.has_value();
            if (i) {
                out.kind = *i == 0 ? notifier_kind::discord : notifier_kind::console;
            }
        }
        if (auto v = read_duration(s, "drain_timeout", 1ms)) {
            out.drain_timeout = *v;
        }
        if (auto v = read_duration(s, "coalesce_window", 0ms)) {
            out.coalesce_window = *v;
        }
        return kind_known;
    }

    void read_discord(const section& s, discord_config& out, bool required) {
        read_url(s, "base_url", out.base_url);
        if (const entry* e = s.find("ca_file")) {
            if (auto v = read_scalar(*e)) {
                if (!v->text.empty()) {
                    auto f = read_whole_file(v->text);
                    if (!f.error.empty()) {
                        report(e->value, e->path, "cannot read CA file '" + v->text + "': " + f.error);
                    }
                }
                out.ca_file = std::move(v->text);
            }
        }
        if (const entry* e = s.find("username")) {
            if (auto v = read_string(s, "username", true)) {
                // Discord counts characters, not bytes: skip UTF-8 continuation bytes.
                const auto chars = std::count_if(v->begin(), v->end(), [](char c) {
                    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
                });
                if (static_cast<std::size_t>(chars) > discord_username_max) {
                    report(
                        e->value,
                        e->path,
                        "must be at most " + std::to_string(discord_username_max) +
                            " characters (Discord's limit)"
                    );
                } else {
                    out.username = std::move(*v);
                }
            }
        }
        if (auto v = read_duration(s, "request_timeout", 1ms)) {
            out.request_timeout = *v;
        }
        const std::size_t before = problem_count();
        out.status = read_webhook(s, "status_webhook_url");
        if (required && !out.status.configured() && problem_count() == before) {
            report(
                s.mark,
                join(s.path, "status_webhook_url"),
                "required when notify.kind is discord (set status_webhook_url or "
                "status_webhook_url_file)"
            );
        }
        out.operations = read_webhook(s, "operations_webhook_url");
    }

    // Reads `key` or `key_file`. An empty value means "not configured". Messages never
    // contain the URL or its token; a file's path is shown, its contents never.
    discord_webhook read_webhook(const section& s, const std::string& key) {
        const std::string file_key = key + "_file";
        const entry* inline_url = s.find(key);
        const entry* file = s.find(file_key);
        if (inline_url != nullptr && file != nullptr) {
            report(file->key, file->path, "set either " + key + " or " + file_key + ", not both");
            return {};
        }
        std::string url;
        const entry* from = nullptr;
        std::string where;  // prefix naming the file the URL came from
        if (inline_url != nullptr) {
            auto v = read_scalar(*inline_url);
            if (!v) {
                return {};
            }
            url = std::move(v->text);
            from = inline_url;
        } else if (file != nullptr) {
            auto path = read_scalar(*file);
            if (!path) {
                return {};
            }
            if (path->text.empty()) {
                report(file->value, file->path, "must not be empty");
                return {};
            }
            auto f = read_whole_file(path->text);
            if (!f.error.empty()) {
                report(file->value, file->path, "cannot read '" + path->text + "': " + f.error);
                return {};
            }
            url = std::string{trim(f.text)};
            if (url.empty()) {
                report(file->value, file->path, "'" + path->text + "' is empty");
                return {};
            }
            from = file;
            where = "'" + path->text + "' does not hold a Discord webhook URL: ";
        }
        if (from == nullptr || url.empty()) {
            return {};
        }
        auto parts = parse_webhook_url(url);
        if (!parts.reason.empty()) {
            report(
                from->value,
                from->path,
                (where.empty() ? "not a Discord webhook URL: " : where) + parts.reason + " (" +
                    std::string{webhook_url_hint} + ")"
            );
            return {};
        }
        return discord_webhook{std::move(parts.id), secret<std::string>{std::move(parts.token)}};
    }

    void read_console(const section& s, console_config& out) {
        if (auto v = read_string(s, "path", true)) {
            out.path = std::move(*v);
        }
    }

    void read_services(const section& top, std::map<std::string, service_info, std::less<>>& out) {
        const entry* e = top.find("services");
        if (e == nullptr || is_null(e->value)) {
            return;
        }
        if (!e->value.IsMap()) {
            report(
                e->value,
                e->path,
                std::string{"expected a map of PagerDuty service ids, got "} + kind_of(e->value)
            );
            return;
        }
        for (auto it = e->value.begin(); it != e->value.end(); ++it) {
            const YAML::Node key = it->first;
            if (!key.IsScalar()) {
                report(key, e->path, std::string{"a key must be a string, got "} + kind_of(key));
                continue;
            }
            const std::string& id = key.Scalar();
            const std::string path = join(e->path, id);
            if (out.contains(id)) {
                report(key, path, "duplicate service id '" + id + "'");
                continue;
            }
            const bool id_ok = !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
                return is_alpha(c) || is_digit(c);
            });
            if (!id_ok) {
                report(
                    key, path, "'" + id + "' is not a PagerDuty service id (letters and digits, e.g. PF9KMXH)"
                );
                continue;
            }
            const std::size_t before = problem_count();
            const section svc = open(it->second, key.Mark(), path, service_keys);
            service_info info;
            if (auto name = read_string(svc, "name", true)) {
                info.name = std::move(*name);
            } else if (svc.find("name") == nullptr && problem_count() == before) {
                report(svc.mark, join(path, "name"), "required: the service's name as users see it");
            }
            if (auto impact = read_string(svc, "impact", false)) {
                info.impact = std::move(*impact);
            }
            if (const entry* k = svc.find("kubernetes")) {
                if (auto workloads = read_list(*k)) {
                    for (std::size_t i = 0; i < workloads->size(); ++i) {
                        if (!valid_workload((*workloads)[i])) {
                            report(
                                k->value[i],
                                k->path + "[" + std::to_string(i) + "]",
                                "'" + (*workloads)[i] +
                                    "' is not namespace/deployment or namespace/label=value (lower-case "
                                    "names; '*' alone or at the "
                                    "end "
                                    "of either part)"
                            );
                        }
                    }
                    info.workloads = std::move(*workloads);
                }
            }
            // Kept even when the service has problems, so a repeated id is still reported.
            out.emplace(id, std::move(info));
        }
    }

    std::string file_;
    const env_lookup& env_;
    std::vector<problem> problems_;
};

}  // namespace

engine_settings config::engine() const {
    engine_settings s;
    s.reminder_interval = status.reminder_interval;
    s.default_impact = status.default_impact;
    s.services = services;
    s.operations.edit_interval = operations.edit_interval;
    s.operations.dominance_share = operations.dominance_share;
    s.operations.max_suspects = operations.max_suspects;
    s.signals.retention = signals.retention;
    s.signals.max_signals = signals.max_signals;
    return s;
}

load_result parse(std::string_view yaml_text, std::string_view file, const env_lookup& env) {
    return loader{file, env}.run(yaml_text);
}

load_result load(const std::string& path, const env_lookup& env) {
    auto f = read_whole_file(path);
    if (!f.error.empty()) {
        load_result out;
        out.problems.push_back(problem{path, 0, 0, {}, "cannot read the configuration file: " + f.error});
        return out;
    }
    auto out = parse(f.text, path, env);
    if (out.value) {
        out.value->source_path = path;
    }
    return out;
}

}  // namespace runbookd::config
