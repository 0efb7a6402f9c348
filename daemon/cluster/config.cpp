#include "cluster/config.hpp"

#include "yaml/section.hpp"

#include <algorithm>

namespace runbookd::cluster {

namespace {

bool lower_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

/// "" or why `name` is not an RFC 1123 DNS subdomain (a Lease's name; `dots` false: a DNS
/// label, a namespace's name).
std::string dns_name_problem(const std::string& name, bool dots) {
    const std::size_t max = dots ? 253 : 63;
    const bool chars_ok = std::all_of(name.begin(), name.end(), [&](char c) {
        return lower_alnum(c) || c == '-' || (dots && c == '.');
    });
    if (name.empty() || name.size() > max || !chars_ok || !lower_alnum(name.front()) ||
        !lower_alnum(name.back())) {
        return dots ? "not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253)"
                    : "not a namespace name (lower-case letters, digits and '-', at most 63)";
    }
    return {};
}

}  // namespace

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys(
        {"enabled",
         "namespace",
         "name",
         "identity",
         "lease_duration",
         "renew_deadline",
         "retry_period",
         "release_on_shutdown"}
    );
    s.get("enabled", out.enabled);
    // "" keeps the default (the service account's namespace), as written in example.yaml.
    if (auto ns = s.checked("namespace", [](const std::string& v) {
            return v.empty() ? std::string{} : dns_name_problem(v, false);
        })) {
        out.ns = std::move(*ns);
    }
    if (auto name = s.checked("name", [](const std::string& v) { return dns_name_problem(v, true); })) {
        out.name = std::move(*name);
    }
    s.get("identity", out.identity);  // "" = POD_NAME, else the host name
    s.get("lease_duration", out.lease_duration, 1s);
    s.get("renew_deadline", out.renew_deadline, 1ms);
    s.get("retry_period", out.retry_period, 1ms);
    s.get("release_on_shutdown", out.release_on_shutdown);

    // The Lease holds leaseDurationSeconds, a whole number.
    if (out.lease_duration % 1s != 0ms) {
        s.report("lease_duration", "must be whole seconds (the Lease holds leaseDurationSeconds)");
    }
    // A leader that cannot renew steps down renew_deadline after its last renewal was sent;
    // another replica waits lease_duration from when it saw that renewal. The difference is
    // the margin between the two, so it must be positive (client-go's own check).
    if (out.renew_deadline >= out.lease_duration) {
        s.report("renew_deadline", "must be shorter than lease_duration");
    }
    if (static_cast<double>(out.renew_deadline.count()) <=
        jitter_factor * static_cast<double>(out.retry_period.count())) {
        s.report("retry_period", "must be shorter than renew_deadline / 1.2 (client-go's JitterFactor)");
    }
}

}  // namespace runbookd::cluster
