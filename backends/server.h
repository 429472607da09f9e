#pragma once

// One backend server as one worker sees it: `server_connections` persistent connections, each
// pipelining many requests (FIFO: replies come back in request order), plus the server's health.
//
// Timeouts: a request gets the pool's `timeout` unless its sender gives one of its own (a route
// rule's). When a request in flight outlives its deadline, it fails with kTimeout and its
// connection is reset: the late reply may still come, and the stream could no longer be matched
// to requests. Each connection has one timer, due no later than the earliest deadline that
// matters; see ServerConnection::on_timer().
//
// Health, per worker: a connection that fails (refused, timed out, closed with requests in
// flight, invalid reply) counts one failure. After a failure the server is retried at once; after
// two or more in a row, requests fail fast for a backoff that doubles from 10 ms up to 1 s, so a
// dead server costs its clients an immediate error instead of a connect attempt each. Any reply
// resets the count. With auto_eject_hosts, server_failure_limit failures in a row also take the
// server out of its pool's distribution for server_retry_timeout (routing::Pool).

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/latency_histogram.h"
#include "backends/loop.h"
#include "backends/tls_stream.h"
#include "config/config.h"
#include "protocol/buffer.h"
#include "protocol/memcache_reply.h"
#include "protocol/resp.h"
#include "protocol/ring_queue.h"
#include "routing/destination.h"

namespace cachegate::backends {

class Server;

// Counters for one server on one worker. Written only by the owning worker; read by others
// (stats) with relaxed loads, hence atomics without read-modify-write on the hot path.
struct ServerCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> replies{0};
  std::atomic<uint64_t> failures{0};  // requests that got no reply
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> connects{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> ejections{0};
  // Requests that got no reply, by routing::Failure (timeout, connect, closed, unavailable,
  // no_server, protocol); they add up to `failures`.
  std::atomic<uint64_t> failures_by_kind[routing::kFailureKinds] = {};
  std::atomic<uint64_t> error_replies{0};  // replies that are errors (SERVER_ERROR, -ERR …)
  // The server's failures in a row as its worker last saw them (2 or more: failing fast).
  std::atomic<uint64_t> consecutive_failures{0};
  // Connections for one client alone (Redis transactions, blocking commands, WAIT, subscribers):
  // open now, and refused for the bound.
  std::atomic<uint64_t> dedicated_open{0};
  std::atomic<uint64_t> dedicated_refused{0};
  // From a request's send to its reply, as this worker saw it.
  LatencyHistogram latency;

  static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void drop(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void count_failure(routing::Failure failure) {
    bump(failures);
    bump(failures_by_kind[static_cast<size_t>(failure)]);
  }
};

class ServerConnection final : public routing::RefCounted, public Flushable, public Pollable {
 public:
  using Clock = std::chrono::steady_clock;

  // `resp3`: a Redis connection that says HELLO 3 when it opens, for RESP3 clients.
  // `dedicated`: for one client alone (Server::acquire_dedicated), whose requests may wait as long
  // as the client asked: they stay out of the server's latency histogram.
  ServerConnection(Loop& loop, Server& server, bool resp3 = false, bool dedicated = false);
  ~ServerConnection() override;

  // `timeout` 0 (or less): the pool's.
  void send(const std::string_view* pieces, size_t count, protocol::ReplyShape shape,
            routing::ReplyHandler& handler, uint32_t cookie, std::chrono::milliseconds timeout);
  // Opens the connection now if it is not open (preconnect).
  void connect();
  // Pub/sub: every reply no request waits for (a channel's messages, subscription confirmations)
  // goes to `handler` under `cookie`, and its failure once, with the connection's. Until
  // abandon().
  void deliver_pushes_to(routing::ReplyHandler& handler, uint32_t cookie);
  // Queues a request whose replies go to the push handler (SUBSCRIBE, UNSUBSCRIBE, …); connects
  // first when needed.
  void send_unanswered(std::string_view request);
  // Its client left (mid-block, mid-transaction, subscribed): closes it without counting against
  // the server, failing what is in flight with kClosed; the push handler hears nothing more.
  void abandon();
  // Fails everything in flight with `failure` and closes; the next send reconnects.
  void reset(routing::Failure failure);
  bool connected() const { return state_ == State::kConnected; }
  // Connecting or connected: requests sent now will be answered unless it fails.
  bool open() const { return state_ != State::kIdle; }
  // Bumped each time the connection is reset: state the server held for it is gone.
  uint64_t resets() const { return generation_; }
  size_t in_flight() const { return pending_.size(); }

  // Flushable, Pollable
  void flush_now() override;
  void on_poll(uint32_t events) override;
  void retain() override { add_ref(); }
  void unretain() override { release(); }

 private:
  enum class State : uint8_t { kIdle, kConnecting, kConnected };
  struct Pending {
    routing::ReplyHandler* handler = nullptr;  // holds a reference
    uint32_t cookie = 0;
    protocol::ReplyShape shape = protocol::ReplyShape::kMcLine;
    Clock::time_point deadline{};
    Clock::time_point sent{};
    // Given a timeout other than the pool's: its deadline may be out of queue order.
    bool own_timeout = false;
  };

  void on_connected(int error);
  // Redis: AUTH, SELECT and HELLO 3 as the pool asks, queued ahead of every request.
  void queue_handshake();
  // Frames the reply at the front of in_, of `shape` (the request in front's, or a push).
  protocol::memcache::ParseStatus frame_front(protocol::ReplyShape shape, size_t& length,
                                              size_t& payload, bool& error);
  // Reads and dispatches replies; stops at a short read unless `until_eagain`.
  void on_readable(bool until_eagain);
  // After the TCP connect: the TLS handshake when the pool has tls:, then on_connected().
  void finish_connect();
  // recv/send through TLS when the pool has it: > 0 bytes, 0 end, < 0 with errno.
  ssize_t receive(char* data, size_t size);
  ssize_t transmit(const char* data, size_t size);
  // The queue position of the request the timer watches (pending_ not empty): the front one
  // while every request has the pool's timeout (they join in deadline order); while requests
  // with timeouts of their own are in flight, the one with the earliest deadline, by a scan.
  size_t earliest_pending();
  // What the timer must wake up for: the earliest of the connect deadline while connecting and
  // the earliest_pending() request's deadline.
  Clock::time_point next_deadline();
  void arm_timer() { arm_timer_at(next_deadline()); }
  void arm_timer_at(Clock::time_point when);
  void on_timer();
  void close_socket();
  // reset(), with the request at queue position `late` as the one that failed with `failure`.
  // `counts_against_server`: whether a connection with requests in flight counts as a failure of
  // the server.
  void reset(routing::Failure failure, size_t late, bool counts_against_server = true);
  // The request at queue position `late` fails with `failure`, every other one with `rest`.
  void fail_pending(routing::Failure failure, routing::Failure rest, size_t late);

  Loop& loop_;
  Server& server_;
  int fd_ = -1;
  boost::asio::steady_timer timer_;
  State state_ = State::kIdle;
  bool write_waiting_ = false;
  bool timer_armed_ = false;
  Clock::time_point timer_due_{};
  // Requests in pending_ with own_timeout. While there are any, the timer is due no later than
  // every deadline in pending_, not only the front one's.
  size_t own_timeouts_ = 0;
  uint64_t timer_generation_ = 0;
  Clock::time_point connect_deadline_{};
  uint64_t generation_ = 0;  // bumped by reset(), so a handler that reset us is noticed
  protocol::Buffer out_;
  protocol::Buffer in_;
  protocol::RingQueue<Pending> pending_;
  protocol::memcache::ReplyFramer framer_;
  protocol::resp::ReplyFramer resp_framer_;
  const bool resp3_;
  const bool dedicated_;
  bool abandoning_ = false;         // abandon(): failures are the client's, not the server's
  std::unique_ptr<TlsStream> tls_;  // while connecting (handshake) and connected, with tls:

  // Receives the handshake's replies; a refusal (wrong password, no such database) fails the
  // connection like a refused connect.
  class Handshake final : public routing::ReplyHandler {
   public:
    explicit Handshake(ServerConnection& connection) : connection_(connection) { add_ref(); }
    void on_reply(uint32_t step, std::string_view reply, bool error) override;
    void on_failure(uint32_t, routing::Failure) override {}

   private:
    void destroy() override {}  // a member of its connection
    ServerConnection& connection_;
  };
  Handshake handshake_{*this};
  routing::ReplyHandler* push_handler_ = nullptr;  // holds a reference
  uint32_t push_cookie_ = 0;
};

class Server final : public routing::Destination {
 public:
  using Clock = std::chrono::steady_clock;

  Server(Loop& loop, const config::PoolConfig& pool, const config::ServerConfig& server,
         boost::asio::ip::tcp::endpoint endpoint, uint32_t index, routing::HealthObserver* observer,
         uint64_t reply_size_max, ssl_ctx_st* tls_context = nullptr);
  ~Server() override;

  void send(const std::string_view* pieces, size_t count, protocol::ReplyShape shape,
            routing::ReplyHandler& handler, uint32_t cookie, uint32_t affinity,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) override;
  std::string_view name() const override { return config_->spec; }
  bool available() const override { return !failing_fast(); }

  void preconnect();
  // A connection for one client alone, for as long as it holds server-side state (a Redis
  // transaction, WATCH, a blocking command, subscriptions): reused from those handed back clean,
  // else opened (it connects on its first send). Null when the pool's dedicated_connections are all
  // taken, or after shutdown.
  routing::Ref<ServerConnection> acquire_dedicated(bool resp3);
  // Gives one back. `clean`: the server holds no state for it any more (EXEC, DISCARD or UNWATCH
  // was sent last), so another client may have it; otherwise it is closed, which makes the
  // server drop that state.
  void release_dedicated(routing::Ref<ServerConnection> connection, bool resp3, bool clean);
  // At teardown: fails everything in flight and lets the connections go.
  void shutdown();
  void set_observer(routing::HealthObserver* observer) { observer_ = observer; }
  // A configuration reload that keeps this server (same pool options, same address) hands it to
  // the new pool: its configuration now lives there, and it may sit at another index.
  void rebind(const config::PoolConfig& pool, const config::ServerConfig& server, uint32_t index,
              routing::HealthObserver* observer) {
    pool_ = &pool;
    config_ = &server;
    index_ = index;
    observer_ = observer;
  }
  // Called by connections.
  void record_failure();
  void record_success() {
    if (consecutive_failures_ != 0) {
      consecutive_failures_ = 0;
      counters_.consecutive_failures.store(0, std::memory_order_relaxed);
    }
  }

  const config::PoolConfig& pool_config() const { return *pool_; }
  const config::ServerConfig& config() const { return *config_; }
  const boost::asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }
  ServerCounters& counters() { return counters_; }
  Loop& loop() { return loop_; }
  bool backing_off() const { return Clock::now() < backoff_until_; }
  // After two or more failures in a row, requests fail at once until the backoff ends.
  bool failing_fast() const { return consecutive_failures_ > 1 && backing_off(); }
  uint64_t reply_size_max() const { return reply_size_max_; }
  // The pool's TLS client context (owned by the worker), or null without tls:.
  ssl_ctx_st* tls_context() const { return tls_context_; }
  uint32_t consecutive_failures() const { return consecutive_failures_; }
  size_t connections_open() const;

 private:
  Loop& loop_;
  const config::PoolConfig* pool_;
  const config::ServerConfig* config_;
  boost::asio::ip::tcp::endpoint endpoint_;
  uint32_t index_;
  routing::HealthObserver* observer_;
  uint64_t reply_size_max_;
  ssl_ctx_st* tls_context_;
  std::vector<routing::Ref<ServerConnection>> connections_;
  std::vector<routing::Ref<ServerConnection>> resp3_connections_;  // made on first use
  // Dedicated connections handed back clean, by protocol version (RESP2, RESP3).
  std::vector<routing::Ref<ServerConnection>> idle_dedicated_[2];
  uint32_t dedicated_open_ = 0;  // held by clients or idle above
  uint32_t consecutive_failures_ = 0;
  Clock::time_point backoff_until_{};
  ServerCounters counters_;
};

}  // namespace cachegate::backends
