// Per-user key namespaces in front of real memcached and redis-server pools of two servers each:
// tenants "a" and "b" (namespaces "a:" and "b:") use the same key names and never read, write,
// scan or flush each other's keys. The servers hold the keys with the prefix (checked on the
// servers themselves); replies that name keys (VALUE lines, meta k flags and ME, KEYS, SCAN,
// LMPOP, XREAD) name them without it; what cannot be confined to a namespace is refused.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "protocol/base64.h"
#include "tests/support/logins.h"
#include "tests/support/ports.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"
#include "tests/support/text_client.h"

namespace cachegate {
namespace {

using namespace std::chrono_literals;
using testing::CachegateServer;
using testing::MemcachedServer;
using testing::RedisServer;
using testing::resp_array_of_bulks;
using testing::resp_bulk;
using testing::resp_int;
using testing::RespClient;
using testing::TextClient;

std::string text(const std::optional<std::string>& reply) {
  return reply.value_or("<no reply>");
}

std::string password_of(const std::string& user) {
  return "pw-" + user + "-9031";
}

std::string b64(std::string_view in) {
  std::string out;
  protocol::base64_encode(in, out);
  return out;
}

std::string user_yaml(const std::string& name, const std::string& ns) {
  std::string y = "  - name: " + name + "\n    password_hash: \"" +
                  testing::cheap_password_hash(password_of(name)) + "\"\n";
  if (!ns.empty()) y += "    namespace: \"" + ns + "\"\n";
  return y;
}

// The keys used by both tenants: enough that a multi-key request spans both servers.
std::vector<std::string> shared_names() {
  std::vector<std::string> names;
  for (int i = 0; i < 16; ++i)
    names.push_back("k" + std::to_string(i));
  return names;
}

// The keys the servers hold once tenants a and b have stored shared_names(), sorted.
std::vector<std::string> stored_names() {
  std::vector<std::string> keys;
  for (const auto& tenant : {"a:", "b:"})
    for (const auto& n : shared_names())
      keys.push_back(tenant + n);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// Two memcached and two redis-server, cachegate in front with a memcached and a Redis listener
// (auth required). Users: a ("a:"), b ("b:"), glob ("g*[1]:", a namespace full of glob
// characters), and root (no namespace, may do everything).
class Tenants {
 public:
  static constexpr size_t kMc = 0, kRedis = 1;

  Tenants() {
    std::string y = "workers: 2\n";
    y += "listeners:\n";
    y += "  - {name: mc, listen: \"127.0.0.1:{port}\", pool: cache, auth: required}\n";
    y += "  - {name: r, listen: \"127.0.0.1:{port1}\", pool: red, auth: required}\n";
    y += "users:\n";
    y += user_yaml("a", "a:");
    y += user_yaml("b", "b:");
    y += user_yaml("glob", "g*[1]:");
    y += user_yaml("root", "");
    y += "auth_limits: {failures_slow: 1000, failures_block: 1000}\n";
    y += "pools:\n";
    y += testing::test_pool_yaml("cache", "memcached", {mc_[0].port(), mc_[1].port()}, "m");
    y += testing::test_pool_yaml("red", "redis", {redis_[0].port(), redis_[1].port()}, "r",
                                 {"hash_tag: \"{}\""});
    proxy_ = std::make_unique<CachegateServer>(y);
    REQUIRE(testing::wait_for_port("127.0.0.1", proxy_->port(kRedis), 5000ms));
  }
  ~Tenants() {
    proxy_.reset();
    for (auto& m : mc_)
      m.process().signal(SIGKILL);
  }

  std::unique_ptr<TextClient> mc(const std::string& user) {
    auto c = std::make_unique<TextClient>("127.0.0.1", proxy_->port(kMc));
    testing::memcache_login(*c, user, password_of(user));
    return c;
  }
  std::unique_ptr<RespClient> redis(const std::string& user) {
    auto c = std::make_unique<RespClient>(proxy_->port(kRedis));
    REQUIRE(c->call({"AUTH", user, password_of(user)}) == "+OK\r\n");
    return c;
  }

  // Every key the memcached servers hold (via their own lru_crawler), sorted.
  std::vector<std::string> mc_server_keys() {
    std::vector<std::string> keys;
    for (auto& m : mc_) {
      TextClient c("127.0.0.1", m.port());
      const std::string dump = text(c.call("lru_crawler metadump all\r\n", "line"));
      std::string all = dump;
      while (all.find("END\r\n") == std::string::npos) {
        auto line = c.read_line();
        if (!line) break;
        all += *line;
      }
      // Keys are URL-encoded ("a%3Ak0").
      for (size_t at = all.find("key="); at != std::string::npos; at = all.find("key=", at + 1)) {
        const std::string encoded = all.substr(at + 4, all.find(' ', at) - at - 4);
        std::string key;
        for (size_t i = 0; i < encoded.size(); ++i) {
          if (encoded[i] == '%' && i + 2 < encoded.size()) {
            key.push_back(static_cast<char>(std::stoi(encoded.substr(i + 1, 2), nullptr, 16)));
            i += 2;
          } else {
            key.push_back(encoded[i]);
          }
        }
        keys.push_back(key);
      }
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  // How many of the memcached servers hold a key with this exact name.
  int mc_servers_with(const std::string& key) {
    int n = 0;
    for (auto& m : mc_) {
      TextClient c("127.0.0.1", m.port());
      n += text(c.call("mg " + key + "\r\n", "meta")) == "HD\r\n" ? 1 : 0;
    }
    return n;
  }
  // Every key of both redis-servers, sorted.
  std::vector<std::string> redis_server_keys() {
    std::vector<std::string> keys;
    for (auto& r : redis_) {
      auto c = r.client();
      const std::string reply = c->call({"KEYS", "*"});
      for (size_t at = reply.find("\r\n$"); at != std::string::npos;
           at = reply.find("\r\n$", at + 1)) {
        const size_t body = reply.find("\r\n", at + 2) + 2;
        const size_t length = std::stoul(reply.substr(at + 3, body - at - 5));
        keys.push_back(reply.substr(body, length));
      }
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  int redis_servers_holding(const std::string& key) {
    int n = 0;
    for (auto& r : redis_)
      n += r.client()->call({"EXISTS", key}) == ":1\r\n" ? 1 : 0;
    return n;
  }

 private:
  MemcachedServer mc_[2];
  RedisServer redis_[2];
  std::unique_ptr<CachegateServer> proxy_;
};

std::string value_of(const std::string& tenant, const std::string& name) {
  return tenant + "-value-of-" + name;
}

// --- memcached ---------------------------------------------------------------------------------

TEST_CASE("memcached tenants with namespaces share key names and never see each other's keys",
          "[namespace]") {
  Tenants t;
  auto a = t.mc("a");
  auto b = t.mc("b");
  const auto names = shared_names();
  for (const auto& tenant : {"a", "b"}) {
    auto& c = std::string(tenant) == "a" ? a : b;
    for (const auto& n : names) {
      const std::string v = value_of(tenant, n);
      REQUIRE(text(c->call("set " + n + " 7 0 " + std::to_string(v.size()) + "\r\n" + v +
                           "\r\n")) == "STORED\r\n");
    }
  }

  // On the servers, every key carries its tenant's prefix, spread over both servers.
  const std::vector<std::string> expected = stored_names();
  CHECK(t.mc_server_keys() == expected);
  for (const auto& n : names)
    CHECK(t.mc_servers_with("a:" + n) == 1);

  SECTION("a multi-get spanning both servers names the keys without the prefix, in order") {
    std::string line = "get";
    std::string want;
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      line += " " + *it;
      const std::string v = value_of("a", *it);
      want += "VALUE " + *it + " 7 " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
    }
    CHECK(text(a->call(line + " missing\r\n", "get")) == want + "END\r\n");
    // gets and gat too; the cas unique is the server's.
    const std::string gets = text(b->call("gets k1 k2\r\n", "get"));
    CHECK(gets.rfind("VALUE k1 7 " + std::to_string(value_of("b", "k1").size()) + " ", 0) == 0);
    CHECK(gets.find("VALUE k2 7 ") != std::string::npos);
    CHECK(gets.find("b:") == std::string::npos);
    CHECK(text(b->call("gat 100 k3\r\n", "get")) ==
          "VALUE k3 7 " + std::to_string(value_of("b", "k3").size()) + "\r\n" +
              value_of("b", "k3") + "\r\nEND\r\n");
  }

  SECTION("writes, deletes and arithmetic touch only the tenant's own key") {
    CHECK(text(a->call("delete k1\r\n")) == "DELETED\r\n");
    CHECK(text(a->call("get k1\r\n", "get")) == "END\r\n");
    CHECK(text(b->call("get k1\r\n", "get")).find(value_of("b", "k1")) != std::string::npos);
    CHECK(text(a->call("set n 0 0 2\r\n10\r\n")) == "STORED\r\n");
    CHECK(text(a->call("incr n 5\r\n")) == "15\r\n");
    CHECK(text(b->call("incr n 5\r\n")) == "NOT_FOUND\r\n");
    CHECK(text(b->call("add n 0 0 1\r\n1\r\n")) == "STORED\r\n");
    CHECK(text(b->call("get n\r\n", "get")) == "VALUE n 0 1\r\n1\r\nEND\r\n");
    CHECK(text(a->call("get n\r\n", "get")) == "VALUE n 0 2\r\n15\r\nEND\r\n");
    // noreply: nothing comes back, the next reply is in step, and the key is the tenant's.
    a->send("set quiet 0 0 1 noreply\r\nq\r\n");
    CHECK(text(a->call("touch quiet 10\r\n")) == "TOUCHED\r\n");
    CHECK(t.mc_servers_with("a:quiet") == 1);
    CHECK(t.mc_servers_with("quiet") == 0);
  }

  SECTION("meta replies echo the key without the prefix, base64 keys included") {
    CHECK(text(a->call("mg k2 k v\r\n", "meta")) == "VA " +
                                                        std::to_string(value_of("a", "k2").size()) +
                                                        " kk2\r\n" + value_of("a", "k2") + "\r\n");
    CHECK(text(b->call("mg k2 k s Oxy\r\n", "meta")) ==
          "HD kk2 s" + std::to_string(value_of("b", "k2").size()) + " Oxy\r\n");
    CHECK(text(a->call("mg nothing k\r\n", "meta")) == "EN knothing\r\n");
    CHECK(text(a->call("ms m1 2 k T0\r\nhi\r\n", "meta")) == "HD km1\r\n");
    CHECK(text(a->call("md m1 k q\r\nmn\r\n", "meta")) == "MN\r\n");
    CHECK(text(a->call("md m1 k\r\n", "meta")) == "NF km1\r\n");
    CHECK(text(a->call("ma k5 k\r\n", "meta")) ==
          "CLIENT_ERROR cannot increment or decrement "
          "non-numeric value\r\n");
    const std::string me = text(a->call("me k4\r\n", "line"));
    CHECK(me.rfind("ME k4 exp=", 0) == 0);
    // A binary key in base64: stored as "a:" + its bytes, echoed in base64 without the prefix
    // (memcached writes the k flag, then b).
    const std::string raw("\x01\x02 \xff", 4);
    CHECK(text(a->call("ms " + b64(raw) + " 1 b k\r\nz\r\n", "meta")) ==
          "HD k" + b64(raw) + " b\r\n");
    CHECK(text(a->call("mg " + b64(raw) + " b k v\r\n", "meta")) ==
          "VA 1 k" + b64(raw) + " b\r\nz\r\n");
    CHECK(t.mc_servers_with(b64("a:" + raw) + " b") == 1);
    CHECK(t.mc_servers_with(b64(raw) + " b") == 0);
    CHECK(text(b->call("mg " + b64(raw) + " b k v\r\n", "meta")) == "EN k" + b64(raw) + " b\r\n");
    // A key stored plain and asked for in base64 is echoed plain, as memcached does; and the
    // other way round.
    CHECK(text(a->call("mg " + b64("k2") + " b k s\r\n", "meta")) ==
          "HD kk2 s" + std::to_string(value_of("a", "k2").size()) + "\r\n");
    CHECK(text(a->call("me " + b64("k2") + " b\r\n", "line")).rfind("ME k2 exp=", 0) == 0);
    CHECK(text(a->call("mg " + b64(raw) + " b k s\r\n", "meta")) ==
          "HD k" + b64(raw) + " b s1\r\n");
  }

  SECTION("padding cannot push a forwarded line past memcached's 2048 bytes") {
    const std::string padded = "touch k1" + std::string(2048 - 14, ' ') + " 100\r\n";
    REQUIRE(padded.size() == 2048);
    CHECK(text(a->call(padded)) == "CLIENT_ERROR line too long\r\n");
    CHECK(text(a->call("touch k1 100\r\n")) == "TOUCHED\r\n");
  }

  SECTION("a key too long with the namespace is refused as memcached would") {
    const std::string longest(248, 'x');
    CHECK(text(a->call("set " + longest + " 0 0 1\r\n1\r\n")) == "STORED\r\n");
    CHECK(text(a->call("set " + longest + "y 0 0 1\r\n1\r\n")) ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");
    CHECK(text(a->call("get " + longest + "y\r\n", "get")) ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");
    CHECK(text(a->call("mg " + longest + "y v\r\n", "meta")) ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");
    CHECK(text(a->call("get " + longest + "\r\n", "get")) ==
          "VALUE " + longest + " 0 1\r\n1\r\nEND\r\n");
  }

  SECTION("flush_all is refused to tenants; root without a namespace may flush") {
    CHECK(text(a->call("flush_all\r\n")) ==
          "CLIENT_ERROR flush_all is not available to a user with a namespace: it would flush "
          "every namespace's keys\r\n");
    a->send("flush_all noreply\r\n");
    CHECK(text(b->call("get k0\r\n", "get")).find(value_of("b", "k0")) != std::string::npos);
    CHECK(t.mc_server_keys().size() == expected.size());
    auto root = t.mc("root");
    CHECK(text(root->call("get a:k0 b:k0\r\n", "get")).find(value_of("b", "k0")) !=
          std::string::npos);
    CHECK(text(root->call("flush_all\r\n")) == "OK\r\n");
    CHECK(text(a->call("get k0\r\n", "get")) == "END\r\n");
  }
}

// --- Redis -------------------------------------------------------------------------------------

// The members of a flat RESP array of bulk strings, sorted.
std::vector<std::string> bulks(const std::string& reply) {
  std::vector<std::string> out;
  size_t at = reply.find("\r\n") + 2;
  while (at < reply.size() && reply[at] == '$') {
    const size_t body = reply.find("\r\n", at) + 2;
    const size_t length = std::stoul(reply.substr(at + 1, body - at - 3));
    out.push_back(reply.substr(body, length));
    at = body + length + 2;
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every key SCAN returns over a whole iteration (cursor 0 to 0), sorted.
std::vector<std::string> scan_all(RespClient& c, const std::vector<std::string>& options = {}) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  for (int round = 0; round < 1000; ++round) {
    std::vector<std::string> args = {"SCAN", cursor};
    args.insert(args.end(), options.begin(), options.end());
    const std::string reply = c.call(args);
    REQUIRE(reply.rfind("*2\r\n$", 0) == 0);
    const size_t cursor_at = reply.find("\r\n", 4) + 2;
    const size_t cursor_end = reply.find("\r\n", cursor_at);
    cursor = reply.substr(cursor_at, cursor_end - cursor_at);
    for (const auto& k : bulks(reply.substr(cursor_end + 2)))
      keys.push_back(k);
    if (cursor == "0") break;
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST_CASE("Redis tenants with namespaces share key names and never see each other's keys",
          "[namespace]") {
  Tenants t;
  auto a = t.redis("a");
  auto b = t.redis("b");
  const auto names = shared_names();
  for (const auto& tenant : {"a", "b"}) {
    auto& c = std::string(tenant) == "a" ? a : b;
    std::vector<std::string> mset = {"MSET"};
    for (const auto& n : names) {
      mset.push_back(n);
      mset.push_back(value_of(tenant, n));
    }
    REQUIRE(c->call(mset) == "+OK\r\n");
  }
  const std::vector<std::string> expected = stored_names();
  CHECK(t.redis_server_keys() == expected);
  for (const auto& n : names)
    CHECK(t.redis_servers_holding("b:" + n) == 1);

  SECTION("reads and writes reach only the tenant's keys") {
    CHECK(a->call({"GET", "k1"}) == resp_bulk(value_of("a", "k1")));
    CHECK(b->call({"GET", "k1"}) == resp_bulk(value_of("b", "k1")));
    std::vector<std::string> mget = {"MGET"};
    std::vector<std::string> want;
    for (const auto& n : names) {
      mget.push_back(n);
      want.push_back(value_of("b", n));
    }
    CHECK(b->call(mget) == resp_array_of_bulks(want));
    CHECK(a->call({"DEL", "k1", "k2", "nothing"}) == resp_int(2));
    CHECK(a->call({"EXISTS", "k1", "k3"}) == resp_int(1));
    CHECK(b->call({"EXISTS", "k1", "k2", "k3"}) == resp_int(3));
    CHECK(a->call({"INCRBY", "counter", "4"}) == resp_int(4));
    CHECK(b->call({"GET", "counter"}) == "$-1\r\n");
    // Hash tags still decide the server, inside the namespace.
    CHECK(a->call({"MSET", "{u1}x", "1", "{u1}y", "2"}) == "+OK\r\n");
    CHECK(a->call({"RENAME", "{u1}x", "{u1}z"}) == "+OK\r\n");
    CHECK(a->call({"MGET", "{u1}y", "{u1}z"}) == resp_array_of_bulks({"2", "1"}));
    CHECK(t.redis_servers_holding("a:{u1}z") == 1);
    CHECK(b->call({"EXISTS", "{u1}z"}) == resp_int(0));
  }

  SECTION("KEYS and SCAN list only the tenant's keys, without the prefix") {
    CHECK(bulks(a->call({"KEYS", "*"})) == sorted(names));
    CHECK(bulks(b->call({"KEYS", "k1*"})) ==
          sorted({"k1", "k10", "k11", "k12", "k13", "k14", "k15"}));
    CHECK(scan_all(*a) == sorted(names));
    CHECK(scan_all(*b, {"COUNT", "3"}) == sorted(names));
    CHECK(scan_all(*b, {"MATCH", "k1?", "COUNT", "5"}) ==
          sorted({"k10", "k11", "k12", "k13", "k14", "k15"}));
    CHECK(scan_all(*a, {"TYPE", "string"}) == sorted(names));
    CHECK(scan_all(*a, {"TYPE", "list"}).empty());
    // A pattern naming the other tenant's prefix finds nothing.
    CHECK(a->call({"KEYS", "b:*"}) == "*0\r\n");
    CHECK(scan_all(*a, {"MATCH", "b:*"}).empty());
  }

  SECTION("a namespace with glob characters is matched literally") {
    auto root = t.redis("root");
    CHECK(root->call({"SET", "gX[1]:intruder", "1"}) == "+OK\r\n");
    CHECK(root->call({"SET", "g*1:intruder", "1"}) == "+OK\r\n");
    auto glob = t.redis("glob");
    CHECK(glob->call({"SET", "mine", "1"}) == "+OK\r\n");
    CHECK(t.redis_servers_holding("g*[1]:mine") == 1);
    CHECK(glob->call({"KEYS", "*"}) == resp_array_of_bulks({"mine"}));
    CHECK(scan_all(*glob) == std::vector<std::string>{"mine"});
    // root sees everything, with the prefixes.
    CHECK(bulks(root->call({"KEYS", "g*"})) ==
          sorted({"gX[1]:intruder", "g*1:intruder", "g*[1]:mine"}));
  }

  SECTION("replies that name keys name them without the prefix") {
    CHECK(a->call({"RPUSH", "{l}list", "x", "y"}) == resp_int(2));
    CHECK(a->call({"LMPOP", "2", "{l}none", "{l}list", "LEFT"}) ==
          "*2\r\n" + resp_bulk("{l}list") + resp_array_of_bulks({"x"}));
    CHECK(b->call({"LMPOP", "1", "{l}list", "LEFT"}) == "*-1\r\n");
    CHECK(a->call({"ZADD", "z", "1", "m"}) == resp_int(1));
    CHECK(a->call({"ZMPOP", "1", "z", "MIN"}) ==
          "*2\r\n" + resp_bulk("z") + "*1\r\n*2\r\n" + resp_bulk("m") + resp_bulk("1") + "");
    CHECK(a->call({"XADD", "{s}1", "1-1", "f", "v"}) == resp_bulk("1-1"));
    CHECK(a->call({"XADD", "{s}2", "1-2", "g", "w"}) == resp_bulk("1-2"));
    const std::string entry1 = "*1\r\n*2\r\n" + resp_bulk("1-1") + resp_array_of_bulks({"f", "v"});
    const std::string entry2 = "*1\r\n*2\r\n" + resp_bulk("1-2") + resp_array_of_bulks({"g", "w"});
    CHECK(a->call({"XREAD", "STREAMS", "{s}1", "{s}2", "0", "0"}) ==
          "*2\r\n*2\r\n" + resp_bulk("{s}1") + entry1 + "*2\r\n" + resp_bulk("{s}2") + entry2);
    CHECK(b->call({"XREAD", "STREAMS", "{s}1", "0"}) == "*-1\r\n");
    // RESP3: a map of stream name → entries.
    CHECK(a->call({"HELLO", "3"}).rfind("%7\r\n", 0) == 0);
    CHECK(a->call({"XREAD", "STREAMS", "{s}1", "0"}) == "%1\r\n" + resp_bulk("{s}1") + entry1);
    CHECK(bulks(a->call({"KEYS", "{s}*"})) == sorted({"{s}1", "{s}2"}));
  }

  SECTION("what cannot be confined to a namespace is refused, and nothing is flushed") {
    const std::string why_flush = "it would remove every namespace's keys\r\n";
    CHECK(a->call({"FLUSHALL"}) ==
          "-NOPERM 'flushall' is not available to a user with a namespace: " + why_flush);
    CHECK(a->call({"FLUSHDB", "ASYNC"}) ==
          "-NOPERM 'flushdb' is not available to a user with a namespace: " + why_flush);
    CHECK(a->call({"RANDOMKEY"}) ==
          "-NOPERM 'randomkey' is not available to a user with a namespace: it would see every "
          "namespace's keys\r\n");
    CHECK(a->call({"DBSIZE"}).rfind("-NOPERM 'dbsize' is not available", 0) == 0);
    CHECK(a->call({"EVAL", "return redis.call('get', 'b:k1')", "0"}) ==
          "-NOPERM 'eval' is not available to a user with a namespace: a script can reach keys "
          "outside the namespace\r\n");
    CHECK(a->call({"SCRIPT", "FLUSH"}).rfind("-NOPERM 'script|flush' is not available", 0) == 0);
    const std::string beyond = "it reaches the servers beyond the namespace\r\n";
    CHECK(a->call({"CONFIG", "SET", "maxmemory", "1"}) ==
          "-NOPERM 'config|set' is not available to a user with a namespace: " + beyond);
    CHECK(a->call({"CONFIG", "GET", "requirepass"}) ==
          "-NOPERM 'config|get' is not available to a user with a namespace: " + beyond);
    CHECK(a->call({"INFO", "keyspace"}) ==
          "-NOPERM 'info' is not available to a user with a namespace: " + beyond);
    CHECK(a->call({"COPY", "k1", "k1copy", "DB", "3"}) ==
          "-ERR COPY with DB is not supported by cachegate: each pool is one database\r\n");
    CHECK(t.redis_server_keys() == expected);
    auto root = t.redis("root");
    CHECK(root->call({"DBSIZE"}) == resp_int(static_cast<long long>(expected.size())));
    CHECK(root->call({"FLUSHALL"}) == "+OK\r\n");
    CHECK(b->call({"KEYS", "*"}) == "*0\r\n");
  }

  SECTION("a repeated STORE keeps every destination inside the namespace") {
    CHECK(a->call({"GEOADD", "{g}src", "0", "0", "m"}) == resp_int(1));
    CHECK(a->call({"GEORADIUS", "{g}src", "0", "0", "100", "km", "STORE", "{g}x", "STORE",
                   "{g}y"}) == resp_int(1));
    CHECK(t.redis_servers_holding("a:{g}y") == 1);
    CHECK(t.redis_servers_holding("{g}y") == 0);
    CHECK(b->call({"EXISTS", "{g}y"}) == resp_int(0));
  }

  SECTION("a pipeline of AUTHs: each reply is stripped of the namespace it ran under") {
    auto c = t.redis("a");
    const std::string bytes = testing::resp_command({"KEYS", "k1"}) +
                              testing::resp_command({"AUTH", "b", password_of("b")}) +
                              testing::resp_command({"KEYS", "k2"}) +
                              testing::resp_command({"AUTH", "root", password_of("root")}) +
                              testing::resp_command({"KEYS", "?:k3"});
    const auto replies = c->pipeline(bytes, 5);
    REQUIRE(replies.size() == 5);
    CHECK(replies[0] == resp_array_of_bulks({"k1"}));
    CHECK(replies[1] == "+OK\r\n");
    CHECK(replies[2] == resp_array_of_bulks({"k2"}));
    CHECK(replies[3] == "+OK\r\n");
    CHECK(bulks(replies[4]) == sorted({"a:k3", "b:k3"}));
  }
}

}  // namespace
}  // namespace cachegate
