#pragma once

// One worker's event loop: the io_context its timers, accepts and posted work run on, plus the
// readiness of its data sockets and deferred flushing.
//
// Readiness: client and server sockets are registered once, edge-triggered, in an epoll set of
// the worker's own, which Asio watches as a single descriptor. Asio's async_wait re-arms its
// epoll registration on every wait (an epoll_ctl per read cycle); here a socket costs no system
// call beyond its own reads and writes, and a whole pass of ready sockets costs one re-arm.
// Edge-triggered means a socket's owner reads until the kernel has no more (a short read or
// EAGAIN) before it can expect another event.
//
// Writes are batched per pass, not per message: whoever produces bytes for a socket (a request
// for a server, a reply for a client) appends them to that socket's buffer and asks for a
// deferred flush; flushes run once, after every socket that was ready in the pass has been
// handled, so a burst of requests from many clients leaves in one write per server.

#include <sys/epoll.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <vector>

namespace cachegate::backends {

// Something kept alive by reference counting while the loop holds it.
class LoopClient {
 public:
  virtual void retain() = 0;
  virtual void unretain() = 0;

 protected:
  ~LoopClient() = default;
};

// Something with buffered output.
class Flushable : public virtual LoopClient {
 public:
  virtual void flush_now() = 0;

 protected:
  ~Flushable() = default;

 private:
  friend class Loop;
  bool flush_scheduled_ = false;
};

// Something with a socket registered for readiness.
class Pollable : public virtual LoopClient {
 public:
  // `events` is the epoll mask (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR). With edge
  // triggering every report can combine several of them; act on each that matters.
  virtual void on_poll(uint32_t events) = 0;

 protected:
  ~Pollable() = default;
};

class Loop {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Loop(boost::asio::io_context& io);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  boost::asio::io_context& io() { return io_; }

  // Registers `fd` (non-blocking) for input and output readiness until unwatch() or close().
  // Returns false (errno set) if the kernel refuses.
  bool watch(int fd, Pollable& target);
  // Deregisters `fd`; call before closing it, so no event of this pass reaches its owner.
  void unwatch(int fd, Pollable& target);

  // Calls target.flush_now() once, after the sockets ready in this pass (or the handler running
  // now) have been handled. Idempotent until then.
  void defer_flush(Flushable& target);

  // At teardown, with the loop stopped: forgets pending work and lets its targets go.
  void discard_pending();

 private:
  void arm();
  void on_ready();
  void run_flushes();

  static constexpr size_t kEventsPerPass = 256;

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor epoll_;
  std::array<epoll_event, kEventsPerPass> events_{};
  std::vector<Pollable*> ready_;  // this pass's targets, retained while they are handled
  int pass_events_ = 0;           // events of the pass being handled
  bool in_pass_ = false;
  std::vector<Flushable*> pending_;
  std::vector<Flushable*> running_;
  bool posted_ = false;
};

}  // namespace cachegate::backends
