#include "sources/gcp_status/parse.hpp"

#include "sources/google/json.hpp"

#include <algorithm>
#include <cctype>

namespace runbookd::sources::gcp_status {
namespace {

using namespace google::json_read;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    return s;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) {
        out += (out.empty() ? "" : ", ") + i;
    }
    return out;
}

}  // namespace

result<std::vector<status_incident>> parse_status_feed(std::string_view body) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_array()) {
        return bad("the status feed is not a JSON array");
    }
    std::vector<status_incident> out;
    for (const auto& i : doc) {
        if (!i.is_object() || text(i, "id").empty()) {
            continue;
        }
        status_incident inc;
        inc.id = text(i, "id");
        inc.title = text(i, "external_desc");
        inc.severity = text(i, "severity");
        inc.impact = text(i, "status_impact");
        inc.begin = parse_rfc3339(text(i, "begin"));
        inc.open = field(i, "end").is_null() || text(i, "end").empty();
        for (const auto& p :
             field(i, "affected_products").is_array() ? field(i, "affected_products") : json::array()) {
            if (const auto title = text(p, "title"); !title.empty()) {
                inc.products.push_back(title);
            }
        }
        const json* where = &field(i, "currently_affected_locations");
        if (!where->is_array() || where->empty()) {
            where = &field(field(i, "most_recent_update"), "affected_locations");
        }
        for (const auto& l : where->is_array() ? *where : json::array()) {
            if (const auto id = text(l, "id"); !id.empty()) {
                inc.locations.push_back(id);
            }
        }
        const std::string uri = text(i, "uri");
        inc.url = uri.starts_with("https://") ? uri
                  : uri.empty()               ? std::string{}
                                              : "https://status.cloud.google.com/" + uri;
        out.push_back(std::move(inc));
    }
    return out;
}

std::vector<signal> incident_signals(
    const std::vector<status_incident>& incidents,
    const std::vector<std::string>& products,
    const std::vector<std::string>& locations,
    wall_time now
) {
    std::vector<signal> out;
    for (const auto& inc : incidents) {
        if (!inc.open) {
            continue;
        }
        std::vector<std::string> touched;
        for (const auto& p : inc.products) {
            const bool wanted = std::any_of(products.begin(), products.end(), [&](const std::string& want) {
                return lower(want) == lower(p);
            });
            if (wanted) {
                touched.push_back(p);
            }
        }
        const bool here =
            locations.empty() ||
            std::any_of(inc.locations.begin(), inc.locations.end(), [&](const std::string& l) {
                return l == "global" || std::find(locations.begin(), locations.end(), l) != locations.end();
            });
        if (touched.empty() || !here) {
            continue;
        }
        signal s;
        s.set_kind("gcp.incident");
        // A sample of an open incident, dated when it was seen open: a long outage stays
        // inside rule windows and the log's retention for as long as it lasts. The time is
        // the daemon's, and the signal says so (`seen`).
        s.at = now;
        s.seen = true;
        s.subject = inc.id;
        s.source = "gcp_status";
        s.set("product", joined(touched));
        s.set("severity", inc.severity);
        s.set("locations", joined(inc.locations));
        s.set("title", inc.title);
        s.set("url", inc.url);
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace runbookd::sources::gcp_status
