#pragma once

// Per-worker counters. Each worker writes only its own (a relaxed load and store, no locked
// read-modify-write, no sharing of cache lines between workers); readers on other threads sum
// them with relaxed loads when stats are asked for.

#include <atomic>
#include <cstdint>

#include "backends/latency_histogram.h"

namespace cachegate::proxy {

class Counter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct alignas(64) WorkerCounters {
  Counter curr_connections;
  Counter total_connections;
  Counter rejected_connections;  // closed at accept: the listener's max_connections was reached
  Counter accept_errors;
  Counter bytes_read;
  Counter bytes_written;
  // memcached's own names where it has one.
  Counter cmd_get;  // keys asked for by get/gets/gat/gats
  Counter get_hits;
  Counter get_misses;
  Counter cmd_set;  // storage commands
  Counter cmd_touch;
  Counter cmd_flush;
  Counter cmd_delete;
  Counter cmd_arith;         // incr/decr
  Counter cmd_meta;          // mg ms md ma me mn
  Counter multiget_fanouts;  // multi-key gets split over several servers
  Counter client_errors;     // requests rejected by the parser (ERROR/CLIENT_ERROR/too large)
  Counter backend_failures;  // requests answered SERVER_ERROR because a backend failed
  Counter backend_errors;    // error replies passed on from backends
  Counter noreply_discarded_errors;  // errors nobody was waiting for (noreply)
  Counter flush_refused;
  Counter paused_reads;    // times a client hit its pipeline/output bound and reading paused
  Counter tls_handshakes;  // completed
  Counter tls_handshake_failures;  // refused, broken or timed out (timeouts included)
  Counter tls_handshake_timeouts;
  Counter auth_successes;  // logins by password or client certificate
  Counter auth_failures;   // refused passwords
  Counter auth_slowed;     // refusals answered late: their address failed too often
  Counter auth_blocked;    // attempts refused outright: their address is blocked
  Counter auth_timeouts;   // connections closed for not logging in in time
  Counter auth_denied;
  Counter permission_denied;    // requests refused by the user's allowed operations or keys //
                                // requests refused before login (NOAUTH, unauthenticated)
  Counter output_limit_closes;  // clients disconnected for holding too many reply bytes
  Counter redis_commands;       // Redis requests received
  Counter redis_crossslot;      // refused: keys on several servers
  Counter redis_unsupported;    // refused: a command cachegate does not carry
};

// Per listener, per worker (kept under the listener's name across reloads).
struct alignas(64) ListenerCounters {
  Counter connections_open;
  Counter accepted;
  Counter rejected;  // closed at accept: max_connections
  Counter tls_handshakes;
  Counter tls_handshake_failures;
  Counter auth_failures;
  Counter requests;       // requests answered through a reply slot (forwarded, or queued behind)
  Counter slow_requests;  // of those, slower than slow_log.threshold
  // From reading a request to queueing its reply for the client.
  backends::LatencyHistogram latency;
};

}  // namespace cachegate::proxy
