#include "proxy/stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <ctime>

#include "cachegate/version.h"
#include "proxy/counters.h"
#include "proxy/generation.h"
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
      w->read_route_counters([&](const std::string&, const RouteCounters& c) {
        sum += (c.*field).load(std::memory_order_relaxed);
      });
    out.emplace_back(name, sum);
  }
  return out;
}

std::vector<ServerFigures> server_figures(const Registry& registry) {
  std::vector<ServerFigures> figures;
  // By pool name and address: during a reload workers may briefly run different generations.
  auto entry = [&figures](const std::string& pool, const config::ServerConfig& server) {
    for (auto& f : figures)
      if (f.pool == pool && f.host == server.host && f.port == server.port) return &f;
    ServerFigures& f = figures.emplace_back();
    f.pool = pool;
    f.server = server.name.empty() ? server.host + ":" + std::to_string(server.port) : server.name;
    f.host = server.host;
    f.port = server.port;
    return &f;
  };
  for (Worker* w : registry.workers()) {
    w->read_generation([&](const Generation& generation) {
      const auto& config = generation.config();
      for (size_t p = 0; p < config.pools.size(); ++p) {
        const auto& runtime = generation.pools[p];
        for (size_t s = 0; s < config.pools[p].servers.size(); ++s) {
          ServerFigures& f = *entry(config.pools[p].name, config.pools[p].servers[s]);
          const auto& c = runtime.servers[s]->counters();
          auto load = [](const std::atomic<uint64_t>& v) {
            return v.load(std::memory_order_relaxed);
          };
          f.requests += load(c.requests);
          f.replies += load(c.replies);
          f.failures += load(c.failures);
          f.timeouts += load(c.timeouts);
          f.connects += load(c.connects);
          f.connect_failures += load(c.connect_failures);
          f.connections += load(c.connections_open);
          f.in_flight += load(c.in_flight);
          f.ejections += load(c.ejections);
          f.ejected_in_workers += runtime.pool->live_for_stats(static_cast<uint32_t>(s)) ? 0 : 1;
          f.failing_in_workers += load(c.consecutive_failures) >= 2 ? 1 : 0;
          f.workers += 1;
          for (size_t k = 0; k < routing::kFailureKinds; ++k)
            f.failures_by_kind[k] += load(c.failures_by_kind[k]);
          f.error_replies += load(c.error_replies);
          f.dedicated_open += load(c.dedicated_open);
          f.dedicated_refused += load(c.dedicated_refused);
          for (size_t b = 0; b < f.latency_counts.size(); ++b)
            f.latency_counts[b] += c.latency.count(b);
          f.latency_sum_us += c.latency.sum_us();
        }
      }
    });
  }
  return figures;
}

std::map<std::string, ListenerFigures> listener_figures(const Registry& registry) {
  std::map<std::string, ListenerFigures> totals;
  for (Worker* w : registry.workers()) {
    w->read_listener_counters([&](const std::string& name, const ListenerCounters& c) {
      ListenerFigures& t = totals[name];
      t.open += c.connections_open.get();
      t.accepted += c.accepted.get();
      t.rejected += c.rejected.get();
      t.handshakes += c.tls_handshakes.get();
      t.handshake_failures += c.tls_handshake_failures.get();
      t.auth_failures += c.auth_failures.get();
      t.requests += c.requests.get();
      t.slow += c.slow_requests.get();
      for (size_t b = 0; b < t.latency.size(); ++b)
        t.latency[b] += c.latency.count(b);
      t.latency_sum_us += c.latency.sum_us();
    });
  }
  return totals;
}

std::map<std::string, std::array<uint64_t, 5>> pool_figures(const Registry& registry) {
  std::map<std::string, std::array<uint64_t, 5>> pools;
  for (Worker* w : registry.workers())
    w->read_pool_counters([&](const std::string& name, const routing::PoolCounters& c) {
      auto& ops = pools[name];
      for (size_t op = 0; op < ops.size(); ++op)
        ops[op] += c.requests[op].load(std::memory_order_relaxed);
    });
  return pools;
}

std::vector<std::pair<std::string, uint64_t>> operation_figures(const Registry& registry) {
  std::vector<std::pair<std::string, uint64_t>> out;
  out.emplace_back("config_generation", registry.config_generation.load());
  out.emplace_back("config_reloads", registry.reloads_ok.load());
  out.emplace_back("config_reload_failures", registry.reloads_failed.load());
  for (const auto& [name, f] : listener_figures(registry)) {
    const std::string prefix = "listener_" + name + "_";
    out.emplace_back(prefix + "connections", f.open);
    out.emplace_back(prefix + "accepted", f.accepted);
    out.emplace_back(prefix + "rejected", f.rejected);
    out.emplace_back(prefix + "requests", f.requests);
    out.emplace_back(prefix + "slow_requests", f.slow);
    out.emplace_back(prefix + "auth_failures", f.auth_failures);
    out.emplace_back(prefix + "tls_handshake_failures", f.handshake_failures);
  }
  for (const auto& [name, ops] : pool_figures(registry))
    for (size_t op = 0; op < ops.size(); ++op)
      out.emplace_back("pool_" + name + "_" +
                           std::string(config::to_string(static_cast<config::RouteOp>(op))) +
                           "_requests",
                       ops[op]);
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
    for (const auto& [name, value] : operation_figures(registry))
      stat(out, "cachegate_" + name, value);
    uint64_t servers = 0, ejected = 0, connections = 0, requests = 0, failures = 0, timeouts = 0;
    for (Worker* w : registry.workers()) {
      w->read_generation([&](const Generation& generation) {
        for (const auto& pool : generation.pools) {
          ejected += pool.pool->ejected_for_stats();
          for (const auto& server : pool.servers) {
            auto& c = server->counters();
            connections += c.connections_open.load(std::memory_order_relaxed);
            requests += c.requests.load(std::memory_order_relaxed);
            failures += c.failures.load(std::memory_order_relaxed);
            timeouts += c.timeouts.load(std::memory_order_relaxed);
          }
        }
      });
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
    for (const ServerFigures& f : server_figures(registry)) {
      const std::string prefix = f.pool + ":" + f.host + ":" + std::to_string(f.port) + ":";
      stat(out, prefix + "requests", f.requests);
      stat(out, prefix + "replies", f.replies);
      stat(out, prefix + "failures", f.failures);
      stat(out, prefix + "timeouts", f.timeouts);
      stat(out, prefix + "connects", f.connects);
      stat(out, prefix + "connect_failures", f.connect_failures);
      stat(out, prefix + "connections", f.connections);
      stat(out, prefix + "in_flight", f.in_flight);
      stat(out, prefix + "ejections", f.ejections);
      stat(out, prefix + "ejected_in_workers", f.ejected_in_workers);
      stat(out, prefix + "dedicated_connections", f.dedicated_open);
      stat(out, prefix + "dedicated_refused", f.dedicated_refused);
    }
    out.append("END\r\n");
    return true;
  }
  return false;
}

}  // namespace cachegate::proxy
