#pragma once

// One keyed request carried through a route rule (routing/route_table.h):
//
// - pool: to the server of its key in that pool.
// - failover: to the first pool whose server for the key is up; on a failure or an error reply,
//   to the next (writes too: a write lands on the first pool that takes it).
// - replicate: writes (and deletes, arithmetic) to every pool. all-sync answers once every pool
//   has answered, with the worst outcome (a failure, else an error reply, else a refusal such as
//   NOT_STORED, else success); quorum answers as soon as a majority succeeded (or, when that can
//   no longer happen, with the worst outcome once all are in); all-async answers with the first
//   pool's outcome and lets the others finish in the background, a bounded number per worker
//   (past it they are dropped and counted). Reads go to one pool chosen by the read policy and
//   move to the next on a failure or error (and on a miss with miss_failover).
// - warmup: reads try the cold pool, then on a miss the warm one; a hit there is answered and
//   copied into the cold pool (ReplyJudge::fill_requests says how, with the warm pool's remaining
//   TTL where the protocol can tell it). Writes go to the cold pool.
// - shadow (any rule): a sampled copy of the request goes to the shadow pool; its replies and
//   failures are counted and otherwise ignored, and at most kMaxShadowInFlight copies per worker
//   are out at once (more are dropped and counted), so a slow or dead shadow never holds up
//   anything.
//
// Requests whose route needs more than one attempt keep a copy of their bytes; plain pool routes
// send the client's bytes directly and cost nothing extra.

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "protocol/reply_shape.h"
#include "routing/destination.h"
#include "routing/route_table.h"

namespace cachegate::routing {

// How the route layer reads a reply.
enum class ReplyClass : uint8_t {
  kOk,       // a hit, or a write/delete/arithmetic that was done
  kMiss,     // a read that found nothing
  kRefused,  // a write the server declined (NOT_STORED, EXISTS, NOT_FOUND …): a valid answer
  kError,    // an error reply
};

// The protocol's part of routing: reading replies, and building the warm-up fill.
class ReplyJudge {
 public:
  virtual ~ReplyJudge() = default;
  // `op` tells a quiet meta reply's meaning (an MN alone: a miss for a read, done for a write).
  virtual ReplyClass classify(std::string_view reply, bool error, config::RouteOp op) const = 0;
  // Warm-up, after a read `request` of `key` hit on the warm pool: the request that asks the
  // warm pool for the item's remaining TTL, written to `out`; false when the protocol needs none
  // (or cannot tell it).
  virtual bool ttl_request(std::string_view request, std::string_view key,
                           std::string& out) const = 0;
  // The request that stores the warm pool's `reply` under `key` in the cold pool, given the reply
  // to ttl_request (empty when none was sent), written to `out`. False: the item is not copied
  // (a read whose reply cannot be stored back as it is, or a TTL reply that says it expired).
  virtual bool fill(std::string_view request, std::string_view key, std::string_view reply,
                    std::string_view ttl_reply, std::string& out) const = 0;
  // A write with its expiry capped at `max_seconds` (an expiry further away, or none, becomes
  // max_seconds), written to `out`; false when the request carries no expiry that can be capped
  // (it is then sent as it is).
  virtual bool cap_ttl(std::string_view request, uint32_t max_seconds, std::string& out) const = 0;
  // A rule's rewrite: `request` with each key it names rewritten (`strip` taken off where the
  // key starts with it, then `add` put in front), written to `out`, and the first rewritten key
  // (what pools hash) to `key`. False when the request names no key it can rewrite (it is sent
  // as it is); `refusal` set means the rewritten request cannot be sent at all (a memcached key
  // or line grown past memcached's limits) and is the reply to give instead.
  virtual bool rewrite_request(std::string_view request, std::string_view strip,
                               std::string_view add, std::string& out, std::string& key,
                               std::string& refusal) const = 0;
  // The reply to a rewritten request with the keys it names rewritten back (`add` taken off,
  // `strip` put back), written to `out`; false when it names none.
  virtual bool restore_reply(std::string_view request, std::string_view reply,
                             std::string_view strip, std::string_view add,
                             std::string& out) const = 0;
  // The reply shapes of those two requests.
  virtual protocol::ReplyShape ttl_shape() const = 0;
  virtual protocol::ReplyShape fill_shape() const = 0;
};

struct RouteCounters;

// Receives the replies nobody waits for (shadow copies, warm-up fills) and counts them. One per
// worker, inside its RouteCounters, so it outlives every request a worker's servers still hold.
class RouteSink final : public ReplyHandler {
 public:
  explicit RouteSink(RouteCounters& counters) : counters_(counters) { add_ref(); }
  void on_reply(uint32_t cookie, std::string_view reply, bool error) override;
  void on_failure(uint32_t cookie, Failure failure) override;

 private:
  void done(uint32_t cookie, bool failed);
  void destroy() override {}
  RouteCounters& counters_;
};

// Per-worker counters of the route layer; written by the worker only, read by stats with
// relaxed loads.
struct RouteCounters {
  std::atomic<uint64_t> routed{0};            // requests through a rule that is not a plain pool
  std::atomic<uint64_t> replica_failures{0};  // replicated writes that failed on one pool
  std::atomic<uint64_t> failovers{0};         // attempts moved to the next pool
  std::atomic<uint64_t> async_pending{0};     // all-async writes still out in the background
  std::atomic<uint64_t> async_dropped{0};     // … not sent: too many were out
  std::atomic<uint64_t> shadow_sent{0};
  std::atomic<uint64_t> shadow_failures{0};  // failures and error replies of shadow copies
  std::atomic<uint64_t> shadow_dropped{0};   // … not sent: too many out, or the server is down
  std::atomic<uint64_t> shadow_pending{0};
  std::atomic<uint64_t> warmup_fills{0};  // items copied from the warm to the cold pool

  static void bump(std::atomic<uint64_t>& c, int64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + static_cast<uint64_t>(n),
            std::memory_order_relaxed);
  }

  RouteSink sink{*this};
};

inline constexpr uint64_t kMaxShadowInFlight = 1024;
inline constexpr uint64_t kMaxAsyncInFlight = 8192;

struct RoutedRequest {
  std::string_view key;                      // the key as servers store it (what each pool hashes)
  const std::string_view* pieces = nullptr;  // the bytes to send, in pieces
  size_t count = 0;
  protocol::ReplyShape shape = protocol::ReplyShape::kMcLine;
  config::RouteOp op = config::RouteOp::kRead;
};

// Carries `request` through `rule`; the outcome reaches `client` under `cookie` (possibly before
// this returns). `affinity` keeps one client's requests on one connection per server.
void route_request(RouteRule& rule, const RoutedRequest& request, const ReplyJudge& judge,
                   RouteCounters& counters, ReplyHandler& client, uint32_t cookie,
                   uint32_t affinity);

}  // namespace cachegate::routing
