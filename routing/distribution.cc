#include "routing/distribution.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

namespace cachegate::routing {

namespace {

// twemproxy's ketama constants (src/hashkit/nc_ketama.c).
constexpr uint32_t kKetamaPointsPerServer = 160;
constexpr uint32_t kKetamaPointsPerHash = 4;  // one MD5 digest gives four 32-bit points
// twemproxy 0.5 formats "identity-i" into a char[273] (KETAMA_MAX_HOSTLEN; 86 in older
// releases) and, when the text does not fit, hashes the first 272 characters.
constexpr size_t kKetamaMaxHostLength = 273;

// Points for one live server, computed exactly as twemproxy's C does: the arithmetic is single
// precision up to `* (float)nlive`, the 1e-10 literal promotes the sum to double, and the result
// is narrowed back to float before floorf. Doing any step in double changes the count for some
// pool sizes: 25 equal servers get 156 points each, not 160.
uint32_t ketama_points(uint32_t weight, uint32_t total_weight, uint32_t live) {
  float pct = static_cast<float>(weight) / static_cast<float>(total_weight);
  float scaled = pct * static_cast<float>(kKetamaPointsPerServer) / 4.0f * static_cast<float>(live);
  float with_epsilon = static_cast<float>(static_cast<double>(scaled) + 0.0000000001);
  return static_cast<uint32_t>(std::floor(with_epsilon) * 4.0f);
}

// The bytes twemproxy hashes for point group `index` of a server. Host names have at most 253
// characters, so only very long explicit server names are cut; twemproxy then logs "forced to
// truncate a hostname in ketama pool" and hashes the cut text, and so does this.
size_t ketama_point_source(const std::string& identity, uint32_t index,
                           char (&out)[kKetamaMaxHostLength]) {
  int full = std::snprintf(out, sizeof(out), "%.*s-%u", static_cast<int>(identity.size()),
                           identity.data(), index);
  if (full < 0) return 0;
  return std::min(static_cast<size_t>(full), kKetamaMaxHostLength - 1);
}

// A fast per-thread generator for the random distribution: no locks, no state shared between
// workers. Each thread seeds its own once, so workers do not walk in step.
uint32_t random_next() {
  thread_local uint64_t state = [] {
    std::random_device device;
    uint64_t seed = (static_cast<uint64_t>(device()) << 32) | device();
    return seed == 0 ? 1 : seed;  // xorshift must not start at 0
  }();
  // xorshift64*
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return static_cast<uint32_t>((state * 0x2545f4914f6cdd1dULL) >> 32);
}

}  // namespace

Distribution::Distribution(config::Distribution kind, config::HashFunction hash,
                           std::string hash_tag, const std::vector<RingServer>& servers,
                           const std::vector<bool>& live)
    : kind_(kind),
      hash_(hash_function(hash)),
      hash_tag_(std::move(hash_tag)),
      configured_count_(servers.size()) {
  auto is_live = [&](size_t i) { return live.empty() || (i < live.size() && live[i]); };

  // twemproxy does not keep a pool's servers in config order: while validating the config it
  // sorts them by identity (conf_validate_server, to find duplicates) and never restores the
  // order. Its string_compare() orders by length first, then bytes. Modula's slots and ketama's
  // tie-breaking follow that order, so the continuum is built in it too; indexes stay config
  // indexes.
  std::vector<uint32_t> order;
  order.reserve(servers.size());
  for (size_t i = 0; i < servers.size(); ++i)
    if (is_live(i)) order.push_back(static_cast<uint32_t>(i));
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const std::string& x = servers[a].identity;
    const std::string& y = servers[b].identity;
    if (x.size() != y.size()) return x.size() < y.size();
    return x < y;
  });

  uint32_t total_weight = 0;
  for (uint32_t i : order)
    total_weight += servers[i].weight;
  live_count_ = order.size();
  if (live_count_ == 0 || total_weight == 0) return;

  switch (kind_) {
    case config::Distribution::kKetama: {
      points_.reserve(live_count_ * kKetamaPointsPerServer);
      for (uint32_t i : order) {
        uint32_t points =
            ketama_points(servers[i].weight, total_weight, static_cast<uint32_t>(live_count_));
        for (uint32_t group = 0; group < points / kKetamaPointsPerHash; ++group) {
          char source[kKetamaMaxHostLength];
          size_t length = ketama_point_source(servers[i].identity, group, source);
          unsigned char digest[16];
          md5_digest(source, length, digest);
          for (uint32_t k = 0; k < kKetamaPointsPerHash; ++k) {
            const unsigned char* d = digest + 4 * k;
            uint32_t value = static_cast<uint32_t>(d[0]) | static_cast<uint32_t>(d[1]) << 8 |
                             static_cast<uint32_t>(d[2]) << 16 | static_cast<uint32_t>(d[3]) << 24;
            points_.push_back({value, i});
          }
        }
      }
      // twemproxy leaves the order of equal points to qsort; glibc's qsort merge-sorts arrays
      // of this size, which keeps them in server order, so a stable sort lands equal points
      // where twemproxy does.
      std::stable_sort(points_.begin(), points_.end(),
                       [](const Point& a, const Point& b) { return a.value < b.value; });
      break;
    }
    case config::Distribution::kModula:
      points_.reserve(total_weight);
      for (uint32_t i : order)
        for (uint32_t w = 0; w < servers[i].weight; ++w)
          points_.push_back({0, i});
      break;
    case config::Distribution::kRandom:
      points_.reserve(live_count_);
      for (uint32_t i : order)
        points_.push_back({0, i});
      break;
  }
}

std::string_view Distribution::hashed_part(std::string_view key) const {
  if (hash_tag_.size() != 2) return key;
  size_t start = key.find(hash_tag_[0]);
  if (start == std::string_view::npos) return key;
  size_t end = key.find(hash_tag_[1], start + 1);
  if (end == std::string_view::npos || end - start < 2) return key;
  return key.substr(start + 1, end - start - 1);
}

uint32_t Distribution::hash_of(std::string_view key) const {
  std::string_view part = hashed_part(key);
  // twemproxy's server_pool_hash(): an empty key hashes to 0 without calling the function.
  if (part.empty()) return 0;
  return hash_(part.data(), part.size());
}

uint32_t Distribution::server_for(std::string_view key) const {
  // No live server: twemproxy fails the request (server_pool_update), even in a one-server pool.
  if (points_.empty()) return kNoServer;
  // twemproxy's shortcut counts configured servers, not live ones.
  if (configured_count_ == 1) return 0;

  switch (kind_) {
    case config::Distribution::kKetama: {
      uint32_t hash = hash_of(key);
      auto it = std::lower_bound(points_.begin(), points_.end(), hash,
                                 [](const Point& p, uint32_t h) { return p.value < h; });
      if (it == points_.end()) it = points_.begin();
      return it->server;
    }
    case config::Distribution::kModula:
      return points_[hash_of(key) % points_.size()].server;
    case config::Distribution::kRandom:
      return points_[random_next() % points_.size()].server;
  }
  return kNoServer;
}

}  // namespace cachegate::routing
