#pragma once
// Time in the core is always an argument: these are the types it is passed in.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace runbookd {

using millis = std::chrono::milliseconds;
/// Wall-clock instant, millisecond precision (timestamps in posts and signals).
using wall_time = std::chrono::sys_time<millis>;

/// "1h 05m", "12m", "45s": a duration as people read it in a post.
std::string human_duration(millis d);

/// "9 days", "1 day": a long duration in whole days, rounded down; under a day, as
/// human_duration says it ("20h 00m"). The sign is dropped.
std::string human_days(millis d);

/// "16:02 UTC": the time of day of an instant, as posts show it.
std::string clock_utc(wall_time t);

/// "72%": a ratio (0.72) as a whole percentage, rounded to nearest.
std::string percent_text(double ratio);

/// RFC 3339 UTC with milliseconds, e.g. "2026-11-24T10:00:00.000Z".
std::string format_rfc3339(wall_time t);

/// RFC 3339 UTC to the second, as a certificate's validity is written
/// ("2026-11-24T10:00:00Z"); the milliseconds are dropped, not rounded.
std::string format_rfc3339_seconds(wall_time t);

/// Parses RFC 3339 ("2020-10-02T18:45:22.169Z", "2020-04-09T15:16:27+02:00");
/// nullopt when the text is not one.
std::optional<wall_time> parse_rfc3339(std::string_view text);

/// Parses a configuration duration: "90s", "30m", "1h30m", "250ms". nullopt when invalid.
std::optional<millis> parse_duration(std::string_view text);

/// Formats a duration the way parse_duration reads it ("30m", "1h30m", "250ms").
std::string format_duration(millis d);

}  // namespace runbookd
