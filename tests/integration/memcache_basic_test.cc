// The memcached text protocol through cachegate, against real memcached shards: retrieval split
// across servers and merged back, every storage and single-key command with and without
// noreply, and the commands cachegate answers or fans out itself. Every effect is checked on
// the servers directly, not only through cachegate's replies.

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "tests/support/memcache_cluster.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::MemcacheCluster;
using testing::TextClient;
using testing::value_item;

struct Item {
  std::string key;
  uint32_t flags;
  std::string cas;  // empty unless from gets/gats
  std::string data;
};

// Splits a complete retrieval reply into its items; REQUIREs that it ends with a single END.
std::vector<Item> parse_items(const std::string& reply) {
  std::vector<Item> items;
  size_t pos = 0;
  for (;;) {
    const size_t eol = reply.find("\r\n", pos);
    REQUIRE(eol != std::string::npos);
    const std::string line = reply.substr(pos, eol - pos);
    if (line == "END") {
      REQUIRE(eol + 2 == reply.size());
      return items;
    }
    REQUIRE(line.rfind("VALUE ", 0) == 0);
    std::vector<std::string> fields;
    for (size_t p = 0; p != std::string::npos;) {
      const size_t q = line.find(' ', p);
      fields.push_back(line.substr(p, q == std::string::npos ? q : q - p));
      p = q == std::string::npos ? q : q + 1;
    }
    REQUIRE((fields.size() == 4 || fields.size() == 5));
    const size_t length = std::stoul(fields[3]);
    Item item{fields[1], static_cast<uint32_t>(std::stoul(fields[2])),
              fields.size() == 5 ? fields[4] : "", reply.substr(eol + 2, length)};
    REQUIRE(reply.substr(eol + 2 + length, 2) == "\r\n");
    items.push_back(item);
    pos = eol + 2 + length + 2;
  }
}

// The cas unique of `key` on server `s`, from a direct gets.
std::string direct_cas(MemcacheCluster& cluster, size_t s, const std::string& key) {
  auto d = cluster.direct(s);
  auto items = parse_items(d->call("gets " + key + "\r\n", "get").value_or(""));
  REQUIRE(items.size() == 1);
  return items[0].cas;
}

// The remaining lifetime of `key` on server `s` in seconds, from a direct "mg <key> t" ("-1":
// never expires).
std::string direct_exptime(MemcacheCluster& cluster, size_t s, const std::string& key) {
  auto d = cluster.direct(s);
  auto line = d->call("mg " + key + " t\r\n", "meta").value_or("");
  const size_t p = line.find(" t");
  REQUIRE(line.rfind("HD ", 0) == 0);
  REQUIRE(p != std::string::npos);
  return line.substr(p + 2, line.find_first_of(" \r", p + 2) - p - 2);
}

std::string trim_right(std::string s) {
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

uint64_t stat_value(TextClient& client, const std::string& name) {
  auto reply = client.call("stats\r\n", "get");
  REQUIRE(reply);
  const std::string needle = "STAT " + name + " ";
  const size_t p = reply->find(needle);
  REQUIRE(p != std::string::npos);
  return std::stoull(reply->substr(p + needle.size(), reply->find("\r\n", p) - p - needle.size()));
}

TEST_CASE("multi-key get is split across shards and merged in the client's key order",
          "[memcache][retrieval]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(4, "mk-");
  auto c = cluster.client();

  // Distinct values and flags per key, stored through cachegate.
  std::map<std::string, std::string> value;
  std::map<std::string, uint32_t> flags;
  uint32_t n = 0;
  for (size_t s = 0; s < keys.size(); ++s) {
    for (const auto& k : keys[s]) {
      value[k] = "value-of-" + k + std::string(n * 7, 'v');
      flags[k] = 100 + n++;
      REQUIRE(c->call("set " + k + " " + std::to_string(flags[k]) + " 0 " +
                      std::to_string(value[k].size()) + "\r\n" + value[k] + "\r\n") ==
              "STORED\r\n");
    }
  }
  // Each key is on the shard it was learnt on, and only there.
  for (size_t s = 0; s < keys.size(); ++s)
    for (const auto& k : keys[s])
      REQUIRE(cluster.holders(k) == std::vector<size_t>{s});

  // Shards interleaved, misses in between: the reply follows the request's order exactly.
  const std::vector<std::string> order = {
      keys[2][0],  keys[0][0], "missing-1", keys[1][0], keys[1][1], keys[0][1], keys[2][1],
      "missing-2", keys[0][2], keys[2][2],  keys[1][2], keys[2][3], keys[0][3], keys[1][3]};
  std::string command = "get";
  std::string expected;
  for (const auto& k : order) {
    command += " " + k;
    if (value.count(k)) expected += value_item(k, value[k], flags[k]);
  }
  expected += "END\r\n";
  CHECK(c->call(command + "\r\n", "get") == expected);

  SECTION("gets carries each server's own cas unique") {
    auto reply = c->call("gets" + command.substr(3) + "\r\n", "get");
    REQUIRE(reply);
    auto items = parse_items(*reply);
    std::vector<std::string> hits;
    for (const auto& k : order)
      if (value.count(k)) hits.push_back(k);
    REQUIRE(items.size() == hits.size());
    for (size_t i = 0; i < items.size(); ++i) {
      CHECK(items[i].key == hits[i]);
      CHECK(items[i].data == value[hits[i]]);
      CHECK(items[i].flags == flags[hits[i]]);
      for (size_t s = 0; s < keys.size(); ++s)
        for (const auto& k : keys[s])
          if (k == hits[i]) CHECK(items[i].cas == direct_cas(cluster, s, k));
    }
  }

  SECTION("gat and gats touch every key on every shard") {
    for (size_t s = 0; s < keys.size(); ++s)
      CHECK(direct_exptime(cluster, s, keys[s][0]) == "-1");
    CHECK(c->call("gat 1000" + command.substr(3) + "\r\n", "get") == expected);
    for (size_t s = 0; s < keys.size(); ++s) {
      for (const auto& k : keys[s]) {
        const std::string exp = direct_exptime(cluster, s, k);
        CHECK(exp != "-1");
        CHECK(std::stoi(exp) > 900);
      }
    }
    auto reply = c->call("gats 2000" + command.substr(3) + "\r\n", "get");
    REQUIRE(reply);
    auto items = parse_items(*reply);
    CHECK(items.size() == value.size());
    for (const auto& item : items)
      CHECK_FALSE(item.cas.empty());
    CHECK(std::stoi(direct_exptime(cluster, 1, keys[1][0])) > 1900);
  }

  SECTION("duplicate keys are answered once per mention") {
    const std::string a = keys[0][0], b = keys[1][0];
    CHECK(c->call("get " + a + " " + a + "\r\n", "get") ==
          value_item(a, value[a], flags[a]) + value_item(a, value[a], flags[a]) + "END\r\n");
    CHECK(c->call("get " + a + " " + b + " " + a + " " + b + " " + b + "\r\n", "get") ==
          value_item(a, value[a], flags[a]) + value_item(b, value[b], flags[b]) +
              value_item(a, value[a], flags[a]) + value_item(b, value[b], flags[b]) +
              value_item(b, value[b], flags[b]) + "END\r\n");
  }

  SECTION("all misses and a single shard") {
    CHECK(c->call("get nope-1 nope-2 nope-3 nope-4\r\n", "get") == "END\r\n");
    const std::string k0 = keys[0][0], k1 = keys[0][1];
    CHECK(c->call("get " + k1 + " " + k0 + "\r\n", "get") ==
          value_item(k1, value[k1], flags[k1]) + value_item(k0, value[k0], flags[k0]) + "END\r\n");
  }

  SECTION("a hundred keys over three shards") {
    std::string big = "get";
    std::string big_expected;
    for (int i = 0; i < 100; ++i) {
      // The varying part first: twemproxy's fnv1a_64 spreads keys that differ only in their last
      // bytes over a narrow arc of the ring.
      const std::string k = std::to_string(i) + "-many";
      big += " " + k;
      if (i % 2 == 0) {
        const std::string v = "v" + std::to_string(i * i);
        REQUIRE(c->call("set " + k + " " + std::to_string(i) + " 0 " + std::to_string(v.size()) +
                        "\r\n" + v + "\r\n") == "STORED\r\n");
        big_expected += value_item(k, v, static_cast<uint32_t>(i));
      }
    }
    CHECK(c->call(big + "\r\n", "get") == big_expected + "END\r\n");
    // The keys really are spread: every shard holds some of them.
    for (size_t s = 0; s < cluster.size(); ++s) {
      std::vector<std::string> all;
      for (int i = 0; i < 100; i += 2)
        all.push_back(std::to_string(i) + "-many");
      CHECK(cluster.held_by(s, all).size() > 3);
    }
  }
}

TEST_CASE("storage commands reach the owning server, with and without noreply",
          "[memcache][storage]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(3, "st-");
  auto c = cluster.client();

  // A command and, in the same write, a get whose reply must be the very next bytes: a noreply
  // command that answered anyway would show up here.
  auto quiet_then_get = [&](const std::string& command, const std::string& key) {
    c->send(command + "get " + key + "\r\n");
    return c->read_reply("get").value_or("<no reply>");
  };

  for (size_t s = 0; s < 2; ++s) {
    const size_t other = 1 - s;
    const std::string k = keys[s][0];
    INFO("key " << k << " on shard " << s);

    DYNAMIC_SECTION("set, shard " << s) {
      CHECK(c->call("set " + k + " 7 0 5\r\nhello\r\n") == "STORED\r\n");
      CHECK(cluster.direct_get(s, k) == "hello");
      CHECK_FALSE(cluster.direct_get(other, k));
      CHECK(quiet_then_get("set " + k + " 8 0 3 noreply\r\nbye\r\n", k) ==
            value_item(k, "bye", 8) + "END\r\n");
      CHECK(cluster.direct_get(s, k) == "bye");
      CHECK_FALSE(cluster.direct_get(other, k));
    }

    DYNAMIC_SECTION("add, shard " << s) {
      CHECK(c->call("add " + k + " 0 0 1\r\na\r\n") == "STORED\r\n");
      CHECK(c->call("add " + k + " 0 0 1\r\nb\r\n") == "NOT_STORED\r\n");
      CHECK(cluster.direct_get(s, k) == "a");
      // A noreply add that fails is as silent as one that succeeds.
      CHECK(quiet_then_get("add " + k + " 0 0 1 noreply\r\nc\r\n", k) ==
            value_item(k, "a") + "END\r\n");
      const std::string k2 = keys[s][1];
      CHECK(quiet_then_get("add " + k2 + " 3 0 1 noreply\r\nd\r\n", k2) ==
            value_item(k2, "d", 3) + "END\r\n");
      CHECK(cluster.direct_get(s, k2) == "d");
    }

    DYNAMIC_SECTION("replace, shard " << s) {
      CHECK(c->call("replace " + k + " 0 0 1\r\na\r\n") == "NOT_STORED\r\n");
      CHECK(cluster.holders(k).empty());
      CHECK(quiet_then_get("replace " + k + " 0 0 1 noreply\r\na\r\n", k) == "END\r\n");
      REQUIRE(c->call("set " + k + " 0 0 1\r\na\r\n") == "STORED\r\n");
      CHECK(c->call("replace " + k + " 0 0 2\r\nbb\r\n") == "STORED\r\n");
      CHECK(cluster.direct_get(s, k) == "bb");
      CHECK(quiet_then_get("replace " + k + " 0 0 3 noreply\r\nccc\r\n", k) ==
            value_item(k, "ccc") + "END\r\n");
      CHECK(cluster.direct_get(s, k) == "ccc");
    }

    DYNAMIC_SECTION("append and prepend, shard " << s) {
      CHECK(c->call("append " + k + " 0 0 1\r\nx\r\n") == "NOT_STORED\r\n");
      REQUIRE(c->call("set " + k + " 0 0 3\r\nmid\r\n") == "STORED\r\n");
      CHECK(c->call("append " + k + " 0 0 4\r\n-end\r\n") == "STORED\r\n");
      CHECK(c->call("prepend " + k + " 0 0 6\r\nstart-\r\n") == "STORED\r\n");
      CHECK(cluster.direct_get(s, k) == "start-mid-end");
      CHECK(quiet_then_get("append " + k + " 0 0 1 noreply\r\n>\r\n", k) ==
            value_item(k, "start-mid-end>") + "END\r\n");
      CHECK(quiet_then_get("prepend " + k + " 0 0 1 noreply\r\n<\r\n", k) ==
            value_item(k, "<start-mid-end>") + "END\r\n");
      CHECK(cluster.direct_get(s, k) == "<start-mid-end>");
    }

    DYNAMIC_SECTION("cas with the unique from gets, shard " << s) {
      CHECK(c->call("cas " + k + " 0 0 1 12345\r\nx\r\n") == "NOT_FOUND\r\n");
      REQUIRE(c->call("set " + k + " 0 0 2\r\nv1\r\n") == "STORED\r\n");
      auto items = parse_items(c->call("gets " + k + "\r\n", "get").value_or(""));
      REQUIRE(items.size() == 1);
      const std::string cas1 = items[0].cas;
      CHECK(cas1 == direct_cas(cluster, s, k));
      CHECK(c->call("cas " + k + " 0 0 2 " + cas1 + "\r\nv2\r\n") == "STORED\r\n");
      CHECK(cluster.direct_get(s, k) == "v2");
      CHECK(c->call("cas " + k + " 0 0 2 " + cas1 + "\r\nv3\r\n") == "EXISTS\r\n");
      CHECK(cluster.direct_get(s, k) == "v2");
      const std::string cas2 = direct_cas(cluster, s, k);
      CHECK(cas2 != cas1);
      CHECK(quiet_then_get("cas " + k + " 0 0 2 " + cas1 + " noreply\r\nv4\r\n", k) ==
            value_item(k, "v2") + "END\r\n");
      CHECK(quiet_then_get("cas " + k + " 5 0 2 " + cas2 + " noreply\r\nv5\r\n", k) ==
            value_item(k, "v5", 5) + "END\r\n");
      CHECK(cluster.direct_get(s, k) == "v5");
    }

    DYNAMIC_SECTION("delete, shard " << s) {
      CHECK(c->call("delete " + k + "\r\n") == "NOT_FOUND\r\n");
      REQUIRE(c->call("set " + k + " 0 0 1\r\nx\r\n") == "STORED\r\n");
      CHECK(c->call("delete " + k + "\r\n") == "DELETED\r\n");
      CHECK(cluster.holders(k).empty());
      REQUIRE(c->call("set " + k + " 0 0 1\r\nx\r\n") == "STORED\r\n");
      CHECK(quiet_then_get("delete " + k + " noreply\r\n", k) == "END\r\n");
      CHECK(cluster.holders(k).empty());
      CHECK(quiet_then_get("delete " + k + " noreply\r\n", k) == "END\r\n");
      // The legacy "0" hold time memcached still accepts.
      REQUIRE(c->call("set " + k + " 0 0 1\r\nx\r\n") == "STORED\r\n");
      CHECK(c->call("delete " + k + " 0\r\n") == "DELETED\r\n");
    }

    DYNAMIC_SECTION("incr and decr, shard " << s) {
      // memcached rewrites a shorter number in place, padded with spaces to the old length.
      auto number_on = [&](size_t server) {
        return trim_right(cluster.direct_get(server, k).value_or("<miss>"));
      };
      auto number_via_get = [&](const std::string& command) {
        auto items = parse_items(quiet_then_get(command, k));
        REQUIRE(items.size() == 1);
        return trim_right(items[0].data);
      };
      CHECK(c->call("incr " + k + " 1\r\n") == "NOT_FOUND\r\n");
      REQUIRE(c->call("set " + k + " 0 0 2\r\n10\r\n") == "STORED\r\n");
      CHECK(c->call("incr " + k + " 5\r\n") == "15\r\n");
      CHECK(c->call("decr " + k + " 3\r\n") == "12\r\n");
      CHECK(c->call("decr " + k + " 100\r\n") == "0\r\n");  // decr stops at zero
      CHECK(c->call("incr " + k + " 18446744073709551615\r\n") == "18446744073709551615\r\n");
      CHECK(c->call("incr " + k + " 2\r\n") == "1\r\n");  // incr wraps at 64 bits
      CHECK(number_on(s) == "1");
      CHECK(number_via_get("incr " + k + " 41 noreply\r\n") == "42");
      CHECK(number_via_get("decr " + k + " 2 noreply\r\n") == "40");
      CHECK(number_on(s) == "40");
      CHECK_FALSE(cluster.direct_get(other, k));
      REQUIRE(c->call("set " + k + " 0 0 3\r\nabc\r\n") == "STORED\r\n");
      CHECK(c->call("incr " + k + " 1\r\n") ==
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
      // The server's error for a noreply request is not passed on.
      CHECK(quiet_then_get("incr " + k + " 1 noreply\r\n", k) == value_item(k, "abc") + "END\r\n");
    }

    DYNAMIC_SECTION("touch, shard " << s) {
      CHECK(c->call("touch " + k + " 100\r\n") == "NOT_FOUND\r\n");
      REQUIRE(c->call("set " + k + " 0 0 1\r\nx\r\n") == "STORED\r\n");
      CHECK(direct_exptime(cluster, s, k) == "-1");
      CHECK(c->call("touch " + k + " 1000\r\n") == "TOUCHED\r\n");
      CHECK(std::stoi(direct_exptime(cluster, s, k)) > 900);
      CHECK(quiet_then_get("touch " + k + " 5000 noreply\r\n", k) ==
            value_item(k, "x") + "END\r\n");
      CHECK(std::stoi(direct_exptime(cluster, s, k)) > 4900);
      // A negative exptime expires the item at once.
      CHECK(quiet_then_get("touch " + k + " -1 noreply\r\n", k) == "END\r\n");
      CHECK(cluster.holders(k).empty());
    }
  }
}

TEST_CASE("a run of noreply requests leaves every later reply in step", "[memcache][noreply]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(10, "nr-");
  auto c = cluster.client();
  std::string batch;
  for (size_t s = 0; s < 2; ++s) {
    for (const auto& k : keys[s]) {
      batch += "set " + k + " 1 0 " + std::to_string(k.size()) + " noreply\r\n" + k + "\r\n";
      batch += "add " + k + " 0 0 1 noreply\r\nz\r\n";  // fails: NOT_STORED dropped
      batch += "incr " + k + " 1 noreply\r\n";          // fails: CLIENT_ERROR dropped
      batch += "append " + k + " 0 0 2 noreply\r\n!!\r\n";
      batch += "touch " + k + " 0 noreply\r\n";
    }
  }
  batch += "delete " + keys[0][9] + " noreply\r\n";
  batch += "delete " + keys[1][9] + " noreply\r\n";
  batch += "get";
  std::string expected;
  for (size_t i = 0; i < 10; ++i) {
    for (size_t s = 0; s < 2; ++s) {
      batch += " " + keys[s][i];
      if (i != 9) expected += value_item(keys[s][i], keys[s][i] + "!!", 1);
    }
  }
  batch += "\r\nversion\r\n";
  c->send(batch);
  CHECK(c->read_reply("get") == expected + "END\r\n");
  auto version = c->read_line();
  REQUIRE(version);
  CHECK(version->rfind("VERSION ", 0) == 0);
  for (size_t s = 0; s < 2; ++s) {
    CHECK(cluster.direct_get(s, keys[s][0]) == keys[s][0] + "!!");
    CHECK_FALSE(cluster.direct_get(1 - s, keys[s][0]));
    CHECK(cluster.holders(keys[s][9]).empty());
  }
}

TEST_CASE("version, verbosity, stats and quit are answered by cachegate", "[memcache][admin]") {
  MemcacheCluster cluster;
  auto c = cluster.client();

  SECTION("version") {
    auto line = c->call("version\r\n");
    REQUIRE(line);
    CHECK(line->rfind("VERSION 1.6.0", 0) == 0);
    CHECK(line->size() > 2);
    CHECK(line->substr(line->size() - 2) == "\r\n");
  }

  SECTION("verbosity") {
    CHECK(c->call("verbosity 1\r\n") == "OK\r\n");
    CHECK(c->call("verbosity 0\r\n") == "OK\r\n");
    c->send("verbosity 1 noreply\r\nverbosity 2 noreply\r\nget nothing-here\r\n");
    CHECK(c->read_reply("get") == "END\r\n");
  }

  SECTION("stats counts requests") {
    auto reply = c->call("stats\r\n", "get");
    REQUIRE(reply);
    CHECK(reply->rfind("STAT ", 0) == 0);
    CHECK(reply->size() > 5);
    CHECK(reply->substr(reply->size() - 5) == "END\r\n");
    for (const char* name :
         {"pid", "uptime", "curr_connections", "cmd_get", "cmd_set", "get_hits", "get_misses"}) {
      CHECK(("\r\n" + *reply).find(std::string("\r\nSTAT ") + name + " ") != std::string::npos);
    }
    // Every line but the END is a STAT line.
    size_t pos = 0;
    while (pos < reply->size()) {
      const size_t eol = reply->find("\r\n", pos);
      const std::string line = reply->substr(pos, eol - pos);
      if (line != "END") CHECK(line.rfind("STAT ", 0) == 0);
      pos = eol + 2;
    }

    const uint64_t gets = stat_value(*c, "cmd_get");
    const uint64_t sets = stat_value(*c, "cmd_set");
    const uint64_t hits = stat_value(*c, "get_hits");
    const uint64_t misses = stat_value(*c, "get_misses");
    REQUIRE(c->call("set counted 0 0 1\r\nx\r\n") == "STORED\r\n");
    for (int i = 0; i < 5; ++i)
      REQUIRE(c->call("get counted not-there-a not-there-b\r\n", "get"));
    CHECK(stat_value(*c, "cmd_get") == gets + 15);
    CHECK(stat_value(*c, "cmd_set") == sets + 1);
    CHECK(stat_value(*c, "get_hits") == hits + 5);
    CHECK(stat_value(*c, "get_misses") == misses + 10);
  }

  SECTION("stats servers names every backend") {
    REQUIRE(c->call("get some-key\r\n", "get") == "END\r\n");
    auto reply = c->call("stats servers\r\n", "get");
    REQUIRE(reply);
    CHECK(reply->substr(reply->size() - 5) == "END\r\n");
    for (size_t s = 0; s < cluster.size(); ++s)
      CHECK(reply->find("127.0.0.1:" + std::to_string(cluster.server(s).port())) !=
            std::string::npos);
  }

  SECTION("an unknown stats group is an error, and the connection goes on") {
    auto reply = c->call("stats no-such-group\r\n", "get");
    REQUIRE(reply);
    CHECK((reply->rfind("CLIENT_ERROR", 0) == 0 || *reply == "ERROR\r\n"));
    CHECK(c->call("get x\r\n", "get") == "END\r\n");
  }

  SECTION("quit closes the connection after the replies before it") {
    REQUIRE(c->call("set q 0 0 1\r\nq\r\n") == "STORED\r\n");
    c->send("get q\r\nquit\r\nget q\r\n");
    CHECK(c->read_reply("get") == value_item("q", "q") + "END\r\n");
    CHECK(c->peer_closed());
    CHECK_FALSE(c->read_line());
    // Other connections are unaffected.
    auto other = cluster.client();
    CHECK(other->call("get q\r\n", "get") == value_item("q", "q") + "END\r\n");
  }
}

// memcached's own count of flush_all commands it has run.
uint64_t server_flushes(MemcacheCluster& cluster, size_t s) {
  auto d = cluster.direct(s);
  return stat_value(*d, "cmd_flush");
}

TEST_CASE("flush_all is refused unless the pool allows it", "[memcache][flush]") {
  ClusterOptions options;
  options.allow_flush = false;
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(1, "fl-");
  auto c = cluster.client();
  for (size_t s = 0; s < 2; ++s)
    REQUIRE(c->call("set " + keys[s][0] + " 0 0 1\r\nx\r\n") == "STORED\r\n");

  auto reply = c->call("flush_all\r\n");
  REQUIRE(reply);
  CHECK(reply->rfind("CLIENT_ERROR ", 0) == 0);
  CHECK(c->call("flush_all 0\r\n").value_or("").rfind("CLIENT_ERROR ", 0) == 0);
  // noreply: nothing comes back, and nothing is flushed either.
  c->send("flush_all noreply\r\nget " + keys[0][0] + " " + keys[1][0] + "\r\n");
  CHECK(c->read_reply("get") ==
        value_item(keys[0][0], "x") + value_item(keys[1][0], "x") + "END\r\n");
  for (size_t s = 0; s < 2; ++s) {
    CHECK(cluster.direct_get(s, keys[s][0]) == "x");
    CHECK(server_flushes(cluster, s) == 0);
  }
}

TEST_CASE("flush_all reaches every server when the pool allows it", "[memcache][flush]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(2, "fl-");
  auto c = cluster.client();
  auto store_all = [&] {
    for (const auto& group : keys)
      for (const auto& k : group)
        REQUIRE(c->call("set " + k + " 0 0 1\r\nx\r\n") == "STORED\r\n");
    for (size_t s = 0; s < keys.size(); ++s)
      REQUIRE(cluster.direct_get(s, keys[s][0]) == "x");
  };
  auto all_gone = [&] {
    for (size_t s = 0; s < keys.size(); ++s)
      for (const auto& k : keys[s])
        if (cluster.direct_get(s, k)) return false;
    return true;
  };
  auto flushes_everywhere = [&](uint64_t n) {
    for (size_t s = 0; s < keys.size(); ++s)
      if (server_flushes(cluster, s) != n) return false;
    return true;
  };

  SECTION("now") {
    store_all();
    CHECK(c->call("flush_all\r\n") == "OK\r\n");
    CHECK(all_gone());
    CHECK(flushes_everywhere(1));
    store_all();
    CHECK(c->call("flush_all 0\r\n") == "OK\r\n");
    CHECK(all_gone());
    CHECK(flushes_everywhere(2));
  }

  SECTION("noreply") {
    store_all();
    c->send("flush_all noreply\r\nget " + keys[0][0] + "\r\n");
    CHECK(c->read_reply("get") == "END\r\n");
    CHECK(testing::eventually([&] { return flushes_everywhere(1); },
                              std::chrono::milliseconds(2000)));
    CHECK(all_gone());
    CHECK(c->call("version\r\n").value_or("").rfind("VERSION ", 0) == 0);
  }

  SECTION("with a delay") {
    store_all();
    // memcached counts the delay from its own one-second clock and starts flushing up to two
    // ticks early; 5 s leaves well over a second in which everything must still be there.
    CHECK(c->call("flush_all 5\r\n") == "OK\r\n");
    CHECK(flushes_everywhere(1));
    for (size_t s = 0; s < keys.size(); ++s)
      CHECK(cluster.direct_get(s, keys[s][0]) == "x");
    CHECK(testing::eventually(all_gone, std::chrono::milliseconds(7000)));
  }

  SECTION("with a delay and noreply") {
    store_all();
    c->send("flush_all 5 noreply\r\nget " + keys[1][0] + "\r\n");
    CHECK(c->read_reply("get") == value_item(keys[1][0], "x") + "END\r\n");
    CHECK(testing::eventually([&] { return flushes_everywhere(1); },
                              std::chrono::milliseconds(2000)));
    // The delay reached the servers too: nothing is gone yet.
    for (size_t s = 0; s < keys.size(); ++s)
      CHECK(cluster.direct_get(s, keys[s][0]) == "x");
  }
}

}  // namespace
}  // namespace cachegate
