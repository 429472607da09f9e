// hiredis, the C client most Redis libraries wrap, against cachegate in front of one and three
// real redis-servers: every class of command (answered by cachegate, single-key, split across
// servers, multi-key on one server, whole-pool, unsupported), synchronously and pipelined with
// redisAppendCommand/redisGetReply. Where cachegate answers for Redis, the expected answer is
// what a redis-server itself answers, asked directly.

#include <catch2/catch.hpp>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "tests/support/hiredis_client.h"
#include "tests/support/redis_cluster.h"

namespace cachegate {
namespace {

using testing::describe;
using testing::Hiredis;
using testing::RedisCluster;
using testing::RedisClusterOptions;

RedisClusterOptions shards(size_t n) {
  RedisClusterOptions options;
  options.servers = n;
  return options;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// The elements of an array reply as strings (bulk or status), in order.
std::vector<std::string> strings_of(const redisReply* r) {
  std::vector<std::string> out;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i < r->elements; ++i)
    out.emplace_back(r->element[i]->str ? std::string(r->element[i]->str, r->element[i]->len)
                                        : describe(r->element[i]));
  return out;
}

std::multiset<std::string> multiset_of(const redisReply* r) {
  auto v = strings_of(r);
  return {v.begin(), v.end()};
}

TEST_CASE("hiredis: commands cachegate answers itself match redis-server's answers",
          "[redis][hiredis][local]") {
  const size_t n = GENERATE(1, 3);
  RedisCluster cluster(shards(n));
  Hiredis c(cluster.port());
  Hiredis direct(cluster.server(0).port());

  CHECK(c.call({"PING"}) == "status:PONG");
  CHECK(c.call({"PING", "hello"}) == "str:hello");
  CHECK(c.call({"ECHO", std::string("a\0b\r\n", 5)}) == "str:" + std::string("a\0b\r\n", 5));
  CHECK(c.call({"SELECT", "0"}) == "status:OK");
  CHECK(starts_with(c.call({"SELECT", "1"}), "err:ERR DB index is out of range"));
  CHECK(c.call({"SELECT", "x"}) == direct.call({"SELECT", "x"}));

  // cachegate has no users yet: it behaves as a redis-server whose default user has no password.
  CHECK(c.call({"AUTH", "pw"}) == direct.call({"AUTH", "pw"}));
  CHECK(c.call({"AUTH", "default", "anything"}) == direct.call({"AUTH", "default", "anything"}));
  CHECK(c.call({"AUTH", "default", "anything"}) == "status:OK");

  // Names and ids are the connection's own.
  CHECK(c.call({"CLIENT", "GETNAME"}) == "nil");
  CHECK(c.call({"CLIENT", "SETNAME", "billing"}) == "status:OK");
  CHECK(c.call({"CLIENT", "GETNAME"}) == "str:billing");
  CHECK(c.call({"CLIENT", "SETNAME", "has space"}) ==
        direct.call({"CLIENT", "SETNAME", "has space"}));
  auto id1 = c.command({"CLIENT", "ID"});
  Hiredis other(cluster.port());
  auto id2 = other.command({"CLIENT", "ID"});
  REQUIRE(id1);
  REQUIRE(id2);
  CHECK(id1->type == REDIS_REPLY_INTEGER);
  CHECK(id1->integer > 0);
  CHECK(id1->integer != id2->integer);
  CHECK(c.call({"CLIENT", "ID"}) == describe(id1.get()));
  auto info = c.command({"CLIENT", "INFO"});
  REQUIRE(info);
  REQUIRE(info->type == REDIS_REPLY_STRING);
  CHECK(std::string(info->str, info->len).find("name=billing") != std::string::npos);
  CHECK(std::string(info->str, info->len).find("id=" + std::to_string(id1->integer)) !=
        std::string::npos);
  CHECK(c.call({"CLIENT", "SETINFO", "lib-name", "hiredis"}) == "status:OK");
  CHECK(c.call({"CLIENT", "SETINFO", "lib-ver", "0.14.1"}) == "status:OK");
  auto help = c.command({"CLIENT", "HELP"});
  REQUIRE(help);
  CHECK(help->type == REDIS_REPLY_ARRAY);
  CHECK(help->elements > 4);

  // HELLO 2: a map flattened into an array, as redis sends it in RESP2.
  auto hello = c.command({"HELLO", "2"});
  REQUIRE(hello);
  auto fields = strings_of(hello.get());
  REQUIRE(fields.size() == 14);
  CHECK(fields[0] == "server");
  CHECK(fields[1] == "redis");
  CHECK(fields[2] == "version");
  CHECK(fields[3] == "7.0.15");
  CHECK(fields[4] == "proto");
  CHECK(describe(hello->element[5]) == "int:2");
  CHECK(fields[6] == "id");
  CHECK(describe(hello->element[7]) == describe(id1.get()));
  CHECK(fields[8] == "mode");
  CHECK(fields[10] == "role");
  CHECK(fields[12] == "modules");
  CHECK(c.call({"HELLO", "4"}) == direct.call({"HELLO", "4"}));
  CHECK(c.call({"HELLO", "x"}) == direct.call({"HELLO", "x"}));
  CHECK(starts_with(c.call({"HELLO", "2", "SETNAME", "renamed"}), "[str:server, str:redis"));
  CHECK(c.call({"CLIENT", "GETNAME"}) == "str:renamed");

  // COMMAND: the table was generated from this very redis version.
  CHECK(c.call({"COMMAND", "COUNT"}) == direct.call({"COMMAND", "COUNT"}));
  for (const char* name : {"get", "set", "mset", "xreadgroup", "eval", "object|encoding"}) {
    INFO(name);
    CHECK(c.call({"COMMAND", "INFO", name}) == direct.call({"COMMAND", "INFO", name}));
    CHECK(c.call({"COMMAND", "DOCS", name}) == direct.call({"COMMAND", "DOCS", name}));
  }
  CHECK(c.call({"COMMAND", "INFO", "get", "nosuchcommand", "zadd"}) ==
        direct.call({"COMMAND", "INFO", "get", "nosuchcommand", "zadd"}));
  CHECK(c.call({"COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"}) ==
        direct.call({"COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"}));
  CHECK(c.call({"COMMAND", "GETKEYS", "EVAL", "return 1", "2", "k1", "k2", "a"}) ==
        direct.call({"COMMAND", "GETKEYS", "EVAL", "return 1", "2", "k1", "k2", "a"}));
  CHECK(c.call({"COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "2", "s1", "s2"}) ==
        direct.call({"COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "2", "s1", "s2"}));
  auto list = c.command({"COMMAND", "LIST"});
  auto direct_list = direct.command({"COMMAND", "LIST"});
  CHECK(multiset_of(list.get()) == multiset_of(direct_list.get()));
  auto all = c.command({"COMMAND"});
  auto direct_all = direct.command({"COMMAND"});
  REQUIRE(all);
  REQUIRE(direct_all);
  CHECK(all->elements == direct_all->elements);

  // Unknown commands and wrong arity: redis's own words, and the connection stays usable.
  CHECK(c.call({"NOSUCH", "a", "b"}) == direct.call({"NOSUCH", "a", "b"}));
  CHECK(c.call({"GET"}) == direct.call({"GET"}));
  CHECK(c.call({"GET", "a", "b"}) == direct.call({"GET", "a", "b"}));
  CHECK(c.call({"OBJECT"}) == direct.call({"OBJECT"}));
  CHECK(c.call({"OBJECT", "ENCODING"}) == direct.call({"OBJECT", "ENCODING"}));
  CHECK(c.call({"OBJECT", "NOSUB", "k"}) == direct.call({"OBJECT", "NOSUB", "k"}));
  CHECK(c.call({"PING", "a", "b"}) == direct.call({"PING", "a", "b"}));
  CHECK(c.call({"ECHO"}) == direct.call({"ECHO"}));
  CHECK(c.call({"PING"}) == "status:PONG");

  // RESET forgets the name; QUIT answers and closes.
  CHECK(c.call({"RESET"}) == "status:RESET");
  CHECK(c.call({"CLIENT", "GETNAME"}) == "nil");
  CHECK(c.call({"QUIT"}) == "status:OK");
  CHECK(c.command({"PING"}) == nullptr);
  CHECK(other.call({"PING"}) == "status:PONG");
}

TEST_CASE("hiredis: single-key commands of every type go to the key's server",
          "[redis][hiredis][keyed]") {
  const size_t n = GENERATE(1, 3);
  RedisCluster cluster(shards(n));
  Hiredis c(cluster.port());

  // Strings.
  CHECK(c.call({"SET", "s", "hello"}) == "status:OK");
  CHECK(c.call({"APPEND", "s", " world"}) == "int:11");
  CHECK(c.call({"GET", "s"}) == "str:hello world");
  CHECK(c.call({"GETRANGE", "s", "0", "4"}) == "str:hello");
  CHECK(c.call({"SETRANGE", "s", "6", "there"}) == "int:11");
  CHECK(c.call({"STRLEN", "s"}) == "int:11");
  CHECK(c.call({"GETDEL", "s"}) == "str:hello there");
  CHECK(c.call({"GET", "s"}) == "nil");
  CHECK(c.call({"SET", "n", "10"}) == "status:OK");
  CHECK(c.call({"INCR", "n"}) == "int:11");
  CHECK(c.call({"INCRBY", "n", "-20"}) == "int:-9");
  CHECK(c.call({"INCRBYFLOAT", "n", "0.5"}) == "str:-8.5");
  CHECK(c.call({"SET", "nx", "1", "NX"}) == "status:OK");
  CHECK(c.call({"SET", "nx", "2", "NX"}) == "nil");
  CHECK(c.call({"SET", "nx", "3", "XX", "GET"}) == "str:1");
  CHECK(c.call({"SETNX", "nx", "4"}) == "int:0");
  CHECK(c.call({"GETSET", "nx", "5"}) == "str:3");
  CHECK(c.call({"INCR", "s2"}) == "int:1");
  CHECK(c.call({"LCS", "nx", "nx"}) == "str:5");

  // Hashes.
  CHECK(c.call({"HSET", "h", "a", "1", "b", "2"}) == "int:2");
  CHECK(c.call({"HGET", "h", "a"}) == "str:1");
  CHECK(c.call({"HMGET", "h", "a", "zz", "b"}) == "[str:1, nil, str:2]");
  CHECK(c.call({"HINCRBY", "h", "a", "5"}) == "int:6");
  CHECK(c.call({"HGETALL", "h"}) == "[str:a, str:6, str:b, str:2]");
  CHECK(c.call({"HLEN", "h"}) == "int:2");
  CHECK(c.call({"HDEL", "h", "b", "zz"}) == "int:1");
  CHECK(c.call({"HEXISTS", "h", "a"}) == "int:1");

  // Lists.
  CHECK(c.call({"RPUSH", "l", "a", "b", "c"}) == "int:3");
  CHECK(c.call({"LPUSH", "l", "z"}) == "int:4");
  CHECK(c.call({"LRANGE", "l", "0", "-1"}) == "[str:z, str:a, str:b, str:c]");
  CHECK(c.call({"LPOP", "l"}) == "str:z");
  CHECK(c.call({"RPOP", "l", "2"}) == "[str:c, str:b]");
  CHECK(c.call({"LINDEX", "l", "0"}) == "str:a");
  CHECK(c.call({"LPOS", "l", "a"}) == "int:0");
  CHECK(c.call({"BLPOP", "l", "0"}) == "[str:l, str:a]");
  CHECK(c.call({"RPUSH", "l", "a"}) == "int:1");

  // Sets and sorted sets.
  CHECK(c.call({"SADD", "set", "x", "y", "x"}) == "int:2");
  CHECK(c.call({"SISMEMBER", "set", "y"}) == "int:1");
  CHECK(c.call({"SMISMEMBER", "set", "y", "q"}) == "[int:1, int:0]");
  CHECK(c.call({"SCARD", "set"}) == "int:2");
  CHECK(c.call({"ZADD", "z", "1", "one", "2.5", "two"}) == "int:2");
  CHECK(c.call({"ZSCORE", "z", "two"}) == "str:2.5");
  CHECK(c.call({"ZRANGE", "z", "0", "-1", "WITHSCORES"}) == "[str:one, str:1, str:two, str:2.5]");
  CHECK(c.call({"ZINCRBY", "z", "1", "one"}) == "str:2");
  CHECK(c.call({"ZRANK", "z", "two"}) == "int:1");

  // Streams, geo, bitmaps, HyperLogLog.
  CHECK(c.call({"XADD", "st", "1-1", "f", "v"}) == "str:1-1");
  CHECK(c.call({"XLEN", "st"}) == "int:1");
  CHECK(c.call({"XRANGE", "st", "-", "+"}) == "[[str:1-1, [str:f, str:v]]]");
  CHECK(c.call({"XREAD", "STREAMS", "st", "0"}) == "[[str:st, [[str:1-1, [str:f, str:v]]]]]");
  CHECK(c.call({"GEOADD", "g", "13.361389", "38.115556", "Palermo"}) == "int:1");
  CHECK(c.call({"GEOHASH", "g", "Palermo"}) == "[str:sqc8b49rny0]");
  CHECK(c.call({"SETBIT", "b", "7", "1"}) == "int:0");
  CHECK(c.call({"BITCOUNT", "b"}) == "int:1");
  CHECK(c.call({"GETBIT", "b", "7"}) == "int:1");
  CHECK(c.call({"PFADD", "hll", "a", "b", "c"}) == "int:1");
  CHECK(c.call({"PFCOUNT", "hll"}) == "int:3");

  // Expiry.
  CHECK(c.call({"EXPIRE", "h", "1000"}) == "int:1");
  auto ttl = c.command({"TTL", "h"});
  REQUIRE(ttl);
  CHECK(ttl->integer > 990);
  CHECK(c.call({"PERSIST", "h"}) == "int:1");
  CHECK(c.call({"TTL", "h"}) == "int:-1");
  CHECK(c.call({"EXPIREAT", "h", "4102444800"}) == "int:1");
  CHECK(c.call({"EXPIRETIME", "h"}) == "int:4102444800");
  CHECK(c.call({"TYPE", "z"}) == "status:zset");
  CHECK(c.call({"OBJECT", "ENCODING", "n"}) == "str:embstr");

  // Server errors pass through unchanged.
  CHECK(c.call({"LPUSH", "h", "x"}) ==
        "err:WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK(c.call({"INCR", "h"}) ==
        "err:WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK(c.call({"SET", "q", "1", "EX", "0"}) == "err:ERR invalid expire time in 'set' command");

  // Every key is on exactly one server, and with three servers they are spread.
  std::set<size_t> used;
  for (const char* key : {"n", "nx", "s2", "h", "l", "set", "z", "st", "g", "b", "hll"}) {
    INFO(key);
    auto holders = cluster.holders(key);
    REQUIRE(holders.size() == 1);
    used.insert(holders[0]);
  }

  // Hash tags: the text between the braces decides, so related keys stay together.
  for (int user = 0; user < 20; ++user) {
    const std::string tag = "{user" + std::to_string(user) + "}";
    CHECK(c.call({"SET", tag + ":name", "x"}) == "status:OK");
    CHECK(c.call({"SET", "profile:" + tag + ":age", "y"}) == "status:OK");
    const auto holders = cluster.holders(tag + ":name");
    REQUIRE(holders.size() == 1);
    CHECK(cluster.holders("profile:" + tag + ":age") == holders);
    used.insert(holders[0]);
  }
  CHECK(used.size() == n);
}

TEST_CASE("hiredis: MGET MSET DEL UNLINK EXISTS TOUCH split across servers and merge in order",
          "[redis][hiredis][split]") {
  const size_t n = GENERATE(1, 3);
  RedisCluster cluster(shards(n));
  const auto per_server = cluster.keys_per_server(4, "split-");
  // Interleave the servers' keys so that consecutive keys live on different servers.
  std::vector<std::string> keys;
  for (size_t i = 0; i < 4; ++i)
    for (size_t s = 0; s < n; ++s)
      keys.push_back(per_server[s][i]);
  Hiredis c(cluster.port());

  std::vector<std::string> mset = {"MSET"};
  std::string want_mget = "[";
  for (size_t i = 0; i < keys.size(); ++i) {
    mset.push_back(keys[i]);
    mset.push_back("value-" + std::to_string(i));
  }
  CHECK(c.call(mset) == "status:OK");
  for (size_t i = 0; i < keys.size(); ++i)
    CHECK(cluster.holders(keys[i]) == std::vector<size_t>{cluster.holder(keys[i])});
  CHECK(cluster.direct_dbsize() == static_cast<long long>(keys.size()));

  // MGET answers in the client's order, with nil for missing keys and for non-strings.
  CHECK(c.call({"HSET", "a-hash", "f", "v"}) == "int:1");
  std::vector<std::string> mget = {"MGET"};
  for (size_t i = keys.size(); i-- > 0;) {
    mget.push_back(keys[i]);
    want_mget += "str:value-" + std::to_string(i) + ", ";
    if (i % 3 == 0) {
      mget.push_back("missing-" + std::to_string(i));
      want_mget += "nil, ";
    }
  }
  mget.push_back("a-hash");
  mget.push_back(keys[0]);
  want_mget += "nil, str:value-0]";
  CHECK(c.call(mget) == want_mget);

  // Integer replies are summed; a key named twice counts twice, as in redis.
  CHECK(c.call({"EXISTS", keys[0], keys[1], keys[0], "missing", keys.back()}) == "int:4");
  CHECK(c.call({"TOUCH", keys[0], keys[1], keys[2], "missing"}) == "int:3");
  CHECK(c.call({"DEL", keys[0], keys[1], "missing", keys[2]}) == "int:3");
  CHECK(c.call({"EXISTS", keys[0], keys[1], keys[2]}) == "int:0");
  std::vector<std::string> unlink = {"UNLINK"};
  for (size_t i = 3; i < keys.size(); ++i)
    unlink.push_back(keys[i]);
  CHECK(c.call(unlink) == "int:" + std::to_string(keys.size() - 3));
  CHECK(cluster.direct_dbsize() == 1);

  // Arity errors for the split commands are redis's.
  Hiredis direct(cluster.server(0).port());
  CHECK(c.call({"MSET", "a"}) == direct.call({"MSET", "a"}));
  CHECK(c.call({"MSET", "a", "1", "b"}) == direct.call({"MSET", "a", "1", "b"}));
  CHECK(c.call({"MGET"}) == direct.call({"MGET"}));
  CHECK(c.call({"DEL"}) == direct.call({"DEL"}));
}

TEST_CASE("hiredis: multi-key commands run on one server or get CROSSSLOT",
          "[redis][hiredis][crossslot]") {
  const size_t n = GENERATE(1, 3);
  RedisCluster cluster(shards(n));
  const auto per_server = cluster.keys_per_server(2, "multi-");
  Hiredis c(cluster.port());
  const std::string crossslot = "err:CROSSSLOT Keys in request don't hash to the same slot";

  // Keys sharing a hash tag always work.
  CHECK(c.call({"SADD", "{t}a", "1", "2", "3"}) == "int:3");
  CHECK(c.call({"SADD", "{t}b", "2", "3", "4"}) == "int:3");
  CHECK(c.call({"SINTERSTORE", "{t}c", "{t}a", "{t}b"}) == "int:2");
  CHECK(c.call({"SUNION", "{t}a", "{t}b"}).size() > 10);
  CHECK(c.call({"SMOVE", "{t}a", "{t}b", "1"}) == "int:1");
  CHECK(c.call({"RENAME", "{t}c", "{t}d"}) == "status:OK");
  CHECK(c.call({"RPUSH", "{t}l", "x", "y"}) == "int:2");
  CHECK(c.call({"LMOVE", "{t}l", "{t}m", "LEFT", "RIGHT"}) == "str:x");
  CHECK(c.call({"ZADD", "{t}z1", "1", "a"}) == "int:1");
  CHECK(c.call({"ZUNIONSTORE", "{t}z3", "2", "{t}z1", "{t}z2"}) == "int:1");
  CHECK(c.call({"PFADD", "{t}h1", "a"}) == "int:1");
  CHECK(c.call({"PFMERGE", "{t}h2", "{t}h1"}) == "status:OK");
  CHECK(c.call({"SET", "{t}s1", "a"}) == "status:OK");
  CHECK(c.call({"BITOP", "AND", "{t}s2", "{t}s1", "{t}s1"}) == "int:1");
  CHECK(c.call({"MSETNX", "{t}x", "1", "{t}y", "2"}) == "int:1");
  CHECK(c.call({"COPY", "{t}x", "{t}x2"}) == "int:1");
  const auto home = cluster.holders("{t}a");
  for (const char* key : {"{t}b", "{t}d", "{t}m", "{t}z3", "{t}h2", "{t}s2", "{t}x2"}) {
    INFO(key);
    CHECK(cluster.holders(key) == home);
  }

  if (n > 1) {
    // Keys on different servers: refused, and nothing is written anywhere.
    const std::string a = per_server[0][0], b = per_server[1][0], a2 = per_server[0][1];
    CHECK(c.call({"SADD", a, "1"}) == "int:1");
    CHECK(c.call({"RENAME", a, b}) == crossslot);
    CHECK(c.call({"SMOVE", a, b, "1"}) == crossslot);
    CHECK(c.call({"SINTERSTORE", a2, a, b}) == crossslot);
    CHECK(c.call({"SUNION", a, b}) == crossslot);
    CHECK(c.call({"LMOVE", a, b, "LEFT", "LEFT"}) == crossslot);
    CHECK(c.call({"ZUNIONSTORE", a2, "2", a, b}) == crossslot);
    CHECK(c.call({"PFMERGE", a2, b}) == crossslot);
    CHECK(c.call({"BITOP", "OR", a2, b}) == crossslot);
    CHECK(c.call({"MSETNX", a2, "1", b, "2"}) == crossslot);
    CHECK(c.call({"COPY", a, b}) == crossslot);
    CHECK(c.call({"EVAL", "return redis.call('get', KEYS[1])", "2", a, b}) == crossslot);
    CHECK(c.call({"SMEMBERS", a}) == "[str:1]");
    CHECK(cluster.holders(b).empty());
    CHECK(cluster.holders(a2).empty());
    // Two keys of one server need no tag.
    CHECK(c.call({"RENAME", a, a2}) == "status:OK");
    CHECK(cluster.holders(a2) == std::vector<size_t>{0});
  }
  CHECK(c.call({"PING"}) == "status:PONG");
}

TEST_CASE("hiredis: whole-pool commands reach every server", "[redis][hiredis][pool]") {
  const size_t n = GENERATE(1, 3);
  RedisCluster cluster(shards(n));
  Hiredis c(cluster.port());

  std::vector<std::string> mset = {"MSET"};
  std::set<std::string> all_keys;
  for (int i = 0; i < 60; ++i) {
    mset.push_back("pool:" + std::to_string(i));
    mset.push_back("v");
    all_keys.insert(mset[mset.size() - 2]);
  }
  CHECK(c.call(mset) == "status:OK");
  CHECK(c.call({"HSET", "pool:hash", "f", "v"}) == "int:1");
  all_keys.insert("pool:hash");

  CHECK(c.call({"DBSIZE"}) == "int:61");
  CHECK(cluster.direct_dbsize() == 61);
  auto keys = c.command({"KEYS", "pool:*"});
  CHECK(multiset_of(keys.get()) == std::multiset<std::string>(all_keys.begin(), all_keys.end()));
  CHECK(c.call({"KEYS", "nothing*"}) == "[]");

  // SCAN: with a COUNT larger than any server's keyspace, each call returns one whole server,
  // so a full iteration takes exactly one call per server.
  {
    std::multiset<std::string> seen;
    std::string cursor = "0";
    size_t calls = 0;
    do {
      auto r = c.command({"SCAN", cursor, "COUNT", "1000"});
      REQUIRE(r);
      REQUIRE(r->type == REDIS_REPLY_ARRAY);
      REQUIRE(r->elements == 2);
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (const auto& k : strings_of(r->element[1]))
        seen.insert(k);
      ++calls;
    } while (cursor != "0" && calls < 100);
    CHECK(calls == n);
    CHECK(seen == std::multiset<std::string>(all_keys.begin(), all_keys.end()));
  }
  // Small steps, MATCH and TYPE are passed on to the servers.
  {
    std::set<std::string> seen;
    std::set<std::string> want;
    for (const auto& k : all_keys)
      if (k.find(":1") != std::string::npos) want.insert(k);
    std::string cursor = "0";
    size_t calls = 0;
    do {
      auto r = c.command({"SCAN", cursor, "MATCH", "pool:1*", "COUNT", "3"});
      REQUIRE(r);
      REQUIRE(r->elements == 2);
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (const auto& k : strings_of(r->element[1]))
        seen.insert(k);
    } while (cursor != "0" && ++calls < 1000);
    CHECK(seen == want);
    std::set<std::string> hashes;
    cursor = "0";
    calls = 0;
    do {
      auto r = c.command({"SCAN", cursor, "TYPE", "hash", "COUNT", "1000"});
      REQUIRE(r);
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (const auto& k : strings_of(r->element[1]))
        hashes.insert(k);
    } while (cursor != "0" && ++calls < 100);
    CHECK(hashes == std::set<std::string>{"pool:hash"});
  }
  CHECK(starts_with(c.call({"SCAN", "not-a-cursor"}), "err:ERR invalid cursor"));

  auto random = c.command({"RANDOMKEY"});
  REQUIRE(random);
  REQUIRE(random->type == REDIS_REPLY_STRING);
  CHECK(all_keys.count(std::string(random->str, random->len)) == 1);

  // INFO: cachegate's section first, the keyspace summed over the servers.
  auto info = c.command({"INFO"});
  REQUIRE(info);
  REQUIRE(info->type == REDIS_REPLY_STRING);
  const std::string text(info->str, info->len);
  CHECK(starts_with(text, "# Cachegate\r\n"));
  CHECK(text.find("pool_servers:" + std::to_string(n) + "\r\n") != std::string::npos);
  CHECK(text.find("# Server\r\n") != std::string::npos);
  CHECK(text.find("\r\ndb0:keys=61,expires=0,") != std::string::npos);
  auto keyspace = c.command({"INFO", "keyspace"});
  REQUIRE(keyspace);
  const std::string ks(keyspace->str, keyspace->len);
  CHECK(ks.find("db0:keys=61,expires=0,") != std::string::npos);
  CHECK(ks.find("# Server") == std::string::npos);

  // CONFIG: GET from one server, SET on every one.
  CHECK(c.call({"CONFIG", "GET", "maxmemory-policy"}) == "[str:maxmemory-policy, str:noeviction]");
  CHECK(c.call({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}) == "status:OK");
  for (size_t s = 0; s < n; ++s) {
    Hiredis d(cluster.server(s).port());
    CHECK(d.call({"CONFIG", "GET", "maxmemory-policy"}) ==
          "[str:maxmemory-policy, str:allkeys-lru]");
  }
  CHECK(c.call({"CONFIG", "SET", "no-such-parameter", "1"}) ==
        Hiredis(cluster.server(0).port()).call({"CONFIG", "SET", "no-such-parameter", "1"}));
  CHECK(c.call({"CONFIG", "RESETSTAT"}) == "status:OK");
  // The servers run without a config file: their own refusal comes back.
  CHECK(c.call({"CONFIG", "REWRITE"}) ==
        Hiredis(cluster.server(0).port()).call({"CONFIG", "REWRITE"}));

  // SCRIPT on every server, so EVALSHA works whichever server a key is on.
  const std::string script = "return redis.call('get', KEYS[1])";
  auto sha = c.command({"SCRIPT", "LOAD", script});
  REQUIRE(sha);
  REQUIRE(sha->type == REDIS_REPLY_STRING);
  const std::string sha1(sha->str, sha->len);
  for (size_t s = 0; s < n; ++s)
    CHECK(Hiredis(cluster.server(s).port()).call({"SCRIPT", "EXISTS", sha1}) == "[int:1]");
  CHECK(c.call({"SCRIPT", "EXISTS", sha1, "0000000000000000000000000000000000000000"}) ==
        "[int:1, int:0]");
  for (int i = 0; i < 60; i += 7)
    CHECK(c.call({"EVALSHA", sha1, "1", "pool:" + std::to_string(i)}) == "str:v");
  CHECK(c.call({"SCRIPT", "FLUSH"}) == "status:OK");
  CHECK(c.call({"SCRIPT", "EXISTS", sha1}) == "[int:0]");
  CHECK(starts_with(c.call({"EVALSHA", sha1, "1", "pool:1"}), "err:NOSCRIPT"));

  // FUNCTION: LOAD, DELETE, FLUSH and RESTORE on every server; LIST, DUMP, STATS from one.
  const std::string library =
      "#!lua name=cglib\n"
      "redis.register_function('cg_get', function(keys, args) return redis.call('get', "
      "keys[1]) end)\n"
      "redis.register_function{function_name='cg_echo', callback=function(keys, args) return "
      "args[1] end, flags={'no-writes'}}";
  CHECK(c.call({"FUNCTION", "LOAD", library}) == "str:cglib");
  for (size_t s = 0; s < n; ++s)
    CHECK(Hiredis(cluster.server(s).port()).call({"FCALL", "cg_echo", "0", "x"}) == "str:x");
  for (int i = 0; i < 60; i += 7)
    CHECK(c.call({"FCALL", "cg_get", "1", "pool:" + std::to_string(i)}) == "str:v");
  CHECK(c.call({"FCALL_RO", "cg_echo", "0", "hi"}) == "str:hi");
  CHECK(c.call({"FUNCTION", "LIST"}).find("str:cglib") != std::string::npos);
  CHECK(c.call({"FUNCTION", "STATS"}).find("str:engines") != std::string::npos);
  auto dump = c.command({"FUNCTION", "DUMP"});
  REQUIRE(dump);
  REQUIRE(dump->type == REDIS_REPLY_STRING);
  const std::string payload(dump->str, dump->len);
  CHECK(c.call({"FUNCTION", "LOAD", library}) ==
        Hiredis(cluster.server(0).port()).call({"FUNCTION", "LOAD", library}));
  CHECK(c.call({"FUNCTION", "DELETE", "cglib"}) == "status:OK");
  for (size_t s = 0; s < n; ++s)
    CHECK(Hiredis(cluster.server(s).port()).call({"FUNCTION", "LIST"}) == "[]");
  CHECK(c.call({"FUNCTION", "RESTORE", payload}) == "status:OK");
  for (size_t s = 0; s < n; ++s)
    CHECK(Hiredis(cluster.server(s).port()).call({"FCALL", "cg_echo", "0", "y"}) == "str:y");
  CHECK(c.call({"FUNCTION", "FLUSH"}) == "status:OK");
  for (size_t s = 0; s < n; ++s)
    CHECK(Hiredis(cluster.server(s).port()).call({"FUNCTION", "LIST"}) == "[]");

  // TIME, LASTSAVE, LOLWUT from one server.
  auto time = c.command({"TIME"});
  REQUIRE(time);
  REQUIRE(time->elements == 2);
  CHECK(std::abs(std::stoll(std::string(time->element[0]->str, time->element[0]->len)) -
                 static_cast<long long>(::time(nullptr))) < 5);
  auto lastsave = c.command({"LASTSAVE"});
  REQUIRE(lastsave);
  CHECK(lastsave->type == REDIS_REPLY_INTEGER);
  CHECK(c.call({"LOLWUT", "VERSION", "5", "1", "1", "1"}).find("Redis ver. 7.0.15") !=
        std::string::npos);

  // FLUSHDB and FLUSHALL empty every server.
  CHECK(c.call({"FLUSHDB"}) == "status:OK");
  CHECK(cluster.direct_dbsize() == 0);
  CHECK(c.call({"SET", "again", "1"}) == "status:OK");
  CHECK(c.call({"FLUSHALL"}) == "status:OK");
  CHECK(cluster.direct_dbsize() == 0);
  CHECK(c.call({"DBSIZE"}) == "int:0");
  CHECK(c.call({"RANDOMKEY"}) == "nil");
}

TEST_CASE("hiredis: unsupported commands get an error naming them and the connection goes on",
          "[redis][hiredis][unsupported]") {
  RedisCluster cluster(shards(3));
  Hiredis c(cluster.port());
  const std::vector<std::vector<std::string>> requests = {
      {"CLIENT", "TRACKING", "ON"},
      {"SHUTDOWN"},
      {"DEBUG", "SLEEP", "0"},
      {"MONITOR"},
      {"CLUSTER", "INFO"},
      {"ACL", "LIST"},
      {"MOVE", "k", "1"},
      {"SWAPDB", "0", "1"},
      {"CLIENT", "KILL", "ID", "1"},
      {"CLIENT", "LIST"},
      {"CLIENT", "REPLY", "OFF"},
      {"CLIENT", "PAUSE", "100"},
      {"SAVE"},
      {"BGSAVE"},
      {"REPLICAOF", "NO", "ONE"},
      {"SLOWLOG", "GET"},
  };
  for (const auto& r : requests) {
    INFO(r[0] + (r.size() > 1 ? " " + r[1] : ""));
    const std::string reply = c.call(r);
    CHECK(starts_with(reply, "err:ERR command '"));
    CHECK(reply.find("' is not supported by cachegate: ") != std::string::npos);
    std::string lower = r[0];
    for (auto& ch : lower)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    CHECK(reply.find("'" + lower) != std::string::npos);
    CHECK(c.call({"PING"}) == "status:PONG");
  }
  // ACL WHOAMI is answered: without a login, the client is Redis's default user.
  CHECK(c.call({"ACL", "WHOAMI"}) == "str:default");
  // None of them reached a server: the servers are still up and unpaused, with no key written.
  for (size_t s = 0; s < cluster.size(); ++s)
    CHECK(Hiredis(cluster.server(s).port()).call({"PING"}) == "status:PONG");
  CHECK(c.call({"SET", "k", "v"}) == "status:OK");
  CHECK(c.call({"GET", "k"}) == "str:v");
}

TEST_CASE("hiredis: pipelined commands of every class come back in order",
          "[redis][hiredis][pipeline]") {
  const size_t n = GENERATE(1, 3);
  RedisCluster cluster(shards(n));
  Hiredis c(cluster.port());
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i) {
    const std::string k = "p:" + std::to_string(i);
    const std::string k2 = "p:" + std::to_string(i + 1000);
    c.append({"SET", k, "v" + std::to_string(i)});
    want.push_back("status:OK");
    c.append({"PING"});
    want.push_back("status:PONG");
    c.append({"MSET", k2, "a", k + "x", "b"});
    want.push_back("status:OK");
    c.append({"MGET", k, "nope", k2, k + "x"});
    want.push_back("[str:v" + std::to_string(i) + ", nil, str:a, str:b]");
    // Blocking, on a connection of its own, with the pipeline held behind it: the key holds a
    // string, so the server answers at once.
    c.append({"BLPOP", k, "0"});
    want.push_back("err:WRONGTYPE Operation against a key holding the wrong kind of value");
    c.append({"GET"});
    want.push_back("err:ERR wrong number of arguments for 'get' command");
    c.append({"INCR", k});
    want.push_back("err:ERR value is not an integer or out of range");
    c.append({"DEL", k, k2, k + "x", "nope"});
    want.push_back("int:3");
    c.append({"ECHO", k});
    want.push_back("str:" + k);
    if (i % 50 == 0) {
      c.append({"DBSIZE"});
      want.push_back("int:0");
    }
  }
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("reply " << i);
    auto reply = c.get_reply();
    REQUIRE(reply);
    REQUIRE(describe(reply.get()) == want[i]);
  }
}

}  // namespace
}  // namespace cachegate
