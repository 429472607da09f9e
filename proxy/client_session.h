#pragma once

// One client connection, whatever protocol it speaks: reading, writing, replies in request
// order, bounds and closing. Protocol sessions (MemcacheSession, RedisSession) derive from it and
// only parse requests and decide where they go.
//
// Replies go back in request order whatever order servers answer in: each request that expects a
// reply holds a slot, and slots leave from the front. A reply that arrives for the front slot goes
// straight to the output buffer; one that arrives early waits in its slot.
//
// Bounds: requests in flight and reply bytes held per client are capped; at client_output_max the
// session stops reading (the client's writes then back up in TCP) until replies drain, and past
// client_output_hard_max it disconnects the client.

#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/loop.h"
#include "protocol/buffer.h"
#include "protocol/reply_shape.h"
#include "routing/destination.h"
#include "routing/pool.h"

namespace cachegate::proxy {

class Worker;
struct WorkerCounters;

class ClientSession : public routing::ReplyHandler,
                      public backends::Flushable,
                      public backends::Pollable {
 public:
  // Takes ownership of the connected, non-blocking socket `fd`.
  ClientSession(Worker& worker, routing::Pool& pool, int fd, uint32_t id);
  ~ClientSession() override;

  void start();
  // Closes the connection now; replies still in flight are dropped when they arrive.
  void close();
  bool closed() const { return closed_; }
  uint32_t id() const { return id_; }

  // routing::ReplyHandler
  void on_reply(uint32_t cookie, std::string_view reply, bool error) final;
  void on_failure(uint32_t cookie, routing::Failure failure) final;
  void charge(int64_t bytes) final;

  // backends::Flushable, backends::Pollable
  void flush_now() final;
  void on_poll(uint32_t events) final;
  void retain() final { add_ref(); }
  void unretain() final { release(); }

  // Intrusive list of the worker's sessions.
  ClientSession* prev = nullptr;
  ClientSession* next = nullptr;

 protected:
  struct Slot {
    bool ready = false;
    uint8_t kind = 0;   // for the protocol session: what the slot waits for
    uint32_t keys = 0;  // for the protocol session: e.g. keys asked for, to count misses
    std::string bytes;  // the reply, when it arrived before the slots in front of it
  };
  // Cookies with this bit carry no slot: the reply is discarded (a memcached noreply).
  static constexpr uint32_t kNoSlot = 0x80000000u;

  // Parses and dispatches the requests in in_, consuming what it handled. Called after every
  // read and when reading resumes. Must stop when can_take_more() turns false (pause_reading()).
  virtual void process_input() = 0;
  // The error reply, in the client's protocol, for a request whose server failed.
  virtual std::string failure_reply(routing::Failure failure) = 0;
  // Seen before a slot's reply is queued for the client (statistics).
  virtual void on_slot_reply(const Slot& slot, std::string_view reply, bool error) {}
  // A reply nobody waits for (kNoSlot) came back.
  virtual void on_discarded_reply(bool error) {}

  // Sends a request to server `server` of the pool; its reply fills a new slot (or is discarded
  // when `discard`).
  void forward(uint32_t server, const std::string_view* pieces, size_t count,
               protocol::ReplyShape shape, bool discard = false, uint8_t kind = 0,
               uint32_t keys = 0);
  // A slot for a reply that a handler other than forward() will deliver under the cookie.
  uint32_t open_slot(uint8_t kind = 0, uint32_t keys = 0);
  // Counts a request handed to a fan-out with open_slot()'s cookie.
  void count_in_flight() { ++in_flight_; }
  // Answers locally, in order behind any replies still outstanding.
  void reply_local(std::string_view bytes);

  bool can_take_more() const;
  void pause_reading();
  // The client is done (quit, lost framing): close once every reply is out.
  void close_when_done() {
    closing_ = true;
    finish_if_done();
  }
  // To be called by process_input() when it stops.
  void input_done();

  Worker& worker_;
  routing::Pool& pool_;
  WorkerCounters& counters_;
  protocol::Buffer in_;
  uint64_t needed_ = 0;   // size of the partial request at the front of in_, when known
  bool closing_ = false;  // close once everything queued is written

 private:
  // Reads and handles requests; stops at a short read unless `until_eagain`.
  void on_readable(bool until_eagain);
  void maybe_resume();
  // With the client done sending (EOF, quit, lost framing): close once every reply is out.
  void finish_if_done();
  void complete(uint32_t seq, std::string_view bytes);
  // Disconnects a client that makes cachegate hold more than client_output_hard_max.
  void enforce_output_limit();
  void start_linger();
  Slot& slot(uint32_t seq) { return slots_[seq & slot_mask_]; }
  uint32_t full_seq(uint32_t cookie) const;
  void grow_slots();

  int fd_;
  const uint32_t id_;
  protocol::Buffer out_;
  std::vector<Slot> slots_;
  uint32_t slot_mask_ = 0;
  uint32_t head_seq_ = 0;   // oldest slot not yet written to out_
  uint32_t next_seq_ = 0;   // next slot to open
  uint32_t in_flight_ = 0;  // requests at servers, with or without a slot
  // Reply bytes held besides out_: in slots waiting for earlier replies, and in parts of
  // unfinished multi-key requests. With out_ it is what one client makes cachegate hold.
  uint64_t held_ = 0;
  std::unique_ptr<boost::asio::steady_timer> linger_;  // bounds the last write of a closing client
  bool write_waiting_ = false;  // a write hit EAGAIN; the next EPOLLOUT resumes it
  bool paused_ = false;
  bool peer_eof_ = false;
  bool closed_ = false;
};

}  // namespace cachegate::proxy
