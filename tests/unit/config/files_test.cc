// Loading from files: the shipped examples, and files that cannot be read.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "config/load.h"
#include "tests/support/temp_dir.h"

namespace cachegate::config {
namespace {

using Catch::Matchers::Contains;

const std::string kExamples = std::string(CACHEGATE_SOURCE_DIR) + "/examples";

LoadResult load_example(const std::string& name) {
  LoadResult r = load_config_file(kExamples + "/" + name);
  INFO(format_errors(r));
  REQUIRE(r.ok());
  return r;
}

TEST_CASE("every example configuration loads", "[config][examples]") {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    if (entry.path().extension() == ".yaml") names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  CHECK(std::find(names.begin(), names.end(), "two-shards.yaml") != names.end());
  CHECK(std::find(names.begin(), names.end(), "twemproxy-migration.yaml") != names.end());
  CHECK(std::find(names.begin(), names.end(), "redis-three-shards.yaml") != names.end());
  for (const auto& name : names) {
    INFO(name);
    const LoadResult r = load_example(name);
    CHECK(r.config.source == kExamples + "/" + name);
  }
}

TEST_CASE("examples/two-shards.yaml", "[config][examples]") {
  const Config c = load_example("two-shards.yaml").config;
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].host == "127.0.0.1");
  CHECK(c.listeners[0].port == 22122);
  CHECK(c.listeners[0].pool == "cache");
  REQUIRE(c.pools.size() == 1);
  REQUIRE(c.pools[0].servers.size() == 2);
  CHECK(c.pools[0].servers[0].port == 21211);
  CHECK(c.pools[0].servers[1].port == 21212);
}

TEST_CASE("examples/routes.yaml", "[config][examples]") {
  const Config c = load_example("routes.yaml").config;
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].route == "main");
  CHECK(c.listeners[0].pool.empty());
  REQUIRE(c.routes.size() == 1);
  const auto& rules = c.routes[0].rules;
  REQUIRE(rules.size() == 4);
  CHECK(rules[0].kind == RouteKind::kReplicate);
  CHECK(rules[0].mode == ReplicateMode::kQuorum);
  CHECK(rules[0].pools == std::vector<std::string>{"a", "b", "c"});
  CHECK(rules[0].ttl_max == 86400u);
  CHECK(rules[1].kind == RouteKind::kFailover);
  CHECK(rules[1].match.ops == route_op_bit(RouteOp::kRead));
  CHECK(rules[2].kind == RouteKind::kWarmup);
  CHECK(rules[2].pools == std::vector<std::string>{"n", "a"});
  CHECK(rules[3].match.catch_all());
  CHECK(rules[3].shadow_pool == "candidate");
  CHECK(rules[3].shadow_fraction == Approx(0.05));
}

TEST_CASE("examples/redis-three-shards.yaml", "[config][examples]") {
  const Config c = load_example("redis-three-shards.yaml").config;
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].protocol == Protocol::kRedis);
  CHECK(c.listeners[0].port == 26000);
  REQUIRE(c.pools.size() == 1);
  const PoolConfig& p = c.pools[0];
  CHECK(p.protocol == Protocol::kRedis);
  CHECK(p.hash_tag == "{}");
  CHECK_FALSE(p.allow_flush);
  CHECK(p.server_password.empty());
  CHECK(p.redis_db == 0);
  REQUIRE(p.servers.size() == 3);
  CHECK(p.servers[2].port == 26381);
}

TEST_CASE("examples/twemproxy-migration.yaml", "[config][examples]") {
  const Config c = load_example("twemproxy-migration.yaml").config;
  REQUIRE(c.pools.size() == 1);
  const PoolConfig& p = c.pools[0];
  CHECK(p.distribution == Distribution::kKetama);
  CHECK(p.hash == HashFunction::kFnv1a_64);
  CHECK(p.hash_tag == "{}");
  CHECK(p.auto_eject_hosts);
  REQUIRE_FALSE(p.servers.empty());
  for (const auto& s : p.servers)
    CHECK_FALSE(s.name.empty());
  // The pool-level listen is the only listener.
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].name == p.name);
  CHECK(c.listeners[0].pool == p.name);
}

TEST_CASE("files that cannot be read", "[config]") {
  const testing::TempDir dir;

  const LoadResult missing = load_config_file(dir.path() + "/missing.yaml");
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].where.line == 0);
  CHECK(missing.errors[0].where.column == 0);
  CHECK(missing.errors[0].path.empty());
  CHECK_THAT(missing.errors[0].message, Contains("cannot open") && Contains("No such file"));
  CHECK(format_errors(missing) ==
        dir.path() + "/missing.yaml:0:0: cannot open: No such file or directory\n");

  const LoadResult directory = load_config_file(dir.path());
  REQUIRE(directory.errors.size() == 1);
  CHECK_THAT(directory.errors[0].message, Contains("is a directory"));
}

TEST_CASE("errors from a file name the file", "[config]") {
  const testing::TempDir dir;
  const std::string path = dir.write_file("bad.yaml", "workers: 1\npools: {}\nlisteners: []\n");
  const LoadResult r = load_config_file(path);
  CHECK(r.config.source == path);
  CHECK(format_errors(r) == path + ":2:8: pools: no pools defined\n" + path +
                                ":3:12: listeners: no listeners defined (add a listeners list, or "
                                "a listen key to a pool)\n");

  const std::string empty = dir.write_file("empty.yaml", "");
  CHECK(format_errors(load_config_file(empty)) == empty + ":1:1: empty configuration\n");
}

}  // namespace
}  // namespace cachegate::config
