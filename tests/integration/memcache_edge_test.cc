// Corners of the memcached text protocol that are legal but rarely exercised — empty values,
// extreme numbers, bytes above 0x7f in keys, bare LF line endings, runs of spaces, very wide
// multi-gets, hash tags — each answered by cachegate exactly as memcached answers it.

#include <csignal>

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/memcache_cluster.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::first_difference;
using testing::MemcacheCluster;
using testing::MemcachedServer;
using testing::read_through_mn;
using testing::TextClient;
using testing::value_item;

TEST_CASE("legal but unusual requests are answered as memcached answers them", "[memcache][edge]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  MemcachedServer reference;
  TextClient ref("127.0.0.1", reference.port());
  auto c = cluster.client();

  // Each ends with mn, so its whole answer can be read however many lines it has.
  const std::vector<std::string> sequences = {
      // Empty values, alone and in a multi-get over the shards.
      "set e1 0 0 0\r\n\r\nset e2 5 0 0\r\n\r\nget e1\r\nget e1 x e2 y e1\r\nmn\r\n",
      // Largest flags, largest delta, largest cas unique.
      "set f 4294967295 0 1\r\nf\r\nget f\r\nset n 0 0 1\r\n0\r\nincr n 18446744073709551615\r\n"
      "cas n 0 0 1 18446744073709551615\r\nx\r\nmn\r\n",
      // Out of range: a delta one past 64 bits.
      "incr n 18446744073709551616\r\nmn\r\n",
      // Negative exptime: stored, and already gone.
      "set gone 0 -1 1\r\nx\r\nget gone\r\nadd gone 0 0 1\r\ny\r\nget gone\r\nmn\r\n",
      // Keys with bytes above 0x7f (UTF-8 and others).
      "set \xd0\xba\xd0\xbb\xd1\x8e\xd1\x87 0 0 2\r\nru\r\nset \xff\xfe 0 0 2\r\nff\r\n"
      "get \xd0\xba\xd0\xbb\xd1\x8e\xd1\x87 \xff\xfe\r\nmn\r\n",
      // Bare LF line endings, which memcached accepts.
      "set lf 0 0 2\nlf\r\nget lf\nget lf e1\ndelete lf\nget lf\nmn\n",
      "set lf2 0 0 2 noreply\nab\r\nincr lf2 1 noreply\nget lf2\nmn\r\n",
      // Runs of spaces between tokens and at the end of the line.
      "set  sp   0 0  2\r\nsp\r\nget   sp    e1  \r\ndelete sp  noreply  \r\nget sp\r\nmn\r\n",
      // A key of exactly 250 bytes among others in a multi-get.
      "set " + std::string(250, 'L') + " 0 0 1\r\nL\r\nget a " + std::string(250, 'L') +
          " b\r\nmn\r\n",
      // touch, gat and gats of keys that are there and are not.
      "set t 0 0 1\r\nt\r\ntouch t 100\r\ntouch nope 100\r\ngat 0 t nope e1\r\nmn\r\n",
      // Counters: non-numeric, decrement below zero, growing length.
      "set c 0 0 1\r\n9\r\nincr c 1\r\nincr c 90\r\ndecr c 1000\r\nincr nope 1\r\nmn\r\n",
      // A key that happens to be called "noreply": memcached reads "delete noreply" as a
      // delete of that key, with a reply (noreply needs a key before it).
      "set noreply 0 0 1\r\nx\r\ndelete noreply\r\nget noreply\r\ndelete noreply\r\n"
      "mn\r\n",
      "set noreply 0 0 1\r\nx\r\ndelete noreply noreply\r\nget noreply\r\nmn\r\n",
      "set noreply 0 0 2\r\n10\r\nincr noreply 5\r\ntouch noreply 0\r\nget noreply\r\nmn\r\n",
      // append/prepend keep the flags of the original.
      "set ap 42 0 1\r\nb\r\nappend ap 7 0 1\r\nc\r\nprepend ap 9 0 1\r\na\r\nget ap\r\nmn\r\n",
  };
  for (size_t i = 0; i < sequences.size(); ++i) {
    INFO("sequence #" << i);
    ref.send(sequences[i]);
    auto expected = read_through_mn(ref);
    REQUIRE(expected);
    c->send(sequences[i]);
    CHECK(first_difference(read_through_mn(*c), *expected) == "");
  }
  reference.process().signal(SIGKILL);
}

TEST_CASE("a multi-get of thousands of keys over the shards", "[memcache][edge][retrieval]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  auto c = cluster.client(std::chrono::milliseconds(10000));
  // 4,000 keys of about 12 bytes: a 50 KB line, under the default 64 KB line limit. Every other
  // one is stored, and some are asked for twice.
  std::string sets, get = "get", expected;
  for (int i = 0; i < 4000; ++i) {
    const std::string k = std::to_string(i * 37 % 4001) + "-wide";
    if (i % 2 == 0)
      sets += "set " + k + " 0 0 " + std::to_string(k.size()) + " noreply\r\n" + k + "\r\n";
    get += " " + k;
    if (i % 2 == 0) expected += value_item(k, k);
    if (i % 97 == 0) {
      get += " " + k;
      if (i % 2 == 0) expected += value_item(k, k);
    }
  }
  c->send(sets);
  CHECK(c->call(get + "\r\n", "get") == expected + "END\r\n");
  // And as gets: same keys in the same order, each with a cas.
  auto reply = c->call("gets" + get.substr(3) + "\r\n", "get");
  REQUIRE(reply);
  size_t items = 0;
  for (size_t p = 0; (p = reply->find("VALUE ", p)) != std::string::npos; p += 6)
    ++items;
  CHECK(items == 2000 + 21);
}

TEST_CASE("keys with the same hash tag share a server", "[memcache][edge][routing]") {
  ClusterOptions options;
  options.servers = 3;
  options.pool_keys = {"hash_tag: \"{}\""};
  MemcacheCluster cluster(options);
  auto c = cluster.client();
  std::vector<size_t> servers_used(3, 0);
  for (int tag = 0; tag < 30; ++tag) {
    std::vector<std::string> keys;
    std::string get = "get";
    std::string expected;
    for (int i = 0; i < 5; ++i) {
      // The varying part first and a few bytes after it: twemproxy's fnv1a_64 multiplies by a
      // small prime, so short strings that differ only near their end land close together on
      // the ring.
      keys.push_back("user:{" + std::to_string(tag) + "-tag}:field" + std::to_string(i));
      REQUIRE(c->call("set " + keys.back() + " 0 0 1\r\n" + std::to_string(i) + "\r\n") ==
              "STORED\r\n");
      get += " " + keys.back();
      expected += value_item(keys.back(), std::to_string(i));
    }
    auto owners = cluster.holders(keys[0]);
    REQUIRE(owners.size() == 1);
    for (const auto& k : keys)
      CHECK(cluster.holders(k) == owners);
    ++servers_used[owners[0]];
    CHECK(c->call(get + "\r\n", "get") == expected + "END\r\n");
  }
  // Different tags do spread.
  for (size_t s = 0; s < 3; ++s)
    CHECK(servers_used[s] > 0);
  // The hashed part is the tag: a key that is only the tag lives with the tagged ones.
  REQUIRE(c->call("set 7-tag 0 0 1\r\nx\r\n") == "STORED\r\n");
  CHECK(cluster.holders("7-tag") == cluster.holders("user:{7-tag}:field0"));
}

TEST_CASE("very long runs of noreply requests", "[memcache][edge][noreply]") {
  MemcacheCluster cluster;
  auto c = cluster.client(std::chrono::milliseconds(20000));
  // Far more than the default client_pipeline_max (4,096) requests, none of which answers.
  std::string requests;
  for (int i = 0; i < 20000; ++i) {
    const std::string k = std::to_string(i % 500) + "-nr";
    requests += "set " + k + " 0 0 " + std::to_string(std::to_string(i).size()) + " noreply\r\n" +
                std::to_string(i) + "\r\n";
  }
  requests += "get 499-nr 0-nr\r\n";
  c->send(requests);
  CHECK(c->read_reply("get") ==
        value_item("499-nr", "19999") + value_item("0-nr", "19500") + "END\r\n");
  CHECK(c->call("mn\r\n") == "MN\r\n");
}

TEST_CASE("a client's end of input is seen even when it arrives with its last bytes",
          "[memcache][edge]") {
  MemcacheCluster cluster;
  auto admin = cluster.client();
  REQUIRE(admin->call("set here 0 0 1\r\nh\r\n") == "STORED\r\n");
  auto connections = [&] {
    auto stats = admin->call("stats\r\n", "get").value_or("");
    const std::string name = "STAT curr_connections ";
    const size_t p = stats.find(name);
    REQUIRE(p != std::string::npos);
    return std::stoull(stats.substr(p + name.size()));
  };

  // Connected and accepted first; then, with cachegate stopped, each client writes its last
  // bytes and ends its side: cachegate wakes to one readiness event carrying both the bytes and
  // the end of input.
  std::vector<std::unique_ptr<TextClient>> gone, half_closed;
  for (int i = 0; i < 10; ++i) {
    gone.push_back(cluster.client());
    half_closed.push_back(cluster.client());
  }
  REQUIRE(
      testing::eventually([&] { return connections() == 21; }, std::chrono::milliseconds(2000)));
  cluster.proxy().process().signal(SIGSTOP);
  for (int i = 0; i < 10; ++i) {
    // Gone for good, mid-request or after a request that answers nothing.
    gone[i]->send(i % 2 ? "set here 0 0 100\r\nonly part of it" : "set n 0 0 1 noreply\r\nx\r\n");
    gone[i]->close();
    // Done sending, waiting for the answers.
    half_closed[i]->send("get here\r\nversion\r\n");
    half_closed[i]->shutdown_write();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  cluster.proxy().process().signal(SIGCONT);

  for (size_t i = 0; i < half_closed.size(); ++i) {
    auto& c = half_closed[i];
    CHECK(c->read_reply("get") == value_item("here", "h") + "END\r\n");
    CHECK(c->read_line().value_or("").rfind("VERSION ", 0) == 0);
    // Everything answered: cachegate closes its side too (by now for all, once the first).
    CHECK(c->peer_closed(std::chrono::milliseconds(i == 0 ? 2000 : 200)));
  }
  // No session is left behind.
  CHECK(testing::eventually([&] { return connections() == 1; }, std::chrono::milliseconds(3000)));
}

TEST_CASE("clients that leave with requests in flight cost nothing", "[memcache][edge]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(2, "gone-");
  auto admin = cluster.client();
  auto connections = [&] {
    auto stats = admin->call("stats\r\n", "get").value_or("");
    const std::string name = "STAT curr_connections ";
    const size_t p = stats.find(name);
    REQUIRE(p != std::string::npos);
    return std::stoull(stats.substr(p + name.size()));
  };
  REQUIRE(testing::eventually([&] { return connections() == 1; }, std::chrono::milliseconds(2000)));

  // Some clients leave while their requests wait on a stopped server.
  cluster.server(1).process().signal(SIGSTOP);
  for (int i = 0; i < 20; ++i) {
    auto c = cluster.client();
    c->send("get " + keys[1][0] + " " + keys[0][0] + "\r\nset " + keys[1][1] + " 0 0 1\r\nx\r\n" +
            "get " + keys[0][1] + "\r\n");
  }
  // And others leave half-way through sending a value.
  for (int i = 0; i < 20; ++i) {
    auto c = cluster.client();
    c->send("set " + keys[0][0] + " 0 0 100\r\nonly part of it");
  }
  cluster.server(1).process().signal(SIGCONT);

  CHECK(testing::eventually([&] { return connections() == 1; }, std::chrono::milliseconds(3000)));
  auto c = cluster.client();
  CHECK(testing::eventually(
      [&] { return c->call("set " + keys[1][0] + " 0 0 1\r\ny\r\n") == "STORED\r\n"; },
      std::chrono::milliseconds(3000)));
  CHECK(c->call("get " + keys[0][0] + " " + keys[1][0] + "\r\n", "get") ==
        value_item(keys[1][0], "y") + "END\r\n");
  CHECK(cluster.direct_get(1, keys[1][0]) == "y");
}

}  // namespace
}  // namespace cachegate
