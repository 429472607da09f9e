#pragma once

// One memcached-protocol client connection.
//
// Reads into one buffer, parses requests in place, and forwards each to the server that owns its
// key — unmodified, except that a noreply is taken off (the server's reply is then discarded, so
// every request sent to a server gets exactly one reply and the reply stream stays in step) and a
// quiet meta request gets an "mn" appended (the server's MN marks where its possibly empty reply
// ends). Replies go back in request order whatever order servers answer in: each request that
// expects a reply holds a slot, and slots leave from the front.
//
// Bounds: requests in flight and reply bytes buffered per client are capped; at the cap the
// session stops reading (the client's writes then back up in TCP) until replies drain.

#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/loop.h"
#include "protocol/buffer.h"
#include "protocol/memcache_request.h"
#include "routing/destination.h"
#include "routing/pool.h"

namespace cachegate::proxy {

class Worker;
struct WorkerCounters;

class MemcacheSession final : public routing::ReplyHandler,
                              public backends::Flushable,
                              public backends::Pollable {
 public:
  // Takes ownership of the connected, non-blocking socket `fd`.
  MemcacheSession(Worker& worker, routing::Pool& pool, int fd, uint32_t id);
  ~MemcacheSession() override;

  void start();
  // Closes the connection now; replies still in flight are dropped when they arrive.
  void close();
  bool closed() const { return closed_; }

  // routing::ReplyHandler
  void on_reply(uint32_t cookie, std::string_view reply, bool error) override;
  void on_failure(uint32_t cookie, routing::Failure failure) override;
  void charge(int64_t bytes) override;

  // backends::Flushable, backends::Pollable
  void flush_now() override;
  void on_poll(uint32_t events) override;
  void retain() override { add_ref(); }
  void unretain() override { release(); }

  // Intrusive list of the worker's sessions.
  MemcacheSession* prev = nullptr;
  MemcacheSession* next = nullptr;

 private:
  // What a slot waits for, so replies can be counted (hits, misses).
  enum class SlotKind : uint8_t { kOther, kRetrieval };
  struct Slot {
    bool ready = false;
    SlotKind kind = SlotKind::kOther;
    uint32_t keys = 0;  // retrieval: keys asked for, to count misses
    std::string bytes;  // the reply, when it arrived before the slots in front of it
  };
  // Cookies with this bit carry no slot: the request was noreply and its reply is discarded.
  static constexpr uint32_t kNoSlot = 0x80000000u;
  static constexpr uint32_t kSeqMask = 0x7fffffffu;

  // Reads and handles requests; stops at a short read unless `until_eagain`.
  void on_readable(bool until_eagain);
  void process_input();
  bool can_take_more() const;
  void maybe_resume();
  // With the client done sending (EOF, quit, lost framing): close once every reply is out.
  void finish_if_done();
  void wait_writable();

  void dispatch(const protocol::memcache::Request& request, const char* frame);
  void forward(uint32_t server, const std::string_view* pieces, size_t count,
               protocol::ReplyShape shape, bool noreply, SlotKind kind, uint32_t keys = 0);
  void dispatch_retrieval(const protocol::memcache::Request& request, const char* frame);
  void dispatch_flush_all(const protocol::memcache::Request& request, const char* frame);
  void answer_stats(const protocol::memcache::Request& request, const char* frame);

  uint32_t open_slot(SlotKind kind, uint32_t keys = 0);
  void complete(uint32_t seq, std::string_view bytes);
  // Answers locally, in order behind any replies still outstanding.
  void reply_local(std::string_view bytes);
  void count_reply(const Slot& slot, std::string_view reply);
  // Disconnects a client that makes cachegate hold more than client_output_hard_max.
  void enforce_output_limit();
  void pause_reading();
  void start_linger();
  Slot& slot(uint32_t seq) { return slots_[seq & slot_mask_]; }
  void grow_slots();

  Worker& worker_;
  routing::Pool& pool_;
  WorkerCounters& counters_;
  int fd_;
  const uint32_t id_;
  protocol::Buffer in_;
  protocol::Buffer out_;
  protocol::memcache::RequestParser parser_;
  std::vector<Slot> slots_;
  uint32_t slot_mask_ = 0;
  uint32_t head_seq_ = 0;   // oldest slot not yet written to out_
  uint32_t next_seq_ = 0;   // next slot to open
  uint32_t in_flight_ = 0;  // requests at servers, with or without a slot
  // Reply bytes held besides out_: in slots waiting for earlier replies, and in parts of
  // unfinished multi-gets. With out_ it is what one client makes cachegate hold.
  uint64_t held_ = 0;
  uint64_t swallow_ = 0;                 // bytes of a rejected data block still to discard
  uint64_t needed_ = 0;                  // size of the partial request at the front, when known
  std::vector<uint32_t> server_of_key_;  // scratch for multi-gets
  std::unique_ptr<boost::asio::steady_timer> linger_;  // bounds the last write of a closing client
  bool write_waiting_ = false;  // a write hit EAGAIN; the next EPOLLOUT resumes it
  bool paused_ = false;
  bool peer_eof_ = false;
  bool closing_ = false;  // close once everything queued is written (quit, lost framing)
  bool closed_ = false;
};

}  // namespace cachegate::proxy
