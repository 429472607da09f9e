// RESP3 after HELLO 3: maps, sets, doubles, nulls, verbatim strings and booleans reach the client
// as redis-server sends them, including in replies cachegate merges from several servers (MGET,
// KEYS, CONFIG GET, RANDOMKEY …); RESET and HELLO 2 go back to RESP2; RESP2 and RESP3 clients
// share the servers without seeing each other's protocol.

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/redis_cluster.h"

namespace cachegate {
namespace {

using testing::printable;
using testing::RedisCluster;
using testing::RedisServer;
using testing::resp_bulk;
using testing::RespClient;

// HELLO's reply with the connection id (the only field that differs between two servers of the
// same version) replaced by "<id>".
std::string without_id(std::string hello) {
  const std::string field = "$2\r\nid\r\n:";
  const size_t at = hello.find(field);
  if (at == std::string::npos) return hello;
  const size_t start = at + field.size();
  hello.replace(start, hello.find("\r\n", start) - start, "<id>");
  return hello;
}

TEST_CASE("RESP3 replies after HELLO 3 are redis-server's own bytes", "[redis][resp3]") {
  RedisCluster cluster;
  RedisServer direct_server;
  RespClient c(cluster.port());
  RespClient d(direct_server.port());

  const std::string hello = c.call({"HELLO", "3"});
  CHECK(hello.rfind("%7\r\n", 0) == 0);
  CHECK(without_id(hello) == without_id(d.call({"HELLO", "3"})));

  // Each of these is sent to both; the replies must be identical bytes.
  const std::vector<std::vector<std::string>> same = {
      {"HSET", "r3:h", "f", "1", "g", "2"},
      {"HGETALL", "r3:h"},                          // map
      {"HGETALL", "r3:none"},                       // empty map
      {"SADD", "r3:s", "a"},                        //
      {"SMEMBERS", "r3:s"},                         // set
      {"SMEMBERS", "r3:none"},                      // empty set
      {"ZADD", "r3:z", "1.5", "x", "2", "y"},       //
      {"ZSCORE", "r3:z", "x"},                      // double
      {"ZSCORE", "r3:z", "nobody"},                 // null
      {"ZRANGE", "r3:z", "0", "-1", "WITHSCORES"},  // pairs with doubles
      {"ZINCRBY", "r3:z", "0.25", "y"},             // double
      {"ZMSCORE", "r3:z", "x", "nobody"},           // double and null in an array
      {"GET", "r3:none"},                           // null
      {"HGET", "r3:h", "nope"},                     // null
      {"LPOP", "r3:none"},                          // null
      {"HRANDFIELD", "r3:none"},                    // null
      {"SET", "r3:str", "v"},                       //
      {"OBJECT", "ENCODING", "r3:str"},             //
      {"XADD", "r3:st", "1-1", "f", "v"},           //
      {"XINFO", "STREAM", "r3:st"},                 // map with nested values
      {"XRANGE", "r3:st", "-", "+"},                //
      {"CLIENT", "GETNAME"},                        // null, answered by cachegate
      {"COMMAND", "INFO", "get"},                   // RESP3 flags are a set
      {"COMMAND", "DOCS", "get"},                   // map
      {"COMMAND", "INFO", "nosuchcommand"},         // null in an array
      {"EVAL", "redis.setresp(3); return redis.call('hgetall', KEYS[1])", "1", "r3:h"},
      {"EVAL", "redis.setresp(3); return {double=3.5}", "0"},
      {"EVAL", "redis.setresp(3); return true", "0"},  // boolean
      {"EVAL", "return nil", "0"},
      {"LPUSH", "r3:h", "x"},  // WRONGTYPE
      {"GET"},                 // arity, answered by cachegate
      {"NOSUCH"},
  };
  for (const auto& request : same) {
    INFO(request[0] << (request.size() > 1 ? " " + request[1] : ""));
    const std::string want = d.call(request);
    CHECK(printable(c.call(request)) == printable(want));
  }
  CHECK(c.call({"ZSCORE", "r3:z", "x"}) == ",1.5\r\n");
  CHECK(c.call({"GET", "r3:none"}) == "_\r\n");
  CHECK(c.call({"HGETALL", "r3:h"}) == "%2\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n");
  CHECK(c.call({"SMEMBERS", "r3:s"}) == "~1\r\n$1\r\na\r\n");

  // Verbatim strings: INFO and CLIENT INFO.
  const std::string info = c.call({"INFO", "keyspace"});
  REQUIRE(info.rfind("=", 0) == 0);
  CHECK(info.find("\r\ntxt:# Cachegate\r\n") != std::string::npos);
  const size_t header_end = info.find("\r\n");
  CHECK(std::stoul(info.substr(1, header_end)) == info.size() - header_end - 4);
  const std::string client_info = c.call({"CLIENT", "INFO"});
  CHECK(client_info.rfind("=", 0) == 0);
  CHECK(client_info.find("txt:id=") != std::string::npos);
  CHECK(client_info.find(" resp=3") != std::string::npos);
}

TEST_CASE("replies merged from several servers use the client's RESP version",
          "[redis][resp3][split]") {
  RedisCluster cluster;
  const auto keys = cluster.keys_per_server(2, "m3-");
  RedisServer direct_server;
  RespClient d(direct_server.port());
  for (int protocol : {3, 2}) {
    INFO("RESP" << protocol);
    RespClient c(cluster.port());
    if (protocol == 3) {
      REQUIRE(c.call({"HELLO", "3"}).rfind("%7", 0) == 0);
      REQUIRE(d.call({"HELLO", "3"}).rfind("%7", 0) == 0);
    } else {
      REQUIRE(d.call({"HELLO", "2"}).rfind("*14", 0) == 0);
    }
    std::vector<std::string> mset = {"MSET"};
    std::vector<std::string> mget = {"MGET"};
    for (size_t s = 0; s < cluster.size(); ++s) {
      mset.push_back(keys[s][0]);
      mset.push_back("v" + std::to_string(s));
      mget.push_back(keys[s][0]);
      mget.push_back("missing-" + std::to_string(s));
    }
    // One server holds what the pool holds; merged replies must be what it answers alone.
    const std::vector<std::vector<std::string>> same = {
        mset,
        mget,
        {"EXISTS", keys[0][0], keys[1][0], keys[2][0], "missing"},
        {"CONFIG", "GET", "maxmemory"},
        {"DBSIZE"},
        {"SCRIPT", "EXISTS", "0000000000000000000000000000000000000000"},
        {"DEL", keys[0][0], keys[1][0], keys[2][0]},
        {"RANDOMKEY"},
        {"KEYS", "nothing*"},
        {"SCAN", "0", "MATCH", "nothing*"},
    };
    for (const auto& request : same) {
      INFO(request[0]);
      const std::string want = d.call(request);
      const std::string got = c.call(request);
      if (request[0] == "SCAN") {
        // The cursor is cachegate's own; the shape is not.
        CHECK(got.rfind("*2\r\n$", 0) == 0);
        CHECK(got.substr(got.size() - 4) == "*0\r\n");
        continue;
      }
      CHECK(printable(got) == printable(want));
    }
    REQUIRE(d.call({"FLUSHALL"}) == "+OK\r\n");
  }
}

TEST_CASE("the very first RESP3 request to each server is answered in RESP3", "[redis][resp3]") {
  // Nothing has asked for RESP3 yet, so cachegate has no RESP3 connection to any server: the
  // first clients' requests below are the first ones such a connection carries, on whichever
  // worker takes the client.
  RedisCluster cluster;
  // Every server holds every key, so whichever server cachegate picks, the key is there; the
  // keys are chosen so that together they reach every server.
  const auto grouped = cluster.keys_per_server(1, "first3-");
  std::vector<std::string> keys;
  for (const auto& g : grouped)
    keys.push_back(g[0]);
  for (size_t s = 0; s < cluster.size(); ++s)
    for (const auto& key : keys)
      REQUIRE(cluster.direct(s)->call({"HSET", key, "f", "v"}) == ":1\r\n");
  for (int client = 0; client < 4; ++client) {
    RespClient c(cluster.port());
    REQUIRE(c.call({"HELLO", "3"}).rfind("%7", 0) == 0);
    for (const auto& key : keys) {
      INFO("client " << client << ", " << key);
      CHECK(printable(c.call({"HGETALL", key})) == printable("%1\r\n$1\r\nf\r\n$1\r\nv\r\n"));
    }
  }
}

TEST_CASE("RESET and HELLO 2 go back to RESP2", "[redis][resp3]") {
  RedisCluster cluster;
  RespClient c(cluster.port());
  REQUIRE(c.call({"HSET", "back:h", "f", "v"}) == ":1\r\n");
  REQUIRE(c.call({"HELLO", "3"}).rfind("%7", 0) == 0);
  CHECK(c.call({"GET", "back:none"}) == "_\r\n");
  CHECK(c.call({"HGETALL", "back:h"}) == "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
  CHECK(c.call({"RESET"}) == "+RESET\r\n");
  CHECK(c.call({"GET", "back:none"}) == "$-1\r\n");
  CHECK(c.call({"HGETALL", "back:h"}) == "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
  CHECK(c.call({"CLIENT", "GETNAME"}) == "$-1\r\n");
  REQUIRE(c.call({"HELLO", "3", "SETNAME", "r3"}).rfind("%7", 0) == 0);
  CHECK(c.call({"CLIENT", "GETNAME"}) == resp_bulk("r3"));
  CHECK(c.call({"GET", "back:none"}) == "_\r\n");
  const std::string hello2 = c.call({"HELLO", "2"});
  CHECK(hello2.rfind("*14\r\n", 0) == 0);
  CHECK(hello2.find("$5\r\nproto\r\n:2\r\n") != std::string::npos);
  CHECK(c.call({"GET", "back:none"}) == "$-1\r\n");
  CHECK(c.call({"HGETALL", "back:h"}) == "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
}

TEST_CASE("RESP2 and RESP3 clients interleaved on the same servers", "[redis][resp3]") {
  RedisCluster cluster;
  auto setup = cluster.client();
  for (int i = 0; i < 30; ++i)
    REQUIRE(setup->call({"HSET", "mix:" + std::to_string(i), "f", "v"}) == ":1\r\n");
  std::vector<std::thread> threads;
  std::vector<std::string> failures(6);
  for (size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&, t] {
      RespClient c(cluster.port());
      const bool resp3 = t % 2 == 0;
      if (resp3 && c.call({"HELLO", "3"}).rfind("%7", 0) != 0) {
        failures[t] = "HELLO 3 failed";
        return;
      }
      const std::string want_map =
          resp3 ? "%1\r\n$1\r\nf\r\n$1\r\nv\r\n" : "*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
      const std::string want_null = resp3 ? "_\r\n" : "$-1\r\n";
      std::string requests;
      for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 30; ++i) {
          requests += testing::resp_command({"HGETALL", "mix:" + std::to_string(i)});
          requests += testing::resp_command({"GET", "mix-none:" + std::to_string(i)});
        }
      }
      auto replies = c.pipeline(requests, 3000);
      if (replies.size() != 3000) {
        failures[t] = "only " + std::to_string(replies.size()) + " replies";
        return;
      }
      for (size_t r = 0; r < replies.size(); ++r) {
        const std::string& want = r % 2 == 0 ? want_map : want_null;
        if (replies[r] != want) {
          failures[t] = "reply " + std::to_string(r) + ": " + printable(replies[r]);
          return;
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (size_t t = 0; t < failures.size(); ++t) {
    INFO("client " << t << (t % 2 == 0 ? " (RESP3)" : " (RESP2)"));
    CHECK(failures[t] == "");
  }
}

}  // namespace
}  // namespace cachegate
