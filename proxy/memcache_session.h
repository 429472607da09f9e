#pragma once

// A memcached-protocol client connection (text and meta protocol).
//
// Each request is forwarded to the server that owns its key, unmodified, except that a noreply
// is taken off (the server's reply is then discarded, so every request sent to a server gets
// exactly one reply and the reply stream stays in step) and a quiet meta request gets an "mn"
// appended (the server's MN marks where its possibly empty reply ends). Multi-key gets spanning
// servers are split and merged (routing::RetrievalFanout); flush_all is broadcast. For a user with
// a namespace, the namespace is put in front of every key, and taken off the keys that replies
// name (VALUE lines, meta k flags, ME).

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/memcache_request.h"
#include "proxy/client_session.h"

namespace cachegate::proxy {

class MemcacheSession final : public ClientSession {
 public:
  MemcacheSession(Worker& worker, Generation& generation, const Generation::Listener& listener,
                  int fd, uint32_t id);

 private:
  size_t describe_request(char* out, size_t size) const override;
  std::string_view current_line_;  // the request being dispatched (valid during dispatch)

  // What a slot waits for, so replies can be counted (hits, misses) and, for a user with a
  // namespace, have it taken off the keys they name.
  enum SlotKind : uint8_t { kOther = 0, kRetrieval = 1, kMeta = 2 };
  static constexpr uint8_t kKindMask = 3;
  static constexpr uint8_t kStripKeys = 4;  // the reply names keys in the user's namespace

  void process_input() override;
  std::string failure_reply(routing::Failure failure) override;
  std::string_view on_slot_reply(const Slot& slot, std::string_view reply, bool error) override;
  void on_discarded_reply(bool error) override;
  const routing::ReplyJudge& judge() const override;

  void dispatch(const protocol::memcache::Request& request, const char* frame);
  void dispatch_login(const protocol::memcache::Request& request, const char* frame);
  bool permitted(const protocol::memcache::Request& request, const char* frame);
  void dispatch_retrieval(const protocol::memcache::Request& request, const char* frame);
  void dispatch_flush_all(const protocol::memcache::Request& request, const char* frame);
  void answer_stats(const protocol::memcache::Request& request, const char* frame);
  // A one-key request with the user's namespace: sets ns_key_ to the key as stored (what is
  // hashed) and, for a base64 key, ns_encoded_ to its encoding. False, after answering the
  // client, when the key or the line would be too long for memcached.
  bool namespace_key(const protocol::memcache::Request& request, const char* frame);
  // The request's bytes as forwarded, in pieces: the namespace put in front of its key (when
  // the user has one), the noreply token dropped (`drop_noreply`). Returns the piece count (4 at
  // most).
  size_t forwarded_pieces(const protocol::memcache::Request& request, const char* frame,
                          bool drop_noreply, std::string_view* pieces) const;

  protocol::memcache::RequestParser parser_;
  uint64_t swallow_ = 0;                 // bytes of a rejected data block still to discard
  std::vector<uint32_t> server_of_key_;  // scratch for multi-gets
  // For users with a namespace (reused, so nothing is allocated per request once warm).
  std::string ns_key_;
  std::string ns_encoded_;
  std::string ns_line_;
  std::string reply_rewrite_;
};

}  // namespace cachegate::proxy
