// redis_policy: how cachegate handles each Redis command over a pool of independent servers. The
// expectations are written out command by command, from what cachegate promises its clients (which
// commands work, how a reply spread over several servers is combined, what is refused and why), not
// derived from the command table's flags the way the implementation derives them; so a change of
// the rules or of the generated table that moves a command shows up here by name.

#include "routing/redis_policy.h"

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "protocol/redis_commands.h"

namespace cachegate::routing {
namespace {

namespace redis = protocol::redis;

// A command as a client types it: "GET", or "OBJECT ENCODING" for a subcommand.
const redis::CommandInfo* lookup(std::string_view typed) {
  const size_t space = typed.find(' ');
  const redis::CommandInfo* command = redis::find_command(typed.substr(0, space));
  if (command == nullptr || space == std::string_view::npos) return command;
  return redis::find_subcommand(*command, typed.substr(space + 1));
}

RedisPolicy policy_of(std::string_view typed) {
  const redis::CommandInfo* command = lookup(typed);
  INFO("command: " << typed);
  REQUIRE(command != nullptr);
  return redis_policy(*command);
}

const char* route_name(RedisRoute route) {
  switch (route) {
    case RedisRoute::kLocal:
      return "kLocal";
    case RedisRoute::kKeyed:
      return "kKeyed";
    case RedisRoute::kSplit:
      return "kSplit";
    case RedisRoute::kAllServers:
      return "kAllServers";
    case RedisRoute::kOneServer:
      return "kOneServer";
    case RedisRoute::kScan:
      return "kScan";
    case RedisRoute::kTransaction:
      return "kTransaction";
    case RedisRoute::kBlocking:
      return "kBlocking";
    case RedisRoute::kSubscribe:
      return "kSubscribe";
    case RedisRoute::kPublish:
      return "kPublish";
    case RedisRoute::kWait:
      return "kWait";
    case RedisRoute::kUnsupported:
      return "kUnsupported";
  }
  return "(not a RedisRoute)";
}

// Every command and subcommand of the table, by its full name ("config|get").
std::vector<const redis::CommandInfo*> every_command() {
  std::vector<const redis::CommandInfo*> out;
  for (const redis::CommandInfo& c : redis::all_commands()) {
    out.push_back(&c);
    for (const redis::CommandInfo& sub : c.subs())
      out.push_back(&sub);
  }
  return out;
}

// Single-key commands of every data type and of the keyspace: they go to the server of their key.
constexpr std::string_view kSingleKey[] = {
    // strings
    "GET",
    "SET",
    "SETNX",
    "SETEX",
    "PSETEX",
    "GETSET",
    "GETDEL",
    "GETEX",
    "GETRANGE",
    "SETRANGE",
    "APPEND",
    "STRLEN",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "DECR",
    "DECRBY",
    "SUBSTR",
    // hashes
    "HSET",
    "HSETNX",
    "HMSET",
    "HGET",
    "HMGET",
    "HGETALL",
    "HDEL",
    "HEXISTS",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HSTRLEN",
    "HRANDFIELD",
    "HSCAN",
    // lists
    "LPUSH",
    "RPUSH",
    "LPUSHX",
    "RPUSHX",
    "LPOP",
    "RPOP",
    "LRANGE",
    "LLEN",
    "LINDEX",
    "LSET",
    "LREM",
    "LTRIM",
    "LINSERT",
    "LPOS",
    // sets
    "SADD",
    "SREM",
    "SMEMBERS",
    "SISMEMBER",
    "SMISMEMBER",
    "SCARD",
    "SPOP",
    "SRANDMEMBER",
    "SSCAN",
    // sorted sets
    "ZADD",
    "ZREM",
    "ZSCORE",
    "ZMSCORE",
    "ZINCRBY",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZRANGEBYLEX",
    "ZREVRANGE",
    "ZRANK",
    "ZREVRANK",
    "ZPOPMIN",
    "ZPOPMAX",
    "ZRANDMEMBER",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "ZSCAN",
    // bitmaps, HyperLogLog, geo
    "SETBIT",
    "GETBIT",
    "BITCOUNT",
    "BITPOS",
    "BITFIELD",
    "BITFIELD_RO",
    "PFADD",
    "GEOADD",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEOSEARCH",
    "GEORADIUS_RO",
    "GEORADIUSBYMEMBER_RO",
    // keyspace
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "EXPIRETIME",
    "PEXPIRETIME",
    "PERSIST",
    "TTL",
    "PTTL",
    "TYPE",
    "DUMP",
    "RESTORE",
    "OBJECT FREQ",
    "OBJECT IDLETIME",
    "OBJECT REFCOUNT",
    "MEMORY USAGE",
    // streams
    "XADD",
    "XRANGE",
    "XREVRANGE",
    "XLEN",
    "XDEL",
    "XTRIM",
    "XACK",
    "XCLAIM",
    "XAUTOCLAIM",
    "XPENDING",
    "XSETID",
    "XGROUP CREATE",
    "XGROUP CREATECONSUMER",
    "XGROUP DELCONSUMER",
    "XGROUP DESTROY",
    "XGROUP SETID",
    "XINFO STREAM",
    "XINFO GROUPS",
    "XINFO CONSUMERS",
};

// Commands of several keys that cannot be split: they go to one server, and the session refuses
// them when their keys are not all on it.
constexpr std::string_view kMultiKeyUnsplit[] = {
    "RENAME",
    "RENAMENX",
    "SMOVE",
    "SINTERSTORE",
    "SUNIONSTORE",
    "SDIFFSTORE",
    "SINTER",
    "SUNION",
    "SDIFF",
    "SINTERCARD",
    "LMOVE",
    "RPOPLPUSH",
    "LMPOP",
    "ZMPOP",
    "ZUNIONSTORE",
    "ZINTERSTORE",
    "ZDIFFSTORE",
    "ZUNION",
    "ZINTER",
    "ZDIFF",
    "ZINTERCARD",
    "ZRANGESTORE",
    "PFMERGE",
    "PFCOUNT",
    "BITOP",
    "MSETNX",
    "COPY",
    "EVAL",
    "EVALSHA",
    "EVAL_RO",
    "EVALSHA_RO",
    "FCALL",
    "FCALL_RO",
    "OBJECT ENCODING",
    "SORT",
    "SORT_RO",
    "LCS",
    "GEORADIUS",
    "GEORADIUSBYMEMBER",
    "GEOSEARCHSTORE",
};

struct Expected {
  std::string_view command;
  RedisRoute route;
  RespMerge merge;  // compared only for kSplit and kAllServers, where replies are merged
};

// Multi-key commands split by server: each server gets its keys, the replies are merged.
constexpr Expected kSplitCommands[] = {
    {"MGET", RedisRoute::kSplit, RespMerge::kValuesInKeyOrder},
    {"MSET", RedisRoute::kSplit, RespMerge::kAllOk},
    {"DEL", RedisRoute::kSplit, RespMerge::kSumIntegers},
    {"UNLINK", RedisRoute::kSplit, RespMerge::kSumIntegers},
    {"EXISTS", RedisRoute::kSplit, RespMerge::kSumIntegers},
    {"TOUCH", RedisRoute::kSplit, RespMerge::kSumIntegers},
};

// Keyless commands about the pool's data or configuration: to every server with the replies
// merged, or to any one server when every server answers alike.
constexpr Expected kPoolCommands[] = {
    {"FLUSHALL", RedisRoute::kAllServers, RespMerge::kAllOk},
    {"FLUSHDB", RedisRoute::kAllServers, RespMerge::kAllOk},
    {"DBSIZE", RedisRoute::kAllServers, RespMerge::kSumIntegers},
    {"KEYS", RedisRoute::kAllServers, RespMerge::kConcatArrays},
    {"RANDOMKEY", RedisRoute::kAllServers, RespMerge::kFirstNonNull},
    // A script or function must exist on every server, since its keys may be on any of them;
    // each server answers LOAD with the same SHA1 or library name.
    {"SCRIPT LOAD", RedisRoute::kAllServers, RespMerge::kFirstReply},
    {"SCRIPT EXISTS", RedisRoute::kAllServers, RespMerge::kAndArrays},
    {"SCRIPT FLUSH", RedisRoute::kAllServers, RespMerge::kAllOk},
    {"FUNCTION LOAD", RedisRoute::kAllServers, RespMerge::kFirstReply},
    {"FUNCTION FLUSH", RedisRoute::kAllServers, RespMerge::kAllOk},
    {"FUNCTION DELETE", RedisRoute::kAllServers, RespMerge::kAllOk},
    {"FUNCTION RESTORE", RedisRoute::kAllServers, RespMerge::kAllOk},
    {"FUNCTION LIST", RedisRoute::kAllServers, RespMerge::kFirstReply},
    {"FUNCTION DUMP", RedisRoute::kOneServer, RespMerge::kAllOk},
    {"CONFIG SET", RedisRoute::kAllServers, RespMerge::kAllOk},
    {"CONFIG RESETSTAT", RedisRoute::kAllServers, RespMerge::kAllOk},
    {"CONFIG GET", RedisRoute::kOneServer, RespMerge::kAllOk},
    {"INFO", RedisRoute::kAllServers, RespMerge::kInfo},
    {"TIME", RedisRoute::kOneServer, RespMerge::kAllOk},
    {"LASTSAVE", RedisRoute::kOneServer, RespMerge::kAllOk},
    {"SCAN", RedisRoute::kScan, RespMerge::kAllOk},
};

// Answered by cachegate itself: connection state and what cachegate knows without a server.
constexpr std::string_view kLocal[] = {
    "PING",
    "ECHO",
    "QUIT",
    "RESET",
    "HELLO",
    "AUTH",
    "SELECT",
    "COMMAND",
    "COMMAND COUNT",
    "COMMAND INFO",
    "COMMAND DOCS",
    "COMMAND LIST",
    "COMMAND GETKEYS",
    "CLIENT SETNAME",
    "CLIENT GETNAME",
    "CLIENT ID",
    "CLIENT INFO",
};

// Transactions: on a connection of the client's own (RedisSession).
constexpr std::string_view kTransactions[] = {"MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"};

// Blocking commands: on a connection of the client's own while they block (RedisSession). XREAD
// and XREADGROUP too: the session forwards them as keyed reads when they carry no BLOCK; the
// policy only sees the command, which may block.
constexpr std::string_view kBlocking[] = {
    "BLPOP",    "BRPOP",    "BLMOVE", "BLMPOP", "BRPOPLPUSH",
    "BZPOPMIN", "BZPOPMAX", "BZMPOP", "XREAD",  "XREADGROUP",
};

// Pub/sub: subscriptions kept by the session, publishing to the channel's server, PUBSUB over
// every server.
constexpr std::string_view kSubscribes[] = {"SUBSCRIBE",    "UNSUBSCRIBE", "PSUBSCRIBE",
                                            "PUNSUBSCRIBE", "SSUBSCRIBE",  "SUNSUBSCRIBE"};
constexpr std::string_view kPublishes[] = {"PUBLISH", "SPUBLISH"};

// Refused with a reason: per-server administration and replication, other databases, Redis
// Cluster, ACL, client-side caching.
constexpr std::string_view kRefused[] = {
    "MONITOR", "SWAPDB", "MOVE", "CLUSTER", "REPLICAOF", "SLAVEOF",         "SHUTDOWN",
    "DEBUG",   "ACL",    "SAVE", "BGSAVE",  "FAILOVER",  "CLIENT TRACKING", "CLIENT CACHING",
};

void check_route(const Expected& e) {
  const RedisPolicy p = policy_of(e.command);
  INFO(e.command << ": route " << route_name(p.route) << ", expected " << route_name(e.route));
  CHECK(p.route == e.route);
  if (e.route == RedisRoute::kSplit || e.route == RedisRoute::kAllServers) {
    INFO("merge " << int(p.merge) << ", expected " << int(e.merge));
    CHECK(p.merge == e.merge);
  }
}

TEST_CASE("Every command and subcommand of the table has a policy, and every refusal says why",
          "[redis-policy]") {
  const auto commands = every_command();
  // The table is the 7.0 command set: far more than the top-level commands.
  REQUIRE(commands.size() > redis::command_count());
  std::set<RedisRoute> routes_seen;
  for (const redis::CommandInfo* c : commands) {
    const RedisPolicy p = redis_policy(*c);
    INFO(c->name << ": " << route_name(p.route));
    CHECK(p.route <= RedisRoute::kUnsupported);
    routes_seen.insert(p.route);
    if (p.route == RedisRoute::kUnsupported) {
      // `why` is sent in a one-line error reply.
      CHECK_FALSE(p.why.empty());
      CHECK(p.why.find_first_of("\r\n") == std::string_view::npos);
    } else {
      CHECK(p.why.empty());
    }
    // Asking twice for the same command gives the same answer.
    const RedisPolicy again = redis_policy(*c);
    CHECK(again.route == p.route);
    CHECK(again.merge == p.merge);
    CHECK(again.flush == p.flush);
    CHECK(again.admin == p.admin);
    CHECK(again.why == p.why);
  }
  // Every route is used by some command of the table.
  CHECK(routes_seen.size() == 12);
}

TEST_CASE("No command that cachegate supports is refused", "[redis-policy]") {
  std::vector<std::string_view> promised(std::begin(kSingleKey), std::end(kSingleKey));
  promised.insert(promised.end(), std::begin(kMultiKeyUnsplit), std::end(kMultiKeyUnsplit));
  promised.insert(promised.end(), std::begin(kLocal), std::end(kLocal));
  for (const Expected& e : kSplitCommands)
    promised.push_back(e.command);
  for (const Expected& e : kPoolCommands)
    promised.push_back(e.command);
  for (std::string_view command : promised) {
    const RedisPolicy p = policy_of(command);
    INFO(command << " is refused: " << p.why);
    CHECK(p.route != RedisRoute::kUnsupported);
  }
}

TEST_CASE("Single-key commands of every type go to the server of their key", "[redis-policy]") {
  for (std::string_view command : kSingleKey)
    check_route({command, RedisRoute::kKeyed, RespMerge::kAllOk});
}

TEST_CASE("Multi-key commands that cannot be split go to one server as keyed requests",
          "[redis-policy]") {
  for (std::string_view command : kMultiKeyUnsplit)
    check_route({command, RedisRoute::kKeyed, RespMerge::kAllOk});
}

TEST_CASE("MGET, MSET, DEL, UNLINK, EXISTS and TOUCH are split by server and merged",
          "[redis-policy]") {
  for (const Expected& e : kSplitCommands)
    check_route(e);
}

TEST_CASE("Keyless data and configuration commands reach the whole pool or one server",
          "[redis-policy]") {
  for (const Expected& e : kPoolCommands)
    check_route(e);
}

TEST_CASE("Only FLUSHALL and FLUSHDB are flushes, which need the pool's allow_flush",
          "[redis-policy]") {
  std::set<std::string_view> flushes;
  for (const redis::CommandInfo* c : every_command())
    if (redis_policy(*c).flush) flushes.insert(c->name);
  CHECK(flushes == std::set<std::string_view>{"flushall", "flushdb"});
  for (std::string_view command : {"FLUSHALL", "FLUSHDB"}) {
    const RedisPolicy p = policy_of(command);
    INFO(command);
    CHECK(p.route == RedisRoute::kAllServers);
    CHECK(p.merge == RespMerge::kAllOk);
    // Both are @dangerous in the table (neither has the admin flag).
    CHECK(p.admin);
  }
}

TEST_CASE("Connection commands and COMMAND are answered by cachegate itself", "[redis-policy]") {
  for (std::string_view command : kLocal)
    check_route({command, RedisRoute::kLocal, RespMerge::kAllOk});
}

TEST_CASE("Transaction commands take the transaction route", "[redis-policy]") {
  for (std::string_view command : kTransactions)
    check_route({command, RedisRoute::kTransaction, RespMerge::kAllOk});
}

TEST_CASE("Per-server, cluster and client-caching commands are refused with a reason",
          "[redis-policy]") {
  for (std::string_view command : kRefused) {
    const RedisPolicy p = policy_of(command);
    INFO(command << ": route " << route_name(p.route));
    CHECK(p.route == RedisRoute::kUnsupported);
    CHECK_FALSE(p.why.empty());
  }
  // Every subcommand of CLUSTER and ACL is refused, not only the bare container.
  for (std::string_view container : {"CLUSTER", "ACL"}) {
    const redis::CommandInfo* c = lookup(container);
    REQUIRE(c != nullptr);
    REQUIRE(c->is_container());
    for (const redis::CommandInfo& sub : c->subs()) {
      const RedisPolicy p = redis_policy(sub);
      INFO(sub.name << ": route " << route_name(p.route));
      CHECK(p.route == RedisRoute::kUnsupported);
      CHECK_FALSE(p.why.empty());
    }
  }
}

TEST_CASE("Blocking commands, pub/sub and PUBSUB have routes of their own", "[redis-policy]") {
  for (std::string_view command : kBlocking)
    check_route({command, RedisRoute::kBlocking, {}});
  for (std::string_view command : kSubscribes)
    check_route({command, RedisRoute::kSubscribe, {}});
  for (std::string_view command : kPublishes)
    check_route({command, RedisRoute::kPublish, {}});
  check_route({"WAIT", RedisRoute::kWait, {}});
  check_route({"PUBSUB CHANNELS", RedisRoute::kAllServers, RespMerge::kConcatArrays});
  check_route({"PUBSUB SHARDCHANNELS", RedisRoute::kAllServers, RespMerge::kConcatArrays});
  check_route({"PUBSUB NUMSUB", RedisRoute::kAllServers, RespMerge::kSumCounts});
  check_route({"PUBSUB SHARDNUMSUB", RedisRoute::kAllServers, RespMerge::kSumCounts});
  check_route({"PUBSUB NUMPAT", RedisRoute::kAllServers, RespMerge::kFirstReply});
  // Publishing is a write for users' permissions; subscribing a read.
  const auto op = [](std::string_view typed) {
    const redis::CommandInfo* command = lookup(typed);
    REQUIRE(command != nullptr);
    return redis_route_op(*command, redis_policy(*command));
  };
  CHECK(op("PUBLISH") == config::RouteOp::kWrite);
  CHECK(op("SPUBLISH") == config::RouteOp::kWrite);
  CHECK(op("SUBSCRIBE") == config::RouteOp::kRead);
  CHECK(op("BLPOP") == config::RouteOp::kWrite);
  CHECK(op("XREAD") == config::RouteOp::kRead);
}

TEST_CASE("Administrative and dangerous commands are marked admin, data commands are not",
          "[redis-policy]") {
  // Admin flag, @dangerous, or both.
  constexpr std::string_view kAdmin[] = {
      "FLUSHALL",    "FLUSHDB",     "CONFIG SET",  "CONFIG GET",  "CONFIG REWRITE",
      "KEYS",        "INFO",        "LASTSAVE",    "SHUTDOWN",    "DEBUG",
      "MONITOR",     "SWAPDB",      "REPLICAOF",   "SAVE",        "ROLE",
      "CLIENT KILL", "CLIENT LIST", "ACL SETUSER", "SLOWLOG GET", "CLUSTER MEET",
  };
  constexpr std::string_view kNotAdmin[] = {
      "GET",    "SET",          "MGET",  "MSET",        "DEL",           "HSET",
      "LPUSH",  "ZADD",         "PING",  "ECHO",        "SCAN",          "DBSIZE",
      "EVAL",   "RANDOMKEY",    "TIME",  "SCRIPT LOAD", "FUNCTION LOAD", "CLIENT SETNAME",
      "SELECT", "COMMAND INFO", "MULTI", "BLPOP",
  };
  for (std::string_view command : kAdmin) {
    INFO(command);
    CHECK(policy_of(command).admin);
  }
  for (std::string_view command : kNotAdmin) {
    INFO(command);
    CHECK_FALSE(policy_of(command).admin);
  }
  // Across the whole table, admin is exactly: the admin flag or the @dangerous category.
  for (const redis::CommandInfo* c : every_command()) {
    const bool admin =
        c->has(redis::CommandFlag::kAdmin) || c->in_category(redis::AclCategory::kDangerous);
    INFO(c->name);
    CHECK(redis_policy(*c).admin == admin);
  }
}

}  // namespace
}  // namespace cachegate::routing

namespace cachegate::routing {
namespace {

TEST_CASE("HELP texts come from one server, and commands that escape the placement are refused",
          "[redis-policy]") {
  for (std::string_view typed :
       {"CONFIG HELP", "SCRIPT HELP", "FUNCTION HELP", "MEMORY HELP", "OBJECT HELP", "XINFO HELP",
        "XGROUP HELP", "COMMAND HELP", "PFSELFTEST"}) {
    INFO(typed);
    CHECK(route_name(policy_of(typed).route) == std::string("kOneServer"));
  }
  // CLIENT HELP lists only what cachegate itself answers.
  CHECK(route_name(policy_of("CLIENT HELP").route) == std::string("kLocal"));
  for (std::string_view typed : {"MIGRATE", "RESTORE-ASKING", "SCRIPT DEBUG"}) {
    INFO(typed);
    const RedisPolicy p = policy_of(typed);
    CHECK(route_name(p.route) == std::string("kUnsupported"));
    CHECK_FALSE(p.why.empty());
  }
}

}  // namespace
}  // namespace cachegate::routing
