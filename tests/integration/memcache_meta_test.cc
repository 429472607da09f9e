// The meta protocol through cachegate: every meta command goes to the server that owns its key
// (base64 keys to the owner of the decoded key), flags such as O and k come back as the server
// sent them, and quiet pipelines ended by mn read exactly as memcached 1.6 itself answers them.

#include <csignal>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/support/memcache_cluster.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::MemcacheCluster;
using testing::MemcachedServer;
using testing::read_through_mn;
using testing::TextClient;
using testing::value_item;

std::string base64(const std::string& in) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

TEST_CASE("meta commands are routed by key", "[memcache][meta]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(2, "meta-");
  auto c = cluster.client();

  for (size_t s = 0; s < 2; ++s) {
    const size_t other = 1 - s;
    const std::string k = keys[s][0];
    INFO("key " << k << " on shard " << s);

    CHECK(c->call("ms " + k + " 5 F3\r\nhello\r\n", "meta") == "HD\r\n");
    CHECK(cluster.direct_get(s, k) == "hello");
    CHECK_FALSE(cluster.direct_get(other, k));
    CHECK(c->call("get " + k + "\r\n", "get") == value_item(k, "hello", 3) + "END\r\n");

    CHECK(c->call("mg " + k + " v f s\r\n", "meta") == "VA 5 f3 s5\r\nhello\r\n");
    CHECK(c->call("mg " + k + "\r\n", "meta") == "HD\r\n");

    // me only answers from the server that has the key.
    auto me = c->call("me " + k + "\r\n", "meta");
    REQUIRE(me);
    CHECK(me->rfind("ME " + k + " ", 0) == 0);

    CHECK(c->call("ms " + k + " 2\r\n10\r\n", "meta") == "HD\r\n");
    CHECK(c->call("ma " + k + " D5 v\r\n", "meta") == "VA 2\r\n15\r\n");
    CHECK(c->call("ma " + k + " MD D3 v\r\n", "meta") == "VA 2\r\n12\r\n");
    CHECK(c->call("ma " + k + "\r\n", "meta") == "HD\r\n");
    CHECK(cluster.direct_get(s, k).value_or("").substr(0, 2) == "13");

    CHECK(c->call("md " + k + "\r\n", "meta") == "HD\r\n");
    CHECK(cluster.holders(k).empty());
    CHECK(c->call("md " + k + "\r\n", "meta") == "NF\r\n");
    CHECK(c->call("mg " + k + " v\r\n", "meta") == "EN\r\n");
    CHECK(c->call("me " + k + "\r\n", "meta") == "EN\r\n");
    CHECK(c->call("ma " + k + "\r\n", "meta") == "NF\r\n");

    // Autovivify through ma lands on the owner too.
    CHECK(c->call("ma " + k + " N0 J7 v\r\n", "meta") == "VA 1\r\n7\r\n");
    CHECK(cluster.direct_get(s, k) == "7");
    CHECK_FALSE(cluster.direct_get(other, k));
  }
}

TEST_CASE("base64 keys go where the decoded key goes", "[memcache][meta]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(3, "b64-");
  auto c = cluster.client();
  for (size_t s = 0; s < 2; ++s) {
    const size_t other = 1 - s;
    const std::string k = keys[s][0];
    const std::string encoded = base64(k);
    INFO("key " << k << " (" << encoded << ") on shard " << s);

    CHECK(c->call("ms " + encoded + " 3 b\r\nb64\r\n", "meta") == "HD\r\n");
    CHECK(cluster.direct_get(s, k) == "b64");
    CHECK_FALSE(cluster.direct_get(other, k));
    // And back, in every form: plain get, mg with the encoded key (returned encoded).
    CHECK(c->call("get " + k + "\r\n", "get") == value_item(k, "b64") + "END\r\n");
    // (memcached 1.6 returns the b flag after the key, whatever the request's order.)
    CHECK(c->call("mg " + encoded + " b v k\r\n", "meta") == "VA 3 k" + encoded + " b\r\nb64\r\n");
    CHECK(c->call("mg " + encoded + " b k v\r\n", "meta") == "VA 3 k" + encoded + " b\r\nb64\r\n");

    // A key stored plainly is found through its encoding.
    const std::string plain = keys[s][1];
    REQUIRE(c->call("set " + plain + " 0 0 5\r\nplain\r\n") == "STORED\r\n");
    CHECK(c->call("mg " + base64(plain) + " b v\r\n", "meta") == "VA 5\r\nplain\r\n");
    CHECK(c->call("ma " + base64(keys[s][2]) + " b N0 J1 v\r\n", "meta") == "VA 1\r\n1\r\n");
    CHECK(cluster.direct_get(s, keys[s][2]) == "1");
    CHECK(c->call("md " + base64(plain) + " b\r\n", "meta") == "HD\r\n");
    CHECK(cluster.holders(plain).empty());
  }
  // Binary keys that cannot be written plainly (spaces, control characters) work as base64.
  const std::string binary = std::string("key with spaces\r\n\x01", 19);
  CHECK(c->call("ms " + base64(binary) + " 1 b\r\nz\r\n", "meta") == "HD\r\n");
  CHECK(c->call("mg " + base64(binary) + " b v\r\n", "meta") == "VA 1\r\nz\r\n");
  // An undecodable key is refused by cachegate; the connection goes on.
  auto bad = c->call("mg !!!notbase64 b v\r\n", "meta");
  REQUIRE(bad);
  CHECK(bad->rfind("CLIENT_ERROR", 0) == 0);
  CHECK(c->call("mn\r\n", "meta") == "MN\r\n");
}

TEST_CASE("opaque and key flags come back", "[memcache][meta]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(1, "op-");
  auto c = cluster.client();
  const std::string a = keys[0][0], b = keys[1][0];
  CHECK(c->call("ms " + a + " 1 O123\r\nA\r\n", "meta") == "HD O123\r\n");
  CHECK(c->call("ms " + b + " 1 O124 k\r\nB\r\n", "meta") == "HD O124 k" + b + "\r\n");
  CHECK(c->call("mg " + a + " v O123\r\n", "meta") == "VA 1 O123\r\nA\r\n");
  CHECK(c->call("mg " + b + " k v O9999\r\n", "meta") == "VA 1 k" + b + " O9999\r\nB\r\n");
  CHECK(c->call("mg " + a + " k O1\r\n", "meta") == "HD k" + a + " O1\r\n");
  CHECK(c->call("mg nokey k O77 v\r\n", "meta") == "EN knokey O77\r\n");
  CHECK(c->call("md " + a + " O5\r\n", "meta") == "HD O5\r\n");
  CHECK(c->call("md " + a + " O6 q\r\nmn\r\n", "meta") == "NF O6\r\n");
  CHECK(c->read_reply("meta") == "MN\r\n");
  CHECK(c->call("ms " + b + " 1 O8\r\n5\r\n", "meta") == "HD O8\r\n");
  CHECK(c->call("ma " + b + " O7 v\r\n", "meta") == "VA 1 O7\r\n6\r\n");
}

TEST_CASE("ms in quiet mode answers nothing on success", "[memcache][meta]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(5, "q-");
  auto c = cluster.client();
  std::string requests;
  for (size_t s = 0; s < 2; ++s)
    for (const auto& k : keys[s])
      requests += "ms " + k + " " + std::to_string(k.size()) + " q\r\n" + k + "\r\n";
  c->send(requests + "mn\r\n");
  CHECK(c->read_reply("meta") == "MN\r\n");
  for (size_t s = 0; s < 2; ++s)
    for (const auto& k : keys[s])
      CHECK(cluster.direct_get(s, k) == k);
  // A quiet ms that fails (NS: add of an existing key) does answer.
  c->send("ms " + keys[0][0] + " 1 q ME\r\nx\r\nms " + keys[1][0] + " 1 q MA\r\n!\r\nmn\r\n");
  CHECK(read_through_mn(*c) == "NS\r\nMN\r\n");
  CHECK(cluster.direct_get(1, keys[1][0]) == keys[1][0] + "!");
}

TEST_CASE("quiet meta pipelines read exactly as memcached answers them", "[memcache][meta]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(3, "mq-");
  // The same data on one plain memcached, to compare against.
  MemcachedServer reference;
  TextClient ref("127.0.0.1", reference.port());
  auto c = cluster.client();

  // hit0..hit2 on three different shards; miss* nowhere.
  const std::string h0 = keys[0][0], h1 = keys[1][0], h2 = keys[2][0];
  const std::string c0 = keys[0][1], c1 = keys[1][1];
  for (TextClient* t : {c.get(), &ref}) {
    REQUIRE(t->call("set " + h0 + " 1 0 2\r\nh0\r\n") == "STORED\r\n");
    REQUIRE(t->call("set " + h1 + " 2 0 2\r\nh1\r\n") == "STORED\r\n");
    REQUIRE(t->call("set " + h2 + " 3 0 2\r\nh2\r\n") == "STORED\r\n");
    REQUIRE(t->call("set " + c0 + " 0 0 1\r\n5\r\n") == "STORED\r\n");
  }

  const std::vector<std::string> pipelines = {
      "mg miss v q\r\nmg " + h0 + " v q\r\nmn\r\n",
      "mn\r\n",
      "mn\r\nmn\r\nmn\r\n",
      "mg miss1 v q\r\nmg miss2 v q\r\nmg miss3 q\r\nmn\r\n",
      "mg " + h0 + " v q k\r\nmg " + h1 + " v q k O1\r\nmg miss1 v q\r\nmg miss2 v k q O2\r\nmg " +
          h2 + " s f t v q\r\nmn\r\n",
      "mg " + h1 + " q\r\nmg " + h2 + " q O3\r\nmn\r\nmg miss q\r\nmg " + h0 + " v\r\nmn\r\n",
      "ms n1 3 q\r\nabc\r\nms n2 3 q O5\r\nxyz\r\nmg n1 v\r\nmg n2 v q\r\nmn\r\n",
      "ms n1 1 q MA\r\n+\r\nms nothere 1 q MA\r\n+\r\nms " + h1 +
          " 1 q ME\r\n+\r\nmg n1 v q\r\nmn\r\n",
      "md n1 q\r\nmd n1 q\r\nmd missing q O8\r\nmg n1 v q\r\nmn\r\n",
      "ma " + c0 + " q\r\nma " + c0 + " v\r\nma nocounter q\r\nma " + c0 + " q D10 v\r\nmn\r\n",
      "ma " + c1 + " q N0 J100\r\nma " + c1 + " v q\r\nmg " + c1 + " v\r\nmn\r\n",
      "mg " + base64(h0) + " b v q k\r\nmg " + base64("miss") + " b v q\r\nmn\r\n",
      "mg " + h0 + " v q\r\nmg " + h1 + " v q\r\nmg " + h2 + " v q\r\nget " + h0 + " " + h1 + " " +
          h2 + "\r\nmn\r\n",
      "ms " + h2 + " 2 q I\r\nzz\r\nmg " + h2 + " v q\r\nmn\r\n",
      "md " + h0 + " q I T30\r\nmg " + h0 + " v q\r\nmg " + h0 + " s q\r\nmn\r\n",
  };
  for (size_t i = 0; i < pipelines.size(); ++i) {
    INFO("pipeline #" << i << ": " << pipelines[i]);
    ref.send(pipelines[i]);
    std::string expected;
    for (size_t n = 0, pos = 0; (pos = pipelines[i].find("mn\r\n", pos)) != std::string::npos;
         pos += 4, ++n) {
      auto part = read_through_mn(ref);
      REQUIRE(part);
      expected += *part;
    }
    c->send(pipelines[i]);
    std::string got;
    for (size_t pos = 0; (pos = pipelines[i].find("mn\r\n", pos)) != std::string::npos; pos += 4) {
      auto part = read_through_mn(*c);
      REQUIRE(part);
      got += *part;
    }
    CHECK(got == expected);
  }
  // Quiet pipelines over many shards, many times in one write.
  std::string many, expected_many;
  for (int i = 0; i < 200; ++i) {
    const std::string p =
        "mg " + h1 + " v q\r\nmg miss-" + std::to_string(i) + " v q\r\nmg " + h0 + " v q\r\nmn\r\n";
    many += p;
    ref.send(p);
    expected_many += read_through_mn(ref).value_or("<none>");
  }
  c->send(many);
  std::string got_many;
  for (int i = 0; i < 200; ++i)
    got_many += read_through_mn(*c).value_or("<none>");
  CHECK(got_many == expected_many);
  reference.process().signal(SIGKILL);  // no need to wait for a clean exit
}

}  // namespace
}  // namespace cachegate
