#pragma once
// Evidence, action and "checked" templates: text with {placeholder} and {placeholder|filter}
// holes, parsed once when rules load and rendered against one signal at a time.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runbookd {

/// A parsed template. `{{` and `}}` stand for literal braces.
class text_template {
public:
    struct part {
        std::string text;  ///< literal text, or the placeholder's name
        std::string filter;
        bool placeholder = false;
    };

    /// What a placeholder resolves to; nullopt when the name is unknown for this signal.
    using lookup = std::function<std::optional<std::string>(std::string_view name)>;

    text_template() = default;

    /// Parses `text`; on failure returns nullopt and sets `error` (no position: the caller
    /// knows where the text is).
    static std::optional<text_template> parse(std::string_view text, std::string& error);

    /// Renders; a placeholder the lookup does not know renders as "?".
    std::string render(const lookup& values) const;

    bool empty() const noexcept { return parts_.empty(); }
    const std::vector<part>& parts() const noexcept { return parts_; }
    const std::string& source() const noexcept { return source_; }

private:
    std::vector<part> parts_;
    std::string source_;
};

/// Filters a template may apply: percent (0.97 -> "97%"), duration (seconds -> "12m"),
/// days (seconds -> "9 days", or as duration under a day), round (2.6 -> "3").
bool known_filter(std::string_view name) noexcept;

}  // namespace runbookd
