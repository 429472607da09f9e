#pragma once

// A memcached-protocol client connection (text and meta protocol).
//
// Each request is forwarded to the server that owns its key, unmodified, except that a noreply
// is taken off (the server's reply is then discarded, so every request sent to a server gets
// exactly one reply and the reply stream stays in step) and a quiet meta request gets an "mn"
// appended (the server's MN marks where its possibly empty reply ends). Multi-key gets spanning
// servers are split and merged (routing::RetrievalFanout); flush_all is broadcast.

#include <cstdint>
#include <vector>

#include "protocol/memcache_request.h"
#include "proxy/client_session.h"

namespace cachegate::proxy {

class MemcacheSession final : public ClientSession {
 public:
  MemcacheSession(Worker& worker, routing::Pool& pool, int fd, uint32_t id,
                  const ListenerContext& listener);

 private:
  // What a slot waits for, so replies can be counted (hits, misses).
  enum SlotKind : uint8_t { kOther = 0, kRetrieval = 1 };

  void process_input() override;
  std::string failure_reply(routing::Failure failure) override;
  void on_slot_reply(const Slot& slot, std::string_view reply, bool error) override;
  void on_discarded_reply(bool error) override;

  void dispatch(const protocol::memcache::Request& request, const char* frame);
  void dispatch_login(const protocol::memcache::Request& request, const char* frame);
  bool permitted(const protocol::memcache::Request& request, const char* frame);
  void dispatch_retrieval(const protocol::memcache::Request& request, const char* frame);
  void dispatch_flush_all(const protocol::memcache::Request& request, const char* frame);
  void answer_stats(const protocol::memcache::Request& request, const char* frame);

  protocol::memcache::RequestParser parser_;
  uint64_t swallow_ = 0;                 // bytes of a rejected data block still to discard
  std::vector<uint32_t> server_of_key_;  // scratch for multi-gets
};

}  // namespace cachegate::proxy
