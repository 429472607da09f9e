// Route tables: every key read into RouteTableConfig and RouteRule, listeners' `route`, and each
// rule's error pinned by path, line:column and message, as load_test.cc does for the rest.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "config/load.h"
#include "tests/unit/config/expected_errors.h"

namespace cachegate::config {
namespace {

// Memcached pools a, b, c, s and t (t with a hash tag), redis pool r, users alice and bob,
// listener mc on route table main and listener other on pool a; `routes:` on line 14 and
// `main:` on line 15.
const std::string kHeader = yaml(R"(
pools:
  a: {servers: ["127.0.0.1:21211:1"]}
  b: {servers: ["127.0.0.1:21212:1"]}
  c: {servers: ["127.0.0.1:21213:1"]}
  s: {servers: ["127.0.0.1:21214:1"]}
  t: {hash_tag: "{}", servers: ["127.0.0.1:21215:1"]}
  r: {protocol: redis, servers: ["127.0.0.1:6379:1"]}
users:
  - {name: alice, tls_identity: alice}
  - {name: bob, tls_identity: bob}
listeners:
  - {name: mc, listen: "127.0.0.1:22122", route: main}
  - {name: other, listen: "127.0.0.1:22123", pool: a}
routes:
  main:
)");

// kHeader with the rules of table main from line 16, each line indented by four spaces: a rule
// starts at column 5 ("- ") and its keys are at column 7.
std::string rules(const std::vector<std::string>& lines) {
  std::string out = kHeader;
  for (const auto& l : lines)
    out += "    " + l + "\n";
  return out;
}

// rules() with a catch-all rule after `lines`, for rules that are not catch-alls themselves.
std::string before_catch_all(std::vector<std::string> lines) {
  lines.push_back("- pool: a");
  return rules(lines);
}

// A valid configuration with one pool `cache` and listener `mc` (`- name: mc` on line 6), whose
// other keys are `lines` from line 8, column 5, then `rest` at the top level.
std::string listener_lines(const std::vector<std::string>& lines, std::string_view rest) {
  std::string out = yaml(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
)");
  for (const auto& l : lines)
    out += "    " + l + "\n";
  return out + std::string(yaml(rest));
}

// ---------------------------------------------------------------------------------------------
// What loads

TEST_CASE("the example route table loads into the structs, every key read", "[config][routes]") {
  const LoadResult r = require_ok(yaml(R"(
pools:
  a: {servers: ["127.0.0.1:21211:1"]}
  b: {servers: ["127.0.0.1:21212:1"]}
  c: {servers: ["127.0.0.1:21213:1"]}
  s: {servers: ["127.0.0.1:21214:1"]}
users:
  - {name: alice, tls_identity: alice}
  - {name: bob, tls_identity: bob}
routes:
  main:                       # route table name: same naming rules as pool names
    - match: {prefix: "session:"}
      replicate: {pools: [a, b, c], mode: quorum, read: least_latency, miss_failover: true}
    - match: {prefix: "feed:", ops: [read]}
      failover: [a, b]
      failover_ttl: 60        # seconds, only with failover
    - match: {glob: "tmp:*", listener: mc, user: [alice, bob]}   # listener/user: a name or a list
      pool: a
      shadow: {pool: s, fraction: 0.1}      # fraction 0.0-1.0, default 1.0
      rewrite: {strip_prefix: "tmp:", add_prefix: "t:"}
      ttl: {max: 3600}        # seconds
      timeout: 250            # milliseconds, overrides the pools' timeout
    - match: {}
      warmup: {cold: a, warm: b}
listeners:
  - {name: mc, listen: 127.0.0.1:11211, route: main}   # a listener names a pool OR a route
)"));
  const Config& c = r.config;
  REQUIRE(c.routes.size() == 1);
  const RouteTableConfig& t = c.routes[0];
  CHECK(t.name == "main");
  CHECK(t.protocol == Protocol::kMemcached);
  CHECK(t.where.line == 10);
  CHECK(t.where.column == 3);
  CHECK(c.find_route("main") == &t);
  CHECK(c.find_route("a") == nullptr);
  REQUIRE(t.rules.size() == 4);

  const RouteRule& session = t.rules[0];
  CHECK(session.match.prefix == "session:");
  CHECK(session.match.glob.empty());
  CHECK(session.match.ops == kAllRouteOps);
  CHECK(session.match.listeners.empty());
  CHECK(session.match.users.empty());
  CHECK_FALSE(session.match.catch_all());
  CHECK(session.kind == RouteKind::kReplicate);
  CHECK(session.pools == std::vector<std::string>{"a", "b", "c"});
  CHECK(session.mode == ReplicateMode::kQuorum);
  CHECK(session.read == ReadPolicy::kLeastLatency);
  CHECK(session.miss_failover);
  CHECK_FALSE(session.failover_ttl.has_value());
  CHECK(session.shadow_pool.empty());
  CHECK(session.strip_prefix.empty());
  CHECK(session.add_prefix.empty());
  CHECK_FALSE(session.ttl_max.has_value());
  CHECK_FALSE(session.timeout.has_value());
  CHECK(session.where.line == 11);
  CHECK(session.where.column == 7);

  const RouteRule& feed = t.rules[1];
  CHECK(feed.match.prefix == "feed:");
  CHECK(feed.match.ops == route_op_bit(RouteOp::kRead));
  CHECK(feed.kind == RouteKind::kFailover);
  CHECK(feed.pools == std::vector<std::string>{"a", "b"});
  CHECK(feed.failover_ttl == 60u);
  CHECK(feed.where.line == 13);

  const RouteRule& tmp = t.rules[2];
  CHECK_FALSE(tmp.match.prefix.has_value());
  CHECK(tmp.match.glob == "tmp:*");
  CHECK(tmp.match.listeners == std::vector<std::string>{"mc"});
  CHECK(tmp.match.users == std::vector<std::string>{"alice", "bob"});
  CHECK(tmp.kind == RouteKind::kPool);
  CHECK(tmp.pools == std::vector<std::string>{"a"});
  CHECK(tmp.shadow_pool == "s");
  CHECK(tmp.shadow_fraction == 0.1);
  CHECK(tmp.strip_prefix == "tmp:");
  CHECK(tmp.add_prefix == "t:");
  CHECK(tmp.ttl_max == 3600u);
  CHECK(tmp.timeout == std::chrono::milliseconds(250));
  CHECK(tmp.where.line == 16);

  const RouteRule& rest = t.rules[3];
  CHECK(rest.match.catch_all());
  CHECK(rest.kind == RouteKind::kWarmup);
  CHECK(rest.pools == std::vector<std::string>{"a", "b"});
  CHECK(rest.where.line == 22);

  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].route == "main");
  CHECK(c.listeners[0].pool.empty());
  CHECK(c.listeners[0].protocol == Protocol::kMemcached);
}

TEST_CASE("what a rule leaves out takes its default", "[config][routes]") {
  const Config c = require_ok(before_catch_all({
                                  "- match: {prefix: \"x:\"}",
                                  "  replicate: {pools: [a, b]}",
                                  "  shadow: {pool: s}",
                              }))
                       .config;
  REQUIRE(c.routes[0].rules.size() == 2);
  const RouteRule& x = c.routes[0].rules[0];
  CHECK(x.mode == ReplicateMode::kAllSync);
  CHECK(x.read == ReadPolicy::kFirst);
  CHECK_FALSE(x.miss_failover);
  CHECK(x.shadow_fraction == 1.0);
  // Without match, and with an empty one, a rule is a catch-all.
  const RouteRule& plain = c.routes[0].rules[1];
  CHECK(plain.match.catch_all());
  CHECK(plain.kind == RouteKind::kPool);
  CHECK(plain.pools == std::vector<std::string>{"a"});
  CHECK(require_ok(rules({"- match:", "  pool: a"})).config.routes[0].rules[0].match.catch_all());
  // Each of the five operations listed is the same as ops left out.
  CHECK(require_ok(rules({"- match: {ops: [read, write, delete, arithmetic, admin]}", "  pool: a"}))
            .config.routes[0]
            .rules[0]
            .match.catch_all());
  // A prefix may be empty; it is kept, and the rule is no catch-all.
  const RouteMatch empty =
      require_ok(before_catch_all({"- match: {prefix: \"\", ops: [read]}", "  pool: b"}))
          .config.routes[0]
          .rules[0]
          .match;
  CHECK(empty.prefix == "");
  CHECK_FALSE(empty.catch_all());
}

TEST_CASE("a redis route table serves redis listeners, whose protocol defaults to it",
          "[config][routes]") {
  const Config c = require_ok(yaml(R"(
pools:
  cache: {protocol: redis, servers: ["127.0.0.1:6379:1"]}
  backup: {redis: true, servers: ["127.0.0.1:6380:1"]}
listeners:
  - {name: rd, listen: "127.0.0.1:22122", route: cache}
  - {name: rd2, listen: "127.0.0.1:22123", protocol: redis, route: cache}
  - {name: direct, listen: "127.0.0.1:22124", pool: cache}
routes:
  cache:
    - failover: [cache, backup]
      failover_ttl: 2592000
)"))
                       .config;
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].protocol == Protocol::kRedis);
  CHECK(c.routes[0].rules[0].failover_ttl == 2592000u);
  REQUIRE(c.listeners.size() == 3);
  CHECK(c.listeners[0].route == "cache");
  CHECK(c.listeners[0].protocol == Protocol::kRedis);
  CHECK(c.listeners[1].protocol == Protocol::kRedis);
  CHECK(c.listeners[2].pool == "cache");
  CHECK(c.listeners[2].route.empty());
}

TEST_CASE("an empty routes is no route tables", "[config][routes]") {
  const std::string no_routes = yaml(R"(
pools:
  a: {servers: ["127.0.0.1:21211:1"]}
listeners:
  - {name: mc, listen: "127.0.0.1:22122", pool: a}
routes:
)");
  CHECK(require_ok(no_routes).config.routes.empty());
  CHECK(require_ok(no_routes.substr(0, no_routes.find("routes:"))).config.routes.empty());
}

// ---------------------------------------------------------------------------------------------
// Tables

TEST_CASE("routes is a map of table names to non-empty lists of rules", "[config][routes]") {
  const std::string listeners = yaml(R"(
pools:
  a: {servers: ["127.0.0.1:21211:1"]}
listeners:
  - {name: mc, listen: "127.0.0.1:22122", pool: a}
)");  // routes start at line 5
  require_error(
      listeners + "routes: [main]\n",
      {"routes", 5, 9, "expected a map of route table names to lists of rules, got a list"});
  require_error(listeners + "routes:\n  main: []\n",
                {"routes.main", 6, 9, "must list at least one rule"});
  require_error(listeners + "routes:\n  main:\n",
                {"routes.main", 6, 3, "must list at least one rule"});
  require_error(listeners + "routes:\n  main: {pool: a}\n",
                {"routes.main", 6, 9, "expected a list of rules, got a map"});
  require_error(listeners + "routes:\n  main:\n    - a\n",
                {"routes.main[0]", 7, 7, "expected a map, got 'a'"});
  require_error(listeners + "routes:\n  \"my table\":\n    - pool: a\n",
                {"routes.my table", 6, 3, "'my table' contains whitespace or control characters"});
  require_error(listeners + "routes:\n  " + std::string(256, 'm') + ":\n    - pool: a\n",
                {"routes." + std::string(256, 'm'), 6, 3, "is longer than 255 bytes"});
  require_error(listeners + "routes:\n  main:\n    - pool: a\n  main:\n    - pool: a\n",
                {"routes.main", 8, 3, "duplicate route table 'main' (first defined at 6:3)"});
  // Table names and pool names are apart: a table may be named after a pool.
  const Config c = require_ok(listeners + "routes:\n  a:\n    - pool: a\n").config;
  CHECK(c.find_route("a") != nullptr);
  CHECK(c.find_pool("a") != nullptr);
}

TEST_CASE("every route table has a catch-all rule", "[config][routes]") {
  require_error(
      rules({"- match: {prefix: \"a:\"}", "  pool: a", "- match: {ops: [read]}", "  pool: b"}),
      {"routes.main", 15, 3,
       "has no catch-all rule (a rule with match: {}), so some requests would have "
       "nowhere to go"});
  // A condition of any kind makes a rule no catch-all.
  for (std::string_view match : {"{glob: \"*\"}", "{listener: mc}", "{user: alice}",
                                 "{prefix: \"\"}", "{ops: [read, write, delete, arithmetic]}"}) {
    INFO(match);
    require_error(rules({"- match: " + std::string(match), "  pool: a"}),
                  {"routes.main", 15, 3, "has no catch-all rule"});
  }
  // The catch-all need not come last.
  CHECK(require_ok(rules({"- pool: a", "- match: {prefix: \"a:\"}", "  pool: b"})).ok());
  // A rule whose conditions could not be read does not add the catch-all error.
  require_error(rules({"- match: {ops: [raed]}", "  pool: a"}),
                {"routes.main[0].match.ops[0]", 16, 21, "unknown operation 'raed'"});
}

TEST_CASE("a rule after one with the same prefix and no other condition is never chosen",
          "[config][routes]") {
  require_error(rules({"- pool: a", "- pool: b"}),
                {"routes.main[1]", 17, 7,
                 "is never chosen: routes.main[0] (line 16) comes first without a prefix either "
                 "and no other condition, so it takes every request this rule could"});
  require_error(
      rules({"- match: {}", "  pool: a", "- match: {ops: [read], user: alice}", "  pool: b"}),
      {"routes.main[1]", 18, 7, "routes.main[0] (line 16) comes first without a prefix"});
  require_error(before_catch_all({"- match: {prefix: \"a:\"}", "  pool: a",
                                  "- match: {prefix: \"a:\", ops: [write]}", "  pool: b"}),
                {"routes.main[1]", 18, 7,
                 "is never chosen: routes.main[0] (line 16) comes first with the same prefix "
                 "'a:' and no other condition"});
  // An empty prefix matches every key, as none does, and is as long: the two are alike here.
  require_errors(load(before_catch_all({"- match: {prefix: \"\"}", "  pool: a",
                                        "- match: {prefix: \"\", glob: \"x*\"}", "  pool: b"})),
                 {{"routes.main[1]", 18, 7, "with the same prefix ''"},
                  {"routes.main[2]", 20, 7,
                   "is never chosen: routes.main[0] (line 16) comes first with an empty prefix, "
                   "which matches every key as none does, and no other condition"}});
  require_error(rules({"- pool: a", "- match: {prefix: \"a:\"}", "  pool: b",
                       "- match: {prefix: \"\"}", "  pool: c"}),
                {"routes.main[2]", 19, 7,
                 "is never chosen: routes.main[0] (line 16) comes first without a prefix, which "
                 "matches every key as an empty one does, and no other condition"});
  // Only the first earlier rule that takes everything is named.
  const LoadResult twice = load(rules({"- pool: a", "- pool: b", "- pool: c"}));
  require_errors(twice, {{"routes.main[1]", 17, 7, "routes.main[0] (line 16)"},
                         {"routes.main[2]", 18, 7, "routes.main[0] (line 16)"}});

  // An earlier rule with another condition, or another prefix, leaves room.
  CHECK(require_ok(before_catch_all({"- match: {prefix: \"a:\", ops: [read]}", "  pool: a",
                                     "- match: {prefix: \"a:\"}", "  pool: b"}))
            .ok());
  CHECK(require_ok(before_catch_all({"- match: {prefix: \"a:\"}", "  pool: a",
                                     "- match: {prefix: \"a:b\"}", "  pool: b"}))
            .ok());
  // A longer prefix wins wherever it is, so a prefix after a catch-all is reachable.
  CHECK(require_ok(rules({"- pool: a", "- match: {prefix: \"a:\"}", "  pool: b",
                          "- match: {prefix: \"a:b:\"}", "  pool: c"}))
            .ok());
  // A rule whose conditions could not all be read is not compared.
  require_error(before_catch_all({"- match: {prefix: \"a:\", ops: [raed]}", "  pool: a",
                                  "- match: {prefix: \"a:\"}", "  pool: b"}),
                {"routes.main[0].match.ops[0]", 16, 35, "unknown operation 'raed'"});
}

// ---------------------------------------------------------------------------------------------
// Where a rule sends requests

TEST_CASE("a rule has exactly one of pool, replicate, failover and warmup", "[config][routes]") {
  require_error(rules({"- match: {}"}),
                {"routes.main[0]", 16, 7,
                 "needs one of pool, replicate, failover or warmup: where its requests go"});
  require_error(rules({"- timeout: 5"}), {"routes.main[0]", 16, 7, "needs one of pool"});
  require_error(rules({"- pool: a", "  failover: [a, b]"}),
                {"routes.main[0].failover", 17, 7,
                 "a rule takes exactly one of pool, replicate, failover and warmup; this one has "
                 "pool and failover"});
  // Named in the order written; reported at the second.
  require_error(
      rules({"- warmup: {cold: a, warm: b}", "  replicate: {pools: [a, b]}", "  pool: c"}),
      {"routes.main[0].replicate", 17, 7, "this one has warmup, replicate and pool"});
  // Each is still read, so its own errors show.
  require_errors(load(rules({"- pool: a", "  failover: [a, nope]"})),
                 {{"routes.main[0].failover", 17, 7, "this one has pool and failover"},
                  {"routes.main[0].failover[1]", 17, 21, "no pool named 'nope'"}});
}

TEST_CASE("pool names an existing pool", "[config][routes]") {
  require_error(rules({"- pool: nope"}), {"routes.main[0].pool", 16, 13, "no pool named 'nope'"});
  require_error(rules({"- pool: bb"}),
                {"routes.main[0].pool", 16, 13, "no pool named 'bb' (did you mean 'b'?)"});
  require_error(rules({"- pool: [a]"}),
                {"routes.main[0].pool", 16, 13, "expected a string, got a list"});
  require_error(rules({"- pool:"}),
                {"routes.main[0].pool", 16, 7, "expected a string, got nothing"});
}

TEST_CASE(
    "replicate needs two different pools and takes a mode, a read policy and "
    "miss_failover",
    "[config][routes]") {
  for (auto [text, mode] :
       {std::pair{"all-sync", ReplicateMode::kAllSync}, std::pair{"quorum", ReplicateMode::kQuorum},
        std::pair{"all-async", ReplicateMode::kAllAsync}}) {
    CHECK(require_ok(rules({"- replicate: {pools: [a, b], mode: " + std::string(text) + "}"}))
              .config.routes[0]
              .rules[0]
              .mode == mode);
  }
  for (auto [text, read] :
       {std::pair{"first", ReadPolicy::kFirst}, std::pair{"random", ReadPolicy::kRandom},
        std::pair{"round_robin", ReadPolicy::kRoundRobin},
        std::pair{"least_latency", ReadPolicy::kLeastLatency}}) {
    CHECK(require_ok(rules({"- replicate: {pools: [a, b], read: " + std::string(text) + "}"}))
              .config.routes[0]
              .rules[0]
              .read == read);
  }
  require_error(rules({"- replicate: {mode: quorum}"}),
                {"routes.main[0].replicate", 16, 7, "missing required key 'pools'"});
  require_error(rules({"- replicate: {pools: [a]}"}),
                {"routes.main[0].replicate.pools", 16, 26,
                 "must list at least two pools (for one pool, write pool: instead)"});
  require_error(rules({"- replicate: {pools: []}"}),
                {"routes.main[0].replicate.pools", 16, 26, "must list at least two pools"});
  require_error(rules({"- replicate: {pools: a}"}), {"routes.main[0].replicate.pools", 16, 26,
                                                     "expected a list of pool names, got 'a'"});
  require_error(
      rules({"- replicate: {pools: [a, b, a]}"}),
      {"routes.main[0].replicate.pools[2]", 16, 33, "duplicate pool 'a' (first given at 16:27)"});
  require_error(rules({"- replicate: {pools: [a, nope]}"}),
                {"routes.main[0].replicate.pools[1]", 16, 30, "no pool named 'nope'"});
  require_error(
      rules({"- replicate: {pools: [a, b], mode: quorom}"}),
      {"routes.main[0].replicate.mode", 16, 40, "unknown mode 'quorom' (did you mean 'quorum'?)"});
  require_error(rules({"- replicate: {pools: [a, b], mode: sync}"}),
                {"routes.main[0].replicate.mode", 16, 40,
                 "unknown mode 'sync' (expected one of: all-sync, quorum, all-async)"});
  require_error(rules({"- replicate: {pools: [a, b], read: fastest}"}),
                {"routes.main[0].replicate.read", 16, 40,
                 "unknown read policy 'fastest' (expected one of: first, random, round_robin, "
                 "least_latency)"});
  require_error(rules({"- replicate: {pools: [a, b], read: round-robin}"}),
                {"routes.main[0].replicate.read", 16, 40, "(did you mean 'round_robin'?)"});
  require_error(
      rules({"- replicate: {pools: [a, b], miss_failover: yes}"}),
      {"routes.main[0].replicate.miss_failover", 16, 49, "expected true or false, got 'yes'"});
  require_error(rules({"- replicate: [a, b]"}),
                {"routes.main[0].replicate", 16, 18, "expected a map, got a list"});
}

TEST_CASE("failover lists two different pools, and failover_ttl goes only with it",
          "[config][routes]") {
  CHECK(require_ok(rules({"- failover: [a, b, c]"})).config.routes[0].rules[0].pools ==
        std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(require_ok(rules({"- failover: [a, b]"})).config.routes[0].rules[0].failover_ttl);
  require_error(rules({"- failover: [a]"}),
                {"routes.main[0].failover", 16, 17, "must list at least two pools"});
  require_error(rules({"- failover: a"}),
                {"routes.main[0].failover", 16, 17, "expected a list of pool names, got 'a'"});
  require_error(rules({"- failover:"}),
                {"routes.main[0].failover", 16, 7, "expected a list of pool names, got nothing"});
  require_error(rules({"- failover: [b, b]"}), {"routes.main[0].failover[1]", 16, 21,
                                                "duplicate pool 'b' (first given at 16:18)"});
  require_error(rules({"- failover: [a, b]", "  failover_ttl: 0"}),
                {"routes.main[0].failover_ttl", 17, 21, "must be at least 1, got 0"});
  require_error(rules({"- failover: [a, b]", "  failover_ttl: 2592001"}),
                {"routes.main[0].failover_ttl", 17, 21, "must be at most 2592000, got 2592001"});
  require_error(rules({"- failover: [a, b]", "  failover_ttl: 1.5"}),
                {"routes.main[0].failover_ttl", 17, 21, "expected an integer, got '1.5'"});
  require_error(rules({"- pool: a", "  failover_ttl: 60"}),
                {"routes.main[0].failover_ttl", 17, 21, "applies only to a rule with failover"});
}

TEST_CASE("warmup names two different pools, cold and warm", "[config][routes]") {
  const RouteRule w = require_ok(rules({"- warmup: {warm: b, cold: a}"})).config.routes[0].rules[0];
  CHECK(w.kind == RouteKind::kWarmup);
  CHECK(w.pools == std::vector<std::string>{"a", "b"});
  require_error(rules({"- warmup: {cold: a}"}),
                {"routes.main[0].warmup", 16, 7, "missing required key 'warm'"});
  require_error(rules({"- warmup: {warm: a}"}),
                {"routes.main[0].warmup", 16, 7, "missing required key 'cold'"});
  require_error(rules({"- warmup: {cold: a, warm: a}"}),
                {"routes.main[0].warmup.warm", 16, 31,
                 "cold and warm must be different pools, both are 'a'"});
  require_error(rules({"- warmup: {cold: nope, warm: a}"}),
                {"routes.main[0].warmup.cold", 16, 22, "no pool named 'nope'"});
  require_errors(load(rules({"- warmup: {cold: a, hot: b}"})),
                 {{"routes.main[0].warmup", 16, 7, "missing required key 'warm'"},
                  {"routes.main[0].warmup.hot", 16, 25, "unknown key 'hot'"}});
  require_errors(load(rules({"- warmup: [a, b]"})),
                 {{"routes.main[0].warmup", 16, 15, "expected a map, got a list"}});
}

// ---------------------------------------------------------------------------------------------
// match

TEST_CASE("match takes prefix, glob, ops, listener and user, and nothing else",
          "[config][routes]") {
  require_error(
      before_catch_all({"- match: {prefx: \"a:\"}", "  pool: a"}),
      {"routes.main[0].match.prefx", 16, 15, "unknown key 'prefx' (did you mean 'prefix'?)"});
  require_error(before_catch_all({"- match: [prefix]", "  pool: a"}),
                {"routes.main[0].match", 16, 14, "expected a map, got a list"});
  require_error(before_catch_all({"- match: {prefix: [a]}", "  pool: a"}),
                {"routes.main[0].match.prefix", 16, 23, "expected a string, got a list"});
  require_error(before_catch_all({"- match: {prefix: }", "  pool: a"}),
                {"routes.main[0].match.prefix", 16, 15, "expected a string, got nothing"});
}

TEST_CASE("match.glob is checked like allow.keys patterns", "[config][routes]") {
  CHECK(require_ok(before_catch_all({"- match: {glob: 'a\\*[^0-9]?'}", "  pool: a"}))
            .config.routes[0]
            .rules[0]
            .match.glob == "a\\*[^0-9]?");
  require_error(
      before_catch_all({"- match: {glob: \"a[b\"}", "  pool: a"}),
      {"routes.main[0].match.glob", 16, 21, "key pattern 'a[b' has a '[' without its ']'"});
  require_error(
      before_catch_all({"- match: {glob: 'a\\'}", "  pool: a"}),
      {"routes.main[0].match.glob", 16, 21, "key pattern 'a\\' ends with a lone backslash"});
  require_error(before_catch_all({"- match: {glob: \"\"}", "  pool: a"}),
                {"routes.main[0].match.glob", 16, 21,
                 "must not be empty (leave glob out to match every key)"});
  require_error(before_catch_all({"- match: {glob: [a]}", "  pool: a"}),
                {"routes.main[0].match.glob", 16, 21, "expected a string, got a list"});
}

TEST_CASE("match.ops is a non-empty set of operations", "[config][routes]") {
  const RouteMatch m =
      require_ok(before_catch_all({"- match: {ops: [delete, arithmetic]}", "  pool: a"}))
          .config.routes[0]
          .rules[0]
          .match;
  CHECK(m.ops == (route_op_bit(RouteOp::kDelete) | route_op_bit(RouteOp::kArithmetic)));
  CHECK(require_ok(before_catch_all({"- match: {ops: [admin, write]}", "  pool: a"}))
            .config.routes[0]
            .rules[0]
            .match.ops == (route_op_bit(RouteOp::kAdmin) | route_op_bit(RouteOp::kWrite)));
  require_error(before_catch_all({"- match: {ops: []}", "  pool: a"}),
                {"routes.main[0].match.ops", 16, 20,
                 "must list at least one of read, write, delete, arithmetic, admin (leave ops "
                 "out to match every operation)"});
  require_error(before_catch_all({"- match: {ops: read}", "  pool: a"}),
                {"routes.main[0].match.ops", 16, 20,
                 "expected a list of operations (read, write, delete, arithmetic, admin), got "
                 "'read'"});
  require_error(
      before_catch_all({"- match: {ops: [read, read]}", "  pool: a"}),
      {"routes.main[0].match.ops[1]", 16, 27, "duplicate operation 'read' (first given at 16:21)"});
  require_error(before_catch_all({"- match: {ops: [dleete]}", "  pool: a"}),
                {"routes.main[0].match.ops[0]", 16, 21,
                 "unknown operation 'dleete' (did you mean 'delete'?)"});
  require_error(before_catch_all({"- match: {ops: [incr]}", "  pool: a"}),
                {"routes.main[0].match.ops[0]", 16, 21,
                 "unknown operation 'incr' (expected one of: read, write, delete, arithmetic, "
                 "admin)"});
}

TEST_CASE("match.listener names listeners that use the table", "[config][routes]") {
  CHECK(require_ok(before_catch_all({"- match: {listener: [mc]}", "  pool: a"}))
            .config.routes[0]
            .rules[0]
            .match.listeners == std::vector<std::string>{"mc"});
  require_error(
      before_catch_all({"- match: {listener: mx}", "  pool: a"}),
      {"routes.main[0].match.listener", 16, 25, "no listener named 'mx' (did you mean 'mc'?)"});
  require_error(before_catch_all({"- match: {listener: [mc, mc]}", "  pool: a"}),
                {"routes.main[0].match.listener[1]", 16, 30,
                 "duplicate listener 'mc' (first given at 16:26)"});
  require_error(before_catch_all({"- match: {listener: []}", "  pool: a"}),
                {"routes.main[0].match.listener", 16, 25, "must list at least one listener"});
  require_error(before_catch_all({"- match: {listener: {mc: 1}}", "  pool: a"}),
                {"routes.main[0].match.listener", 16, 25,
                 "expected a string or a list of strings, got a map"});
  require_error(before_catch_all({"- match: {listener: other}", "  pool: a"}),
                {"routes.main[0].match.listener", 16, 25,
                 "listener 'other' serves pool 'a' directly, so this rule never sees its "
                 "requests"});
  // A pool-level listen makes a listener named after the pool.
  require_error(
      yaml(R"(
pools:
  a: {listen: "127.0.0.1:22123", servers: ["127.0.0.1:21211:1"]}
listeners:
  - {name: mc, listen: "127.0.0.1:22122", route: main}
routes:
  main:
    - match: {listener: [mc, a]}
      pool: a
    - pool: a
)"),
      {"routes.main[0].match.listener[1]", 7, 30, "listener 'a' serves pool 'a' directly"});
  require_errors(load(yaml(R"(
pools:
  a: {servers: ["127.0.0.1:21211:1"]}
listeners:
  - {name: mc, listen: "127.0.0.1:22122", route: main}
  - {name: mc2, listen: "127.0.0.1:22124", route: second}
routes:
  main:
    - match: {listener: mc2}
      pool: a
    - pool: a
  second:
    - pool: a
)")),
                 {{"routes.main[0].match.listener", 8, 25,
                   "listener 'mc2' uses route table 'second', so this rule never sees its "
                   "requests"}});
}

TEST_CASE("match.user names users that exist", "[config][routes]") {
  CHECK(require_ok(before_catch_all({"- match: {user: bob}", "  pool: a"}))
            .config.routes[0]
            .rules[0]
            .match.users == std::vector<std::string>{"bob"});
  require_error(before_catch_all({"- match: {user: [alice, carol]}", "  pool: a"}),
                {"routes.main[0].match.user[1]", 16, 29, "no user named 'carol'"});
  require_error(
      before_catch_all({"- match: {user: alcie}", "  pool: a"}),
      {"routes.main[0].match.user", 16, 21, "no user named 'alcie' (did you mean 'alice'?)"});
  require_error(
      before_catch_all({"- match: {user: [bob, bob]}", "  pool: a"}),
      {"routes.main[0].match.user[1]", 16, 27, "duplicate user 'bob' (first given at 16:22)"});
  require_error(before_catch_all({"- match: {user: []}", "  pool: a"}),
                {"routes.main[0].match.user", 16, 21, "must list at least one user"});
  require_error(yaml(R"(
pools:
  a: {servers: ["127.0.0.1:21211:1"]}
listeners:
  - {name: mc, listen: "127.0.0.1:22122", route: main}
routes:
  main:
    - match: {user: alice}
      pool: a
    - pool: a
)"),
                {"routes.main[0].match.user", 7, 21, "no user named 'alice' (none is defined)"});
}

// ---------------------------------------------------------------------------------------------
// shadow, rewrite, ttl, timeout

TEST_CASE("shadow names another pool and a fraction from 0 to 1", "[config][routes]") {
  for (auto [text, value] :
       {std::pair{"0", 0.0}, std::pair{"1", 1.0}, std::pair{"0.5", 0.5}, std::pair{"1.0", 1.0},
        std::pair{".25", 0.25}, std::pair{"1e-3", 0.001}, std::pair{"+0.75", 0.75}}) {
    INFO(text);
    CHECK(
        require_ok(rules({"- pool: a", "  shadow: {pool: s, fraction: " + std::string(text) + "}"}))
            .config.routes[0]
            .rules[0]
            .shadow_fraction == value);
  }
  require_error(rules({"- pool: a", "  shadow: {fraction: 0.5}"}),
                {"routes.main[0].shadow", 17, 7, "missing required key 'pool'"});
  require_error(rules({"- pool: a", "  shadow: {pool: nope}"}),
                {"routes.main[0].shadow.pool", 17, 22, "no pool named 'nope'"});
  require_error(rules({"- pool: a", "  shadow: {pool: a}"}),
                {"routes.main[0].shadow.pool", 17, 22,
                 "'a' is one of this rule's own pools; a shadow must be another pool"});
  require_error(rules({"- failover: [b, c]", "  shadow: {pool: c}"}),
                {"routes.main[0].shadow.pool", 17, 22, "'c' is one of this rule's own pools"});
  require_error(rules({"- warmup: {cold: a, warm: b}", "  shadow: {pool: b}"}),
                {"routes.main[0].shadow.pool", 17, 22, "'b' is one of this rule's own pools"});
  require_error(rules({"- pool: a", "  shadow: {pool: s, fraction: 1.5}"}),
                {"routes.main[0].shadow.fraction", 17, 35, "must be between 0.0 and 1.0, got 1.5"});
  require_error(
      rules({"- pool: a", "  shadow: {pool: s, fraction: -0.1}"}),
      {"routes.main[0].shadow.fraction", 17, 35, "must be between 0.0 and 1.0, got -0.1"});
  for (std::string_view bad : {"\"0.5\"", "half", ".nan", ".inf", "0x1", "50%", "[1]"}) {
    INFO(bad);
    require_error(rules({"- pool: a", "  shadow: {pool: s, fraction: " + std::string(bad) + "}"}),
                  {"routes.main[0].shadow.fraction", 17, 35, "expected a number from 0.0 to 1.0"});
  }
  require_error(rules({"- pool: a", "  shadow: s"}),
                {"routes.main[0].shadow", 17, 15, "expected a map, got 's'"});
  require_error(rules({"- pool: a", "  shadow: {pool: s, percent: 10}"}),
                {"routes.main[0].shadow.percent", 17, 25, "unknown key 'percent'"});
}

TEST_CASE("rewrite strips and adds prefixes that a key can hold", "[config][routes]") {
  const RouteRule only_strip =
      require_ok(rules({"- pool: a", "  rewrite: {strip_prefix: \"old:\"}"}))
          .config.routes[0]
          .rules[0];
  CHECK(only_strip.strip_prefix == "old:");
  CHECK(only_strip.add_prefix.empty());
  const RouteRule only_add =
      require_ok(rules({"- pool: a", "  rewrite: {strip_prefix: \"\", add_prefix: \"new:\"}"}))
          .config.routes[0]
          .rules[0];
  CHECK(only_add.strip_prefix.empty());
  CHECK(only_add.add_prefix == "new:");
  CHECK(require_ok(rules({"- pool: a", "  rewrite: {add_prefix: " + std::string(249, 'p') + "}"}))
            .ok());

  require_error(rules({"- pool: a", "  rewrite: {}"}),
                {"routes.main[0].rewrite", 17, 7,
                 "needs a non-empty strip_prefix or add_prefix (leave rewrite out to keep keys "
                 "as they are)"});
  require_error(rules({"- pool: a", "  rewrite: {strip_prefix: \"\", add_prefix: \"\"}"}),
                {"routes.main[0].rewrite", 17, 7, "needs a non-empty strip_prefix or add_prefix"});
  require_error(rules({"- pool: a", "  rewrite: {add_prefix: \"a b\"}"}),
                {"routes.main[0].rewrite.add_prefix", 17, 29,
                 "'a b' contains whitespace or control characters"});
  require_error(
      rules({"- pool: a", "  rewrite: {strip_prefix: \"a\\tb\"}"}),
      {"routes.main[0].rewrite.strip_prefix", 17, 31, "contains whitespace or control characters"});
  require_error(rules({"- pool: a", "  rewrite: {add_prefix: " + std::string(250, 'p') + "}"}),
                {"routes.main[0].rewrite.add_prefix", 17, 29, "is longer than 249 bytes"});
  require_error(rules({"- pool: a", "  rewrite: {add_prefix: [a]}"}),
                {"routes.main[0].rewrite.add_prefix", 17, 29, "expected a string, got a list"});
  require_error(rules({"- pool: a", "  rewrite: {strip_prefix: \"x:\", add_prefix: \"x:\"}"}),
                {"routes.main[0].rewrite.add_prefix", 17, 49,
                 "is the same as strip_prefix, so no key would change"});
  require_errors(load(rules({"- pool: a", "  rewrite: {add: \"x:\"}"})),
                 {{"routes.main[0].rewrite", 17, 7, "needs a non-empty strip_prefix or add_prefix"},
                  {"routes.main[0].rewrite.add", 17, 17, "unknown key 'add'"}});
  require_error(rules({"- pool: a", "  rewrite: x"}),
                {"routes.main[0].rewrite", 17, 16, "expected a map, got 'x'"});
}

TEST_CASE("an added prefix must not hold a hash_tag character of the rule's pools",
          "[config][routes]") {
  require_error(rules({"- pool: t", "  rewrite: {add_prefix: \"x{\"}"}),
                {"routes.main[0].rewrite.add_prefix", 17, 29,
                 "'x{' contains a character of pool 't''s hash_tag '{}'"});
  require_error(rules({"- failover: [a, t]", "  rewrite: {add_prefix: \"}x\"}"}),
                {"routes.main[0].rewrite.add_prefix", 17, 29, "of pool 't''s hash_tag '{}'"});
  // A shadow pool receives the rewritten keys too.
  require_error(rules({"- pool: a", "  shadow: {pool: t}", "  rewrite: {add_prefix: \"{x\"}"}),
                {"routes.main[0].rewrite.add_prefix", 18, 29, "of pool 't''s hash_tag '{}'"});
  // Pools without a tag, and a tag character only in strip_prefix, are fine.
  CHECK(require_ok(rules({"- pool: a", "  rewrite: {add_prefix: \"{x}\"}"})).ok());
  CHECK(require_ok(rules({"- pool: t", "  rewrite: {strip_prefix: \"{x}\", add_prefix: \"y\"}"}))
            .ok());
}

TEST_CASE("ttl.max is whole seconds up to 30 days", "[config][routes]") {
  CHECK(
      require_ok(rules({"- pool: a", "  ttl: {max: 2592000}"})).config.routes[0].rules[0].ttl_max ==
      2592000u);
  CHECK(require_ok(rules({"- pool: a", "  ttl: {max: 1}"})).config.routes[0].rules[0].ttl_max ==
        1u);
  require_error(rules({"- pool: a", "  ttl: {max: 2592001}"}),
                {"routes.main[0].ttl.max", 17, 18, "must be at most 2592000, got 2592001"});
  require_error(rules({"- pool: a", "  ttl: {max: 0}"}),
                {"routes.main[0].ttl.max", 17, 18, "must be at least 1, got 0"});
  require_error(rules({"- pool: a", "  ttl: {max: 1h}"}),
                {"routes.main[0].ttl.max", 17, 18, "expected an integer, got '1h'"});
  require_error(rules({"- pool: a", "  ttl: {}"}),
                {"routes.main[0].ttl", 17, 7, "missing required key 'max'"});
  require_error(rules({"- pool: a", "  ttl: 60"}),
                {"routes.main[0].ttl", 17, 12, "expected a map, got '60'"});
  require_error(rules({"- pool: a", "  ttl: {min: 1, max: 2}"}),
                {"routes.main[0].ttl.min", 17, 13, "unknown key 'min' (did you mean 'max'?)"});
}

TEST_CASE("timeout is milliseconds read like a pool's", "[config][routes]") {
  CHECK(require_ok(rules({"- pool: a", "  timeout: 86400000"})).config.routes[0].rules[0].timeout ==
        std::chrono::milliseconds(86400000));
  require_error(rules({"- pool: a", "  timeout: 0"}),
                {"routes.main[0].timeout", 17, 16, "must be at least 1, got 0"});
  require_error(rules({"- pool: a", "  timeout: 86400001"}),
                {"routes.main[0].timeout", 17, 16, "must be at most 86400000, got 86400001"});
  require_error(rules({"- pool: a", "  timeout: 250ms"}),
                {"routes.main[0].timeout", 17, 16, "expected an integer, got '250ms'"});
}

TEST_CASE("unknown keys of a rule get suggestions", "[config][routes]") {
  require_error(rules({"- pool: a", "  timout: 5"}),
                {"routes.main[0].timout", 17, 7, "unknown key 'timout' (did you mean 'timeout'?)"});
  require_error(rules({"- pool: a", "  replicate_mode: quorum"}),
                {"routes.main[0].replicate_mode", 17, 7, "unknown key 'replicate_mode'"});
  require_error(
      rules({"- replicate: {pools: [a, b], reads: first}"}),
      {"routes.main[0].replicate.reads", 16, 34, "unknown key 'reads' (did you mean 'read'?)"});
  require_errors(
      load(kHeader.substr(0, kHeader.find("routes:")) + "route:\n  main:\n    - pool: a\n"),
      {{"listeners[0].route", 12, 50, "no route table named 'main'"},
       {"route", 14, 1, "unknown key 'route' (did you mean 'routes'?)"}});
}

// ---------------------------------------------------------------------------------------------
// Protocols and listeners

TEST_CASE("the pools of a table share one protocol, and listeners on it speak it",
          "[config][routes]") {
  require_error(rules({"- failover: [a, r]"}),
                {"routes.main[0].failover[1]", 16, 21,
                 "pool 'r' is a redis pool, but pool 'a' (at 16:18) is memcached; the pools of a "
                 "route table must all have the same protocol"});
  // Across rules, and for shadows too: the pool named first sets the protocol.
  require_error(
      rules({"- match: {prefix: \"x:\"}", "  pool: a", "  shadow: {pool: r}", "- pool: b"}),
      {"routes.main[0].shadow.pool", 18, 22, "pool 'r' is a redis pool, but pool 'a' (at 17:13)"});
  require_error(rules({"- match: {prefix: \"x:\"}", "  pool: r", "- pool: a"}),
                {"routes.main[1].pool", 18, 13,
                 "pool 'a' is a memcached pool, but pool 'r' (at 17:13) is redis"});

  // A redis table on a listener that says memcached.
  require_error(yaml(R"(
pools:
  r: {protocol: redis, servers: ["127.0.0.1:6379:1"]}
listeners:
  - {name: rd, listen: "127.0.0.1:22122", protocol: memcached, route: main}
routes:
  main:
    - pool: r
)"),
                {"listeners[0].protocol", 4, 53,
                 "protocol memcached does not match route table 'main''s protocol redis"});
  // A memcached listener (the default) needs a memcached table, and gets the table's protocol
  // when it gives none.
  CHECK(require_ok(yaml(R"(
pools:
  r: {protocol: redis, servers: ["127.0.0.1:6379:1"]}
listeners:
  - {name: rd, listen: "127.0.0.1:22122", route: main}
routes:
  main:
    - pool: r
)"))
            .config.listeners[0]
            .protocol == Protocol::kRedis);
}

TEST_CASE("a listener has exactly one of pool and route, and its route exists",
          "[config][routes]") {
  const std::string routes = "routes:\n  main:\n    - pool: cache\n";
  require_error(listener_lines({"pool: cache", "route: main"}, routes),
                {"listeners[0].route", 9, 12, "give pool or route, not both"});
  require_error(listener_lines({"protocol: memcached"}, routes),
                {"listeners[0]", 6, 5, "missing required key 'pool' (or 'route')"});
  require_error(
      listener_lines({"route: mian"}, routes),
      {"listeners[0].route", 8, 12, "no route table named 'mian' (did you mean 'main'?)"});
  require_error(listener_lines({"route: main"}, ""),
                {"listeners[0].route", 8, 12, "no route table named 'main'"});
  require_error(listener_lines({"route: [main]"}, routes),
                {"listeners[0].route", 8, 12, "expected a string, got a list"});
  // A route named like a pool is the route table, not the pool.
  require_error(listener_lines({"route: cache"}, routes),
                {"listeners[0].route", 8, 12, "no route table named 'cache'"});
  // A table with errors still exists for its listeners: only its own error is reported.
  require_error(listener_lines({"route: main"}, "routes:\n  main:\n    - pool: nope\n"),
                {"routes.main[0].pool", 11, 13, "no pool named 'nope'"});
  // Pool-level listen keeps working next to route listeners.
  const Config c = require_ok(yaml(R"(
pools:
  cache:
    listen: 127.0.0.1:22123
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    route: main
routes:
  main:
    - pool: cache
)"))
                       .config;
  REQUIRE(c.listeners.size() == 2);
  CHECK(c.listeners[0].route == "main");
  CHECK(c.listeners[1].name == "cache");
  CHECK(c.listeners[1].pool == "cache");
  CHECK(c.listeners[1].route.empty());
}

TEST_CASE("errors in listeners and routes come out in file order", "[config][routes]") {
  const LoadResult r = load(yaml(R"(
routes:
  main:
    - match: {prefix: "a:", listener: nope}
      pool: cache
  other: []
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
  - {name: mc, listen: "127.0.0.1:22122", route: mian}
  - {name: mc, listen: "127.0.0.1:22123", pool: cache}
)"));
  require_errors(r, {{"routes.main[0].match.listener", 3, 39, "no listener named 'nope'"},
                     {"routes.other", 5, 10, "must list at least one rule"},
                     {"listeners[0].route", 11, 50, "no route table named 'mian'"},
                     {"listeners[1].name", 12, 12, "duplicate listener name 'mc'"}});
  // With the rule's conditions all read, the missing catch-all is reported at the table.
  require_errors(load(yaml(R"(
routes:
  main:
    - match: {prefix: "a:"}
      pool: cache
pools:
  cache: {servers: ["127.0.0.1:21211:1"], protocol: memcahced}
listeners:
  - {name: mc, listen: "127.0.0.1:22122", route: main}
)")),
                 {{"routes.main", 2, 3, "has no catch-all rule"},
                  {"pools.cache.protocol", 6, 53, "unknown protocol 'memcahced'"}});
}

}  // namespace
}  // namespace cachegate::config
