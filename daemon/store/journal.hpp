#pragma once
// The journal's file format: a header, then framed records, each a length, a CRC-32C and
// a payload (one JSON record). Pure: reads and writes bytes, never a file.
//
//   header  "RUNBOOKD-JOURNAL" (16 bytes), u32 version, u32 reserved (0)   little-endian
//   frame   u32 payload length (1 .. max_record), u32 CRC-32C of the payload, payload
//
// A write cut short by a crash leaves a torn tail: a frame that runs past the end of the
// file, a zero-filled run to the end, or a last frame whose CRC does not match. It is cut.
// A bad frame with good data after it is corruption, and a file without the header is not
// ours: both are refused, so a daemon never starts on state it cannot trust.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd::store::journal {

inline constexpr std::string_view magic = "RUNBOOKD-JOURNAL";
inline constexpr std::uint32_t version = 1;
inline constexpr std::size_t header_size = 24;
inline constexpr std::size_t frame_overhead = 8;
/// A record larger than this is refused when written and when read (16 MiB).
inline constexpr std::size_t max_record = std::size_t{16} << 20;

/// The header of an empty journal.
std::string header();

/// Appends one framed record to `out`.
void frame(std::string& out, std::string_view payload);

/// The little-endian u32 at `at` of `bytes` (a length or a CRC of a frame; the caller has
/// checked that four bytes are there).
std::uint32_t u32_at(std::string_view bytes, std::size_t at) noexcept;

/// CRC-32C (Castagnoli), as the frames carry it.
std::uint32_t crc32c(std::string_view bytes) noexcept;

struct scan {
    std::vector<std::string_view> records;  ///< payloads, views into the scanned text
    std::size_t good = 0;                   ///< bytes up to the end of the last good frame
    std::size_t torn = 0;                   ///< bytes after `good` that a crash left (to cut)
    std::string error;                      ///< non-empty: refuse the file (foreign, newer, corrupt)
};

/// Reads a whole journal. An empty text is an empty journal.
scan read(std::string_view text);

}  // namespace runbookd::store::journal
