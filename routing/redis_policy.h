#pragma once

// How cachegate handles each Redis command over a pool of independent servers: one decision per
// command (or subcommand), made from the command table's flags and a few lists, so the rest of the
// code — and a later per-user permission check — asks one question.

#include <string_view>

#include "config/config.h"
#include "protocol/redis_commands.h"
#include "routing/resp_fanout.h"

namespace cachegate::routing {

enum class RedisRoute : uint8_t {
  kLocal,       // answered by cachegate (PING, HELLO, SELECT, COMMAND, CLIENT SETNAME, …)
  kKeyed,       // to the server of its keys; keys on several servers are a CROSSSLOT error
  kSplit,       // MGET, MSET, DEL, UNLINK, EXISTS, TOUCH: one sub-request per server, merged
  kAllServers,  // every server of the pool, replies merged (`merge`)
  kOneServer,   // any one server (TIME, LASTSAVE, CONFIG GET, FUNCTION LIST, …)
  kScan,        // SCAN over every server in turn
  // MULTI, EXEC, DISCARD, WATCH, UNWATCH: a transaction, on a connection of the client's own to
  // the one server its keys hash to
  kTransaction,
  // BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN/MAX, BLMPOP, BZMPOP, XREAD/XREADGROUP … BLOCK: to
  // the server of their keys, on a connection of the client's own for as long as they block
  kBlocking,
  // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs: kept by cachegate per client, and
  // made on connections of the client's own to the servers the channels hash to (patterns: every
  // server)
  kSubscribe,
  kPublish,  // PUBLISH, SPUBLISH: to the server the channel hashes to
  // WAIT: on a connection of the client's own to every server of the pool, after a replicated
  // no-op, so that each counts the replicas that have everything it had; the smallest count wins
  kWait,
  kUnsupported,  // answered with an error naming the command and `why`
};

struct RedisPolicy {
  RedisRoute route = RedisRoute::kUnsupported;
  RespMerge merge = RespMerge::kAllOk;  // kSplit and kAllServers
  bool flush = false;                   // FLUSHALL/FLUSHDB: only with the pool's allow_flush
  // Server administration or dangerous (COMMAND's admin flag or @dangerous category): the check
  // a later per-user permission model makes.
  bool admin = false;
  std::string_view why;  // kUnsupported: the reason, for the error text
};

// A policy that routes (no flush, no admin, no reason).
constexpr RedisPolicy routed(RedisRoute route, RespMerge merge = RespMerge::kAllOk) {
  return {route, merge, false, false, {}};
}

// The policy for a resolved command (a subcommand's own info for containers).
RedisPolicy redis_policy(const protocol::redis::CommandInfo& command);

// What a command does, for route rules and users' permissions. Server administration (Redis's
// admin flag), whole-pool commands, and scripts (which can reach any key of their server from
// inside) are admin operations; commands on keys are reads or writes by Redis's write flag,
// including the @dangerous ones whose danger is the keys they touch (SORT, RESTORE), which key
// patterns cover. Among writes, those that remove keys are deletes and the counters arithmetic,
// so route rules can treat them apart.
config::RouteOp redis_route_op(const protocol::redis::CommandInfo& command,
                               const RedisPolicy& policy);

}  // namespace cachegate::routing
