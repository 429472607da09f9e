#pragma once

// The figures `stats` answers with, summed over workers when asked (memcached's STAT format).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/latency_histogram.h"
#include "routing/destination.h"

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

  // Configuration reloads, for stats, INFO and metrics (written by the main thread).
  std::atomic<uint64_t> reloads_ok{0};
  std::atomic<uint64_t> reloads_failed{0};
  std::atomic<uint64_t> config_generation{1};

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

// One backend server's figures, summed over the workers.
struct ServerFigures {
  std::string pool, server, host;  // server: its name, else host:port
  uint16_t port = 0;
  uint64_t requests = 0, replies = 0, failures = 0, timeouts = 0, connects = 0,
           connect_failures = 0, connections = 0, in_flight = 0, ejections = 0;
  uint64_t failures_by_kind[6] = {};                   // by routing::Failure
  uint64_t dedicated_open = 0, dedicated_refused = 0;  // connections for one client alone
  uint64_t error_replies = 0;
  uint32_t ejected_in_workers = 0;  // workers whose pool has it ejected now
  uint32_t failing_in_workers = 0;  // workers where it fails fast (two failures in a row or more)
  uint32_t workers = 0;             // workers that run it
  // The workers' latency histograms (backends::LatencyHistogram's slots), added up.
  std::array<uint64_t, backends::LatencyHistogram::kSlots> latency_counts{};
  uint64_t latency_sum_us = 0;
};
std::vector<ServerFigures> server_figures(const Registry& registry);

// One listener's figures (ListenerCounters), summed over the workers.
struct ListenerFigures {
  uint64_t open = 0, accepted = 0, rejected = 0, handshakes = 0, handshake_failures = 0,
           auth_failures = 0, requests = 0, slow = 0;
  std::array<uint64_t, backends::LatencyHistogram::kSlots> latency{};
  uint64_t latency_sum_us = 0;
};
std::map<std::string, ListenerFigures> listener_figures(const Registry& registry);

// Keys routed to each pool by operation (routing::PoolCounters, indexed by config::RouteOp),
// summed over the workers.
std::map<std::string, std::array<uint64_t, 5>> pool_figures(const Registry& registry);

// What `stats` and INFO add for operators: the configuration's generation and reloads, and each
// listener's figures ("listener_<name>_requests" …).
std::vector<std::pair<std::string, uint64_t>> operation_figures(const Registry& registry);

bool render_memcache_stats(Worker& worker, std::string_view args, std::string& out);

}  // namespace cachegate::proxy
