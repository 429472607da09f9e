// Faults around cachegate, and what its clients see during each: a memcached killed and restarted
// under a running load, backends that accept connections and never answer, answer garbage or
// close mid-reply, backends slowed by a relay, clients that stall in the middle of a request,
// garbage on TLS listeners, and Redis requests announcing more than any bound allows. Each test
// checks the exact reply the client gets, that the healthy shards go on serving meanwhile, and
// that cachegate is still running and answering afterwards.
//
// Misbehaving backends are test-owned (tests/support/fault_servers.h): where their keys live is
// learnt from what they received, real servers' keys from the servers themselves.

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fault_servers.h"
#include "tests/support/front_proxy.h"
#include "tests/support/memcache_cluster.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"
#include "tests/support/text_client.h"
#include "tests/support/tls_material.h"

namespace cachegate {
namespace {

using testing::CachegateServer;
using testing::ClusterOptions;
using testing::eventually;
using testing::MemcacheCluster;
using testing::MemcachedServer;
using testing::printable;
using testing::RedisCluster;
using testing::RedisClusterOptions;
using testing::RedisServer;
using testing::resp_bulk;
using testing::resp_command;
using testing::RespClient;
using testing::ScriptedPeer;
using testing::ScriptedServer;
using testing::TextClient;
using testing::value_item;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kTimeoutMs = 400;
// Room for a loaded two-core machine on top of a timeout.
constexpr int kSlackMs = 1500;
// The longest a server that failed twice in a row is skipped before it is tried again
// (backends/server.h): what recovery after a fault may take, on top of the slack.
constexpr int kBackoffMaxMs = 1000;

// The exact lines cachegate answers for a backend that failed a request.
const std::string kMcTimeout = "SERVER_ERROR backend timeout\r\n";
const std::string kMcClosed = "SERVER_ERROR backend connection closed\r\n";
const std::string kMcConnect = "SERVER_ERROR backend connection failed\r\n";
const std::string kMcUnavailable = "SERVER_ERROR backend unavailable\r\n";
const std::string kMcInvalid = "SERVER_ERROR backend sent an invalid reply\r\n";
const std::string kRedisTimeout = "-ERR cachegate: backend timeout\r\n";
const std::string kRedisClosed = "-ERR cachegate: backend connection closed\r\n";
const std::string kRedisUnavailable = "-ERR cachegate: backend unavailable\r\n";
const std::string kRedisInvalid = "-ERR cachegate: backend sent an invalid reply\r\n";

long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
}

bool one_of(const std::optional<std::string>& reply, std::initializer_list<std::string> allowed) {
  if (!reply) return false;
  for (const auto& a : allowed)
    if (*reply == a) return true;
  return false;
}

// cachegate is still running and answers a request it needs no backend for.
bool memcache_proxy_alive(CachegateServer& proxy) {
  if (!proxy.process().running()) return false;
  TextClient c("127.0.0.1", proxy.port());
  const auto reply = c.call("version\r\n");
  return reply && reply->rfind("VERSION ", 0) == 0;
}
bool redis_proxy_alive(CachegateServer& proxy, size_t listener = 0) {
  if (!proxy.process().running()) return false;
  RespClient c(proxy.port(listener));
  return c.call({"PING"}) == "+PONG\r\n";
}

// --- fake backends -------------------------------------------------------------------------------

// What a fake backend does with the requests it reads: answers them from a store of its own, by
// default; or reads them and never answers; or answers the next one with given bytes (closing
// the connection after them, when asked) and the later ones properly again.
class FakeBackend {
 public:
  virtual ~FakeBackend() = default;

  bool holds(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return store_.count(key) != 0;
  }
  void answer() {
    std::lock_guard<std::mutex> lock(mutex_);
    silent_ = false;
  }
  void go_silent() {
    std::lock_guard<std::mutex> lock(mutex_);
    silent_ = true;
  }
  void misreply_once(std::string bytes, bool then_close) {
    std::lock_guard<std::mutex> lock(mutex_);
    misreply_ = std::move(bytes);
    close_after_misreply_ = then_close;
  }
  uint16_t port() const { return server_->port(); }
  size_t connections() const { return server_->connections(); }

 protected:
  // Derived classes start the server once their members exist.
  void start() {
    server_ = std::make_unique<ScriptedServer>([this](ScriptedPeer& peer, size_t) {
      while (auto request = read_request(peer)) {
        std::string reply;
        bool close = false;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (silent_) continue;
          if (misreply_) {
            reply = std::move(*misreply_);
            misreply_.reset();
            close = close_after_misreply_;
          } else {
            reply = answer_locked(*request);
          }
        }
        if (!peer.write(reply) || close) return;
      }
    });
  }
  // The server's threads call the overrides: stopped before a derived object is gone.
  void stop() { server_.reset(); }

  // One request's bytes (or its arguments, joined by '\n'); nullopt when the connection ended.
  virtual std::optional<std::string> read_request(ScriptedPeer& peer) = 0;
  // The proper reply to it, with mutex_ held.
  virtual std::string answer_locked(const std::string& request) = 0;

  std::mutex mutex_;
  std::map<std::string, std::string> store_;

 private:
  bool silent_ = false;
  std::optional<std::string> misreply_;
  bool close_after_misreply_ = false;
  std::unique_ptr<ScriptedServer> server_;
};

// Speaks enough memcached for cachegate's set, get and delete.
class FakeMemcached final : public FakeBackend {
 public:
  FakeMemcached() { start(); }
  ~FakeMemcached() override { stop(); }

 private:
  std::optional<std::string> read_request(ScriptedPeer& peer) override {
    return peer.read_memcache_request();
  }
  std::string answer_locked(const std::string& request) override {
    const size_t line_end = request.find("\r\n");
    const auto fields = ScriptedPeer::split(request.substr(0, line_end));
    if (fields.empty()) return "ERROR\r\n";
    if (fields[0] == "set" && fields.size() >= 5) {
      const std::string data = request.substr(line_end + 2, request.size() - line_end - 4);
      store_[fields[1]] = value_item(fields[1], data, std::stoul(fields[2]));
      return "STORED\r\n";
    }
    if (fields[0] == "get") {
      std::string out;
      for (size_t i = 1; i < fields.size(); ++i) {
        auto it = store_.find(fields[i]);
        if (it != store_.end()) out += it->second;
      }
      return out + "END\r\n";
    }
    if (fields[0] == "delete" && fields.size() >= 2)
      return store_.erase(fields[1]) != 0 ? "DELETED\r\n" : "NOT_FOUND\r\n";
    return "ERROR\r\n";
  }
};

// Speaks enough Redis for SET, GET, MGET and PING.
class FakeRedis final : public FakeBackend {
 public:
  FakeRedis() { start(); }
  ~FakeRedis() override { stop(); }

 private:
  std::optional<std::string> read_request(ScriptedPeer& peer) override {
    auto args = peer.read_resp_request();
    if (!args) return std::nullopt;
    std::string joined;
    for (const auto& a : *args)
      joined += a + "\n";
    return joined;
  }
  std::string answer_locked(const std::string& request) override {
    std::vector<std::string> args;
    for (size_t pos = 0; pos < request.size();) {
      const size_t end = request.find('\n', pos);
      args.push_back(request.substr(pos, end - pos));
      pos = end + 1;
    }
    if (args.empty()) return "-ERR empty\r\n";
    if (args[0] == "SET" && args.size() == 3) {
      store_[args[1]] = args[2];
      return "+OK\r\n";
    }
    if (args[0] == "GET" && args.size() == 2) {
      auto it = store_.find(args[1]);
      return it == store_.end() ? "$-1\r\n" : resp_bulk(it->second);
    }
    if (args[0] == "MGET") {
      std::string out = "*" + std::to_string(args.size() - 1) + "\r\n";
      for (size_t i = 1; i < args.size(); ++i) {
        auto it = store_.find(args[i]);
        out += it == store_.end() ? "$-1\r\n" : resp_bulk(it->second);
      }
      return out;
    }
    if (args[0] == "PING") return "+PONG\r\n";
    return "-ERR unknown command '" + args[0] + "'\r\n";
  }
};

// Keys of a pool of one real server and one fake, as cachegate places them: `per_side` keys of
// each, learnt from the fake's store and from the real server directly. The number comes first:
// keys that differ only in their last bytes can crowd onto one server of a two-server ring.
struct Placement {
  std::vector<std::string> real, fake;
};

Placement place_memcache_keys(uint16_t proxy_port, MemcachedServer& real, FakeMemcached& fake,
                              size_t per_side, const std::string& prefix) {
  Placement out;
  TextClient c("127.0.0.1", proxy_port);
  TextClient direct("127.0.0.1", real.port());
  for (int i = 0; i < 1000 && (out.real.size() < per_side || out.fake.size() < per_side); ++i) {
    const std::string key = std::to_string(i) + prefix;
    REQUIRE(c.call("set " + key + " 0 0 1\r\np\r\n") == "STORED\r\n");
    if (fake.holds(key)) {
      out.fake.push_back(key);
    } else if (direct.call("get " + key + "\r\n", "get") == value_item(key, "p") + "END\r\n") {
      out.real.push_back(key);
    }
  }
  REQUIRE(out.real.size() >= per_side);
  REQUIRE(out.fake.size() >= per_side);
  return out;
}

Placement place_redis_keys(uint16_t proxy_port, RedisServer& real, FakeRedis& fake, size_t per_side,
                           const std::string& prefix) {
  Placement out;
  RespClient c(proxy_port);
  auto direct = real.client();
  for (int i = 0; i < 1000 && (out.real.size() < per_side || out.fake.size() < per_side); ++i) {
    const std::string key = std::to_string(i) + prefix;
    REQUIRE(c.call({"SET", key, "p"}) == "+OK\r\n");
    if (fake.holds(key)) {
      out.fake.push_back(key);
    } else if (direct->call({"EXISTS", key}) == ":1\r\n") {
      out.real.push_back(key);
    }
  }
  REQUIRE(out.real.size() >= per_side);
  REQUIRE(out.fake.size() >= per_side);
  return out;
}

// One memcached pool on `ports`, in that order, behind one worker (so that one backend
// connection per server carries every client's requests).
std::string memcache_pool_config(const std::vector<uint16_t>& ports, int timeout_ms) {
  ClusterOptions options;
  options.workers = 1;
  options.timeout_ms = timeout_ms;
  return testing::cluster_config(options, ports);
}

std::string redis_pool_config(const std::vector<uint16_t>& ports, int timeout_ms) {
  RedisClusterOptions options;
  options.workers = 1;
  options.timeout_ms = timeout_ms;
  return testing::redis_cluster_config(options, ports);
}

// --- a memcached killed and restarted under load -------------------------------------------------

TEST_CASE("memcached: a backend killed and restarted under a mixed load fails only its own keys",
          "[faults][memcache]") {
  // The Redis counterpart is redis_failures_test.cc's "a redis-server killed under a running
  // pipelined load", which restarts the server too.
  ClusterOptions options;
  options.timeout_ms = kTimeoutMs;
  MemcacheCluster cluster(options);
  constexpr int kThreads = 4;
  // A key of each server per thread, and one more for checks from outside the load.
  const auto keys = cluster.keys_per_server(kThreads + 1, "load-");
  const size_t victim = 1, survivor = 0;

  std::atomic<bool> stop{false}, killed{false};
  std::atomic<long> rounds{0}, victim_errors{0}, survivor_errors{0}, wrong{0}, slow{0};
  std::atomic<long long> last_victim_error_ns{0};
  std::mutex problem_mutex;
  std::string first_problem;
  auto note = [&](const std::string& problem) {
    std::lock_guard<std::mutex> lock(problem_mutex);
    if (first_problem.empty()) first_problem = problem;
  };
  auto victim_error = [&] {
    ++victim_errors;
    last_victim_error_ns = Clock::now().time_since_epoch().count();
  };
  const auto backend_error = [](const std::optional<std::string>& r) {
    return one_of(r, {kMcClosed, kMcConnect, kMcUnavailable, kMcTimeout});
  };

  // Each thread writes a value of its own to its key on each server, reads it back, and reads
  // both keys in one multi-get, all pipelined; every reply is checked against its request.
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      TextClient c("127.0.0.1", cluster.port(), milliseconds(10000));
      const std::string& live = keys[survivor][t];
      const std::string& dead = keys[victim][t];
      for (long round = 0; !stop; ++round) {
        const std::string value = std::to_string(t) + "-" + std::to_string(round);
        std::string requests;
        for (const auto* k : {&live, &dead})
          requests += "set " + *k + " 0 0 " + std::to_string(value.size()) + "\r\n" + value +
                      "\r\nget " + *k + "\r\n";
        requests += "get " + dead + " " + live + "\r\n";
        const auto start = Clock::now();
        c.send(requests);
        const auto live_set = c.read_reply("line");
        const auto live_get = c.read_reply("get");
        const auto dead_set = c.read_reply("line");
        const auto dead_get = c.read_reply("get");
        const auto both = c.read_reply("get");
        if (elapsed_ms(start) > kTimeoutMs + kSlackMs) ++slow;
        if (!both) {
          ++wrong;
          note("thread " + std::to_string(t) + ": replies missing");
          return;
        }
        if (live_set != "STORED\r\n" || live_get != value_item(live, value) + "END\r\n") {
          ++survivor_errors;
          note("survivor: " + live_set.value_or("-") + " / " + live_get.value_or("-"));
        }
        // The victim's key: stored and read back, or an error line for each failed request. A
        // set that failed may still have run; a get after it may meet the restarted, empty
        // server.
        const std::string dead_item = value_item(dead, value);
        bool dead_ok = dead_set == "STORED\r\n" && dead_get == dead_item + "END\r\n" &&
                       both == dead_item + value_item(live, value) + "END\r\n";
        if (!dead_ok && killed) {
          const bool set_ok = dead_set == "STORED\r\n" || backend_error(dead_set);
          const bool get_ok = dead_get == dead_item + "END\r\n" || backend_error(dead_get) ||
                              (dead_set != "STORED\r\n" && dead_get == "END\r\n");
          const bool both_ok = backend_error(both) ||
                               both == dead_item + value_item(live, value) + "END\r\n" ||
                               both == value_item(live, value) + "END\r\n";
          if (set_ok && get_ok && both_ok) {
            victim_error();
            dead_ok = true;
          }
        }
        if (!dead_ok) {
          ++wrong;
          note("victim: " + printable(dead_set.value_or("-")) + " / " +
               printable(dead_get.value_or("-")) + " / " + printable(both.value_or("-")));
        }
        ++rounds;
      }
    });
  }

  CHECK(eventually([&] { return rounds > 40; }, milliseconds(10000)));
  killed = true;
  cluster.server(victim).kill();
  const long at_kill = rounds;
  CHECK(eventually([&] { return rounds > at_kill + 40; }, milliseconds(10000)));
  const long errors_while_dead = victim_errors;
  // cachegate stays up, and a new client is served on the survivor meanwhile.
  CHECK(memcache_proxy_alive(cluster.proxy()));
  {
    const std::string& live = keys[survivor][kThreads];
    const std::string& dead = keys[victim][kThreads];
    auto fresh = cluster.client();
    CHECK(fresh->call("set " + live + " 0 0 5\r\nfresh\r\n") == "STORED\r\n");
    CHECK(fresh->call("get " + live + "\r\n", "get") == value_item(live, "fresh") + "END\r\n");
    CHECK(backend_error(fresh->call("get " + dead + "\r\n", "get")));
    CHECK(backend_error(fresh->call("get " + live + " " + dead + "\r\n", "get")));
  }

  cluster.server(victim).restart();
  const auto restarted = Clock::now();
  // Recovered once no round has failed for a while: the last failure is then the recovery time.
  const bool settled = eventually(
      [&] {
        const auto last = Clock::time_point(Clock::duration(last_victim_error_ns.load()));
        return Clock::now() - std::max(last, restarted) > milliseconds(1500);
      },
      milliseconds(15000));
  CHECK(settled);
  const long errors_settled = victim_errors;
  const long rounds_settled = rounds;
  CHECK(eventually([&] { return rounds > rounds_settled + 40; }, milliseconds(10000)));
  stop = true;
  for (auto& t : clients)
    t.join();

  const auto last = Clock::time_point(Clock::duration(last_victim_error_ns.load()));
  const long long recovery_ms =
      last > restarted ? std::chrono::duration_cast<milliseconds>(last - restarted).count() : 0;
  INFO(first_problem);
  INFO("victim errors " << victim_errors << ", recovered " << recovery_ms
                        << " ms after the restart");
  CHECK(wrong == 0);
  CHECK(survivor_errors == 0);
  CHECK(slow == 0);
  CHECK(errors_while_dead > 0);
  CHECK(victim_errors == errors_settled);
  CHECK(recovery_ms < kBackoffMaxMs + kSlackMs);
  CHECK(memcache_proxy_alive(cluster.proxy()));
  // The victim's keys live on the restarted server again.
  auto c = cluster.client();
  for (int t = 0; t < kThreads; ++t) {
    const std::string& k = keys[victim][t];
    CHECK(c->call("set " + k + " 0 0 4\r\nback\r\n") == "STORED\r\n");
    CHECK(cluster.direct_get(victim, k) == "back");
  }
}

// --- a backend that accepts and never answers ----------------------------------------------------

TEST_CASE("memcached: a backend that accepts connections and never answers fails in time",
          "[faults][memcache]") {
  MemcachedServer real;
  FakeMemcached fake;
  CachegateServer proxy(memcache_pool_config({real.port(), fake.port()}, kTimeoutMs));
  const auto keys = place_memcache_keys(proxy.port(), real, fake, 2, "silent-");
  const std::string live = keys.real[0], hung = keys.fake[0];
  auto c = std::make_unique<TextClient>("127.0.0.1", proxy.port());
  auto bystander = std::make_unique<TextClient>("127.0.0.1", proxy.port());

  fake.go_silent();
  // The connection is open: the request waits out the timeout, no less.
  const auto sent = Clock::now();
  c->send("get " + hung + "\r\n");
  // Meanwhile the other shard serves, reads and writes.
  CHECK(bystander->call("get " + live + "\r\n", "get") == value_item(live, "p") + "END\r\n");
  CHECK(bystander->call("set " + live + " 0 0 2\r\nv2\r\n") == "STORED\r\n");
  CHECK(c->read_reply("get") == kMcTimeout);
  const long long first_ms = elapsed_ms(sent);
  CHECK(first_ms >= kTimeoutMs - 50);
  CHECK(first_ms < kTimeoutMs + kSlackMs);

  // Later requests find a new connection that is just as silent (after one failure the server
  // is retried at once), then the server skipped while it backs off. Each reply is one error
  // line, and the connection stays in step for the next request.
  for (const std::string& request :
       {"get " + hung + "\r\n", "set " + hung + " 0 0 1\r\nx\r\n",
        "get " + live + " " + hung + "\r\n", "delete " + hung + "\r\n", "get " + hung + "\r\n"}) {
    INFO(request);
    const auto start = Clock::now();
    CHECK(one_of(c->call(request, "get"), {kMcTimeout, kMcUnavailable}));
    CHECK(elapsed_ms(start) < kTimeoutMs + kSlackMs);
    CHECK(c->call("get " + live + "\r\n", "get") == value_item(live, "v2") + "END\r\n");
  }
  CHECK(memcache_proxy_alive(proxy));

  // Answering again: used again within the backoff.
  fake.answer();
  const auto answering = Clock::now();
  CHECK(eventually(
      [&] { return c->call("get " + hung + "\r\n", "get") == value_item(hung, "p") + "END\r\n"; },
      milliseconds(kBackoffMaxMs + kSlackMs)));
  INFO("recovered after " << elapsed_ms(answering) << " ms");
  CHECK(c->call("get " + hung + " " + live + "\r\n", "get") ==
        value_item(hung, "p") + value_item(live, "v2") + "END\r\n");
}

TEST_CASE("redis: a backend that accepts connections and never answers fails in time",
          "[faults][redis]") {
  RedisServer real;
  FakeRedis fake;
  CachegateServer proxy(redis_pool_config({real.port(), fake.port()}, kTimeoutMs));
  const auto keys = place_redis_keys(proxy.port(), real, fake, 2, "silent-");
  const std::string live = keys.real[0], hung = keys.fake[0];
  RespClient c(proxy.port());
  RespClient bystander(proxy.port());

  fake.go_silent();
  const auto sent = Clock::now();
  c.send({"GET", hung});
  CHECK(bystander.call({"GET", live}) == resp_bulk("p"));
  CHECK(bystander.call({"SET", live, "v2"}) == "+OK\r\n");
  CHECK(c.read() == kRedisTimeout);
  const long long first_ms = elapsed_ms(sent);
  CHECK(first_ms >= kTimeoutMs - 50);
  CHECK(first_ms < kTimeoutMs + kSlackMs);

  for (const auto& request : std::vector<std::vector<std::string>>{
           {"GET", hung}, {"SET", hung, "x"}, {"MGET", live, hung}, {"GET", hung}}) {
    INFO(request[0]);
    const auto start = Clock::now();
    const std::string reply = c.call(request);
    CHECK(one_of(reply, {kRedisTimeout, kRedisUnavailable}));
    CHECK(elapsed_ms(start) < kTimeoutMs + kSlackMs);
    CHECK(c.call({"GET", live}) == resp_bulk("v2"));
  }
  CHECK(redis_proxy_alive(proxy));

  fake.answer();
  const auto answering = Clock::now();
  CHECK(eventually(
      [&] {
        return c.call({"GET", hung}) == resp_bulk("p");
      },
      milliseconds(kBackoffMaxMs + kSlackMs)));
  INFO("recovered after " << elapsed_ms(answering) << " ms");
  CHECK(c.call({"MGET", hung, live}) == "*2\r\n" + resp_bulk("p") + resp_bulk("v2"));
}

// --- garbage and replies cut short ---------------------------------------------------------------

struct Misreply {
  const char* what;
  std::string request;  // "get" or "set" of the fake's key
  std::string bytes;
  bool then_close;
  std::string expected;  // what the client gets
};

TEST_CASE("memcached: a backend that answers garbage or closes mid-reply fails that request only",
          "[faults][memcache]") {
  MemcachedServer real;
  FakeMemcached fake;
  CachegateServer proxy(memcache_pool_config({real.port(), fake.port()}, 2000));
  const auto keys = place_memcache_keys(proxy.port(), real, fake, 1, "garbage-");
  const std::string live = keys.real[0], bad = keys.fake[0];
  TextClient c("127.0.0.1", proxy.port());
  TextClient bystander("127.0.0.1", proxy.port());
  const std::string get = "get " + bad + "\r\n";
  const std::string set = "set " + bad + " 0 0 1\r\np\r\n";

  const std::vector<Misreply> cases = {
      {"an HTTP response to a get", get,
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", false,
       kMcInvalid},
      {"an HTTP response to a set", set,
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", false,
       kMcInvalid},
      {"a word no memcached says, to a set", set, "WHATEVER\r\n", false, kMcInvalid},
      {"binary junk", get, std::string("\x81\x00\x00\x05\xde\xad\xbe\xef\x00\xff\r\n", 12), false,
       kMcInvalid},
      {"a VALUE line with a length that is no number", get,
       "VALUE " + bad + " 0 abc\r\np\r\nEND\r\n", false, kMcInvalid},
      {"a VALUE line with a length past any bound", get,
       "VALUE " + bad + " 0 99999999999999999999\r\np\r\nEND\r\n", false, kMcInvalid},
      {"a data block longer than its VALUE line says", get,
       "VALUE " + bad + " 0 1\r\npppppp\r\nEND\r\n", false, kMcInvalid},
      {"half a VALUE block, then the end", get, "VALUE " + bad + " 0 100\r\nhalf of it", true,
       kMcClosed},
      {"half a line, then the end", set, "STOR", true, kMcClosed},
      {"a VALUE item without its END, then the end", get, value_item(bad, "p"), true, kMcClosed},
  };
  for (const auto& m : cases) {
    INFO(m.what);
    const size_t connections = fake.connections();
    fake.misreply_once(m.bytes, m.then_close);
    CHECK(c.call(m.request, m.request == set ? "line" : "get").value_or("<no reply>") ==
          m.expected);
    // The same connection goes on: the other shard at once, the bad one on a new connection.
    CHECK(c.call("get " + live + "\r\n", "get") == value_item(live, "p") + "END\r\n");
    CHECK(c.call(get, "get") == value_item(bad, "p") + "END\r\n");
    CHECK(fake.connections() == connections + 1);
    CHECK(bystander.call("get " + live + "\r\n", "get") == value_item(live, "p") + "END\r\n");
  }

  // Pipelined: garbage for the first request fails what was in flight with it; every other
  // reply is the right one, in order.
  fake.misreply_once("HTTP/1.1 400 Bad Request\r\n\r\n", false);
  std::string requests;
  for (int i = 0; i < 5; ++i)
    requests += get + "get " + live + "\r\n";
  c.send(requests);
  for (int i = 0; i < 5; ++i) {
    INFO("pair " << i);
    const auto first = c.read_reply("get");
    if (i == 0) {
      CHECK(first == kMcInvalid);
    } else {
      CHECK(one_of(first, {kMcInvalid, value_item(bad, "p") + "END\r\n"}));
    }
    CHECK(c.read_reply("get") == value_item(live, "p") + "END\r\n");
  }
  CHECK(c.call(get, "get") == value_item(bad, "p") + "END\r\n");
  CHECK(memcache_proxy_alive(proxy));
}

TEST_CASE("redis: a backend that answers garbage or closes mid-reply fails that request only",
          "[faults][redis]") {
  RedisServer real;
  FakeRedis fake;
  CachegateServer proxy(redis_pool_config({real.port(), fake.port()}, 2000));
  const auto keys = place_redis_keys(proxy.port(), real, fake, 1, "garbage-");
  const std::string live = keys.real[0], bad = keys.fake[0];
  RespClient c(proxy.port());
  RespClient bystander(proxy.port());

  const std::vector<std::pair<const char*, std::pair<std::string, bool>>> invalid = {
      {"an HTTP response", {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false}},
      {"binary junk", {std::string("\x81\x00\x00\x05\xde\xad\xbe\xef\x00\xff\r\n", 12), false}},
      {"a type byte RESP does not have", {"?5\r\n", false}},
      {"a bulk length that is no number", {"$abc\r\nabc\r\n", false}},
      {"a bulk longer than its length says", {"$1\r\npppp\r\n", false}},
      {"a negative array count", {"*-7\r\n", false}},
      {"an array count past any bound", {"*99999999999999999999\r\n", false}},
      {"a line without its CR", {"+OK\n", false}},
  };
  const std::vector<std::pair<const char*, std::pair<std::string, bool>>> cut = {
      {"half a bulk string, then the end", {"$10\r\nhalf", true}},
      {"half an array, then the end", {"*3\r\n$1\r\na\r\n", true}},
      {"half a line, then the end", {"+O", true}},
  };
  auto check_case = [&](const char* what, const std::string& bytes, bool then_close,
                        const std::string& expected) {
    INFO(what);
    const size_t connections = fake.connections();
    fake.misreply_once(bytes, then_close);
    CHECK(c.call({"GET", bad}) == expected);
    CHECK(c.call({"GET", live}) == resp_bulk("p"));
    CHECK(c.call({"GET", bad}) == resp_bulk("p"));
    CHECK(fake.connections() == connections + 1);
    CHECK(bystander.call({"GET", live}) == resp_bulk("p"));
  };
  for (const auto& [what, m] : invalid)
    check_case(what, m.first, m.second, kRedisInvalid);
  for (const auto& [what, m] : cut)
    check_case(what, m.first, m.second, kRedisClosed);

  fake.misreply_once("HTTP/1.1 400 Bad Request\r\n\r\n", false);
  std::string requests;
  for (int i = 0; i < 5; ++i)
    requests += resp_command({"GET", bad}) + resp_command({"GET", live});
  const auto replies = c.pipeline(requests, 10);
  REQUIRE(replies.size() == 10);
  CHECK(replies[0] == kRedisInvalid);
  for (size_t i = 0; i < 10; ++i) {
    INFO("reply " << i);
    if (i % 2 == 1) {
      CHECK(replies[i] == resp_bulk("p"));
    } else if (i > 0) {
      CHECK(one_of(replies[i], {kRedisInvalid, resp_bulk("p")}));
    }
  }
  CHECK(c.call({"GET", bad}) == resp_bulk("p"));
  CHECK(redis_proxy_alive(proxy));
}

// --- a slow backend ------------------------------------------------------------------------------

TEST_CASE("memcached: a slow backend's trickled replies arrive intact, and past the timeout fail",
          "[faults][memcache]") {
  constexpr int kSlowTimeoutMs = 2000;
  MemcachedServer slow_server, quick_server;
  testing::DelayRelay relay(slow_server.port());
  CachegateServer proxy(memcache_pool_config({relay.port(), quick_server.port()}, kSlowTimeoutMs));
  // Placement, from the servers themselves.
  std::string slow_key, quick_key;
  {
    TextClient c("127.0.0.1", proxy.port());
    TextClient direct("127.0.0.1", slow_server.port());
    for (int i = 0; i < 100 && (slow_key.empty() || quick_key.empty()); ++i) {
      const std::string k = std::to_string(i) + "-slow";
      REQUIRE(c.call("set " + k + " 0 0 1\r\nx\r\n") == "STORED\r\n");
      const bool on_slow = direct.call("get " + k + "\r\n", "get") != "END\r\n";
      (on_slow ? slow_key : quick_key) = k;
    }
    REQUIRE(!slow_key.empty());
    REQUIRE(!quick_key.empty());
  }
  const std::string value(16, 'v');
  TextClient c("127.0.0.1", proxy.port());
  TextClient bystander("127.0.0.1", proxy.port());
  REQUIRE(c.call("set " + slow_key + " 3 0 16\r\n" + value + "\r\n") == "STORED\r\n");
  REQUIRE(c.call("set " + quick_key + " 0 0 1\r\nq\r\n") == "STORED\r\n");

  // One byte every 3 ms: a reply of a few dozen bytes takes a few hundred milliseconds, the
  // pipeline below about half the timeout.
  relay.set_trickle(1, milliseconds(3));
  CHECK(c.call("get " + slow_key + "\r\n", "get") == value_item(slow_key, value, 3) + "END\r\n");
  std::string requests, expected;
  for (int i = 0; i < 2; ++i) {
    requests += "get " + slow_key + "\r\nget " + quick_key + "\r\n";
    expected += value_item(slow_key, value, 3) + "END\r\n" + value_item(quick_key, "q") + "END\r\n";
  }
  requests += "get " + quick_key + " " + slow_key + "\r\n";
  expected += value_item(quick_key, "q") + value_item(slow_key, value, 3) + "END\r\n";
  c.send(requests + "mn\r\n");
  CHECK(bystander.call("get " + quick_key + "\r\n", "get") ==
        value_item(quick_key, "q") + "END\r\n");
  CHECK(testing::first_difference(testing::read_through_mn(c), expected + "MN\r\n") == "");

  // Held back past the timeout: a timeout error, while the other shard serves.
  relay.set_trickle(0, milliseconds(0));
  relay.set_delay(milliseconds(kSlowTimeoutMs + 1500));
  const auto sent = Clock::now();
  c.send("get " + slow_key + "\r\n");
  CHECK(bystander.call("get " + quick_key + "\r\n", "get") ==
        value_item(quick_key, "q") + "END\r\n");
  CHECK(c.read_reply("get") == kMcTimeout);
  const long long ms = elapsed_ms(sent);
  CHECK(ms >= kSlowTimeoutMs - 50);
  CHECK(ms < kSlowTimeoutMs + kSlackMs);
  CHECK(c.call("get " + quick_key + "\r\n", "get") == value_item(quick_key, "q") + "END\r\n");

  // Fast again: the late reply on the old connection is never taken for a new request's.
  relay.set_delay(milliseconds(0));
  const auto fast = Clock::now();
  CHECK(eventually(
      [&] {
        return c.call("get " + slow_key + "\r\n", "get") ==
               value_item(slow_key, value, 3) + "END\r\n";
      },
      milliseconds(kBackoffMaxMs + kSlackMs)));
  INFO("recovered after " << elapsed_ms(fast) << " ms");
  for (int i = 0; i < 5; ++i) {
    CHECK(c.call("set " + slow_key + " 0 0 1\r\n" + std::to_string(i) + "\r\n") == "STORED\r\n");
    CHECK(c.call("get " + slow_key + "\r\n", "get") ==
          value_item(slow_key, std::to_string(i)) + "END\r\n");
  }
  CHECK(memcache_proxy_alive(proxy));
}

TEST_CASE("redis: a slow backend's trickled replies arrive intact, and past the timeout fail",
          "[faults][redis]") {
  constexpr int kSlowTimeoutMs = 2000;
  RedisServer slow_server, quick_server;
  testing::DelayRelay relay(slow_server.port());
  CachegateServer proxy(redis_pool_config({relay.port(), quick_server.port()}, kSlowTimeoutMs));
  std::string slow_key, quick_key;
  {
    RespClient c(proxy.port());
    auto direct = slow_server.client();
    for (int i = 0; i < 100 && (slow_key.empty() || quick_key.empty()); ++i) {
      const std::string k = std::to_string(i) + "-slow";
      REQUIRE(c.call({"SET", k, "x"}) == "+OK\r\n");
      (direct->call({"EXISTS", k}) == ":1\r\n" ? slow_key : quick_key) = k;
    }
    REQUIRE(!slow_key.empty());
    REQUIRE(!quick_key.empty());
  }
  const std::string value(16, 'v');
  RespClient c(proxy.port());
  RespClient bystander(proxy.port());
  REQUIRE(c.call({"SET", slow_key, value}) == "+OK\r\n");
  REQUIRE(c.call({"SET", quick_key, "q"}) == "+OK\r\n");

  relay.set_trickle(1, milliseconds(3));
  CHECK(c.call({"GET", slow_key}) == resp_bulk(value));
  std::string requests;
  for (int i = 0; i < 2; ++i)
    requests += resp_command({"GET", slow_key}) + resp_command({"GET", quick_key});
  requests += resp_command({"MGET", quick_key, slow_key});
  c.send_raw(requests);
  CHECK(bystander.call({"GET", quick_key}) == resp_bulk("q"));
  for (int i = 0; i < 2; ++i) {
    CHECK(c.read() == resp_bulk(value));
    CHECK(c.read() == resp_bulk("q"));
  }
  CHECK(c.read() == "*2\r\n" + resp_bulk("q") + resp_bulk(value));

  relay.set_trickle(0, milliseconds(0));
  relay.set_delay(milliseconds(kSlowTimeoutMs + 1500));
  const auto sent = Clock::now();
  c.send({"GET", slow_key});
  CHECK(bystander.call({"GET", quick_key}) == resp_bulk("q"));
  CHECK(c.read() == kRedisTimeout);
  const long long ms = elapsed_ms(sent);
  CHECK(ms >= kSlowTimeoutMs - 50);
  CHECK(ms < kSlowTimeoutMs + kSlackMs);
  CHECK(c.call({"GET", quick_key}) == resp_bulk("q"));

  relay.set_delay(milliseconds(0));
  const auto fast = Clock::now();
  CHECK(eventually(
      [&] {
        return c.call({"GET", slow_key}) == resp_bulk(value);
      },
      milliseconds(kBackoffMaxMs + kSlackMs)));
  INFO("recovered after " << elapsed_ms(fast) << " ms");
  for (int i = 0; i < 5; ++i) {
    CHECK(c.call({"SET", slow_key, std::to_string(i)}) == "+OK\r\n");
    CHECK(c.call({"GET", slow_key}) == resp_bulk(std::to_string(i)));
  }
  CHECK(redis_proxy_alive(proxy));
}

// --- clients stalled mid-request -----------------------------------------------------------------

TEST_CASE("memcached: a client stalled mid-request costs others nothing and is answered later",
          "[faults][memcache]") {
  // One worker: the stalled clients and the others share one event loop.
  ClusterOptions options;
  options.workers = 1;
  MemcacheCluster cluster(options);
  auto other = cluster.client();
  REQUIRE(other->call("set stall-get 0 0 1\r\ng\r\n") == "STORED\r\n");

  auto half_line = cluster.client();
  half_line->send("get stall-g");
  auto half_block = cluster.client();
  half_block->send("set stall-set 5 0 10\r\nhello");
  auto line_only = cluster.client();
  line_only->send("set stall-line 0 0 3\r\n");

  for (int i = 0; i < 20; ++i) {
    const std::string v = std::to_string(i);
    REQUIRE(other->call("set stall-other 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n") ==
            "STORED\r\n");
    REQUIRE(other->call("get stall-other stall-get\r\n", "get") ==
            value_item("stall-other", v) + value_item("stall-get", "g") + "END\r\n");
  }
  // Nothing was answered for the halves, nor were they closed.
  CHECK_FALSE(half_line->peer_closed(milliseconds(200)));
  CHECK_FALSE(half_block->peer_closed(milliseconds(0)));
  CHECK_FALSE(line_only->peer_closed(milliseconds(0)));

  half_line->send("et\r\n");
  CHECK(half_line->read_reply("get") == value_item("stall-get", "g") + "END\r\n");
  half_block->send("world\r\n");
  CHECK(half_block->read_reply("line") == "STORED\r\n");
  line_only->send("abc\r\n");
  CHECK(line_only->read_reply("line") == "STORED\r\n");
  CHECK(other->call("get stall-set stall-line\r\n", "get") ==
        value_item("stall-set", "helloworld", 5) + value_item("stall-line", "abc") + "END\r\n");
  CHECK(memcache_proxy_alive(cluster.proxy()));
}

TEST_CASE("redis: a client stalled mid-request costs others nothing and is answered later",
          "[faults][redis]") {
  RedisCluster cluster(testing::redis_shards(2));
  RespClient other(cluster.port());
  REQUIRE(other.call({"SET", "stall-get", "g"}) == "+OK\r\n");

  RespClient half_header(cluster.port());
  half_header.send_raw("*2\r\n$3\r\nGE");
  RespClient half_bulk(cluster.port());
  half_bulk.send_raw("*3\r\n$3\r\nSET\r\n$9\r\nstall-set\r\n$10\r\nhello");
  RespClient half_inline(cluster.port());
  half_inline.send_raw("GET stall-g");

  for (int i = 0; i < 20; ++i) {
    const std::string v = std::to_string(i);
    REQUIRE(other.call({"SET", "stall-other", v}) == "+OK\r\n");
    REQUIRE(other.call({"MGET", "stall-other", "stall-get"}) ==
            "*2\r\n" + resp_bulk(v) + resp_bulk("g"));
  }
  CHECK_FALSE(half_header.peer_closed(milliseconds(200)));
  CHECK_FALSE(half_bulk.peer_closed(milliseconds(0)));
  CHECK_FALSE(half_inline.peer_closed(milliseconds(0)));

  half_header.send_raw("T\r\n$9\r\nstall-get\r\n");
  CHECK(half_header.read() == resp_bulk("g"));
  half_bulk.send_raw("world\r\n");
  CHECK(half_bulk.read() == "+OK\r\n");
  half_inline.send_raw("et\r\n");
  CHECK(half_inline.read() == resp_bulk("g"));
  CHECK(other.call({"GET", "stall-set"}) == resp_bulk("helloworld"));
  CHECK(redis_proxy_alive(cluster.proxy()));
}

TEST_CASE("200 clients stalled mid-request hold memory in proportion to what they sent",
          "[faults][memcache][redis]") {
  // One worker; the first listener is memcached's, the second Redis's.
  testing::FrontProxy proxy("  - {name: r, listen: \"127.0.0.1:{port1}\", pool: red}\n", "", 1);
  const uint16_t mc_port = proxy.port(0), redis_port = proxy.port(1);
  const pid_t pid = proxy.server().process().pid();
  // Warm up: one complete request of each kind, so that buffers and connections exist.
  TextClient mc("127.0.0.1", mc_port);
  RespClient redis(redis_port);
  const std::string big(256 * 1024, 'b');
  REQUIRE(mc.call("set stall-warm 0 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\n") ==
          "STORED\r\n");
  REQUIRE(redis.call({"SET", "stall-warm", big}) == "+OK\r\n");
  const long long rss_before = testing::proc_status_kib(pid, "VmRSS");
  const long long size_before = testing::proc_status_kib(pid, "VmSize");
  REQUIRE(rss_before > 0);

  // Each stalled client sends a few KiB of a request that announces up to 60 MB.
  const std::string chunk(8 * 1024, 'c');
  size_t sent = 0;
  std::vector<std::unique_ptr<TextClient>> stalled;
  for (int i = 0; i < 200; ++i) {
    const std::string n = std::to_string(i);
    std::string bytes;
    switch (i % 4) {
      case 0:  // a multi-get line without its end
        bytes = "get";
        while (bytes.size() < 4096)
          bytes += " stall-key-" + n;
        break;
      case 1:  // a storage command of 1,000,000 bytes, 8 KiB of them sent
        bytes = "set stall-" + n + " 0 0 1000000\r\n" + chunk;
        break;
      case 2:  // a Redis SET of 60 MB, 8 KiB of it sent
        bytes = "*3\r\n$3\r\nSET\r\n$" + std::to_string(6 + n.size()) + "\r\nstall-" + n +
                "\r\n$60000000\r\n" + chunk;
        break;
      case 3:  // half a bulk length line
        bytes = "*2\r\n$3\r\nGET\r\n$";
        break;
    }
    stalled.push_back(std::make_unique<TextClient>("127.0.0.1", i % 4 < 2 ? mc_port : redis_port));
    stalled.back()->send(bytes);
    sent += bytes.size();
  }
  // Time for cachegate to read everything sent; complete requests of others are served.
  std::this_thread::sleep_for(milliseconds(300));
  CHECK(mc.call("get stall-warm\r\n", "get") == value_item("stall-warm", big) + "END\r\n");
  CHECK(redis.call({"GET", "stall-warm"}) == resp_bulk(big));
  CHECK(redis.call({"SET", "stall-small", "s"}) == "+OK\r\n");
  const long long rss_after = testing::proc_status_kib(pid, "VmRSS");
  const long long size_after = testing::proc_status_kib(pid, "VmSize");
  INFO("sent " << sent / 1024 << " KiB; RSS " << rss_before << " -> " << rss_after
               << " KiB; VmSize " << size_before << " -> " << size_after << " KiB");
  // What was sent, buffers rounded up, and room for allocator slack: nowhere near the 3 GB the
  // requests announce.
  CHECK(rss_after - rss_before < 64 * 1024);
  CHECK(size_after - size_before < 512 * 1024);
  for (const auto& s : stalled)
    CHECK_FALSE(s->peer_closed(milliseconds(0)));

  // A stalled storage command finishes as any other.
  stalled[1]->send(std::string(1000000 - chunk.size(), 'd') + "\r\n");
  CHECK(stalled[1]->read_reply("line") == "STORED\r\n");
  stalled.clear();
  CHECK(proxy.server().process().running());
  CHECK(redis.call({"GET", "stall-small"}) == resp_bulk("s"));
  CHECK(mc.call("version\r\n").value_or("").rfind("VERSION ", 0) == 0);
}

// --- garbage on a TLS listener -------------------------------------------------------------------

// The first bytes a TLS client sends: a complete ClientHello record, made by OpenSSL itself.
std::string client_hello() {
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(context);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);  // wants to read the ServerHello: everything it wrote is in `out`
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  std::string hello(data, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(context);
  return hello;
}

TEST_CASE("TLS listeners close garbage connections and go on serving TLS clients",
          "[faults][tls]") {
  // Existing tests cover a plain Redis PING on a TLS port, a stalled record header, and a
  // handshake byte followed by text; here are the rest, many at once, on both protocols.
  const testing::TlsMaterial m;
  auto tls_yaml = [&](const std::string& name, const std::string& pool, int port) {
    return "  - name: " + name + "\n    listen: \"127.0.0.1:{port" + std::to_string(port) +
           "}\"\n    pool: " + pool + "\n    tls:\n      cert: \"" + m.server.cert +
           "\"\n      key: \"" + m.server.key +
           "\"\n      mode: required\n      handshake_timeout: 500\n";
  };
  testing::FrontProxy proxy(tls_yaml("rt", "red", 1) + tls_yaml("mt", "cache", 2), "", 1);
  const uint16_t redis_port = proxy.port(1), mc_port = proxy.port(2);
  testing::TlsClientOptions tls;
  tls.ca_file = m.ca.cert;
  const auto before = proxy.stats();

  // Good TLS clients on both listeners, working all through.
  std::atomic<bool> stop{false};
  std::atomic<long> served{0}, failed{0};
  std::thread good([&] {
    try {
      RespClient r(redis_port, tls);
      TextClient c("127.0.0.1", mc_port, tls);
      for (int i = 0; !stop; ++i) {
        const std::string v = std::to_string(i);
        const bool ok =
            r.call({"SET", "tls-fault", v}) == "+OK\r\n" &&
            r.call({"GET", "tls-fault"}) == resp_bulk(v) &&
            c.call("set tls-fault 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n") ==
                "STORED\r\n" &&
            c.call("get tls-fault\r\n", "get") == value_item("tls-fault", v) + "END\r\n";
        ++(ok ? served : failed);
        std::this_thread::sleep_for(milliseconds(5));
      }
    } catch (const std::exception&) {
      ++failed;
    }
  });

  const std::string hello = client_hello();
  REQUIRE(hello.size() > 100);
  REQUIRE(hello[0] == '\x16');
  std::mt19937 random(20240611);
  std::string junk(512, '\0');
  for (auto& ch : junk)
    ch = static_cast<char>(random() % 256);
  junk[0] = '\x01';  // not a handshake record

  struct Garbage {
    const char* what;
    std::string bytes;
    bool then_close;
    bool waits_for_timeout;
  };
  const std::vector<Garbage> kinds = {
      {"random bytes", junk, false, false},
      {"an HTTP request", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", false, false},
      {"a plain memcached command", "get k\r\nset k 0 0 1\r\nx\r\n", false, false},
      {"a plain RESP command", resp_command({"SET", "k", "v"}), false, false},
      {"a handshake record of garbage", std::string("\x16\x03\x01\x00\x08", 5) + "garbage!", false,
       false},
      {"half a ClientHello, then nothing", hello.substr(0, hello.size() / 2), false, true},
      {"half a ClientHello, then the end", hello.substr(0, hello.size() / 2), true, false},
      {"nothing at all", "", false, true},
  };
  size_t expected_failures = 0, expected_timeouts = 0, redis_failures = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<TextClient>> clients;
    for (const auto& g : kinds) {
      for (const uint16_t port : {redis_port, mc_port}) {
        clients.push_back(std::make_unique<TextClient>("127.0.0.1", port, milliseconds(5000)));
        if (!g.bytes.empty()) clients.back()->send(g.bytes);
        if (g.then_close) clients.back()->close();
        ++expected_failures;
        if (port == redis_port) ++redis_failures;
        if (g.waits_for_timeout) ++expected_timeouts;
      }
    }
    const auto start = Clock::now();
    for (size_t i = 0; i < clients.size(); ++i) {
      const auto& g = kinds[i / 2];
      if (g.then_close) continue;
      INFO(g.what << (i % 2 == 0 ? " on the Redis listener" : " on the memcached listener"));
      // Closed, without a reply in either protocol.
      CHECK(clients[i]->peer_closed(milliseconds(500 + kSlackMs)));
      CHECK_FALSE(clients[i]->read_line());
    }
    CHECK(elapsed_ms(start) < 500 + kSlackMs);
  }
  // The stalled ones were given their handshake timeout, not less.
  {
    const auto start = Clock::now();
    TextClient silent("127.0.0.1", redis_port, milliseconds(5000));
    CHECK(silent.peer_closed(milliseconds(500 + kSlackMs)));
    CHECK(elapsed_ms(start) >= 450);
    ++expected_failures;
    ++expected_timeouts;
    ++redis_failures;
  }
  CHECK(eventually([&] { return served > 5; }, milliseconds(5000)));
  stop = true;
  good.join();
  CHECK(failed == 0);
  CHECK(served > 0);

  // Each garbage connection counts once, as a failed handshake; the stalled ones as timeouts too.
  // (Eventually: the ones that closed first may be seen a moment after the others.)
  // A listener's figures appear with its first connection.
  std::map<std::string, uint64_t> after;
  auto delta = [&](const std::string& name) {
    const auto was = before.find(name);
    return after[name] - (was == before.end() ? 0 : was->second);
  };
  eventually(
      [&] {
        after = proxy.stats();
        return delta("cachegate_tls_handshake_failures") >= expected_failures;
      },
      milliseconds(3000));
  CHECK(delta("cachegate_tls_handshake_failures") == expected_failures);
  CHECK(delta("cachegate_tls_handshake_timeouts") == expected_timeouts);
  CHECK(delta("cachegate_listener_rt_tls_handshake_failures") == redis_failures);
  CHECK(delta("cachegate_listener_mt_tls_handshake_failures") ==
        expected_failures - redis_failures);
  // Still serving TLS.
  RespClient after_client(redis_port, tls);
  CHECK(after_client.call({"PING"}) == "+PONG\r\n");
  CHECK(proxy.server().process().running());
}

// --- oversized and malformed requests ------------------------------------------------------------

// Everything a peer sends back to `bytes` until it has been quiet for `quiet` or closed
// ("<closed>" is appended then).
std::string exchange(uint16_t port, const std::string& bytes,
                     milliseconds quiet = milliseconds(500)) {
  TextClient c("127.0.0.1", port, quiet);
  c.send(bytes);
  std::string out;
  while (auto byte = c.read_exact(1))
    out += *byte;
  if (c.peer_closed(milliseconds(0))) out += "<closed>";
  return out;
}

TEST_CASE("redis: requests announcing more than any bound get redis's protocol errors",
          "[faults][redis]") {
  // redis_protocol_test.cc covers bad numbers, "*3000000" (past the element bound, as is
  // "*99999999"), "$600000000" and long inline lines.
  RedisServer direct;
  RedisCluster cluster(testing::redis_shards(2));
  const pid_t pid = cluster.proxy().process().pid();
  const long long size_before = testing::proc_status_kib(pid, "VmSize");

  // The same bytes to redis-server and to cachegate: the same answer, then the same close.
  const std::vector<std::string> inputs = {
      "*2147483648\r\n",
      "*-5\r\nPING\r\n",
      "*1\r\n$1000000000000000000\r\n",
      "*1\r\n$99999999999999999999\r\n",
      "*1\r\n*1\r\n$4\r\nPING\r\n",
      "*2\r\n$3\r\nGET\r\n:5\r\n",
      "*1\r\n%1\r\n",
      "*1\r\n\x01\r\n",
  };
  for (const auto& in : inputs) {
    INFO(printable(in));
    const std::string want = exchange(direct.port(), in);
    CHECK(printable(exchange(cluster.port(), in)) == printable(want));
  }
  CHECK(exchange(cluster.port(), "*2147483648\r\n") ==
        "-ERR Protocol error: invalid multibulk length\r\n<closed>");
  CHECK(exchange(cluster.port(), "*1\r\n$1000000000000000000\r\n") ==
        "-ERR Protocol error: invalid bulk length\r\n<closed>");

  // A key of 1 MiB, and a request of 100,001 elements, work as they do on redis-server.
  const std::string key(1024 * 1024, 'k');
  RespClient c(cluster.port(), milliseconds(20000));
  CHECK(c.call({"SET", key, "big key"}) == "+OK\r\n");
  CHECK(c.call({"GET", key}) == resp_bulk("big key"));
  CHECK(c.call({"STRLEN", key}) == ":7\r\n");
  CHECK(cluster.holders(key).size() == 1);
  CHECK(c.call({"DEL", key}) == ":1\r\n");
  REQUIRE(c.call({"SET", "many-7", "seven"}) == "+OK\r\n");
  std::vector<std::string> mget = {"MGET"};
  std::string expected = "*100000\r\n";
  for (int i = 0; i < 100000; ++i) {
    mget.push_back("many-" + std::to_string(i));
    expected += i == 7 ? resp_bulk("seven") : "$-1\r\n";
  }
  const auto replies = c.pipeline(resp_command(mget), 1);
  REQUIRE(replies.size() == 1);
  CHECK(testing::first_difference(replies[0], expected) == "");

  // Nothing of the announced sizes was allocated, and cachegate still serves.
  const long long size_after = testing::proc_status_kib(pid, "VmSize");
  INFO("VmSize " << size_before << " -> " << size_after << " KiB");
  CHECK(size_after - size_before < 512 * 1024);
  CHECK(redis_proxy_alive(cluster.proxy()));
}

TEST_CASE("redis: a bulk past request_size_max is a protocol error before it is read",
          "[faults][redis]") {
  RedisServer server;
  CachegateServer proxy(testing::single_redis_config(server.port(), "timeout: 1000, ",
                                                     "limits:\n  request_size_max: 1m\n"));
  const pid_t pid = proxy.process().pid();
  const long long size_before = testing::proc_status_kib(pid, "VmSize");
  // One bulk over the bound, and bulks that fit one by one but not together.
  CHECK(exchange(proxy.port(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n") ==
        "-ERR Protocol error: invalid bulk length\r\n<closed>");
  CHECK(exchange(proxy.port(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048570\r\n") ==
        "-ERR Protocol error: request too large\r\n<closed>");
  // Within the bound: served.
  RespClient c(proxy.port());
  const std::string value(1000 * 1000, 'v');
  CHECK(c.call({"SET", "k", value}) == "+OK\r\n");
  CHECK(c.call({"STRLEN", "k"}) == ":1000000\r\n");
  // Many clients announcing what the bound allows, and sending none of it.
  std::vector<std::unique_ptr<TextClient>> stalled;
  for (int i = 0; i < 200; ++i) {
    stalled.push_back(std::make_unique<TextClient>("127.0.0.1", proxy.port()));
    stalled.back()->send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048000\r\nv");
  }
  CHECK(c.call({"PING"}) == "+PONG\r\n");
  const long long size_after = testing::proc_status_kib(pid, "VmSize");
  INFO("VmSize " << size_before << " -> " << size_after << " KiB");
  CHECK(size_after - size_before < 96 * 1024);
  stalled.clear();
  CHECK(redis_proxy_alive(proxy));
}

TEST_CASE("memcached: data lengths past any bound are answered as memcached answers them",
          "[faults][memcache]") {
  // memcache_errors_test.cc covers long keys and lines, values over the item limit and
  // malformed lengths; here are lengths no value could have.
  ClusterOptions options;
  options.servers = 1;
  MemcacheCluster cluster(options);
  const pid_t pid = cluster.proxy().process().pid();
  const long long size_before = testing::proc_status_kib(pid, "VmSize");
  // The same bytes to memcached and to cachegate: the same answer.
  const std::vector<std::string> inputs = {
      "set k 0 0 99999999999999999999\r\nx\r\nmn\r\n",
      "ms k 4294967296\r\nx\r\nmn\r\n",
      "incr k 99999999999999999999999\r\nmn\r\n",
  };
  for (const auto& in : inputs) {
    INFO(printable(in));
    const std::string want = exchange(cluster.server(0).port(), in);
    CHECK(printable(exchange(cluster.port(), in)) == printable(want));
  }
  // memcached reads a length of 2^32 as 0 (it truncates to 32 bits), takes "x\r" for the data
  // block and answers "CLIENT_ERROR bad data chunk"; cachegate refuses the line, which is no
  // length memcached can store, and reads on from the line after it. Both then answer the "x"
  // line with ERROR, so the stream is in step either way.
  CHECK(printable(exchange(cluster.port(), "set k 0 0 4294967296\r\nx\r\nmn\r\n")) ==
        printable("CLIENT_ERROR bad command line format\r\nERROR\r\nMN\r\n"));
  // A length under 2^31 but over the item limit: the block is swallowed, as memcached does,
  // "mn" with it. memcached sends its error only once it has swallowed the whole 2 GB;
  // cachegate answers at once.
  CHECK(exchange(cluster.port(), "set k 0 0 2000000000\r\nx\r\nmn\r\n") ==
        "SERVER_ERROR object too large for cache\r\n");
  const long long size_after = testing::proc_status_kib(pid, "VmSize");
  INFO("VmSize " << size_before << " -> " << size_after << " KiB");
  CHECK(size_after - size_before < 512 * 1024);
  CHECK(memcache_proxy_alive(cluster.proxy()));
}

}  // namespace
}  // namespace cachegate
