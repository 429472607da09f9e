// twemproxy compatibility: the example configuration shipped with twemproxy 0.5 (Debian's
// nutcracker package, /usr/share/doc/nutcracker/examples/nutcracker.yml), pasted under `pools:`.

#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "config/load.h"

namespace cachegate::config {
namespace {

using Catch::Matchers::Contains;

// Verbatim, including the redis pools and the unix-socket listener.
constexpr std::string_view kNutcrackerYml = R"(alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:6379:1

beta:
  listen: 127.0.0.1:22122
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: false
  timeout: 400
  redis: true
  servers:
   - 127.0.0.1:6380:1 server1
   - 127.0.0.1:6381:1 server2
   - 127.0.0.1:6382:1 server3
   - 127.0.0.1:6383:1 server4

gamma:
  listen: 127.0.0.1:22123
  hash: fnv1a_64
  distribution: ketama
  timeout: 400
  backlog: 1024
  preconnect: true
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 3
  servers:
   - 127.0.0.1:11212:1
   - 127.0.0.1:11213:1

delta:
  listen: 127.0.0.1:22124
  hash: fnv1a_64
  distribution: ketama
  timeout: 100
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:11214:1
   - 127.0.0.1:11215:1
   - 127.0.0.1:11216:1
   - 127.0.0.1:11217:1
   - 127.0.0.1:11218:1
   - 127.0.0.1:11219:1
   - 127.0.0.1:11220:1
   - 127.0.0.1:11221:1
   - 127.0.0.1:11222:1
   - 127.0.0.1:11223:1

omega:
  listen: /tmp/gamma
  hash: hsieh
  distribution: ketama
  auto_eject_hosts: false
  servers:
   - 127.0.0.1:11214:100000
   - 127.0.0.1:11215:1
)";

// twemproxy's top level is a map of pools; ours has them under `pools:`.
std::string under_pools(const std::vector<std::string>& pools) {
  std::string out = "pools:\n";
  for (const auto& pool : pools) {
    std::istringstream lines(pool);
    for (std::string line; std::getline(lines, line);)
      out += line.empty() ? "\n" : "  " + line + "\n";
  }
  return out;
}

// The pools of kNutcrackerYml, each with the blank line that follows it.
std::vector<std::string> nutcracker_pools() {
  std::vector<std::string> pools;
  std::string_view rest = kNutcrackerYml;
  while (!rest.empty()) {
    const size_t end = rest.find("\n\n");
    const size_t cut = end == std::string_view::npos ? rest.size() : end + 2;
    pools.emplace_back(rest.substr(0, cut));
    rest.remove_prefix(cut);
  }
  return pools;
}

TEST_CASE("twemproxy's example configuration", "[config][twemproxy]") {
  const std::vector<std::string> pools = nutcracker_pools();
  REQUIRE(pools.size() == 5);  // alpha, beta, gamma, delta, omega

  SECTION("as a whole: the unix socket listener is the only error") {
    const std::string text = under_pools(pools);
    REQUIRE(text == under_pools({std::string(kNutcrackerYml)}));
    const LoadResult r = load_config_string(text, "nutcracker.yml");
    INFO(format_errors(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].path == "pools.omega.listen");
    CHECK(r.errors[0].where.line == 62);
    CHECK(r.errors[0].where.column == 13);
    CHECK(r.errors[0].message ==
          "'/tmp/gamma' is a unix socket path; unix sockets are not supported");
  }

  SECTION("its redis pools load as redis pools") {
    const LoadResult r = load_config_string(under_pools({pools[0], pools[1]}), "nutcracker.yml");
    INFO(format_errors(r));
    REQUIRE(r.ok());
    REQUIRE(r.config.pools.size() == 2);
    CHECK(r.config.pools[0].protocol == Protocol::kRedis);
    CHECK(r.config.pools[1].protocol == Protocol::kRedis);
    CHECK(r.config.pools[1].hash_tag == "{}");
    REQUIRE(r.config.listeners.size() == 2);
    CHECK(r.config.listeners[0].protocol == Protocol::kRedis);
  }

  SECTION("its memcached pools on TCP load unchanged, each with its own listener") {
    const LoadResult r = load_config_string(under_pools({pools[2], pools[3]}), "nutcracker.yml");
    INFO(format_errors(r));
    REQUIRE(r.ok());
    const Config& c = r.config;

    REQUIRE(c.pools.size() == 2);
    const PoolConfig& gamma = c.pools[0];
    CHECK(gamma.name == "gamma");
    CHECK(gamma.protocol == Protocol::kMemcached);
    CHECK(gamma.hash == HashFunction::kFnv1a_64);
    CHECK(gamma.distribution == Distribution::kKetama);
    CHECK(gamma.timeout == std::chrono::milliseconds(400));
    CHECK(gamma.preconnect);
    CHECK(gamma.auto_eject_hosts);
    CHECK(gamma.server_retry_timeout == std::chrono::milliseconds(2000));
    CHECK(gamma.server_failure_limit == 3);
    REQUIRE(gamma.servers.size() == 2);
    CHECK(gamma.servers[0].host == "127.0.0.1");
    CHECK(gamma.servers[0].port == 11212);
    CHECK(gamma.servers[0].weight == 1);
    CHECK(gamma.servers[0].identity == "127.0.0.1:11212");
    CHECK(gamma.servers[1].identity == "127.0.0.1:11213");

    const PoolConfig& delta = c.pools[1];
    CHECK(delta.name == "delta");
    CHECK(delta.timeout == std::chrono::milliseconds(100));
    CHECK(delta.server_failure_limit == 1);
    REQUIRE(delta.servers.size() == 10);
    CHECK(delta.servers[9].port == 11223);
    CHECK(delta.servers[9].identity == "127.0.0.1:11223");

    REQUIRE(c.listeners.size() == 2);
    CHECK(c.listeners[0].name == "gamma");
    CHECK(c.listeners[0].pool == "gamma");
    CHECK(c.listeners[0].host == "127.0.0.1");
    CHECK(c.listeners[0].port == 22123);
    CHECK(c.listeners[0].protocol == Protocol::kMemcached);
    CHECK(c.listeners[0].backlog == 1024);
    CHECK(c.listeners[1].name == "delta");
    CHECK(c.listeners[1].port == 22124);
    CHECK(c.listeners[1].backlog == 1024);
  }

  SECTION("omega's servers and hash are fine; only its listener is not") {
    const LoadResult r = load_config_string(under_pools({pools[4]}), "nutcracker.yml");
    INFO(format_errors(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].path == "pools.omega.listen");
    CHECK_THAT(r.errors[0].message, Contains("unix sockets are not supported"));
  }
}

}  // namespace
}  // namespace cachegate::config
