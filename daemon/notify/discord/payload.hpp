#pragma once
// Discord execute-webhook payloads. Pure: posts in, JSON text out, limits enforced so
// Discord never answers 400. Limits:
// https://discord.com/developers/docs/resources/message#embed-object-embed-limits

#include "core/post.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace runbookd::notify::discord {

inline constexpr std::size_t max_embeds = 10;
inline constexpr std::size_t max_title = 256;
inline constexpr std::size_t max_description = 4096;
inline constexpr std::size_t max_footer = 2048;
inline constexpr std::size_t max_username = 80;  // https://discord.com/developers/docs/resources/webhook
inline constexpr std::size_t max_embed_total = 6000;

/// How many leading posts fit in one message (10 embeds, 6000 characters), at least 1.
std::size_t fit(std::span<const post> posts);

/// The JSON body of an execute-webhook call: one embed per post, every text field cut to
/// Discord's limits (UTF-16 units, with an ellipsis), and allowed_mentions {"parse": []}.
std::string execute_body(std::span<const post> posts, std::string_view username);

/// The JSON body of an edit-webhook-message call: the post as the message's one embed,
/// and allowed_mentions {"parse": []} again (edits re-parse mentions).
std::string edit_body(const post& p);

/// Discord's JSON error code for an unknown message (the message was deleted).
inline constexpr long long unknown_message = 10008;

/// What a Discord response tells the outbox.
struct response_facts {
    std::string message_id;             ///< from a message object
    std::optional<double> retry_after;  ///< seconds, from a 429 body
    bool global = false;                ///< from a 429 body
    std::string error;                  ///< "Unknown Webhook (10015)" from an error body
    long long code = 0;                 ///< the error body's JSON code, 0 when none
};

/// Reads whatever of the above the body holds; never throws, ignores unknown fields.
response_facts read_response(std::string_view body);

}  // namespace runbookd::notify::discord
