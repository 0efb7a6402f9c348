#include "sources/kubernetes/config.hpp"

#include "yaml/section.hpp"

#include <algorithm>
#include <array>

namespace runbookd::sources::kubernetes {

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys(
        {"enabled",
         "kubeconfig",
         "context",
         "namespaces",
         "nodes",
         "version_interval",
         "watch_timeout",
         "request_timeout",
         "service_account_dir"}
    );
    constexpr std::array<std::string_view, 3> modes{"auto", "true", "false"};
    if (auto v = s.choice("enabled", modes)) {
        out.enabled = std::array{config::mode::automatic, config::mode::on, config::mode::off}[*v];
    }
    s.file("kubeconfig", out.kubeconfig, "kubeconfig");
    s.get("context", out.context);
    if (auto list = s.strings("namespaces")) {
        for (std::size_t i = 0; i < list->size(); ++i) {
            const std::string& ns = (*list)[i];
            const bool dns_label = ns.size() <= 63 && std::all_of(ns.begin(), ns.end(), [](char c) {
                                       return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-';
                                   });
            if (ns == "*" ? list->size() != 1 : !dns_label) {
                s.report_item(
                    "namespaces",
                    i,
                    ns == "*" ? std::string{"'*' (every namespace) stands alone"}
                              : "'" + ns + "' is not a namespace name (lower-case letters, digits, '-')"
                );
            }
        }
        out.namespaces = std::move(*list);
    }
    s.get("nodes", out.nodes);
    s.get("version_interval", out.version_interval, 1s);
    s.get("watch_timeout", out.watch_timeout, 1s);
    s.get("request_timeout", out.request_timeout, 1ms);
    s.get("service_account_dir", out.service_account_dir, true);
}

}  // namespace runbookd::sources::kubernetes
