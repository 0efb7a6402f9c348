#include "sources/certs/config.hpp"

#include "yaml/section.hpp"

#include <algorithm>

namespace runbookd::sources::certs {
namespace {

/// A DNS name (RFC 1123 labels, case-insensitive) or an IP literal.
std::string check_host(const std::string& h) {
    if (yaml::is_ipv4(h) || yaml::is_ipv6(h)) {
        return {};
    }
    if (h.size() > 253) {
        return "a host name is at most 253 characters";
    }
    std::size_t label = 0;
    for (std::size_t i = 0; i <= h.size(); ++i) {
        if (i == h.size() || h[i] == '.') {
            if (label == 0 || label > 63) {
                return "not a host name (labels of 1 to 63 letters, digits or '-', separated by '.')";
            }
            label = 0;
            continue;
        }
        const char c = h[i];
        const bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok) {
            return "not a host name (labels of 1 to 63 letters, digits or '-', separated by '.')";
        }
        ++label;
    }
    return {};
}

}  // namespace

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys({"targets", "interval", "timeout", "concurrency", "warn_within", "ca_file"});
    s.get("interval", out.interval, 1s);
    s.get("timeout", out.timeout, 1ms);
    s.get("concurrency", out.concurrency, 1);
    s.get("warn_within", out.warn_within, 0ms);
    s.file("ca_file", out.ca_file, "CA file");
    for (auto& item : s.items("targets")) {
        item.keys({"host", "port", "address", "ca_file", "services"});
        target t;
        if (auto host = item.checked("host", check_host)) {
            t.host = std::move(*host);
        } else if (!item.has("host")) {
            item.report("host", "required: the name the certificate must carry (sent as SNI)");
        }
        item.port("port", t.port);
        // "" is the default: resolve the host.
        if (auto address = item.checked("address", [](const std::string& a) {
                return a.empty() ? std::string{} : check_host(a);
            })) {
            t.address = std::move(*address);
        }
        item.file("ca_file", t.ca_file, "CA file");
        item.get("services", t.services);
        if (t.host.empty()) {
            continue;
        }
        const auto same = std::find_if(out.targets.begin(), out.targets.end(), [&](const target& o) {
            return o.host == t.host && o.port == t.port && o.address == t.address;
        });
        if (same != out.targets.end()) {
            item.report("host", "'" + t.host + ":" + std::to_string(t.port) + "' is already a target");
            continue;
        }
        out.targets.push_back(std::move(t));
    }
}

}  // namespace runbookd::sources::certs
