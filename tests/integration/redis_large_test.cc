// Values and replies far larger than the socket buffers: multi-megabyte values written and read
// through cachegate, an MGET gathering many large values from three servers, and a client that
// pipelines large reads and does not read for a while (cachegate must stop reading it rather than
// buffer without bound, and deliver everything once it reads again).

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/hiredis_client.h"
#include "tests/support/memcache_cluster.h"
#include "tests/support/redis_cluster.h"

namespace cachegate {
namespace {

using testing::first_difference;
using testing::Hiredis;
using testing::RedisCluster;
using testing::resp_bulk;
using testing::resp_command;

// A value of `size` bytes that differs from its neighbours at every position, so a dropped,
// doubled or shifted chunk cannot go unnoticed; `seed` tells values apart.
std::string patterned(size_t size, int seed) {
  std::string v(size, '\0');
  uint32_t x = 2463534242u + static_cast<uint32_t>(seed);
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v[i] = static_cast<char>(x);
  }
  return v;
}

TEST_CASE("multi-megabyte values go through cachegate intact", "[redis][large]") {
  RedisCluster cluster;
  const auto keys = cluster.keys_per_server(1, "big-");
  auto c = cluster.client(std::chrono::milliseconds(20000));
  const size_t sizes[] = {4 << 20, 6 << 20, 9 << 20};
  for (size_t s = 0; s < cluster.size(); ++s) {
    const std::string value = patterned(sizes[s], static_cast<int>(s));
    REQUIRE(c->call({"SET", keys[s][0], value}) == "+OK\r\n");
    // Stored where cachegate says, whole.
    CHECK(cluster.direct(s)->call({"STRLEN", keys[s][0]}) ==
          ":" + std::to_string(sizes[s]) + "\r\n");
    INFO("server " << s);
    CHECK(first_difference(c->call({"GET", keys[s][0]}), resp_bulk(value)) == "");
  }
  // hiredis reads the same bytes.
  Hiredis h(cluster.port(), std::chrono::milliseconds(20000));
  auto reply = h.command({"GET", keys[2][0]});
  REQUIRE(reply);
  REQUIRE(reply->type == REDIS_REPLY_STRING);
  CHECK(reply->len == sizes[2]);
  CHECK(std::string(reply->str, reply->len) == patterned(sizes[2], 2));
  CHECK(h.call({"GETRANGE", keys[1][0], "1000000", "1000009"}) ==
        "str:" + patterned(sizes[1], 1).substr(1000000, 10));
}

TEST_CASE("an MGET of many large values from every server", "[redis][large]") {
  RedisCluster cluster;
  const auto per_server = cluster.keys_per_server(5, "mget-");
  auto c = cluster.client(std::chrono::milliseconds(20000));
  std::vector<std::string> keys;
  std::vector<std::string> values;
  // One MSET of 15 values of 1 MiB: the request itself is split across the servers.
  std::vector<std::string> mset = {"MSET"};
  for (size_t i = 0; i < 5; ++i) {
    for (size_t s = 0; s < cluster.size(); ++s) {
      keys.push_back(per_server[s][i]);
      values.push_back(patterned((1 << 20) + keys.size() * 1000, static_cast<int>(keys.size())));
      mset.push_back(keys.back());
      mset.push_back(values.back());
    }
  }
  REQUIRE(c->call(mset) == "+OK\r\n");
  for (size_t s = 0; s < cluster.size(); ++s)
    CHECK(cluster.direct(s)->call({"DBSIZE"}) == ":5\r\n");

  std::vector<std::string> mget = {"MGET"};
  std::string want = "*" + std::to_string(keys.size() * 2) + "\r\n";
  for (size_t round = 0; round < 2; ++round) {
    for (size_t i = 0; i < keys.size(); ++i) {
      // Reverse order the second time round, and each key twice in all.
      const size_t k = round == 0 ? i : keys.size() - 1 - i;
      mget.push_back(keys[k]);
      want += resp_bulk(values[k]);
    }
  }
  CHECK(first_difference(c->call(mget), want) == "");

  // Through hiredis too, pipelined with small commands around it.
  Hiredis h(cluster.port(), std::chrono::milliseconds(20000));
  h.append({"PING"});
  h.append(mget);
  h.append({"ECHO", "after"});
  CHECK(testing::describe(h.get_reply().get()) == "status:PONG");
  auto big = h.get_reply();
  REQUIRE(big);
  REQUIRE(big->type == REDIS_REPLY_ARRAY);
  REQUIRE(big->elements == keys.size() * 2);
  CHECK(std::string(big->element[3]->str, big->element[3]->len) == values[3]);
  CHECK(std::string(big->element[keys.size()]->str, big->element[keys.size()]->len) ==
        values.back());
  CHECK(testing::describe(h.get_reply().get()) == "str:after");
}

TEST_CASE("a client that pipelines large reads and pauses gets every byte",
          "[redis][large][backpressure]") {
  RedisCluster cluster;
  const auto keys = cluster.keys_per_server(1, "slow-");
  auto c = cluster.client(std::chrono::milliseconds(20000));
  std::vector<std::string> values;
  for (size_t s = 0; s < cluster.size(); ++s) {
    values.push_back(patterned(2 << 20, 50 + static_cast<int>(s)));
    REQUIRE(c->call({"SET", keys[s][0], values.back()}) == "+OK\r\n");
  }
  // 30 reads of 2 MiB each: 60 MiB of replies, far more than the socket buffers and cachegate's
  // per-client output bound. Nothing is read for a while, so cachegate must hold off.
  std::string requests;
  for (int i = 0; i < 30; ++i)
    requests += resp_command({"GET", keys[i % 3][0]});
  requests += resp_command({"ECHO", "last"});
  c->send_raw(requests);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  // Meanwhile other clients are served.
  auto other = cluster.client();
  CHECK(other->call({"STRLEN", keys[1][0]}) == ":" + std::to_string(2 << 20) + "\r\n");
  for (int i = 0; i < 30; ++i) {
    INFO("reply " << i);
    REQUIRE(first_difference(c->read(), resp_bulk(values[i % 3])) == "");
  }
  CHECK(c->read() == resp_bulk("last"));
}

}  // namespace
}  // namespace cachegate
