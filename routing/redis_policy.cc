#include "routing/redis_policy.h"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <utility>

namespace cachegate::routing {

namespace {

using protocol::redis::AclCategory;
using protocol::redis::CommandFlag;
using protocol::redis::CommandInfo;

struct Entry {
  std::string_view name;
  RedisPolicy policy;
};

constexpr RedisPolicy local() {
  return routed(RedisRoute::kLocal);
}
constexpr RedisPolicy split(RespMerge merge) {
  return routed(RedisRoute::kSplit, merge);
}
constexpr RedisPolicy all(RespMerge merge) {
  return routed(RedisRoute::kAllServers, merge);
}
constexpr RedisPolicy one() {
  return routed(RedisRoute::kOneServer);
}
constexpr RedisPolicy unsupported(std::string_view why) {
  return {RedisRoute::kUnsupported, RespMerge::kAllOk, false, false, why};
}

constexpr std::string_view kTracking =
    "client-side caching needs invalidation messages for keys spread over a pool's servers, "
    "which cachegate does not relay";
constexpr std::string_view kPerServer =
    "it acts on one server's process or replication, not on the data of a pool; send it to the "
    "servers directly";
constexpr std::string_view kOneDb = "cachegate shows each pool as a single database (db 0)";

// Commands whose handling is not what their flags alone say. Sorted by name for lookup.
constexpr std::array kEntries = std::to_array<Entry>({
    {"acl", unsupported("ACL rules belong to each server; cachegate's own users come later")},
    {"asking", unsupported("it is a Redis Cluster command; cachegate pools are not a cluster")},
    {"auth", local()},
    {"bgrewriteaof", unsupported(kPerServer)},
    {"bgsave", unsupported(kPerServer)},
    {"client|caching", unsupported(kTracking)},
    {"client|getname", local()},
    {"client|getredir", unsupported(kTracking)},
    {"client|help", local()},
    {"client|id", local()},
    {"client|info", local()},
    {"client|kill", unsupported("client connections to the servers belong to cachegate")},
    {"client|list", unsupported("client connections to the servers belong to cachegate")},
    {"client|no-evict", unsupported("it would apply to a server connection shared by clients")},
    {"client|pause", unsupported(kPerServer)},
    {"client|reply", unsupported("cachegate answers every request it forwards")},
    {"client|setname", local()},
    {"client|tracking", unsupported(kTracking)},
    {"client|trackinginfo", unsupported(kTracking)},
    {"client|unblock", unsupported("client connections to the servers belong to cachegate")},
    {"client|unpause", unsupported(kPerServer)},
    {"cluster", unsupported("it is a Redis Cluster command; cachegate pools are not a cluster")},
    {"command", local()},
    {"command|help", one()},
    {"config|get", one()},
    {"config|resetstat", all(RespMerge::kAllOk)},
    {"config|rewrite", all(RespMerge::kAllOk)},
    {"config|set", all(RespMerge::kAllOk)},
    {"dbsize", all(RespMerge::kSumIntegers)},
    {"debug", unsupported(kPerServer)},
    {"del", split(RespMerge::kSumIntegers)},
    {"discard", routed(RedisRoute::kTransaction)},
    {"echo", local()},
    {"exec", routed(RedisRoute::kTransaction)},
    {"exists", split(RespMerge::kSumIntegers)},
    {"failover", unsupported(kPerServer)},
    {"flushall", {RedisRoute::kAllServers, RespMerge::kAllOk, true, false, {}}},
    {"flushdb", {RedisRoute::kAllServers, RespMerge::kAllOk, true, false, {}}},
    {"function|delete", all(RespMerge::kAllOk)},
    {"function|dump", one()},
    {"function|flush", all(RespMerge::kAllOk)},
    {"function|kill", unsupported(kPerServer)},
    {"function|list", all(RespMerge::kFirstReply)},
    {"function|load", all(RespMerge::kFirstReply)},
    {"function|restore", all(RespMerge::kAllOk)},
    {"function|stats", one()},
    {"hello", local()},
    {"info", all(RespMerge::kInfo)},
    {"keys", all(RespMerge::kConcatArrays)},
    {"lastsave", one()},
    {"latency", unsupported(kPerServer)},
    {"lolwut", one()},
    {"memory|doctor", unsupported(kPerServer)},
    {"memory|malloc-stats", unsupported(kPerServer)},
    {"memory|purge", unsupported(kPerServer)},
    {"memory|stats", unsupported(kPerServer)},
    {"mget", split(RespMerge::kValuesInKeyOrder)},
    {"migrate", unsupported("it moves keys to another server behind cachegate's placement")},
    {"module", unsupported(kPerServer)},
    {"monitor", unsupported(kPerServer)},
    {"move", unsupported(kOneDb)},
    {"mset", split(RespMerge::kAllOk)},
    {"multi", routed(RedisRoute::kTransaction)},
    {"pfselftest", one()},
    {"ping", local()},
    {"psubscribe", routed(RedisRoute::kSubscribe)},
    {"psync", unsupported(kPerServer)},
    {"publish", routed(RedisRoute::kPublish)},
    {"pubsub|channels", all(RespMerge::kConcatArrays)},
    // Patterns are subscribed on every server: each counts the same ones.
    {"pubsub|numpat", all(RespMerge::kFirstReply)},
    {"pubsub|numsub", all(RespMerge::kSumCounts)},
    {"pubsub|shardchannels", all(RespMerge::kConcatArrays)},
    {"pubsub|shardnumsub", all(RespMerge::kSumCounts)},
    {"punsubscribe", routed(RedisRoute::kSubscribe)},
    {"quit", local()},
    {"randomkey", all(RespMerge::kFirstNonNull)},
    {"readonly", unsupported("it is a Redis Cluster command; cachegate pools are not a cluster")},
    {"readwrite", unsupported("it is a Redis Cluster command; cachegate pools are not a cluster")},
    {"replconf", unsupported(kPerServer)},
    {"replicaof", unsupported(kPerServer)},
    {"reset", local()},
    {"restore-asking",
     unsupported("it is a Redis Cluster command; cachegate pools are not a cluster")},
    {"role", unsupported(kPerServer)},
    {"save", unsupported(kPerServer)},
    {"scan", routed(RedisRoute::kScan)},
    {"script|debug", unsupported("the script debugger needs a server connection of its own")},
    {"script|exists", all(RespMerge::kAndArrays)},
    {"script|flush", all(RespMerge::kAllOk)},
    {"script|kill", unsupported(kPerServer)},
    {"script|load", all(RespMerge::kFirstReply)},
    {"select", local()},
    {"shutdown", unsupported(kPerServer)},
    {"slaveof", unsupported(kPerServer)},
    {"slowlog", unsupported(kPerServer)},
    {"spublish", routed(RedisRoute::kPublish)},
    {"ssubscribe", routed(RedisRoute::kSubscribe)},
    {"subscribe", routed(RedisRoute::kSubscribe)},
    {"sunsubscribe", routed(RedisRoute::kSubscribe)},
    {"swapdb", unsupported(kOneDb)},
    {"sync", unsupported(kPerServer)},
    {"time", one()},
    {"touch", split(RespMerge::kSumIntegers)},
    {"unlink", split(RespMerge::kSumIntegers)},
    {"unsubscribe", routed(RedisRoute::kSubscribe)},
    {"unwatch", routed(RedisRoute::kTransaction)},
    {"wait", routed(RedisRoute::kWait)},
    {"watch", routed(RedisRoute::kTransaction)},
});

constexpr bool sorted() {
  for (size_t i = 1; i < kEntries.size(); ++i)
    if (!(kEntries[i - 1].name < kEntries[i].name)) return false;
  return true;
}
static_assert(sorted(), "kEntries must be sorted by name");

const Entry* find(std::string_view name) {
  auto it = std::lower_bound(kEntries.begin(), kEntries.end(), name,
                             [](const Entry& e, std::string_view n) { return e.name < n; });
  return it != kEntries.end() && it->name == name ? &*it : nullptr;
}

}  // namespace

namespace {

RedisPolicy compute_policy(const CommandInfo& command) {
  RedisPolicy policy;
  if (const Entry* e = find(command.name)) {
    policy = e->policy;
  } else if (const size_t bar = command.name.find('|'); bar != std::string_view::npos) {
    // A subcommand not listed takes its container's entry (DEBUG …, CLUSTER …, ACL …).
    if (const Entry* c = find(command.name.substr(0, bar))) policy = c->policy;
  }
  if (policy.why.empty() && policy.route == RedisRoute::kUnsupported &&
      command.name.ends_with("|help")) {
    // A container's HELP text is the same on every server.
    policy = one();
  }
  if (policy.why.empty() && policy.route == RedisRoute::kUnsupported) {
    // Not listed: decided by the flags.
    if (command.has(CommandFlag::kBlocking)) {
      policy = routed(RedisRoute::kBlocking);
    } else if (command.key_spec_count > 0 || command.first_key > 0 ||
               command.has(CommandFlag::kMovablekeys)) {
      policy = routed(RedisRoute::kKeyed);
    } else {
      policy = unsupported("it names no key, so cachegate cannot tell which server it is for");
    }
  }
  policy.admin = command.has(CommandFlag::kAdmin) || command.in_category(AclCategory::kDangerous);
  return policy;
}

// Every command's policy, computed once: the request path then pays a hash lookup by address.
const std::unordered_map<const CommandInfo*, RedisPolicy>& policies() {
  static const auto table = [] {
    std::unordered_map<const CommandInfo*, RedisPolicy> t;
    for (const CommandInfo& c : protocol::redis::all_commands()) {
      t.emplace(&c, compute_policy(c));
      for (const CommandInfo& sub : c.subs())
        t.emplace(&sub, compute_policy(sub));
    }
    return t;
  }();
  return table;
}

}  // namespace

RedisPolicy redis_policy(const CommandInfo& command) {
  const auto& table = policies();
  auto it = table.find(&command);
  return it != table.end() ? it->second : compute_policy(command);
}

config::RouteOp redis_route_op(const protocol::redis::CommandInfo& command,
                               const RedisPolicy& policy) {
  using protocol::redis::AclCategory;
  using protocol::redis::CommandFlag;
  if (command.has(CommandFlag::kAdmin) || policy.route == RedisRoute::kAllServers ||
      policy.route == RedisRoute::kOneServer || policy.route == RedisRoute::kScan ||
      command.in_category(AclCategory::kScripting))
    return config::RouteOp::kAdmin;
  // Publishing is a write for users' permissions, though Redis files it under @pubsub alone.
  if (policy.route == RedisRoute::kPublish) return config::RouteOp::kWrite;
  if (!command.has(CommandFlag::kWrite)) return config::RouteOp::kRead;
  const std::string_view name = command.name;
  if (name == "del" || name == "unlink" || name == "getdel") return config::RouteOp::kDelete;
  if (name == "incr" || name == "incrby" || name == "decr" || name == "decrby" ||
      name == "incrbyfloat" || name == "hincrby" || name == "hincrbyfloat" || name == "zincrby")
    return config::RouteOp::kArithmetic;
  return config::RouteOp::kWrite;
}

}  // namespace cachegate::routing
