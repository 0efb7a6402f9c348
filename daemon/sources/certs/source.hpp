#pragma once
// The certs source (docs/sources/certs.md): every `interval` (jittered), a round of TLS
// handshakes with the configured targets, a few at a time; each target's result becomes a
// cert.expiry signal the moment its check ends, and the certificate metrics.

#include "sources/certs/check.hpp"
#include "sources/certs/config.hpp"
#include "sources/source.hpp"

#include <chrono>
#include <memory>

namespace runbookd::sources::certs {

/// The cert.expiry signal of one check made at `at`: the outcome and its reason; the
/// earliest-expiring certificate of the chain (`not_after`, `which`: leaf, intermediate or
/// root; the value is the seconds from `at` to it, negative once it has passed); the
/// server's own certificate (`cert_subject`, `issuer`, `sans`); the target's `services`
/// ("*": every service); `expires_soon` when the earliest not_after is ahead but within
/// `warn_within`. Without a chain (refused, timed out) there is no value and the
/// certificate labels are empty.
signal expiry_signal(
    const target& t, const check_result& r, wall_time at, std::chrono::milliseconds warn_within
);

/// nullptr while no target is listed. Throws std::runtime_error when a CA file cannot be
/// loaded.
std::unique_ptr<sources::source> make(const config& cfg, context& cx);

}  // namespace runbookd::sources::certs
