#pragma once

// A pool as one worker sees it: the pool's servers (Destinations) and where keys go among the
// live ones. With auto_eject_hosts, a server its Destination reports as failing leaves the
// distribution for server_retry_timeout and then rejoins, as in twemproxy; the distribution is
// rebuilt on each change. Per worker: workers never share this state.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "routing/destination.h"
#include "routing/distribution.h"

namespace cachegate::routing {

// Keys routed to a pool, by operation (config::RouteOp). Kept by the worker under the pool's name,
// so the figures go on across configuration reloads; written by that worker only.
struct PoolCounters {
  std::atomic<uint64_t> requests[5] = {};
  void count(config::RouteOp op, uint64_t n = 1) {
    auto& c = requests[static_cast<size_t>(op)];
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

class Pool final : public HealthObserver, public PartRouter {
 public:
  using Clock = std::chrono::steady_clock;

  // `servers[i]` is the Destination for config.servers[i]; not owned, must outlive the pool.
  Pool(const config::PoolConfig& config, std::vector<Destination*> servers);

  const config::PoolConfig& config() const { return config_; }
  size_t size() const { return servers_.size(); }
  Destination& server(uint32_t index) { return *servers_[index]; }

  // The index of the server that owns `key`, or Distribution::kNoServer when none is live.
  uint32_t server_for(std::string_view key) {
    if (ejected_ != 0) restore_due();
    return distribution_->server_for(key);
  }

  bool is_live(uint32_t index) const { return live_[index]; }

  // Where this pool's routed keys are counted; null: not counted.
  PoolCounters* counters = nullptr;
  void count(config::RouteOp op, uint64_t n = 1) {
    if (counters != nullptr) counters->count(op, n);
  }
  size_t ejected_count() const { return ejected_; }

  // The same, safe to read from other threads (stats): published with relaxed stores whenever
  // the distribution is rebuilt. A server whose retry time has passed is shown back only once
  // the worker routes its next request (that is when the pool looks at the clock).
  bool live_for_stats(uint32_t index) const {
    return published_live_[index].load(std::memory_order_relaxed);
  }
  size_t ejected_for_stats() const { return published_ejected_.load(std::memory_order_relaxed); }
  const Distribution& distribution() const { return *distribution_; }

  // PartRouter: the target is a server index.
  void send_part(uint32_t target, std::string_view, const std::string_view* pieces, size_t count,
                 protocol::ReplyShape shape, ReplyHandler& handler, uint32_t cookie,
                 uint32_t affinity) override {
    servers_[target]->send(pieces, count, shape, handler, cookie, affinity);
  }

  // HealthObserver: with auto_eject_hosts, takes the server out until server_retry_timeout.
  void on_server_ejected(uint32_t server_index) override;

 private:
  void restore_due();
  void rebuild();

  const config::PoolConfig& config_;
  std::vector<Destination*> servers_;
  std::vector<RingServer> ring_servers_;
  std::vector<bool> live_;
  std::vector<Clock::time_point> retry_at_;
  std::optional<Distribution> distribution_;
  size_t ejected_ = 0;
  std::unique_ptr<std::atomic<bool>[]> published_live_;
  std::atomic<size_t> published_ejected_{0};
  Clock::time_point next_restore_{};
};

}  // namespace cachegate::routing
