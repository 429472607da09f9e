#pragma once

// A latency histogram with fixed buckets, written by one thread (relaxed load and store, no
// locked read-modify-write) and read by others when metrics are scraped. Buckets are
// cumulative only when rendered; each slot here counts observations up to its bound.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace cachegate::backends {

class LatencyHistogram {
 public:
  // Upper bounds in microseconds (Prometheus renders them in seconds); the last slot is +Inf.
  static constexpr std::array<uint64_t, 16> kBoundsUs = {
      50,    100,   250,    500,    1000,   2500,    5000,    10000,
      25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000};
  static constexpr size_t kSlots = kBoundsUs.size() + 1;

  void observe(std::chrono::nanoseconds elapsed) {
    const uint64_t us = elapsed.count() <= 0 ? 0 : static_cast<uint64_t>(elapsed.count()) / 1000;
    size_t slot = 0;
    while (slot < kBoundsUs.size() && us > kBoundsUs[slot])
      ++slot;
    bump(counts_[slot], 1);
    bump(sum_us_, us);
  }

  uint64_t count(size_t slot) const { return counts_[slot].load(std::memory_order_relaxed); }
  uint64_t sum_us() const { return sum_us_.load(std::memory_order_relaxed); }

 private:
  static void bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::array<std::atomic<uint64_t>, kSlots> counts_{};
  std::atomic<uint64_t> sum_us_{0};
};

}  // namespace cachegate::backends
