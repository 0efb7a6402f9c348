#include "fakes/io.hpp"
#include "fakes/manual_time.hpp"

#include <cstdlib>
#include <iostream>

namespace runbookd::fakes {

wall_time at(std::string_view rfc3339) {
    const auto t = parse_rfc3339(rfc3339);
    if (!t) {
        std::cerr << "fakes::at: not RFC 3339: " << rfc3339 << '\n';
        std::abort();
    }
    return *t;
}

void drain(boost::asio::io_context& ioc) {
    // Bounded: a handler that keeps rescheduling itself at zero delay would otherwise spin.
    for (int i = 0; i < 100000; ++i) {
        ioc.restart();
        if (ioc.poll() == 0) {
            return;
        }
    }
    ADD_FAILURE() << "fakes::drain: io_context never went idle";
}

::testing::AssertionResult run_until(
    boost::asio::io_context& ioc, const std::function<bool()>& pred, std::chrono::milliseconds budget
) {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return ::testing::AssertionFailure() << "condition not met within " << budget.count() << " ms";
        }
        ioc.restart();
        ioc.run_for(std::chrono::milliseconds{10});
    }
    return ::testing::AssertionSuccess();
}

}  // namespace runbookd::fakes
