// Loop: readiness from the worker's own edge-triggered epoll set, nested in an io_context, and
// flushes batched per pass. Real sockets and a real io_context throughout: what matters is what
// the kernel reports and when the loop passes it on, which a fake epoll could not show.

#include "backends/loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/unit/backends/fd.h"

namespace cachegate::backends {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

// --- sockets -----------------------------------------------------------------------------------

using testing::Fd;

// `mine` is the end the loop watches; the test plays the remote side on `peer`.
struct SocketPair {
  Fd mine;
  Fd peer;
};

SocketPair unix_pair() {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  return {Fd(fds[0]), Fd(fds[1])};
}

// A connected loopback TCP pair on a port the kernel picks.
SocketPair tcp_pair() {
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(listener.get() >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener.get(), 1) == 0);
  socklen_t length = sizeof addr;
  REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &length) == 0);
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(client.get() >= 0);
  REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  Fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  REQUIRE(server.get() >= 0);
  return {std::move(server), std::move(client)};
}

void write_all(int fd, std::string_view data) {
  REQUIRE(::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT) ==
          static_cast<ssize_t>(data.size()));
}

// Reads until the kernel has nothing more; returns the byte count.
size_t drain(int fd) {
  char buf[64 * 1024];
  size_t total = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  return total;
}

// Writes until the socket buffer is full (EAGAIN); returns the byte count.
size_t fill(int fd) {
  const std::string chunk(64 * 1024, 'x');
  size_t total = 0;
  for (;;) {
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      REQUIRE((errno == EAGAIN || errno == EWOULDBLOCK));
      return total;
    }
    total += static_cast<size_t>(n);
  }
}

// --- driving the io_context --------------------------------------------------------------------

// Runs everything ready now. Socket writes reach the nested epoll set synchronously, so the
// passes they cause run here, with no waiting.
void pump(asio::io_context& io) {
  io.poll();
  io.poll();
}

// Runs the io_context until `done` or the limit; the limit only guards against a hang.
template <class Done>
bool run_until(asio::io_context& io, Done done, std::chrono::milliseconds limit = 2s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_for(1ms);
  }
  return true;
}

// --- targets -----------------------------------------------------------------------------------

// What the loop did, in order, across every probe of a test.
struct Journal {
  std::vector<std::string> lines;

  void add(std::string line) { lines.push_back(std::move(line)); }
  size_t count(std::string_view line) const {
    return static_cast<size_t>(std::count(lines.begin(), lines.end(), line));
  }
  // Position of the first `line`, or lines.size() when absent.
  size_t first(std::string_view line) const {
    return static_cast<size_t>(std::find(lines.begin(), lines.end(), line) - lines.begin());
  }
  // Position of the last `line`, or lines.size() when absent.
  size_t last(std::string_view line) const {
    for (size_t i = lines.size(); i-- > 0;)
      if (lines[i] == line) return i;
    return lines.size();
  }
};

// Retains and unretains by the loop, kept outside the probes because a probe may delete itself.
struct RefTotals {
  int retains = 0;
  int unretains = 0;
};

// A socket owner as the loop sees one (a client session, a server connection): retained by the
// loop while it has a pass event or a pending flush, polled, flushed. What it does when polled or
// flushed is up to each test.
class Probe final : public Pollable, public Flushable {
 public:
  Probe(std::string name, Journal& journal, RefTotals& totals)
      : name_(std::move(name)), journal_(journal), totals_(totals) {}

  // A probe that deletes itself when its last reference goes, like a session does; the caller
  // holds the first reference and gives it up with drop().
  static Probe* self_owned(std::string name, Journal& journal, RefTotals& totals) {
    auto* p = new Probe(std::move(name), journal, totals);
    p->self_owned_ = true;
    p->refs_ = 1;
    return p;
  }

  void retain() override {
    ++refs_;
    ++loop_refs_;
    ++totals_.retains;
  }
  void unretain() override {
    --loop_refs_;
    ++totals_.unretains;
    drop();
  }
  void drop() {
    if (--refs_ == 0 && self_owned_) {
      journal_.add(name_ + " destroyed");
      delete this;
    }
  }

  void on_poll(uint32_t events) override {
    journal_.add(name_ + " poll");
    events_.push_back(events);
    if (poll_action) poll_action(*this, events);
  }
  void flush_now() override {
    journal_.add(name_ + " flush");
    ++flushes_;
    if (flush_action) flush_action(*this);
  }

  const std::string& name() const { return name_; }
  int loop_refs() const { return loop_refs_; }
  int flushes() const { return flushes_; }
  const std::vector<uint32_t>& events() const { return events_; }
  uint32_t all_events() const {
    uint32_t all = 0;
    for (uint32_t e : events_)
      all |= e;
    return all;
  }
  void forget_events() { events_.clear(); }

  std::function<void(Probe&, uint32_t)> poll_action;
  std::function<void(Probe&)> flush_action;

 private:
  std::string name_;
  Journal& journal_;
  RefTotals& totals_;
  bool self_owned_ = false;
  int refs_ = 0;
  int loop_refs_ = 0;
  int flushes_ = 0;
  std::vector<uint32_t> events_;
};

// Watches each probe's socket and lets the first pass, which reports every fresh socket as
// writable, go by, so that what a test checks next is caused by the test alone.
void watch_all(asio::io_context& io, Loop& loop, std::vector<SocketPair>& pairs,
               std::vector<Probe*> probes, Journal& journal) {
  for (size_t i = 0; i < probes.size(); ++i)
    REQUIRE(loop.watch(pairs[i].mine.get(), *probes[i]));
  pump(io);
  for (Probe* p : probes)
    p->forget_events();
  journal.lines.clear();
}

// --- readiness ---------------------------------------------------------------------------------

TEST_CASE("readiness is reported once per edge, for every ready socket of a pass", "[loop]") {
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  std::vector<SocketPair> pairs;
  std::vector<std::unique_ptr<Probe>> probes;
  // Flushed once per pass by whoever was polled in it: marks where each pass ends.
  Probe pass_end("end of pass", journal, totals);
  for (int i = 0; i < 3; ++i) {
    pairs.push_back(unix_pair());
    probes.push_back(std::make_unique<Probe>("s" + std::to_string(i), journal, totals));
    probes.back()->poll_action = [&](Probe&, uint32_t) { loop.defer_flush(pass_end); };
  }

  for (size_t i = 0; i < probes.size(); ++i)
    REQUIRE(loop.watch(pairs[i].mine.get(), *probes[i]));
  pump(io);
  // A fresh connected socket has room to write and nothing to read.
  for (auto& p : probes) {
    REQUIRE(p->events().size() == 1);
    CHECK((p->events()[0] & EPOLLOUT) != 0);
    CHECK((p->events()[0] & EPOLLIN) == 0);
    p->forget_events();
  }
  journal.lines.clear();

  for (auto& pair : pairs)
    write_all(pair.peer.get(), "get a\r\n");
  pump(io);
  for (auto& p : probes) {
    REQUIRE(p->events().size() == 1);
    CHECK((p->events()[0] & EPOLLIN) != 0);
  }
  // All three in one pass: one end-of-pass flush, after the three polls.
  CHECK(journal.lines.size() == 4);
  CHECK(journal.count("end of pass flush") == 1);
  CHECK(journal.last("end of pass flush") == journal.lines.size() - 1);

  SECTION("unread data is not reported again: the edge has been given") {
    pump(io);
    io.run_for(5ms);
    for (auto& p : probes)
      CHECK(p->events().size() == 1);
  }
  SECTION("more data is a new edge, for that socket only") {
    write_all(pairs[1].peer.get(), "get b\r\n");
    pump(io);
    CHECK(probes[0]->events().size() == 1);
    REQUIRE(probes[1]->events().size() == 2);
    CHECK((probes[1]->events()[1] & EPOLLIN) != 0);
    CHECK(probes[2]->events().size() == 1);
  }
  SECTION("after unwatch nothing is reported, whatever arrives") {
    loop.unwatch(pairs[0].mine.get(), *probes[0]);
    write_all(pairs[0].peer.get(), "get c\r\n");
    pump(io);
    io.run_for(5ms);
    CHECK(probes[0]->events().size() == 1);
  }
  CHECK(totals.retains == totals.unretains);
}

TEST_CASE("more ready sockets than one pass takes are all reported", "[loop]") {
  // 256 events per pass: the rest must still come out of the nested set (in a later pass), not
  // wait for some unrelated socket to wake the outer one.
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  constexpr int kSockets = 300;
  std::vector<SocketPair> pairs;
  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<Probe*> raw;
  for (int i = 0; i < kSockets; ++i) {
    pairs.push_back(unix_pair());
    probes.push_back(std::make_unique<Probe>("s" + std::to_string(i), journal, totals));
    raw.push_back(probes.back().get());
  }
  watch_all(io, loop, pairs, raw, journal);

  for (auto& pair : pairs)
    write_all(pair.peer.get(), "x");
  const bool all = run_until(io, [&] {
    return std::all_of(probes.begin(), probes.end(),
                       [](const auto& p) { return (p->all_events() & EPOLLIN) != 0; });
  });
  CHECK(all);
  for (auto& p : probes)
    CHECK(p->events().size() == 1);
  CHECK(totals.retains == totals.unretains);
}

TEST_CASE("a target unwatched during a pass hears nothing more of that pass", "[loop]") {
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  std::vector<SocketPair> pairs;
  pairs.push_back(unix_pair());
  pairs.push_back(unix_pair());
  Probe a("a", journal, totals);
  Probe b("b", journal, totals);
  watch_all(io, loop, pairs, {&a, &b}, journal);

  SECTION("the first target polled unwatches and closes the other") {
    // Both are readable in the same pass; which comes first is the kernel's business, so
    // whichever does closes the other.
    int closed = 0;
    auto close_other = [&](Probe& self, uint32_t) {
      Probe& other = &self == &a ? b : a;
      SocketPair& other_pair = &self == &a ? pairs[1] : pairs[0];
      if (other_pair.mine.get() < 0) return;
      loop.unwatch(other_pair.mine.get(), other);
      other_pair.mine.reset();
      ++closed;
    };
    a.poll_action = close_other;
    b.poll_action = close_other;
    write_all(pairs[0].peer.get(), "1");
    write_all(pairs[1].peer.get(), "2");
    pump(io);
    CHECK(closed == 1);
    CHECK(journal.lines.size() == 1);
    CHECK(a.events().size() + b.events().size() == 1);
  }

  SECTION("a target that unwatches itself is not polled again") {
    a.poll_action = [&](Probe& self, uint32_t) {
      loop.unwatch(pairs[0].mine.get(), self);
      drain(pairs[0].mine.get());
    };
    write_all(pairs[0].peer.get(), "1");
    pump(io);
    REQUIRE(a.events().size() == 1);
    write_all(pairs[0].peer.get(), "2");
    pump(io);
    io.run_for(5ms);
    CHECK(a.events().size() == 1);
  }

  SECTION("a socket number reused within the pass reaches only its new owner") {
    // The closed socket's number is typically handed straight to the next socket opened; its
    // stale event of this pass must not reach the new owner, nor the old one.
    Probe c("c", journal, totals);
    SocketPair fresh;
    auto replace_other = [&](Probe& self, uint32_t) {
      Probe& other = &self == &a ? b : a;
      SocketPair& other_pair = &self == &a ? pairs[1] : pairs[0];
      if (other_pair.mine.get() < 0) return;
      loop.unwatch(other_pair.mine.get(), other);
      other_pair.mine.reset();
      fresh = unix_pair();
      REQUIRE(loop.watch(fresh.mine.get(), c));
    };
    a.poll_action = replace_other;
    b.poll_action = replace_other;
    write_all(pairs[0].peer.get(), "1");
    write_all(pairs[1].peer.get(), "2");
    pump(io);
    CHECK(a.events().size() + b.events().size() == 1);
    // The new socket is reported in a pass of its own: writable, nothing to read yet.
    REQUIRE(c.events().size() == 1);
    CHECK((c.events()[0] & EPOLLIN) == 0);
    write_all(fresh.peer.get(), "3");
    pump(io);
    REQUIRE(c.events().size() == 2);
    CHECK((c.events()[1] & EPOLLIN) != 0);
    loop.unwatch(fresh.mine.get(), c);
  }
  CHECK(totals.retains == totals.unretains);
}

TEST_CASE("targets stay alive until the pass ends", "[loop]") {
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  std::vector<SocketPair> pairs;
  pairs.push_back(unix_pair());
  pairs.push_back(unix_pair());
  Probe* a = Probe::self_owned("a", journal, totals);
  Probe* b = Probe::self_owned("b", journal, totals);
  watch_all(io, loop, pairs, {a, b}, journal);

  // The first target polled closes both sockets and gives up the only outside references to
  // both probes, its own included, then goes on using itself, as a session closing itself does.
  bool destroyed_inside_poll = false;
  int polls = 0;
  auto close_everything = [&](Probe& self, uint32_t) {
    ++polls;
    const std::string name = self.name();
    for (int i = 0; i < 2; ++i) {
      Probe* p = i == 0 ? a : b;
      loop.unwatch(pairs[i].mine.get(), *p);
      pairs[i].mine.reset();
    }
    Probe& other = &self == a ? *b : *a;
    other.drop();
    self.drop();
    destroyed_inside_poll = journal.count("a destroyed") + journal.count("b destroyed") != 0;
    self.forget_events();  // still a valid object: the loop holds it for the pass
    journal.add(name + " done");
  };
  a->poll_action = close_everything;
  b->poll_action = close_everything;
  write_all(pairs[0].peer.get(), "1");
  write_all(pairs[1].peer.get(), "2");
  pump(io);

  CHECK(polls == 1);
  CHECK_FALSE(destroyed_inside_poll);
  REQUIRE(journal.lines.size() == 4);
  CHECK(journal.lines[0].ends_with(" poll"));
  CHECK(journal.lines[1].ends_with(" done"));
  CHECK(journal.count("a destroyed") == 1);
  CHECK(journal.count("b destroyed") == 1);
  CHECK(totals.retains == totals.unretains);
}

TEST_CASE("a target is kept alive through its own flush", "[loop][flush]") {
  // A session whose reply write fails closes itself and gives up its last reference from inside
  // flush_now(); it must still be there when flush_now() returns.
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  Probe* session = Probe::self_owned("session", journal, totals);
  bool destroyed_inside_flush = true;
  session->flush_action = [&](Probe& self) {
    self.drop();
    destroyed_inside_flush = journal.count("session destroyed") != 0;
    self.forget_events();
  };
  loop.defer_flush(*session);
  pump(io);
  CHECK_FALSE(destroyed_inside_flush);
  CHECK(journal.lines == std::vector<std::string>{"session flush", "session destroyed"});
  CHECK(totals.retains == totals.unretains);
}

// --- deferred flushes --------------------------------------------------------------------------

TEST_CASE("deferred flushes run once per pass, after every ready socket", "[loop][flush]") {
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  std::vector<SocketPair> pairs;
  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<Probe*> raw;
  // A server connection every client of the pass writes requests to.
  Probe server("server", journal, totals);
  for (int i = 0; i < 3; ++i) {
    pairs.push_back(unix_pair());
    probes.push_back(std::make_unique<Probe>("c" + std::to_string(i), journal, totals));
    raw.push_back(probes.back().get());
  }
  watch_all(io, loop, pairs, raw, journal);
  for (auto& p : probes) {
    p->poll_action = [&](Probe& self, uint32_t) {
      loop.defer_flush(server);
      loop.defer_flush(self);
      loop.defer_flush(server);
      loop.defer_flush(self);
    };
  }

  for (auto& pair : pairs)
    write_all(pair.peer.get(), "get k\r\n");
  pump(io);

  CHECK(server.flushes() == 1);
  for (auto& p : probes) {
    CHECK(p->events().size() == 1);
    CHECK(p->flushes() == 1);
  }
  // Every flush after every poll of the pass.
  size_t last_poll = 0;
  size_t first_flush = journal.lines.size();
  for (size_t i = 0; i < journal.lines.size(); ++i) {
    if (journal.lines[i].ends_with(" poll")) last_poll = i;
    if (journal.lines[i].ends_with(" flush")) first_flush = std::min(first_flush, i);
  }
  CHECK(journal.lines.size() == 7);
  CHECK(last_poll < first_flush);
  CHECK(server.loop_refs() == 0);
  CHECK(totals.retains == totals.unretains);

  SECTION("the next pass flushes again") {
    write_all(pairs[2].peer.get(), "get k\r\n");
    pump(io);
    CHECK(server.flushes() == 2);
    CHECK(probes[2]->flushes() == 2);
    CHECK(probes[0]->flushes() == 1);
    CHECK(totals.retains == totals.unretains);
  }
}

TEST_CASE("a flush deferred outside a pass runs once, later", "[loop][flush]") {
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  Probe target("t", journal, totals);

  SECTION("from a posted handler") {
    int flushes_seen_in_handler = -1;
    asio::post(io, [&] {
      loop.defer_flush(target);
      loop.defer_flush(target);
      loop.defer_flush(target);
      flushes_seen_in_handler = target.flushes();
      journal.add("handler done");
    });
    pump(io);
    CHECK(flushes_seen_in_handler == 0);
    CHECK(target.flushes() == 1);
    CHECK(journal.lines == std::vector<std::string>{"handler done", "t flush"});
  }
  SECTION("from a timer") {
    asio::steady_timer timer(io, 5ms);
    timer.async_wait([&](const boost::system::error_code& ec) {
      REQUIRE(!ec);
      loop.defer_flush(target);
      loop.defer_flush(target);
      journal.add("timer done");
    });
    CHECK(run_until(io, [&] { return target.flushes() != 0; }));
    pump(io);
    io.run_for(5ms);
    CHECK(target.flushes() == 1);
    CHECK(journal.lines == std::vector<std::string>{"timer done", "t flush"});
  }
  SECTION("from outside any handler") {
    loop.defer_flush(target);
    loop.defer_flush(target);
    CHECK(target.flushes() == 0);
    CHECK(target.loop_refs() == 1);
    pump(io);
    CHECK(target.flushes() == 1);
  }
  SECTION("twice in a row, each time once") {
    loop.defer_flush(target);
    pump(io);
    loop.defer_flush(target);
    pump(io);
    CHECK(target.flushes() == 2);
  }
  SECTION("several targets, each once") {
    Probe other("u", journal, totals);
    asio::post(io, [&] {
      loop.defer_flush(target);
      loop.defer_flush(other);
      loop.defer_flush(target);
    });
    pump(io);
    CHECK(target.flushes() == 1);
    CHECK(other.flushes() == 1);
  }
  CHECK(target.loop_refs() == 0);
  CHECK(totals.retains == totals.unretains);
}

TEST_CASE("a flush deferred by a flush runs in the same round", "[loop][flush]") {
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  // A client whose reply write resumes its reading, which forwards a request to a server, which
  // must then leave in this same pass rather than wait for a posted task.
  Probe client("client", journal, totals);
  Probe server("server", journal, totals);
  int client_flushes_wanted = 2;
  client.flush_action = [&](Probe& self) {
    loop.defer_flush(server);
    if (--client_flushes_wanted > 0) loop.defer_flush(self);
  };

  SECTION("within a readiness pass") {
    std::vector<SocketPair> pairs;
    pairs.push_back(unix_pair());
    pairs.push_back(unix_pair());
    // Ready in the same pass and otherwise idle: its pass reference shows the pass is not over.
    Probe bystander("bystander", journal, totals);
    watch_all(io, loop, pairs, {&client, &bystander}, journal);
    client.poll_action = [&](Probe& self, uint32_t) { loop.defer_flush(self); };
    int bystander_refs_in_server_flush = -1;
    server.flush_action = [&](Probe&) { bystander_refs_in_server_flush = bystander.loop_refs(); };

    write_all(pairs[0].peer.get(), "1");
    write_all(pairs[1].peer.get(), "2");
    pump(io);
    CHECK(client.flushes() == 2);
    CHECK(server.flushes() == 2);
    CHECK(bystander_refs_in_server_flush == 1);
    CHECK(bystander.loop_refs() == 0);
  }
  SECTION("outside a pass") {
    asio::post(io, [&] {
      loop.defer_flush(client);
      asio::post(io, [&] { journal.add("next handler"); });
    });
    pump(io);
    CHECK(journal.lines == std::vector<std::string>{"client flush", "server flush", "client flush",
                                                    "server flush", "next handler"});
  }
  CHECK(client.loop_refs() == 0);
  CHECK(server.loop_refs() == 0);
  CHECK(totals.retains == totals.unretains);
}

TEST_CASE("discard_pending lets pending targets go unflushed", "[loop][flush]") {
  Journal journal;
  RefTotals totals;
  Probe a("a", journal, totals);
  Probe b("b", journal, totals);

  SECTION("on a running loop, which keeps working afterwards") {
    asio::io_context io;
    Loop loop(io);
    Probe* c = Probe::self_owned("c", journal, totals);
    loop.defer_flush(a);
    loop.defer_flush(b);
    loop.defer_flush(*c);
    c->drop();  // the pending flush now holds c's only reference
    CHECK(a.loop_refs() == 1);
    CHECK(journal.count("c destroyed") == 0);

    loop.discard_pending();
    CHECK(a.loop_refs() == 0);
    CHECK(b.loop_refs() == 0);
    CHECK(journal.count("c destroyed") == 1);
    pump(io);
    CHECK(a.flushes() == 0);
    CHECK(b.flushes() == 0);

    // Discarded targets can be scheduled again.
    loop.defer_flush(a);
    pump(io);
    CHECK(a.flushes() == 1);
    CHECK(b.flushes() == 0);
  }
  SECTION("when the loop is destroyed") {
    {
      asio::io_context io;
      Loop loop(io);
      loop.defer_flush(a);
      loop.defer_flush(b);
      CHECK(a.loop_refs() == 1);
    }
    CHECK(a.loop_refs() == 0);
    CHECK(b.loop_refs() == 0);
    CHECK(a.flushes() == 0);
  }
  CHECK(totals.retains == totals.unretains);
}

// --- what the kernel reports -------------------------------------------------------------------

TEST_CASE("a full socket reports EPOLLOUT once it has room again", "[loop]") {
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  std::vector<SocketPair> pairs;
  pairs.push_back(unix_pair());
  Probe writer("writer", journal, totals);
  watch_all(io, loop, pairs, {&writer}, journal);

  const size_t written = fill(pairs[0].mine.get());
  REQUIRE(written > 0);
  pump(io);
  CHECK((writer.all_events() & EPOLLOUT) == 0);

  CHECK(drain(pairs[0].peer.get()) == written);
  CHECK(run_until(io, [&] { return (writer.all_events() & EPOLLOUT) != 0; }));
  CHECK((writer.all_events() & EPOLLIN) == 0);
  write_all(pairs[0].mine.get(), "more");
  CHECK(totals.retains == totals.unretains);
}

TEST_CASE("a peer that closes is reported as EPOLLRDHUP with EPOLLIN", "[loop]") {
  asio::io_context io;
  Loop loop(io);
  Journal journal;
  RefTotals totals;
  std::vector<SocketPair> pairs;
  Probe probe("p", journal, totals);

  SECTION("unix socket, peer closed") {
    pairs.push_back(unix_pair());
    watch_all(io, loop, pairs, {&probe}, journal);
    pairs[0].peer.reset();
  }
  SECTION("loopback TCP, peer closed") {
    pairs.push_back(tcp_pair());
    watch_all(io, loop, pairs, {&probe}, journal);
    pairs[0].peer.reset();
  }
  SECTION("loopback TCP, peer shut down its sending side after a last request") {
    pairs.push_back(tcp_pair());
    watch_all(io, loop, pairs, {&probe}, journal);
    write_all(pairs[0].peer.get(), "quit\r\n");
    REQUIRE(::shutdown(pairs[0].peer.get(), SHUT_WR) == 0);
  }
  REQUIRE(run_until(io, [&] { return (probe.all_events() & EPOLLRDHUP) != 0; }));
  CHECK((probe.all_events() & EPOLLIN) != 0);
  // Whatever was sent before the close is still there to read, then end of stream.
  drain(pairs[0].mine.get());
  char c;
  CHECK(::recv(pairs[0].mine.get(), &c, 1, MSG_DONTWAIT) == 0);
  loop.unwatch(pairs[0].mine.get(), probe);
  CHECK(totals.retains == totals.unretains);
}

}  // namespace
}  // namespace cachegate::backends
