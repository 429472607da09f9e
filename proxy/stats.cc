#include "proxy/stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <ctime>

#include "cachegate/version.h"
#include "proxy/worker.h"

namespace cachegate::proxy {

namespace {

void stat(std::string& out, std::string_view name, uint64_t value) {
  out.append("STAT ");
  out.append(name);
  out.push_back(' ');
  out.append(std::to_string(value));
  out.append("\r\n");
}

void stat(std::string& out, std::string_view name, std::string_view value) {
  out.append("STAT ");
  out.append(name);
  out.push_back(' ');
  out.append(value);
  out.append("\r\n");
}

std::string timeval_text(const timeval& tv) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%ld.%06ld", static_cast<long>(tv.tv_sec),
                static_cast<long>(tv.tv_usec));
  return buf;
}

uint64_t sum(const Registry& registry, Counter WorkerCounters::*field) {
  return total(registry, field);
}

}  // namespace

uint64_t total(const Registry& registry, Counter WorkerCounters::*field) {
  uint64_t sum = 0;
  for (Worker* w : registry.workers())
    sum += (w->counters().*field).get();
  return sum;
}

std::vector<std::pair<std::string_view, uint64_t>> route_figures(const Registry& registry) {
  using routing::RouteCounters;
  static constexpr std::pair<std::string_view, std::atomic<uint64_t> RouteCounters::*> kFields[] = {
      {"route_requests", &RouteCounters::routed},
      {"route_replica_failures", &RouteCounters::replica_failures},
      {"route_failovers", &RouteCounters::failovers},
      {"route_async_pending", &RouteCounters::async_pending},
      {"route_async_dropped", &RouteCounters::async_dropped},
      {"route_shadow_sent", &RouteCounters::shadow_sent},
      {"route_shadow_failures", &RouteCounters::shadow_failures},
      {"route_shadow_dropped", &RouteCounters::shadow_dropped},
      {"route_warmup_fills", &RouteCounters::warmup_fills}};
  std::vector<std::pair<std::string_view, uint64_t>> out;
  for (const auto& [name, field] : kFields) {
    uint64_t sum = 0;
    for (Worker* w : registry.workers())
      sum += (w->route_counters().*field).load(std::memory_order_relaxed);
    out.emplace_back(name, sum);
  }
  return out;
}

std::string_view version_reply() {
  static const std::string reply = std::string("VERSION 1.6.0-cachegate-") + kVersion + "\r\n";
  return reply;
}

bool render_memcache_stats(Worker& worker, std::string_view args, std::string& out) {
  const Registry& registry = worker.registry();
  const auto& config = worker.config();
  if (args.empty()) {
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::steady_clock::now() - registry.started());
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    stat(out, "pid", static_cast<uint64_t>(::getpid()));
    stat(out, "uptime", static_cast<uint64_t>(uptime.count()));
    stat(out, "time", static_cast<uint64_t>(std::time(nullptr)));
    stat(out, "version", std::string("cachegate-") + kVersion);
    stat(out, "pointer_size", static_cast<uint64_t>(sizeof(void*) * 8));
    stat(out, "rusage_user", timeval_text(usage.ru_utime));
    stat(out, "rusage_system", timeval_text(usage.ru_stime));
    stat(out, "curr_connections", sum(registry, &WorkerCounters::curr_connections));
    stat(out, "total_connections", sum(registry, &WorkerCounters::total_connections));
    stat(out, "rejected_connections", sum(registry, &WorkerCounters::rejected_connections));
    stat(out, "threads", static_cast<uint64_t>(registry.workers().size()));
    stat(out, "cmd_get", sum(registry, &WorkerCounters::cmd_get));
    stat(out, "cmd_set", sum(registry, &WorkerCounters::cmd_set));
    stat(out, "cmd_flush", sum(registry, &WorkerCounters::cmd_flush));
    stat(out, "cmd_touch", sum(registry, &WorkerCounters::cmd_touch));
    stat(out, "get_hits", sum(registry, &WorkerCounters::get_hits));
    stat(out, "get_misses", sum(registry, &WorkerCounters::get_misses));
    stat(out, "bytes_read", sum(registry, &WorkerCounters::bytes_read));
    stat(out, "bytes_written", sum(registry, &WorkerCounters::bytes_written));
    stat(out, "limit_maxbytes_item", config.limits.item_size_max);
    // cachegate's own figures.
    stat(out, "cachegate_cmd_delete", sum(registry, &WorkerCounters::cmd_delete));
    stat(out, "cachegate_cmd_arith", sum(registry, &WorkerCounters::cmd_arith));
    stat(out, "cachegate_cmd_meta", sum(registry, &WorkerCounters::cmd_meta));
    stat(out, "cachegate_multiget_fanouts", sum(registry, &WorkerCounters::multiget_fanouts));
    stat(out, "cachegate_client_errors", sum(registry, &WorkerCounters::client_errors));
    stat(out, "cachegate_backend_failures", sum(registry, &WorkerCounters::backend_failures));
    stat(out, "cachegate_backend_errors", sum(registry, &WorkerCounters::backend_errors));
    stat(out, "cachegate_noreply_discarded_errors",
         sum(registry, &WorkerCounters::noreply_discarded_errors));
    stat(out, "cachegate_flush_refused", sum(registry, &WorkerCounters::flush_refused));
    stat(out, "cachegate_paused_reads", sum(registry, &WorkerCounters::paused_reads));
    stat(out, "cachegate_output_limit_closes", sum(registry, &WorkerCounters::output_limit_closes));
    stat(out, "cachegate_tls_handshakes", sum(registry, &WorkerCounters::tls_handshakes));
    stat(out, "cachegate_tls_handshake_failures",
         sum(registry, &WorkerCounters::tls_handshake_failures));
    stat(out, "cachegate_tls_handshake_timeouts",
         sum(registry, &WorkerCounters::tls_handshake_timeouts));
    stat(out, "cachegate_auth_successes", sum(registry, &WorkerCounters::auth_successes));
    stat(out, "cachegate_auth_failures", sum(registry, &WorkerCounters::auth_failures));
    stat(out, "cachegate_auth_slowed", sum(registry, &WorkerCounters::auth_slowed));
    stat(out, "cachegate_auth_blocked", sum(registry, &WorkerCounters::auth_blocked));
    stat(out, "cachegate_auth_timeouts", sum(registry, &WorkerCounters::auth_timeouts));
    stat(out, "cachegate_auth_denied", sum(registry, &WorkerCounters::auth_denied));
    stat(out, "cachegate_permission_denied", sum(registry, &WorkerCounters::permission_denied));
    stat(out, "cachegate_accept_errors", sum(registry, &WorkerCounters::accept_errors));
    for (const auto& [name, value] : route_figures(registry))
      stat(out, "cachegate_" + std::string(name), value);
    uint64_t servers = 0, ejected = 0, connections = 0, requests = 0, failures = 0, timeouts = 0;
    for (Worker* w : registry.workers()) {
      for (const auto& pool : w->pools()) {
        ejected += pool.pool->ejected_for_stats();
        for (const auto& server : pool.servers) {
          auto& c = server->counters();
          connections += c.connections_open.load(std::memory_order_relaxed);
          requests += c.requests.load(std::memory_order_relaxed);
          failures += c.failures.load(std::memory_order_relaxed);
          timeouts += c.timeouts.load(std::memory_order_relaxed);
        }
      }
    }
    for (const auto& pool : config.pools)
      servers += pool.servers.size();
    stat(out, "cachegate_pools", static_cast<uint64_t>(config.pools.size()));
    stat(out, "cachegate_servers", servers);
    stat(out, "cachegate_servers_ejected", ejected);
    stat(out, "cachegate_backend_connections", connections);
    stat(out, "cachegate_backend_requests", requests);
    stat(out, "cachegate_backend_request_failures", failures);
    stat(out, "cachegate_backend_timeouts", timeouts);
    out.append("END\r\n");
    return true;
  }
  if (args == "servers") {
    for (size_t p = 0; p < config.pools.size(); ++p) {
      const auto& pool = config.pools[p];
      for (size_t s = 0; s < pool.servers.size(); ++s) {
        uint64_t requests = 0, replies = 0, failures = 0, timeouts = 0, connects = 0,
                 connect_failures = 0, connections = 0, in_flight = 0, ejections = 0, ejected = 0;
        for (Worker* w : registry.workers()) {
          auto& c = w->pools()[p].servers[s]->counters();
          requests += c.requests.load(std::memory_order_relaxed);
          replies += c.replies.load(std::memory_order_relaxed);
          failures += c.failures.load(std::memory_order_relaxed);
          timeouts += c.timeouts.load(std::memory_order_relaxed);
          connects += c.connects.load(std::memory_order_relaxed);
          connect_failures += c.connect_failures.load(std::memory_order_relaxed);
          connections += c.connections_open.load(std::memory_order_relaxed);
          in_flight += c.in_flight.load(std::memory_order_relaxed);
          ejections += c.ejections.load(std::memory_order_relaxed);
          ejected += w->pools()[p].pool->live_for_stats(static_cast<uint32_t>(s)) ? 0 : 1;
        }
        const std::string prefix = pool.name + ":" + pool.servers[s].host + ":" +
                                   std::to_string(pool.servers[s].port) + ":";
        stat(out, prefix + "requests", requests);
        stat(out, prefix + "replies", replies);
        stat(out, prefix + "failures", failures);
        stat(out, prefix + "timeouts", timeouts);
        stat(out, prefix + "connects", connects);
        stat(out, prefix + "connect_failures", connect_failures);
        stat(out, prefix + "connections", connections);
        stat(out, prefix + "in_flight", in_flight);
        stat(out, prefix + "ejections", ejections);
        stat(out, prefix + "ejected_in_workers", ejected);
      }
    }
    out.append("END\r\n");
    return true;
  }
  return false;
}

}  // namespace cachegate::proxy
