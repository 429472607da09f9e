// Per-user permissions in front of a real memcached and a real redis-server: a user may use only
// the operation classes (read, write, admin) and the keys (glob patterns) its `allow` names. A
// refused request is answered `CLIENT_ERROR permission denied` / redis-server's own `-NOPERM …`
// and reaches no server, which the tests check on the servers themselves; a refused multi-key
// request is refused as a whole. Anonymous clients of an `auth: none` listener may do everything
// until they log in as a restricted user.

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
using testing::printable;
using testing::RedisServer;
using testing::resp_array_of_bulks;
using testing::resp_bulk;
using testing::resp_int;
using testing::RespClient;
using testing::TextClient;

constexpr std::string_view kDenied = "CLIENT_ERROR permission denied\r\n";
constexpr std::string_view kNoPermKeys =
    "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";

std::string noperm_command(const std::string& name) {
  return "-NOPERM this user has no permissions to run the '" + name + "' command\r\n";
}

std::string password_of(const std::string& user) {
  return "pw-" + user + "-4471";
}

// What a memcached reply was, or a marker that never is one (so that a failed comparison
// prints both sides).
std::string text(const std::optional<std::string>& reply) {
  return reply.value_or("<no reply>");
}

std::string user_yaml(const std::string& name, const std::string& allow) {
  std::string y = "  - name: " + name + "\n    password_hash: \"" +
                  testing::cheap_password_hash(password_of(name)) + "\"\n";
  if (!allow.empty()) y += "    allow: " + allow + "\n";
  return y;
}

// One memcached, one redis-server and cachegate in front of them, with four listeners:
// memcached and Redis, each with `auth: required` and with `auth: none`.
class Gate {
 public:
  static constexpr size_t kMc = 0, kRedis = 1, kMcOpen = 2, kRedisOpen = 3;

  Gate() {
    std::string y = "workers: 2\n";
    y += "listeners:\n";
    y += "  - {name: mc, listen: \"127.0.0.1:{port}\", pool: cache, auth: required}\n";
    y += "  - {name: r, listen: \"127.0.0.1:{port1}\", pool: red, auth: required}\n";
    y += "  - {name: mc-open, listen: \"127.0.0.1:{port2}\", pool: cache}\n";
    y += "  - {name: r-open, listen: \"127.0.0.1:{port3}\", pool: red}\n";
    y += "users:\n";
    y += user_yaml("reader", "{ops: [read]}");
    y += user_yaml("writer", "{ops: [read, write]}");
    y += user_yaml("admin", "");
    y += user_yaml("app", "{ops: [read, write], keys: [\"app:*\"]}");
    y += user_yaml("app-a", "{ops: [read, write], keys: [\"a:*\"]}");
    y += user_yaml("app-b", "{ops: [read, write], keys: [\"b:*\"]}");
    // Every test connects from 127.0.0.1; throttling is not the subject here.
    y += "auth_limits: {failures_slow: 1000, failures_block: 1000}\n";
    y += "pools:\n";
    y += testing::test_pool_yaml("cache", "memcached", {memcached_.port()}, "m");
    y += testing::test_pool_yaml("red", "redis", {redis_.port()}, "r");
    proxy_ = std::make_unique<CachegateServer>(y);
    for (size_t listener = 1; listener <= kRedisOpen; ++listener)
      REQUIRE(testing::wait_for_port("127.0.0.1", proxy_->port(listener), 5000ms));
  }
  ~Gate() {
    proxy_.reset();
    memcached_.process().signal(SIGKILL);
  }

  // A memcached client logged in as `user` with memcached's ASCII login.
  std::unique_ptr<TextClient> mc(const std::string& user) {
    auto c = std::make_unique<TextClient>("127.0.0.1", proxy_->port(kMc));
    testing::memcache_login(*c, user, password_of(user));
    return c;
  }
  std::unique_ptr<TextClient> mc_anonymous() {
    return std::make_unique<TextClient>("127.0.0.1", proxy_->port(kMcOpen));
  }
  // A Redis client logged in as `user` with AUTH.
  std::unique_ptr<RespClient> redis(const std::string& user) {
    auto c = std::make_unique<RespClient>(proxy_->port(kRedis));
    REQUIRE(c->call({"AUTH", user, password_of(user)}) == "+OK\r\n");
    return c;
  }
  std::unique_ptr<RespClient> redis_anonymous() {
    return std::make_unique<RespClient>(proxy_->port(kRedisOpen));
  }

  // Straight to the servers, bypassing cachegate.
  std::unique_ptr<TextClient> mc_direct() {
    return std::make_unique<TextClient>("127.0.0.1", memcached_.port());
  }
  std::unique_ptr<RespClient> redis_direct() { return redis_.client(); }

  // The memcached server's own value of `key` with its TTL ("VA 5 t-1\r\nhello\r\n"), or "EN".
  std::string mc_item(const std::string& key) {
    return text(mc_direct()->call("mg " + key + " v t\r\n", "meta"));
  }
  void mc_put(const std::string& key, const std::string& value) {
    REQUIRE(text(mc_direct()->call("set " + key + " 0 0 " + std::to_string(value.size()) + "\r\n" +
                                   value + "\r\n")) == "STORED\r\n");
  }
  // One figure of the memcached server's `stats`.
  long long mc_stat(const std::string& name) {
    const std::string stats = text(mc_direct()->call("stats\r\n", "get"));
    const std::string field = "STAT " + name + " ";
    const size_t at = stats.find(field);
    REQUIRE(at != std::string::npos);
    return std::atoll(stats.c_str() + at + field.size());
  }
  // How often the redis-server ran `command` (INFO commandstats; 0 when never).
  long long redis_calls(const std::string& command) {
    const std::string info = redis_direct()->call({"INFO", "commandstats"});
    const std::string field = "cmdstat_" + command + ":calls=";
    const size_t at = info.find(field);
    return at == std::string::npos ? 0 : std::atoll(info.c_str() + at + field.size());
  }

 private:
  MemcachedServer memcached_;
  RedisServer redis_;
  std::unique_ptr<CachegateServer> proxy_;
};

// A redis-server whose ACL users mirror the cachegate users whose refusals are compared with
// it: the bytes cachegate answers must be redis-server's own.
std::unique_ptr<RedisServer> reference_redis() {
  return std::make_unique<RedisServer>(std::vector<std::string>{"--user",
                                                                "reader",
                                                                "on",
                                                                ">" + password_of("reader"),
                                                                "~*",
                                                                "+@all",
                                                                "-@write",
                                                                "--user",
                                                                "app",
                                                                "on",
                                                                ">" + password_of("app"),
                                                                "~app:*",
                                                                "+@all",
                                                                "--user",
                                                                "writer",
                                                                "on",
                                                                ">" + password_of("writer"),
                                                                "~*",
                                                                "+@all",
                                                                "-flushall",
                                                                "-keys",
                                                                "-scan",
                                                                "-dbsize",
                                                                "-info",
                                                                "-config|get",
                                                                "-eval",
                                                                "-script|load"});
}

std::unique_ptr<RespClient> reference_login(RedisServer& server, const std::string& user) {
  auto c = server.client();
  REQUIRE(c->call({"AUTH", user, password_of(user)}) == "+OK\r\n");
  return c;
}

// --- read-only users ---------------------------------------------------------------------------

TEST_CASE("A read-only memcached user reads but no write of theirs reaches the server",
          "[permissions]") {
  Gate gate;
  gate.mc_put("ro:k", "hello");
  gate.mc_put("ro:n", "5");
  auto c = gate.mc("reader");

  CHECK(text(c->call("get ro:k\r\n", "get")) == "VALUE ro:k 0 5\r\nhello\r\nEND\r\n");
  CHECK(text(c->call("get ro:k ro:n ro:none\r\n", "get")) ==
        "VALUE ro:k 0 5\r\nhello\r\nVALUE ro:n 0 1\r\n5\r\nEND\r\n");
  CHECK(text(c->call("mg ro:k v\r\n", "meta")) == "VA 5\r\nhello\r\n");
  CHECK(text(c->call("gets ro:k\r\n", "get")).rfind("VALUE ro:k 0 5 ", 0) == 0);

  const std::vector<std::string> writes = {
      "set ro:k 0 0 3\r\nbad\r\n",
      "add ro:new 0 0 3\r\nbad\r\n",
      "replace ro:k 0 0 3\r\nbad\r\n",
      "append ro:k 0 0 3\r\nbad\r\n",
      "prepend ro:k 0 0 3\r\nbad\r\n",
      "cas ro:k 0 0 3 1\r\nbad\r\n",
      "delete ro:k\r\n",
      "incr ro:n 1\r\n",
      "decr ro:n 1\r\n",
      "touch ro:k 100\r\n",
      "gat 100 ro:k\r\n",
      "gats 100 ro:k\r\n",
      "ms ro:k 3\r\nbad\r\n",
      "ms ro:new 3\r\nbad\r\n",
      "md ro:k\r\n",
      "ma ro:n\r\n",
      "mg ro:k v N30\r\n",
      "mg ro:new v N30\r\n",
      "mg ro:k v T30\r\n",
      "mg ro:k s v T30 k\r\n",
      "flush_all\r\n",
  };
  for (const auto& w : writes) {
    INFO(printable(w));
    CHECK(text(c->call(w)) == kDenied);
  }
  // The data blocks of refused storage commands were consumed: the connection is in step.
  CHECK(text(c->call("get ro:k\r\n", "get")) == "VALUE ro:k 0 5\r\nhello\r\nEND\r\n");

  // On the server: values unchanged, no TTL set, nothing created.
  CHECK(gate.mc_item("ro:k") == "VA 5 t-1\r\nhello\r\n");
  CHECK(gate.mc_item("ro:n") == "VA 1 t-1\r\n5\r\n");
  CHECK(gate.mc_item("ro:new") == "EN\r\n");
  CHECK(gate.mc_stat("cmd_set") == 2);  // the two direct sets above
  CHECK(gate.mc_stat("cmd_touch") == 0);
  CHECK(gate.mc_stat("delete_hits") + gate.mc_stat("delete_misses") == 0);
  CHECK(gate.mc_stat("incr_hits") + gate.mc_stat("decr_hits") == 0);
}

TEST_CASE("A refused noreply write sends nothing and the next reply stays in step",
          "[permissions]") {
  Gate gate;
  gate.mc_put("ro:k", "hello");
  auto c = gate.mc("reader");

  // Nothing may come back for the noreply set: the first bytes read are the get's reply.
  c->send("set ro:k 0 0 3 noreply\r\nbad\r\ndelete ro:k noreply\r\nincr ro:k 1 noreply\r\n");
  CHECK(text(c->call("get ro:k\r\n", "get")) == "VALUE ro:k 0 5\r\nhello\r\nEND\r\n");
  CHECK(text(c->call("version\r\n")).rfind("VERSION ", 0) == 0);
  CHECK(gate.mc_item("ro:k") == "VA 5 t-1\r\nhello\r\n");
  CHECK(gate.mc_stat("cmd_set") == 1);
}

TEST_CASE("A read-only Redis user reads but gets redis-server's NOPERM for every write",
          "[permissions]") {
  Gate gate;
  auto reference = reference_redis();
  auto direct = gate.redis_direct();
  REQUIRE(direct->call({"SET", "ro:k", "hello"}) == "+OK\r\n");
  REQUIRE(direct->call({"SET", "ro:n", "5"}) == "+OK\r\n");
  auto c = gate.redis("reader");
  auto ref = reference_login(*reference, "reader");

  CHECK(c->call({"GET", "ro:k"}) == resp_bulk("hello"));
  CHECK(c->call({"MGET", "ro:k", "ro:n"}) == resp_array_of_bulks({"hello", "5"}));
  CHECK(c->call({"EXISTS", "ro:k", "ro:none"}) == resp_int(1));
  CHECK(c->call({"STRLEN", "ro:k"}) == resp_int(5));

  const std::vector<std::vector<std::string>> writes = {
      {"SET", "ro:k", "bad"},    {"DEL", "ro:k"},
      {"EXPIRE", "ro:k", "100"}, {"INCR", "ro:n"},
      {"APPEND", "ro:k", "bad"}, {"MSET", "ro:k", "1", "ro:n", "2"},
      {"UNLINK", "ro:k"},        {"HSET", "ro:h", "f", "v"},
      {"GETDEL", "ro:k"},        {"SET", "ro:new", "x"},
      {"PERSIST", "ro:k"},
  };
  for (const auto& w : writes) {
    INFO(w[0]);
    std::string lower = w[0];
    for (auto& ch : lower)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::string got = c->call(w);
    CHECK(got == noperm_command(lower));
    CHECK(printable(got) == printable(ref->call(w)));
  }
  CHECK(c->call({"GET", "ro:k"}) == resp_bulk("hello"));

  // Nothing reached the server: values and TTLs as they were, and no write command ran there.
  CHECK(direct->call({"GET", "ro:k"}) == resp_bulk("hello"));
  CHECK(direct->call({"GET", "ro:n"}) == resp_bulk("5"));
  CHECK(direct->call({"TTL", "ro:k"}) == resp_int(-1));
  CHECK(direct->call({"EXISTS", "ro:new", "ro:h"}) == resp_int(0));
  CHECK(gate.redis_calls("set") == 2);  // the two direct SETs above
  for (const std::string name :
       {"del", "expire", "incr", "append", "mset", "unlink", "hset", "getdel", "persist"}) {
    INFO(name);
    CHECK(gate.redis_calls(name) == 0);
  }
}

// --- key patterns ------------------------------------------------------------------------------

TEST_CASE("A memcached user limited to app:* keys is refused any request naming another key",
          "[permissions]") {
  Gate gate;
  gate.mc_put("other:x", "theirs");
  auto c = gate.mc("app");

  CHECK(text(c->call("set app:x 0 0 4\r\nmine\r\n")) == "STORED\r\n");
  CHECK(text(c->call("get app:x\r\n", "get")) == "VALUE app:x 0 4\r\nmine\r\nEND\r\n");
  CHECK(text(c->call("mg app:x v\r\n", "meta")) == "VA 4\r\nmine\r\n");
  CHECK(text(c->call("incr app:x 1\r\n")) ==
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");

  const long long gets_before = gate.mc_stat("cmd_get");
  const long long sets_before = gate.mc_stat("cmd_set");
  const std::vector<std::string> refused = {
      "get other:x\r\n",
      "gets other:x\r\n",
      "get app:x other:x\r\n",  // one key outside the patterns refuses the whole request
      "gets app:x app:y other:x\r\n",
      "gat 0 app:x other:x\r\n",
      "set other:x 0 0 3\r\nbad\r\n",
      "set other:new 0 0 3\r\nbad\r\n",
      "delete other:x\r\n",
      "touch other:x 100\r\n",
      "mg other:x v\r\n",
      "mg b3RoZXI6eA== b v\r\n",  // other:x in base64: the decoded key is what is checked
      "ms other:x 3\r\nbad\r\n",
      "md other:x\r\n",
      "ma other:x\r\n",
      "get xapp:x\r\n",
  };
  for (const auto& r : refused) {
    INFO(printable(r));
    CHECK(text(c->call(r)) == kDenied);
  }
  CHECK(text(c->call("get app:x\r\n", "get")) == "VALUE app:x 0 4\r\nmine\r\nEND\r\n");

  // Only the final get of app:x was read, and nothing was written.
  CHECK(gate.mc_stat("cmd_get") == gets_before + 1);
  CHECK(gate.mc_stat("cmd_set") == sets_before);
  CHECK(gate.mc_item("other:x") == "VA 6 t-1\r\ntheirs\r\n");
  CHECK(gate.mc_item("app:x") == "VA 4 t-1\r\nmine\r\n");
  CHECK(gate.mc_item("other:new") == "EN\r\n");
}

TEST_CASE("A Redis user limited to app:* keys is refused any command naming another key",
          "[permissions]") {
  Gate gate;
  auto reference = reference_redis();
  auto direct = gate.redis_direct();
  REQUIRE(direct->call({"SET", "other:x", "theirs"}) == "+OK\r\n");
  auto c = gate.redis("app");
  auto ref = reference_login(*reference, "app");
  REQUIRE(ref->call({"SET", "app:x", "mine"}) == "+OK\r\n");
  REQUIRE(ref->call({"SET", "app:y", "mine2"}) == "+OK\r\n");

  CHECK(c->call({"SET", "app:x", "mine"}) == "+OK\r\n");
  CHECK(c->call({"SET", "app:y", "mine2"}) == "+OK\r\n");
  CHECK(c->call({"GET", "app:x"}) == resp_bulk("mine"));
  CHECK(c->call({"MGET", "app:x", "app:y"}) == resp_array_of_bulks({"mine", "mine2"}));

  const long long mgets_before = gate.redis_calls("mget");
  const std::vector<std::vector<std::string>> refused = {
      {"GET", "other:x"},
      {"SET", "other:x", "bad"},
      {"SET", "other:new", "bad"},
      {"MGET", "app:x", "other:x"},
      {"MSET", "app:z", "1", "other:z", "2"},
      {"DEL", "app:x", "other:x"},
      {"EXISTS", "app:x", "other:x"},
      {"EXPIRE", "other:x", "100"},
      {"RENAME", "app:x", "other:renamed"},
      {"COPY", "app:x", "other:copy"},
      {"GET", "xapp:x"},
      // Keys found by every kind of key specification: after a keyword, counted by a numkeys
      // argument, after STREAMS, as the last argument.
      {"GEORADIUS", "app:geo", "0", "0", "100", "km", "STORE", "other:dst"},
      {"GEOSEARCHSTORE", "other:dst", "app:geo", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"},
      {"ZUNIONSTORE", "app:dst", "2", "app:z", "other:z"},
      {"ZINTER", "2", "app:z", "other:z"},
      {"SINTERCARD", "2", "app:s", "other:s"},
      {"LMPOP", "2", "app:l", "other:l", "LEFT"},
      {"XREAD", "COUNT", "1", "STREAMS", "app:s", "other:s", "0", "0"},
      {"BITOP", "AND", "app:dst", "app:x", "other:x"},
      {"LCS", "app:x", "other:x"},
      {"MSETNX", "app:a", "1", "other:b", "2"},
      {"SMOVE", "app:s", "other:s", "m"},
      {"OBJECT", "ENCODING", "other:x"},
      {"MEMORY", "USAGE", "other:x"},
      {"TYPE", "other:x"},
      {"DUMP", "other:x"},
      // SORT is @dangerous to Redis for the keys it may touch, which the patterns decide.
      {"SORT", "app:list", "STORE", "other:dst"},
  };
  for (const auto& r : refused) {
    INFO(r[0] + " " + r[1]);
    const std::string got = c->call(r);
    CHECK(got == kNoPermKeys);
    CHECK(printable(got) == printable(ref->call(r)));
  }
  CHECK(c->call({"GET", "app:x"}) == resp_bulk("mine"));

  // Nothing was read or written for the refused requests.
  CHECK(gate.redis_calls("mget") == mgets_before);
  for (const std::string name :
       {"mset",       "del",       "exists",          "expire",       "rename",
        "copy",       "georadius", "geosearchstore",  "zunionstore",  "zinter",
        "sintercard", "lmpop",     "xread",           "bitop",        "lcs",
        "msetnx",     "smove",     "object|encoding", "memory|usage", "type",
        "dump",       "sort"}) {
    INFO(name);
    CHECK(gate.redis_calls(name) == 0);
  }
  CHECK(direct->call({"GET", "other:x"}) == resp_bulk("theirs"));
  CHECK(direct->call({"TTL", "other:x"}) == resp_int(-1));
  CHECK(direct->call({"MGET", "app:x", "app:z", "other:z", "other:new", "other:renamed",
                      "other:copy"}) == "*6\r\n$4\r\nmine\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n");
  CHECK(direct->call({"EXISTS", "other:dst", "app:dst", "app:a", "other:b"}) == resp_int(0));
  // Within the patterns SORT is an ordinary read (and, with STORE, write).
  CHECK(c->call({"RPUSH", "app:list", "2", "1"}) == resp_int(2));
  CHECK(c->call({"SORT", "app:list"}) == resp_array_of_bulks({"1", "2"}));
  CHECK(c->call({"SORT", "app:list", "STORE", "app:sorted"}) == resp_int(2));
}

// --- admin -------------------------------------------------------------------------------------

TEST_CASE("Whole-pool and server commands need the admin class", "[permissions]") {
  Gate gate;
  auto reference = reference_redis();
  gate.mc_put("adm:k", "v");
  auto direct = gate.redis_direct();
  REQUIRE(direct->call({"SET", "adm:k", "v"}) == "+OK\r\n");

  SECTION("without admin they are refused and reach no server") {
    auto mc = gate.mc("writer");
    CHECK(text(mc->call("flush_all\r\n")) == kDenied);
    CHECK(text(mc->call("flush_all 0\r\n")) == kDenied);
    CHECK(text(mc->call("get adm:k\r\n", "get")) == "VALUE adm:k 0 1\r\nv\r\nEND\r\n");
    CHECK(gate.mc_stat("cmd_flush") == 0);
    CHECK(gate.mc_item("adm:k") == "VA 1 t-1\r\nv\r\n");

    auto c = gate.redis("writer");
    auto ref = reference_login(*reference, "writer");
    const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
        {{"FLUSHALL"}, "flushall"},
        {{"KEYS", "*"}, "keys"},
        {{"SCAN", "0"}, "scan"},
        {{"DBSIZE"}, "dbsize"},
        {{"INFO"}, "info"},
        {{"CONFIG", "GET", "maxmemory"}, "config|get"},
        {{"EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "adm:k"}, "eval"},
        {{"SCRIPT", "LOAD", "return 1"}, "script|load"},
    };
    for (const auto& [request, name] : refused) {
      INFO(name);
      const std::string got = c->call(request);
      CHECK(got == noperm_command(name));
      CHECK(printable(got) == printable(ref->call(request)));
    }
    // Also those the reference user could run: cachegate's admin class is wider than one
    // redis-server command list.
    CHECK(c->call({"FLUSHDB"}) == noperm_command("flushdb"));
    CHECK(c->call({"RANDOMKEY"}) == noperm_command("randomkey"));
    CHECK(c->call({"TIME"}) == noperm_command("time"));
    CHECK(c->call({"EVALSHA", std::string(40, 'a'), "0"}) == noperm_command("evalsha"));
    CHECK(c->call({"GET", "adm:k"}) == resp_bulk("v"));

    // (INFO is left out: counting calls asks the server's INFO itself.)
    for (const std::string name : {"flushall", "flushdb", "keys", "scan", "dbsize", "config|get",
                                   "eval", "evalsha", "script|load", "randomkey", "time"}) {
      INFO(name);
      CHECK(gate.redis_calls(name) == 0);
    }
    CHECK(direct->call({"GET", "adm:k"}) == resp_bulk("v"));
    CHECK(direct->call({"SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"}) ==
          "*1\r\n:0\r\n");  // SHA1 of "return 1": never loaded
  }

  SECTION("an admin user may run them") {
    auto c = gate.redis("admin");
    CHECK(c->call({"DBSIZE"}) == resp_int(1));
    CHECK(c->call({"KEYS", "*"}) == resp_array_of_bulks({"adm:k"}));
    CHECK(c->call({"SCAN", "0", "COUNT", "100"}).find(resp_bulk("adm:k")) != std::string::npos);
    const std::string info = c->call({"INFO"});
    CHECK(info.rfind("$", 0) == 0);
    CHECK(info.find("# Cachegate") != std::string::npos);
    CHECK(c->call({"CONFIG", "GET", "maxmemory"}).rfind("*2\r\n$9\r\nmaxmemory\r\n", 0) == 0);
    CHECK(c->call({"SCRIPT", "LOAD", "return 1"}) ==
          resp_bulk("e0e1f9fabfc9d4800c877a703b823ac0578ff8db"));
    CHECK(c->call({"EVAL", "return redis.call('get', KEYS[1])", "1", "adm:k"}) == resp_bulk("v"));
    CHECK(c->call({"FLUSHALL"}) == "+OK\r\n");
    CHECK(direct->call({"DBSIZE"}) == resp_int(0));

    auto mc = gate.mc("admin");
    CHECK(text(mc->call("flush_all\r\n")) == "OK\r\n");
    CHECK(gate.mc_item("adm:k") == "EN\r\n");
  }
}

// --- users kept apart --------------------------------------------------------------------------

TEST_CASE("Two users with separate key patterns never touch each other's keys", "[permissions]") {
  Gate gate;
  auto a = gate.redis("app-a");
  auto b = gate.redis("app-b");
  auto ma = gate.mc("app-a");
  auto mb = gate.mc("app-b");
  REQUIRE(a->call({"SET", "a:1", "va"}) == "+OK\r\n");
  REQUIRE(b->call({"SET", "b:1", "vb"}) == "+OK\r\n");
  REQUIRE(text(ma->call("set a:m 0 0 2\r\nma\r\n")) == "STORED\r\n");
  REQUIRE(text(mb->call("set b:m 0 0 2\r\nmb\r\n")) == "STORED\r\n");

  struct Side {
    RespClient& redis;
    TextClient& mc;
    std::string own, other;  // key prefixes
  };
  for (const Side& s : {Side{*a, *ma, "a", "b"}, Side{*b, *mb, "b", "a"}}) {
    INFO("user app-" + s.own);
    const std::string theirs = s.other + ":1";
    const std::string mine = s.own + ":1";
    CHECK(s.redis.call({"GET", theirs}) == kNoPermKeys);
    CHECK(s.redis.call({"SET", theirs, "stolen"}) == kNoPermKeys);
    CHECK(s.redis.call({"DEL", theirs}) == kNoPermKeys);
    CHECK(s.redis.call({"MGET", mine, theirs}) == kNoPermKeys);
    CHECK(s.redis.call({"EXISTS", theirs}) == kNoPermKeys);
    CHECK(s.redis.call({"RENAME", mine, s.other + ":2"}) == kNoPermKeys);
    CHECK(s.redis.call({"SCAN", "0"}) == noperm_command("scan"));
    CHECK(s.redis.call({"KEYS", "*"}) == noperm_command("keys"));
    CHECK(s.redis.call({"RANDOMKEY"}) == noperm_command("randomkey"));
    CHECK(s.redis.call({"FLUSHALL"}) == noperm_command("flushall"));
    CHECK(s.redis.call({"FLUSHDB"}) == noperm_command("flushdb"));
    CHECK(s.redis.call({"EVAL", "return redis.call('get', '" + theirs + "')", "0"}) ==
          noperm_command("eval"));
    CHECK(s.redis.call({"GET", mine}) == resp_bulk("v" + s.own));

    const std::string mc_theirs = s.other + ":m";
    CHECK(text(s.mc.call("get " + mc_theirs + "\r\n")) == kDenied);
    CHECK(text(s.mc.call("get " + s.own + ":m " + mc_theirs + "\r\n")) == kDenied);
    CHECK(text(s.mc.call("set " + mc_theirs + " 0 0 6\r\nstolen\r\n")) == kDenied);
    CHECK(text(s.mc.call("delete " + mc_theirs + "\r\n")) == kDenied);
    CHECK(text(s.mc.call("mg " + mc_theirs + " v\r\n")) == kDenied);
    CHECK(text(s.mc.call("flush_all\r\n")) == kDenied);
    CHECK(text(s.mc.call("get " + s.own + ":m\r\n", "get")) ==
          "VALUE " + s.own + ":m 0 2\r\nm" + s.own + "\r\nEND\r\n");
  }

  auto direct = gate.redis_direct();
  CHECK(direct->call({"MGET", "a:1", "b:1"}) == resp_array_of_bulks({"va", "vb"}));
  CHECK(direct->call({"DBSIZE"}) == resp_int(2));
  CHECK(gate.mc_item("a:m") == "VA 2 t-1\r\nma\r\n");
  CHECK(gate.mc_item("b:m") == "VA 2 t-1\r\nmb\r\n");
  CHECK(gate.mc_stat("cmd_flush") == 0);
}

// --- anonymous clients -------------------------------------------------------------------------

TEST_CASE("Anonymous clients of an auth: none listener may do everything", "[permissions]") {
  Gate gate;
  auto mc = gate.mc_anonymous();
  CHECK(text(mc->call("set any:k 0 0 1\r\nv\r\n")) == "STORED\r\n");
  CHECK(text(mc->call("get any:k\r\n", "get")) == "VALUE any:k 0 1\r\nv\r\nEND\r\n");
  CHECK(text(mc->call("incr any:k 1\r\n")) ==
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  CHECK(text(mc->call("delete any:k\r\n")) == "DELETED\r\n");
  CHECK(text(mc->call("set any:k 0 0 1\r\nv\r\n")) == "STORED\r\n");
  CHECK(text(mc->call("flush_all\r\n")) == "OK\r\n");
  CHECK(gate.mc_item("any:k") == "EN\r\n");

  auto r = gate.redis_anonymous();
  CHECK(r->call({"SET", "any:k", "v"}) == "+OK\r\n");
  CHECK(r->call({"GET", "any:k"}) == resp_bulk("v"));
  CHECK(r->call({"KEYS", "*"}) == resp_array_of_bulks({"any:k"}));
  CHECK(r->call({"DBSIZE"}) == resp_int(1));
  CHECK(r->call({"EVAL", "return 7", "0"}) == resp_int(7));
  CHECK(r->call({"FLUSHALL"}) == "+OK\r\n");
  CHECK(gate.redis_direct()->call({"DBSIZE"}) == resp_int(0));
}

TEST_CASE("After AUTH on an auth: none listener the user's restrictions apply", "[permissions]") {
  Gate gate;
  auto direct = gate.redis_direct();
  REQUIRE(direct->call({"SET", "other:x", "theirs"}) == "+OK\r\n");
  auto r = gate.redis_anonymous();
  CHECK(r->call({"SET", "app:x", "v"}) == "+OK\r\n");
  CHECK(r->call({"GET", "other:x"}) == resp_bulk("theirs"));

  CHECK(r->call({"AUTH", "reader", password_of("reader")}) == "+OK\r\n");
  CHECK(r->call({"ACL", "WHOAMI"}) == resp_bulk("reader"));
  CHECK(r->call({"GET", "app:x"}) == resp_bulk("v"));
  CHECK(r->call({"SET", "app:x", "w"}) == noperm_command("set"));
  CHECK(r->call({"DBSIZE"}) == noperm_command("dbsize"));

  CHECK(r->call({"AUTH", "app", password_of("app")}) == "+OK\r\n");
  CHECK(r->call({"SET", "app:x", "w"}) == "+OK\r\n");
  CHECK(r->call({"GET", "other:x"}) == kNoPermKeys);
  CHECK(r->call({"DEL", "other:x"}) == kNoPermKeys);
  CHECK(r->call({"FLUSHALL"}) == noperm_command("flushall"));

  // A failed login leaves the logged-in user as it was.
  CHECK(r->call({"AUTH", "admin", "wrong"}) ==
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  CHECK(r->call({"GET", "other:x"}) == kNoPermKeys);

  // HELLO … AUTH switches user too.
  auto h = gate.redis_anonymous();
  const std::string hello = h->call({"HELLO", "2", "AUTH", "reader", password_of("reader")});
  CHECK(hello.rfind("*14\r\n$6\r\nserver\r\n", 0) == 0);
  CHECK(h->call({"SET", "app:x", "z"}) == noperm_command("set"));

  CHECK(direct->call({"GET", "other:x"}) == resp_bulk("theirs"));
  CHECK(direct->call({"GET", "app:x"}) == resp_bulk("w"));
}

}  // namespace
}  // namespace cachegate
