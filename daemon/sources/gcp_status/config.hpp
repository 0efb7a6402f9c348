#pragma once
// `gcp_status:` (docs/configuration.md#gcp_status): the public Google Cloud status feed.

#include <chrono>
#include <string>
#include <vector>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::gcp_status {

struct config {
    bool enabled = false;
    std::string url = "https://status.cloud.google.com/incidents.json";
    std::chrono::milliseconds interval = std::chrono::minutes{5};
    std::vector<std::string> products{
        "Cloud SQL",
        "Google Kubernetes Engine",
        "Cloud Load Balancing",
        "Cloud Pub/Sub",
        "Google Compute Engine"};
    std::vector<std::string> locations;  ///< empty: every location

    friend bool operator==(const config&, const config&) = default;
};

void read(yaml::section& s, config& out);

}  // namespace runbookd::sources::gcp_status
