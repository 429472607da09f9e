// Server: requests with timeouts of their own (a route rule's `timeout:`) next to requests with
// the pool's, on one pipelined connection. A real Server against a real loopback TCP server that
// reads everything and answers only when a test says so, so that what is checked is what the
// timer and the connection do with real sockets.
//
// Timing checks are bounds, not measurements: a request never fails before its deadline (the
// timer and the connection read the same clock), and which request fails with kTimeout does not
// depend on how late the timer runs. Upper bounds are only the much later deadlines of the
// other requests, and replies that must beat a deadline get hundreds of milliseconds to do so.

#include "backends/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/unit/backends/fd.h"

#include "backends/loop.h"
#include "config/config.h"
#include "routing/destination.h"

namespace cachegate::backends {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using routing::Failure;

using testing::Fd;

// A memcached server played by the test: accepts, reads every request, and writes only what the
// test hands it. Driven from the test's thread between turns of the loop.
class Backend {
 public:
  struct Connection {
    Fd fd;
    std::string received;
    bool closed = false;  // cachegate closed its end
  };

  Backend() : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {
    REQUIRE(listener_.get() >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_.get(), 16) == 0);
    socklen_t length = sizeof addr;
    REQUIRE(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &length) == 0);
    port_ = ntohs(addr.sin_port);
  }

  uint16_t port() const { return port_; }

  // Accepts whoever connected and reads whatever arrived.
  void poll() {
    for (;;) {
      const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      connections.push_back(Connection{Fd(fd), {}, false});
    }
    char buf[16 * 1024];
    for (auto& c : connections) {
      while (!c.closed) {
        const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          c.received.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          c.closed = true;
        } else if (errno != EINTR) {
          break;
        }
      }
    }
  }

  // Requests (`get`s) received on the newest connection.
  size_t gets_received() const {
    if (connections.empty()) return 0;
    const std::string& r = connections.back().received;
    size_t n = 0;
    for (size_t at = r.find("get "); at != std::string::npos; at = r.find("get ", at + 1))
      ++n;
    return n;
  }

  // Writes `reply` on the newest connection.
  void answer(std::string_view reply) {
    REQUIRE(!connections.empty());
    REQUIRE(::send(connections.back().fd.get(), reply.data(), reply.size(),
                   MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(reply.size()));
  }

  std::vector<Connection> connections;  // in accept order

 private:
  Fd listener_;
  uint16_t port_ = 0;
};

// The client: records every outcome with its time. Lives as long as the test; the references
// the server holds are checked to be given back.
class Recorder final : public routing::ReplyHandler {
 public:
  struct Outcome {
    uint32_t cookie;
    bool failed;
    Failure failure;
    std::string reply;
    Clock::time_point at;
  };

  void on_reply(uint32_t cookie, std::string_view reply, bool) override {
    outcomes.push_back({cookie, false, Failure::kClosed, std::string(reply), Clock::now()});
  }
  void on_failure(uint32_t cookie, Failure failure) override {
    outcomes.push_back({cookie, true, failure, {}, Clock::now()});
  }

  size_t count(uint32_t cookie) const {
    size_t n = 0;
    for (const auto& o : outcomes)
      n += o.cookie == cookie ? 1 : 0;
    return n;
  }
  // The only outcome for `cookie`.
  const Outcome& of(uint32_t cookie) const {
    REQUIRE(count(cookie) == 1);
    for (const auto& o : outcomes)
      if (o.cookie == cookie) return o;
    FAIL("no outcome");
    return outcomes.front();
  }

  std::vector<Outcome> outcomes;

 private:
  void destroy() override {}  // owned by the test
};

// One memcached pool of one server with one connection, as a worker would set it up.
struct Harness {
  explicit Harness(std::chrono::milliseconds pool_timeout) {
    pool.name = "p";
    pool.protocol = config::Protocol::kMemcached;
    pool.timeout = pool_timeout;
    pool.connect_timeout = 1000ms;
    pool.server_connections = 1;
    server_config.host = "127.0.0.1";
    server_config.port = backend.port();
    server_config.spec = "127.0.0.1:" + std::to_string(backend.port()) + ":1";
    server = std::make_unique<Server>(
        loop, pool, server_config,
        asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), backend.port()), 0, nullptr,
        uint64_t{1} << 20);
  }
  // The worker's teardown order: failures delivered while the client exists, then the handlers
  // still queued (the connections' timer waits) go with the io_context, before the server.
  ~Harness() {
    server->shutdown();
    loop.discard_pending();
  }

  // Sends "get k<cookie>" with `timeout` (0: the pool's).
  void get(uint32_t cookie, std::chrono::milliseconds timeout = 0ms) {
    const std::string request = "get k" + std::to_string(cookie) + "\r\n";
    const std::string_view piece = request;
    server->send(&piece, 1, protocol::ReplyShape::kMcRetrieval, client, cookie, 0, timeout);
  }

  static std::string value_of(uint32_t cookie) {
    return "VALUE k" + std::to_string(cookie) + " 0 1\r\nx\r\nEND\r\n";
  }

  // Turns the loop and the backend until `done`; the limit only guards against a hang, and is
  // longer than any deadline a test waits for.
  template <class Done>
  bool run_until(Done done, std::chrono::milliseconds limit = 10s) {
    const auto give_up = Clock::now() + limit;
    for (;;) {
      backend.poll();
      if (done()) return true;
      if (Clock::now() > give_up) return false;
      io.run_for(1ms);
    }
  }
  void run_for(std::chrono::milliseconds how_long) {
    const auto until = Clock::now() + how_long;
    run_until([&] { return Clock::now() >= until; });
  }

  ServerCounters& counters() { return server->counters(); }
  uint64_t counter(const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); }

  config::PoolConfig pool;
  config::ServerConfig server_config;
  Backend backend;
  Recorder client;
  std::unique_ptr<Server> server;  // destroyed last, as the worker's are
  asio::io_context io;
  Loop loop{io};
};

std::chrono::milliseconds since(Clock::time_point start, Clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(at - start);
}

TEST_CASE("a short timeout of its own fails a request behind one with the pool's timeout",
          "[server][timeout]") {
  Harness h(1000ms);
  const auto first_sent = Clock::now();
  h.get(1);
  REQUIRE(h.run_until([&] { return h.backend.gets_received() == 1; }));
  const auto second_sent = Clock::now();
  h.get(2, 50ms);
  REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 2; }));

  // The later request's deadline came first: it timed out, and the connection was reset under
  // the earlier one. Both outcomes come from the one reset, in queue order.
  const auto& first = h.client.of(1);
  const auto& second = h.client.of(2);
  CHECK(h.client.outcomes[0].cookie == 1);
  CHECK(second.failed);
  CHECK(second.failure == Failure::kTimeout);
  CHECK(first.failed);
  CHECK(first.failure == Failure::kClosed);
  CHECK(since(second_sent, second.at) >= 50ms);
  CHECK(since(first_sent, second.at) < 1000ms);
  CHECK(h.counter(h.counters().timeouts) == 1);
  CHECK(h.counter(h.counters().failures) == 2);
  CHECK(h.counter(h.counters().replies) == 0);
  CHECK(h.counter(h.counters().in_flight) == 0);
  CHECK(h.server->connections_open() == 0);
  REQUIRE(h.run_until([&] { return h.backend.connections[0].closed; }));

  // Nothing more for either, even when the first request's own deadline has passed too.
  h.run_until([&] { return Clock::now() >= first_sent + 1100ms; });
  CHECK(h.client.outcomes.size() == 2);
  CHECK(h.counter(h.counters().timeouts) == 1);

  // The next request opens a new connection and gets its reply.
  h.get(3);
  REQUIRE(h.run_until([&] { return h.backend.connections.size() == 2; }));
  REQUIRE(h.run_until([&] { return h.backend.gets_received() == 1; }));
  h.backend.answer(Harness::value_of(3));
  REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 3; }));
  CHECK_FALSE(h.client.of(3).failed);
  CHECK(h.client.of(3).reply.starts_with("VALUE k3 "));
  CHECK(h.client.ref_count() == 0);
}

TEST_CASE("requests with the pool's timeout still time out at the pool's timeout",
          "[server][timeout]") {
  Harness h(200ms);
  const auto sent = Clock::now();

  SECTION("with no timeout of its own in the queue") {
    h.get(1);
    h.get(2);
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 2; }));
    CHECK(h.client.of(1).failure == Failure::kTimeout);
    CHECK(h.client.of(2).failure == Failure::kClosed);
    CHECK(since(sent, h.client.of(1).at) >= 200ms);
  }
  SECTION("behind a request with a longer timeout of its own") {
    h.get(1, 5000ms);
    h.get(2);
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 2; }));
    CHECK(h.client.of(2).failure == Failure::kTimeout);
    CHECK(h.client.of(1).failure == Failure::kClosed);
    CHECK(since(sent, h.client.of(2).at) >= 200ms);
    CHECK(since(sent, h.client.of(2).at) < 5000ms);
  }
  SECTION("in front of a request with a longer timeout of its own") {
    // The front request's deadline comes first; its reset takes the other one with it.
    h.get(1);
    h.get(2, 5000ms);
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 2; }));
    CHECK(h.client.of(1).failure == Failure::kTimeout);
    CHECK(h.client.of(2).failure == Failure::kClosed);
    CHECK(since(sent, h.client.of(1).at) >= 200ms);
    CHECK(since(sent, h.client.of(1).at) < 5000ms);
  }
  SECTION("given a timeout equal to the pool's") {
    h.get(1, 200ms);
    h.get(2);
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 2; }));
    CHECK(h.client.of(1).failure == Failure::kTimeout);
    CHECK(h.client.of(2).failure == Failure::kClosed);
    CHECK(since(sent, h.client.of(1).at) >= 200ms);
  }
  CHECK(h.counter(h.counters().timeouts) == 1);
  CHECK(h.counter(h.counters().failures) == 2);
  CHECK(h.counter(h.counters().in_flight) == 0);
  CHECK(h.client.ref_count() == 0);
}

TEST_CASE("a timeout of its own longer than the pool's is honoured", "[server][timeout]") {
  SECTION("the request fails at its own deadline, not the pool's") {
    Harness h(50ms);
    const auto sent = Clock::now();
    h.get(1, 300ms);
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 1; }));
    CHECK(h.client.of(1).failure == Failure::kTimeout);
    CHECK(since(sent, h.client.of(1).at) >= 300ms);
    CHECK(h.counter(h.counters().timeouts) == 1);
    CHECK(h.client.ref_count() == 0);
  }
  SECTION("its reply, long after the pool's timeout, is delivered") {
    Harness h(50ms);
    h.get(1, 5000ms);
    REQUIRE(h.run_until([&] { return h.backend.gets_received() == 1; }));
    h.run_for(250ms);
    CHECK(h.client.outcomes.empty());
    h.backend.answer(Harness::value_of(1));
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 1; }));
    CHECK_FALSE(h.client.of(1).failed);
    CHECK(h.client.of(1).reply.starts_with("VALUE k1 "));
    CHECK(h.counter(h.counters().timeouts) == 0);
    CHECK(h.counter(h.counters().replies) == 1);
    CHECK(h.server->connections_open() == 1);
    CHECK(h.client.ref_count() == 0);
  }
}

TEST_CASE("replies in time are delivered with timeouts of their own in the queue",
          "[server][timeout]") {
  Harness h(1000ms);
  const auto sent = Clock::now();

  SECTION("every reply in time") {
    h.get(1);
    h.get(2, 600ms);
    h.get(3, 5000ms);
    h.get(4);
    REQUIRE(h.run_until([&] { return h.backend.gets_received() == 4; }));
    for (uint32_t cookie = 1; cookie <= 4; ++cookie)
      h.backend.answer(Harness::value_of(cookie));
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 4; }));
    for (uint32_t cookie = 1; cookie <= 4; ++cookie) {
      CHECK(h.client.outcomes[cookie - 1].cookie == cookie);
      CHECK_FALSE(h.client.outcomes[cookie - 1].failed);
      CHECK(h.client.outcomes[cookie - 1].reply.starts_with("VALUE k" + std::to_string(cookie)));
    }
    // The deadlines of answered requests pass without effect, and the connection stays.
    h.run_until([&] { return Clock::now() >= sent + 700ms; });
    CHECK(h.client.outcomes.size() == 4);
    CHECK(h.counter(h.counters().timeouts) == 0);
    CHECK(h.counter(h.counters().replies) == 4);
    CHECK(h.server->connections_open() == 1);
    CHECK_FALSE(h.backend.connections[0].closed);

    // A later request with a short timeout of its own is still watched.
    const auto later = Clock::now();
    h.get(5, 100ms);
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 5; }));
    CHECK(h.client.of(5).failure == Failure::kTimeout);
    CHECK(since(later, h.client.of(5).at) >= 100ms);
    CHECK(h.counter(h.counters().timeouts) == 1);
  }
  SECTION("the request answered in time keeps its reply; the late one behind it fails") {
    h.get(1);
    REQUIRE(h.run_until([&] { return h.backend.gets_received() == 1; }));
    // The reply is on its way (readable before the loop turns again) when the next request
    // joins the queue behind it.
    h.backend.answer(Harness::value_of(1));
    const auto second_sent = Clock::now();
    h.get(2, 200ms);
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 2; }));
    CHECK_FALSE(h.client.of(1).failed);
    CHECK(h.client.of(2).failure == Failure::kTimeout);
    CHECK(h.backend.gets_received() == 2);
    CHECK(since(second_sent, h.client.of(2).at) >= 200ms);
    CHECK(since(sent, h.client.of(2).at) < 1000ms);
    CHECK(h.counter(h.counters().timeouts) == 1);
    CHECK(h.counter(h.counters().replies) == 1);
  }
  SECTION("the late request in front fails; the one behind with a longer timeout goes with it") {
    h.get(1, 100ms);
    h.get(2, 5000ms);
    h.get(3);
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 3; }));
    CHECK(h.client.of(1).failure == Failure::kTimeout);
    CHECK(h.client.of(2).failure == Failure::kClosed);
    CHECK(h.client.of(3).failure == Failure::kClosed);
    CHECK(since(sent, h.client.of(1).at) >= 100ms);
    CHECK(since(sent, h.client.of(1).at) < 1000ms);
    CHECK(h.counter(h.counters().timeouts) == 1);
  }
  CHECK(h.counter(h.counters().in_flight) == 0);
  CHECK(h.client.ref_count() == 0);
}

TEST_CASE("a timeout of its own is watched behind the memcached login", "[server][timeout]") {
  // The login goes first on a new connection, with the connect timeout added to its deadline.
  Harness h(1000ms);
  h.pool.server_username = "user";
  h.pool.server_password = "secret";
  const auto sent = Clock::now();
  h.get(1, 500ms);
  REQUIRE(h.run_until([&] { return h.backend.gets_received() == 1; }));
  CHECK(h.backend.connections.back().received.starts_with("set cachegate-login "));

  SECTION("the login unanswered") {
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 1; }));
    CHECK(h.client.of(1).failure == Failure::kTimeout);
    // The login's failure is the connection's own: counted, not delivered.
    CHECK(h.counter(h.counters().failures) == 2);
  }
  SECTION("the login answered") {
    h.backend.answer("STORED\r\n");
    REQUIRE(h.run_until([&] { return h.client.outcomes.size() == 1; }));
    CHECK(h.client.of(1).failure == Failure::kTimeout);
    CHECK(h.counter(h.counters().replies) == 1);
    CHECK(h.counter(h.counters().failures) == 1);
  }
  // Not left waiting for the login's deadline (the connect timeout plus the pool's).
  CHECK(since(sent, h.client.of(1).at) >= 500ms);
  CHECK(since(sent, h.client.of(1).at) < 2000ms);
  CHECK(h.counter(h.counters().timeouts) == 1);
  CHECK(h.counter(h.counters().in_flight) == 0);
  CHECK(h.server->connections_open() == 0);
  CHECK(h.client.ref_count() == 0);
}

}  // namespace
}  // namespace cachegate::backends
