#pragma once
// Google access tokens (api-facts §3.1): from the GKE metadata server (Workload Identity)
// or a service-account key, whose JWT (RS256) is exchanged at the token endpoint. Cached
// until shortly before they expire; a 401 for the token in use fetches a new one.

#include "core/error.hpp"
#include "core/time.hpp"
#include "log/log.hpp"
#include "loop/clock.hpp"
#include "net/http_client.hpp"
#include "sources/google/config.hpp"
#include "sources/google/parse.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::sources::google {

/// The signed JWT of the grant: header {alg RS256, typ JWT, kid}, claims {iss, scope, aud,
/// iat, exp}, iat back-dated 10 s for clock skew and exp one hour after it (the most Google
/// accepts).
result<std::string> make_assertion(
    const service_account_key& key, std::string_view scopes, std::string_view audience, wall_time now
);

/// An access token and when it expires.
struct access_token {
    std::string token;
    wall_time expires;
};

/// Reads a token answer ({"access_token","expires_in","token_type":"Bearer"}) got at `now`.
result<access_token> parse_token_reply(std::string_view body, wall_time now);

/// Where tokens come from.
struct credential_settings {
    enum class kind { metadata, service_account };
    kind from = kind::metadata;
    std::string metadata_url = "http://169.254.169.254";  ///< scheme://host[:port]
    service_account_key key;                              ///< kind::service_account
    std::string token_url;  ///< overrides key.token_uri (tests); also the JWT's audience
    std::vector<std::string> scopes{"https://www.googleapis.com/auth/cloud-platform"};
    std::chrono::milliseconds timeout = std::chrono::seconds{10};
};

/// Where `g` says tokens come from: the key file when `credentials` is key_file, or
/// automatic with a key file named; else the metadata server. An error says why the key
/// file cannot be read (never its contents).
result<credential_settings> credentials_for(const config& g);

/// Runs on the loop executor; not thread-safe.
class credentials {
public:
    credentials(
        boost::asio::any_io_executor ex, net::http_client& http, credential_settings settings, log::logger log
    );
    ~credentials();
    credentials(const credentials&) = delete;
    credentials& operator=(const credentials&) = delete;

    /// "Bearer <token>". Concurrent callers share one fetch.
    boost::asio::awaitable<result<std::string>> authorization();

    /// An API answered 401 to `authorization` (the header sent): unless the token has been
    /// replaced meanwhile, the next call fetches a new one.
    void rejected(std::string_view authorization) noexcept;

    /// Where tokens come from, for logs: "metadata server", "service account NAME".
    std::string origin() const;

    /// A token is refreshed this long before it expires (golang/oauth2 uses 225 s: the
    /// metadata server's shortest cache is 4 minutes).
    static constexpr std::chrono::seconds early{225};

private:
    boost::asio::awaitable<result<access_token>> fetch();

    boost::asio::any_io_executor ex_;
    net::http_client& http_;
    credential_settings settings_;
    log::logger log_;
    std::optional<access_token> cached_;
    bool fetching_ = false;
    std::vector<loop::timer*> waiters_;  ///< callers waiting for the fetch in flight
};

}  // namespace runbookd::sources::google
