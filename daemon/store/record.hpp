#pragma once
// What the state store keeps: every input the engine was fed, in order, and every change
// of the outbox. Replaying the inputs through the (pure) engine rebuilds its state; the
// changes rebuild the outbox's queues and message ids (docs/architecture.md, "State").

#include "core/input.hpp"
#include "notify/change.hpp"

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace runbookd::store {

using record = std::variant<input, notify::change>;

/// One record as one line of JSON (the journal's payload). Pure.
std::string encode(const record& r);

/// The record `text` encodes, or why it is not one ("line 1: missing 'at'").
struct decoded {
    std::optional<record> value;
    std::string error;
};
decoded decode(std::string_view text);

/// A journal payload: one record (an object), or a group (an array of records) written as
/// one frame, so an input and the outbox changes it caused are kept together or not at all.
struct decoded_group {
    std::vector<record> values;
    std::string error;
};
decoded_group decode_group(std::string_view text);

}  // namespace runbookd::store
