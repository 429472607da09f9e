#include "backends/loop.h"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace cachegate::backends {

namespace {
int create_epoll() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  return fd;
}
}  // namespace

Loop::Loop(boost::asio::io_context& io) : io_(io), epoll_(io, create_epoll()) {
  ready_.reserve(kEventsPerPass);
  arm();
}

Loop::~Loop() {
  discard_pending();
}

bool Loop::watch(int fd, Pollable& target) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &target;
  return ::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Loop::unwatch(int fd, Pollable& target) {
  epoll_event ev{};
  ::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_DEL, fd, &ev);
  // Events of this pass not yet handled must not reach a target that has let its socket go.
  for (int i = 0; i < pass_events_; ++i)
    if (events_[i].data.ptr == &target) events_[i].data.ptr = nullptr;
}

void Loop::arm() {
  epoll_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                    [this](const boost::system::error_code& ec) {
                      if (!ec) on_ready();
                    });
}

void Loop::on_ready() {
  const int n =
      ::epoll_wait(epoll_.native_handle(), events_.data(), static_cast<int>(events_.size()), 0);
  pass_events_ = n > 0 ? n : 0;
  in_pass_ = true;
  // Everything reported stays alive until the pass ends, whatever its handlers close.
  for (int i = 0; i < pass_events_; ++i) {
    auto* target = static_cast<Pollable*>(events_[i].data.ptr);
    target->retain();
    ready_.push_back(target);
  }
  for (int i = 0; i < pass_events_; ++i) {
    auto* target = static_cast<Pollable*>(events_[i].data.ptr);
    if (target != nullptr) target->on_poll(events_[i].events);
  }
  pass_events_ = 0;
  // Still inside the pass: flushes that schedule further flushes are handled by this loop
  // rather than by a posted task.
  run_flushes();
  in_pass_ = false;
  for (Pollable* target : ready_)
    target->unretain();
  ready_.clear();
  arm();
}

void Loop::defer_flush(Flushable& target) {
  if (target.flush_scheduled_) return;
  target.flush_scheduled_ = true;
  target.retain();
  pending_.push_back(&target);
  if (!in_pass_ && !posted_) {
    // Outside a readiness pass (a timer, a posted task): flush once the handlers already queued
    // have run.
    posted_ = true;
    boost::asio::post(io_, [this] {
      posted_ = false;
      run_flushes();
    });
  }
}

void Loop::run_flushes() {
  // A flush may schedule more (a client's reply write resumes its reading, which forwards
  // requests): keep going until nothing is pending.
  while (!pending_.empty()) {
    running_.swap(pending_);
    for (Flushable* target : running_) {
      target->flush_scheduled_ = false;
      target->flush_now();
      target->unretain();
    }
    running_.clear();
  }
}

void Loop::discard_pending() {
  std::vector<Flushable*> targets;
  targets.swap(pending_);
  for (Flushable* target : targets) {
    target->flush_scheduled_ = false;
    target->unretain();
  }
}

}  // namespace cachegate::backends
