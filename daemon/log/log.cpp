#include "log/log.hpp"

#include "loop/clock.hpp"

#include <nlohmann/json.hpp>

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

void put(nlohmann::json& j, const field& f) {
    std::visit([&](const auto& v) { j[f.key] = v; }, f.value);
}

}  // namespace

sink::sink(std::FILE* out) : out_(out) {}

sink::sink(std::function<void(std::string_view)> capture) : capture_(std::move(capture)) {}

void sink::add_secret(std::string value) {
    if (value.size() < 4) {
        return;  // too short to redact without mangling ordinary words
    }
    std::lock_guard lock{mutex_};
    secrets_.push_back(std::move(value));
}

void sink::write(std::string line) {
    std::lock_guard lock{mutex_};
    for (const auto& s : secrets_) {
        for (auto pos = line.find(s); pos != std::string::npos; pos = line.find(s, pos)) {
            line.replace(pos, s.size(), "<secret>");
        }
    }
    if (capture_) {
        capture_(line);
        return;
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
}

logger::logger(std::shared_ptr<sink> out, level min) : out_(std::move(out)), min_(min) {}

logger logger::with(std::string key, std::string value) const {
    logger child = *this;
    child.fixed_.emplace_back(std::move(key), std::move(value));
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
    nlohmann::json j;
    j["ts"] = format_rfc3339(loop::wall_now());
    j["level"] = level_name(l);
    j["msg"] = msg;
    for (const auto& f : fixed_) {
        put(j, f);
    }
    for (const auto& f : fields) {
        put(j, f);
    }
    // Invalid UTF-8 from outside (a peer's bytes) is replaced, never thrown on.
    out_->write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

logger discard() {
    return logger{std::make_shared<sink>([](std::string_view) {}), level::error};
}

}  // namespace runbookd::log
