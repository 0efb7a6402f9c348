#pragma once
// What the engine asks the notifiers to post: channel-neutral, already rendered.

#include "core/time.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace runbookd {

/// The two audiences: users (#status) and engineers (#operations).
enum class channel { status, operations };
std::string_view to_string(channel c) noexcept;

/// Why a post exists; a metrics label and part of its idempotency key.
/// #status: notice, update, relay, resolved, reopened. #operations: summary (a ranking of
/// likely causes, edited in place as evidence changes) and timeline (on resolve).
enum class post_kind { notice, update, relay, resolved, reopened, summary, timeline };
std::string_view to_string(post_kind k) noexcept;

/// Rendered text. `title` and `body` are Discord-flavoured markdown in which every
/// piece of outside text is already escaped; `footer` is plain text (Discord shows it
/// verbatim) with mentions defused; `url` is an https link or empty.
struct message {
    std::string title;
    std::string body;
    std::string url;
    std::uint32_t color = 0;
    std::string footer;
};

/// One post the engine decided to make.
struct post {
    channel to = channel::status;
    post_kind kind = post_kind::notice;
    std::string incident_id;
    std::string key;  ///< unique per post ever decided: "<incident>/<epoch>/<kind>[/<n>]"
    wall_time at;     ///< when the engine decided it
    message text;
    bool coalescible = false;  ///< may share one Discord message with neighbours in a burst
    /// Non-empty: replace the message of the earlier post with this key, in place. When
    /// that message is unknown (never delivered, or deleted), post this one as new.
    std::string edit_of;
};

/// An incident just opened: the shell asks every source to look again at `from`..`to` now,
/// and says `evidence_gathered` when all have answered. The first #operations summary
/// waits for that, or for `deadline` (a wake-up the engine has already asked for).
struct gather_request {
    std::string incident_id;
    int epoch = 0;
    wall_time from;  ///< the incident's start less the widest lookback of any rule
    wall_time to;    ///< the page
    wall_time deadline;
};

/// The engine's answer to every call: what to post, when to be woken next, and which
/// incidents' evidence to gather.
struct decisions {
    std::vector<post> posts;
    std::optional<wall_time> next_wake;
    std::vector<gather_request> gather = {};
};

}  // namespace runbookd
