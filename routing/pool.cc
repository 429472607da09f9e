#include "routing/pool.h"

namespace cachegate::routing {

Pool::Pool(const config::PoolConfig& config, std::vector<Destination*> servers)
    : config_(config), servers_(std::move(servers)) {
  ring_servers_.reserve(config_.servers.size());
  for (const auto& s : config_.servers)
    ring_servers_.push_back(RingServer{s.identity, s.weight});
  live_.assign(servers_.size(), true);
  published_live_ = std::make_unique<std::atomic<bool>[]>(servers_.size());
  retry_at_.assign(servers_.size(), Clock::time_point{});
  rebuild();
}

void Pool::on_server_ejected(uint32_t index) {
  if (!config_.auto_eject_hosts || index >= live_.size() || !live_[index]) return;
  live_[index] = false;
  retry_at_[index] = Clock::now() + config_.server_retry_timeout;
  ++ejected_;
  rebuild();
}

void Pool::restore_due() {
  const auto now = Clock::now();
  if (now < next_restore_) return;
  bool changed = false;
  for (size_t i = 0; i < live_.size(); ++i) {
    if (!live_[i] && retry_at_[i] <= now) {
      live_[i] = true;
      --ejected_;
      changed = true;
    }
  }
  if (changed) rebuild();
}

void Pool::rebuild() {
  distribution_.emplace(config_.distribution, config_.hash, config_.hash_tag, ring_servers_, live_);
  next_restore_ = Clock::time_point::max();
  for (size_t i = 0; i < live_.size(); ++i) {
    if (!live_[i] && retry_at_[i] < next_restore_) next_restore_ = retry_at_[i];
    published_live_[i].store(live_[i], std::memory_order_relaxed);
  }
  published_ejected_.store(ejected_, std::memory_order_relaxed);
}

}  // namespace cachegate::routing
