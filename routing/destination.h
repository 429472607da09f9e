#pragma once

// The seam between routing and backends: routing decides where a request goes and how replies
// combine; a Destination (implemented in backends/) carries it to one server and brings back
// exactly one reply or one failure. Nothing here knows about sockets.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/reply_shape.h"
#include "routing/ref_counted.h"

namespace cachegate::routing {

// Why a request got no reply from its server.
enum class Failure : uint8_t {
  kTimeout,      // no reply within the request's timeout; the connection was reset
  kConnect,      // could not connect (refused, unreachable, connect timeout)
  kClosed,       // the connection broke (or was reset) with the request in flight
  kUnavailable,  // the server is backing off after failures; not tried
  kNoServer,     // every server of the pool is ejected
  kProtocol,     // the server sent something that is not a valid reply
};

inline constexpr size_t kFailureKinds = 6;  // the values of Failure, from 0

// Human-readable reason, used in SERVER_ERROR / -ERR texts.
std::string_view failure_text(Failure failure);
// A short name for metrics: timeout, connect, closed, unavailable, no_server, protocol.
std::string_view failure_name(Failure failure);

// Receives the outcome of requests. Reference-counted: a Destination holds a reference for
// every request in flight, so the handler outlives its requests. Cancelling (a client that
// disconnects) means the handler ignores what still arrives; no callback is ever skipped.
class ReplyHandler : public RefCounted {
 public:
  // The complete reply frame for the request sent with `cookie`; `reply` is valid only during
  // the call. `error` is set for ERROR / CLIENT_ERROR / SERVER_ERROR replies.
  virtual void on_reply(uint32_t cookie, std::string_view reply, bool error) = 0;
  virtual void on_failure(uint32_t cookie, Failure failure) = 0;
  // Bytes a multi-part request holds for this handler until its outcome is delivered (positive
  // when taken, negative when given back), so that the handler can bound what one client makes
  // cachegate hold. May close the handler's client; the outcome is still delivered after.
  virtual void charge(int64_t bytes) {}
};

// One server of a pool, as seen from one worker thread.
class Destination {
 public:
  virtual ~Destination() = default;

  // Queues a request whose bytes are the concatenation of pieces[0..count) and expects one reply
  // of `shape`. Exactly one of handler.on_reply/on_failure follows, possibly before send()
  // returns (a server that is backing off fails fast). Requests with the same `affinity` use the
  // same connection, so their order is kept. The bytes are copied; the pieces need not outlive
  // the call. `timeout` bounds the wait for this request's reply (a route rule's `timeout:`); 0
  // means the pool's `timeout`. A request that outlives it fails with Failure::kTimeout, and the
  // connection it was on is reset, failing the other requests in flight there with
  // Failure::kClosed. Thread: the owning worker only.
  virtual void send(const std::string_view* pieces, size_t count, protocol::ReplyShape shape,
                    ReplyHandler& handler, uint32_t cookie, uint32_t affinity,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) = 0;

  // False while the server fails fast after repeated failures (a request sent now would fail at
  // once). Requests with several parts check every part's server first, so a server known to be
  // down does not leave a write half done on the others.
  virtual bool available() const { return true; }

  // The server's configured spec ("host:port:weight [name]"), for messages and stats.
  virtual std::string_view name() const = 0;
};

// Where the parts of a split request go (routing/fanout.h, routing/resp_fanout.h). A target is
// what the splitter groups keys by: a server of a pool, or, for requests taken through route
// rules, whatever the router makes of it. `key` is the part's first key.
class PartRouter {
 public:
  virtual void send_part(uint32_t target, std::string_view key, const std::string_view* pieces,
                         size_t count, protocol::ReplyShape shape, ReplyHandler& handler,
                         uint32_t cookie, uint32_t affinity) = 0;

 protected:
  ~PartRouter() = default;
};

// Told by destinations when a server should leave or rejoin its pool's key distribution
// (twemproxy's auto_eject_hosts).
class HealthObserver {
 public:
  virtual ~HealthObserver() = default;
  virtual void on_server_ejected(uint32_t server_index) = 0;
};

}  // namespace cachegate::routing
