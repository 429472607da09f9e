#include "routing/route_table.h"

#include <algorithm>

#include "routing/glob.h"

namespace cachegate::routing {

namespace {

bool listed(const std::vector<std::string>& names, std::string_view name) {
  return names.empty() || std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::optional<config::RouteOp> memcache_route_op(protocol::memcache::Command command) {
  using protocol::memcache::Command;
  switch (command) {
    case Command::kGet:
    case Command::kGets:
    case Command::kMetaGet:
    case Command::kMetaDebug:
      return config::RouteOp::kRead;
    case Command::kGat:
    case Command::kGats:
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
    case Command::kTouch:
    case Command::kMetaSet:
      return config::RouteOp::kWrite;
    case Command::kDelete:
    case Command::kMetaDelete:
      return config::RouteOp::kDelete;
    case Command::kIncr:
    case Command::kDecr:
    case Command::kMetaArithmetic:
      return config::RouteOp::kArithmetic;
    case Command::kFlushAll:
      return config::RouteOp::kAdmin;
    case Command::kMetaNoop:
    case Command::kVersion:
    case Command::kVerbosity:
    case Command::kStats:
    case Command::kQuit:
      break;
  }
  return std::nullopt;
}

std::string rewritten_key(std::string_view key, std::string_view strip, std::string_view add) {
  std::string out(add);
  out.append(key.starts_with(strip) ? key.substr(strip.size()) : key);
  return out;
}

bool rule_matches(const config::RouteMatch& match, std::string_view key, config::RouteOp op,
                  std::string_view listener, std::string_view user) {
  if ((match.ops & config::route_op_bit(op)) == 0) return false;
  if (match.prefix && key.substr(0, match.prefix->size()) != *match.prefix) return false;
  if (!match.glob.empty() && !glob_match(match.glob, key)) return false;
  // A rule for named users never matches an anonymous client.
  if (!match.users.empty() && (user.empty() || !listed(match.users, user))) return false;
  return listed(match.listeners, listener);
}

RouteTable::RouteTable(const config::RouteTableConfig& config,
                       const std::function<Pool*(std::string_view)>& pool_named)
    : config_(config) {
  rules_.resize(config.rules.size());
  for (size_t i = 0; i < rules_.size(); ++i) {
    RouteRule& r = rules_[i];
    r.config = &config.rules[i];
    r.index = i;
    for (const auto& name : r.config->pools)
      r.pools.push_back(pool_named(name));
    if (!r.config->shadow_pool.empty()) r.shadow = pool_named(r.config->shadow_pool);
    r.read_latency_us.assign(r.pools.size(), 0.0);
    const auto& c = *r.config;
    r.plain = c.kind == config::RouteKind::kPool && r.shadow == nullptr && !c.ttl_max &&
              !c.timeout && c.strip_prefix.empty() && c.add_prefix.empty();
  }
}

size_t select_rule(const std::vector<config::RouteRule>& rules, std::string_view key,
                   config::RouteOp op, std::string_view listener, std::string_view user) {
  size_t best = rules.size();
  size_t best_length = 0;
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto& m = rules[i].match;
    const size_t length = m.prefix ? m.prefix->size() : 0;
    if (best != rules.size() && length <= best_length) continue;
    if (!rule_matches(m, key, op, listener, user)) continue;
    best = i;
    best_length = length;
  }
  return best;
}

RouteRule& RouteTable::select(std::string_view key, config::RouteOp op, std::string_view listener,
                              std::string_view user) {
  const size_t i = select_rule(config_.rules, key, op, listener, user);
  // Loading guarantees a catch-all; the last rule stands in should a table ever lack one.
  return i < rules_.size() ? rules_[i] : rules_.back();
}

}  // namespace cachegate::routing
