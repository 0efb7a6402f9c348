#pragma once
// `probes:` (docs/sources/probes.md): the HTTP(S) endpoints the probes source checks.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::probes {

/// HTTP statuses a target may answer with, from `from` to `to` (inclusive).
struct status_range {
    unsigned from = 200;
    unsigned to = 299;
    friend bool operator==(const status_range&, const status_range&) = default;
};

/// The ops canvases of the runbook a target may stand for: "sign-up" (the ops-adduser canvas,
/// accounts.darklang.com), "sign-in" (login.darklang.com), "editor" (presence, the
/// dark-editor canvas) or "other"; "" when the target is not an ops canvas.
inline constexpr std::string_view canvas_names[] = {"sign-up", "sign-in", "editor", "other"};

/// One URL to check.
struct target {
    std::string name;            ///< the signals' subject and `target` label; default: the URL's host
    std::string url;             ///< http:// or https://, no credentials or fragment
    std::string method = "GET";  ///< GET or HEAD
    std::vector<status_range> expect{{200, 299}};  ///< the statuses that pass
    std::string body_contains;             ///< "" or a text the body's first max_body_read bytes must contain
    std::chrono::milliseconds timeout{0};  ///< 0: the section's
    std::chrono::milliseconds interval{0};  ///< 0: the section's
    std::vector<std::string> services;      ///< ids under `services:`; empty: every service
    std::string ops_canvas;                 ///< one of canvas_names, or ""
    std::string ca_file;                    ///< "": the section's, else the system trust store

    friend bool operator==(const target&, const target&) = default;
};

/// Off while no target is listed.
struct config {
    std::vector<target> targets;
    std::chrono::milliseconds interval = std::chrono::seconds{30};  ///< between checks of a target, jittered
    std::chrono::milliseconds timeout = std::chrono::seconds{10};   ///< per check: resolve to last byte read
    std::size_t concurrency = 16;                                   ///< checks in flight at once
    /// Failed checks in a row before a target counts as failing (probe.failure).
    std::size_t failures_before_alert = 2;
    /// Flapping: at least `flap_changes` pass/fail changes among a target's last
    /// `flap_window` checks. A flapping target's failures count at once.
    std::size_t flap_window = 10;
    std::size_t flap_changes = 4;
    std::string ca_file;  ///< default trust for https targets; empty: the system trust store

    bool enabled() const noexcept { return !targets.empty(); }
    friend bool operator==(const config&, const config&) = default;
};

/// Reads the section; every problem goes to `s` with its position.
void read(yaml::section& s, config& out);

}  // namespace runbookd::sources::probes
