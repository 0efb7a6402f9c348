#include "core/error.hpp"

#include <stdexcept>

namespace runbookd {
namespace {

// boost::system::error_category has a protected non-virtual destructor by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "runbookd"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::config_invalid: return "invalid configuration";
            case errc::parse_failed: return "parse failed";
            case errc::bad_signature: return "bad signature";
            case errc::upstream_unavailable: return "upstream unavailable";
            case errc::upstream_rejected: return "upstream rejected the request";
            case errc::rate_limited: return "rate limited";
            case errc::timed_out: return "timed out";
            case errc::too_large: return "too large";
            case errc::shutting_down: return "shutting down";
        }
        return "unknown runbookd error";
    }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& error_category() noexcept {
    static const category instance;
    return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

failure make_failure(errc e, std::string detail, bool retryable) {
    return failure{make_error_code(e), retryable, std::move(detail)};
}

void throw_exception_from_error(const failure& f, const boost::source_location& /*loc*/) {
    throw std::runtime_error(f.code.message() + ": " + f.detail);
}

}  // namespace runbookd
