#include "intake/deploys/config.hpp"

#include "yaml/section.hpp"

namespace runbookd::intake::deploys {

void read(yaml::section& s, config& out) {
    s.keys(
        {"github_secrets",
         "github_secrets_file",
         "generic_secrets",
         "generic_secrets_file",
         "max_age",
         "timestamp_tolerance",
         "workflows",
         "dedupe_capacity"}
    );
    const std::size_t before = s.problem_count();
    out.github_secrets.clear();
    out.generic_secrets.clear();
    s.secrets("github_secrets", out.github_secrets);
    s.secrets("generic_secrets", out.generic_secrets);
    // Settings without any secret are a mistake (the intake would silently be off); only
    // when nothing else went wrong: an unset ${VAR} already explains the absence.
    const bool settings_given =
        s.has("max_age") || s.has("timestamp_tolerance") || s.has("workflows") || s.has("dedupe_capacity");
    if (!out.enabled() && settings_given && s.problem_count() == before) {
        s.report_here(
            "at least one secret is required (github_secrets, github_secrets_file, generic_secrets or "
            "generic_secrets_file)"
        );
    }
    s.get("max_age", out.max_age, std::chrono::seconds{1});
    s.get("timestamp_tolerance", out.timestamp_tolerance, std::chrono::seconds{1});
    s.get("workflows", out.workflows);
    s.get("dedupe_capacity", out.dedupe_capacity, 1);
}

}  // namespace runbookd::intake::deploys
