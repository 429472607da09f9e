#pragma once

// One worker's event loop: the io_context its sockets and timers run on, plus deferred flushing.
//
// Writes are batched per readiness, not per message: whoever produces bytes for a socket (a
// request for a server, a reply for a client) appends them to that socket's buffer and asks for
// a deferred flush. The flush runs once, after every handler that was ready at that moment has
// run, so a burst of requests from many clients leaves in one write per server, and a burst of
// replies in one write per client.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <vector>

namespace cachegate::backends {

// Something with buffered output. `retain`/`unretain` keep it alive while a flush is pending.
class Flushable {
 public:
  virtual void flush_now() = 0;
  virtual void retain() = 0;
  virtual void unretain() = 0;

 protected:
  ~Flushable() = default;

 private:
  friend class Loop;
  bool flush_scheduled_ = false;
};

class Loop {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Loop(boost::asio::io_context& io) : io_(io) {}
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  boost::asio::io_context& io() { return io_; }

  // Calls target.flush_now() once, after the handlers that are ready now. Idempotent until then.
  void defer_flush(Flushable& target);

  // At teardown, with the loop stopped: forgets pending flushes and lets their targets go.
  void discard_pending();

 private:
  void run_flushes();

  boost::asio::io_context& io_;
  std::vector<Flushable*> pending_;
  std::vector<Flushable*> running_;
  bool posted_ = false;
};

}  // namespace cachegate::backends
