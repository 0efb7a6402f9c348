#pragma once
// `google:` (docs/configuration.md#google): access to Google Cloud APIs, shared by the
// `cloudsql` and `gcp_status` sources.

#include "core/secret.hpp"

#include <chrono>
#include <string>

namespace runbookd::yaml {
class section;
}

namespace runbookd::sources::google {

struct config {
    enum class credential_kind { automatic, metadata, key_file };
    /// automatic: the key file when one is named, else the metadata server.
    credential_kind credentials = credential_kind::automatic;
    std::string key_file;          ///< a service-account key (JSON); read at start
    secret<std::string> key_json;  ///< its contents
    std::string project;           ///< default: the key file's project_id
    std::string metadata_url = "http://169.254.169.254";
    std::string token_url;  ///< default: the key file's token_uri
    std::string monitoring_url = "https://monitoring.googleapis.com";
    std::string sqladmin_url = "https://sqladmin.googleapis.com";
    std::string ca_file;  ///< empty: the system trust store
    std::chrono::milliseconds request_timeout = std::chrono::seconds{10};

    friend bool operator==(const config&, const config&) = default;
};

void read(yaml::section& s, config& out);

}  // namespace runbookd::sources::google
