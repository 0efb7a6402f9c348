#include "log/log.hpp"

#include "loop/clock.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <type_traits>

namespace runbookd::log {
namespace {

std::string_view level_name(level l) {
    switch (l) {
        case level::debug: return "debug";
        case level::info: return "info";
        case level::warn: return "warn";
        case level::error: return "error";
    }
    return "info";
}

/// Appends `text` as a JSON string. Invalid UTF-8 (a peer's bytes) becomes U+FFFD
/// rather than an exception or an invalid line.
void append_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                default:
                    if (c < 0x20) {
                        out += "\\u00";
                        out += hex[c >> 4];
                        out += hex[c & 0xF];
                    } else {
                        out += static_cast<char>(c);
                    }
            }
            ++i;
            continue;
        }
        std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool valid = len != 0 && i + len <= text.size() && c != 0xC0 && c != 0xC1 && c < 0xF5;
        for (std::size_t k = 1; valid && k < len; ++k) {
            valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
        }
        if (valid) {
            out.append(text.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    out += '"';
}

void append_field(std::string& out, const field& f) {
    out += ',';
    append_string(out, f.key);
    out += ':';
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                append_string(out, v);
            } else if constexpr (std::is_same_v<T, bool>) {
                out += v ? "true" : "false";
            } else if constexpr (std::is_same_v<T, long long>) {
                out += std::to_string(v);
            } else {
                if (std::isfinite(v)) {
                    char buf[32];
                    const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
                    out.append(buf, static_cast<std::size_t>(n));
                } else {
                    out += "null";
                }
            }
        },
        f.value
    );
}

}  // namespace

sink::sink(std::FILE* out) : out_(out) {}

sink::sink(std::function<void(std::string_view)> capture) : capture_(std::move(capture)) {}

void sink::add_secret(std::string value) {
    if (value.size() < 4) {
        return;  // too short to redact without mangling ordinary words
    }
    std::lock_guard lock{mutex_};
    if (std::find(secrets_.begin(), secrets_.end(), value) == secrets_.end()) {
        secrets_.push_back(std::move(value));  // reloads register the same secrets again
    }
}

void sink::write(std::string line) {
    std::lock_guard lock{mutex_};
    for (const auto& s : secrets_) {
        constexpr std::string_view mask = "<secret>";
        for (auto pos = line.find(s); pos != std::string::npos; pos = line.find(s, pos + mask.size())) {
            line.replace(pos, s.size(), mask);
        }
    }
    if (capture_) {
        capture_(line);
        return;
    }
    buffer_ += line;
    buffer_ += '\n';
    if (!defer_ || buffer_.size() >= 64 * 1024) {
        flush_locked();
        return;
    }
    if (!flush_pending_) {
        flush_pending_ = true;
        defer_([this] { flush(); });
    }
}

void sink::batch_with(std::function<void(std::function<void()>)> defer) {
    std::lock_guard lock{mutex_};
    defer_ = std::move(defer);
}

void sink::flush() {
    std::lock_guard lock{mutex_};
    flush_pending_ = false;
    flush_locked();
}

void sink::flush_locked() {
    if (buffer_.empty() || out_ == nullptr) {
        return;
    }
    std::fwrite(buffer_.data(), 1, buffer_.size(), out_);
    std::fflush(out_);
    buffer_.clear();
}

sink::~sink() {
    std::lock_guard lock{mutex_};
    flush_locked();
}

logger::logger(std::shared_ptr<sink> out, level min) : out_(std::move(out)), min_(min) {}

logger logger::with(std::string key, std::string value) const {
    logger child = *this;
    // A key set again replaces its value: a child logger names its own component.
    const auto same =
        std::find_if(child.fixed_.begin(), child.fixed_.end(), [&](const field& f) { return f.key == key; });
    if (same != child.fixed_.end()) {
        *same = field{std::move(key), std::move(value)};
    } else {
        child.fixed_.emplace_back(std::move(key), std::move(value));
    }
    return child;
}

void logger::debug(std::string_view msg, std::initializer_list<field> fields) const {
    emit(level::debug, msg, fields);
}
void logger::info(std::string_view msg, std::initializer_list<field> fields) const {
    emit(level::info, msg, fields);
}
void logger::warn(std::string_view msg, std::initializer_list<field> fields) const {
    emit(level::warn, msg, fields);
}
void logger::error(std::string_view msg, std::initializer_list<field> fields) const {
    emit(level::error, msg, fields);
}

void logger::emit(level l, std::string_view msg, std::initializer_list<field> fields) const {
    if (!enabled(l)) {
        return;
    }
    std::string line;
    line.reserve(160);
    line += "{\"ts\":\"";
    line += format_rfc3339(loop::wall_now());
    line += "\",\"level\":\"";
    line += level_name(l);
    line += "\",\"msg\":";
    append_string(line, msg);
    for (const auto& f : fixed_) {
        append_field(line, f);
    }
    for (const auto& f : fields) {
        append_field(line, f);
    }
    line += '}';
    out_->write(std::move(line));
}

logger discard() {
    return logger{std::make_shared<sink>([](std::string_view) {}), level::error};
}

}  // namespace runbookd::log
