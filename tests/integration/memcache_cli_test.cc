// The cachegate binary as an operator meets it: command-line options and exit codes, config
// checking with every problem located in the file, worker counts, and signals.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <catch2/catch.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/memcache_cluster.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"
#include "tests/support/temp_dir.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::MemcacheCluster;
using testing::run_command;
using testing::TempDir;
using testing::TextClient;
using testing::value_item;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

TEST_CASE("cachegate --version and --help", "[memcache][cli]") {
  std::string out;
  CHECK(run_command({CACHEGATE_BINARY, "--version"}, &out) == 0);
  CHECK(std::regex_search(out, std::regex(R"(^cachegate \d+\.\d+\.\d+)")));

  CHECK(run_command({CACHEGATE_BINARY, "--help"}, &out) == 0);
  CHECK(out.find("--check-config") != std::string::npos);
  CHECK(out.find("-c") != std::string::npos);
  CHECK(out.find("--version") != std::string::npos);
}

TEST_CASE("cachegate refuses arguments it does not know", "[memcache][cli]") {
  std::string out;
  CHECK(run_command({CACHEGATE_BINARY, "--no-such-option"}, &out) == 2);
  CHECK(out.find("--no-such-option") != std::string::npos);
  CHECK(run_command({CACHEGATE_BINARY, "-c"}, &out) == 2);
  CHECK(run_command({CACHEGATE_BINARY, "--check-config"}, &out) == 2);
  // No configuration at all is an error too, not a proxy with defaults.
  CHECK(run_command({CACHEGATE_BINARY}, &out) == 2);
}

TEST_CASE("cachegate -c with a file that does not exist", "[memcache][cli]") {
  TempDir dir;
  const std::string missing = dir.path() + "/missing.yaml";
  std::string out;
  const int code = run_command({CACHEGATE_BINARY, "-c", missing}, &out);
  CHECK(code == 2);
  CHECK(out.find(missing) != std::string::npos);
  CHECK(run_command({CACHEGATE_BINARY, "--check-config", missing}, &out) == 2);
  CHECK(out.find(missing) != std::string::npos);
}

TEST_CASE("check-config accepts a valid file", "[memcache][cli][config]") {
  TempDir dir;
  std::string yaml = testing::cluster_config(ClusterOptions{}, {21211, 21212});
  yaml.replace(yaml.find("{port}"), 6, "22122");
  const std::string path = dir.write_file("ok.yaml", yaml);
  std::string out;
  CHECK(run_command({CACHEGATE_BINARY, "--check-config", path}, &out) == 0);
  // The shipped examples are valid too.
  for (const char* example : {"two-shards.yaml", "twemproxy-migration.yaml"}) {
    INFO(example << ": " << out);
    CHECK(run_command({CACHEGATE_BINARY, "--check-config",
                       std::string(CACHEGATE_SOURCE_DIR) + "/examples/" + example},
                      &out) == 0);
  }
}

TEST_CASE("check-config reports every problem with its line and column",
          "[memcache][cli][config]") {
  TempDir dir;
  // Four independent mistakes, at known places (1-based line:column).
  const std::string yaml =
      "workers: many\n"                // 1:10 not an integer
      "listeners:\n"                   //
      "  - name: mc\n"                 //
      "    listen: 127.0.0.1:22122\n"  //
      "    protocol: memcached\n"      //
      "    pool: nowhere\n"            // 6:11 no such pool
      "pools:\n"                       //
      "  cache:\n"                     //
      "    distribution: ketama\n"     //
      "    hsah: fnv1a_64\n"           // 10:5 unknown key
      "    timeout: 400\n"             //
      "    servers:\n"                 //
      "      - 127.0.0.1:99999:1\n";   // 13:9 bad port
  const std::string path = dir.write_file("bad.yaml", yaml);
  std::string out;
  CHECK(run_command({CACHEGATE_BINARY, "--check-config", path}, &out) == 2);
  INFO(out);
  std::vector<std::string> located;
  for (const auto& line : lines_of(out))
    if (line.rfind(path + ":", 0) == 0) located.push_back(line.substr(path.size() + 1));
  CHECK(located.size() >= 4);
  auto reported = [&](const std::string& where, const std::string& word) {
    for (const auto& l : located)
      if (l.rfind(where + ":", 0) == 0 && l.find(word) != std::string::npos) return true;
    return false;
  };
  CHECK(reported("1:10", "workers"));
  CHECK(reported("6:11", "nowhere"));
  CHECK(reported("10:5", "hsah"));
  CHECK(reported("13:9", "99999"));
  // Every reported problem carries a location.
  for (const auto& l : located)
    CHECK(std::regex_search(l, std::regex(R"(^\d+:\d+: )")));

  // The same file given to -c does not start a proxy.
  CHECK(run_command({CACHEGATE_BINARY, "-c", path}, &out) == 2);
  CHECK(out.find("hsah") != std::string::npos);
}

TEST_CASE("one and two workers serve, and SIGTERM stops cachegate cleanly",
          "[memcache][cli][workers]") {
  const unsigned workers = GENERATE(1u, 2u);
  ClusterOptions options;
  options.workers = workers;
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(2, "w-");

  // Several connections, so that with two workers both get some.
  std::vector<std::unique_ptr<TextClient>> clients;
  for (int i = 0; i < 8; ++i)
    clients.push_back(cluster.client());
  for (size_t i = 0; i < clients.size(); ++i) {
    const std::string& k = keys[i % 2][i / 4];
    CHECK(clients[i]->call("set " + k + " 0 0 1\r\n" + std::to_string(i) + "\r\n") == "STORED\r\n");
    CHECK(clients[i]->call("get " + k + "\r\n", "get") ==
          value_item(k, std::to_string(i)) + "END\r\n");
  }
  auto stats = clients[0]->call("stats\r\n", "get").value_or("");
  CHECK(stats.find("STAT threads " + std::to_string(workers) + "\r\n") != std::string::npos);
  // The probing connection of keys_per_server() may take a moment to be noticed as closed.
  CHECK(testing::eventually(
      [&] {
        return clients[0]
                   ->call("stats\r\n", "get")
                   .value_or("")
                   .find("STAT curr_connections 8\r\n") != std::string::npos;
      },
      std::chrono::milliseconds(2000)));

  // SIGHUP does not stop it.
  cluster.proxy().process().signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(clients[1]->call("get " + keys[0][0] + "\r\n", "get").value_or("").rfind("VALUE", 0) == 0);

  // SIGTERM with clients still connected: exit code 0, promptly, connections closed.
  const auto start = std::chrono::steady_clock::now();
  const int status = cluster.proxy().process().stop(std::chrono::milliseconds(5000));
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(took < std::chrono::milliseconds(3000));
  for (auto& c : clients)
    CHECK(c->peer_closed());
}

TEST_CASE("log_format json writes one JSON object per line", "[memcache][cli][log]") {
  testing::MemcachedServer memcached;
  testing::CachegateServer proxy(
      "log_format: json\n"
      "listeners:\n"
      "  - {name: mc, listen: \"127.0.0.1:{port}\", pool: cache}\n"
      "pools:\n"
      "  cache: {servers: [\"127.0.0.1:" +
      std::to_string(memcached.port()) + ":1\"]}\n");
  TextClient c("127.0.0.1", proxy.port());
  CHECK(c.call("version\r\n").value_or("").rfind("VERSION ", 0) == 0);
  proxy.process().stop(std::chrono::milliseconds(5000));
  const std::regex line(
      R"re(\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"(debug|info|warning|error)",)re"
      R"re("thread":"[^"]*","message":"([^"\\]|\\.)*"\})re");
  std::istringstream log(proxy.log());
  std::string text;
  int lines = 0;
  bool listener_line = false;
  while (std::getline(log, text)) {
    INFO(text);
    CHECK(std::regex_match(text, line));
    listener_line = listener_line || text.find("listener 'mc' on 127.0.0.1:") != std::string::npos;
    ++lines;
  }
  CHECK(lines >= 3);  // running, the listener, stopping
  CHECK(listener_line);
  memcached.process().signal(SIGKILL);
}

TEST_CASE("SIGTERM with a request stuck at a hung server still exits 0",
          "[memcache][cli][workers]") {
  MemcacheCluster cluster;
  const auto keys = cluster.keys_per_server(1, "t-");
  auto c = cluster.client();
  REQUIRE(c->call("get " + keys[1][0] + "\r\n", "get") == "END\r\n");
  cluster.server(1).process().signal(SIGSTOP);
  c->send("get " + keys[1][0] + "\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int status = cluster.proxy().process().stop(std::chrono::milliseconds(5000));
  cluster.server(1).process().signal(SIGCONT);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// The YAML of `cluster`'s cachegate with its listener on `port`.
std::string config_on_port(MemcacheCluster& cluster, uint16_t port) {
  std::vector<uint16_t> ports;
  for (size_t s = 0; s < cluster.size(); ++s)
    ports.push_back(cluster.server(s).port());
  std::string yaml = testing::cluster_config(cluster.options(), ports);
  yaml.replace(yaml.find("{port}"), 6, std::to_string(port));
  return yaml;
}

TEST_CASE("cachegate will not start on a port another process listens on",
          "[memcache][cli][listen]") {
  MemcacheCluster cluster;
  TempDir dir;
  std::string out;

  SECTION("a plain listener") {
    // Bound and listening without SO_REUSEPORT, as most servers do.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const std::string path =
        dir.write_file("c.yaml", config_on_port(cluster, ntohs(addr.sin_port)));
    const int code =
        run_command({CACHEGATE_BINARY, "-c", path}, &out, std::chrono::milliseconds(5000));
    ::close(fd);
    INFO(out);
    CHECK(code == 1);
  }

  SECTION("another cachegate") {
    // A second instance (a stale one during a deploy, a typo in a port) must fail loudly rather
    // than share the port: with both listening, the kernel would split new connections between
    // two proxies that may route differently.
    const std::string path = dir.write_file("c.yaml", config_on_port(cluster, cluster.port()));
    const int code =
        run_command({CACHEGATE_BINARY, "-c", path}, &out, std::chrono::milliseconds(2000));
    INFO(out);
    CHECK(code == 1);  // -1: it was still running when the wait ended
    // The first one is unharmed.
    auto c = cluster.client();
    CHECK(c->call("version\r\n").value_or("").rfind("VERSION ", 0) == 0);
  }
}

}  // namespace
}  // namespace cachegate
