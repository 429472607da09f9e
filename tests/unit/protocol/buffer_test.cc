// Buffer: the bytes a connection has read and not yet handled. What matters is that no byte is
// lost, duplicated or reordered while the storage is compacted and grown under a reader that
// consumes frames of every size, and that an idle connection gives its memory back.

#include "protocol/buffer.h"

#include <cstring>
#include <random>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

namespace cachegate::protocol {
namespace {

TEST_CASE("a new buffer is empty and owns nothing", "[buffer]") {
  Buffer b;
  CHECK(b.empty());
  CHECK(b.size() == 0);
  CHECK(b.capacity() == 0);
  CHECK(b.writable() == 0);
  CHECK(b.view().empty());

  Buffer sized(100);
  CHECK(sized.empty());
  CHECK(sized.capacity() == 100);
  CHECK(sized.writable() == 100);
}

TEST_CASE("append and consume", "[buffer]") {
  Buffer b;
  b.append("hello ");
  b.append(std::string_view("world"));
  CHECK(b.view() == "hello world");
  CHECK(b.size() == 11);
  CHECK(b.capacity() >= 11);

  b.consume(6);
  CHECK(b.view() == "world");
  CHECK(std::string_view(b.data(), b.size()) == "world");

  b.append("!", 1);
  CHECK(b.view() == "world!");

  // Consuming everything puts the next read back at the front of the storage.
  const size_t capacity = b.capacity();
  b.consume(6);
  CHECK(b.empty());
  CHECK(b.writable() == capacity);

  b.append("again");
  b.clear();
  CHECK(b.empty());
  CHECK(b.writable() == capacity);
}

TEST_CASE("write_ptr and commit, as a socket read fills the buffer", "[buffer]") {
  Buffer b;
  b.ensure_writable(16);
  REQUIRE(b.writable() >= 16);
  std::memcpy(b.write_ptr(), "get a\r\n", 7);
  b.commit(7);
  CHECK(b.view() == "get a\r\n");
  b.ensure_writable(16);
  std::memcpy(b.write_ptr(), "get b\r\n", 7);
  b.commit(7);
  CHECK(b.view() == "get a\r\nget b\r\n");
}

TEST_CASE("compact moves the unread bytes to the front", "[buffer]") {
  Buffer b(32);
  b.append("0123456789abcdef");
  b.consume(10);
  CHECK(b.writable() == 16);
  b.compact();
  CHECK(b.view() == "abcdef");
  CHECK(b.writable() == 26);
  CHECK(b.capacity() == 32);
  // Compacting a compact buffer changes nothing.
  b.compact();
  CHECK(b.view() == "abcdef");
}

TEST_CASE("ensure_writable compacts before it grows", "[buffer]") {
  Buffer b;
  const std::string first(100, 'a');
  b.append(first);
  const size_t capacity = b.capacity();
  CHECK(capacity == 512);
  b.consume(50);

  // Room at the front is enough: moved, not grown.
  b.ensure_writable(capacity - 50);
  CHECK(b.capacity() == capacity);
  CHECK(b.writable() >= capacity - 50);
  CHECK(b.view() == std::string(50, 'a'));

  // Not enough: grown by doubling to hold what is there plus what was asked.
  b.ensure_writable(1000);
  CHECK(b.capacity() == 2048);
  CHECK(b.writable() >= 1000);
  CHECK(b.view() == std::string(50, 'a'));

  // Already enough: nothing moves.
  const char* data = b.data();
  b.ensure_writable(10);
  CHECK(b.data() == data);
}

TEST_CASE("growth keeps every byte", "[buffer]") {
  Buffer b(8);
  std::string model;
  std::string chunk;
  for (int i = 0; i < 300; ++i) {
    chunk.assign(static_cast<size_t>(i), static_cast<char>(i));
    b.append(chunk);
    model += chunk;
  }
  CHECK(b.size() == model.size());
  CHECK(b.view() == model);
  CHECK(b.capacity() >= model.size());
}

TEST_CASE("random appends and consumes match a string", "[buffer]") {
  std::mt19937 rng(20240611);
  Buffer b;
  std::string model;
  char next = 0;
  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      // Reads of every size, a few very large.
      const size_t n = rng() % 20 == 0 ? rng() % 70000 : rng() % 300;
      std::string bytes;
      for (size_t i = 0; i < n; ++i)
        bytes.push_back(next++);
      if (rng() % 2) {
        b.append(bytes);
      } else {
        b.ensure_writable(n);
        REQUIRE(b.writable() >= n);
        if (n) std::memcpy(b.write_ptr(), bytes.data(), n);
        b.commit(n);
      }
      model += bytes;
    } else if (op < 9) {
      const size_t n = model.empty() ? 0 : rng() % (model.size() + 1);
      b.consume(n);
      model.erase(0, n);
    } else {
      b.compact();
    }
    REQUIRE(b.size() == model.size());
    REQUIRE(b.view() == model);
    if (model.empty() && rng() % 4 == 0) b.shrink_if_idle(1024);
  }
}

TEST_CASE("shrink_if_idle gives memory back only when empty", "[buffer]") {
  Buffer b;
  b.append(std::string(100000, 'x'));
  const size_t big = b.capacity();
  REQUIRE(big >= 100000);

  SECTION("not while bytes are waiting") {
    b.consume(b.size() - 1);
    b.shrink_if_idle(4096);
    CHECK(b.capacity() == big);
    CHECK(b.view() == "x");
  }
  SECTION("down to what is kept") {
    b.consume(b.size());
    b.shrink_if_idle(4096);
    CHECK(b.capacity() == 4096);
    CHECK(b.empty());
    b.append("still works");
    CHECK(b.view() == "still works");
  }
  SECTION("down to nothing") {
    b.clear();
    b.shrink_if_idle(0);
    CHECK(b.capacity() == 0);
    b.append("still works");
    CHECK(b.view() == "still works");
  }
  SECTION("a small buffer is left alone") {
    Buffer small;
    small.append("abc");
    small.consume(3);
    const size_t capacity = small.capacity();
    small.shrink_if_idle(capacity);
    CHECK(small.capacity() == capacity);
    small.shrink_if_idle(capacity + 1);
    CHECK(small.capacity() == capacity);
  }
}

TEST_CASE("moving a buffer moves its bytes", "[buffer]") {
  Buffer a;
  a.append("0123456789");
  a.consume(3);
  Buffer b(std::move(a));
  CHECK(b.view() == "3456789");
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  CHECK(a.capacity() == 0);

  Buffer c;
  c.append("old");
  c = std::move(b);
  CHECK(c.view() == "3456789");
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
  CHECK(b.capacity() == 0);

  // A moved-from buffer is usable again.
  b.append("new");
  CHECK(b.view() == "new");

  // Self-assignment keeps the bytes.
  Buffer& self = c;
  c = std::move(self);
  CHECK(c.view() == "3456789");
}

// memcpy with a null pointer is undefined even for zero bytes; an UndefinedBehaviorSanitizer build
// reports it if append() ever reaches memcpy here.
TEST_CASE("appending nothing to a buffer without storage", "[buffer]") {
  Buffer b;
  b.append("", 0);
  b.append(std::string_view());
  CHECK(b.empty());
  CHECK(b.capacity() == 0);
}

}  // namespace
}  // namespace cachegate::protocol
