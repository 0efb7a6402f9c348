#include "sources/google/config.hpp"

#include "crypto/sign.hpp"
#include "sources/google/parse.hpp"
#include "yaml/section.hpp"

#include <array>

namespace runbookd::sources::google {

void read(yaml::section& s, config& out) {
    using namespace std::chrono_literals;
    s.keys(
        {"credentials",
         "key_file",
         "project",
         "metadata_url",
         "token_url",
         "monitoring_url",
         "sqladmin_url",
         "ca_file",
         "request_timeout",
         "scopes"}
    );
    constexpr std::array<std::string_view, 3> kinds{"auto", "metadata", "key_file"};
    if (auto v = s.choice("credentials", kinds)) {
        out.credentials = std::array{
            config::credential_kind::automatic,
            config::credential_kind::metadata,
            config::credential_kind::key_file}[*v];
    }
    std::string path;
    if (auto text = s.file_contents("key_file", path, "the key file")) {
        if (auto key = parse_key_file(*text); !key) {
            s.report("key_file", "'" + path + "': " + key.error().detail);
        } else if (std::string why; !crypto::rs256_sign(key->private_key, "runbookd", &why)) {
            s.report("key_file", "'" + path + "': its private_key cannot sign: " + why);
        } else if (const auto uri = yaml::parse_base_url(key->token_uri);
                   !key->token_uri.empty() && !uri.reason.empty()) {
            // The signed grant is a credential for an hour: it goes to https only.
            s.report("key_file", "'" + path + "': its token_uri: " + uri.reason);
        } else {
            out.key_json = secret<std::string>{std::move(*text)};
            if (out.project.empty()) {
                out.project = key->project_id;
            }
        }
    }
    if (!path.empty()) {
        out.key_file = std::move(path);
    }
    s.get("project", out.project, true);
    if (out.credentials == config::credential_kind::key_file && out.key_file.empty()) {
        s.report("key_file", "required when credentials is key_file");
    }
    // The metadata server's link-local address and name are never routed off the node.
    static constexpr std::array<std::string_view, 2> metadata_hosts{
        "169.254.169.254", "metadata.google.internal"};
    s.url(
        "metadata_url",
        out.metadata_url,
        {metadata_hosts,
         "plain http is allowed only for the metadata server (169.254.169.254, metadata.google.internal) or "
         "a loopback host"}
    );
    s.url("token_url", out.token_url);
    s.url("monitoring_url", out.monitoring_url);
    s.url("sqladmin_url", out.sqladmin_url);
    s.file("ca_file", out.ca_file, "CA file");
    s.get("request_timeout", out.request_timeout, 1ms);
    if (s.has("scopes")) {
        s.report_key("scopes", "scopes are fixed (cloud-platform); remove this key");
    }
}

}  // namespace runbookd::sources::google
