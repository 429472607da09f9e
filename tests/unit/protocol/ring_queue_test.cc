// RingQueue: requests in flight and reply slots. Replies are matched to requests by position
// alone, so the queue must keep FIFO order through every wrap-around and every growth.

#include "protocol/ring_queue.h"

#include <deque>
#include <memory>
#include <random>
#include <string>

#include <catch2/catch.hpp>

namespace cachegate::protocol {
namespace {

TEST_CASE("a ring queue is first in, first out", "[ring_queue]") {
  RingQueue<int> q;
  CHECK(q.empty());
  CHECK(q.size() == 0);
  for (int i = 0; i < 5; ++i)
    q.push_back(i);
  CHECK_FALSE(q.empty());
  CHECK(q.size() == 5);
  CHECK(q.front() == 0);
  CHECK(q.back() == 4);
  CHECK(q[2] == 2);
  for (int i = 0; i < 5; ++i)
    CHECK(q.pop_front() == i);
  CHECK(q.empty());
}

TEST_CASE("front, back and [] give references", "[ring_queue]") {
  RingQueue<int> q;
  q.push_back(1);
  q.push_back(2);
  q.push_back(3);
  q.front() = 10;
  q.back() = 30;
  q[1] = 20;
  CHECK(q.pop_front() == 10);
  CHECK(q.pop_front() == 20);
  CHECK(q.pop_front() == 30);
}

TEST_CASE("growth keeps order across wrap-around", "[ring_queue]") {
  RingQueue<int> q;
  int pushed = 0;
  int popped = 0;
  // Fill the first ring, move the head well into it, then wrap the tail around.
  for (; pushed < 16; ++pushed)
    q.push_back(pushed);
  for (int i = 0; i < 11; ++i)
    REQUIRE(q.pop_front() == popped++);
  for (int i = 0; i < 11; ++i)
    q.push_back(pushed++);
  REQUIRE(q.size() == 16);  // full, head and tail wrapped
  for (size_t i = 0; i < q.size(); ++i)
    REQUIRE(q[i] == popped + static_cast<int>(i));
  // One more forces growth while wrapped.
  q.push_back(pushed++);
  REQUIRE(q.size() == 17);
  REQUIRE(q.front() == popped);
  REQUIRE(q.back() == pushed - 1);
  for (size_t i = 0; i < q.size(); ++i)
    REQUIRE(q[i] == popped + static_cast<int>(i));
  // Several more growths.
  for (int i = 0; i < 500; ++i)
    q.push_back(pushed++);
  while (!q.empty())
    REQUIRE(q.pop_front() == popped++);
  CHECK(popped == pushed);
}

TEST_CASE("move-only elements, random pushes and pops against a deque", "[ring_queue]") {
  std::mt19937 rng(7);
  RingQueue<std::unique_ptr<std::string>> q;
  std::deque<std::string> model;
  int next = 0;
  for (int step = 0; step < 50000; ++step) {
    // Phases that grow and shrink the depth, so the ring wraps at many sizes.
    const bool grow_phase = (step / 2000) % 2 == 0;
    const bool push = model.empty() || rng() % 100 < (grow_phase ? 60u : 40u);
    if (push) {
      const std::string value = "v" + std::to_string(next++);
      q.push_back(std::make_unique<std::string>(value));
      model.push_back(value);
    } else {
      auto value = q.pop_front();
      REQUIRE(value != nullptr);
      REQUIRE(*value == model.front());
      model.pop_front();
    }
    REQUIRE(q.size() == model.size());
    if (!model.empty()) {
      REQUIRE(*q.front() == model.front());
      REQUIRE(*q.back() == model.back());
      const size_t i = rng() % model.size();
      REQUIRE(*q[i] == model[i]);
    }
  }
}

}  // namespace
}  // namespace cachegate::protocol
