#include "intake/alertmanager/config.hpp"

#include "yaml/section.hpp"

#include <algorithm>
#include <string_view>

namespace runbookd::intake::alertmanager {
namespace {

constexpr std::string_view keys[] = {
    "bearer_tokens",
    "bearer_tokens_file",
    "basic_auth",
    "priorities",
    "severity_label",
    "dedupe_capacity",
};

void read_basic_auth(yaml::section& s, config& out) {
    s.keys({"username", "password", "password_file"});
    const std::size_t before = s.problem_count();
    s.get("username", out.basic_username, true);
    s.secret("password", out.basic_password);
    if (s.problem_count() != before) {
        return;
    }
    if (out.basic_username.empty()) {
        s.report_here("username is required with basic_auth");
    } else if (out.basic_password.empty()) {
        s.report_here("password or password_file is required with basic_auth");
    } else if (out.basic_username.find(':') != std::string::npos) {
        s.report("username", "must not contain ':' (RFC 7617)");
    }
}

void read_priorities(yaml::section& s, config& out) {
    if (!s.has("priorities")) {
        return;
    }
    auto map = s.sub("priorities");
    std::vector<std::string> names;
    for (auto& [severity, value] : map.children("severity values")) {
        names.push_back(severity);
    }
    std::vector<std::string_view> views(names.begin(), names.end());
    map.keys(views);
    out.priorities.clear();
    for (const auto& severity : names) {
        if (auto p = map.string(severity, true)) {
            out.priorities.emplace_back(severity, std::move(*p));
        }
    }
}

}  // namespace

void read(yaml::section& s, config& out) {
    s.keys(keys);
    const std::size_t before = s.problem_count();
    out.bearer_tokens.clear();
    s.secrets("bearer_tokens", out.bearer_tokens);
    if (s.has("basic_auth")) {
        auto basic = s.sub("basic_auth");
        read_basic_auth(basic, out);
    }
    read_priorities(s, out);
    s.get("severity_label", out.severity_label, true);
    s.get("dedupe_capacity", out.dedupe_capacity, 1);
    const bool mentioned =
        std::any_of(std::begin(keys), std::end(keys), [&](std::string_view k) { return s.has(k); });
    // Only when nothing else went wrong: an unset ${VAR} already explains the absence.
    if (mentioned && !out.enabled() && s.problem_count() == before) {
        s.report_here(
            "Alertmanager must authenticate: set bearer_tokens (or bearer_tokens_file), or basic_auth, "
            "as its webhook_configs' http_config sends them"
        );
    }
}

}  // namespace runbookd::intake::alertmanager
