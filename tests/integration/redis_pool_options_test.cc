// The Redis options of a cachegate pool, against real redis-servers: redis_auth and
// redis_auth_file (the password cachegate sends with AUTH on each new server connection, so that
// its own clients need none), a refused password, redis_db (the database cachegate's server
// connections SELECT, which clients see as their one database), allow_flush, a one-server pool
// (which needs no CROSSSLOT) and the config checks of these keys.
//
// Where a key landed is always asked of the servers themselves, with the password when they
// require one.

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/memcache_cluster.h"
#include "tests/support/process.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/temp_dir.h"

namespace cachegate {
namespace {

using testing::eventually;
using testing::printable;
using testing::RedisCluster;
using testing::RedisClusterOptions;
using testing::resp_array_of_bulks;
using testing::resp_bulk;
using testing::resp_command;
using testing::resp_int;
using testing::RespClient;
using testing::run_command;
using testing::TempDir;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const std::string kPassword = "gate-Pa55word-7319";
const std::string kWrongPassword = "not-the-Pa55word-4406";

constexpr int kTimeoutMs = 500;
// Room for a loaded two-core machine on top of the pool's timeout.
constexpr int kSlackMs = 1500;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// One RESP error line: "-<text>\r\n" and nothing after it.
bool is_one_error_line(const std::string& reply) {
  return starts_with(reply, "-") && reply.find("\r\n") == reply.size() - 2;
}

bool is_cachegate_error(const std::string& reply) {
  return starts_with(reply, "-ERR cachegate: ") && is_one_error_line(reply);
}

std::string value_of(const std::string& key) {
  return "value of " + key;
}

// Keys that spread over every server. The number comes first: with fnv1a, keys differing only in
// their last bytes hash to neighbouring points of the ring, so "key-0".."key-59" can all land on
// one server.
std::vector<std::string> numbered_keys(const std::string& name, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(std::to_string(i) + "-" + name);
  return out;
}

// Sets every key to value_of(key) through `c`, pipelined; every reply must be +OK.
void set_all(RespClient& c, const std::vector<std::string>& keys) {
  std::string writes;
  for (const auto& k : keys)
    writes += resp_command({"SET", k, value_of(k)});
  const auto replies = c.pipeline(writes, keys.size());
  REQUIRE(replies.size() == keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    INFO("SET " << keys[i]);
    CHECK(printable(replies[i]) == "+OK\\r\\n");
  }
}

// Connections straight to every server of `cluster`, logged in with `password` (when not empty)
// and in database `db`.
std::vector<std::unique_ptr<RespClient>> direct_logins(RedisCluster& cluster,
                                                       const std::string& password, int db = 0) {
  std::vector<std::unique_ptr<RespClient>> out;
  for (size_t s = 0; s < cluster.size(); ++s) {
    auto d = cluster.direct(s);
    if (!password.empty()) REQUIRE(d->call({"AUTH", password}) == "+OK\r\n");
    if (db != 0) REQUIRE(d->call({"SELECT", std::to_string(db)}) == "+OK\r\n");
    out.push_back(std::move(d));
  }
  return out;
}

// Checks, on the servers themselves, that each key is on exactly one server with its value and
// that every server got at least one of them.
void check_landed(std::vector<std::unique_ptr<RespClient>>& direct,
                  const std::vector<std::string>& keys) {
  std::vector<size_t> per_server(direct.size(), 0);
  for (const auto& k : keys) {
    INFO(k);
    size_t holders = 0;
    for (size_t s = 0; s < direct.size(); ++s) {
      const std::string r = direct[s]->call({"GET", k});
      if (r == "$-1\r\n") continue;
      CHECK(printable(r) == printable(resp_bulk(value_of(k))));
      ++holders;
      ++per_server[s];
    }
    CHECK(holders == 1);
  }
  for (size_t s = 0; s < direct.size(); ++s) {
    INFO("server " << s);
    CHECK(per_server[s] > 0);
  }
}

RedisClusterOptions password_protected(std::string pool_key) {
  RedisClusterOptions options;
  options.server_args = {"--requirepass", kPassword};
  options.pool_keys = {std::move(pool_key)};
  return options;
}

// What redis_auth and redis_auth_file must both give: clients without a password read and write
// across every server, starting with cachegate's very first request to each of them.
void check_pool_behind_password(RedisCluster& cluster) {
  // The servers really do want the password.
  REQUIRE(starts_with(cluster.direct(0)->call({"GET", "x"}), "-NOAUTH"));

  // The first requests cachegate ever sends, spread over every server: each one goes to a new
  // server connection whose AUTH must come first.
  const auto keys = numbered_keys("auth", 60);
  auto c = cluster.client();
  set_all(*c, keys);
  auto direct = direct_logins(cluster, kPassword);
  check_landed(direct, keys);

  for (const auto& k : keys) {
    INFO(k);
    CHECK(printable(c->call({"GET", k})) == printable(resp_bulk(value_of(k))));
  }
  std::vector<std::string> mget = {"MGET"};
  std::string want = "*" + std::to_string(keys.size() + 1) + "\r\n";
  for (const auto& k : keys) {
    mget.push_back(k);
    want += resp_bulk(value_of(k));
  }
  mget.push_back("auth-missing");
  want += "$-1\r\n";
  CHECK(printable(c->call(mget), 100000) == printable(want, 100000));

  // Fresh client connections (some on the other worker, whose server connections are new too).
  for (int i = 0; i < 4; ++i) {
    INFO("client " << i);
    auto other = cluster.client();
    CHECK(printable(other->call(mget), 100000) == printable(want, 100000));
    CHECK(other->call({"SET", "auth-new-" + std::to_string(i), "n"}) == "+OK\r\n");
  }
}

TEST_CASE("with redis_auth cachegate logs in to password-protected servers for its clients",
          "[redis][pool-options]") {
  RedisCluster cluster(password_protected("redis_auth: " + kPassword));
  check_pool_behind_password(cluster);
}

TEST_CASE("redis_auth_file logs in with the file's password without its trailing newline",
          "[redis][pool-options]") {
  TempDir dir;
  const std::string path = dir.write_file("redis.password", kPassword + "\n");
  RedisCluster cluster(password_protected("redis_auth_file: \"" + path + "\""));
  check_pool_behind_password(cluster);
}

TEST_CASE(
    "a refused redis_auth fails requests promptly, keeps the client, and is logged "
    "without the password",
    "[redis][pool-options]") {
  RedisClusterOptions options = password_protected("redis_auth: " + kWrongPassword);
  options.timeout_ms = kTimeoutMs;
  RedisCluster cluster(options);
  auto c = cluster.client();

  const auto keys = numbered_keys("refused", 30);
  for (const auto& k : keys) {
    for (const std::vector<std::string>& request :
         {std::vector<std::string>{"GET", k}, std::vector<std::string>{"SET", k, "v"}}) {
      INFO(request[0] << " " << k);
      const auto start = Clock::now();
      const std::string reply = c->call(request);
      const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
      INFO(printable(reply));
      CHECK(is_cachegate_error(reply));
      CHECK(ms < kTimeoutMs + kSlackMs);
    }
  }
  // A request for keys of every server fails as a whole, with one error line too.
  std::vector<std::string> mget = {"MGET"};
  mget.insert(mget.end(), keys.begin(), keys.end());
  const std::string mget_reply = c->call(mget);
  INFO(printable(mget_reply));
  CHECK(is_cachegate_error(mget_reply));

  // The client connection is still there and in step.
  CHECK(c->call({"PING"}) == "+PONG\r\n");
  CHECK(c->call({"ECHO", "still here"}) == resp_bulk("still here"));

  // Nothing was written, as the servers themselves say.
  auto direct = direct_logins(cluster, kPassword);
  for (size_t s = 0; s < cluster.size(); ++s)
    CHECK(direct[s]->call({"DBSIZE"}) == ":0\r\n");

  // Every server (each had keys in the MGET) is named in a line saying AUTH was refused.
  auto& proxy = cluster.proxy();
  auto log_names_refusal = [&](const std::string& address) {
    std::istringstream lines(proxy.log());
    for (std::string line; std::getline(lines, line);)
      if (contains(line, address) && contains(line, "AUTH refused")) return true;
    return false;
  };
  for (size_t s = 0; s < cluster.size(); ++s) {
    INFO("server " << cluster.server(s).address() << "; cachegate's log:\n" << proxy.log());
    CHECK(eventually([&] { return log_names_refusal(cluster.server(s).address()); },
                     milliseconds(3000)));
  }
  const std::string log = proxy.log();
  INFO(log);
  // A refused AUTH counts as a failed connect: after two in a row the server is backed off, so
  // the 60 requests above did not each open (and log) a connection of their own.
  size_t refusals = 0;
  for (size_t at = log.find("AUTH refused"); at != std::string::npos;
       at = log.find("AUTH refused", at + 1))
    ++refusals;
  CHECK(refusals < 30);
  CHECK_FALSE(contains(log, kWrongPassword));
  CHECK_FALSE(contains(log, kPassword));
}

TEST_CASE("with redis_db 3 data lands in database 3, which clients see as their one database",
          "[redis][pool-options]") {
  RedisClusterOptions options;
  options.pool_keys = {"redis_db: 3"};
  RedisCluster cluster(options);
  auto c = cluster.client();

  // cachegate's first request to each server follows its SELECT.
  const auto keys = numbered_keys("db", 30);
  set_all(*c, keys);
  auto in_db3 = direct_logins(cluster, "", 3);
  check_landed(in_db3, keys);
  for (size_t s = 0; s < cluster.size(); ++s) {
    INFO("server " << s);
    CHECK(cluster.direct(s)->call({"DBSIZE"}) == ":0\r\n");
  }
  CHECK(c->call({"DBSIZE"}) == resp_int(static_cast<long long>(keys.size())));

  // SELECT of the pool's one database, under either number, changes nothing.
  CHECK(c->call({"SELECT", "0"}) == "+OK\r\n");
  CHECK(c->call({"GET", keys[0]}) == resp_bulk(value_of(keys[0])));
  CHECK(c->call({"SELECT", "3"}) == "+OK\r\n");
  CHECK(c->call({"GET", keys[1]}) == resp_bulk(value_of(keys[1])));
  // Any other database is an error, and the connection goes on in the pool's database.
  const std::string other = c->call({"SELECT", "1"});
  INFO(printable(other));
  CHECK(starts_with(other, "-ERR "));
  CHECK(is_one_error_line(other));
  CHECK(c->call({"PING"}) == "+PONG\r\n");
  CHECK(c->call({"GET", keys[2]}) == resp_bulk(value_of(keys[2])));
  CHECK(c->call({"SET", "db-after-select", "x"}) == "+OK\r\n");
  CHECK(cluster.holders("db-after-select").empty());
  CHECK(cluster.holders("db-after-select", 3).size() == 1);

  // The servers' keyspace, summed: every key in db3 and none in db0.
  const std::string info = c->call({"INFO", "keyspace"});
  INFO(printable(info, 4000));
  REQUIRE(starts_with(info, "$"));
  CHECK(contains(info, "db3:keys=" + std::to_string(keys.size() + 1) + ","));
  CHECK_FALSE(contains(info, "db0:"));
}

TEST_CASE("with allow_flush false FLUSHALL and FLUSHDB are refused and the data stays",
          "[redis][pool-options]") {
  RedisClusterOptions options;
  options.allow_flush = false;
  RedisCluster cluster(options);
  auto c = cluster.client();
  const auto keys = numbered_keys("keep", 30);
  set_all(*c, keys);
  auto direct = direct_logins(cluster, "");
  check_landed(direct, keys);

  const std::vector<std::vector<std::string>> flushes = {
      {"FLUSHALL"}, {"FLUSHALL", "ASYNC"}, {"FLUSHDB"}, {"FLUSHDB", "ASYNC"}, {"flushall"}};
  for (const auto& request : flushes) {
    const std::string reply = c->call(request);
    INFO(request[0] << (request.size() > 1 ? " " + request[1] : "") << ": " << printable(reply));
    CHECK(starts_with(reply, "-ERR "));
    CHECK(is_one_error_line(reply));
    std::string name = request[0];
    for (auto& ch : name)
      ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    CHECK(contains(reply, name));
    CHECK(contains(reply, "allow_flush"));
  }
  CHECK(c->call({"PING"}) == "+PONG\r\n");
  CHECK(c->call({"DBSIZE"}) == resp_int(static_cast<long long>(keys.size())));
  CHECK(cluster.direct_dbsize() == static_cast<long long>(keys.size()));
  check_landed(direct, keys);
}

TEST_CASE("with allow_flush true FLUSHALL empties every server", "[redis][pool-options]") {
  RedisCluster cluster;  // allow_flush: true
  auto c = cluster.client();
  const auto keys = numbered_keys("gone", 30);
  set_all(*c, keys);
  auto direct = direct_logins(cluster, "");
  check_landed(direct, keys);

  CHECK(c->call({"FLUSHALL"}) == "+OK\r\n");
  for (size_t s = 0; s < cluster.size(); ++s) {
    INFO("server " << s);
    CHECK(direct[s]->call({"DBSIZE"}) == ":0\r\n");
  }
  CHECK(c->call({"DBSIZE"}) == ":0\r\n");
  CHECK(c->call({"GET", keys[0]}) == "$-1\r\n");
}

TEST_CASE("a one-server pool runs multi-key commands on unrelated keys without CROSSSLOT",
          "[redis][pool-options]") {
  RedisClusterOptions options;
  options.servers = 1;
  RedisCluster cluster(options);
  auto c = cluster.client();

  CHECK(c->call({"MSET", "alpha", "1", "beta", "2", "gamma", "3"}) == "+OK\r\n");
  CHECK(c->call({"MGET", "alpha", "beta", "gamma", "delta"}) ==
        "*4\r\n" + resp_bulk("1") + resp_bulk("2") + resp_bulk("3") + "$-1\r\n");
  CHECK(c->call({"RENAME", "alpha", "omega"}) == "+OK\r\n");
  CHECK(c->call({"GET", "omega"}) == resp_bulk("1"));
  CHECK(c->call({"EXISTS", "alpha"}) == ":0\r\n");
  CHECK(c->call({"SADD", "set-one", "a", "b"}) == ":2\r\n");
  CHECK(c->call({"SADD", "other-set", "b", "c"}) == ":2\r\n");
  CHECK(c->call({"SUNIONSTORE", "union-of-both", "set-one", "other-set"}) == ":3\r\n");
  CHECK(c->call({"SISMEMBER", "union-of-both", "c"}) == ":1\r\n");
  CHECK(c->call({"SMOVE", "set-one", "third", "a"}) == ":1\r\n");

  // The server agrees.
  auto d = cluster.direct(0);
  CHECK(d->call({"GET", "omega"}) == resp_bulk("1"));
  CHECK(d->call({"SCARD", "union-of-both"}) == ":3\r\n");
  CHECK(d->call({"SMEMBERS", "third"}) == resp_array_of_bulks({"a"}));
}

TEST_CASE("on three servers RENAME between keys of different servers is CROSSSLOT",
          "[redis][pool-options]") {
  RedisCluster cluster;
  const auto keys = cluster.keys_per_server(1, "cross-");
  const std::string& from = keys[0][0];
  const std::string& to = keys[1][0];
  auto c = cluster.client();
  REQUIRE(c->call({"SET", from, "v"}) == "+OK\r\n");

  const std::string crossslot = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
  CHECK(printable(c->call({"RENAME", from, to})) == printable(crossslot));
  // Nothing moved, and the connection goes on.
  CHECK(c->call({"GET", from}) == resp_bulk("v"));
  CHECK(c->call({"EXISTS", to}) == ":0\r\n");
  CHECK(cluster.holders(from) == std::vector<size_t>{0});
  CHECK(cluster.holders(to).empty());
  CHECK(c->call({"PING"}) == "+PONG\r\n");
}

// Runs --check-config on `yaml`, returning the exit code; `out` gets what cachegate printed.
int check_config(const TempDir& dir, const std::string& name, const std::string& yaml,
                 std::string& path, std::string& out) {
  path = dir.write_file(name, yaml);
  return run_command({CACHEGATE_BINARY, "--check-config", path}, &out);
}

// The "line:column: …" rest of each line of `out` that starts with "path:".
std::vector<std::string> located_lines(const std::string& out, const std::string& path) {
  std::vector<std::string> located;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (starts_with(line, path + ":")) located.push_back(line.substr(path.size() + 1));
  return located;
}

TEST_CASE("check-config rejects redis_auth on a memcached pool and with redis_auth_file",
          "[redis][pool-options][config]") {
  TempDir dir;
  const std::string password_file = dir.write_file("redis.password", kPassword + "\n");
  // Pool keys from line 9 on, each indented by four spaces.
  auto pool = [](const std::string& protocol, const std::vector<std::string>& extra) {
    std::string y = "listeners:\n";
    y += "  - {name: l, listen: \"127.0.0.1:22122\", pool: cache}\n";
    y += "pools:\n";
    y += "  cache:\n";
    y += "    protocol: " + protocol + "\n";
    y += "    distribution: ketama\n";
    y += "    hash: fnv1a_64\n";
    y += "    timeout: 400\n";
    for (const auto& line : extra)
      y += "    " + line + "\n";
    y += "    servers:\n";
    y += "      - 127.0.0.1:11211:1\n";
    return y;
  };
  std::string path, out;

  SECTION("redis_auth on a memcached pool") {
    // Without it the file is valid, so the key is the only problem.
    REQUIRE(check_config(dir, "plain.yaml", pool("memcached", {}), path, out) == 0);
    CHECK(check_config(dir, "auth.yaml", pool("memcached", {"redis_auth: " + kPassword}), path,
                       out) == 2);
    INFO(out);
    const auto located = located_lines(out, path);
    REQUIRE(located.size() == 1);
    CHECK(starts_with(located[0], "9:17: "));
    CHECK(contains(located[0], "redis_auth"));
    CHECK(contains(located[0], "only for redis pools"));
    CHECK_FALSE(contains(out, kPassword));
  }

  SECTION("redis_auth together with redis_auth_file") {
    REQUIRE(check_config(dir, "one.yaml", pool("redis", {"redis_auth_file: " + password_file}),
                         path, out) == 0);
    REQUIRE(check_config(dir, "other.yaml", pool("redis", {"redis_auth: " + kPassword}), path,
                         out) == 0);
    CHECK(check_config(
              dir, "both.yaml",
              pool("redis", {"redis_auth: " + kPassword, "redis_auth_file: " + password_file}),
              path, out) == 2);
    INFO(out);
    const auto located = located_lines(out, path);
    REQUIRE(located.size() == 1);
    CHECK(starts_with(located[0], "10:22: "));
    CHECK(contains(located[0], "redis_auth_file"));
    CHECK(contains(located[0], "not both"));
    CHECK_FALSE(contains(out, kPassword));
    // Given to -c, the same file starts no proxy.
    CHECK(run_command({CACHEGATE_BINARY, "-c", path}, &out) == 2);
  }
}

}  // namespace
}  // namespace cachegate
