#include "routing/explain.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>
#include <vector>

#include "protocol/ascii.h"
#include "protocol/redis_commands.h"
#include "routing/distribution.h"
#include "routing/redis_policy.h"
#include "routing/route_table.h"

namespace cachegate::routing {

namespace {

using protocol::lower;

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

std::string at(const config::Config& config, const config::SourceLocation& where) {
  return (config.source.empty() ? std::string("line ") : config.source + ":") +
         std::to_string(where.line) + ":" + std::to_string(where.column);
}

// The server `key` maps to in `pool` with every server live.
std::string server_of(const config::PoolConfig& pool, std::string_view key) {
  std::vector<RingServer> ring;
  for (const auto& s : pool.servers)
    ring.push_back(RingServer{s.identity, s.weight});
  const Distribution d(pool.distribution, pool.hash, pool.hash_tag, ring);
  const uint32_t s = d.server_for(key);
  if (s == Distribution::kNoServer) return "no server";
  std::string text = pool.servers[s].spec;
  if (pool.distribution == config::Distribution::kRandom) text += " (random: any server)";
  return text;
}

std::string describe_match(const config::RouteMatch& m) {
  std::vector<std::string> parts;
  if (m.prefix) parts.push_back("prefix: " + quoted(*m.prefix));
  if (!m.glob.empty()) parts.push_back("glob: " + quoted(m.glob));
  if (m.ops != config::kAllRouteOps) {
    std::string ops;
    for (auto op : {config::RouteOp::kRead, config::RouteOp::kWrite, config::RouteOp::kDelete,
                    config::RouteOp::kArithmetic, config::RouteOp::kAdmin}) {
      if ((m.ops & config::route_op_bit(op)) == 0) continue;
      ops += (ops.empty() ? "" : ", ") + std::string(config::to_string(op));
    }
    parts.push_back("ops: [" + ops + "]");
  }
  auto list = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names)
      out += (out.empty() ? "" : ", ") + n;
    return "[" + out + "]";
  };
  if (!m.listeners.empty()) parts.push_back("listener: " + list(m.listeners));
  if (!m.users.empty()) parts.push_back("user: " + list(m.users));
  std::string out;
  for (const auto& p : parts)
    out += (out.empty() ? "" : ", ") + p;
  return "{" + out + "}";
}

void describe_pool(const config::Config& config, std::string_view name, std::string_view key,
                   const std::string& indent, std::string& out) {
  const config::PoolConfig* pool = config.find_pool(name);
  if (pool == nullptr) return;
  out += indent + "pool " + std::string(name) + ": " + server_of(*pool, key) + "\n";
}

}  // namespace

std::optional<config::RouteOp> parse_route_op(std::string_view name, config::Protocol protocol) {
  const std::string n = lower(name);
  static constexpr std::pair<std::string_view, config::RouteOp> kClasses[] = {
      {"read", config::RouteOp::kRead},
      {"write", config::RouteOp::kWrite},
      {"delete", config::RouteOp::kDelete},
      {"arithmetic", config::RouteOp::kArithmetic},
      {"admin", config::RouteOp::kAdmin}};
  for (const auto& [text, op] : kClasses)
    if (n == text) return op;
  if (protocol == config::Protocol::kMemcached) {
    using protocol::memcache::Command;
    for (auto c = static_cast<int>(Command::kGet); c <= static_cast<int>(Command::kQuit); ++c) {
      const auto command = static_cast<Command>(c);
      if (protocol::memcache::command_name(command) == n) return memcache_route_op(command);
    }
    return std::nullopt;
  }
  const protocol::redis::CommandInfo* command = protocol::redis::find_command(n);
  if (command == nullptr) return std::nullopt;
  return redis_route_op(*command, redis_policy(*command));
}

std::optional<std::string> explain_route(const config::Config& config, std::string_view listener,
                                         std::string_view op_name, std::string_view key,
                                         std::string_view user, std::string& error) {
  const auto l = std::find_if(config.listeners.begin(), config.listeners.end(),
                              [&](const config::ListenerConfig& c) { return c.name == listener; });
  if (l == config.listeners.end()) {
    error = "no listener named " + quoted(listener);
    return std::nullopt;
  }
  const std::optional<config::RouteOp> op = parse_route_op(op_name, l->protocol);
  if (!op) {
    error = "unknown operation " + quoted(op_name) + " for a " +
            std::string(config::to_string(l->protocol)) +
            " listener (a command name, or read, write, delete, arithmetic, admin)";
    return std::nullopt;
  }
  if (!user.empty() && config.find_user(user) == nullptr) {
    error = "no user named " + quoted(user);
    return std::nullopt;
  }
  std::string out = "listener " + l->name + " (" + std::string(config::to_string(l->protocol)) +
                    "), " + std::string(config::to_string(*op)) + " of key " + quoted(key) +
                    (user.empty() ? " by an anonymous client" : " by user " + std::string(user)) +
                    "\n";
  if (l->route.empty()) {
    out += "pool " + l->pool + " (the listener's)\n";
    describe_pool(config, l->pool, key, "  ", out);
    return out;
  }
  const config::RouteTableConfig* table = config.find_route(l->route);
  if (table == nullptr) {
    error = "listener " + quoted(listener) + " names no known route";
    return std::nullopt;
  }
  // The same selection the proxy makes (RouteTable::select).
  const size_t chosen_index = select_rule(table->rules, key, *op, l->name, user);
  if (chosen_index == table->rules.size()) {
    error = "no rule of route " + quoted(table->name) + " matches";
    return std::nullopt;
  }
  const config::RouteRule& r = table->rules[chosen_index];
  out += "route " + table->name + ", rule " + std::to_string(chosen_index + 1) + " (" +
         at(config, r.where) + "): match " + describe_match(r.match) + "\n";
  switch (r.kind) {
    case config::RouteKind::kPool:
      out += "  pool\n";
      break;
    case config::RouteKind::kReplicate:
      out += "  replicate: mode " + std::string(config::to_string(r.mode)) + ", read " +
             std::string(config::to_string(r.read)) + (r.miss_failover ? ", miss_failover" : "") +
             "\n";
      break;
    case config::RouteKind::kFailover:
      out += "  failover, in this order" +
             (r.failover_ttl ? ", failover_ttl " + std::to_string(*r.failover_ttl) + "s" : "") +
             "\n";
      break;
    case config::RouteKind::kWarmup:
      out += "  warmup: cold first, then warm\n";
      break;
  }
  for (const auto& pool : r.pools)
    describe_pool(config, pool, key, "    ", out);
  if (!r.shadow_pool.empty()) {
    out += "  shadow (fraction " + std::to_string(r.shadow_fraction) + "):\n";
    describe_pool(config, r.shadow_pool, key, "    ", out);
  }
  if (r.ttl_max) out += "  ttl: at most " + std::to_string(*r.ttl_max) + "s\n";
  if (r.timeout) out += "  timeout: " + std::to_string(r.timeout->count()) + " ms\n";
  if (!r.strip_prefix.empty() || !r.add_prefix.empty())
    out += "  rewrite: strip " + quoted(r.strip_prefix) + ", add " + quoted(r.add_prefix) + "\n";
  return out;
}

}  // namespace cachegate::routing
