#pragma once

// The figures `stats` answers with, summed over workers when asked (memcached's STAT format).

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachegate::proxy {

class Worker;

// Every worker of the process, for readers that sum their counters. Filled before the workers
// start and not changed while they run.
class Registry {
 public:
  Registry() : started_(std::chrono::steady_clock::now()) {}
  void add(Worker* worker) { workers_.push_back(worker); }
  const std::vector<Worker*>& workers() const { return workers_; }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  std::vector<Worker*> workers_;
  std::chrono::steady_clock::time_point started_;
};

struct WorkerCounters;
class Counter;

// A counter summed over every worker (relaxed reads: a figure for people, not a fence).
uint64_t total(const Registry& registry, Counter WorkerCounters::*field);

// "VERSION …\r\n". The leading number is the memcached protocol level cachegate speaks (text and
// meta as in 1.6): client libraries parse it to decide what they may send.
std::string_view version_reply();

// Renders `stats <args>` into `out` (STAT lines and END). `args` empty: general figures;
// "servers": one block per backend server. Returns false for any other group.
// The route layer's counters (routing::RouteCounters) summed over the workers, by name.
std::vector<std::pair<std::string_view, uint64_t>> route_figures(const Registry& registry);

bool render_memcache_stats(Worker& worker, std::string_view args, std::string& out);

}  // namespace cachegate::proxy
