#include "crypto/base64.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <limits>

namespace runbookd::crypto {

std::optional<std::string> base64_decode(std::string_view text) {
    std::string in;
    in.reserve(text.size());
    std::copy_if(text.begin(), text.end(), std::back_inserter(in), [](unsigned char c) {
        return std::isspace(c) == 0;
    });
    if (in.size() % 4 != 0 || in.size() > std::numeric_limits<int>::max()) {
        return std::nullopt;
    }
    std::string out(in.size() / 4 * 3, '\0');
    // EVP_DecodeBlock rejects bad characters but decodes padding as zero bytes: trim them.
    const int n = EVP_DecodeBlock(
        reinterpret_cast<unsigned char*>(out.data()),
        reinterpret_cast<const unsigned char*>(in.data()),
        static_cast<int>(in.size())
    );
    if (n < 0) {
        return std::nullopt;
    }
    const auto padding =
        static_cast<std::size_t>(std::count(in.end() - std::min<std::size_t>(2, in.size()), in.end(), '='));
    out.resize(static_cast<std::size_t>(n) - padding);
    return out;
}

std::string base64url_encode(std::string_view bytes) {
    std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
    const int n = EVP_EncodeBlock(
        reinterpret_cast<unsigned char*>(out.data()),
        reinterpret_cast<const unsigned char*>(bytes.data()),
        static_cast<int>(bytes.size())
    );
    out.resize(static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '=') {
        out.pop_back();
    }
    std::replace(out.begin(), out.end(), '+', '-');
    std::replace(out.begin(), out.end(), '/', '_');
    return out;
}

}  // namespace runbookd::crypto
