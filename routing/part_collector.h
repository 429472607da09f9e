#pragma once

// The common half of every request that is split into parts for several servers and answers its
// client once: it keeps each part's reply (charged to the client while held, so one client
// cannot make cachegate hold unbounded bytes), counts the parts still out, and when the last one
// is in delivers exactly one outcome — the first failure, else the first error reply, else the
// merge the derived class makes of the replies.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "routing/destination.h"

namespace cachegate::routing {

class PartCollector : public ReplyHandler {
 public:
  void on_failure(uint32_t part, Failure failure) final {
    if (!failed_) {
      failed_ = true;
      failure_ = failure;
    }
    part_done();
  }

 protected:
  // Starts collecting `parts` replies for `client`'s request `cookie`.
  void begin(ReplyHandler& client, uint32_t cookie, size_t parts) {
    client_ = Ref<ReplyHandler>(&client);
    cookie_ = cookie;
    if (part_replies_.size() < parts) part_replies_.resize(parts);
    for (size_t p = 0; p < parts; ++p)
      part_replies_[p].clear();
    outstanding_ = parts;
    charged_ = 0;
    failed_ = false;
    error_reply_.clear();
  }
  // Keeps part `part`'s reply until the last part is in.
  void keep_reply(uint32_t part, std::string_view reply) {
    part_replies_[part].assign(reply);
    charged_ += static_cast<int64_t>(reply.size());
    if (client_) client_->charge(static_cast<int64_t>(reply.size()));
  }
  // An error reply from some part; the first one is the client's answer.
  void keep_error(std::string_view reply) {
    if (error_reply_.empty()) error_reply_.assign(reply);
  }

  // Called once per reply or failure; after the last, the outcome goes to the client.
  void part_done() {
    if (--outstanding_ != 0) return;
    Ref<ReplyHandler> client = std::move(client_);
    if (charged_ != 0) {
      client->charge(-charged_);
      charged_ = 0;
    }
    if (failed_) {
      client->on_failure(cookie_, failure_);
    } else if (!error_reply_.empty()) {
      client->on_reply(cookie_, error_reply_, true);
    } else {
      deliver_merged(*client, cookie_);
    }
  }

  // Every part answered without failure or error: merge part_replies_ and answer `client`.
  virtual void deliver_merged(ReplyHandler& client, uint32_t cookie) = 0;

  // For recycling: false when the part buffers grew past `keep` bytes.
  bool parts_smaller_than(size_t keep) const {
    for (const auto& part : part_replies_)
      if (part.capacity() >= keep) return false;
    return true;
  }
  void release_client() { client_.reset(); }

  std::vector<std::string> part_replies_;

 private:
  Ref<ReplyHandler> client_;
  uint32_t cookie_ = 0;
  size_t outstanding_ = 0;
  int64_t charged_ = 0;
  bool failed_ = false;
  Failure failure_ = Failure::kClosed;
  std::string error_reply_;
};

}  // namespace cachegate::routing
