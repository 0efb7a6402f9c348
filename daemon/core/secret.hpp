#pragma once
// A value that must never reach a log, an error or a metric.

#include <ostream>
#include <string>
#include <utility>

namespace runbookd {

/// Wraps a secret (webhook URL, signing secret, token). Printing it prints "<secret>";
/// the value is reachable only through reveal(), which call sites name on purpose.
template <class T>
class secret {
public:
    secret() = default;
    explicit secret(T value) : value_(std::move(value)) {}

    const T& reveal() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }

    friend std::ostream& operator<<(std::ostream& os, const secret&) { return os << "<secret>"; }
    friend bool operator==(const secret&, const secret&) = default;

private:
    T value_;
};

}  // namespace runbookd
