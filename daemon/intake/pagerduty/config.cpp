#include "intake/pagerduty/config.hpp"

#include "yaml/section.hpp"

namespace runbookd::intake::pagerduty {

void read(yaml::section& s, config& out) {
    s.keys({"webhook_secrets", "webhook_secrets_file", "dedupe_capacity", "max_age"});
    const std::size_t before = s.problem_count();
    out.webhook_secrets.clear();
    s.secrets("webhook_secrets", out.webhook_secrets);
    // Only when nothing else went wrong: an unset ${VAR} already explains the absence.
    if (out.webhook_secrets.empty() && s.problem_count() == before) {
        s.report_key(
            "webhook_secrets",
            "at least one webhook signing secret is required (webhook_secrets or webhook_secrets_file)"
        );
    }
    s.get("dedupe_capacity", out.dedupe_capacity, 1);
    s.get("max_age", out.max_age, std::chrono::minutes{1});
}

}  // namespace runbookd::intake::pagerduty
