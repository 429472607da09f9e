// Redis pub/sub through cachegate: channels hashed over the pool's servers, patterns on every
// server, subscriptions kept per client with Redis's own confirmations and counts, RESP2
// subscribe mode and RESP3 pushes, SSUBSCRIBE/SPUBLISH, PUBSUB merged over the servers, and what
// happens when a subscriber or a server goes away. Byte-for-byte comparisons are made against a
// redis-server used directly; hiredis and redis-cli are clients too.

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/hiredis_client.h"
#include "tests/support/logins.h"
#include "tests/support/process.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/temp_dir.h"

namespace cachegate {
namespace {

using testing::Hiredis;
using testing::RedisCluster;
using testing::resp_bulk;
using testing::RespClient;

// A pub/sub frame: `type` '*' (RESP2) or '>' (RESP3 push), bulk strings, then a count if >= 0.
std::string frame(char type, std::vector<std::string> bulks, long long count = -1) {
  std::string out = type + std::to_string(bulks.size() + (count >= 0 ? 1 : 0)) + "\r\n";
  for (const auto& b : bulks)
    out += resp_bulk(b);
  if (count >= 0) out += ":" + std::to_string(count) + "\r\n";
  return out;
}

// Until `server`'s PUBSUB NUMSUB says `channel` has `subscribers` (a subscription is made on the
// server a moment after cachegate confirms it).
bool await_numsub(RespClient& server, const std::string& channel, int subscribers,
                  const std::string& verb = "NUMSUB") {
  const std::string want =
      "*2\r\n" + resp_bulk(channel) + ":" + std::to_string(subscribers) + "\r\n";
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (server.call({"PUBSUB", verb, channel}) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}
bool await_numpat(RespClient& server, int patterns) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (server.call({"PUBSUB", "NUMPAT"}) == ":" + std::to_string(patterns) + "\r\n") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// The same client session against `port`: subscribe, publish from a second client, the
// subscribe-mode rules, unsubscribe; every reply the subscriber reads, in order. `settle` waits
// until the subscription on `channel` is live on its server.
std::string pubsub_transcript(uint16_t port, const std::string& channel,
                              const std::function<void(const std::string&, bool pattern)>& settle) {
  RespClient sub(port), pub(port);
  std::string out;
  auto step = [&](const std::vector<std::string>& command, int replies) {
    sub.send(command);
    for (int i = 0; i < replies; ++i)
      out += sub.read() + "|";
  };
  step({"SUBSCRIBE", channel, channel, "second"}, 3);
  settle(channel, false);
  settle("second", false);
  out += pub.call({"PUBLISH", channel, "hello"}) + "|";
  out += sub.read() + "|";
  out += pub.call({"PUBLISH", "second", std::string("bin\0ary\r\n", 9)}) + "|";
  out += sub.read() + "|";
  step({"GET", "k"}, 1);          // refused in subscribe mode
  step({"PING"}, 1);              // ["pong", ""]
  step({"PING", "there"}, 1);     // ["pong", "there"]
  step({"PSUBSCRIBE", "h*"}, 1);  // counts channels and patterns together
  settle("h*", true);
  out += pub.call({"PUBLISH", channel, "both"}) + "|";
  out += sub.read() + "|";
  out += sub.read() + "|";
  step({"SSUBSCRIBE", "{s}shard"}, 1);  // counted apart
  settle("{s}shard", false);
  out += pub.call({"SPUBLISH", "{s}shard", "sharded"}) + "|";
  out += sub.read() + "|";
  step({"SUNSUBSCRIBE"}, 1);
  step({"UNSUBSCRIBE", channel, "never-subscribed"}, 2);
  step({"PUNSUBSCRIBE"}, 1);
  step({"UNSUBSCRIBE"}, 1);  // the last one: subscribe mode ends
  step({"UNSUBSCRIBE"}, 1);  // none left: a null channel
  step({"GET", "k"}, 1);     // an ordinary connection again
  return out;
}

TEST_CASE("A pub/sub session reads the same bytes through cachegate as from redis-server",
          "[redis][pubsub]") {
  RedisCluster cluster(testing::redis_shards(2));
  testing::RedisServer reference;
  const auto keys = cluster.keys_per_server(1, "chan-");
  for (size_t s = 0; s < 2; ++s) {
    // A channel hashes like a key: on the server its name as a key would be on.
    const std::string channel = "h" + keys[s][0];
    INFO("channel on server " << s);
    auto direct = reference.client();
    const std::string want =
        pubsub_transcript(reference.port(), channel, [&](const std::string& c, bool pattern) {
          if (pattern) {
            REQUIRE(await_numpat(*direct, 1));
          } else {
            REQUIRE(await_numsub(*direct, c, 1, c[0] == '{' ? "SHARDNUMSUB" : "NUMSUB"));
          }
        });
    const std::string got =
        pubsub_transcript(cluster.port(), channel, [&](const std::string& c, bool pattern) {
          if (pattern) {
            // Patterns are subscribed on every server.
            for (size_t server = 0; server < 2; ++server)
              REQUIRE(await_numpat(*cluster.direct(server), 1));
            return;
          }
          // A channel, on one server.
          const std::string verb = c[0] == '{' ? "SHARDNUMSUB" : "NUMSUB";
          bool found = false;
          for (int attempt = 0; attempt < 100 && !found; ++attempt) {
            for (size_t server = 0; server < 2 && !found; ++server)
              found = cluster.direct(server)->call({"PUBSUB", verb, c}) ==
                      "*2\r\n" + resp_bulk(c) + ":1\r\n";
            if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
          REQUIRE(found);
        });
    CHECK(got == want);
    // The channel was subscribed on its own server only, and every subscription is gone now.
    auto on_its_server = cluster.direct(s);
    CHECK(on_its_server->call({"PUBSUB", "NUMSUB", channel}) ==
          "*2\r\n" + resp_bulk(channel) + ":0\r\n");
  }
}

TEST_CASE("Channels are spread over the servers, patterns reach every server, PUBSUB is merged",
          "[redis][pubsub]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "spread-");
  const std::string c0 = keys[0][0], c1 = keys[1][0];
  RespClient sub(cluster.port()), psub(cluster.port()), pub(cluster.port());
  sub.send({"SUBSCRIBE", c0, c1});
  CHECK(sub.read() == frame('*', {"subscribe", c0}, 1));
  CHECK(sub.read() == frame('*', {"subscribe", c1}, 2));
  psub.send({"PSUBSCRIBE", "spread-*"});
  CHECK(psub.read() == frame('*', {"psubscribe", "spread-*"}, 1));
  auto d0 = cluster.direct(0), d1 = cluster.direct(1);
  REQUIRE(await_numsub(*d0, c0, 1));
  REQUIRE(await_numsub(*d1, c1, 1));
  CHECK(d0->call({"PUBSUB", "NUMSUB", c1}) == "*2\r\n" + resp_bulk(c1) + ":0\r\n");
  CHECK(d1->call({"PUBSUB", "NUMSUB", c0}) == "*2\r\n" + resp_bulk(c0) + ":0\r\n");
  REQUIRE(await_numpat(*d0, 1));
  REQUIRE(await_numpat(*d1, 1));

  // A publish reaches the channel's subscriber and the pattern's, once each.
  for (const std::string& c : {c0, c1}) {
    INFO(c);
    CHECK(pub.call({"PUBLISH", c, "m-" + c}) == ":2\r\n");
    CHECK(sub.read() == frame('*', {"message", c, "m-" + c}));
    CHECK(psub.read() == frame('*', {"pmessage", "spread-*", c, "m-" + c}));
  }
  CHECK(pub.call({"PUBLISH", "nobody", "x"}) == ":0\r\n");

  // PUBSUB over the pool: channels from both servers, counts summed, patterns counted once.
  const std::string channels = pub.call({"PUBSUB", "CHANNELS"});
  CHECK(channels.rfind("*2\r\n", 0) == 0);
  CHECK(channels.find(resp_bulk(c0)) != std::string::npos);
  CHECK(channels.find(resp_bulk(c1)) != std::string::npos);
  CHECK(pub.call({"PUBSUB", "NUMSUB", c0, c1, "nobody"}) == "*6\r\n" + resp_bulk(c0) + ":1\r\n" +
                                                                resp_bulk(c1) + ":1\r\n" +
                                                                resp_bulk("nobody") + ":0\r\n");
  CHECK(pub.call({"PUBSUB", "NUMPAT"}) == ":1\r\n");

  // UNSUBSCRIBE without channels: every one, each confirmed.
  sub.send({"UNSUBSCRIBE"});
  const std::string first = sub.read(), second = sub.read();
  CHECK(first + second == frame('*', {"unsubscribe", std::min(c0, c1)}, 1) +
                              frame('*', {"unsubscribe", std::max(c0, c1)}, 0));
  CHECK(await_numsub(*d0, c0, 0));
  CHECK(await_numsub(*d1, c1, 0));
}

TEST_CASE("RESP3: confirmations and messages are pushes, and other commands work meanwhile",
          "[redis][pubsub][resp3]") {
  RedisCluster cluster(testing::redis_shards(2));
  RespClient sub(cluster.port()), pub(cluster.port());
  const std::string hello = sub.call({"HELLO", "3"});
  REQUIRE(hello.rfind("%", 0) == 0);
  sub.send({"SUBSCRIBE", "news"});
  CHECK(sub.read() == frame('>', {"subscribe", "news"}, 1));
  CHECK(sub.call({"SET", "k", "v"}) == "+OK\r\n");
  CHECK(sub.call({"GET", "k"}) == "$1\r\nv\r\n");
  CHECK(sub.call({"PING"}) == "+PONG\r\n");
  bool live = false;
  for (int attempt = 0; attempt < 100 && !live; ++attempt) {
    live = pub.call({"PUBSUB", "NUMSUB", "news"}) == "*2\r\n" + resp_bulk("news") + ":1\r\n";
    if (!live) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(live);
  CHECK(pub.call({"PUBLISH", "news", "extra"}) == ":1\r\n");
  CHECK(sub.read() == frame('>', {"message", "news", "extra"}));
  sub.send({"UNSUBSCRIBE", "news"});
  CHECK(sub.read() == frame('>', {"unsubscribe", "news"}, 0));
  sub.send({"UNSUBSCRIBE"});
  CHECK(sub.read() == ">3\r\n" + resp_bulk("unsubscribe") + "_\r\n:0\r\n");
}

TEST_CASE("hiredis and redis-cli subscribe and receive through cachegate",
          "[redis][pubsub][hiredis]") {
  RedisCluster cluster(testing::redis_shards(2));
  testing::TempDir dir;
  const std::string log_path = dir.path() + "/redis-cli.out";
  testing::ChildProcess cli(
      {"redis-cli", "-p", std::to_string(cluster.port()), "SUBSCRIBE", "cli-channel"}, log_path);
  Hiredis sub(cluster.port()), pub(cluster.port());
  CHECK(sub.call({"SUBSCRIBE", "hi-channel", "cli-channel"}) ==
        "[str:subscribe, str:hi-channel, int:1]");
  CHECK(testing::describe(sub.get_reply().get()) == "[str:subscribe, str:cli-channel, int:2]");
  // Both subscribers are live on the servers before publishing.
  bool live = false;
  for (int attempt = 0; attempt < 100 && !live; ++attempt) {
    live = pub.call({"PUBSUB", "NUMSUB", "cli-channel", "hi-channel"}) ==
           "[str:cli-channel, int:2, str:hi-channel, int:1]";
    if (!live) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(live);
  CHECK(pub.call({"PUBLISH", "cli-channel", "to both"}) == "int:2");
  CHECK(pub.call({"PUBLISH", "hi-channel", "to one"}) == "int:1");
  CHECK(testing::describe(sub.get_reply().get()) == "[str:message, str:cli-channel, str:to both]");
  CHECK(testing::describe(sub.get_reply().get()) == "[str:message, str:hi-channel, str:to one]");
  std::string seen;
  for (int attempt = 0; attempt < 100; ++attempt) {
    seen = cli.output();
    if (seen.find("to both") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(seen == "subscribe\ncli-channel\n1\nmessage\ncli-channel\nto both\n");
}

TEST_CASE("A subscriber that leaves lets its server connections go, and a lost server closes it",
          "[redis][pubsub]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "leave-");
  const int before0 = cluster.connected_clients(0), before1 = cluster.connected_clients(1);
  {
    RespClient sub(cluster.port());
    sub.send({"SUBSCRIBE", keys[0][0]});
    CHECK(sub.read() == frame('*', {"subscribe", keys[0][0]}, 1));
    sub.send({"PSUBSCRIBE", "*"});
    CHECK(sub.read() == frame('*', {"psubscribe", "*"}, 2));
    // One connection per server: the channel's and the pattern's share server 0's.
    CHECK(cluster.await_connected_clients(0, before0 + 1));
    CHECK(cluster.await_connected_clients(1, before1 + 1));
  }
  CHECK(cluster.await_connected_clients(0, before0));
  CHECK(cluster.await_connected_clients(1, before1));

  // A server that goes away takes the subscription with it: the client is closed, so that it
  // subscribes again (as after a server restart).
  RespClient sub(cluster.port());
  sub.send({"SUBSCRIBE", keys[1][0]});
  CHECK(sub.read() == frame('*', {"subscribe", keys[1][0]}, 1));
  auto d1 = cluster.direct(1);
  REQUIRE(await_numsub(*d1, keys[1][0], 1));
  cluster.server(1).kill();
  CHECK(sub.peer_closed());
  // Other clients go on with the live server.
  RespClient other(cluster.port());
  CHECK(other.call({"SET", keys[0][0], "v"}) == "+OK\r\n");
}

TEST_CASE("Pub/sub refusals: transactions, the bound on connections", "[redis][pubsub]") {
  SECTION("the bound") {
    RedisCluster cluster(testing::redis_shards(2, {"dedicated_connections: 1"}));
    RespClient first(cluster.port()), second(cluster.port());
    first.send({"PSUBSCRIBE", "a*"});
    CHECK(first.read() == frame('*', {"psubscribe", "a*"}, 1));
    const std::string refused = second.call({"PSUBSCRIBE", "b*"});
    CHECK(refused.rfind("-ERR cachegate: no connection free for subscriptions on server '", 0) ==
          0);
    CHECK(refused.find("(pools.red.dedicated_connections)") != std::string::npos);
    // Nothing half made: the refused client is not in subscribe mode.
    CHECK(second.call({"SET", "k", "v"}) == "+OK\r\n");
    first.send({"PUNSUBSCRIBE"});
    CHECK(first.read() == frame('*', {"punsubscribe", "a*"}, 0));
    second.send({"PSUBSCRIBE", "b*"});
    CHECK(second.read() == frame('*', {"psubscribe", "b*"}, 1));
  }
  SECTION("inside MULTI") {
    RedisCluster cluster(testing::redis_shards(2));
    RespClient c(cluster.port());
    CHECK(c.call({"MULTI"}) == "+OK\r\n");
    CHECK(c.call({"PUBLISH", "ch", "m"}) ==
          "-ERR command 'publish' is not supported by cachegate inside a transaction\r\n");
    CHECK(c.call({"SUBSCRIBE", "ch"}) ==
          "-ERR command 'subscribe' is not supported by cachegate inside a transaction\r\n");
    CHECK(c.call({"EXEC"}) == "-EXECABORT Transaction discarded because of previous errors.\r\n");
  }
}

TEST_CASE("A reload closes subscribed connections, so that clients subscribe again under it",
          "[redis][pubsub][reload]") {
  testing::RedisServer server;
  testing::CachegateServer proxy(testing::single_redis_config(server.port()));
  RespClient sub(proxy.port()), other(proxy.port());
  sub.send({"SUBSCRIBE", "news"});
  CHECK(sub.read() == frame('*', {"subscribe", "news"}, 1));
  CHECK(other.call({"SET", "k", "v"}) == "+OK\r\n");
  proxy.process().signal(SIGHUP);
  CHECK(sub.peer_closed(std::chrono::milliseconds(5000)));
  // Other clients go on.
  CHECK(other.call({"GET", "k"}) == "$1\r\nv\r\n");
  auto direct = server.client();
  CHECK(await_numsub(*direct, "news", 0));
}

TEST_CASE("A server that refuses a subscription closes the client instead of a stray reply",
          "[redis][pubsub]") {
  testing::RedisServer server;
  // A server user with every command but no channel (Redis 7's acl-pubsub-default).
  REQUIRE(server.client()->call(
              {"ACL", "SETUSER", "cg", "on", ">pw", "~*", "+@all", "resetchannels"}) == "+OK\r\n");
  testing::CachegateServer proxy(
      testing::single_redis_config(server.port(), "auth: {username: cg, password: pw}, "));
  RespClient c(proxy.port());
  CHECK(c.call({"HELLO", "3"}).rfind("%", 0) == 0);
  c.send({"SUBSCRIBE", "news"});
  CHECK(c.read() == frame('>', {"subscribe", "news"}, 1));
  CHECK(c.peer_closed());
  CHECK(proxy.log().find("a server refused a subscription (NOPERM") != std::string::npos);
}

TEST_CASE("Pub/sub on a pool with random distribution is refused", "[redis][pubsub]") {
  testing::RedisServer a, b;
  testing::CachegateServer proxy(
      "workers: 1\n"
      "listeners:\n"
      "  - {name: r, listen: \"127.0.0.1:{port}\", pool: red}\n"
      "pools:\n"
      "  red: {protocol: redis, distribution: random, servers: [\"127.0.0.1:" +
      std::to_string(a.port()) + ":1 a\", \"127.0.0.1:" + std::to_string(b.port()) + ":1 b\"]}\n");
  RespClient c(proxy.port());
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"SUBSCRIBE", "a"}, {"PSUBSCRIBE", "a*"}, {"PUBLISH", "a", "m"}}) {
    INFO(command[0]);
    CHECK(c.call(command) ==
          "-ERR pub/sub is not supported by cachegate on a pool with distribution: random: a "
          "channel would have no server of its own\r\n");
  }
  CHECK(c.call({"PING"}) == "+PONG\r\n");
}

TEST_CASE("An idle connection of the other protocol makes room for a subscriber",
          "[redis][pubsub][resp3]") {
  testing::RedisServer server;
  testing::CachegateServer proxy(
      testing::single_redis_config(server.port(), "dedicated_connections: 1, "));
  RespClient resp3(proxy.port()), resp2(proxy.port());
  CHECK(resp3.call({"HELLO", "3"}).rfind("%", 0) == 0);
  CHECK(resp3.call({"BLPOP", "k", "0.05"}) == "_\r\n");  // leaves an idle RESP3 connection
  resp2.send({"SUBSCRIBE", "news"});
  CHECK(resp2.read() == frame('*', {"subscribe", "news"}, 1));
}

TEST_CASE("Tenants with namespaces have channels of their own", "[redis][pubsub][namespace]") {
  testing::RedisServer server;
  testing::CachegateServer proxy(
      testing::tenant_redis_config(server.port(), {{"a", "a:"}, {"b", "b*"}}));
  RespClient a(proxy.port()), a_pattern(proxy.port()), b(proxy.port()), b_pattern(proxy.port()),
      publisher(proxy.port());
  for (RespClient* c : {&a, &a_pattern, &publisher})
    REQUIRE(c->call({"AUTH", "a", "pw"}) == "+OK\r\n");
  for (RespClient* c : {&b, &b_pattern})
    REQUIRE(c->call({"AUTH", "b", "pw"}) == "+OK\r\n");
  a.send({"SUBSCRIBE", "news"});
  CHECK(a.read() == frame('*', {"subscribe", "news"}, 1));
  a_pattern.send({"PSUBSCRIBE", "n*"});
  CHECK(a_pattern.read() == frame('*', {"psubscribe", "n*"}, 1));
  b.send({"SUBSCRIBE", "news"});
  CHECK(b.read() == frame('*', {"subscribe", "news"}, 1));
  b_pattern.send({"PSUBSCRIBE", "*"});
  CHECK(b_pattern.read() == frame('*', {"psubscribe", "*"}, 1));
  // On the server the channels and patterns are in each namespace ("b*" escaped in patterns).
  auto direct = server.client();
  REQUIRE(await_numsub(*direct, "a:news", 1));
  REQUIRE(await_numsub(*direct, "b*news", 1));
  REQUIRE(await_numpat(*direct, 2));
  // A publish reaches its own tenant's subscribers only, with the names they used.
  CHECK(publisher.call({"PUBLISH", "news", "for a"}) == ":2\r\n");
  CHECK(a.read() == frame('*', {"message", "news", "for a"}));
  CHECK(a_pattern.read() == frame('*', {"pmessage", "n*", "news", "for a"}));
  // b's pattern "*" is "b\\**" on the server: it matched nothing of a's.
  CHECK(b_pattern.call({"PING"}) == frame('*', {"pong", ""}));
  CHECK(b.call({"PING"}) == frame('*', {"pong", ""}));
  CHECK(direct->call({"PUBLISH", "b*news", "for b"}) == ":2\r\n");
  CHECK(b.read() == frame('*', {"message", "news", "for b"}));
  CHECK(b_pattern.read() == frame('*', {"pmessage", "*", "news", "for b"}));
  // Listing channels would show every tenant's.
  const std::string refused = publisher.call({"PUBSUB", "CHANNELS"});
  CHECK(refused.rfind("-NOPERM 'pubsub|channels' is not available to a user with a namespace", 0) ==
        0);
}

}  // namespace
}  // namespace cachegate
