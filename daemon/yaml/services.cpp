#include "yaml/services.hpp"

#include "core/chars.hpp"
#include "core/label_matcher.hpp"
#include "core/selector.hpp"

#include <algorithm>

namespace runbookd::yaml {
namespace {

/// `services.<id>.postgres`: which database sessions are the service's.
void read_postgres(section& pg, service_info& info) {
    const std::size_t before = pg.problem_count();
    pg.keys({"applications", "users"});
    const auto patterns = [&](std::string_view key, std::string_view what, std::vector<std::string>& out) {
        auto list = pg.strings(key);
        if (!list) {
            return;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            if (!valid_session_pattern((*list)[i])) {
                pg.report_item(
                    key,
                    i,
                    "'" + (*list)[i] + "' is not " + std::string{what} + " ('*' alone or at the end only)"
                );
            }
        }
        out = std::move(*list);
    };
    patterns("applications", "an application_name pattern", info.postgres_applications);
    patterns("users", "a user name pattern", info.postgres_users);
    if (info.postgres_applications.empty() && info.postgres_users.empty() && pg.problem_count() == before) {
        pg.report_here("name the service's sessions by applications (application_name) or users");
    }
}

}  // namespace

bool valid_session_pattern(std::string_view p) {
    const auto star = p.find('*');
    return !p.empty() && (star == std::string_view::npos || star + 1 == p.size());
}

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

bool valid_github_route(std::string_view r) {
    const auto at = r.find('@');
    const std::string_view repo = r.substr(0, at);
    const auto slash = repo.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == repo.size() ||
        repo.find('/', slash + 1) != std::string_view::npos) {
        return false;
    }
    const auto name_char = [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; };
    if (!std::all_of(repo.begin(), repo.begin() + static_cast<std::ptrdiff_t>(slash), name_char) ||
        !std::all_of(repo.begin() + static_cast<std::ptrdiff_t>(slash) + 1, repo.end(), name_char)) {
        return false;
    }
    // GitHub environment names are free text; only an empty one is a mistake.
    return at == std::string_view::npos || at + 1 < r.size();
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
        svc.keys({"name", "impact", "kubernetes", "alertmanager", "github", "postgres"});
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
        if (auto matchers = svc.strings("alertmanager")) {
            for (std::size_t i = 0; i < matchers->size(); ++i) {
                if (auto m = parse_label_matcher((*matchers)[i]); !m.matcher) {
                    svc.report_item("alertmanager", i, "'" + (*matchers)[i] + "': " + m.reason);
                }
            }
            info.alertmanager = std::move(*matchers);
        }
        if (auto repos = svc.strings("github")) {
            for (std::size_t i = 0; i < repos->size(); ++i) {
                if (!valid_github_route((*repos)[i])) {
                    svc.report_item(
                        "github",
                        i,
                        "'" + (*repos)[i] +
                            "' is not owner/repo or owner/repo@environment (letters, digits, '-', '_', '.')"
                    );
                }
            }
            info.github = std::move(*repos);
        }
        if (svc.has("postgres")) {
            section pg = svc.sub("postgres");
            read_postgres(pg, info);
        }
        // Kept even when the service has problems, so a repeated id is still reported.
        out.emplace(id, std::move(info));
    }
    return out;
}

}  // namespace runbookd::yaml
