// Redis blocking commands through cachegate: each one waits on the server of its keys, on a
// connection of the client's own, for as long as the client asked; a client that leaves mid-block
// lets that connection go at once; the connections are bounded. hiredis, redis-cli and raw RESP
// against real redis-servers; outcomes are checked on the servers themselves.

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
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
using testing::resp_bulk;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Until the servers count `blocked` clients blocked between them (so that a push made now wakes
// a client rather than comes before it).
bool await_blocked(RedisCluster& cluster, int blocked) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    int total = 0;
    for (size_t s = 0; s < cluster.size(); ++s) {
      const std::string info = cluster.direct(s)->call({"INFO", "clients"});
      const size_t at = info.find("blocked_clients:");
      if (at != std::string::npos) total += std::atoi(info.c_str() + at + 16);
    }
    if (total == blocked) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_CASE("hiredis: BLPOP waits on its key's server and a push from another client wakes it",
          "[redis][blocking]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "bl-");
  for (size_t s = 0; s < 2; ++s) {
    const std::string k = keys[s][0];
    INFO("key " << k << " on server " << s);
    Hiredis waiter(cluster.port()), pusher(cluster.port());
    waiter.append({"BLPOP", k, "5"});
    waiter.append({"GET", k});  // pipelined behind the block: answered after it
    REQUIRE(redisBufferWrite(waiter.context(), nullptr) == REDIS_OK);
    REQUIRE(await_blocked(cluster, 1));
    // Other clients, and the shared connections, are not held up meanwhile.
    CHECK(pusher.call({"SET", keys[1 - s][0] + "-other", "v"}) == "status:OK");
    CHECK(pusher.call({"PING"}) == "status:PONG");
    CHECK(pusher.call({"RPUSH", k, "x", "y"}) == "int:2");
    CHECK(testing::describe(waiter.get_reply().get()) == "[str:" + k + ", str:x]");
    CHECK(testing::describe(waiter.get_reply().get()) ==
          "err:WRONGTYPE Operation against a key holding the wrong kind of value");
    CHECK(cluster.direct(s)->call({"LRANGE", k, "0", "-1"}) == "*1\r\n" + resp_bulk("y"));
    CHECK(await_blocked(cluster, 0));
  }
}

TEST_CASE("The client's own timeout is honoured, beyond the pool's request timeout",
          "[redis][blocking]") {
  // The pool answers other requests within 200 ms; a BLPOP asks for longer.
  RedisCluster cluster(testing::redis_shards(2, {}, 200));
  Hiredis c(cluster.port());
  auto start = Clock::now();
  CHECK(c.call({"BLPOP", "never", "0.8"}) == "nil");
  const double waited = seconds_since(start);
  CHECK(waited >= 0.75);
  CHECK(waited < 4.0);

  // 0 blocks for ever: well past the pool's timeout, a push still wakes it.
  Hiredis pusher(cluster.port());
  c.append({"BRPOP", "later", "0"});
  REQUIRE(redisBufferWrite(c.context(), nullptr) == REDIS_OK);
  REQUIRE(await_blocked(cluster, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK(pusher.call({"LPUSH", "later", "v"}) == "int:1");
  CHECK(testing::describe(c.get_reply().get()) == "[str:later, str:v]");

  // XREAD's BLOCK is in milliseconds.
  start = Clock::now();
  CHECK(c.call({"XREAD", "BLOCK", "500", "STREAMS", "stream", "$"}) == "nil");
  CHECK(seconds_since(start) >= 0.45);
  // A timeout the server refuses is its error, at once.
  CHECK(c.call({"BLPOP", "k", "-1"}) == "err:ERR timeout is negative");
  CHECK(c.call({"BLPOP", "k", "soon"}) == "err:ERR timeout is not a float or out of range");
}

TEST_CASE("hiredis: every blocking command is woken on its keys' server", "[redis][blocking]") {
  RedisCluster cluster(testing::redis_shards(2));
  Hiredis c(cluster.port()), other(cluster.port());
  // Keys of one command share a hash tag, so they are on one server.
  struct Case {
    std::vector<std::string> command;
    std::vector<std::string> wake;
    std::string reply;
  };
  const std::vector<Case> cases = {
      {{"BRPOP", "{a}l1", "{a}l2", "5"}, {"RPUSH", "{a}l2", "x"}, "[str:{a}l2, str:x]"},
      {{"BLMOVE", "{b}src", "{b}dst", "LEFT", "RIGHT", "5"}, {"RPUSH", "{b}src", "m"}, "str:m"},
      {{"BRPOPLPUSH", "{c}src", "{c}dst", "5"}, {"RPUSH", "{c}src", "n"}, "str:n"},
      {{"BZPOPMIN", "{d}z", "5"}, {"ZADD", "{d}z", "1", "one"}, "[str:{d}z, str:one, str:1]"},
      {{"BZPOPMAX", "{e}z", "5"}, {"ZADD", "{e}z", "2", "two"}, "[str:{e}z, str:two, str:2]"},
      {{"BLMPOP", "5", "2", "{f}a", "{f}b", "LEFT"}, {"RPUSH", "{f}b", "p"}, "[str:{f}b, [str:p]]"},
      {{"BZMPOP", "5", "1", "{g}z", "MIN"},
       {"ZADD", "{g}z", "3", "three"},
       "[str:{g}z, [[str:three, str:3]]]"},
      {{"XREAD", "BLOCK", "5000", "STREAMS", "{h}s", "$"},
       {"XADD", "{h}s", "1-1", "f", "v"},
       "[[str:{h}s, [[str:1-1, [str:f, str:v]]]]]"},
  };
  for (const auto& k : cases) {
    INFO(k.command[0]);
    c.append(k.command);
    REQUIRE(redisBufferWrite(c.context(), nullptr) == REDIS_OK);
    REQUIRE(await_blocked(cluster, 1));
    other.call(k.wake);
    CHECK(testing::describe(c.get_reply().get()) == k.reply);
  }
  // XREADGROUP … BLOCK, with its group made first.
  CHECK(other.call({"XGROUP", "CREATE", "{i}s", "g", "$", "MKSTREAM"}) == "status:OK");
  c.append({"XREADGROUP", "GROUP", "g", "c1", "BLOCK", "5000", "STREAMS", "{i}s", ">"});
  REQUIRE(redisBufferWrite(c.context(), nullptr) == REDIS_OK);
  REQUIRE(await_blocked(cluster, 1));
  CHECK(other.call({"XADD", "{i}s", "2-1", "k", "v"}) == "str:2-1");
  CHECK(testing::describe(c.get_reply().get()) == "[[str:{i}s, [[str:2-1, [str:k, str:v]]]]]");
  // Without BLOCK, XREAD is an ordinary read.
  CHECK(c.call({"XREAD", "STREAMS", "{h}s", "0"}) == "[[str:{h}s, [[str:1-1, [str:f, str:v]]]]]");
}

TEST_CASE("Keys of a blocking command on two servers get CROSSSLOT", "[redis][blocking]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "cross-");
  Hiredis c(cluster.port());
  CHECK(c.call({"BLPOP", keys[0][0], keys[1][0], "1"}) ==
        "err:CROSSSLOT Keys in request don't hash to the same slot");
  CHECK(c.call({"PING"}) == "status:PONG");
}

TEST_CASE("Pipelined writes before a blocking command reach the server before it",
          "[redis][blocking]") {
  // The blocking command goes on another server connection than the writes before it: it must
  // not overtake them, or it would block on a list they were about to fill.
  RedisCluster cluster(testing::redis_shards(2));
  Hiredis c(cluster.port());
  std::vector<std::string> want;
  for (int i = 0; i < 200; ++i) {
    const std::string k = "pipe:" + std::to_string(i);
    c.append({"RPUSH", k, "v" + std::to_string(i)});
    want.push_back("int:1");
    c.append({"BLPOP", k, "0"});
    want.push_back("[str:" + k + ", str:v" + std::to_string(i) + "]");
    c.append({"EXISTS", k});
    want.push_back("int:0");
  }
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("reply " << i);
    auto reply = c.get_reply();
    REQUIRE(reply);
    CHECK(testing::describe(reply.get()) == want[i]);
  }
}

TEST_CASE(
    "A client that disconnects mid-block lets its server connection go at once, and pops nothing",
    "[redis][blocking]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "gone-");
  const std::string k = keys[0][0];
  const int before = cluster.connected_clients(0);
  {
    Hiredis c(cluster.port());
    c.append({"BLPOP", k, "0"});
    REQUIRE(redisBufferWrite(c.context(), nullptr) == REDIS_OK);
    REQUIRE(await_blocked(cluster, 1));
    CHECK(cluster.connected_clients(0) == before + 1);
  }
  // Unblocked and gone on the server: a push afterwards stays in the list.
  CHECK(cluster.await_connected_clients(0, before));
  CHECK(await_blocked(cluster, 0));
  Hiredis pusher(cluster.port());
  CHECK(pusher.call({"RPUSH", k, "kept"}) == "int:1");
  CHECK(cluster.direct(0)->call({"LLEN", k}) == ":1\r\n");

  SECTION("redis-cli stopped while it blocks") {
    testing::ChildProcess cli(
        {"redis-cli", "-p", std::to_string(cluster.port()), "BLPOP", keys[1][0], "0"});
    REQUIRE(await_blocked(cluster, 1));
    const int open = cluster.connected_clients(1);
    cli.signal(SIGKILL);
    cli.wait_exit(std::chrono::milliseconds(2000));
    CHECK(await_blocked(cluster, 0));
    CHECK(cluster.await_connected_clients(1, open - 1));
    CHECK(pusher.call({"RPUSH", keys[1][0], "kept"}) == "int:1");
    CHECK(cluster.direct(1)->call({"LLEN", keys[1][0]}) == ":1\r\n");
  }
}

TEST_CASE("Blocking connections are bounded per server, reused, and counted", "[redis][blocking]") {
  RedisCluster cluster(testing::redis_shards(2, {"dedicated_connections: 1"}));
  const auto keys = cluster.keys_per_server(2, "bound-");
  Hiredis first(cluster.port()), second(cluster.port()), pusher(cluster.port());
  first.append({"BLPOP", keys[0][0], "5"});
  REQUIRE(redisBufferWrite(first.context(), nullptr) == REDIS_OK);
  REQUIRE(await_blocked(cluster, 1));
  const std::string refused = second.call({"BLPOP", keys[0][1], "5"});
  CHECK(refused.rfind("err:ERR cachegate: no connection free for a blocking command on server '",
                      0) == 0);
  CHECK(refused.find("(pools.red.dedicated_connections)") != std::string::npos);
  // The other server has a bound of its own.
  CHECK(second.call({"BLPOP", keys[1][0], "0.05"}) == "nil");
  CHECK(pusher.call({"RPUSH", keys[0][0], "x"}) == "int:1");
  CHECK(testing::describe(first.get_reply().get()) == "[str:" + keys[0][0] + ", str:x]");
  // Handed back clean: the next blocking command takes the same connection.
  const int open = cluster.connected_clients(0);
  CHECK(second.call({"BLPOP", keys[0][1], "0.05"}) == "nil");
  CHECK(cluster.connected_clients(0) == open);
}

TEST_CASE("Inside MULTI a blocking command does not block, as in Redis", "[redis][blocking]") {
  RedisCluster cluster(testing::redis_shards(2));
  Hiredis c(cluster.port());
  CHECK(c.call({"MULTI"}) == "status:OK");
  CHECK(c.call({"BLPOP", "{t}empty", "0"}) == "status:QUEUED");
  CHECK(c.call({"RPUSH", "{t}full", "x"}) == "status:QUEUED");
  CHECK(c.call({"BLPOP", "{t}full", "0"}) == "status:QUEUED");
  CHECK(c.call({"EXEC"}) == "[nil, int:1, [str:{t}full, str:x]]");
}

TEST_CASE("redis-cli: a user's namespace on blocking commands, and the keys their replies name",
          "[redis][blocking][namespace]") {
  testing::RedisServer server;
  testing::CachegateServer proxy(testing::tenant_redis_config(server.port(), {{"t", "t:"}}));
  REQUIRE(server.client()->call({"RPUSH", "t:list", "a"}) == ":1\r\n");
  REQUIRE(server.client()->call({"ZADD", "t:z", "1", "m"}) == ":1\r\n");
  REQUIRE(server.client()->call({"RPUSH", "list", "not-theirs"}) == ":1\r\n");
  auto cli = [&](const std::string& command) {
    std::string out;
    const int rc =
        testing::run_command({"sh", "-c",
                              "redis-cli -h 127.0.0.1 -p " + std::to_string(proxy.port()) +
                                  " --user t --pass pw --no-auth-warning " + command},
                             &out);
    CHECK(rc == 0);
    return out;
  };
  CHECK(cli("BLPOP list 1") == "list\na\n");
  CHECK(cli("BZPOPMIN z 1") == "z\nm\n1\n");
  CHECK(cli("BLMPOP 1 1 list LEFT") == "\n");  // empty now: nil after the timeout
  // The unprefixed list was never reached.
  CHECK(server.client()->call({"LLEN", "list"}) == ":1\r\n");
}

TEST_CASE("A client that half-closes behind a blocking command is not blocked for",
          "[redis][blocking]") {
  RedisCluster cluster(testing::redis_shards(2));
  const auto keys = cluster.keys_per_server(1, "half-");
  const std::string k = keys[0][0];
  {
    testing::RespClient c(cluster.port());
    // The write before it is answered first; the BLPOP then finds the client gone.
    c.send_raw(testing::resp_command({"SET", keys[1][0], "1"}) +
               testing::resp_command({"BLPOP", k, "0"}));
    c.text().shutdown_write();
    CHECK(c.read() == "+OK\r\n");
    CHECK(c.peer_closed());
  }
  CHECK(await_blocked(cluster, 0));
  // Nothing waits on the server to take the next element.
  Hiredis pusher(cluster.port());
  CHECK(pusher.call({"LPUSH", k, "precious"}) == "int:1");
  CHECK(cluster.direct(0)->call({"LLEN", k}) == ":1\r\n");
}

TEST_CASE("Blocking commands: long timeouts, options read in their places, no slow-log entry",
          "[redis][blocking]") {
  testing::RedisServer server;
  testing::CachegateServer proxy(testing::single_redis_config(server.port(), "timeout: 300, ",
                                                              "slow_log: {threshold: 100}\n"));
  Hiredis c(proxy.port()), pusher(proxy.port());
  // A timeout far beyond the pool's (Redis accepts it): the block outlives the pool's 300 ms.
  c.append({"BLPOP", "far", "2000000000"});
  REQUIRE(redisBufferWrite(c.context(), nullptr) == REDIS_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(pusher.call({"RPUSH", "far", "v"}) == "int:1");
  CHECK(testing::describe(c.get_reply().get()) == "[str:far, str:v]");
  // A group called "block" is not a BLOCK option: this read does not block.
  CHECK(pusher.call({"XGROUP", "CREATE", "st", "block", "$", "MKSTREAM"}) == "status:OK");
  CHECK(c.call({"XREADGROUP", "GROUP", "block", "c1", "COUNT", "1", "STREAMS", "st", ">"}) ==
        "nil");
  // With BLOCK, past the pool's timeout.
  const auto start = Clock::now();
  CHECK(c.call({"XREADGROUP", "GROUP", "block", "c1", "BLOCK", "600", "STREAMS", "st", ">"}) ==
        "nil");
  CHECK(seconds_since(start) >= 0.55);
  // The blocks were the client's choice: none of them is a slow request.
  CHECK(proxy.log().find("slow request") == std::string::npos);
}

TEST_CASE("SIGTERM closes clients blocked in a command rather than waiting for them",
          "[redis][blocking][operations]") {
  testing::RedisServer server;
  testing::CachegateServer proxy(
      testing::single_redis_config(server.port(), "", "drain_timeout: 20000\n"));
  Hiredis c(proxy.port());
  c.append({"BLPOP", "queue", "0"});
  REQUIRE(redisBufferWrite(c.context(), nullptr) == REDIS_OK);
  bool blocked = false;
  for (int attempt = 0; attempt < 100 && !blocked; ++attempt) {
    blocked =
        server.client()->call({"INFO", "clients"}).find("blocked_clients:1") != std::string::npos;
    if (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(blocked);
  proxy.process().signal(SIGTERM);
  // Well before the 20 s drain_timeout: the blocked client does not hold the drain.
  CHECK(proxy.process().wait_exit(std::chrono::milliseconds(8000)) == 0);
  CHECK_FALSE(c.get_reply());
  CHECK(server.client()->call({"INFO", "clients"}).find("blocked_clients:0") != std::string::npos);
}

// Stops (or resumes) a process and waits until the kernel says so.
void set_stopped(testing::ChildProcess& process, bool stopped) {
  process.signal(stopped ? SIGSTOP : SIGCONT);
  const std::string path = "/proc/" + std::to_string(process.pid()) + "/stat";
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::ifstream in(path);
    std::string stat;
    std::getline(in, stat);
    const size_t close = stat.rfind(')');
    if (close != std::string::npos && close + 2 < stat.size() &&
        (stat[close + 2] == 'T') == stopped)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("process state did not change");
}

TEST_CASE("WAIT counts the replicas that have the client's writes, on every server of the pool",
          "[redis][blocking][wait]") {
  testing::RedisServer primary, alone;
  testing::RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(primary.port())});
  auto on_primary = primary.client();
  bool linked = false;
  for (int attempt = 0; attempt < 250 && !linked; ++attempt) {
    linked =
        on_primary->call({"INFO", "replication"}).find("connected_slaves:1") != std::string::npos &&
        replica.client()->call({"INFO", "replication"}).find("master_link_status:up") !=
            std::string::npos;
    if (!linked) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(linked);
  testing::CachegateServer proxy(
      "workers: 1\n"
      "listeners:\n"
      "  - {name: one, listen: \"127.0.0.1:{port}\", pool: replicated}\n"
      "  - {name: two, listen: \"127.0.0.1:{port1}\", pool: mixed}\n"
      "pools:\n"
      "  replicated: {protocol: redis, servers: [\"127.0.0.1:" +
      std::to_string(primary.port()) +
      ":1 p\"]}\n"
      "  mixed: {protocol: redis, servers: [\"127.0.0.1:" +
      std::to_string(primary.port()) + ":1 p\", \"127.0.0.1:" + std::to_string(alone.port()) +
      ":1 a\"]}\n");
  Hiredis c(proxy.port());
  CHECK(c.call({"SET", "k", "v"}) == "status:OK");
  CHECK(c.call({"WAIT", "1", "5000"}) == "int:1");
  CHECK(replica.client()->call({"GET", "k"}) == "$1\r\nv\r\n");

  // A replica that cannot acknowledge the latest write is not counted, though it acknowledged
  // everything before: WAIT asks for what the server has now, not what its connection wrote.
  set_stopped(replica.process(), true);
  CHECK(c.call({"SET", "k", "newer"}) == "status:OK");
  const auto start = Clock::now();
  CHECK(c.call({"WAIT", "1", "300"}) == "int:0");
  CHECK(seconds_since(start) >= 0.25);
  set_stopped(replica.process(), false);
  CHECK(c.call({"WAIT", "1", "5000"}) == "int:1");

  // Over two servers, the smaller count: one of them has no replica.
  Hiredis mixed(proxy.port(1));
  CHECK(mixed.call({"WAIT", "1", "200"}) == "int:0");
  CHECK(mixed.call({"WAIT", "0", "0"}) == "int:0");
  // Redis's own errors.
  CHECK(c.call({"WAIT", "one", "0"}) == "err:ERR value is not an integer or out of range");
  CHECK(c.call({"WAIT", "1", "-5"}) == "err:ERR timeout is negative");

  // A client that leaves while WAIT waits for ever lets its connection go.
  auto clients_on_primary = [&] {
    const std::string info = on_primary->call({"INFO", "clients"});
    return std::atoi(info.c_str() + info.find("connected_clients:") + 18);
  };
  auto await_clients = [&](int n) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (clients_on_primary() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  // The connection of the WAITs above is reused (handed back clean), then closed with its client.
  const int before = clients_on_primary();
  {
    Hiredis gone(proxy.port());
    gone.append({"WAIT", "5", "0"});
    REQUIRE(redisBufferWrite(gone.context(), nullptr) == REDIS_OK);
    bool waiting = false;
    for (int attempt = 0; attempt < 100 && !waiting; ++attempt) {
      waiting =
          on_primary->call({"INFO", "clients"}).find("blocked_clients:1") != std::string::npos;
      if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(waiting);
    CHECK(clients_on_primary() == before);
  }
  CHECK(await_clients(before - 1));
  CHECK(on_primary->call({"INFO", "clients"}).find("blocked_clients:0") != std::string::npos);
  CHECK(c.call({"PING"}) == "status:PONG");
}

}  // namespace
}  // namespace cachegate
