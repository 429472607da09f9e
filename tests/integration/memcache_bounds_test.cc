// Requests that must not cost other clients anything: lines a memcached server would treat as
// grounds to drop the shared connection, a client that pipelines large replies without reading
// them, a new connection that cannot be established, and key routing of debug commands.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/memcache_cluster.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::MemcacheCluster;

// The number after `name:` in cachegate's `stats` (or `stats servers`) reply, or -1.
long long stat_value(testing::TextClient& client, const std::string& command,
                     const std::string& name) {
  auto reply = client.call(command, "get");
  if (!reply) return -1;
  const std::string needle = "STAT " + name + " ";
  auto pos = reply->find(needle);
  if (pos == std::string::npos) return -1;
  return std::stoll(reply->substr(pos + needle.size()));
}

long long sum_server_stat(testing::TextClient& client, const std::string& metric) {
  auto reply = client.call("stats servers\r\n", "get");
  if (!reply) return -1;
  long long total = 0;
  std::istringstream in(*reply);
  std::string line;
  const std::string suffix = ":" + metric + " ";
  while (std::getline(in, line)) {
    auto pos = line.find(suffix);
    if (pos != std::string::npos) total += std::stoll(line.substr(pos + suffix.size()));
  }
  return total;
}

long long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

TEST_CASE("retrieval lines memcached would drop the connection for are reshaped, not forwarded",
          "[memcache][bounds]") {
  MemcacheCluster cluster(ClusterOptions{.servers = 1});
  auto c = cluster.client();
  REQUIRE(c->call("set k 0 0 1\r\nv\r\n") == std::string("STORED\r\n"));

  SECTION("a get after many spaces") {
    auto reply = c->call(std::string(20000, ' ') + "get k\r\n", "get");
    CHECK(reply == std::string("VALUE k 0 1\r\nv\r\nEND\r\n"));
  }
  SECTION("a single-key gat padded with spaces") {
    auto reply = c->call("gat" + std::string(20000, ' ') + "0 k\r\n", "get");
    CHECK(reply == std::string("VALUE k 0 1\r\nv\r\nEND\r\n"));
  }
  SECTION("a gats with many keys on one server") {
    std::string request = "gats 0";
    for (int i = 0; i < 40; ++i)
      request += " " + std::string(100, 'a' + i % 26);
    request += " k\r\n";
    auto reply = c->call(request, "get");
    REQUIRE(reply);
    CHECK(reply->rfind("VALUE k 0 1 ", 0) == 0);
  }
  // Nothing above cost the server connection: no request failed, no connection was replaced.
  auto s = cluster.client();
  CHECK(sum_server_stat(*s, "failures") == 0);
  CHECK(sum_server_stat(*s, "connects") == 1);
}

TEST_CASE("a client that pipelines large replies without reading them is cut off alone",
          "[memcache][bounds]") {
  MemcacheCluster cluster(ClusterOptions{
      .servers = 1,
      .workers = 1,
      .timeout_ms = 2000,
      .limits = {"client_output_max: 2m", "client_output_hard_max: 16m", "reply_size_max: 4m"},
      .memcached_args = {"-I", "2m"}});
  auto setter = cluster.client();
  const std::string big(1024 * 1024, 'x');
  REQUIRE(setter->call("set big 0 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\n") ==
          std::string("STORED\r\n"));
  const long long rss_before = rss_kib(cluster.proxy().process().pid());

  // 300 gets of 1 MiB in one write, and never a read: 300 MiB of replies the client will not
  // take. cachegate may hold at most client_output_hard_max of them for it.
  auto greedy = cluster.client();
  std::string pipeline;
  for (int i = 0; i < 300; ++i)
    pipeline += "get big\r\n";
  greedy->send(pipeline);

  // Meanwhile another client is served normally.
  auto other = cluster.client();
  for (int i = 0; i < 20; ++i) {
    REQUIRE(other->call("set small 0 0 2\r\nok\r\n") == std::string("STORED\r\n"));
    REQUIRE(other->call("get small\r\n", "get") == std::string("VALUE small 0 2\r\nok\r\nEND\r\n"));
  }
  // The greedy client is disconnected once its backlog passes the hard cap.
  CHECK(greedy->peer_closed(std::chrono::milliseconds(10000)));
  CHECK(stat_value(*other, "stats\r\n", "cachegate_output_limit_closes") == 1);
  const long long rss_after = rss_kib(cluster.proxy().process().pid());
  INFO("rss before " << rss_before << " KiB, after " << rss_after << " KiB");
  CHECK(rss_after - rss_before < 96 * 1024);
  // The shared server connection never timed out or failed for anyone.
  CHECK(sum_server_stat(*other, "timeouts") == 0);
  CHECK(sum_server_stat(*other, "failures") == 0);
}

TEST_CASE("a request waiting on a connection that cannot be made fails within its own timeout",
          "[memcache][bounds]") {
  // A listener whose accept queue is full and never drained: further connection attempts get no
  // answer at all (their SYNs are dropped), so connecting hangs until connect_timeout.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 0) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const uint16_t port = ntohs(addr.sin_port);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }

  for (const bool preconnect : {false, true}) {
    INFO("preconnect: " << preconnect);
    testing::CachegateServer proxy(
        "workers: 1\n"
        "listeners:\n  - {name: mc, listen: \"127.0.0.1:{port}\", protocol: memcached, pool: p}\n"
        "pools:\n  p:\n    timeout: 300\n    connect_timeout: 5000\n    preconnect: " +
        std::string(preconnect ? "true" : "false") +
        "\n    servers:\n      - 127.0.0.1:" + std::to_string(port) + ":1\n");
    testing::TextClient client("127.0.0.1", proxy.port());
    const auto start = std::chrono::steady_clock::now();
    auto reply = client.call("get k\r\n", "get");
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    REQUIRE(reply);
    CHECK(reply->rfind("SERVER_ERROR", 0) == 0);
    CHECK(elapsed.count() >= 250);
    CHECK(elapsed.count() < 2500);
  }
  for (int fd : fillers)
    ::close(fd);
  ::close(listener);
}

TEST_CASE("me decodes its key only for a lone b flag, as memcached does", "[memcache][bounds]") {
  MemcacheCluster cluster(ClusterOptions{.servers = 3});
  // "YWJj" is base64 for "abc". With flags "bx" or "x b" memcached looks up the key "YWJj"
  // itself, so cachegate must route by that key, not by "abc".
  auto c = cluster.client();
  REQUIRE(c->call("set YWJj 0 0 3\r\nraw\r\n") == std::string("STORED\r\n"));
  REQUIRE(c->call("set abc 0 0 3\r\ndec\r\n") == std::string("STORED\r\n"));
  auto raw = c->call("me YWJj bx\r\n", "meta");
  REQUIRE(raw);
  CHECK(raw->rfind("ME YWJj ", 0) == 0);
  auto decoded = c->call("me YWJj b\r\n", "meta");
  REQUIRE(decoded);
  // memcached 1.6 answers with the decoded key.
  CHECK(decoded->rfind("ME abc ", 0) == 0);
}

}  // namespace
}  // namespace cachegate
