// Deep pipelines: 10,000 mixed commands in one write, across three servers, whose replies must
// come back in request order and byte for byte as one redis-server answers the same stream, and
// several clients pipelining at once over the worker's shared server connections.

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/redis_cluster.h"

namespace cachegate {
namespace {

using testing::printable;
using testing::RedisCluster;
using testing::RedisServer;
using testing::resp_command;
using testing::RespClient;

struct Pipeline {
  std::string bytes;
  size_t count = 0;
};

// `count` commands drawn from a fixed seed: strings, counters, multi-key reads and writes across
// servers, hashes, lists, sets, sorted sets, expiry, local commands and errors. None depends on
// how keys are spread or on the clock, so one redis-server is the oracle for the answers.
Pipeline mixed_pipeline(size_t count, uint32_t seed, const std::string& prefix) {
  std::mt19937 random(seed);
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<uint32_t>(n)); };
  auto key = [&](const char* kind, int n) { return prefix + kind + ":" + std::to_string(pick(n)); };
  Pipeline p;
  for (size_t i = 0; i < count; ++i) {
    std::vector<std::string> c;
    switch (pick(20)) {
      case 0:
      case 1:
        c = {"SET", key("s", 300), "value-" + std::to_string(i)};
        break;
      case 2:
      case 3:
        c = {"GET", key("s", 300)};
        break;
      case 4:
        c = {"INCR", key("n", 40)};
        break;
      case 5:
        c = {"INCRBY", key("n", 40), std::to_string(pick(1000) - 500)};
        break;
      case 6: {
        c = {"MGET"};
        for (int k = pick(12) + 1; k > 0; --k)
          c.push_back(key("s", 300));
        break;
      }
      case 7: {
        c = {"MSET"};
        for (int k = pick(6) + 1; k > 0; --k) {
          c.push_back(key("s", 300));
          c.push_back("m" + std::to_string(i));
        }
        break;
      }
      case 8: {
        c = {pick(2) ? "DEL" : "UNLINK"};
        for (int k = pick(4) + 1; k > 0; --k)
          c.push_back(key("s", 300));
        break;
      }
      case 9: {
        c = {pick(2) ? "EXISTS" : "TOUCH"};
        for (int k = pick(5) + 1; k > 0; --k)
          c.push_back(key("s", 300));
        break;
      }
      case 10:
        c = {"HSET", key("h", 30), "f" + std::to_string(pick(8)), std::to_string(i)};
        break;
      case 11:
        c = {pick(2) ? "HGETALL" : "HLEN", key("h", 30)};
        break;
      case 12:
        c = {"LPUSH", key("l", 30), std::to_string(i)};
        break;
      case 13:
        c = {"LRANGE", key("l", 30), "0", std::to_string(pick(5))};
        break;
      case 14:
        c = {"SADD", key("set", 30), std::to_string(pick(20))};
        break;
      case 15:
        c = {"ZADD", key("z", 30), std::to_string(pick(100)) + ".5", "m" + std::to_string(pick(9))};
        break;
      case 16:
        c = {pick(2) ? "ZRANGE" : "ZREVRANGE", key("z", 30), "0", "-1", "WITHSCORES"};
        break;
      case 17:
        c = {"EXPIRE", key("s", 300), "100000"};
        break;
      case 18:
        c = pick(2) ? std::vector<std::string>{"PING"}
                    : std::vector<std::string>{"ECHO", "echo-" + std::to_string(i)};
        break;
      default: {
        // Errors: a wrong type, wrong arity, an unknown command, a bad integer.
        switch (pick(4)) {
          case 0:
            c = {"LPUSH", key("h", 30), "x"};
            break;
          case 1:
            c = {"GET"};
            break;
          case 2:
            c = {"NOSUCHCMD", "a"};
            break;
          default:
            c = {"INCRBY", key("n", 40), "notanumber"};
            break;
        }
        break;
      }
    }
    p.bytes += resp_command(c);
    ++p.count;
  }
  return p;
}

TEST_CASE("10,000 mixed commands in one write come back in order, as redis answers them",
          "[redis][pipeline]") {
  RedisCluster cluster;
  RedisServer oracle;
  const Pipeline p = mixed_pipeline(10000, 7, "pl:");
  REQUIRE(p.count == 10000);

  RespClient direct(oracle.port());
  const auto want = direct.pipeline(p.bytes, p.count);
  REQUIRE(want.size() == p.count);
  auto c = cluster.client();
  const auto got = c->pipeline(p.bytes, p.count);
  REQUIRE(got.size() == p.count);
  size_t mismatches = 0;
  for (size_t i = 0; i < p.count && mismatches < 5; ++i) {
    if (got[i] == want[i]) continue;
    ++mismatches;
    FAIL_CHECK("reply " << i << ": got [" << printable(got[i]) << "] wanted [" << printable(want[i])
                        << "]");
  }
  CHECK(mismatches == 0);

  // The keys really are spread, and the pool holds exactly what the oracle holds.
  const auto oracle_size = direct.call({"DBSIZE"});
  CHECK(c->call({"DBSIZE"}) == oracle_size);
  for (size_t s = 0; s < cluster.size(); ++s)
    CHECK(cluster.direct(s)->call({"DBSIZE"}) != ":0\r\n");
  // The connection is still in step after the pipeline.
  CHECK(c->call({"ECHO", "after"}) == testing::resp_bulk("after"));
}

TEST_CASE("several clients pipelining at once each get their own replies in order",
          "[redis][pipeline]") {
  RedisCluster cluster;
  const size_t clients = 6;
  std::vector<Pipeline> pipelines;
  std::vector<std::vector<std::string>> want(clients);
  // Each client works on keys of its own, so the oracle can answer each stream alone.
  RedisServer oracle;
  RespClient direct(oracle.port());
  for (size_t i = 0; i < clients; ++i) {
    pipelines.push_back(
        mixed_pipeline(2000, 100 + static_cast<uint32_t>(i), "c" + std::to_string(i) + ":"));
    want[i] = direct.pipeline(pipelines[i].bytes, pipelines[i].count);
    REQUIRE(want[i].size() == pipelines[i].count);
  }
  std::vector<std::vector<std::string>> got(clients);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      RespClient c(cluster.port());
      got[i] = c.pipeline(pipelines[i].bytes, pipelines[i].count);
    });
  }
  for (auto& t : threads)
    t.join();
  for (size_t i = 0; i < clients; ++i) {
    INFO("client " << i);
    REQUIRE(got[i].size() == want[i].size());
    size_t first_difference = got[i].size();
    for (size_t r = 0; r < got[i].size() && first_difference == got[i].size(); ++r)
      if (got[i][r] != want[i][r]) first_difference = r;
    INFO("first difference at reply " << first_difference);
    CHECK(first_difference == got[i].size());
  }
}

}  // namespace
}  // namespace cachegate
