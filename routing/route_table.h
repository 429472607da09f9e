#pragma once

// A route table as one worker uses it: its rules, each with the worker's Pool objects for the
// pools it names, and the per-worker state of its read policy.
//
// Which rule a request takes: among the rules whose conditions all hold (key prefix, key glob,
// operation, listener, user), the one with the longest prefix; a rule without a prefix counts as
// prefix length 0, and among equally long ones the first in the list wins. Loading guarantees a
// catch-all, so every request finds a rule.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "protocol/memcache_request.h"
#include "routing/pool.h"
#include "routing/ref_counted.h"

namespace cachegate::routing {

struct RouteRule {
  const config::RouteRule* config = nullptr;
  size_t index = 0;  // position in the table, for messages and explain
  // config->pools, resolved: [0] for kPool; in order for kReplicate and kFailover; {cold, warm}
  // for kWarmup.
  std::vector<Pool*> pools;
  Pool* shadow = nullptr;
  // Per worker: the next pool of a round_robin read, each pool's smoothed read latency
  // (least_latency, microseconds; 0 until measured) and the shadow sampling accumulator.
  uint32_t next_read = 0;
  std::vector<double> read_latency_us;
  double shadow_credit = 0;

  // The rule's pool when it is a plain `pool:` without anything that needs the route layer
  // (shadow, ttl, timeout, rewrite).
  Pool* direct_pool() const { return plain ? pools[0] : nullptr; }
  bool plain = false;  // set when the table is built
  // What owns this rule and the pools it names (the configuration generation), held by every
  // request still working through the rule after its client was answered (a quorum's last
  // replica, a warm-up fill), so the rule outlives them; null: nothing to hold.
  RefCounted* owner = nullptr;
  // The pool keyless requests (flush_all, KEYS, SCAN, INFO …) go to: the first the rule names.
  Pool& primary() const { return *pools[0]; }
};

class RouteTable {
 public:
  // `pool_named` returns the worker's Pool for a pool name that loading has checked exists.
  RouteTable(const config::RouteTableConfig& config,
             const std::function<Pool*(std::string_view)>& pool_named);

  const config::RouteTableConfig& config() const { return config_; }
  size_t size() const { return rules_.size(); }
  RouteRule& rule(size_t index) { return rules_[index]; }

  // The rule for a request. `user` is empty for anonymous clients.
  RouteRule& select(std::string_view key, config::RouteOp op, std::string_view listener,
                    std::string_view user);

 private:
  const config::RouteTableConfig& config_;
  std::vector<RouteRule> rules_;
};

// The index of the rule a request takes (see above); rules.size() when none matches.
size_t select_rule(const std::vector<config::RouteRule>& rules, std::string_view key,
                   config::RouteOp op, std::string_view listener, std::string_view user);

// What a memcached command does, for rule matching and permissions; nullopt for what cachegate
// answers itself. An mg is a read here; one with N or T changes the item, which only its flags
// tell (the session looks at them).
std::optional<config::RouteOp> memcache_route_op(protocol::memcache::Command command);

// A key as a rule's rewrite sends it: `strip` taken off where the key starts with it, then `add`
// in front. (On globs too, given the prefixes glob-escaped.)
std::string rewritten_key(std::string_view key, std::string_view strip, std::string_view add);

// Whether one rule's conditions all hold.
bool rule_matches(const config::RouteMatch& match, std::string_view key, config::RouteOp op,
                  std::string_view listener, std::string_view user);

}  // namespace cachegate::routing
