#include "yaml/services.hpp"

#include "core/chars.hpp"
#include "core/selector.hpp"

#include <algorithm>

namespace runbookd::yaml {
namespace {}  // namespace

bool valid_workload(std::string_view w) {
    const auto slash = w.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == w.size()) {
        return false;
    }
    if (const std::string_view selector = w.substr(slash + 1); selector.find('=') != std::string_view::npos) {
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

std::map<std::string, service_info, std::less<>> read_services(const section& services) {
    std::map<std::string, service_info, std::less<>> out;
    for (auto& [id, svc] : services.children("PagerDuty service ids")) {
        if (out.contains(id)) {
            svc.report_here("duplicate service id '" + id + "'");
            continue;
        }
        if (id.empty() || !std::all_of(id.begin(), id.end(), is_alnum)) {
            svc.report_here("'" + id + "' is not a PagerDuty service id (letters and digits, e.g. PF9KMXH)");
            continue;
        }
        svc.keys({"name", "impact", "kubernetes"});
        const std::size_t before = svc.problem_count();
        service_info info;
        if (auto name = svc.string("name", true)) {
            info.name = std::move(*name);
        } else if (!svc.has("name") && svc.problem_count() == before) {
            svc.report("name", "required: the service's name as users see it");
        }
        svc.get("impact", info.impact);
        if (auto workloads = svc.strings("kubernetes")) {
            for (std::size_t i = 0; i < workloads->size(); ++i) {
                if (!valid_workload((*workloads)[i])) {
                    svc.report_item(
                        "kubernetes",
                        i,
                        "'" + (*workloads)[i] +
                            "' is not namespace/deployment or namespace/label=value (lower-case names; "
                            "'*' alone or at the end of either part)"
                    );
                }
            }
            info.workloads = std::move(*workloads);
        }
        // Kept even when the service has problems, so a repeated id is still reported.
        out.emplace(id, std::move(info));
    }
    return out;
}

}  // namespace runbookd::yaml
