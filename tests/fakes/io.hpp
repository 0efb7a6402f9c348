#pragma once
// Bounded ways to run an io_context in tests.

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>

namespace runbookd::fakes {

/// Runs every ready handler (and every due timer under manual time) until none is left.
void drain(boost::asio::io_context& ioc);

/// Runs real I/O until `pred` holds or `budget` passes; fails the assertion on timeout.
::testing::AssertionResult run_until(
    boost::asio::io_context& ioc, const std::function<bool()>& pred, std::chrono::milliseconds budget
);

}  // namespace runbookd::fakes
