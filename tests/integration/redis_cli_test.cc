// redis-cli, the tool operators reach for first, against cachegate in front of three real
// redis-servers: single commands, scripts on stdin, --scan over the whole pool, RESP3 (-3),
// --pipe mass insertion, -x, --bigkeys. Wherever the answer does not depend on how keys are
// spread, the expected output is what redis-cli prints against a redis-server directly.

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/temp_dir.h"

namespace cachegate {
namespace {

using testing::RedisCluster;
using testing::RedisServer;
using testing::run_command;
using testing::TempDir;

// redis-cli's output (stdout and stderr), with `args` after "-p port".
std::string cli(uint16_t port, std::vector<std::string> args, int* code = nullptr) {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  const int rc = run_command(argv, &out);
  if (code) *code = rc;
  return out;
}

// A shell pipeline, for feeding redis-cli from stdin.
std::string shell(const std::string& script, int* code = nullptr) {
  std::string out;
  const int rc = run_command({"sh", "-c", script}, &out);
  if (code) *code = rc;
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

std::string port_of(uint16_t port) {
  return std::to_string(port);
}

TEST_CASE("redis-cli: single commands through cachegate", "[redis][cli]") {
  // One shard (every command goes through as to redis-server) and three.
  testing::RedisClusterOptions options;
  options.servers = GENERATE(1, 3);
  RedisCluster cluster(options);
  const uint16_t p = cluster.port();
  CHECK(cli(p, {"PING"}) == "PONG\n");
  CHECK(cli(p, {"SET", "cli:k", "hello world"}) == "OK\n");
  CHECK(cli(p, {"GET", "cli:k"}) == "hello world\n");
  CHECK(cli(p, {"--no-raw", "GET", "cli:k"}) == "\"hello world\"\n");
  CHECK(cli(p, {"--no-raw", "GET", "cli:missing"}) == "(nil)\n");
  CHECK(cli(p, {"MSET", "cli:a", "1", "cli:b", "2", "cli:c", "3", "cli:d", "4"}) == "OK\n");
  CHECK(cli(p, {"--no-raw", "MGET", "cli:d", "cli:x", "cli:a", "cli:c", "cli:b"}) ==
        "1) \"4\"\n2) (nil)\n3) \"1\"\n4) \"3\"\n5) \"2\"\n");
  CHECK(cli(p, {"--no-raw", "DBSIZE"}) == "(integer) 5\n");
  CHECK(cli(p, {"--no-raw", "DEL", "cli:a", "cli:b", "cli:c", "cli:zz"}) == "(integer) 3\n");
  CHECK(cli(p, {"--no-raw", "INCRBY", "cli:d", "10"}) == "(integer) 14\n");
  CHECK(cli(p, {"--no-raw", "RPUSH", "cli:list", "x"}) == "(integer) 1\n");
  CHECK(cli(p, {"--no-raw", "BLPOP", "cli:list", "0"}) == "1) \"cli:list\"\n2) \"x\"\n");
  CHECK(cli(p, {"--no-raw", "SELECT", "2"}).find("(error) ERR DB index is out of range") == 0);
  CHECK(cli(p, {"-n", "0", "GET", "cli:d"}) == "14\n");
  CHECK(cli(p, {"INFO", "keyspace"}).find("db0:keys=2,") != std::string::npos);
  CHECK(cli(p, {"INFO"}).find("# Cachegate") == 0);

  // -x takes the last argument from stdin, byte for byte.
  CHECK(shell("printf 'line one\\nline two' | redis-cli -p " + port_of(p) + " -x SET cli:x") ==
        "OK\n");
  CHECK(cli(p, {"--no-raw", "GET", "cli:x"}) == "\"line one\\nline two\"\n");
}

TEST_CASE("redis-cli: a script on stdin prints what it prints against redis-server",
          "[redis][cli]") {
  // One shard (every command goes through as to redis-server) and three.
  testing::RedisClusterOptions options;
  options.servers = GENERATE(1, 3);
  RedisCluster cluster(options);
  RedisServer direct;
  const std::string script =
      "SET s:1 one\n"
      "SET s:2 two\n"
      "MGET s:1 s:2 s:3\n"
      "INCR s:n\n"
      "INCRBY s:n 41\n"
      "GET s:n\n"
      "HSET s:h a 1 b 2 c 3\n"
      "HGETALL s:h\n"
      "RPUSH s:l x y z\n"
      "LRANGE s:l 0 -1\n"
      "SADD s:set m\n"
      "SMEMBERS s:set\n"
      "ZADD s:z 1 a 2 b 3.5 c\n"
      "ZRANGE s:z 0 -1 WITHSCORES\n"
      "EXISTS s:1 s:2 s:3 s:h\n"
      "TYPE s:z\n"
      "LPUSH s:h x\n"
      "GET\n"
      "NOSUCHCOMMAND a b\n"
      "SET \"s:quoted key\" \"with \\\"quotes\\\" and spaces\"\n"
      "GET \"s:quoted key\"\n"
      "EXPIREAT s:1 4102444800\n"
      "EXPIRETIME s:1\n"
      "DEL s:1 s:2 s:3 s:n s:h s:l s:set s:z \"s:quoted key\"\n"
      "DBSIZE\n"
      "PING\n"
      "ECHO done\n";
  TempDir dir;
  const std::string file = dir.write_file("script.txt", script);
  for (const char* mode : {"--no-raw", "--raw"}) {
    INFO(mode);
    const std::string via =
        shell("redis-cli -p " + port_of(cluster.port()) + " " + mode + " < " + file);
    const std::string want =
        shell("redis-cli -p " + port_of(direct.port()) + " " + mode + " < " + file);
    CHECK(via == want);
    CHECK(via.find("PONG") != std::string::npos);
  }
}

TEST_CASE("redis-cli --scan lists every key of every server once", "[redis][cli][scan]") {
  RedisCluster cluster;
  auto c = cluster.client();
  std::string writes;
  std::set<std::string> want;
  for (int i = 0; i < 300; ++i) {
    const std::string key = "scan:" + std::to_string(i);
    want.insert(key);
    writes += testing::resp_command({"SET", key, "v"});
  }
  writes += testing::resp_command({"SET", "other", "v"});
  REQUIRE(c->pipeline(writes, 301).size() == 301);
  // Every server holds some of them, so the scan must cross servers.
  for (size_t s = 0; s < cluster.size(); ++s)
    CHECK(cluster.direct(s)->call({"DBSIZE"}) != ":0\r\n");

  // redis-cli 7.0 scans with its default COUNT (10), so every server takes several steps.
  auto lines = lines_of(cli(cluster.port(), {"--scan", "--pattern", "scan:*"}));
  CHECK(std::set<std::string>(lines.begin(), lines.end()) == want);
  CHECK(lines.size() >= want.size());
  CHECK(lines.size() < want.size() + want.size() / 10);
  auto all = lines_of(cli(cluster.port(), {"--scan"}));
  CHECK(all.size() == 301);
}

TEST_CASE("redis-cli -3 speaks RESP3 through cachegate as it does to redis-server",
          "[redis][cli][resp3]") {
  RedisCluster cluster;
  RedisServer direct;
  const std::vector<std::vector<std::string>> commands = {
      {"HSET", "r3:h", "f", "1.5", "g", "2"},
      {"HGETALL", "r3:h"},
      {"SADD", "r3:s", "only"},
      {"SMEMBERS", "r3:s"},
      {"ZADD", "r3:z", "1.5", "m"},
      {"ZSCORE", "r3:z", "m"},
      {"ZRANGE", "r3:z", "0", "-1", "WITHSCORES"},
      {"GET", "r3:missing"},
      {"SET", "r3:n", "7"},
      {"INCR", "r3:n"},
      {"MGET", "r3:n", "r3:missing"},
      {"HRANDFIELD", "r3:missing"},
      {"LPUSH", "r3:h", "x"},
  };
  for (const auto& command : commands) {
    std::vector<std::string> args = {"-3", "--no-raw"};
    args.insert(args.end(), command.begin(), command.end());
    INFO(command[0]);
    CHECK(cli(cluster.port(), args) == cli(direct.port(), args));
  }
  CHECK(cli(cluster.port(), {"-3", "--no-raw", "HGETALL", "r3:h"}) ==
        "1# \"f\" => \"1.5\"\n2# \"g\" => \"2\"\n");
  CHECK(cli(cluster.port(), {"-3", "--no-raw", "ZSCORE", "r3:z", "m"}) == "(double) 1.5\n");
  auto hello = cli(cluster.port(), {"-3", "--no-raw", "HELLO", "3"});
  CHECK(hello.find("\"proto\" => (integer) 3") != std::string::npos);
}

TEST_CASE("redis-cli --pipe mass insertion through cachegate", "[redis][cli][pipe]") {
  RedisCluster cluster;
  TempDir dir;
  std::string data;
  for (int i = 0; i < 5000; ++i)
    data += testing::resp_command({"SET", "mass:" + std::to_string(i), std::string(20, 'v')});
  for (int i = 0; i < 1000; ++i)
    data += testing::resp_command({"INCR", "mass:counter"});
  const std::string file = dir.write_file("mass.resp", data);
  const std::string out = shell("redis-cli -p " + port_of(cluster.port()) + " --pipe < " + file);
  CHECK(out.find("errors: 0, replies: 6000") != std::string::npos);
  CHECK(cluster.direct_dbsize() == 5001);
  CHECK(cli(cluster.port(), {"GET", "mass:counter"}) == "1000\n");
}

TEST_CASE("redis-cli --bigkeys walks the pool", "[redis][cli][scan]") {
  RedisCluster cluster;
  auto c = cluster.client();
  REQUIRE(c->call({"SET", "big:string", std::string(5000, 'x')}) == "+OK\r\n");
  REQUIRE(c->call({"SET", "big:small", "x"}) == "+OK\r\n");
  REQUIRE(c->call({"RPUSH", "big:list", "a", "b", "c", "d"}) == ":4\r\n");
  REQUIRE(c->call({"HSET", "big:hash", "a", "1", "b", "2"}) == ":2\r\n");
  REQUIRE(c->call({"ZADD", "big:zset", "1", "a"}) == ":1\r\n");
  const std::string out = cli(cluster.port(), {"--bigkeys"});
  CHECK(out.find("Biggest string found '\"big:string\"' has 5000 bytes") != std::string::npos);
  CHECK(out.find("Biggest   list found '\"big:list\"' has 4 items") != std::string::npos);
  CHECK(out.find("Biggest   hash found '\"big:hash\"' has 2 fields") != std::string::npos);
  CHECK(out.find("2 strings with 5001 bytes") != std::string::npos);
  CHECK(out.find("1 zsets with 1 members") != std::string::npos);
}

}  // namespace
}  // namespace cachegate
