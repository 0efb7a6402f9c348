#include "notify/discord/payload.hpp"

#include "core/markdown.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <vector>

namespace runbookd::notify::discord {
namespace {

using json = nlohmann::json;

struct embed_text {
    std::string title;
    std::string description;
    std::string footer;
    std::size_t size() const {
        return utf16_length(title) + utf16_length(description) + utf16_length(footer);
    }
};

/// The post's text cut to the per-field limits, and the description further cut so that
/// one embed alone never exceeds the message total.
embed_text shape(const post& p) {
    embed_text e{
        truncate_utf16(p.text.title, max_title),
        truncate_utf16(p.text.body, max_description),
        truncate_utf16(p.text.footer, max_footer),
    };
    if (e.size() > max_embed_total) {
        const auto room = max_embed_total - utf16_length(e.title) - utf16_length(e.footer);
        e.description = truncate_utf16(e.description, room);
    }
    return e;
}

}  // namespace

std::size_t fit(std::span<const post> posts) {
    std::size_t total = 0;
    std::size_t n = 0;
    for (const auto& p : posts) {
        if (n == max_embeds) {
            break;
        }
        const auto size = shape(p).size();
        if (n > 0 && total + size > max_embed_total) {
            break;
        }
        total += size;
        ++n;
    }
    return std::max<std::size_t>(n, 1);
}

namespace {

json embeds_of(std::span<const post> posts) {
    json embeds = json::array();
    std::vector<std::string> urls;
    for (const auto& p : posts.first(std::min(posts.size(), max_embeds))) {
        auto text = shape(p);
        json e = {
            {"type", "rich"},
            {"title", std::move(text.title)},
            {"description", std::move(text.description)},
            {"color", p.text.color},
            {"timestamp", format_rfc3339(p.at)},
        };
        if (!text.footer.empty()) {
            e["footer"] = {{"text", std::move(text.footer)}};
        }
        // Discord de-duplicates embeds by URL: two posts of one incident in one message
        // (an update and its resolution) must not share one, or the second is hidden.
        if (!p.text.url.empty() && std::find(urls.begin(), urls.end(), p.text.url) == urls.end()) {
            e["url"] = p.text.url;
            urls.push_back(p.text.url);
        }
        embeds.push_back(std::move(e));
    }
    return embeds;
}

}  // namespace

std::string execute_body(std::span<const post> posts, std::string_view username) {
    json body = {
        {"username", truncate_utf16(username, max_username)},
        {"embeds", embeds_of(posts)},
        // Webhooks parse user mentions by default, and edits re-parse: say "none" every time.
        {"allowed_mentions", {{"parse", json::array()}}},
    };
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string edit_body(const post& p) {
    json body = {
        {"embeds", embeds_of(std::span<const post>{&p, 1})},
        // An edit re-parses mentions with the request's allowed_mentions, not the
        // original message's (api-facts §2.3): send "none" again.
        {"allowed_mentions", {{"parse", json::array()}}},
    };
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

response_facts read_response(std::string_view body) {
    response_facts out;
    const json doc = json::parse(body, nullptr, false);
    if (!doc.is_object()) {
        return out;
    }
    if (const auto it = doc.find("id"); it != doc.end() && it->is_string()) {
        out.message_id = it->get<std::string>();
    }
    if (const auto it = doc.find("retry_after"); it != doc.end() && it->is_number()) {
        out.retry_after = it->get<double>();
    }
    if (const auto it = doc.find("global"); it != doc.end() && it->is_boolean()) {
        out.global = it->get<bool>();
    }
    if (const auto it = doc.find("message"); it != doc.end() && it->is_string()) {
        out.error = truncate_utf16(it->get<std::string>(), 200);
        if (const auto code = doc.find("code"); code != doc.end() && code->is_number_integer()) {
            out.code = code->get<long long>();
            out.error += " (" + std::to_string(out.code) + ")";
        }
    }
    return out;
}

}  // namespace runbookd::notify::discord
