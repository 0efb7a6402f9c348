#include "sources/gcp_status/config.hpp"

#include "yaml/section.hpp"

namespace runbookd::sources::gcp_status {

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys({"enabled", "url", "interval", "products", "locations"});
    s.get("enabled", out.enabled);
    s.url("url", out.url);
    s.get("interval", out.interval, 1s);
    if (auto list = s.strings("products")) {
        if (list->empty()) {
            s.report("products", "must name at least one product (\"Cloud SQL\", as the feed titles it)");
        } else {
            out.products = std::move(*list);
        }
    }
    s.get("locations", out.locations);
}

}  // namespace runbookd::sources::gcp_status
