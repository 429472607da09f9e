// The protocols' part of routing (routing/reply_judges.h): how replies are classed, the warm-up
// fill built from a warm hit, and writes with their expiry capped (ttl.max, failover_ttl).

#include "routing/reply_judges.h"

#include <catch2/catch.hpp>
#include <ctime>
#include <string>
#include <vector>

#include "protocol/resp.h"

namespace cachegate::routing {
namespace {

using config::RouteOp;

std::string command(const std::vector<std::string_view>& args) {
  std::string out;
  protocol::resp::append_command(out, args.data(), args.size());
  return out;
}

std::string capped_mc(std::string_view request, uint32_t max) {
  std::string out;
  return MemcacheJudge().cap_ttl(request, max, out) ? out : "(unchanged)";
}

std::string capped_redis(const std::vector<std::string_view>& args, uint32_t max) {
  std::string out;
  return RedisJudge().cap_ttl(command(args), max, out) ? out : "(unchanged)";
}

TEST_CASE("judges: memcached replies by class", "[routes]") {
  const MemcacheJudge j;
  CHECK(j.classify("VALUE k 0 1\r\nv\r\nEND\r\n", false, RouteOp::kRead) == ReplyClass::kOk);
  CHECK(j.classify("END\r\n", false, RouteOp::kRead) == ReplyClass::kMiss);
  CHECK(j.classify("EN\r\n", false, RouteOp::kRead) == ReplyClass::kMiss);
  CHECK(j.classify("MN\r\n", false, RouteOp::kRead) == ReplyClass::kMiss);
  CHECK(j.classify("MN\r\n", false, RouteOp::kWrite) == ReplyClass::kOk);
  // A quiet request's reply without its MN: nothing was said.
  CHECK(j.classify("", false, RouteOp::kRead) == ReplyClass::kMiss);
  CHECK(j.classify("", false, RouteOp::kWrite) == ReplyClass::kOk);
  CHECK(j.classify("STORED\r\n", false, RouteOp::kWrite) == ReplyClass::kOk);
  CHECK(j.classify("HD\r\n", false, RouteOp::kWrite) == ReplyClass::kOk);
  CHECK(j.classify("NOT_STORED\r\n", false, RouteOp::kWrite) == ReplyClass::kRefused);
  CHECK(j.classify("NOT_FOUND\r\n", false, RouteOp::kDelete) == ReplyClass::kRefused);
  CHECK(j.classify("NS\r\n", false, RouteOp::kWrite) == ReplyClass::kRefused);
  CHECK(j.classify("SERVER_ERROR out of memory\r\n", true, RouteOp::kWrite) == ReplyClass::kError);
}

TEST_CASE("judges: Redis replies by class", "[routes]") {
  const RedisJudge j;
  CHECK(j.classify("$1\r\nv\r\n", false, RouteOp::kRead) == ReplyClass::kOk);
  CHECK(j.classify("$-1\r\n", false, RouteOp::kRead) == ReplyClass::kMiss);
  CHECK(j.classify("_\r\n", false, RouteOp::kRead) == ReplyClass::kMiss);
  // One key of an MGET sent alone through a rule.
  CHECK(j.classify("*1\r\n$-1\r\n", false, RouteOp::kRead) == ReplyClass::kMiss);
  CHECK(j.classify("*1\r\n$1\r\nv\r\n", false, RouteOp::kRead) == ReplyClass::kOk);
  CHECK(j.classify("$-1\r\n", false, RouteOp::kWrite) == ReplyClass::kRefused);  // SET NX
  CHECK(j.classify("+OK\r\n", false, RouteOp::kWrite) == ReplyClass::kOk);
  CHECK(j.classify("-ERR x\r\n", true, RouteOp::kWrite) == ReplyClass::kError);
}

TEST_CASE("judges: the warm-up fill", "[routes]") {
  const MemcacheJudge mc;
  std::string out;
  REQUIRE(mc.ttl_request("get k\r\n", "k", out));
  CHECK(out == "mg k t\r\n");
  CHECK_FALSE(mc.ttl_request("mg k v\r\n", "k", out));
  REQUIRE(mc.fill("get k\r\n", "k", "VALUE k 3 2 99\r\nab\r\nEND\r\n", "HD t-1\r\n", out));
  CHECK(out == "add k 3 0 2\r\nab\r\n");
  CHECK_FALSE(mc.fill("get k\r\n", "k", "VALUE k 3 2\r\nab\r\nEND\r\n", "EN\r\n", out));

  const RedisJudge r;
  REQUIRE(r.ttl_request(command({"get", "k"}), "k", out));
  CHECK(out == command({"PTTL", "k"}));
  CHECK_FALSE(r.ttl_request(command({"HGET", "k", "f"}), "k", out));
  REQUIRE(r.fill(command({"GET", "k"}), "k", "$2\r\nab\r\n", ":1500\r\n", out));
  CHECK(out == command({"SET", "k", "ab", "PX", "1500", "NX"}));
  REQUIRE(r.fill(command({"GET", "k"}), "k", "$2\r\nab\r\n", ":-1\r\n", out));
  CHECK(out == command({"SET", "k", "ab", "NX"}));
  CHECK_FALSE(r.fill(command({"GET", "k"}), "k", "$2\r\nab\r\n", ":-2\r\n", out));
  REQUIRE(r.ttl_request(command({"MGET", "k"}), "k", out));
  CHECK(out == command({"PTTL", "k"}));
  REQUIRE(r.fill(command({"MGET", "k"}), "k", "*1\r\n$2\r\nab\r\n", ":-1\r\n", out));
  CHECK(out == command({"SET", "k", "ab", "NX"}));
}

TEST_CASE("judges: memcached expiries capped", "[routes]") {
  CHECK(capped_mc("set k 1 0 2\r\nab\r\n", 60) == "set k 1 60 2\r\nab\r\n");
  CHECK(capped_mc("set k 1 3600 2 noreply\r\nab\r\n", 60) == "set k 1 60 2 noreply\r\nab\r\n");
  CHECK(capped_mc("set k 1 30 2\r\nab\r\n", 60) == "(unchanged)");
  CHECK(capped_mc("set k 1 -1 2\r\nab\r\n", 60) == "(unchanged)");
  CHECK(capped_mc("cas  k  1  0  2  7\r\nab\r\n", 60) == "cas  k  1  60  2  7\r\nab\r\n");
  CHECK(capped_mc("touch k 0\r\n", 60) == "touch k 60\r\n");
  CHECK(capped_mc("gat 0 a b\r\n", 60) == "gat 60 a b\r\n");
  CHECK(capped_mc("ms k 2 T0 F5\r\nab\r\n", 60) == "ms k 2 T60 F5\r\nab\r\n");
  CHECK(capped_mc("ms k 2 F5\r\nab\r\n", 60) == "ms k 2 F5 T60\r\nab\r\n");
  CHECK(capped_mc("mg k v T9999\r\n", 60) == "mg k v T60\r\n");
  CHECK(capped_mc("mg k v\r\n", 60) == "(unchanged)");
  CHECK(capped_mc("mg k v N0 T900\r\n", 60) == "mg k v N60 T60\r\n");
  CHECK(capped_mc("ms k 2 N0\r\nab\r\n", 60) == "ms k 2 N60 T60\r\nab\r\n");
  CHECK(capped_mc("delete k\r\n", 60) == "(unchanged)");
  // A Unix time: further away than the cap becomes the cap (relative); closer stays.
  const long long now = static_cast<long long>(std::time(nullptr));
  CHECK(capped_mc("set k 0 " + std::to_string(now + 7200) + " 1\r\na\r\n", 60) ==
        "set k 0 60 1\r\na\r\n");
  CHECK(capped_mc("set k 0 " + std::to_string(now + 30) + " 1\r\na\r\n", 60) == "(unchanged)");
}

TEST_CASE("judges: Redis expiries capped", "[routes]") {
  CHECK(capped_redis({"SET", "k", "v"}, 60) == command({"SET", "k", "v", "EX", "60"}));
  CHECK(capped_redis({"SET", "k", "v", "NX", "EX", "3600"}, 60) ==
        command({"SET", "k", "v", "NX", "EX", "60"}));
  CHECK(capped_redis({"set", "k", "v", "px", "90000"}, 60) ==
        command({"set", "k", "v", "px", "60000"}));
  CHECK(capped_redis({"SET", "k", "v", "EX", "10"}, 60) == "(unchanged)");
  // KEEPTTL could keep no expiry at all (a key written some other way).
  CHECK(capped_redis({"SET", "k", "v", "KEEPTTL"}, 60) == command({"SET", "k", "v", "EX", "60"}));
  CHECK(capped_redis({"SETEX", "k", "100", "v"}, 60) == command({"SETEX", "k", "60", "v"}));
  CHECK(capped_redis({"PSETEX", "k", "100000", "v"}, 60) == command({"PSETEX", "k", "60000", "v"}));
  CHECK(capped_redis({"EXPIRE", "k", "61"}, 60) == command({"EXPIRE", "k", "60"}));
  CHECK(capped_redis({"GETEX", "k", "PERSIST"}, 60) == command({"GETEX", "k", "EX", "60"}));
  CHECK(capped_redis({"GETEX", "k"}, 60) == "(unchanged)");
  CHECK(capped_redis({"PERSIST", "k"}, 60) == command({"EXPIRE", "k", "60"}));
  CHECK(capped_redis({"HSET", "k", "f", "v"}, 60) == "(unchanged)");
  const long long now = static_cast<long long>(std::time(nullptr));
  const std::string far = std::to_string(now + 7200);
  const std::string capped_at = capped_redis({"EXPIREAT", "k", far}, 60);
  CHECK(capped_at.find(std::to_string(now + 60).substr(0, 8)) != std::string::npos);
  CHECK(capped_at != command({"EXPIREAT", "k", far}));
}

}  // namespace
}  // namespace cachegate::routing
