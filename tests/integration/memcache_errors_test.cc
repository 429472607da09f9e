// Bad input through cachegate: each kind gets its error in the memcached protocol, and the
// connection keeps working afterwards — except where framing is lost (an endless line, the
// binary protocol), where the error is followed by a close. Nothing bad reaches a server.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/support/memcache_cluster.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::MemcacheCluster;
using testing::TextClient;
using testing::value_item;

bool starts_with(const std::optional<std::string>& s, const std::string& prefix) {
  return s && s->rfind(prefix, 0) == 0;
}

// The connection still works: a set and a get of a fresh key on it round-trip.
void check_still_works(TextClient& c, const std::string& key = "after-error") {
  REQUIRE(c.call("set " + key + " 1 0 2\r\nok\r\n") == "STORED\r\n");
  REQUIRE(c.call("get " + key + "\r\n", "get") == value_item(key, "ok", 1) + "END\r\n");
}

// No server got the key.
void check_nowhere(MemcacheCluster& cluster, const std::string& key) {
  CHECK(cluster.holders(key).empty());
}

TEST_CASE("an unknown command is answered ERROR", "[memcache][errors]") {
  MemcacheCluster cluster;
  auto c = cluster.client();
  for (const char* line :
       {"bogus\r\n", "GET k\r\n", "gett k\r\n", "\r\n", "get\r\n", "x y z\r\n", "mx k\r\n"}) {
    INFO("request " << line);
    CHECK(c->call(line) == "ERROR\r\n");
  }
  check_still_works(*c);
}

TEST_CASE("a malformed command line is answered CLIENT_ERROR", "[memcache][errors]") {
  MemcacheCluster cluster;
  auto c = cluster.client();
  // Lines with a data block: the block is skipped with the line, so "x" is not read as a command.
  const std::vector<std::string> with_block = {
      "set k 0 0\r\n",          "set k abc 0 1\r\nx\r\n",
      "set k 0 abc 1\r\nx\r\n", "set k 0 0 1 extra\r\nx\r\n",
      "cas k 0 0 1\r\nx\r\n",   "cas k 0 0 1 notanumber\r\nx\r\n",
      "set k 0 0 -1\r\n",       "add k -1 0 1\r\nx\r\n",
  };
  const std::vector<std::string> line_only = {
      "incr k abc\r\n", "decr k -1\r\n",    "incr k 1 2\r\n",  "touch k abc\r\n",
      "delete k 5\r\n", "delete k 0 0\r\n", "verbosity x\r\n", "flush_all abc\r\n",
      "gat abc k\r\n",  "mg\r\n",           "ms k\r\n",        "ms k abc\r\n",
  };
  for (const auto& req : with_block) {
    INFO("request " << req);
    CHECK(starts_with(c->call(req), "CLIENT_ERROR "));
    check_still_works(*c);
  }
  for (const auto& req : line_only) {
    INFO("request " << req);
    CHECK(starts_with(c->call(req), "CLIENT_ERROR "));
    check_still_works(*c);
  }
  check_nowhere(cluster, "k");
}

TEST_CASE("a key over 250 bytes is refused", "[memcache][errors]") {
  MemcacheCluster cluster;
  auto c = cluster.client();
  const std::string longest(250, 'k');
  const std::string too_long(251, 'k');

  SECTION("250 bytes is fine") {
    CHECK(c->call("set " + longest + " 0 0 1\r\nx\r\n") == "STORED\r\n");
    CHECK(c->call("get " + longest + "\r\n", "get") == value_item(longest, "x") + "END\r\n");
    CHECK(cluster.holders(longest).size() == 1);
  }

  SECTION("251 bytes, in every command") {
    for (const std::string& req :
         {"get " + too_long + "\r\n", "get a " + too_long + " b\r\n", "gets " + too_long + "\r\n",
          "gat 0 " + too_long + "\r\n", "set " + too_long + " 0 0 1\r\nx\r\n",
          "append " + too_long + " 0 0 1\r\nx\r\n", "delete " + too_long + "\r\n",
          "incr " + too_long + " 1\r\n", "touch " + too_long + " 1\r\n",
          "mg " + too_long + " v\r\n", "ms " + too_long + " 1\r\nx\r\n", "md " + too_long + "\r\n",
          "ma " + too_long + "\r\n"}) {
      INFO("request " << req.substr(0, 20));
      CHECK(starts_with(c->call(req), "CLIENT_ERROR "));
      check_still_works(*c);
    }
    // A noreply storage command with a bad key: the error is silent, the block still skipped.
    c->send("set " + too_long + " 0 0 3 noreply\r\nabc\r\nget after-error\r\n");
    CHECK(c->read_reply("get") == value_item("after-error", "ok", 1) + "END\r\n");
    check_nowhere(cluster, too_long.substr(0, 250));
  }
}

TEST_CASE("a key with control characters is refused", "[memcache][errors]") {
  MemcacheCluster cluster;
  auto c = cluster.client();
  for (const std::string& key : {std::string("a\x01"
                                             "b"),
                                 std::string("a\x7f"
                                             "b"),
                                 std::string("a\tb"),
                                 std::string("a\x00"
                                             "b",
                                             3),
                                 std::string("\x1b[31m")}) {
    for (const std::string& req :
         {"get " + key + "\r\n", "get ok " + key + "\r\n", "set " + key + " 0 0 1\r\nx\r\n",
          "delete " + key + "\r\n", "incr " + key + " 1\r\n", "mg " + key + " v\r\n",
          "ms " + key + " 1\r\nx\r\n"}) {
      INFO("request " << req.size() << " bytes");
      CHECK(starts_with(c->call(req), "CLIENT_ERROR "));
      check_still_works(*c);
    }
  }
}

TEST_CASE("a data block of the wrong length is a bad data chunk", "[memcache][errors]") {
  MemcacheCluster cluster;
  auto c = cluster.client();

  SECTION("the reply") {
    CHECK(c->call("set k 0 0 5\r\nhelloXX\r\n") == "CLIENT_ERROR bad data chunk\r\n");
    check_nowhere(cluster, "k");
  }

  // memcached takes the declared length plus two bytes as the block; what follows is read as
  // the next command line (here the leftover "\r\n", an empty line: ERROR). cachegate must
  // frame the rest of the stream exactly as a server would, or the two drift apart.
  const std::vector<std::string> sequences = {
      "set k 0 0 5\r\nhelloXX\r\nget k\r\nset k 0 0 5\r\nhello\r\nget k\r\nmn\r\n",
      "set k 0 0 5 noreply\r\nhelloXX\r\nget k\r\nmn\r\n",
      "set k 0 0 2\r\nabcdefgh\r\nget k\r\nmn\r\n",
      "append k 0 0 1\r\nab\r\nmn\r\n",
      "ms k 2\r\nabcd\r\nmn\r\n",
      "ms k 2 q\r\nabcd\r\nmg k v\r\nmn\r\n",
  };
  for (size_t i = 0; i < sequences.size(); ++i) {
    DYNAMIC_SECTION("as memcached answers, sequence " << i) {
      auto direct = cluster.direct(0);
      direct->send(sequences[i]);
      auto expected = testing::read_through_mn(*direct);
      REQUIRE(expected);
      const bool quiet = sequences[i].find("noreply") != std::string::npos;
      CHECK((quiet || expected->find("CLIENT_ERROR bad data chunk") != std::string::npos));
      REQUIRE(direct->call("flush_all\r\n") == "OK\r\n");
      c->send(sequences[i]);
      CHECK(testing::read_through_mn(*c) == expected);
      check_still_works(*c);
    }
  }
}

TEST_CASE("a data length memcached reads with a sign still frames one request",
          "[memcache][errors]") {
  // memcached parses lengths with strtol, so "+1" and "-0" are lengths to it: the bytes after
  // the line are the data block. Whether cachegate stores the value or refuses the request, it
  // must answer once and read the block as a block, not as a command line of its own.
  MemcacheCluster cluster;
  auto c = cluster.client();
  for (const std::string& req :
       {std::string("set k 0 0 +1\r\nx\r\n"), std::string("set k 0 0 -0\r\n\r\n"),
        std::string("ms k +1\r\nx\r\n"), std::string("ms k -0\r\n\r\n")}) {
    INFO("request " << req);
    c->send(req + "mn\r\n");
    auto reply = testing::read_through_mn(*c);
    REQUIRE(reply);
    // One reply line, then the MN of the mn.
    CHECK(reply->find("\r\n") + 2 + 4 == reply->size());
    CHECK(reply->substr(reply->size() - 4) == "MN\r\n");
    check_still_works(*c);
  }
}

TEST_CASE("a value over the configured item limit is swallowed and refused",
          "[memcache][errors][limits]") {
  ClusterOptions options;
  options.limits = {"item_size_max: 1k"};
  MemcacheCluster cluster(options);
  auto c = cluster.client();
  const std::string too_large = "SERVER_ERROR object too large for cache\r\n";

  SECTION("the limit itself is allowed") {
    const std::string v(1024, 'v');
    CHECK(c->call("set big 0 0 1024\r\n" + v + "\r\n") == "STORED\r\n");
    CHECK(c->call("get big\r\n", "get") == value_item("big", v) + "END\r\n");
  }

  SECTION("one byte more is not") {
    CHECK(c->call("set big 0 0 1025\r\n" + std::string(1025, 'v') + "\r\n") == too_large);
    check_still_works(*c);
    check_nowhere(cluster, "big");
  }

  SECTION("2k, whatever the value looks like") {
    // The swallowed value is full of command lines: none of them may run.
    std::string value;
    while (value.size() < 2048)
      value += "set evil 0 0 1\r\nx\r\n";
    value.resize(2048);
    for (const char* cmd : {"set", "add", "replace", "append", "prepend"}) {
      INFO(cmd);
      CHECK(c->call(std::string(cmd) + " big 0 0 2048\r\n" + value + "\r\n") == too_large);
      check_still_works(*c);
    }
    CHECK(c->call("cas big 0 0 2048 1\r\n" + value + "\r\n") == too_large);
    CHECK(c->call("ms big 2048 T0\r\n" + value + "\r\n") == too_large);
    check_still_works(*c);
    check_nowhere(cluster, "big");
    check_nowhere(cluster, "evil");
  }

  SECTION("sent slowly") {
    c->send("set big 0 0 2048\r\n");
    for (int i = 0; i < 8; ++i) {
      c->send(std::string(256, 'z'));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    c->send("\r\nget after-error\r\n");
    CHECK(c->read_reply("line") == too_large);
    CHECK(c->read_reply("get") == "END\r\n");
    check_still_works(*c);
  }

  SECTION("noreply: silent") {
    c->send("set big 0 0 2048 noreply\r\n" + std::string(2048, 'n') + "\r\nmn\r\n");
    CHECK(c->read_reply("line") == "MN\r\n");
    check_nowhere(cluster, "big");
    check_still_works(*c);
  }
}

TEST_CASE("a 2 MiB value is refused under the default 1 MiB limit", "[memcache][errors][limits]") {
  MemcacheCluster cluster;
  auto c = cluster.client(std::chrono::milliseconds(10000));
  const std::string value(2 * 1024 * 1024, 'w');
  CHECK(c->call("set huge 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n") ==
        "SERVER_ERROR object too large for cache\r\n");
  check_still_works(*c);
  check_nowhere(cluster, "huge");
  // Just under the limit still goes through (memcached itself runs with -I 1m).
  const std::string fits(1000 * 1000, 'f');
  CHECK(c->call("set fits 0 0 " + std::to_string(fits.size()) + "\r\n" + fits + "\r\n") ==
        "STORED\r\n");
  CHECK(c->call("get fits\r\n", "get") == value_item("fits", fits) + "END\r\n");
}

TEST_CASE("a value of exactly 1 MiB is answered as memcached answers it",
          "[memcache][errors][limits]") {
  // Not over cachegate's default limit, but over what memcached -I 1m stores once its item
  // header is counted: whatever the server says comes back, and the stream stays in step.
  MemcacheCluster cluster;
  auto c = cluster.client(std::chrono::milliseconds(10000));
  const std::string request =
      "set exact 0 0 1048576\r\n" + std::string(1048576, 'e') + "\r\nget exact\r\nmn\r\n";
  auto direct = cluster.direct(0);
  direct->send(request);
  auto expected = testing::read_through_mn(*direct);
  REQUIRE(expected);
  c->send(request);
  CHECK(testing::first_difference(testing::read_through_mn(*c), *expected) == "");
  check_still_works(*c);
}

TEST_CASE("a limit above the servers' own passes their refusal on", "[memcache][errors][limits]") {
  ClusterOptions options;
  options.limits = {"item_size_max: 4m"};
  MemcacheCluster cluster(options);  // memcached itself stores at most 1 MiB
  auto c = cluster.client(std::chrono::milliseconds(10000));
  const std::string value(2 * 1024 * 1024, 's');
  CHECK(c->call("set two 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n") ==
        "SERVER_ERROR object too large for cache\r\n");
  check_still_works(*c);
  check_nowhere(cluster, "two");
}

TEST_CASE("a backend reply over reply_size_max fails that request only",
          "[memcache][errors][limits]") {
  ClusterOptions options;
  options.servers = 1;
  options.limits = {"item_size_max: 100k", "reply_size_max: 256k"};
  MemcacheCluster cluster(options);
  auto c = cluster.client();
  const std::string value(90 * 1024, 'r');
  std::string get = "get";
  for (int i = 0; i < 5; ++i) {
    const std::string k = "big-" + std::to_string(i);
    REQUIRE(c->call("set " + k + " 0 0 " + std::to_string(value.size()) + "\r\n" + value +
                    "\r\n") == "STORED\r\n");
    get += " " + k;
  }
  // Two values fit in 256k, five do not.
  CHECK(c->call("get big-0 big-1\r\n", "get") ==
        value_item("big-0", value) + value_item("big-1", value) + "END\r\n");
  auto reply = c->call(get + "\r\n", "get");
  REQUIRE(reply);
  CHECK(reply->rfind("SERVER_ERROR ", 0) == 0);
  CHECK(reply->find("\r\n") == reply->size() - 2);
  // The connection to the server was reset, not left out of step: the next request is right.
  CHECK(c->call("get big-2\r\n", "get") == value_item("big-2", value) + "END\r\n");
  check_still_works(*c);
}

TEST_CASE("a request line past its limit is an error, then the connection closes",
          "[memcache][errors][limits]") {
  SECTION("configured limit of 1k") {
    ClusterOptions options;
    options.limits = {"request_line_max: 1k"};
    MemcacheCluster cluster(options);
    auto bystander = cluster.client();
    REQUIRE(bystander->call("set b 0 0 1\r\nb\r\n") == "STORED\r\n");

    // A line within the limit works.
    auto c = cluster.client();
    std::string get = "get";
    while (get.size() < 900)
      get += " key-" + std::to_string(get.size());
    CHECK(c->call(get + "\r\n", "get") == "END\r\n");

    c->send("get " + std::string(2000, 'a'));
    auto line = c->read_line();
    REQUIRE(line);
    CHECK((line->rfind("CLIENT_ERROR ", 0) == 0 || line->rfind("SERVER_ERROR ", 0) == 0));
    CHECK(c->peer_closed());

    // Other clients are not affected.
    CHECK(bystander->call("get b\r\n", "get") == value_item("b", "b") + "END\r\n");
  }

  SECTION("default limit") {
    MemcacheCluster cluster;
    auto c = cluster.client();
    c->send("set " + std::string(100 * 1024, 'a'));
    auto line = c->read_line();
    REQUIRE(line);
    CHECK((line->rfind("CLIENT_ERROR ", 0) == 0 || line->rfind("SERVER_ERROR ", 0) == 0));
    CHECK(c->peer_closed());
    check_still_works(*cluster.client());
  }
}

TEST_CASE("the binary protocol gets an error, then the connection closes", "[memcache][errors]") {
  MemcacheCluster cluster;
  auto c = cluster.client();
  // A binary-protocol GET of "k": magic 0x80, opcode 0, key length 1, body length 1.
  std::string header(24, '\0');
  header[0] = '\x80';
  header[3] = 1;
  header[11] = 1;
  c->send(header + "k");
  auto line = c->read_line();
  REQUIRE(line);
  CHECK((line->rfind("CLIENT_ERROR ", 0) == 0 || line->rfind("SERVER_ERROR ", 0) == 0 ||
         *line == "ERROR"));
  CHECK(c->peer_closed());
  check_still_works(*cluster.client());
}

TEST_CASE("errors take their place among pipelined replies", "[memcache][errors][pipeline]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(2, "err-");
  auto c = cluster.client();
  for (size_t s = 0; s < 2; ++s)
    REQUIRE(c->call("set " + keys[s][0] + " 0 0 1\r\n" + std::to_string(s) + "\r\n") ==
            "STORED\r\n");
  // Local errors are ready at once, the gets only when the servers answer: order must hold.
  std::string requests, expected;
  for (int i = 0; i < 50; ++i) {
    const std::string& a = keys[0][0];
    const std::string& b = keys[1][0];
    requests += "get " + a + " " + b + "\r\nbogus\r\nget " + b + "\r\nincr k x\r\n";
    expected += value_item(a, "0") + value_item(b, "1") + "END\r\nERROR\r\n" + value_item(b, "1") +
                "END\r\n" + "CLIENT_ERROR invalid numeric delta argument\r\n";
    requests += "set " + std::string(300, 'x') + " 0 0 1\r\nx\r\nmn\r\n";
    expected += "CLIENT_ERROR key longer than 250 bytes\r\nMN\r\n";
  }
  c->send(requests);
  auto got = c->read_exact(expected.size());
  REQUIRE(got);
  CHECK(*got == expected);
  check_still_works(*c);
}

}  // namespace
}  // namespace cachegate
