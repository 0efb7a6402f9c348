#include "config/config.hpp"

#include "crypto/digest.hpp"
#include "rules/tuning.hpp"
#include "yaml/section.hpp"
#include "yaml/services.hpp"
#include "yaml/walker.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <vector>

namespace runbookd::config {
namespace {

using namespace std::chrono_literals;

constexpr std::array<std::string_view, 4> log_levels{"debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 2> notifier_kinds{"discord", "console"};

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
        if (!yaml::is_ipv6(host)) {
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
        if (!yaml::is_ipv4(host)) {
            return {
                {},
                0,
                "the address must be a numeric IPv4 or IPv6 address; host names are not "
                "resolved (use e.g. 0.0.0.0 or 127.0.0.1)"};
        }
    }
    std::uint16_t port = 0;
    if (!yaml::valid_port(port_text, port)) {
        return {{}, 0, "the port must be a number from 0 to 65535"};
    }
    return {std::move(host), port, {}};
}

// ---------------------------------------------------------------------------------------------
// The root sections: the daemon's own. Each integration reads its own section (each_section).

void read_server(yaml::section& s, server_config& out) {
    s.keys(
        {"listen",
         "admin_listen",
         "max_body_bytes",
         "header_timeout",
         "body_timeout",
         "idle_timeout",
         "max_connections",
         "max_connections_per_client"}
    );
    listen_parts listen;
    if (s.checked("listen", [&](const std::string& text) {
            listen = parse_listen(text);
            return listen.reason;
        })) {
        out.address = std::move(listen.address);
        out.port = listen.port;
    }
    listen_parts admin;
    if (s.checked("admin_listen", [&](const std::string& text) {
            admin = parse_listen(text);
            if (admin.reason.empty() && admin.port != 0 && admin.port == out.port &&
                (admin.address == out.address || admin.address == "0.0.0.0" || out.address == "0.0.0.0")) {
                return std::string{"must be another port than server.listen's"};
            }
            return admin.reason;
        })) {
        out.admin = listen_address{std::move(admin.address), admin.port};
    }
    s.get("max_body_bytes", out.max_body_bytes, 1);
    s.get("header_timeout", out.header_timeout, 1ms);
    s.get("body_timeout", out.body_timeout, 1ms);
    s.get("idle_timeout", out.idle_timeout, 1ms);
    s.get("max_connections", out.max_connections, 1);
    s.get("max_connections_per_client", out.max_connections_per_client, 1);
}

void read_log(yaml::section& s, log_config& out) {
    s.keys({"level"});
    if (auto i = s.choice("level", log_levels)) {
        constexpr std::array levels{log_level::debug, log_level::info, log_level::warn, log_level::error};
        out.level = levels.at(*i);
    }
}

void read_status(yaml::section& s, status_config& out) {
    s.keys({"reminder_interval", "default_impact"});
    s.get("reminder_interval", out.reminder_interval, 1s);
    s.get("default_impact", out.default_impact, true);
}

// Returns false when notify.kind was set but invalid, so dependent checks can stay quiet.
bool read_notify(yaml::section& s, notify_config& out) {
    s.keys({"kind", "drain_timeout", "coalesce_window", "max_queued_posts"});
    bool kind_known = true;
    if (s.has("kind")) {
        const auto i = s.choice("kind", notifier_kinds);
        kind_known = i.has_value();
        if (i) {
            out.kind = *i == 0 ? notifier_kind::discord : notifier_kind::console;
        }
    }
    s.get("drain_timeout", out.drain_timeout, 1ms);
    s.get("coalesce_window", out.coalesce_window, 0ms);
    s.get("max_queued_posts", out.max_queued_posts, 10);
    return kind_known;
}

void read_rules(yaml::section& s, rules_config& out) {
    s.keys({"files", "overrides"});  // overrides: rules::read_tuning
    s.get("files", out.files);
}

void read_operations(yaml::section& s, operations_config& out) {
    s.keys({"edit_interval", "gather_deadline", "dominance_share", "min_share", "max_suspects"});
    s.get("edit_interval", out.edit_interval, 0ms);
    s.get("gather_deadline", out.gather_deadline, 0ms);
    s.get("dominance_share", out.dominance_share, 0.0, 1.0);
    s.get("min_share", out.min_share, 0.0, 1.0);
    s.get("max_suspects", out.max_suspects, 1);
}

void read_signals(yaml::section& s, signals_config& out) {
    s.keys({"retention", "max_signals"});
    s.get("retention", out.retention, 1min);
    s.get("max_signals", out.max_signals, 1);
}

void read_limits(yaml::section& s, limits_config& out) {
    s.keys({"max_open_incidents", "storm_threshold", "storm_window", "storm_edit_interval"});
    s.get("max_open_incidents", out.max_open_incidents, 1);
    s.get("storm_threshold", out.storm_threshold, 0);
    s.get("storm_window", out.storm_window, 1s);
    s.get("storm_edit_interval", out.storm_edit_interval, 0ms);
}

/// The root's keys: its own sections, every integration's, then `services`.
std::vector<std::string_view> root_keys() {
    std::vector<std::string_view> keys{
        "server", "log", "status", "notify", "rules", "calendars", "operations", "signals", "limits"};
    each_section([&](std::string_view name, auto) { keys.push_back(name); });
    keys.push_back("services");
    return keys;
}

void read_root(yaml::section& top, config& cfg) {
    const auto keys = root_keys();
    top.keys(keys);
    const auto root = [&](std::string_view name, auto reader, auto& field) {
        auto s = top.sub(name);
        return reader(s, field);
    };
    root("server", read_server, cfg.server);
    root("log", read_log, cfg.log);
    root("status", read_status, cfg.status);
    const bool kind_known = root("notify", read_notify, cfg.notify);
    root("rules", read_rules, cfg.rules);
    root("operations", read_operations, cfg.operations);
    root("signals", read_signals, cfg.signals);
    root("limits", read_limits, cfg.limits);
    cfg.services = yaml::read_services(top.sub("services"));

    std::optional<yaml::section> discord;
    std::optional<yaml::section> google;
    std::optional<yaml::section> certs;
    std::optional<yaml::section> probes;
    each_section([&](std::string_view name, auto member) {
        auto s = top.sub(name);
        read(s, cfg.*member);
        if (name == "discord") {
            discord.emplace(std::move(s));
        } else if (name == "google") {
            google.emplace(std::move(s));
        } else if (name == "certs") {
            certs.emplace(std::move(s));
        } else if (name == "probes") {
            probes.emplace(std::move(s));
        }
    });

    // Checks across sections.
    // A webhook that is present but invalid has been reported where it is.
    if (kind_known && cfg.notify.kind == notifier_kind::discord && !cfg.discord.status.configured() &&
        !discord->has("status_webhook_url") && !discord->has("status_webhook_url_file")) {
        discord->report(
            "status_webhook_url",
            "required when notify.kind is discord (set status_webhook_url or status_webhook_url_file)"
        );
    }
    if (cfg.cloudsql.enabled() && cfg.google.project.empty()) {
        google->report("project", "required for cloudsql (or a key_file whose project_id names it)");
    }
    if (cfg.postgres.configured() && cfg.postgres.instance.empty()) {
        // One name for the database in both sources' signals, when it is Cloud SQL.
        cfg.postgres.instance = cfg.cloudsql.enabled() ? cfg.cloudsql.instance : cfg.postgres.where;
    }
    for (std::size_t i = 0; i < cfg.certs.targets.size(); ++i) {
        for (const auto& id : cfg.certs.targets[i].services) {
            if (!cfg.services.contains(id)) {
                certs->report(
                    "targets",
                    "target " + cfg.certs.targets[i].host + ": '" + id + "' is not a service under services:"
                );
            }
        }
    }
    for (const auto& t : cfg.probes.targets) {
        for (const auto& id : t.services) {
            if (!cfg.services.contains(id)) {
                probes->report(
                    "targets", "target " + t.name + ": '" + id + "' is not a service under services:"
                );
            }
        }
    }
}

load_result run(std::string_view yaml_text, std::string_view file, const env_lookup& env) {
    config cfg;
    cfg.hash = crypto::sha256_hex(yaml_text);
    yaml::walker w{std::string{file}};
    // yaml-cpp's messages are fixed texts ("end of map not found"); they never quote the
    // document, so a secret cannot leak through them.
    if (auto root = w.document(yaml_text)) {
        try {
            const YAML::Mark start = root->IsDefined() ? root->Mark() : YAML::Mark::null_mark();
            auto top = yaml::make_section(w, &env, *root, start, "");
            read_root(top, cfg);
            // calendars: and rules.overrides: tune the rule pack; they are checked against it
            // when it loads (rules::load(files, tuning)).
            rules::read_tuning(w, *root, cfg.rules.tuning);
        } catch (const std::exception& e) {
            // The walk only reads nodes it has type-checked; this is a bug, not bad input.
            w.report(YAML::Mark::null_mark(), "", std::string{"internal error: "} + e.what());
        }
    }
    load_result out;
    out.problems = w.take();
    if (out.problems.empty()) {
        out.value = std::move(cfg);
    }
    return out;
}

}  // namespace

engine_settings config::engine() const {
    engine_settings s;
    s.reminder_interval = status.reminder_interval;
    s.default_impact = status.default_impact;
    s.services = services;
    s.operations.edit_interval = operations.edit_interval;
    s.operations.gather_deadline = operations.gather_deadline;
    s.operations.dominance_share = operations.dominance_share;
    s.operations.min_share = operations.min_share;
    s.operations.max_suspects = operations.max_suspects;
    s.signals.retention = signals.retention;
    s.signals.max_signals = signals.max_signals;
    s.limits.max_open_incidents = limits.max_open_incidents;
    s.limits.storm_threshold = limits.storm_threshold;
    s.limits.storm_window = limits.storm_window;
    s.limits.storm_edit_interval = limits.storm_edit_interval;
    return s;
}

load_result parse(std::string_view yaml_text, std::string_view file, const env_lookup& env) {
    return run(yaml_text, file, env);
}

load_result load(const std::string& path, const env_lookup& env) {
    auto f = yaml::read_whole_file(path);
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
