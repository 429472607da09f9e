// Backends that die, hang and come back, behind cachegate: requests for a broken server's keys
// fail with SERVER_ERROR within the pool's timeout while the other servers keep serving, a
// multi-get touching a broken server fails as a whole, ejection (auto_eject_hosts) moves keys
// to the survivors and back, and the pool's connection settings are honoured.

#include <csignal>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/memcache_cluster.h"
#include "tests/support/ports.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::MemcacheCluster;
using testing::TextClient;
using testing::value_item;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kTimeoutMs = 400;
// Room for a loaded two-core machine on top of the pool's timeout.
constexpr int kSlackMs = 1500;

bool is_server_error(const std::optional<std::string>& reply) {
  return reply && reply->rfind("SERVER_ERROR ", 0) == 0 && reply->find("\r\n") == reply->size() - 2;
}

struct Timed {
  std::optional<std::string> reply;
  long ms;
};

Timed timed_call(TextClient& c, const std::string& request, const char* kind = "line") {
  const auto start = Clock::now();
  auto reply = c.call(request, kind);
  return {reply, static_cast<long>(
                     std::chrono::duration_cast<milliseconds>(Clock::now() - start).count())};
}

// Resumes a stopped server however the test ends.
struct ContinueOnExit {
  testing::MemcachedServer& server;
  ~ContinueOnExit() { server.process().signal(SIGCONT); }
};

TEST_CASE("a killed backend fails only its own keys and is used again after a restart",
          "[memcache][failures]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(3, "kill-");
  auto c = cluster.client();
  for (size_t s = 0; s < 2; ++s)
    for (const auto& k : keys[s])
      REQUIRE(c->call("set " + k + " 0 0 2\r\nv" + std::to_string(s) + "\r\n") == "STORED\r\n");
  const std::string live = keys[0][0], dead = keys[1][0];

  cluster.server(1).kill();

  for (int i = 0; i < 20; ++i) {
    INFO("round " << i);
    auto get = timed_call(*c, "get " + dead + "\r\n", "get");
    CHECK(is_server_error(get.reply));
    CHECK(get.ms < kTimeoutMs + kSlackMs);
    auto set = timed_call(*c, "set " + dead + " 0 0 1\r\nx\r\n");
    CHECK(is_server_error(set.reply));
    CHECK(set.ms < kTimeoutMs + kSlackMs);
    CHECK(is_server_error(c->call("mg " + dead + " v\r\n", "meta")));
    CHECK(is_server_error(c->call("incr " + dead + " 1\r\n")));
    // The other shard answers as if nothing happened.
    auto other = timed_call(*c, "get " + live + "\r\n", "get");
    CHECK(other.reply == value_item(live, "v0") + "END\r\n");
    CHECK(c->call("set " + keys[0][1] + " 0 0 1\r\n" + std::to_string(i % 10) + "\r\n") ==
          "STORED\r\n");
  }
  // A noreply write to the dead shard answers nothing, and the stream stays in step.
  c->send("set " + dead + " 0 0 1 noreply\r\nx\r\ndelete " + dead + " noreply\r\nget " + live +
          "\r\n");
  CHECK(c->read_reply("get") == value_item(live, "v0") + "END\r\n");
  // A quiet meta request to the dead shard reports its error, then mn ends the pipeline.
  c->send("mg " + dead + " v q\r\nmn\r\n");
  CHECK(is_server_error(c->read_reply("line")));
  CHECK(c->read_reply("line") == "MN\r\n");
  // A fresh connection sees the same.
  auto fresh = cluster.client();
  CHECK(is_server_error(fresh->call("get " + dead + "\r\n", "get")));
  CHECK(fresh->call("get " + live + "\r\n", "get") == value_item(live, "v0") + "END\r\n");
  // The dead server has just failed many times in a row: a flush_all is refused before any
  // server is flushed, so the live shard keeps its items.
  CHECK(is_server_error(c->call("get " + dead + "\r\n", "get")));
  CHECK(is_server_error(c->call("flush_all\r\n")));
  CHECK(c->call("get " + live + "\r\n", "get") == value_item(live, "v0") + "END\r\n");

  // Back on the same port: its keys work again within the reconnect backoff (at most 1 s).
  cluster.server(1).restart();
  const auto restarted = Clock::now();
  CHECK(testing::eventually(
      [&] { return c->call("set " + dead + " 0 0 4\r\nback\r\n") == "STORED\r\n"; },
      milliseconds(3000)));
  CHECK(std::chrono::duration_cast<milliseconds>(Clock::now() - restarted).count() < 2500);
  CHECK(cluster.direct_get(1, dead) == "back");
  CHECK_FALSE(cluster.direct_get(0, dead));
  CHECK(c->call("get " + dead + " " + live + "\r\n", "get") ==
        value_item(dead, "back") + value_item(live, "v0") + "END\r\n");
  CHECK(fresh->call("get " + dead + "\r\n", "get") == value_item(dead, "back") + "END\r\n");
}

TEST_CASE("a multi-get touching a dead server is one SERVER_ERROR line", "[memcache][failures]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(2, "mgd-");
  auto c = cluster.client();
  for (size_t s = 0; s < 3; ++s)
    for (const auto& k : keys[s])
      REQUIRE(c->call("set " + k + " 0 0 1\r\nx\r\n") == "STORED\r\n");

  cluster.server(2).kill();

  const std::string a = keys[0][0], b = keys[1][0], dead = keys[2][0];
  for (const std::string cmd : {"get", "gets", "gat 0"}) {
    INFO(cmd);
    // read_reply("get") stops at the first error line: anything after it is caught below.
    auto reply = timed_call(*c, cmd + " " + a + " " + dead + " " + b + "\r\n", "get");
    CHECK(is_server_error(reply.reply));
    CHECK(reply.ms < kTimeoutMs + kSlackMs);
    CHECK(c->call("mn\r\n") == "MN\r\n");
  }
  // Pipelined: each request gets its own reply, in order.
  c->send("get " + a + " " + b + "\r\nget " + dead + " " + a + "\r\nget " + a + "\r\nget " + b +
          " " + keys[2][1] + "\r\nmn\r\n");
  CHECK(c->read_reply("get") == value_item(a, "x") + value_item(b, "x") + "END\r\n");
  CHECK(is_server_error(c->read_reply("line")));
  CHECK(c->read_reply("get") == value_item(a, "x") + "END\r\n");
  CHECK(is_server_error(c->read_reply("line")));
  CHECK(c->read_reply("line") == "MN\r\n");
}

TEST_CASE("a hung backend fails its requests within the timeout", "[memcache][failures]") {
  ClusterOptions options;
  options.timeout_ms = kTimeoutMs;
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(2, "hang-");
  auto c = cluster.client();
  for (size_t s = 0; s < 2; ++s)
    REQUIRE(c->call("set " + keys[s][0] + " 0 0 1\r\nx\r\n") == "STORED\r\n");
  const std::string live = keys[0][0], hung = keys[1][0];

  cluster.server(1).process().signal(SIGSTOP);
  ContinueOnExit resume{cluster.server(1)};

  // The first request finds an open connection: it waits out the timeout, no less.
  auto bystander = cluster.client();
  c->send("get " + hung + "\r\n");
  const auto sent = Clock::now();
  // Meanwhile other clients are served at once.
  auto quick = timed_call(*bystander, "get " + live + "\r\n", "get");
  CHECK(quick.reply == value_item(live, "x") + "END\r\n");
  CHECK(quick.ms < kTimeoutMs);
  auto first = c->read_reply("get");
  const long first_ms =
      static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - sent).count());
  CHECK(is_server_error(first));
  CHECK(first_ms >= kTimeoutMs - 50);
  CHECK(first_ms < kTimeoutMs + kSlackMs);

  // Later requests fail within the timeout too (or at once while the server backs off).
  for (const std::string& req : {"get " + hung + "\r\n", "set " + hung + " 0 0 1\r\ny\r\n",
                                 "get " + live + " " + hung + "\r\n", "mg " + hung + " v\r\n"}) {
    INFO(req);
    auto r = timed_call(*c, req, "get");
    CHECK(is_server_error(r.reply));
    CHECK(r.ms < kTimeoutMs + kSlackMs);
    CHECK(c->call("get " + live + "\r\n", "get") == value_item(live, "x") + "END\r\n");
  }

  // The timeouts are counted against the hung server only.
  auto stat_of = [&](size_t s, const std::string& name) {
    auto stats = c->call("stats servers\r\n", "get").value_or("");
    const std::string key =
        "STAT cache:127.0.0.1:" + std::to_string(cluster.server(s).port()) + ":" + name + " ";
    const size_t p = stats.find(key);
    REQUIRE(p != std::string::npos);
    return std::stoull(stats.substr(p + key.size()));
  };
  CHECK(stat_of(1, "timeouts") >= 1);
  CHECK(stat_of(0, "timeouts") == 0);
  CHECK(stat_of(0, "failures") == 0);

  cluster.server(1).process().signal(SIGCONT);
  CHECK(testing::eventually(
      [&] { return c->call("get " + hung + "\r\n", "get") == value_item(hung, "x") + "END\r\n"; },
      milliseconds(3000)));
  CHECK(c->call("set " + hung + " 0 0 1\r\nz\r\n") == "STORED\r\n");
  CHECK(cluster.direct_get(1, hung) == "z");
}

TEST_CASE("a hung backend reached on a new connection fails within the request timeout",
          "[memcache][failures]") {
  // A stopped memcached still completes TCP handshakes (the kernel does that), so connecting
  // succeeds at once and only the request timeout can end the wait — not the connect timeout,
  // which is much longer here.
  ClusterOptions options;
  options.timeout_ms = kTimeoutMs;
  options.pool_keys = {"connect_timeout: 4000"};
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(1, "fresh-");
  const std::string live = keys[0][0], hung = keys[1][0];

  cluster.server(1).process().signal(SIGSTOP);
  ContinueOnExit resume{cluster.server(1)};
  // A client on a worker that has not talked to the server yet: each worker connects lazily,
  // so a fresh cachegate is needed to be sure of that.
  testing::CachegateServer fresh(
      testing::cluster_config(options, {cluster.server(0).port(), cluster.server(1).port()}));
  TextClient c("127.0.0.1", fresh.port());
  auto r = timed_call(c, "get " + hung + "\r\n", "get");
  CHECK(is_server_error(r.reply));
  CHECK(r.ms >= kTimeoutMs - 50);
  CHECK(r.ms < kTimeoutMs + kSlackMs);
  // After that reset, the next request connects again: the same bound holds.
  auto again = timed_call(c, "set " + hung + " 0 0 1\r\nx\r\n");
  CHECK(is_server_error(again.reply));
  CHECK(again.ms < kTimeoutMs + kSlackMs);
  CHECK(c.call("get " + live + "\r\n", "get") == "END\r\n");
}

TEST_CASE("with auto_eject_hosts a dead server's keys move to the survivor and back",
          "[memcache][failures][eject]") {
  ClusterOptions options;
  options.workers = 1;
  options.pool_keys = {"auto_eject_hosts: true", "server_failure_limit: 1",
                       "server_retry_timeout: 1000"};
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(3, "ej-");
  auto c = cluster.client();
  const std::string moving = keys[1][0], staying = keys[0][0];
  REQUIRE(c->call("set " + staying + " 0 0 4\r\nstay\r\n") == "STORED\r\n");
  REQUIRE(c->call("set " + moving + " 0 0 3\r\nold\r\n") == "STORED\r\n");

  cluster.server(1).kill();
  const auto killed = Clock::now();

  // The failure that ejects the server is reported; within a few requests writes succeed on
  // the survivor.
  int failures = 0;
  bool stored = false;
  for (int i = 0; i < 10 && !stored; ++i) {
    auto reply = c->call("set " + moving + " 0 0 3\r\nnew\r\n");
    if (reply == "STORED\r\n") {
      stored = true;
    } else {
      CHECK(is_server_error(reply));
      ++failures;
    }
  }
  REQUIRE(stored);
  CHECK(failures <= 2);
  CHECK(cluster.direct_get(0, moving) == "new");
  CHECK(c->call("get " + moving + " " + staying + "\r\n", "get") ==
        value_item(moving, "new") + value_item(staying, "stay") + "END\r\n");
  for (const auto& k : keys[1])
    CHECK(c->call("set " + k + " 0 0 1\r\ns\r\n") == "STORED\r\n");
  for (const auto& k : keys[1])
    CHECK(cluster.direct_get(0, k) == "s");
  auto stats = c->call("stats\r\n", "get").value_or("");
  CHECK(stats.find("STAT cachegate_servers_ejected 1\r\n") != std::string::npos);

  // Restarted, and after server_retry_timeout its keys return to it.
  cluster.server(1).restart();
  const bool back = testing::eventually(
      [&] {
        if (c->call("set " + moving + " 0 0 4\r\nhome\r\n") != "STORED\r\n") return false;
        return cluster.direct_get(1, moving) == std::optional<std::string>("home");
      },
      milliseconds(4000));
  CHECK(back);
  const long after_ms =
      static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - killed).count());
  CHECK(after_ms >= 1000 - 50);  // not before the retry timeout
  CHECK(c->call("get " + moving + "\r\n", "get") == value_item(moving, "home") + "END\r\n");
  CHECK(c->call("get " + staying + "\r\n", "get") == value_item(staying, "stay") + "END\r\n");
  for (const auto& k : keys[1])
    CHECK(c->call("set " + k + " 0 0 1\r\nh\r\n") == "STORED\r\n");
  for (const auto& k : keys[1])
    CHECK(cluster.direct_get(1, k) == "h");
}

TEST_CASE("with every server ejected, requests fail at once and recover after restarts",
          "[memcache][failures][eject]") {
  ClusterOptions options;
  options.workers = 1;
  options.pool_keys = {"auto_eject_hosts: true", "server_failure_limit: 1",
                       "server_retry_timeout: 1000"};
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(1, "all-");
  auto c = cluster.client();
  cluster.server(0).kill();
  cluster.server(1).kill();
  // A few requests eject both; after that nothing is tried and every kind of request gets an
  // error at once, the connection staying in step.
  for (int i = 0; i < 6; ++i)
    CHECK(is_server_error(c->call("get " + keys[i % 2][0] + "\r\n", "get")));
  for (const std::string& req :
       {"get " + keys[0][0] + "\r\n", "get " + keys[0][0] + " " + keys[1][0] + "\r\n",
        "set " + keys[1][0] + " 0 0 1\r\nx\r\n", "mg " + keys[0][0] + " v\r\n",
        "delete " + keys[1][0] + "\r\n", std::string("flush_all\r\n")}) {
    INFO(req);
    auto r = timed_call(*c, req, "get");
    CHECK(is_server_error(r.reply));
    CHECK(r.ms < kTimeoutMs);
  }
  c->send("set " + keys[0][0] + " 0 0 1 noreply\r\nx\r\nmg " + keys[0][0] + " v q\r\nmn\r\n");
  CHECK(is_server_error(c->read_reply("line")));
  CHECK(c->read_reply("line") == "MN\r\n");

  cluster.server(0).restart();
  cluster.server(1).restart();
  // Recovered once both servers have rejoined (each after its own retry timeout; while only one
  // is back, it takes every key): each key is stored on its own server again.
  CHECK(testing::eventually(
      [&] {
        return c->call("set " + keys[0][0] + " 0 0 1\r\na\r\n") == "STORED\r\n" &&
               c->call("set " + keys[1][0] + " 0 0 1\r\nb\r\n") == "STORED\r\n" &&
               cluster.direct_get(0, keys[0][0]) == "a" && cluster.direct_get(1, keys[1][0]) == "b";
      },
      milliseconds(4000)));
}

TEST_CASE("a backend that answers and closes at once is reconnected for the next request",
          "[memcache][failures]") {
  ClusterOptions options;
  options.workers = 1;
  options.timeout_ms = 5000;  // the stops below must not look like a slow server
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(1, "fin-");
  const std::string k = keys[1][0];
  auto c = cluster.client();
  REQUIRE(c->call("set " + k + " 0 0 3\r\nold\r\n") == "STORED\r\n");

  // Arrange for the server's reply and its end of stream to reach cachegate together: the
  // request waits in a stopped server, cachegate is stopped, the server answers and dies, and
  // only then does cachegate run again.
  cluster.server(1).process().signal(SIGSTOP);
  c->send("get " + k + "\r\n");
  std::this_thread::sleep_for(milliseconds(100));
  cluster.proxy().process().signal(SIGSTOP);
  cluster.server(1).process().signal(SIGCONT);
  std::this_thread::sleep_for(milliseconds(100));
  cluster.server(1).kill();
  cluster.server(1).restart();
  cluster.proxy().process().signal(SIGCONT);

  CHECK(c->read_reply("get").value_or("<no reply>") == value_item(k, "old") + "END\r\n");
  // The old connection is closed and the server is back: the very next request must work.
  CHECK(c->call("set " + k + " 0 0 3\r\nnew\r\n").value_or("<no reply>") == "STORED\r\n");
  CHECK(cluster.direct_get(1, k) == "new");
}

// memcached's own count of open client connections.
uint64_t server_connections(MemcacheCluster& cluster, size_t s) {
  auto d = cluster.direct(s);
  auto reply = d->call("stats\r\n", "get").value_or("");
  const std::string needle = "STAT curr_connections ";
  const size_t p = reply.find(needle);
  REQUIRE(p != std::string::npos);
  // Less the connection asking.
  return std::stoull(reply.substr(p + needle.size())) - 1;
}

TEST_CASE("server_connections opens that many connections per worker and server",
          "[memcache][failures][connections]") {
  ClusterOptions options;
  options.workers = 1;
  options.pool_keys = {"server_connections: 4"};
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(5, "sc-");

  // Eight clients, each pipelining requests over both shards.
  std::vector<std::unique_ptr<TextClient>> clients;
  for (int i = 0; i < 8; ++i)
    clients.push_back(cluster.client());
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < clients.size(); ++i) {
      std::string req;
      for (size_t s = 0; s < 2; ++s)
        for (const auto& k : keys[s])
          req +=
              "set " + k + "-" + std::to_string(i) + " 0 0 1\r\n" + std::to_string(round) + "\r\n";
      req += "get";
      for (size_t s = 0; s < 2; ++s)
        for (const auto& k : keys[s])
          req += " " + k + "-" + std::to_string(i);
      clients[i]->send(req + "\r\n");
    }
    for (size_t i = 0; i < clients.size(); ++i) {
      for (int n = 0; n < 10; ++n)
        CHECK(clients[i]->read_line() == "STORED");
      std::string expected;
      for (size_t s = 0; s < 2; ++s)
        for (const auto& k : keys[s])
          expected += value_item(k + "-" + std::to_string(i), std::to_string(round));
      CHECK(clients[i]->read_reply("get") == expected + "END\r\n");
    }
  }
  // (Eventually: memcached notices the direct connections of earlier checks closing a little
  // later.)
  for (size_t s = 0; s < 2; ++s)
    CHECK(testing::eventually([&] { return server_connections(cluster, s) == 4; },
                              milliseconds(2000)));
  auto stats = clients[0]->call("stats servers\r\n", "get").value_or("");
  for (size_t s = 0; s < 2; ++s) {
    const std::string line =
        "STAT cache:127.0.0.1:" + std::to_string(cluster.server(s).port()) + ":connections 4\r\n";
    CHECK(stats.find(line) != std::string::npos);
  }
}

TEST_CASE("preconnect opens backend connections before any request",
          "[memcache][failures][connections]") {
  const bool preconnect = GENERATE(true, false);
  ClusterOptions options;
  options.workers = 2;
  options.pool_keys = {std::string("preconnect: ") + (preconnect ? "true" : "false"),
                       "server_connections: 2"};
  MemcacheCluster cluster(options);
  if (preconnect) {
    // Two workers, two connections each, to every server.
    CHECK(testing::eventually(
        [&] { return server_connections(cluster, 0) == 4 && server_connections(cluster, 1) == 4; },
        milliseconds(3000)));
  } else {
    std::this_thread::sleep_for(milliseconds(300));
    CHECK(server_connections(cluster, 0) == 0);
    CHECK(server_connections(cluster, 1) == 0);
  }
  const auto keys = cluster.keys_per_server(2, "pc-");
  auto c = cluster.client();
  for (size_t s = 0; s < 2; ++s) {
    CHECK(c->call("set " + keys[s][0] + " 0 0 2\r\npc\r\n") == "STORED\r\n");
    CHECK(cluster.direct_get(s, keys[s][0]) == "pc");
  }
}

TEST_CASE("a server that is down when cachegate starts fails its keys while the others serve",
          "[memcache][failures]") {
  const bool preconnect = GENERATE(true, false);
  testing::MemcachedServer up;
  // Nothing listens on the second server's port.
  const uint16_t down_port = testing::free_port();
  ClusterOptions options;
  options.pool_keys = {std::string("preconnect: ") + (preconnect ? "true" : "false")};
  testing::CachegateServer proxy(testing::cluster_config(options, {up.port(), down_port}));
  TextClient c("127.0.0.1", proxy.port());
  TextClient direct("127.0.0.1", up.port());

  // Keys on the live server are stored; keys on the dead one fail, quickly.
  size_t stored = 0, failed = 0;
  for (int i = 0; i < 40; ++i) {
    const std::string k = std::to_string(i) + "-down";
    auto reply = timed_call(c, "set " + k + " 0 0 1\r\nd\r\n");
    CHECK(reply.ms < kTimeoutMs + kSlackMs);
    if (reply.reply == "STORED\r\n") {
      ++stored;
      CHECK(direct.call("get " + k + "\r\n", "get") == value_item(k, "d") + "END\r\n");
      CHECK(c.call("get " + k + "\r\n", "get") == value_item(k, "d") + "END\r\n");
    } else {
      CHECK(is_server_error(reply.reply));
      CHECK(is_server_error(c.call("get " + k + "\r\n", "get")));
      CHECK(direct.call("get " + k + "\r\n", "get") == "END\r\n");
      ++failed;
    }
  }
  CHECK(stored > 5);
  CHECK(failed > 5);
  up.process().signal(SIGKILL);  // no need to wait for a clean exit
}

}  // namespace
}  // namespace cachegate
