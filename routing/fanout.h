#pragma once

// Requests that reach several servers of a pool and answer the client once:
//
// - RetrievalFanout ("fragment and coalesce"): a multi-key get/gets/gat/gats is split into one
//   sub-request per server holding any of its keys; the replies are merged into one, items in the
//   client's key order, with a single END. If any part fails, the client gets that failure
//   instead (a partial list of items would read as misses, and the caller could not tell a miss
//   from a broken server); an error line from a server is passed on the same way.
// - Broadcast: the same request to every server (flush_all); the reply is the first server's,
//   unless some server failed or answered with an error, which then wins.
//
// Both are ReplyHandlers themselves: they receive the parts' replies and report to the client's
// handler under the client's cookie. Objects are recycled per thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/memcache_request.h"
#include "routing/destination.h"
#include "routing/part_collector.h"
#include "routing/pool.h"

namespace cachegate::routing {

// Merges retrieval replies. keys[i] is the client's i-th key, part_of_key[i] the part it was
// sent in, parts[p] part p's complete reply (VALUE items, END). Items come back from a server in
// the order its sub-request listed them, skipping misses, so each part is walked once, in step
// with the client's keys. Appends items then "END\r\n" to `out`.
void merge_retrieval(const std::vector<std::string_view>& keys,
                     const std::vector<uint32_t>& part_of_key,
                     const std::vector<std::string_view>& parts, std::string& out);

class RetrievalFanout final : public PartCollector {
 public:
  // `request` is the client's request bytes; `keys` spans into it; `server_of_key[i]` the
  // router's target of keys[i] (for a pool: the server, all live). `command` is get/gets/gat/gats;
  // `exptime` is empty except for gat/gats. A sub-request line longer than `max_line` bytes (0: no
  // limit) is split into several for the same server. The outcome reaches `client` under `cookie`,
  // possibly before start() returns.
  static void start(PartRouter& router, std::string_view command, std::string_view exptime,
                    const char* request, const std::vector<protocol::memcache::Span>& keys,
                    const std::vector<uint32_t>& server_of_key, ReplyHandler& client,
                    uint32_t cookie, uint32_t affinity, size_t max_line = 0);

  void on_reply(uint32_t part, std::string_view reply, bool error) override;

 private:
  RetrievalFanout() = default;
  void destroy() override;
  void deliver_merged(ReplyHandler& client, uint32_t cookie) override;

  std::string key_bytes_;
  std::vector<std::string_view> keys_;
  std::vector<uint32_t> part_of_key_;
  std::vector<uint32_t> part_server_;
  std::vector<size_t> part_line_;
  std::string merged_;
};

class Broadcast final : public ReplyHandler {
 public:
  // Sends pieces[0..count) to every server of `pool`; the combined outcome reaches `client`.
  static void start(Pool& pool, const std::string_view* pieces, size_t count,
                    protocol::ReplyShape shape, ReplyHandler& client, uint32_t cookie,
                    uint32_t affinity);
  // The same to every server of several pools (a flush through a route rule that reaches
  // several); the first pool's first server gives the reply.
  static void start(Pool* const* pools, size_t pool_count, const std::string_view* pieces,
                    size_t count, protocol::ReplyShape shape, ReplyHandler& client, uint32_t cookie,
                    uint32_t affinity);

  void on_reply(uint32_t server, std::string_view reply, bool error) override;
  void on_failure(uint32_t server, Failure failure) override;

 private:
  Broadcast() = default;
  void destroy() override;
  void part_done();

  Ref<ReplyHandler> client_;
  uint32_t cookie_ = 0;
  size_t outstanding_ = 0;
  bool failed_ = false;
  Failure failure_ = Failure::kClosed;
  bool have_error_ = false;
  std::string first_reply_;  // the reply of server 0, or the first error reply
};

}  // namespace cachegate::routing
