#include "yaml/section.hpp"

#include "core/chars.hpp"
#include "core/suggest.hpp"
#include "yaml/walker.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace runbookd::yaml {
namespace {

using namespace std::chrono_literals;

constexpr std::array<std::string_view, 2> booleans{"true", "false"};

std::string lower(std::string_view s) {
    std::string out{s};
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
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

std::string join(std::string_view path, std::string_view key) {
    if (path.empty()) {
        return std::string{key};
    }
    std::string out{path};
    out += '.';
    out += key;
    return out;
}

/// A scalar after ${VAR} substitution.
struct scalar {
    std::string text;          ///< after substitution
    std::string raw;           ///< as written in the file
    bool substituted = false;  ///< true when any ${VAR} was expanded
};

/// Whether a name (of a query parameter, a DSN keyword) says its value is a credential.
bool sensitive_name(std::string_view name) {
    const std::string n = lower(name);
    for (const std::string_view word :
         {"password",
          "passwd",
          "pass",
          "pwd",
          "token",
          "secret",
          "key",
          "sig",
          "signature",
          "auth",
          "credential"}) {
        if (n.find(word) != std::string::npos) {
            return true;
        }
    }
    return false;
}

/// A path segment that reads as an opaque token: long, and letters and digits mixed.
bool token_like(std::string_view segment) {
    constexpr std::size_t min_token = 20;
    if (segment.size() < min_token) {
        return false;
    }
    bool letter = false;
    bool digit = false;
    for (const char c : segment) {
        if (is_alpha(c)) {
            letter = true;
        } else if (is_digit(c)) {
            digit = true;
        } else if (c != '-' && c != '_' && c != '.' && c != '~' && c != '%') {
            return false;
        }
    }
    return letter && digit;
}

constexpr std::string_view redacted = "<redacted>";

/// `name=value&...` with every value redacted (names kept: they say what was meant).
std::string redact_query(std::string_view query) {
    std::string out;
    while (true) {
        const auto amp = query.find('&');
        const std::string_view item = query.substr(0, amp);
        if (!out.empty()) {
            out += '&';
        }
        if (const auto eq = item.find('='); eq != std::string_view::npos) {
            out += std::string{item.substr(0, eq + 1)} + std::string{redacted};
        } else if (!item.empty()) {
            out += redacted;
        }
        if (amp == std::string_view::npos) {
            return out;
        }
        query.remove_prefix(amp + 1);
    }
}

std::string redact_path(std::string_view path) {
    if (const auto hook = lower(path).find("/webhooks/"); hook != std::string::npos) {
        return std::string{path.substr(0, hook + 10)} + std::string{redacted};
    }
    std::string out;
    std::size_t i = 0;
    while (i < path.size()) {
        const auto slash = path.find('/', i);
        const std::string_view segment = path.substr(i, slash == std::string_view::npos ? slash : slash - i);
        out += token_like(segment) ? redacted : segment;
        if (slash == std::string_view::npos) {
            break;
        }
        out += '/';
        i = slash + 1;
    }
    return out;
}

/// Outside a URL: `user:password@host` and `password=...` (a libpq keyword DSN).
std::string redact_words(std::string_view text) {
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto space = text.find_first_of(" \t", i);
        const std::string_view word = text.substr(i, space == std::string_view::npos ? space : space - i);
        std::string shown_word{word};
        if (const auto at = word.rfind('@');
            at != std::string_view::npos && word.substr(0, at).find(':') != std::string_view::npos) {
            shown_word = std::string{redacted} + std::string{word.substr(at)};
        } else if (const auto eq = word.find('=');
                   eq != std::string_view::npos && sensitive_name(word.substr(0, eq))) {
            shown_word = std::string{word.substr(0, eq + 1)} + std::string{redacted};
        }
        out += shown_word;
        if (space == std::string_view::npos) {
            break;
        }
        out += text[space];
        i = space + 1;
    }
    return out;
}

}  // namespace

std::string redact_credentials(std::string_view text) {
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) {
        return redact_words(text);
    }
    std::string out{text.substr(0, scheme_end + 3)};
    std::string_view rest = text.substr(scheme_end + 3);
    const auto authority_end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, authority_end);
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        out += std::string{redacted} + "@";
        authority.remove_prefix(at + 1);
    }
    out += authority;
    if (authority_end == std::string_view::npos) {
        return out;
    }
    rest.remove_prefix(authority_end);
    const auto fragment = rest.find('#');
    std::string_view before_fragment = rest.substr(0, fragment);
    const auto query = before_fragment.find('?');
    out += redact_path(before_fragment.substr(0, query));
    if (query != std::string_view::npos) {
        out += "?" + redact_query(before_fragment.substr(query + 1));
    }
    if (fragment != std::string_view::npos) {
        out += "#" + std::string{redacted};
    }
    return out;
}

bool is_ipv4(const std::string& s) {
    in_addr a{};
    return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
    in6_addr a{};
    return inet_pton(AF_INET6, s.c_str(), &a) == 1;
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

base_url parse_base_url(std::string_view text, const url_rules& rules) {
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
            std::find(rules.http_hosts.begin(), rules.http_hosts.end(), h) == rules.http_hosts.end()) {
            if (!rules.http_message.empty()) {
                return {{}, std::string{rules.http_message}};
            }
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

struct section::impl {
    walker* w = nullptr;
    const env_lookup* env = nullptr;  ///< null: no ${VAR} substitution (scenario files)
    YAML::Node node;
    YAML::Mark mark;  ///< where a missing key is reported: the map's key, or the document
    std::string path;
    yaml::entries es;

    const entry* find(std::string_view key) const { return yaml::find(es, key); }

    void report(const YAML::Mark& m, std::string p, std::string message) {
        w->report(m, std::move(p), std::move(message));
    }
    void report(const YAML::Node& at, std::string p, std::string message) {
        report(at.Mark(), std::move(p), std::move(message));
    }

    // How a value may be shown in a message. A value that came from the environment may be
    // a secret put in the wrong place, so only the text as written in the file is quoted;
    // credentials written in it (a URL's user:password@, a query token, a webhook token)
    // are redacted first, so no cut can leave half of one.
    static std::string shown(const scalar& s) {
        constexpr std::size_t max_shown = 60;
        std::string t = redact_credentials(s.substituted ? s.raw : s.text);
        if (t.size() > max_shown) {
            // Cut before a `<redacted>` the cut would break, so it still reads as one.
            std::size_t cut = max_shown;
            if (const auto r = t.rfind('<', cut);
                r != std::string::npos && t.compare(r, 10, "<redacted>") == 0 && r + 10 > cut) {
                cut = r;
            }
            t = t.substr(0, cut) + "...";
        }
        // One problem, one line: control characters (a block scalar's newlines) become '?'.
        std::replace_if(
            t.begin(), t.end(), [](char c) { return c >= 0 && c < 0x20; }, '?'
        );
        const std::string q = "'" + t + "'";
        return s.substituted ? "the value substituted into " + q : q;
    }

    std::optional<std::string> lookup(const std::string& name) const {
        if (*env) {
            return (*env)(name);
        }
        if (const char* v = std::getenv(name.c_str())) {
            return std::string{v};
        }
        return std::nullopt;
    }

    // Expands ${VAR} in `raw`; nullopt (with problems reported) when a variable is unset.
    std::optional<scalar> substitute(const std::string& raw, const YAML::Node& at, const std::string& p) {
        scalar out;
        out.raw = raw;
        if (env == nullptr) {
            out.text = raw;
            return out;
        }
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
                report(at, p, "'${' without a closing '}' (write '$${' for a literal '${')");
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
                    p,
                    "invalid environment variable name in '${...}' (letters, digits and '_', "
                    "not starting with a digit)"
                );
                ok = false;
            } else if (auto value = lookup(name)) {
                out.text += *value;
                out.substituted = true;
            } else {
                report(at, p, "environment variable '" + name + "' is not set");
                ok = false;
            }
            i = close + 1;
        }
        if (!ok) {
            return std::nullopt;
        }
        return out;
    }

    std::optional<scalar> read_scalar(
        const YAML::Node& n, const std::string& p, std::string_view expected, const YAML::Node* key
    ) {
        if (!n.IsScalar()) {
            // yaml-cpp places an empty value at the token after it (often the next line), so
            // a missing value is reported at its key instead.
            const YAML::Node& at = key != nullptr && is_null(n) ? *key : n;
            report(at, p, "expected " + std::string{expected} + ", got " + kind_of(n));
            return std::nullopt;
        }
        return substitute(n.Scalar(), n, p);
    }

    std::optional<scalar> read_scalar(const entry& e, std::string_view expected = "a string") {
        return read_scalar(e.value, e.path, expected, &e.key);
    }

    /// The entry `key` with its scalar in `v`, or nullptr when the key is absent or its value
    /// is not a scalar (reported).
    const entry* scalar_at(
        std::string_view key, std::optional<scalar>& v, std::string_view expected = "a string"
    ) {
        const entry* e = find(key);
        if (e == nullptr) {
            return nullptr;
        }
        v = read_scalar(*e, expected);
        return v ? e : nullptr;
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
            const std::string p = item_path(e.path, i);
            auto v = read_scalar(e.value[i], p, "a string", nullptr);
            if (!v) {
                ok = false;
            } else if (v->text.empty()) {
                report(e.value[i], p, "must not be empty");
                ok = false;
            } else {
                out.push_back(std::move(v->text));
            }
        }
        return ok ? std::optional{std::move(out)} : std::nullopt;
    }

    section child(const YAML::Node& n, const YAML::Mark& m, std::string p) const {
        auto i = std::make_unique<impl>();
        i->w = w;
        i->env = env;
        i->node = n;
        i->mark = m;
        i->path = std::move(p);
        return section{std::move(i)};
    }
};

section make_section(
    walker& w, const env_lookup* env, const YAML::Node& node, const YAML::Mark& mark, std::string path
) {
    auto i = std::make_unique<section::impl>();
    i->w = &w;
    i->env = env;
    i->node = node;
    i->mark = mark;
    i->path = std::move(path);
    return section{std::move(i)};
}

section::section(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
section::section(section&&) noexcept = default;
section& section::operator=(section&&) noexcept = default;
section::~section() = default;

const std::string& section::path() const {
    return impl_->path;
}

void section::keys(std::initializer_list<std::string_view> known) {
    keys(std::span<const std::string_view>{known.begin(), known.size()});
}

void section::keys(std::span<const std::string_view> known) {
    // An empty list would accept every key (walker::map's convention); a map with no keys
    // at all is not a section anyone declares.
    if (auto es = impl_->w->map(impl_->node, impl_->path, known)) {
        impl_->es = std::move(*es);
    }
}

bool section::has(std::string_view key) const {
    return impl_->find(key) != nullptr;
}

section section::sub(std::string_view key) const {
    if (const entry* e = impl_->find(key)) {
        return impl_->child(e->value, e->key.Mark(), e->path);
    }
    return impl_->child(YAML::Node{}, impl_->mark, join(impl_->path, key));
}

std::vector<section> section::items(std::string_view key) const {
    std::vector<section> out;
    const entry* e = impl_->find(key);
    if (e == nullptr || is_null(e->value)) {
        return out;
    }
    if (!e->value.IsSequence()) {
        impl_->report(e->value, e->path, std::string{"expected a list, got "} + kind_of(e->value));
        return out;
    }
    for (std::size_t i = 0; i < e->value.size(); ++i) {
        const YAML::Node item = e->value[i];
        out.push_back(impl_->child(item, item.Mark(), item_path(e->path, i)));
    }
    return out;
}

std::vector<std::pair<std::string, section>> section::entries(std::string_view key, std::string_view what)
    const {
    return sub(key).children(what);
}

std::vector<std::pair<std::string, section>> section::children(std::string_view what) const {
    std::vector<std::pair<std::string, section>> out;
    const YAML::Node& node = impl_->node;
    if (is_null(node)) {
        return out;
    }
    if (!node.IsMap()) {
        impl_->report(node, impl_->path, "expected a map of " + std::string{what} + ", got " + kind_of(node));
        return out;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
        const YAML::Node k = it->first;
        if (!k.IsScalar()) {
            impl_->report(k, impl_->path, std::string{"a key must be a string, got "} + kind_of(k));
            continue;
        }
        out.emplace_back(k.Scalar(), impl_->child(it->second, k.Mark(), join(impl_->path, k.Scalar())));
    }
    return out;
}

std::optional<std::string> section::string(std::string_view key, bool non_empty) {
    std::optional<scalar> v;
    const entry* e = impl_->scalar_at(key, v);
    if (e == nullptr) {
        return std::nullopt;
    }
    if (non_empty && v->text.empty()) {
        impl_->report(e->value, e->path, "must not be empty");
        return std::nullopt;
    }
    return std::move(v->text);
}

void section::get(std::string_view key, std::string& field, bool non_empty) {
    if (auto v = string(key, non_empty)) {
        field = std::move(*v);
    }
}

std::optional<std::vector<std::string>> section::strings(std::string_view key) {
    const entry* e = impl_->find(key);
    if (e == nullptr) {
        return std::nullopt;
    }
    return impl_->read_list(*e);
}

void section::get(std::string_view key, std::vector<std::string>& field) {
    if (auto v = strings(key)) {
        field = std::move(*v);
    }
}

void section::get(std::string_view key, std::size_t& field, std::size_t min) {
    std::optional<scalar> v;
    const entry* e = impl_->scalar_at(key, v, "a whole number");
    if (e == nullptr) {
        return;
    }
    const std::string_view t = v->text;
    if (t.starts_with('-') && all_digits(t.substr(1))) {
        impl_->report(e->value, e->path, "must not be negative");
        return;
    }
    std::uint64_t n = 0;
    if (!all_digits(t)) {
        impl_->report(e->value, e->path, impl::shown(*v) + " is not a whole number");
        return;
    }
    const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (ec != std::errc{} || ptr != t.data() + t.size()) {
        impl_->report(e->value, e->path, impl::shown(*v) + " is too large");
        return;
    }
    if (n < min) {
        impl_->report(e->value, e->path, "must be at least " + std::to_string(min));
        return;
    }
    field = static_cast<std::size_t>(n);
}

void section::get(std::string_view key, std::chrono::milliseconds& field, std::chrono::milliseconds min) {
    std::optional<scalar> v;
    const entry* e = impl_->scalar_at(key, v, "a duration");
    if (e == nullptr) {
        return;
    }
    if (v->text.starts_with('-')) {
        impl_->report(e->value, e->path, "must not be negative");
        return;
    }
    const auto d = parse_duration(v->text);
    if (!d) {
        impl_->report(
            e->value,
            e->path,
            impl::shown(*v) + " is not a duration (e.g. 250ms, 90s, 30m, 1h30m; at most 366d)"
        );
        return;
    }
    if (*d < min) {
        impl_->report(
            e->value,
            e->path,
            min == 1ms ? std::string{"must be greater than 0"} : "must be at least " + format_duration(min)
        );
        return;
    }
    field = *d;
}

void section::get(std::string_view key, bool& field) {
    if (auto i = choice(key, booleans)) {
        field = *i == 0;
    }
}

void section::get(std::string_view key, double& field, double above, double at_most) {
    std::optional<scalar> v;
    const entry* e = impl_->scalar_at(key, v, "a number");
    if (e == nullptr) {
        return;
    }
    double d = 0;
    const auto [ptr, ec] = std::from_chars(v->text.data(), v->text.data() + v->text.size(), d);
    if (ec != std::errc{} || ptr != v->text.data() + v->text.size() || !(d > above && d <= at_most)) {
        auto number = [](double x) {
            std::string s = std::to_string(x);
            s.erase(s.find_last_not_of('0') + 1);
            if (s.ends_with('.')) {
                s.pop_back();
            }
            return s;
        };
        impl_->report(
            e->value,
            e->path,
            impl::shown(*v) + " is not a number greater than " + number(above) + " and at most " +
                number(at_most)
        );
        return;
    }
    field = d;
}

void section::port(std::string_view key, std::uint16_t& field) {
    std::optional<scalar> v;
    const entry* e = impl_->scalar_at(key, v, "a port number");
    if (e == nullptr) {
        return;
    }
    std::uint16_t p = 0;
    if (!valid_port(v->text, p) || p == 0) {
        impl_->report(e->value, e->path, impl::shown(*v) + " is not a port (1 to 65535)");
        return;
    }
    field = p;
}

std::optional<std::size_t> section::choice(std::string_view key, std::span<const std::string_view> choices) {
    std::optional<scalar> v;
    const entry* e = impl_->scalar_at(key, v);
    if (e == nullptr) {
        return std::nullopt;
    }
    const auto it = std::find(choices.begin(), choices.end(), v->text);
    if (it == choices.end()) {
        impl_->report(
            e->value,
            e->path,
            impl::shown(*v) + " is not one of " + list_words(choices) +
                (v->substituted ? std::string{} : suggestion(v->text, choices))
        );
        return std::nullopt;
    }
    return static_cast<std::size_t>(it - choices.begin());
}

void section::url(std::string_view key, std::string& field, const url_rules& rules) {
    std::string normal;
    const auto v = checked(key, [&](const std::string& text) {
        auto parts = parse_base_url(text, rules);
        normal = std::move(parts.url);
        return parts.reason;
    });
    if (v) {
        field = std::move(normal);
    }
}

void section::file(std::string_view key, std::string& field, std::string_view what) {
    std::optional<scalar> v;
    const entry* e = impl_->scalar_at(key, v);
    if (e == nullptr) {
        return;
    }
    if (!v->text.empty()) {
        if (auto f = read_whole_file(v->text); !f.error.empty()) {
            impl_->report(
                e->value, e->path, "cannot read " + std::string{what} + " '" + v->text + "': " + f.error
            );
        }
    }
    field = std::move(v->text);
}

std::optional<std::string> section::file_contents(
    std::string_view key, std::string& path, std::string_view what
) {
    const entry* e = impl_->find(key);
    if (e == nullptr) {
        return std::nullopt;
    }
    auto v = impl_->read_scalar(*e);
    if (!v || v->text.empty()) {
        return std::nullopt;
    }
    path = v->text;
    auto f = read_whole_file(v->text);
    if (!f.error.empty()) {
        impl_->report(
            e->value, e->path, "cannot read " + std::string{what} + " '" + v->text + "': " + f.error
        );
        return std::nullopt;
    }
    return std::move(f.text);
}

std::string section::secret(std::string_view key, runbookd::secret<std::string>& field) {
    const std::string file_key = std::string{key} + "_file";
    const entry* inline_value = impl_->find(key);
    const entry* file = impl_->find(file_key);
    if (inline_value != nullptr && file != nullptr) {
        impl_->report(
            file->key, file->path, "set either " + std::string{key} + " or " + file_key + ", not both"
        );
        return {};
    }
    if (inline_value != nullptr) {
        if (auto v = impl_->read_scalar(*inline_value)) {
            field = runbookd::secret<std::string>{std::move(v->text)};
        }
        return {};
    }
    if (file == nullptr) {
        return {};
    }
    auto p = impl_->read_scalar(*file);
    if (!p) {
        return {};
    }
    if (p->text.empty()) {
        impl_->report(file->value, file->path, "must not be empty");
        return {};
    }
    auto f = read_whole_file(p->text);
    if (!f.error.empty()) {
        impl_->report(file->value, file->path, "cannot read '" + p->text + "': " + f.error);
        return {};
    }
    const std::string_view value = trim(f.text);
    if (value.empty()) {
        impl_->report(file->value, file->path, "'" + p->text + "' is empty");
        return {};
    }
    field = runbookd::secret<std::string>{std::string{value}};
    return p->text;
}

void section::secrets(std::string_view key, std::vector<runbookd::secret<std::string>>& field) {
    const entry* list = impl_->find(key);
    if (list != nullptr && !is_null(list->value)) {
        if (!list->value.IsSequence()) {
            impl_->report(
                list->value,
                list->path,
                std::string{"expected a list of strings, got "} + kind_of(list->value)
            );
        } else {
            for (std::size_t i = 0; i < list->value.size(); ++i) {
                const YAML::Node item = list->value[i];
                const std::string p = item_path(list->path, i);
                auto v = impl_->read_scalar(item, p, "a string", nullptr);
                if (!v) {
                    continue;
                }
                if (v->text.empty()) {
                    impl_->report(item, p, "the secret is empty");
                    continue;
                }
                field.emplace_back(std::move(v->text));
            }
        }
    }
    const entry* file = impl_->find(std::string{key} + "_file");
    if (file == nullptr) {
        return;
    }
    auto p = impl_->read_scalar(*file);
    if (!p) {
        return;
    }
    if (p->text.empty()) {
        impl_->report(file->value, file->path, "must not be empty");
        return;
    }
    auto f = read_whole_file(p->text);
    if (!f.error.empty()) {
        impl_->report(file->value, file->path, "cannot read '" + p->text + "': " + f.error);
        return;
    }
    const std::size_t count = field.size();
    std::string_view rest = f.text;
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        const auto line = trim(rest.substr(0, nl));
        if (!line.empty()) {
            field.emplace_back(std::string{line});
        }
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    }
    if (field.size() == count) {
        impl_->report(file->value, file->path, "'" + p->text + "' holds no secret (one per line)");
    }
}

std::optional<std::string> section::checked(
    std::string_view key, const std::function<std::string(const std::string&)>& check
) {
    std::optional<scalar> v;
    const entry* e = impl_->scalar_at(key, v);
    if (e == nullptr) {
        return std::nullopt;
    }
    if (std::string why = check(v->text); !why.empty()) {
        impl_->report(e->value, e->path, impl::shown(*v) + ": " + why);
        return std::nullopt;
    }
    return std::move(v->text);
}

void section::report(std::string_view key, std::string message) {
    if (const entry* e = impl_->find(key)) {
        impl_->report(e->value, e->path, std::move(message));
    } else {
        impl_->report(impl_->mark, join(impl_->path, key), std::move(message));
    }
}

void section::report_here(std::string message) {
    impl_->report(impl_->mark, impl_->path, std::move(message));
}

void section::report_key(std::string_view key, std::string message) {
    if (const entry* e = impl_->find(key)) {
        impl_->report(e->key, e->path, std::move(message));
    } else {
        impl_->report(impl_->mark, join(impl_->path, key), std::move(message));
    }
}

void section::report_item(std::string_view key, std::size_t i, std::string message) {
    if (const entry* e = impl_->find(key); e != nullptr && e->value.IsSequence() && i < e->value.size()) {
        impl_->report(e->value[i], item_path(e->path, i), std::move(message));
    } else {
        report(key, std::move(message));
    }
}

std::size_t section::problem_count() const {
    return impl_->w->problem_count();
}

}  // namespace runbookd::yaml
