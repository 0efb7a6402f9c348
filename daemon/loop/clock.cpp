#include "loop/clock.hpp"

#include <atomic>

namespace runbookd::loop {
namespace {

// One relaxed load per now() in production; the manual values are only written by tests.
std::atomic<bool> manual_active{false};
std::atomic<std::int64_t> manual_steady_ns{0};
std::atomic<std::int64_t> manual_wall_ns{0};

}  // namespace

steady_clock::time_point steady_clock::now() noexcept {
    if (manual_active.load(std::memory_order_relaxed)) {
        return time_point{std::chrono::nanoseconds{manual_steady_ns.load(std::memory_order_relaxed)}};
    }
    return time_point{std::chrono::steady_clock::now().time_since_epoch()};
}

wall_time wall_now() noexcept {
    if (manual_active.load(std::memory_order_relaxed)) {
        return std::chrono::time_point_cast<millis>(std::chrono::sys_time<std::chrono::nanoseconds>{
            std::chrono::nanoseconds{manual_wall_ns.load(std::memory_order_relaxed)}});
    }
    return std::chrono::time_point_cast<millis>(std::chrono::system_clock::now());
}

bool manual_time_active() noexcept {
    return manual_active.load(std::memory_order_relaxed);
}

steady_clock::time_point deadline_for(wall_time when) noexcept {
    const auto delta = when - wall_now();
    return steady_clock::now() + std::chrono::duration_cast<steady_clock::duration>(delta);
}

namespace manual {

void start(wall_time wall) noexcept {
    manual_steady_ns.store(
        std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed
    );
    manual_wall_ns.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count(),
        std::memory_order_relaxed
    );
    manual_active.store(true, std::memory_order_relaxed);
}

void advance(std::chrono::nanoseconds d) noexcept {
    manual_steady_ns.fetch_add(d.count(), std::memory_order_relaxed);
    manual_wall_ns.fetch_add(d.count(), std::memory_order_relaxed);
}

void stop() noexcept {
    manual_active.store(false, std::memory_order_relaxed);
}

}  // namespace manual
}  // namespace runbookd::loop
