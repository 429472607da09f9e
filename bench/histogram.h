#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace cachegate::bench {

// Latency histogram bucketed like HdrHistogram: values below 256 are counted exactly, above that
// each power-of-two range is split into 128 equal sub-buckets, so any reported value is within
// 1/128 (< 0.8 %) of a recorded one. The whole range of uint64_t fits in a fixed 58 KiB array,
// which is why recording never allocates and costs one bit_width and an increment.
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSubCount = uint64_t{1} << kSubBits;
  static constexpr size_t kSize = (64 - kSubBits + 1) * kSubCount;

  void record(uint64_t value) {
    ++counts_[index(value)];
    ++total_;
    max_ = std::max(max_, value);
  }

  void merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kSize; ++i)
      counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }

  void reset() {
    counts_.fill(0);
    total_ = 0;
    max_ = 0;
  }

  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }

  // The value below which a fraction q of the samples lie, reported as the middle of its bucket
  // (never above the largest sample, so p100 is exact).
  uint64_t percentile(double q) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(total_) + 0.5);
    rank = std::clamp<uint64_t>(rank, 1, total_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kSize; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(max_, lowest(i) + (width(i) - 1) / 2);
    }
    return max_;
  }

 private:
  static size_t index(uint64_t v) {
    if (v < kSubCount) return static_cast<size_t>(v);
    const int shift = std::bit_width(v) - 1 - kSubBits;
    return (static_cast<size_t>(shift + 1) << kSubBits) +
           static_cast<size_t>((v >> shift) - kSubCount);
  }
  static uint64_t lowest(size_t i) {
    const size_t bucket = i >> kSubBits;
    const uint64_t sub = i & (kSubCount - 1);
    return bucket == 0 ? sub : (kSubCount + sub) << (bucket - 1);
  }
  static uint64_t width(size_t i) {
    const size_t bucket = i >> kSubBits;
    return bucket == 0 ? 1 : uint64_t{1} << (bucket - 1);
  }

  std::array<uint64_t, kSize> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

}  // namespace cachegate::bench
