#pragma once
// Prints posts for people: the demo, local runs and (later) replay.

#include "notify/console/config.hpp"
#include "notify/notifier.hpp"

#include <cstdio>
#include <memory>
#include <string>

namespace runbookd::notify::console {

/// Writes each post as a short block of text to a stream. Never fails but on a write error.
class console_notifier final : public notifier {
public:
    /// `out` is not owned and must outlive the notifier.
    explicit console_notifier(std::FILE* out) : out_(out) {}
    /// `out` is owned: closed with the notifier.
    console_notifier(std::FILE* out, bool owned) : out_(out), owned_(owned) {}
    ~console_notifier() override;
    console_notifier(const console_notifier&) = delete;
    console_notifier& operator=(const console_notifier&) = delete;

    std::string_view kind() const noexcept override { return "console"; }
    bool has_channel(channel) const noexcept override { return true; }
    std::size_t fit(std::span<const post> posts) const override;
    boost::asio::awaitable<delivery> send(channel to, std::span<const post> posts) override;
    boost::asio::awaitable<delivery> edit(channel to, const std::string& message_id, const post& p) override;

    /// The block send() writes for one post (tests and replay).
    static std::string format(channel to, const post& p);

private:
    boost::asio::awaitable<delivery> write(const std::string& text);

    std::FILE* out_;
    bool owned_ = false;
    long long next_id_ = 1;
};

/// The console notifier for `cfg`: stdout for "-", else the file, appended to. Throws
/// std::runtime_error when the file cannot be opened.
std::unique_ptr<notifier> make(const config& cfg);

}  // namespace runbookd::notify::console
