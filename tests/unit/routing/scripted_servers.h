#pragma once

// Servers scripted in memory for the fan-out tests: each records the bytes it is sent and answers
// when the test says so, either inside send() (as a server that is backing off fails fast) or
// later; and a client session that records the outcomes and what is charged to it.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "routing/destination.h"

namespace cachegate::routing::scripted {

using protocol::ReplyShape;

struct Answer {
  bool failed = false;
  Failure failure = Failure::kClosed;
  std::string reply;
  bool error = false;

  static Answer reply_of(std::string reply, bool error = false) {
    return {false, Failure::kClosed, std::move(reply), error};
  }
  static Answer failure_of(Failure failure) { return {true, failure, {}, false}; }
};

class ScriptedServer final : public Destination {
 public:
  struct Sent {
    std::string bytes;
    ReplyShape shape;
    uint32_t cookie;
    uint32_t affinity;
    ReplyHandler* handler;
  };
  // Decides inside send() how a request is answered; std::nullopt leaves it waiting for answer().
  using Script = std::function<std::optional<Answer>(std::string_view request)>;

  explicit ScriptedServer(std::string name) : name_(std::move(name)) {}

  void send(const std::string_view* pieces, size_t count, ReplyShape shape, ReplyHandler& handler,
            uint32_t cookie, uint32_t affinity,
            std::chrono::milliseconds = std::chrono::milliseconds(0)) override {
    std::string bytes;
    for (size_t i = 0; i < count; ++i)
      bytes.append(pieces[i]);
    sent_.push_back({bytes, shape, cookie, affinity, &handler});
    // As a real server does, hold the handler for as long as the request is in flight.
    Ref<ReplyHandler> held(&handler);
    if (script) {
      if (std::optional<Answer> answer = script(bytes)) {
        deliver(handler, cookie, *answer);
        return;
      }
    }
    waiting_.push_back({std::move(held), cookie, std::move(bytes)});
  }
  std::string_view name() const override { return name_; }

  // Answers the oldest waiting request.
  void answer(const Answer& answer) {
    REQUIRE(!waiting_.empty());
    Waiting w = std::move(waiting_.front());
    waiting_.pop_front();
    deliver(*w.handler, w.cookie, answer);
  }
  void answer_with(const std::function<Answer(std::string_view)>& respond) {
    REQUIRE(!waiting_.empty());
    answer(respond(waiting_.front().bytes));
  }

  size_t waiting() const { return waiting_.size(); }
  const std::vector<Sent>& sent() const { return sent_; }
  void forget_sent() { sent_.clear(); }

  Script script;

 private:
  struct Waiting {
    Ref<ReplyHandler> handler;
    uint32_t cookie;
    std::string bytes;
  };

  static void deliver(ReplyHandler& handler, uint32_t cookie, const Answer& answer) {
    if (answer.failed) {
      handler.on_failure(cookie, answer.failure);
    } else {
      handler.on_reply(cookie, answer.reply, answer.error);
    }
  }

  std::string name_;
  std::vector<Sent> sent_;
  std::deque<Waiting> waiting_;
};

// The client session: records outcomes and what is charged to it. Held by a Ref in each test so
// its count can be watched.
class Client final : public ReplyHandler {
 public:
  struct Outcome {
    uint32_t cookie;
    bool failed;
    Failure failure;
    std::string reply;
    bool error;
    int64_t charged_at_outcome;
  };
  void on_reply(uint32_t cookie, std::string_view reply, bool error) override {
    outcomes.push_back({cookie, false, Failure::kClosed, std::string(reply), error, charged});
    if (then) std::exchange(then, nullptr)();
  }
  void on_failure(uint32_t cookie, Failure failure) override {
    outcomes.push_back({cookie, true, failure, {}, false, charged});
    if (then) std::exchange(then, nullptr)();
  }
  void charge(int64_t bytes) override {
    charged += bytes;
    most_charged = std::max(most_charged, charged);
    ++charges;
  }
  std::vector<Outcome> outcomes;
  int64_t charged = 0;
  int64_t most_charged = 0;
  int charges = 0;
  // Run once, after the next outcome is recorded: a session that goes on to its next pipelined
  // request from inside the callback.
  std::function<void()> then;
};

}  // namespace cachegate::routing::scripted
