// Redis transactions through cachegate: MULTI/EXEC/DISCARD/WATCH/UNWATCH on a connection of the
// client's own to the one server the keys hash to, CROSSSLOT and EXECABORT as Redis Cluster
// answers them, WATCH conflicts, disconnects mid-transaction, the bound on dedicated
// connections, and namespaces. hiredis and redis-cli against real redis-servers; outcomes are
// checked on the servers themselves.

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/hiredis_client.h"
#include "tests/support/logins.h"
#include "tests/support/process.h"
#include "tests/support/redis_cluster.h"

namespace cachegate {
namespace {

using testing::Hiredis;
using testing::RedisCluster;

std::string direct_get(RedisCluster& cluster, const std::string& key) {
  return cluster.direct(cluster.holder(key))->call({"GET", key});
}

TEST_CASE("hiredis: MULTI … EXEC runs on the keys' server, atomically", "[redis][transactions]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(2, "tx-");
  Hiredis c(cluster.port());
  const std::string a = keys[0][0], b = keys[0][1];
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"SET", a, "1"}) == "status:QUEUED");
  CHECK(c.call({"INCRBY", a, "41"}) == "status:QUEUED");
  CHECK(c.call({"SET", b, "2"}) == "status:QUEUED");
  CHECK(c.call({"GET", a}) == "status:QUEUED");
  CHECK(c.call({"EXEC"}) == "[status:OK, int:42, status:OK, str:42]");
  CHECK(direct_get(cluster, a) == "$2\r\n42\r\n");
  CHECK(direct_get(cluster, b) == "$1\r\n2\r\n");
  // The connection goes on as an ordinary one.
  CHECK(c.call({"SET", keys[1][0], "after"}) == "status:OK");
  CHECK(c.call({"GET", keys[1][0]}) == "str:after");
}

TEST_CASE("hiredis: a key on another server inside MULTI gets CROSSSLOT and EXEC aborts",
          "[redis][transactions]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "cross-");
  Hiredis c(cluster.port());
  for (const auto& group : keys)
    REQUIRE(c.call({"SET", group[0], "probe"}) == "status:OK");
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"SET", keys[0][0], "changed"}) == "status:QUEUED");
  CHECK(c.call({"SET", keys[1][0], "changed"}) ==
        "err:CROSSSLOT Keys in request don't hash to the same slot");
  CHECK(c.call({"EXEC"}) == "err:EXECABORT Transaction discarded because of previous errors.");
  // Nothing ran, on either server.
  CHECK(direct_get(cluster, keys[0][0]) == "$5\r\nprobe\r\n");
  CHECK(direct_get(cluster, keys[1][0]) == "$5\r\nprobe\r\n");

  SECTION("a command that reaches every server, or an unknown one, aborts too") {
    CHECK(c.call({"MULTI"}) == "status:OK");
    CHECK(c.call({"SET", keys[0][0], "changed"}) == "status:QUEUED");
    CHECK(c.call({"DBSIZE"}).rfind("err:ERR command 'dbsize' reaches every server", 0) == 0);
    CHECK(c.call({"NOSUCHCOMMAND"}).rfind("err:ERR unknown command", 0) == 0);
    CHECK(c.call({"EXEC"}) == "err:EXECABORT Transaction discarded because of previous errors.");
    CHECK(direct_get(cluster, keys[0][0]) == "$5\r\nprobe\r\n");
  }
}

TEST_CASE("hiredis: WATCH sees a change made by another client, and EXEC returns nil",
          "[redis][transactions]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "watch-");
  const std::string k = keys[0][0];
  Hiredis c(cluster.port()), other(cluster.port());
  REQUIRE(c.call({"SET", k, "probe"}) == "status:OK");

  CHECK(c.call({"WATCH", k}) == "status:OK");
  CHECK(c.call({"GET", k}) == "str:probe");
  CHECK(other.call({"SET", k, "theirs"}) == "status:OK");
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"SET", k, "mine"}) == "status:QUEUED");
  CHECK(c.call({"EXEC"}) == "nil");
  CHECK(direct_get(cluster, k) == "$6\r\ntheirs\r\n");

  // Without a change in between, it runs.
  CHECK(c.call({"WATCH", k}) == "status:OK");
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"SET", k, "mine"}) == "status:QUEUED");
  CHECK(c.call({"EXEC"}) == "[status:OK]");
  CHECK(direct_get(cluster, k) == "$4\r\nmine\r\n");

  // WATCH of keys on two servers is refused; UNWATCH lets the connection go.
  CHECK(c.call({"WATCH", keys[0][0], keys[1][0]}) ==
        "err:CROSSSLOT Keys in request don't hash to the same slot");
  CHECK(c.call({"WATCH", k}) == "status:OK");
  CHECK(c.call({"UNWATCH"}) == "status:OK");
  CHECK(other.call({"SET", k, "theirs-again"}) == "status:OK");
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"SET", k, "mine-again"}) == "status:QUEUED");
  CHECK(c.call({"EXEC"}) == "[status:OK]");
}

TEST_CASE("Transaction errors are Redis's own", "[redis][transactions]") {
  RedisCluster cluster(testing::redis_shards(2));
  Hiredis c(cluster.port());
  CHECK(c.call({"EXEC"}) == "err:ERR EXEC without MULTI");
  CHECK(c.call({"DISCARD"}) == "err:ERR DISCARD without MULTI");
  CHECK(c.call({"UNWATCH"}) == "status:OK");
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"MULTI"}) == "err:ERR MULTI calls can not be nested");
  CHECK(c.call({"WATCH", "k"}) == "err:ERR WATCH inside MULTI is not allowed");
  CHECK(c.call({"PING"}) == "status:QUEUED");
  CHECK(c.call({"SET", "k", "v"}) == "status:QUEUED");
  CHECK(c.call({"DISCARD"}) == "status:OK");
  CHECK(c.call({"GET", "k"}) == "nil");
  // An empty transaction.
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"EXEC"}) == "[]");
  // A server-side error inside EXEC's result is the server's.
  CHECK(c.call({"SET", "text", "abc"}) == "status:OK");
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"INCR", "text"}) == "status:QUEUED");
  CHECK(c.call({"EXEC"}) == "[err:ERR value is not an integer or out of range]");
}

TEST_CASE(
    "A client that disconnects mid-transaction releases its server connection at once and "
    "nothing it queued runs",
    "[redis][transactions]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "gone-");
  const std::string k = keys[0][0];
  REQUIRE(Hiredis(cluster.port()).call({"SET", k, "probe"}) == "status:OK");
  const int before = cluster.connected_clients(0);
  {
    Hiredis c(cluster.port());
    CHECK(c.call({"MULTI"}) == "status:OK");
    CHECK(c.call({"SET", k, "never"}) == "status:QUEUED");
    CHECK(cluster.connected_clients(0) == before + 1);
  }
  // The dedicated connection closes with the client (the probe connection is the same count).
  CHECK(cluster.await_connected_clients(0, before));
  CHECK(direct_get(cluster, k) == "$5\r\nprobe\r\n");

  SECTION("the same while watching") {
    {
      Hiredis c(cluster.port());
      CHECK(c.call({"WATCH", k}) == "status:OK");
      CHECK(cluster.connected_clients(0) == before + 1);
    }
    CHECK(cluster.await_connected_clients(0, before));
  }
}

TEST_CASE("Dedicated connections are bounded per server and reused once a transaction ends",
          "[redis][transactions]") {
  RedisCluster cluster(testing::redis_shards(2, {"dedicated_connections: 1"}));
  const auto keys = cluster.keys_per_server(1, "bound-");
  const std::string k = keys[0][0];
  Hiredis first(cluster.port()), second(cluster.port());
  CHECK(first.call({"MULTI"}) == "status:OK");
  CHECK(first.call({"INCR", k}) == "status:QUEUED");
  CHECK(second.call({"MULTI"}) == "status:OK");
  const std::string refused = second.call({"INCR", k});
  CHECK(refused.rfind("err:ERR cachegate: no connection free for a transaction on server '", 0) ==
        0);
  CHECK(refused.find("(pools.red.dedicated_connections)") != std::string::npos);
  CHECK(second.call({"EXEC"}) == "err:EXECABORT Transaction discarded because of previous errors.");
  CHECK(first.call({"EXEC"}) == "[int:1]");
  // Handed back clean: the next transaction takes the same connection.
  const int open = cluster.connected_clients(0);
  CHECK(second.call({"MULTI"}) == "status:OK");
  CHECK(second.call({"INCR", k}) == "status:QUEUED");
  CHECK(second.call({"EXEC"}) == "[int:2]");
  CHECK(cluster.connected_clients(0) == open);
}

TEST_CASE("redis-cli: a transaction typed at the prompt, and a user's namespace inside it",
          "[redis][transactions]") {
  testing::RedisServer server;
  testing::CachegateServer proxy(testing::tenant_redis_config(server.port(), {{"t", "t:"}}));
  std::string out;
  const int rc = testing::run_command(
      {"sh", "-c",
       "printf 'MULTI\\nSET k 1\\nINCR k\\nEXEC\\n' | redis-cli -h 127.0.0.1 -p " +
           std::to_string(proxy.port()) + " --user t --pass pw --no-auth-warning"},
      &out);
  CHECK(rc == 0);
  CHECK(out == "OK\nQUEUED\nQUEUED\nOK\n2\n");
  CHECK(server.client()->call({"GET", "t:k"}) == "$1\r\n2\r\n");
  CHECK(server.client()->call({"EXISTS", "k"}) == ":0\r\n");
}

}  // namespace
}  // namespace cachegate
