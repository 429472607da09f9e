// Route rules in front of real servers, for both protocols: a listener names a route table; its
// rules replicate (all-sync, quorum, all-async), fail over, shadow and warm up across pools of
// one server each. What each pool holds is checked on the servers themselves.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/text_client.h"

namespace cachegate {
namespace {

using namespace std::chrono_literals;
using testing::CachegateServer;
using testing::MemcachedServer;
using testing::RedisServer;
using testing::resp_bulk;
using testing::RespClient;
using testing::TextClient;

// `pools` pools of one server each (p0, p1, …) of one protocol, a pool `dead` whose server
// never answers (nothing listens on its port), and cachegate with a listener `front` (and a
// second one, `side`) on the route table `main` whose rules are `rules` (YAML list items).
class Fleet {
 public:
  Fleet(const std::string& protocol, size_t pools, const std::string& rules,
        int pool_timeout_ms = 1000)
      : redis_(protocol == "redis") {
    for (size_t i = 0; i < pools; ++i) {
      if (redis_) {
        redis_servers_.push_back(std::make_unique<RedisServer>());
      } else {
        mc_servers_.push_back(std::make_unique<MemcachedServer>());
      }
    }
    std::string y = "workers: 1\nlisteners:\n";
    y += "  - {name: front, listen: \"127.0.0.1:{port}\", protocol: " + protocol +
         ", route: main}\n";
    y += "  - {name: side, listen: \"127.0.0.1:{port1}\", protocol: " + protocol +
         ", route: main}\n";
    y += "pools:\n";
    for (size_t i = 0; i < pools; ++i) {
      y += "  p" + std::to_string(i) + ": {protocol: " + protocol +
           ", timeout: " + std::to_string(pool_timeout_ms) +
           ", server_retry_timeout: 60000, allow_flush: true, servers: [\"127.0.0.1:" +
           std::to_string(port(i)) + ":1\"]}\n";
    }
    y += "  dead: {protocol: " + protocol +
         ", timeout: 300, servers: [\"127.0.0.1:" + std::to_string(testing::free_port()) +
         ":1\"]}\n";
    y += "routes:\n  main:\n" + rules;
    config_ = y;
    proxy_ = std::make_unique<CachegateServer>(y);
    REQUIRE(testing::wait_for_port("127.0.0.1", proxy_->port(1), 5000ms));
  }
  ~Fleet() {
    proxy_.reset();
    for (auto& m : mc_servers_)
      m->process().signal(SIGKILL);
  }

  uint16_t front_port() const { return proxy_->port(0); }
  uint16_t port(size_t pool) const {
    return redis_ ? redis_servers_[pool]->port() : mc_servers_[pool]->port();
  }
  // Stops pool `pool`'s server (SIGSTOP: connections are accepted, nothing is answered), or
  // lets it go on.
  void pause(size_t pool, bool paused) {
    auto& process = redis_ ? redis_servers_[pool]->process() : mc_servers_[pool]->process();
    process.signal(paused ? SIGSTOP : SIGCONT);
  }
  void kill(size_t pool) {
    if (redis_) {
      redis_servers_[pool]->kill();
    } else {
      mc_servers_[pool]->kill();
    }
  }

  // Through cachegate's `front` listener (or `side`), one connection per call.
  std::string set(const std::string& key, const std::string& value, size_t listener = 0) {
    if (redis_) return RespClient(proxy_->port(listener)).call({"SET", key, value});
    TextClient c("127.0.0.1", proxy_->port(listener));
    return c.call("set " + key + " 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n")
        .value_or("<no reply>");
  }
  std::string get(const std::string& key, size_t listener = 0) {
    if (redis_) return RespClient(proxy_->port(listener)).call({"GET", key});
    TextClient c("127.0.0.1", proxy_->port(listener));
    return c.call("get " + key + "\r\n", "get").value_or("<no reply>");
  }
  // A multi-key read: memcached get, Redis MGET.
  std::string get_many(const std::vector<std::string>& keys) {
    if (redis_) {
      std::vector<std::string> args = {"MGET"};
      args.insert(args.end(), keys.begin(), keys.end());
      return RespClient(proxy_->port(0)).call(args);
    }
    std::string line = "get";
    for (const auto& k : keys)
      line += " " + k;
    TextClient c("127.0.0.1", proxy_->port(0));
    return c.call(line + "\r\n", "get").value_or("<no reply>");
  }

  // The replies the tests expect, in the fleet's protocol.
  std::string stored() const { return redis_ ? "+OK\r\n" : "STORED\r\n"; }
  std::string hit(const std::string& key, const std::string& value) const {
    if (redis_) return resp_bulk(value);
    return "VALUE " + key + " 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\nEND\r\n";
  }
  std::string miss() const { return redis_ ? "$-1\r\n" : "END\r\n"; }
  std::string many(const std::vector<std::pair<std::string, std::string>>& items) const {
    std::string out = redis_ ? "*" + std::to_string(items.size()) + "\r\n" : "";
    for (const auto& [k, v] : items) {
      if (redis_) {
        out += v.empty() ? "$-1\r\n" : resp_bulk(v);
      } else if (!v.empty()) {
        out += "VALUE " + k + " 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
      }
    }
    return redis_ ? out : out + "END\r\n";
  }
  bool is_error(const std::string& reply) const {
    return redis_ ? reply.rfind("-ERR cachegate: ", 0) == 0 : reply.rfind("SERVER_ERROR ", 0) == 0;
  }

  // Straight on pool `pool`'s server: the value of `key`, or nullopt.
  std::optional<std::string> held(size_t pool, const std::string& key) {
    if (redis_) {
      const std::string reply = redis_servers_[pool]->client()->call({"GET", key});
      if (reply == "$-1\r\n") return std::nullopt;
      return reply.substr(reply.find("\r\n") + 2, reply.size() - reply.find("\r\n") - 4);
    }
    TextClient c("127.0.0.1", port(pool));
    const std::string reply = c.call("mg " + key + " v\r\n", "meta").value_or("");
    if (reply.rfind("VA ", 0) != 0) return std::nullopt;
    const size_t body = reply.find("\r\n") + 2;
    return reply.substr(body, reply.size() - body - 2);
  }
  // The item's remaining TTL in seconds on pool `pool` (-1: none), or nullopt when absent.
  std::optional<long long> ttl(size_t pool, const std::string& key) {
    if (redis_) {
      const std::string reply = redis_servers_[pool]->client()->call({"TTL", key});
      const long long t = std::atoll(reply.c_str() + 1);
      if (t == -2) return std::nullopt;
      return t;
    }
    TextClient c("127.0.0.1", port(pool));
    const std::string reply = c.call("mg " + key + " t\r\n", "meta").value_or("");
    if (reply.rfind("HD t", 0) != 0) return std::nullopt;
    return std::atoll(reply.c_str() + 4);
  }
  void put(size_t pool, const std::string& key, const std::string& value, int ttl_seconds) {
    if (redis_) {
      REQUIRE(redis_servers_[pool]->client()->call(
                  {"SET", key, value, "EX", std::to_string(ttl_seconds)}) == "+OK\r\n");
      return;
    }
    TextClient c("127.0.0.1", port(pool));
    REQUIRE(c.call("set " + key + " 0 " + std::to_string(ttl_seconds) + " " +
                   std::to_string(value.size()) + "\r\n" + value + "\r\n") == "STORED\r\n");
  }

  // One of cachegate's route figures (memcached `stats`, Redis `INFO`, which reaches the servers
  // of the pool the catch-all rule names: that pool must be up).
  long long figure(const std::string& name) {
    std::string text;
    std::string field;
    if (redis_) {
      text = RespClient(proxy_->port(0)).call({"INFO"});
      field = name + ":";
    } else {
      TextClient c("127.0.0.1", proxy_->port(0));
      text = c.call("stats\r\n", "get").value_or("");
      field = "STAT cachegate_" + name + " ";
    }
    const size_t at = text.find(field);
    REQUIRE(at != std::string::npos);
    return std::atoll(text.c_str() + at + field.size());
  }
  const std::string& config() const { return config_; }

 private:
  bool redis_;
  std::vector<std::unique_ptr<MemcachedServer>> mc_servers_;
  std::vector<std::unique_ptr<RedisServer>> redis_servers_;
  std::unique_ptr<CachegateServer> proxy_;
  std::string config_;
};

// Polls `condition` for up to two seconds (background writes and fills land after the reply).
template <class F>
bool eventually(F condition) {
  for (int i = 0; i < 200; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

TEST_CASE("Replicated writes with one replica down: all-sync fails, quorum and all-async succeed",
          "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 3, R"(    - match: {prefix: "sync:"}
      replicate: {pools: [p0, p1, p2], mode: all-sync}
    - match: {prefix: "quorum:"}
      replicate: {pools: [p0, p1, p2], mode: quorum}
    - match: {prefix: "async:"}
      replicate: {pools: [p0, p1, p2], mode: all-async}
    - match: {}
      pool: p0
)");
  for (const std::string prefix : {"sync:", "quorum:", "async:"}) {
    REQUIRE(f.set(prefix + "before", "v0") == f.stored());
    for (size_t p = 0; p < 3; ++p)
      CHECK(eventually([&] { return f.held(p, prefix + "before") == "v0"; }));
  }
  f.kill(2);
  const long long failures_before = f.figure("route_replica_failures");

  // all-sync: the worst outcome, the dead replica's failure, is the client's answer.
  CHECK(f.is_error(f.set("sync:after", "v1")));
  CHECK(f.held(0, "sync:after") == "v1");  // the live replicas have it all the same
  // quorum: two of three agreed.
  CHECK(f.set("quorum:after", "v2") == f.stored());
  CHECK(f.held(0, "quorum:after") == "v2");
  CHECK(f.held(1, "quorum:after") == "v2");
  // all-async: the first pool answered; the loss is counted.
  CHECK(f.set("async:after", "v3") == f.stored());
  CHECK(f.held(0, "async:after") == "v3");
  CHECK(eventually([&] { return f.held(1, "async:after") == "v3"; }));
  CHECK(eventually([&] { return f.figure("route_replica_failures") >= failures_before + 3; }));
  // Reads of replicated keys still work (the first pool answers).
  CHECK(f.get("sync:before") == f.hit("sync:before", "v0"));
}

TEST_CASE("A replicated read fails over when its first replica dies, and on a miss if asked",
          "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 2, R"(    - match: {prefix: "mf:"}
      replicate: {pools: [p0, p1], miss_failover: true}
    - match: {prefix: "r:"}
      replicate: {pools: [p0, p1]}
    - match: {}
      pool: p1
)");
  // A miss on the first pool moves to the next only with miss_failover.
  f.put(1, "mf:only-second", "two", 100);
  f.put(1, "r:only-second", "two", 100);
  CHECK(f.get("mf:only-second") == f.hit("mf:only-second", "two"));
  CHECK(f.get("r:only-second") == f.miss());

  REQUIRE(f.set("r:k", "both") == f.stored());
  CHECK(f.held(1, "r:k") == "both");
  const long long failovers = f.figure("route_failovers");
  f.kill(0);
  CHECK(f.get("r:k") == f.hit("r:k", "both"));
  CHECK(f.get("r:k") == f.hit("r:k", "both"));
  CHECK(f.figure("route_failovers") >= failovers + 1);
}

TEST_CASE("A failover route writes to the next pool while the first is down", "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 2, R"(    - match: {}
      failover: [p0, p1]
)");
  REQUIRE(f.set("k1", "a") == f.stored());
  CHECK(f.held(0, "k1") == "a");
  CHECK(f.held(1, "k1") == std::nullopt);
  f.kill(0);
  CHECK(f.set("k2", "b") == f.stored());
  CHECK(f.held(1, "k2") == "b");
  CHECK(f.get("k2") == f.hit("k2", "b"));
}

TEST_CASE("A dead shadow pool changes nothing for the client, and a live one gets its fraction",
          "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 2, R"(    - match: {prefix: "half:"}
      pool: p0
      shadow: {pool: p1, fraction: 0.5}
    - match: {}
      pool: p0
      shadow: {pool: dead}
)");
  for (int i = 0; i < 40; ++i) {
    const std::string key = "k" + std::to_string(i);
    REQUIRE(f.set(key, "v" + std::to_string(i)) == f.stored());
    REQUIRE(f.get(key) == f.hit(key, "v" + std::to_string(i)));
  }
  CHECK(eventually(
      [&] { return f.figure("route_shadow_failures") + f.figure("route_shadow_dropped") >= 80; }));
  // Every second write is copied to the shadow, and nothing else reaches it.
  for (int i = 0; i < 20; ++i)
    REQUIRE(f.set("half:" + std::to_string(i), "h") == f.stored());
  int copied = 0;
  CHECK(eventually([&] {
    copied = 0;
    for (int i = 0; i < 20; ++i)
      copied += f.held(1, "half:" + std::to_string(i)) ? 1 : 0;
    return copied == 10;
  }));
  CHECK(copied == 10);
  CHECK(f.held(1, "k0") == std::nullopt);
}

TEST_CASE("Warm-up serves a cold miss from the warm pool and fills the cold pool", "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 2, R"(    - match: {}
      warmup: {cold: p0, warm: p1}
)");
  f.put(1, "w", "warm-value", 1000);
  CHECK(f.get("w") == f.hit("w", "warm-value"));
  CHECK(eventually([&] { return f.held(0, "w") == "warm-value"; }));
  // With the warm pool's remaining TTL.
  const auto ttl = f.ttl(0, "w");
  REQUIRE(ttl.has_value());
  CHECK(*ttl > 990);
  CHECK(*ttl <= 1000);
  CHECK(f.figure("route_warmup_fills") == 1);
  // Now a hit on the cold pool: no second fill.
  CHECK(f.get("w") == f.hit("w", "warm-value"));
  CHECK(f.figure("route_warmup_fills") == 1);
  // A multi-key read's keys go through the rule one by one, and a quiet meta read's silent
  // miss moves on too.
  f.put(1, "w2", "second", 1000);
  f.put(1, "w3", "third", 1000);
  CHECK(f.get_many({"w2", "nowhere"}) == f.many({{"w2", "second"}, {"nowhere", ""}}));
  if (protocol == "memcached") {
    TextClient c("127.0.0.1", f.front_port());
    c.send("mg w3 v q\r\nmn\r\n");
    CHECK(c.read_until("MN") == "VA 5\r\nthird\r\nMN\r\n");
  }
  CHECK(eventually([&] { return f.held(0, "w2") == "second"; }));
  // A miss on both is a miss; writes go to the cold pool.
  CHECK(f.get("nowhere") == f.miss());
  CHECK(f.set("n", "new") == f.stored());
  CHECK(f.held(0, "n") == "new");
  CHECK(f.held(1, "n") == std::nullopt);
}

TEST_CASE("The longest matching prefix wins, and op, listener and glob conditions select rules",
          "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 3, R"(    - match: {prefix: "a:"}
      pool: p0
    - match: {prefix: "a:b:"}
      pool: p1
    - match: {glob: "*:z"}
      pool: p1
    - match: {prefix: "side:", listener: side}
      pool: p1
    - match: {prefix: "ro:", ops: [read]}
      pool: p1
    - match: {}
      pool: p2
)");
  const std::vector<std::pair<std::string, size_t>> placements = {
      {"a:x", 0}, {"a:b:x", 1}, {"a:x:z", 0}, {"q:z", 1}, {"c", 2}, {"ro:k", 2}};
  for (const auto& [key, pool] : placements) {
    INFO(key);
    REQUIRE(f.set(key, "v-" + key) == f.stored());
    for (size_t p = 0; p < 3; ++p)
      CHECK(f.held(p, key).has_value() == (p == pool));
  }
  // Reads of ro: go to p1, where nothing was written.
  CHECK(f.get("ro:k") == f.miss());
  // The listener condition.
  REQUIRE(f.set("side:k", "s", 1) == f.stored());
  CHECK(f.held(1, "side:k") == "s");
  REQUIRE(f.set("side:j", "s", 0) == f.stored());
  CHECK(f.held(2, "side:j") == "s");

  SECTION("a multi-key read is split by route, then by server, and merged in order") {
    CHECK(f.get_many({"c", "a:b:x", "missing", "a:x"}) ==
          f.many({{"c", "v-c"}, {"a:b:x", "v-a:b:x"}, {"missing", ""}, {"a:x", "v-a:x"}}));
  }

  SECTION("cachegate route explains the choice without starting anything") {
    testing::TempDir dir;
    std::string text = f.config();
    for (const std::string p : {"{port}", "{port1}"})
      text.replace(text.find(p), p.size(), std::to_string(testing::free_port()));
    const std::string path = dir.write_file("routes.yaml", text);
    std::string out;
    REQUIRE(testing::run_command({CACHEGATE_BINARY, "route", "-c", path, "--listener", "front",
                                  "--op", protocol == "redis" ? "SET" : "set", "--key", "a:b:x"},
                                 &out) == 0);
    CHECK(out.find("route main, rule 2 (") != std::string::npos);
    CHECK(out.find("match {prefix: \"a:b:\"}") != std::string::npos);
    CHECK(out.find("pool p1: 127.0.0.1:" + std::to_string(f.port(1)) + ":1") != std::string::npos);
    REQUIRE(testing::run_command({CACHEGATE_BINARY, "route", "-c", path, "--listener", "front",
                                  "--op", "read", "--key", "ro:1"},
                                 &out) == 0);
    CHECK(out.find("rule 5") != std::string::npos);
    CHECK(testing::run_command({CACHEGATE_BINARY, "route", "-c", path, "--listener", "nope", "--op",
                                "read", "--key", "k"},
                               &out) == 2);
    CHECK(out.find("no listener named \"nope\"") != std::string::npos);
  }
}

}  // namespace
}  // namespace cachegate

namespace cachegate {
namespace {

TEST_CASE("Rewritten keys reach the servers rewritten and never leak into replies", "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 2, R"(    - match: {prefix: "tmp:"}
      pool: p1
      rewrite: {strip_prefix: "tmp:", add_prefix: "t/"}
    - match: {}
      pool: p0
)");
  REQUIRE(f.set("tmp:k", "v1") == f.stored());
  CHECK(f.held(1, "t/k") == "v1");
  CHECK(f.held(1, "tmp:k") == std::nullopt);
  CHECK(f.get("tmp:k") == f.hit("tmp:k", "v1"));
  REQUIRE(f.set("plain", "v2") == f.stored());
  // A multi-key read across the rewritten rule and a plain one.
  CHECK(f.get_many({"tmp:k", "plain", "tmp:none"}) ==
        f.many({{"tmp:k", "v1"}, {"plain", "v2"}, {"tmp:none", ""}}));
}

TEST_CASE("memcached meta replies name the client's key under a rewrite", "[routes]") {
  Fleet f("memcached", 2, R"(    - match: {prefix: "tmp:"}
      pool: p1
      rewrite: {strip_prefix: "tmp:", add_prefix: "t/"}
    - match: {}
      pool: p0
)");
  TextClient c("127.0.0.1", f.front_port());
  CHECK(c.call("ms tmp:m 2 k T0\r\nhi\r\n", "meta") == "HD ktmp:m\r\n");
  CHECK(c.call("mg tmp:m k v\r\n", "meta") == "VA 2 ktmp:m\r\nhi\r\n");
  CHECK(c.call("mg tmp:nothing k v\r\n", "meta") == "EN ktmp:nothing\r\n");
  CHECK(c.call("me tmp:m\r\n", "line").value_or("").rfind("ME tmp:m exp=", 0) == 0);
  CHECK(f.held(1, "t/m") == "hi");
  // The rewritten key must still fit memcached's 250 bytes.
  const std::string longest = "tmp:" + std::string(246, 'x');
  CHECK(c.call("set " + longest + " 0 0 1\r\n1\r\n") == "STORED\r\n");  // t/ + 246 = 248
  CHECK(c.call("get " + longest + "\r\n", "get") == "VALUE " + longest + " 0 1\r\n1\r\nEND\r\n");
}

TEST_CASE("Redis replies that name keys name the client's under a rewrite", "[routes]") {
  Fleet f("redis", 2, R"(    - match: {prefix: "tmp:"}
      pool: p1
      rewrite: {strip_prefix: "tmp:", add_prefix: "t/"}
    - match: {}
      pool: p0
)");
  RespClient c(f.front_port());
  CHECK(c.call({"RPUSH", "tmp:{l}a", "x"}) == ":1\r\n");
  CHECK(c.call({"LMPOP", "2", "tmp:{l}b", "tmp:{l}a", "LEFT"}) ==
        "*2\r\n" + resp_bulk("tmp:{l}a") + testing::resp_array_of_bulks({"x"}));
  CHECK(c.call({"XADD", "tmp:s", "1-1", "f", "v"}) == resp_bulk("1-1"));
  CHECK(c.call({"XREAD", "STREAMS", "tmp:s", "0"}) == "*1\r\n*2\r\n" + resp_bulk("tmp:s") +
                                                          "*1\r\n*2\r\n" + resp_bulk("1-1") +
                                                          testing::resp_array_of_bulks({"f", "v"}));
  CHECK(c.call({"EXISTS", "tmp:s"}) == ":1\r\n");
  CHECK(c.call({"RANDOMKEY"}) == "$-1\r\n");  // the catch-all does not rewrite
  CHECK(RespClient(f.port(1)).call({"EXISTS", "t/s", "tmp:s"}) == ":1\r\n");
}

TEST_CASE("ttl.max caps the expiry of writes", "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 1, R"(    - match: {}
      pool: p0
      ttl: {max: 100}
)");
  REQUIRE(f.set("forever", "v") == f.stored());
  const auto ttl = f.ttl(0, "forever");
  REQUIRE(ttl.has_value());
  CHECK(*ttl > 90);
  CHECK(*ttl <= 100);
}

TEST_CASE("A rule's timeout replaces the pool's", "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  // Only reads take the short timeout: the write before them, on a connection still being set
  // up, may take longer than 100 ms on a busy machine.
  Fleet f(protocol, 1, R"(    - match: {prefix: "fast:", ops: [read]}
      pool: p0
      timeout: 100
    - match: {}
      pool: p0
)",
          20000);
  REQUIRE(f.set("fast:k", "v") == f.stored());
  f.pause(0, true);
  const auto start = std::chrono::steady_clock::now();
  const std::string reply = f.get("fast:k");
  const auto waited = std::chrono::steady_clock::now() - start;
  f.pause(0, false);
  CHECK(f.is_error(reply));
  CHECK(reply.find("timeout") != std::string::npos);
  // Far below the pool's 20 s: the rule's 100 ms decided.
  CHECK(waited < 10s);
  CHECK(waited >= 100ms);
  CHECK(eventually([&] { return f.get("fast:k") == f.hit("fast:k", "v"); }));
}

TEST_CASE("KEYS and SCAN under a rewrite list the client's names of the rule's keys only",
          "[routes]") {
  Fleet f("redis", 1, R"(    - match: {}
      pool: p0
      rewrite: {strip_prefix: "app:", add_prefix: "a*/"}
)");
  RespClient c(f.front_port());
  for (const std::string key : {"app:x", "app:y", "z"})
    REQUIRE(c.call({"SET", key, "v"}) == "+OK\r\n");
  // Stored as a*/x, a*/y and a*/z; a key outside the rule's prefix is never listed.
  RespClient direct(f.port(0));
  REQUIRE(direct.call({"SET", "aX/outside", "v"}) == "+OK\r\n");
  CHECK(direct.call({"EXISTS", "a*/x", "a*/y", "a*/z"}) == ":3\r\n");
  auto sorted_keys = [](std::string reply) {
    std::vector<std::string> keys;
    for (size_t at = reply.find("\r\n$"); at != std::string::npos;
         at = reply.find("\r\n$", at + 1)) {
      const size_t body = reply.find("\r\n", at + 2) + 2;
      keys.push_back(reply.substr(body, reply.find("\r\n", body) - body));
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  };
  CHECK(sorted_keys(c.call({"KEYS", "*"})) == std::vector<std::string>{"app:x", "app:y", "app:z"});
  CHECK(sorted_keys(c.call({"KEYS", "app:?"})) ==
        std::vector<std::string>{"app:x", "app:y", "app:z"});
  const std::string scan = c.call({"SCAN", "0", "COUNT", "100"});
  REQUIRE(scan.rfind("*2\r\n$1\r\n0\r\n", 0) == 0);
  CHECK(sorted_keys(scan.substr(11)) == std::vector<std::string>{"app:x", "app:y", "app:z"});
  CHECK(c.call({"GET", "app:z"}) == resp_bulk("v"));
  CHECK(c.call({"RANDOMKEY"}) ==
        "-ERR RANDOMKEY is not supported through a rule that rewrites keys: it could return a key "
        "the rule does not cover\r\n");
}

TEST_CASE("A flush through a replicated route empties every replica", "[routes]") {
  const std::string protocol = GENERATE("memcached", "redis");
  INFO(protocol);
  Fleet f(protocol, 3, R"(    - match: {}
      replicate: {pools: [p0, p1]}
      shadow: {pool: p2}
)");
  REQUIRE(f.set("k", "v") == f.stored());
  CHECK(eventually([&] { return f.held(2, "k") == "v"; }));  // the shadow's copy
  if (protocol == "redis") {
    CHECK(RespClient(f.front_port()).call({"FLUSHALL"}) == "+OK\r\n");
  } else {
    TextClient c("127.0.0.1", f.front_port());
    CHECK(c.call("flush_all\r\n") == "OK\r\n");
  }
  CHECK(f.held(0, "k") == std::nullopt);
  CHECK(f.held(1, "k") == std::nullopt);
  CHECK(f.held(2, "k") == "v");  // a shadow pool is not flushed
}

}  // namespace
}  // namespace cachegate
