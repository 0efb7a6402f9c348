#include "notify/console/console_notifier.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace runbookd::notify::console {

console_notifier::~console_notifier() {
    if (owned_) {
        std::fclose(out_);
    }
}

std::unique_ptr<notifier> make(const config& cfg) {
    if (cfg.path == "-") {
        return std::make_unique<console_notifier>(stdout);
    }
    std::FILE* out = std::fopen(cfg.path.c_str(), "a");
    if (out == nullptr) {
        throw std::runtime_error("cannot open console.path '" + cfg.path + "': " + std::strerror(errno));
    }
    return std::make_unique<console_notifier>(out, true);
}

std::size_t console_notifier::fit(std::span<const post> posts) const {
    return std::clamp<std::size_t>(posts.size(), 1, 10);
}

std::string console_notifier::format(channel to, const post& p) {
    std::string out = "\u2500\u2500 #" + std::string{to_string(to)} + " \u00b7 " + format_rfc3339(p.at) +
                      " \u00b7 " + std::string{to_string(p.kind)} + " \u00b7 " + p.key + "\n";
    out += p.text.title + "\n" + p.text.body + "\n";
    if (!p.text.footer.empty()) {
        out += p.text.footer + (p.text.url.empty() ? "" : " \u2014 " + p.text.url) + "\n";
    }
    return out + "\n";
}

boost::asio::awaitable<delivery> console_notifier::send(channel to, std::span<const post> posts) {
    std::string text;
    for (const auto& p : posts) {
        text += format(to, p);
    }
    co_return co_await write(text);
}

boost::asio::awaitable<delivery> console_notifier::edit(
    channel to, const std::string& message_id, const post& p
) {
    auto d = co_await write("(edit of " + message_id + ")\n" + format(to, p));
    d.message_id = message_id;
    co_return d;
}

boost::asio::awaitable<delivery> console_notifier::write(const std::string& text) {
    delivery d;
    if (std::fwrite(text.data(), 1, text.size(), out_) != text.size() || std::fflush(out_) != 0) {
        d.outcome = net::verdict::retryable;
        d.reason = "console write failed";
        co_return d;
    }
    d.message_id = "console-" + std::to_string(next_id_++);
    co_return d;
}

}  // namespace runbookd::notify::console
