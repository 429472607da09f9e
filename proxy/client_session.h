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

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/loop.h"
#include "config/config.h"
#include "protocol/buffer.h"
#include "protocol/reply_shape.h"
#include "proxy/generation.h"
#include "routing/destination.h"
#include "routing/pool.h"
#include "routing/route_table.h"
#include "routing/routed_request.h"

namespace cachegate::backends {
class TlsStream;
}

namespace cachegate::proxy {

using backends::TlsStream;

class Worker;
struct WorkerCounters;
struct ListenerCounters;
class ListenerTls;

class ClientSession : public routing::ReplyHandler,
                      public routing::PartRouter,
                      public backends::Flushable,
                      public backends::Pollable {
 public:
  // Takes ownership of the connected, non-blocking socket `fd`, accepted by `listener` of
  // `generation`.
  ClientSession(Worker& worker, Generation& generation, const Generation::Listener& listener,
                int fd, uint32_t id);
  ~ClientSession() override;

  void start();
  // Closes the connection now; replies still in flight are dropped when they arrive.
  void close();
  bool closed() const { return closed_; }
  uint32_t id() const { return id_; }

  // Nothing in flight and every reply queued for writing: a request boundary.
  bool idle() const { return in_flight_ == 0 && head_seq_ == next_seq_ && !login_pending_; }
  // After a reload: when idle, moves to the worker's current generation (its listener of the
  // same name, its pools and rules, the user of the same name). A connection whose listener is
  // gone, has changed protocol, or whose user is gone, is closed once its replies are out.
  void adopt_current_generation();
  // SIGTERM: from now on the connection is closed at its first moment with nothing in flight,
  // nothing unwritten and no complete request unread.
  void start_draining();

  // routing::ReplyHandler
  void on_reply(uint32_t cookie, std::string_view reply, bool error) final;
  void on_failure(uint32_t cookie, routing::Failure failure) final;
  void charge(int64_t bytes) final;

  // routing::PartRouter: the parts of a split request through routes (see part_target()).
  void send_part(uint32_t target, std::string_view key, const std::string_view* pieces,
                 size_t count, protocol::ReplyShape shape, routing::ReplyHandler& handler,
                 uint32_t cookie, uint32_t affinity) final;

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
    // The user the request ran as (a later login does not change whose keys its reply names).
    const config::UserConfig* user = nullptr;
    // The route rule whose key rewrite the reply's keys must be undone from (KEYS and SCAN:
    // keyed requests have theirs undone in the route layer).
    const routing::RouteRule* rule = nullptr;
    std::string bytes;  // the reply, when it arrived before the slots in front of it
    std::chrono::steady_clock::time_point started;  // when the request was read
    // Waits as long as the client asked (a blocking command): its time is not latency.
    bool untimed = false;
    // With a slow-request log: what the request was, for its log line.
    uint8_t label_length = 0;
    char label[64];
  };
  // Cookies with this bit carry no slot: the reply is discarded (a memcached noreply).
  static constexpr uint32_t kNoSlot = 0x80000000u;

  // Parses and dispatches the requests in in_, consuming what it handled. Called after every
  // read and when reading resumes. Must stop when can_take_more() turns false (pause_reading()).
  virtual void process_input() = 0;
  // The error reply, in the client's protocol, for a request whose server failed.
  virtual std::string failure_reply(routing::Failure failure) = 0;
  // Seen before a slot's reply is queued for the client (statistics); returns the reply to
  // queue: `reply`, or a rewrite of it held by the session until the next call (keys without
  // the user's namespace).
  virtual std::string_view on_slot_reply(const Slot& slot, std::string_view reply, bool error) {
    return reply;
  }
  // A reply nobody waits for (kNoSlot) came back.
  virtual void on_discarded_reply(bool error) {}
  // The connection is closing (the client left, or is being disconnected): state held on
  // servers for it goes now.
  virtual void on_close() {}
  // State on a server tied to this client (a transaction): it stays on its configuration until
  // that is done.
  virtual bool holds_server_state() const { return false; }
  // State on servers placed by the configuration (subscriptions on the servers their channels
  // hash to): a reload closes the connection, once idle, so that the client makes it again under
  // the new one (its servers, its user, its listener).
  virtual bool leaves_on_reload() const { return false; }
  // The backend server behind `pool`'s server `index`, in this session's generation.
  std::shared_ptr<backends::Server> backend_server(const routing::Pool& pool, uint32_t index) const;
  // For the slow-request log: the request being handled, as its command and first key (never a
  // value, never a password), written into `out`; returns the length.
  virtual size_t describe_request(char* out, size_t size) const { return 0; }

  // Sends a request to server `server` of `pool`; its reply fills a new slot (or is discarded
  // when `discard`).
  void forward(routing::Pool& pool, uint32_t server, const std::string_view* pieces, size_t count,
               protocol::ReplyShape shape, bool discard = false, uint8_t kind = 0,
               uint32_t keys = 0);

  // Where a request goes: on a listener that names a pool, that pool; on one that names a route,
  // the pool of the rule the request matches when it is a plain `pool:` rule, else the rule
  // itself (replicate, failover, warm-up, shadow), with `pool` its first pool.
  struct Target {
    routing::Pool* pool = nullptr;
    routing::RouteRule* rule = nullptr;
  };
  Target route_of(std::string_view key, config::RouteOp op) {
    if (listener_.routes == nullptr) {
      pool_->count(op);
      return {pool_, nullptr};
    }
    return select_route(key, op);
  }
  bool routed() const { return listener_.routes != nullptr; }
  // Sends a one-key request (`key` as servers store it) to its target; its reply fills a new
  // slot (or is discarded). False when the target's pool has no live server for the key
  // (nothing was sent; the caller answers).
  bool send_to(const Target& target, std::string_view key, const std::string_view* pieces,
               size_t count, protocol::ReplyShape shape, config::RouteOp op, bool discard = false,
               uint8_t kind = 0, uint32_t keys = 0);
  // Split requests on a routed listener: the target of one key, as an id for the splitter to
  // group keys by (keys for the same server of a plain pool share one; keys taken through any
  // other rule get one each), or Distribution::kNoServer when its pool has no live server.
  // clear_part_targets() before each request.
  uint32_t part_target(std::string_view key, config::RouteOp op);
  void clear_part_targets() { part_targets_.clear(); }
  // The target a part target was made from.
  Target part_route(uint32_t target) const {
    return {part_targets_[target].pool, part_targets_[target].rule};
  }
  // The one pool server a part target names, or null for a rule's target.
  routing::Pool* part_pool(uint32_t target, uint32_t& server) const {
    const PartTarget& t = part_targets_[target];
    server = t.server;
    return t.rule == nullptr ? t.pool : nullptr;
  }
  // The pools a flush reaches: on a routed listener every pool of the rule an empty key takes
  // (each replica of a replicated route; its shadow pool is not flushed), else the listener's.
  const std::vector<routing::Pool*>& flush_pools();
  // How this protocol's replies read, for route rules.
  virtual const routing::ReplyJudge& judge() const = 0;
  // A slot for a reply that a handler other than forward() will deliver under the cookie.
  uint32_t open_slot(uint8_t kind = 0, uint32_t keys = 0, const routing::RouteRule* rule = nullptr);
  // The slot's time is the client's choice (a blocking command): it stays out of the latency
  // histograms and the slow-request log.
  void untime_slot(uint32_t cookie) { slot(full_seq(cookie)).untimed = true; }
  // Counts a request handed to a fan-out with open_slot()'s cookie.
  void count_in_flight() { ++in_flight_; }
  // Answers locally, in order behind any replies still outstanding.
  void reply_local(std::string_view bytes);

  // Logins. A listener with `auth: required` starts unauthenticated (and closes the connection
  // after auth_timeout unless a login succeeds); a verified client certificate that names a
  // user logs in during the TLS handshake.
  enum class LoginOutcome : uint8_t { kOk, kRefused, kBlocked };
  // Checks a password login off the event loop. Its answer, `reply(outcome)`, takes the next
  // reply slot, and no further request is read until it is known. On kOk, user_ is set first.
  void start_login(std::string_view name, std::string password,
                   std::function<std::string(LoginOutcome)> reply);
  bool authenticated() const { return authenticated_; }
  // Back to not logged in, with auth_timeout to log in again.
  void log_out();
  // The logged-in user's permissions (anonymous clients of an `auth: none` listener may do
  // anything): an operation class, and each key against the user's allowed patterns.
  bool may(config::OpClass op) const;
  bool key_allowed(std::string_view key) const;
  // The logged-in user's key namespace: a prefix on every key it names; empty for none.
  std::string_view key_namespace() const {
    return user_ != nullptr ? std::string_view(user_->key_namespace) : std::string_view();
  }
  // Whether the deployment has users at all (without, AUTH behaves as on a password-less server).
  bool has_users() const;

  bool can_take_more() const;
  void pause_reading();
  // A Redis client blocked in a command: no further request is dispatched until hold_input(false)
  // (Redis would not run them before either), but the socket is still read, up to
  // kHeldInputMax buffered bytes, so that a client that leaves is noticed at once: it is then
  // closed, with what it holds on servers (on_close()).
  void hold_input(bool hold) { input_held_ = hold; }
  static constexpr size_t kHeldInputMax = 64 * 1024;
  // A request that goes on a server connection of the client's own (a blocking command, the
  // first of a transaction) must not overtake earlier ones still at servers on shared
  // connections: the protocol session leaves it unconsumed and calls this; no request is
  // dispatched until every one in flight is answered, and then it is dispatched again.
  // Whether the client has finished sending (EOF).
  bool peer_eof() const { return peer_eof_; }
  // Blocked in a command (see hold_input()).
  bool blocked() const { return input_held_; }
  bool must_wait_for_answers() {
    awaiting_answers_ = in_flight_ != 0;
    return awaiting_answers_;
  }
  // The client is done (quit, lost framing): close once every reply is out.
  void close_when_done() {
    closing_ = true;
    finish_if_done();
  }
  // To be called by process_input() when it stops.
  void input_done();

  using Clock = std::chrono::steady_clock;
  Worker& worker_;
  // The configuration this session routes with; replaced only between requests.
  routing::Ref<Generation> generation_;
  routing::Pool* pool_;
  WorkerCounters& counters_;
  ListenerContext listener_;
  ListenerCounters* listener_counters_;
  std::chrono::nanoseconds slow_threshold_;  // 0: no slow-request log
  // After a TLS handshake with a verified client certificate: its subject CN and SANs.
  std::vector<std::string> peer_identities_;
  // The user logged in as, if any; null for anonymous clients of an `auth: none` listener.
  const config::UserConfig* user_ = nullptr;
  bool authenticated_ = true;
  protocol::Buffer in_;
  uint64_t needed_ = 0;   // size of the partial request at the front of in_, when known
  bool closing_ = false;  // close once everything queued is written

 private:
  Target select_route(std::string_view key, config::RouteOp op);
  struct PartTarget {
    routing::Pool* pool = nullptr;
    routing::RouteRule* rule = nullptr;
    uint32_t server = 0;
    config::RouteOp op = config::RouteOp::kRead;
  };
  std::vector<PartTarget> part_targets_;
  std::vector<routing::Pool*> flush_pools_;

  // How bytes move: plain TCP, TLS, or not decided yet (a listener in optional TLS mode looks at
  // the first byte; a TLS handshake must finish before any request is read).
  enum class Transport : uint8_t { kPlain, kDetect, kHandshake, kTls };
  // Moves a connection that is not yet kPlain/kTls along; false while it must wait for the
  // socket (or was closed).
  bool advance_transport();
  void start_tls();
  // recv/send through the transport: > 0 bytes moved, 0 end of input, < 0 with errno (EAGAIN:
  // wait for the socket).
  ssize_t receive(char* data, size_t size);
  ssize_t transmit(const char* data, size_t size);

  // Reads and handles requests; stops at a short read unless `until_eagain`.
  void on_readable(bool until_eagain);
  // in_ and out_ hold storage only while they hold bytes: taken from the worker's spares when
  // empty and without storage, given back (or freed) once empty.
  void acquire_buffer(protocol::Buffer& buffer);
  void release_buffer(protocol::Buffer& buffer);
  void maybe_resume();
  // With the client done sending (EOF, quit, lost framing): close once every reply is out.
  void finish_if_done();
  void complete(uint32_t seq, std::string_view bytes);
  // A slot's reply is queued for the client: its latency, and the slow-request log.
  void slot_done(const Slot& s, Clock::time_point now);
  // Disconnects a client that makes cachegate hold more than client_output_hard_max.
  void enforce_output_limit();
  void start_linger();
  Slot& slot(uint32_t seq) { return slots_[seq & slot_mask_]; }
  uint32_t full_seq(uint32_t cookie) const;
  void grow_slots();

  int fd_;
  const uint32_t id_;
  Transport transport_ = Transport::kPlain;
  std::unique_ptr<TlsStream> tls_;
  std::unique_ptr<boost::asio::steady_timer> handshake_timer_;
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
  bool login_pending_ = false;
  const std::string& peer_address();
  std::string peer_address_;  // for counting failed logins per address
  std::unique_ptr<boost::asio::steady_timer> auth_timer_;
  bool paused_ = false;
  bool input_held_ = false;
  bool awaiting_answers_ = false;  // see must_wait_for_answers()
  // Held or waiting for answers: the socket is still read (bounded) to see the client leave.
  bool watching_input() const {
    return (input_held_ || awaiting_answers_) && !closing_ && in_.size() < kHeldInputMax;
  }
  bool peer_eof_ = false;
  bool closed_ = false;
  bool draining_ = false;
  // Closes a draining session that has reached a request boundary with everything written.
  void close_if_drained();
};

}  // namespace cachegate::proxy
