#pragma once

// Redis requests that reach several servers of a pool and answer the client once.
//
// - Keyed fan-out: MGET, MSET, DEL, UNLINK, EXISTS, TOUCH split into one sub-request per server
//   holding any of the keys (never one per key); MGET's values come back in the client's key
//   order, integer replies are summed, MSET answers OK.
// - Pool fan-out: the same request to every server (FLUSHALL, DBSIZE, KEYS, SCRIPT …, CONFIG SET,
//   INFO …), merged by a rule per command.
// - SCAN over a whole pool: the client's cursor carries the server index in its low bits and that
//   server's own cursor above them, so a full iteration visits every server exactly once.
//
// A part that fails fails the whole request (the client gets one error, not a partial answer it
// could mistake for a complete one); a server's error reply (-ERR, -WRONGTYPE …) is passed on the
// same way. Objects are recycled per thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/reply_shape.h"
#include "routing/destination.h"
#include "routing/part_collector.h"
#include "routing/pool.h"

namespace cachegate::routing {

enum class RespMerge : uint8_t {
  kValuesInKeyOrder,  // MGET: one element per key, in the client's order
  kSumIntegers,       // DEL, UNLINK, EXISTS, TOUCH, DBSIZE
  kAllOk,             // MSET, FLUSHALL, FLUSHDB, SCRIPT FLUSH, CONFIG SET …: +OK when all say so
  kFirstReply,        // SCRIPT LOAD, FUNCTION LOAD …: every server answers alike; the first wins
  kConcatArrays,      // KEYS
  kAndArrays,         // SCRIPT EXISTS: 1 only where every server has the script
  kSumCounts,         // PUBSUB NUMSUB: [name, count, …], each name's counts summed
  kFirstNonNull,      // RANDOMKEY
  kInfo,              // INFO: one server's sections, the Keyspace summed, a section of ours first
};

class RespFanout final : public PartCollector {
 public:
  // Keyed fan-out. args[0..argc) is the client's request; keys are at args[key_index[i]] and,
  // for MSET, each key's value follows it. `server_of_key[i]` is the router's target of key i
  // (for a pool: its server, all live).
  static void start_keyed(PartRouter& router, const std::string_view* args, size_t argc,
                          const std::vector<uint32_t>& key_index,
                          const std::vector<uint32_t>& server_of_key, bool with_values,
                          RespMerge merge, protocol::ReplyShape shape, ReplyHandler& client,
                          uint32_t cookie, uint32_t affinity);

  // Pool fan-out: `request` (RESP bytes) to every server. `protocol` (2 or 3) is the client's,
  // for the merged reply's types; `info_prefix` is prepended to a merged INFO text.
  static void start_pool(Pool& pool, std::string_view request, RespMerge merge,
                         protocol::ReplyShape shape, int protocol, std::string_view info_prefix,
                         ReplyHandler& client, uint32_t cookie, uint32_t affinity);

  // The same over every server of several pools (a flush through a route rule that reaches
  // several pools); replies are merged as if from one pool.
  static void start_pools(Pool* const* pools, size_t count, std::string_view request,
                          RespMerge merge, protocol::ReplyShape shape, int protocol,
                          std::string_view info_prefix, ReplyHandler& client, uint32_t cookie,
                          uint32_t affinity);

  void on_reply(uint32_t part, std::string_view reply, bool error) override;

 private:
  RespFanout() = default;
  void destroy() override;
  void deliver_merged(ReplyHandler& client, uint32_t cookie) override;
  void merge_into(std::string& out);
  static RespFanout* acquire(RespMerge merge);

  RespMerge merge_ = RespMerge::kAllOk;
  int protocol_ = 2;
  std::string info_prefix_;
  std::vector<uint32_t> part_of_key_;
  std::vector<uint32_t> part_server_;
  size_t parts_ = 0;
  std::string merged_;
};

// SCAN cursors over a pool of `servers` servers.
struct ScanCursor {
  uint32_t server = 0;
  uint64_t server_cursor = 0;
};
// Bits of the client cursor that hold the server index.
int scan_server_bits(size_t servers);
// False when `text` is not a cursor cachegate handed out for this pool.
bool decode_scan_cursor(std::string_view text, size_t servers, ScanCursor& out);
std::string encode_scan_cursor(const ScanCursor& cursor, size_t servers);

class ScanRequest final : public ReplyHandler {
 public:
  // Sends SCAN with the server's own cursor and the client's other arguments (MATCH, COUNT,
  // TYPE) to the server the cursor names; rewrites the reply's cursor for the client.
  static void start(Pool& pool, const ScanCursor& cursor, const std::string_view* rest,
                    size_t rest_count, protocol::ReplyShape shape, ReplyHandler& client,
                    uint32_t cookie, uint32_t affinity);

  void on_reply(uint32_t, std::string_view reply, bool error) override;
  void on_failure(uint32_t, Failure failure) override;

 private:
  ScanRequest() = default;
  void destroy() override;

  Ref<ReplyHandler> client_;
  uint32_t cookie_ = 0;
  ScanCursor cursor_;
  size_t servers_ = 0;
  std::string rewritten_;
};

}  // namespace cachegate::routing
