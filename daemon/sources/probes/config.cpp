#include "sources/probes/config.hpp"

#include "sources/probes/parse.hpp"
#include "yaml/section.hpp"

#include <algorithm>

namespace runbookd::sources::probes {

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys(
        {"targets",
         "interval",
         "timeout",
         "concurrency",
         "failures_before_alert",
         "flap_window",
         "flap_changes",
         "ca_file"}
    );
    s.get("interval", out.interval, 1s);
    s.get("timeout", out.timeout, 1ms);
    s.get("concurrency", out.concurrency, 1);
    s.get("failures_before_alert", out.failures_before_alert, 1);
    s.get("flap_window", out.flap_window, 2);
    s.get("flap_changes", out.flap_changes, 1);
    s.file("ca_file", out.ca_file, "CA file");
    if (out.flap_changes >= out.flap_window && s.has("flap_changes")) {
        s.report("flap_changes", "must be less than flap_window (" + std::to_string(out.flap_window) + ")");
    }
    static constexpr std::string_view methods[] = {"GET", "HEAD"};
    for (auto& item : s.items("targets")) {
        item.keys(
            {"name",
             "url",
             "method",
             "expect_status",
             "body_contains",
             "timeout",
             "interval",
             "services",
             "ops_canvas",
             "ca_file"}
        );
        target t;
        std::optional<endpoint> where;
        if (auto url = item.checked("url", [&](const std::string& u) {
                auto p = parse_url(u);
                where = p.where;
                return p.reason;
            })) {
            t.url = std::move(*url);
        } else if (!item.has("url")) {
            item.report("url", "required: the http:// or https:// URL to check");
        }
        item.get("name", t.name, true);
        if (t.name.empty() && where) {
            t.name = where->host;
        }
        if (const auto m = item.choice("method", methods)) {
            t.method = std::string{methods[*m]};
        }
        if (auto codes = item.strings("expect_status")) {
            std::vector<status_range> expect;
            for (const auto& c : *codes) {
                if (auto r = parse_status(c)) {
                    expect.push_back(*r);
                } else {
                    item.report(
                        "expect_status",
                        "'" + c + "' is not a status (100 to 599), a class (2xx) or a range (200-299)"
                    );
                }
            }
            if (!expect.empty()) {
                t.expect = std::move(expect);
            } else if (codes->empty()) {
                item.report("expect_status", "list at least one status");
            }
        }
        item.get("body_contains", t.body_contains, true);
        if (t.method == "HEAD" && !t.body_contains.empty()) {
            item.report("body_contains", "a HEAD request has no body to search: use GET");
        }
        item.get("timeout", t.timeout, 1ms);
        item.get("interval", t.interval, 1s);
        item.get("services", t.services);
        if (const auto c = item.choice("ops_canvas", canvas_names)) {
            t.ops_canvas = std::string{canvas_names[*c]};
        }
        item.file("ca_file", t.ca_file, "CA file");
        if (t.url.empty() || t.name.empty()) {
            continue;
        }
        const auto same = std::find_if(out.targets.begin(), out.targets.end(), [&](const target& o) {
            return o.name == t.name;
        });
        if (same != out.targets.end()) {
            item.report(
                item.has("name") ? "name" : "url",
                "'" + t.name + "' is already a target's name (give each target its own `name`)"
            );
            continue;
        }
        out.targets.push_back(std::move(t));
    }
}

}  // namespace runbookd::sources::probes
