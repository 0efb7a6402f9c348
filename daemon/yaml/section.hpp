#pragma once
// The section reader every configuration reader uses: one YAML map, its keys bound to the
// fields of a typed config struct. `${VAR}` is substituted, `*_file` secrets are read,
// durations, counts, choices, URLs and files are checked, and every problem is reported as
// file:line:col with its key path. A reader never throws for bad input and never puts a
// secret's value in a message.
//
// yaml-cpp stays behind the implementation (walker.hpp): an integration's config.cpp
// includes only this header.

#include "core/secret.hpp"
#include "core/time.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runbookd::yaml {

/// Reads ${VAR}; an empty function reads the process environment.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

/// A whole file's text, or why it could not be read (the OS error, never the contents).
struct file_text {
    std::string text;
    std::string error;  ///< empty on success, else e.g. "No such file or directory"
};
file_text read_whole_file(const std::string& path);

/// What a base URL may be.
struct url_rules {
    /// Hosts besides loopback that plain http may name (the metadata server's).
    std::span<const std::string_view> http_hosts{};
    /// Replaces the plain-http message when `http_hosts` is not empty.
    std::string_view http_message{};
};

/// A base URL checked and normalised (no trailing slash), or why it is not one.
struct base_url {
    std::string url;
    std::string reason;  ///< empty when valid; never repeats the text
};
/// https://host[:port][/path], or http for a loopback host (or one of `rules.http_hosts`);
/// no credentials, query or fragment.
base_url parse_base_url(std::string_view text, const url_rules& rules = {});

/// `text` as a problem may show it, with what could be a credential replaced by
/// `<redacted>`: a URL's user:password@, every query value (names kept) and its fragment,
/// the path after `/webhooks/` (Discord's token), path segments that look like tokens (20
/// or more letters and digits mixed); outside URLs, a `user:password@` and the values of
/// `password=`, `token=`, `secret=`, `key=` and their kin. Anything else is kept, so the
/// reader still sees which value is meant:
/// `https://discord.com/api/webhooks/<redacted>`, `https://<redacted>@example.com/x?token=<redacted>`.
std::string redact_credentials(std::string_view text);

/// Numeric addresses and ports, as readers check them (server.listen, certs targets).
bool is_ipv4(const std::string& s);
bool is_ipv6(const std::string& s);
/// A decimal port from 0 to 65535 into `port`; false (and `port` unchanged) otherwise.
bool valid_port(std::string_view s, std::uint16_t& port);

/// One YAML map of a configuration file. Made by the config loader (or a parent section);
/// an absent map is an empty section, so every key keeps its default.
class section {
public:
    struct impl;
    explicit section(std::unique_ptr<impl> i);
    section(section&&) noexcept;
    section& operator=(section&&) noexcept;
    ~section();

    /// The key path of this map ("postgres", "certs.targets[2]").
    const std::string& path() const;

    /// Declares the map's keys: an unknown key is reported with "did you mean", a duplicate
    /// too. Call it first; a reader that never calls it accepts no key.
    void keys(std::initializer_list<std::string_view> known);
    void keys(std::span<const std::string_view> known);

    /// True when the map has `key` (even with an invalid value).
    bool has(std::string_view key) const;

    /// The map under `key`; its own reader calls keys().
    section sub(std::string_view key) const;
    /// The maps of the list under `key` ("targets"), each with its item path.
    std::vector<section> items(std::string_view key) const;
    /// The maps under `key` by their own keys (`services: {PF9KMXH: {...}}`). `what` names
    /// the keys in the "expected a map of ..." message.
    std::vector<std::pair<std::string, section>> entries(std::string_view key, std::string_view what) const;
    /// The same for this map itself.
    std::vector<std::pair<std::string, section>> children(std::string_view what) const;

    // Each get() leaves `field` as it is (its default) when the key is absent, and reports
    // and leaves it when the value is invalid.

    /// A duration ("90s", "30m", "1h30m"); at least `min` (1ms: "must be greater than 0").
    void get(std::string_view key, std::chrono::milliseconds& field, std::chrono::milliseconds min);
    /// A whole number, at least `min`.
    void get(std::string_view key, std::size_t& field, std::size_t min);
    /// true or false.
    void get(std::string_view key, bool& field);
    void get(std::string_view key, std::string& field, bool non_empty = false);
    /// A list of non-empty strings.
    void get(std::string_view key, std::vector<std::string>& field);
    /// A number in (above, at_most].
    void get(std::string_view key, double& field, double above, double at_most);
    /// A TCP port, 1 to 65535.
    void port(std::string_view key, std::uint16_t& field);

    /// The value's index in `choices`, or nullopt (absent, or reported).
    std::optional<std::size_t> choice(std::string_view key, std::span<const std::string_view> choices);
    /// A string (after ${VAR}), or nullopt (absent, or reported).
    std::optional<std::string> string(std::string_view key, bool non_empty = false);
    /// A list of non-empty strings, or nullopt (absent, or reported).
    std::optional<std::vector<std::string>> strings(std::string_view key);

    /// A base URL (parse_base_url).
    void url(std::string_view key, std::string& field, const url_rules& rules = {});
    /// The path of a file that must be readable now; `what` names it in messages
    /// ("CA file"). An empty value keeps the field empty.
    void file(std::string_view key, std::string& field, std::string_view what);
    /// `key` inline or `key_file` (its contents, trimmed), never both. The value never
    /// appears in a message; a file's path does. Returns the file's path when the value came
    /// from `key_file`, else "".
    std::string secret(std::string_view key, runbookd::secret<std::string>& field);
    /// Several secrets (rotation): the list under `key`, then one per non-empty line of
    /// `key_file`. Appends to `field`.
    void secrets(std::string_view key, std::vector<runbookd::secret<std::string>>& field);
    /// A string that `check` accepts (it returns "" or why not). A rejection is reported as
    /// "'value': why", quoting the value as written, never one from the environment, and
    /// never its credentials (redact_credentials).
    std::optional<std::string> checked(
        std::string_view key, const std::function<std::string(const std::string&)>& check
    );
    /// `key_file`'s contents read whole (a key file); nullopt when absent or unreadable
    /// (reported). `path` gets the file's path.
    std::optional<std::string> file_contents(std::string_view key, std::string& path, std::string_view what);

    /// Reports a problem at `key`'s value, or at this map when the key is absent.
    void report(std::string_view key, std::string message);
    /// Reports a problem at this map itself (its key, or the document's start).
    void report_here(std::string message);
    /// Reports a problem at `key` itself (a key that must not be there).
    void report_key(std::string_view key, std::string message);
    /// Reports a problem at item `i` of the list under `key`.
    void report_item(std::string_view key, std::size_t i, std::string message);

    /// Problems reported so far in the whole document (to stay quiet after one).
    std::size_t problem_count() const;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace runbookd::yaml
