// redis-servers that die, hang and come back, behind cachegate: requests for a broken server's
// keys fail with "-ERR cachegate: …" within the pool's timeout while the other servers keep
// serving, requests that need the broken server as one part fail as a whole, and the server is
// used again once it is back on its port, with replies still matched to the right requests.

#include <csignal>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/memcache_cluster.h"
#include "tests/support/redis_cluster.h"

namespace cachegate {
namespace {

using testing::eventually;
using testing::RedisCluster;
using testing::RedisClusterOptions;
using testing::resp_bulk;
using testing::resp_command;
using testing::RespClient;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kTimeoutMs = 500;
// Room for a loaded two-core machine on top of the pool's timeout.
constexpr int kSlackMs = 1500;

RedisClusterOptions failure_options() {
  RedisClusterOptions options;
  options.timeout_ms = kTimeoutMs;
  return options;
}

// One line "-ERR cachegate: <reason>\r\n".
bool is_cachegate_error(const std::string& reply) {
  return reply.rfind("-ERR cachegate: ", 0) == 0 && reply.find("\r\n") == reply.size() - 2;
}

struct Timed {
  std::string reply;
  long ms;
};

Timed timed_call(RespClient& c, const std::vector<std::string>& request) {
  const auto start = Clock::now();
  std::string reply = c.call(request);
  return {reply, static_cast<long>(
                     std::chrono::duration_cast<milliseconds>(Clock::now() - start).count())};
}

// Resumes a stopped server however the test ends.
struct ContinueOnExit {
  testing::RedisServer& server;
  ~ContinueOnExit() { server.process().signal(SIGCONT); }
};

TEST_CASE("a killed redis-server fails only its own keys and is used again after a restart",
          "[redis][failures]") {
  RedisCluster cluster(failure_options());
  const auto keys = cluster.keys_per_server(3, "kill-");
  auto c = cluster.client();
  for (size_t s = 0; s < cluster.size(); ++s)
    for (const auto& k : keys[s])
      REQUIRE(c->call({"SET", k, "v" + std::to_string(s)}) == "+OK\r\n");

  cluster.server(1).kill();
  for (const auto& k : keys[1]) {
    auto t = timed_call(*c, {"GET", k});
    INFO(k << ": " << t.reply);
    CHECK(is_cachegate_error(t.reply));
    CHECK(t.ms < kTimeoutMs + kSlackMs);
  }
  for (size_t s : {0, 2})
    for (const auto& k : keys[s])
      CHECK(c->call({"GET", k}) == resp_bulk("v" + std::to_string(s)));
  // A split request with a part on the dead server fails as a whole; without one it works.
  CHECK(is_cachegate_error(c->call({"MGET", keys[0][0], keys[1][0], keys[2][0]})));
  CHECK(c->call({"MGET", keys[0][0], keys[2][0]}) == "*2\r\n" + resp_bulk("v0") + resp_bulk("v2"));
  // Whole-pool commands need every server.
  CHECK(is_cachegate_error(c->call({"DBSIZE"})));
  // Commands cachegate answers itself do not need a server.
  CHECK(c->call({"PING"}) == "+PONG\r\n");
  // A server that just failed twice is known to be down: a write with a part for it, or a flush,
  // is refused before any part is sent, so nothing happens on the live servers.
  CHECK(is_cachegate_error(c->call({"GET", keys[1][1]})));
  CHECK(is_cachegate_error(c->call({"GET", keys[1][2]})));
  CHECK(is_cachegate_error(c->call({"DEL", keys[0][0], keys[1][0]})));
  CHECK(is_cachegate_error(c->call({"FLUSHALL"})));
  CHECK(c->call({"GET", keys[0][0]}) == resp_bulk("v0"));
  CHECK(cluster.direct(0)->call({"DBSIZE"}) == ":3\r\n");
  CHECK(cluster.direct(2)->call({"DBSIZE"}) == ":3\r\n");

  // Back on the same port (empty: no persistence): used again.
  cluster.server(1).restart();
  CHECK(eventually(
      [&] {
        return c->call({"SET", keys[1][0], "again"}) == "+OK\r\n";
      },
      milliseconds(5000)));
  CHECK(cluster.direct(1)->call({"GET", keys[1][0]}) == resp_bulk("again"));
  CHECK(c->call({"MGET", keys[0][0], keys[1][0], keys[2][0]}) ==
        "*3\r\n" + resp_bulk("v0") + resp_bulk("again") + resp_bulk("v2"));
  CHECK(c->call({"DBSIZE"}) == ":7\r\n");
}

TEST_CASE("a redis-server killed under a running pipelined load", "[redis][failures]") {
  RedisCluster cluster(failure_options());
  // Five keys of each server per client thread.
  const auto keys = cluster.keys_per_server(10, "load-");
  const size_t victim = 2;
  std::atomic<bool> stop{false};
  std::atomic<bool> killed{false};
  std::atomic<long> survivor_errors{0}, victim_errors{0}, wrong{0}, batches{0}, slow{0};
  std::mutex problem_mutex;
  std::string first_problem;
  auto note = [&](const std::string& problem) {
    std::lock_guard<std::mutex> lock(problem_mutex);
    if (first_problem.empty()) first_problem = problem;
  };

  // Clients keep writing and reading back every key in batches of pipelined requests; each
  // reply must be the value just written or, for the victim's keys only, cachegate's error.
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&, t] {
      RespClient c(cluster.port(), milliseconds(10000));
      for (int round = 0; !stop; ++round) {
        std::string requests;
        std::vector<std::pair<size_t, std::string>> expected;  // server, value
        for (size_t s = 0; s < cluster.size(); ++s) {
          for (size_t i = 0; i < 5; ++i) {
            const std::string& k = keys[s][t * 5 + i];
            const std::string value = std::to_string(t) + "-" + std::to_string(round);
            requests += resp_command({"SET", k, value});
            requests += resp_command({"GET", k});
            expected.emplace_back(s, value);
          }
        }
        const auto start = Clock::now();
        auto replies = c.pipeline(requests, expected.size() * 2);
        if (Clock::now() - start > milliseconds(kTimeoutMs + kSlackMs)) ++slow;
        if (replies.size() != expected.size() * 2) {
          ++wrong;
          note("missing replies");
          return;
        }
        for (size_t i = 0; i < expected.size(); ++i) {
          const auto& [server, value] = expected[i];
          const std::string& set = replies[2 * i];
          const std::string& get = replies[2 * i + 1];
          if (set == "+OK\r\n" && get == resp_bulk(value)) continue;
          // A SET that failed may still have run (a reply lost with the connection); its GET may
          // fail too, or reach the restarted server, which is empty.
          if (server == victim && killed && is_cachegate_error(set) &&
              (is_cachegate_error(get) || get == resp_bulk(value) || get == "$-1\r\n")) {
            ++victim_errors;
            continue;
          }
          if (server == victim && killed && set == "+OK\r\n" && is_cachegate_error(get)) {
            ++victim_errors;
            continue;
          }
          if (server == victim) {
            ++wrong;
          } else {
            ++survivor_errors;
          }
          note("server " + std::to_string(server) + ": " + set + " / " + get);
        }
        ++batches;
      }
    });
  }
  CHECK(eventually([&] { return batches > 10; }, milliseconds(5000)));
  killed = true;
  cluster.server(victim).kill();
  const long before = batches;
  CHECK(eventually([&] { return batches > before + 10; }, milliseconds(10000)));
  cluster.server(victim).restart();
  // Reconnection waits out cachegate's backoff after failed connects (at most a second).
  std::this_thread::sleep_for(milliseconds(1500));
  const long restarted = batches;
  CHECK(eventually([&] { return batches > restarted + 3; }, milliseconds(10000)));
  // From here on every reply is right again.
  const long errors_before_recovery = victim_errors;
  const long settled = batches;
  CHECK(eventually([&] { return batches > settled + 5; }, milliseconds(10000)));
  stop = true;
  for (auto& t : clients)
    t.join();
  INFO(first_problem);
  CHECK(survivor_errors == 0);
  CHECK(wrong == 0);
  CHECK(slow == 0);
  CHECK(victim_errors > 0);
  // Recovery is complete: no error since the servers settled.
  CHECK(victim_errors == errors_before_recovery);
}

TEST_CASE("a hung redis-server fails its keys within the timeout and recovers in step",
          "[redis][failures]") {
  RedisCluster cluster(failure_options());
  const auto keys = cluster.keys_per_server(2, "hang-");
  auto c = cluster.client();
  for (size_t s = 0; s < cluster.size(); ++s)
    for (const auto& k : keys[s])
      REQUIRE(c->call({"SET", k, "v" + std::to_string(s)}) == "+OK\r\n");

  auto& hung = cluster.server(0);
  ContinueOnExit resume{hung};
  hung.process().signal(SIGSTOP);
  auto t = timed_call(*c, {"GET", keys[0][0]});
  INFO(t.reply);
  CHECK(is_cachegate_error(t.reply));
  CHECK(t.ms >= kTimeoutMs - 50);
  CHECK(t.ms < kTimeoutMs + kSlackMs);
  // A pipeline to the hung server fails within about one timeout, not one per request.
  std::string requests;
  for (int i = 0; i < 5; ++i)
    requests += resp_command({"SET", keys[0][1], "during-" + std::to_string(i)});
  const auto start = Clock::now();
  auto replies = c->pipeline(requests, 5);
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  REQUIRE(replies.size() == 5);
  for (const auto& r : replies)
    CHECK(is_cachegate_error(r));
  CHECK(ms < kTimeoutMs + kSlackMs);
  // The other servers answer meanwhile, at once.
  auto other = timed_call(*c, {"GET", keys[1][0]});
  CHECK(other.reply == resp_bulk("v1"));
  CHECK(other.ms < 300);

  hung.process().signal(SIGCONT);
  // Replies the server sends late, for requests already failed, must not be taken for the
  // answers to new ones: every value read back is the one just written.
  CHECK(eventually(
      [&] {
        return c->call({"GET", keys[0][0]}) == resp_bulk("v0");
      },
      milliseconds(5000)));
  for (int i = 0; i < 20; ++i) {
    const std::string value = "after-" + std::to_string(i);
    CHECK(c->call({"SET", keys[0][1], value}) == "+OK\r\n");
    CHECK(c->call({"GET", keys[0][1]}) == resp_bulk(value));
    CHECK(c->call({"GET", keys[0][0]}) == resp_bulk("v0"));
  }
}

TEST_CASE("a pool whose servers are all down answers every request with an error",
          "[redis][failures]") {
  RedisClusterOptions options = failure_options();
  options.servers = 2;
  RedisCluster cluster(options);
  cluster.server(0).kill();
  cluster.server(1).kill();
  auto c = cluster.client();
  for (const auto& request :
       std::vector<std::vector<std::string>>{{"GET", "a"},
                                             {"MGET", "a", "b", "c"},
                                             {"DBSIZE"},
                                             {"SCAN", "0"},
                                             {"KEYS", "*"},
                                             {"INFO"},
                                             {"TIME"},
                                             {"EVAL", "return 1", "0"},
                                             {"SCRIPT", "LOAD", "return 1"}}) {
    INFO(request[0]);
    auto t = timed_call(*c, request);
    CHECK(is_cachegate_error(t.reply));
    CHECK(t.ms < kTimeoutMs + kSlackMs);
  }
  CHECK(c->call({"PING"}) == "+PONG\r\n");
}

}  // namespace
}  // namespace cachegate
