#pragma once
// What the engine asks the notifiers to post: channel-neutral, already rendered.

#include "core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace runbookd {

/// The two audiences: users (#status) and engineers (#operations).
enum class channel { status, operations };
std::string_view to_string(channel c) noexcept;

/// Why a post exists; a metrics label and part of its idempotency key.
/// #status: notice, update, relay, resolved, reopened. #operations: summary (a ranking of
/// likely causes, edited in place as evidence changes) and timeline (on resolve). Both: storm
/// (one post for a burst of incidents, edited in place as it grows; docs/operations.md).
enum class post_kind { notice, update, relay, resolved, reopened, summary, timeline, storm };
std::string_view to_string(post_kind k) noexcept;

/// Why a post the engine would have made was folded into another: `storm`, into the post
/// of a burst of incidents; `untracked`, the incident came past limits.max_open_incidents
/// and is only counted in the storm post.
enum class merge_reason { storm, untracked };
std::string_view to_string(merge_reason r) noexcept;

/// `count` posts of `kind` that the post carrying this stands for (counted and logged by
/// the outbox: runbookd_posts_merged_total).
struct merged_posts {
    post_kind kind = post_kind::notice;
    merge_reason reason = merge_reason::storm;
    std::size_t count = 0;
    friend bool operator==(const merged_posts&, const merged_posts&) = default;
};

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
    /// The posts folded into this one since the last post of its kind (storm posts only).
    std::vector<merged_posts> merged = {};
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
