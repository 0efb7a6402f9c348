#pragma once
// One durable fact of the outbox, as a value: what the state store journals as the outbox
// works, and what recovery applies again (outbox::restore) to rebuild the queues and the
// message ids after a restart. Pure: no Asio, no clock.

#include "core/post.hpp"

#include <optional>
#include <string>
#include <vector>

namespace runbookd::notify {

struct change {
    enum class kind {
        enqueued,   ///< `p` joined its channel's queue, at its place (outbox::place)
        replaced,   ///< the queued post `keys[0]` now reads `p` (an edit folded into it)
        sending,    ///< `keys` are on the wire (journaled before the request leaves)
        refused,    ///< `keys` were refused on that attempt (they did not arrive; still queued)
        delivered,  ///< `keys` arrived as the message `message_id`; they leave the queue
        failed,     ///< `keys` left the queue undelivered (refused, dropped, merged): `reason`
        remember,   ///< the message of `keys[0]` is now `message_id` (an edit posted anew)
        forget,     ///< the message of `keys[0]` is gone (deleted by a person)
    };
    kind what = kind::enqueued;
    channel to = channel::status;
    // The `{}` let aggregate initialisations leave these out without a warning.
    std::vector<std::string> keys{};
    std::optional<post> p{};   ///< enqueued, replaced
    std::string message_id{};  ///< delivered, remember
    std::string reason{};      ///< failed
};

std::string_view to_string(change::kind k) noexcept;

}  // namespace runbookd::notify
