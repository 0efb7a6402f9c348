#include "store/journal.hpp"

#include <boost/crc.hpp>

#include <algorithm>
#include <cstring>

namespace runbookd::store::journal {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
    }
}

bool all_zero(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

}  // namespace

std::uint32_t u32_at(std::string_view bytes, std::size_t at) noexcept {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    }
    return v;
}

std::uint32_t crc32c(std::string_view bytes) noexcept {
    boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
    crc.process_bytes(bytes.data(), bytes.size());
    return crc.checksum();
}

std::string header() {
    std::string h{magic};
    put_u32(h, version);
    put_u32(h, 0);
    return h;
}

void frame(std::string& out, std::string_view payload) {
    put_u32(out, static_cast<std::uint32_t>(payload.size()));
    put_u32(out, crc32c(payload));
    out.append(payload);
}

scan read(std::string_view text) {
    scan s;
    if (text.empty()) {
        return s;
    }
    if (text.size() < header_size) {
        // A crash while the header was first written leaves a prefix of it.
        if (header().substr(0, text.size()) == text || all_zero(text)) {
            s.torn = text.size();
            return s;
        }
        s.error = "not a runbookd journal (no header)";
        return s;
    }
    if (text.substr(0, magic.size()) != magic) {
        s.error = "not a runbookd journal (no header)";
        return s;
    }
    if (const auto v = u32_at(text, magic.size()); v != version) {
        s.error = "journal version " + std::to_string(v) + " is not " + std::to_string(version) +
                  " (written by another runbookd version)";
        return s;
    }
    std::size_t at = header_size;
    s.good = at;
    while (at < text.size()) {
        const std::string_view rest = text.substr(at);
        const auto bad = [&](const std::string& why) {
            // The tail a crash can leave is cut; anything else is corruption.
            if (all_zero(rest)) {
                s.torn = rest.size();
                return;
            }
            s.error = why + " at byte " + std::to_string(at) + " of " + std::to_string(text.size()) +
                      ", with data after it";
        };
        if (rest.size() < frame_overhead) {
            s.torn = rest.size();
            break;
        }
        const std::size_t len = u32_at(text, at);
        if (len == 0 || len > max_record) {
            bad("a record of impossible length " + std::to_string(len));
            break;
        }
        if (frame_overhead + len > rest.size()) {
            s.torn = rest.size();  // the last write did not finish
            break;
        }
        const std::string_view payload = rest.substr(frame_overhead, len);
        if (crc32c(payload) != u32_at(text, at + 4)) {
            if (frame_overhead + len == rest.size()) {
                s.torn = rest.size();  // the last frame's bytes did not all reach the disk
            } else {
                bad("a record whose checksum does not match");
            }
            break;
        }
        s.records.push_back(payload);
        at += frame_overhead + len;
        s.good = at;
    }
    return s;
}

}  // namespace runbookd::store::journal
