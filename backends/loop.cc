#include "backends/loop.h"

#include <boost/asio/post.hpp>

namespace cachegate::backends {

void Loop::defer_flush(Flushable& target) {
  if (target.flush_scheduled_) return;
  target.flush_scheduled_ = true;
  target.retain();
  pending_.push_back(&target);
  if (!posted_) {
    posted_ = true;
    // A posted handler runs after the completions already queued by the same reactor pass.
    boost::asio::post(io_, [this] { run_flushes(); });
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

void Loop::run_flushes() {
  posted_ = false;
  running_.swap(pending_);
  for (Flushable* target : running_) {
    target->flush_scheduled_ = false;
    target->flush_now();
    target->unretain();
  }
  running_.clear();
}

}  // namespace cachegate::backends
