// Loading and validation: every rule of config/README.md, each error pinned by path, message and
// the exact line:column a reader of the file would look at.

#include <algorithm>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

#include "config/load.h"
#include "tests/unit/config/expected_errors.h"

namespace cachegate::config {
namespace {

using Catch::Matchers::Contains;

// Raw strings start with a newline after R"( so the YAML can be laid out as it would be in a
// file; dropping it makes line 1 the first line of text.
// A valid configuration with one more line in the pool, at line 9, column 5.
std::string with_pool_line(std::string_view line) {
  return yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
    )") + std::string(line) +
         "\n";
}

// A valid configuration with one more line in the listener, at line 9, column 5.
std::string with_listener_line(std::string_view line) {
  return yaml(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
    )") + std::string(line) +
         "\n";
}

// A valid configuration with one line under `limits:`, at line 10, column 3.
std::string with_limit_line(std::string_view line) {
  return yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
limits:
  )") + std::string(line) +
         "\n";
}

// A valid configuration whose only server is `spec`, at line 8, column 9.
std::string with_server(std::string_view spec) {
  return yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
      - )") +
         std::string(spec) + "\n";
}

// A valid configuration whose listener listens on `address`, at line 7, column 13.
std::string with_listen(std::string_view address) {
  return yaml(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: mc
    listen: )") +
         std::string(address) + "\n    pool: cache\n";
}

unsigned expected_auto_workers() {
  return std::clamp(std::thread::hardware_concurrency(), 1u, 256u);
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("a minimal configuration gets every default", "[config]") {
  const LoadResult r = require_ok(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
)");
  const Config& c = r.config;
  CHECK(c.source == "test.yaml");
  CHECK(c.workers == expected_auto_workers());
  CHECK(c.workers >= 1);

  REQUIRE(c.listeners.size() == 1);
  const ListenerConfig& l = c.listeners[0];
  CHECK(l.name == "mc");
  CHECK(l.host == "127.0.0.1");
  CHECK(l.port == 22122);
  CHECK(l.protocol == Protocol::kMemcached);
  CHECK(l.pool == "cache");
  CHECK(l.backlog == 1024);
  CHECK(l.where.line == 2);
  CHECK(l.where.column == 5);

  REQUIRE(c.pools.size() == 1);
  const PoolConfig& p = c.pools[0];
  CHECK(p.name == "cache");
  CHECK(p.protocol == Protocol::kMemcached);
  CHECK(p.distribution == Distribution::kKetama);
  CHECK(p.hash == HashFunction::kFnv1a_64);
  CHECK(p.hash_tag.empty());
  CHECK(p.timeout == std::chrono::milliseconds(1000));
  CHECK(p.connect_timeout == std::chrono::milliseconds(1000));
  CHECK(p.server_connections == 1);
  CHECK(p.dedicated_connections == 16);
  CHECK_FALSE(p.preconnect);
  CHECK_FALSE(p.tcpkeepalive);
  CHECK_FALSE(p.auto_eject_hosts);
  CHECK(p.server_retry_timeout == std::chrono::milliseconds(30000));
  CHECK(p.server_failure_limit == 2);
  CHECK_FALSE(p.allow_flush);
  CHECK(p.where.line == 6);
  CHECK(p.where.column == 3);
  REQUIRE(p.servers.size() == 1);
  CHECK(p.servers[0].where.line == 8);
  CHECK(p.servers[0].where.column == 9);
  CHECK(c.find_pool("cache") == &p);
  CHECK(c.find_pool("other") == nullptr);

  CHECK(c.limits.item_size_max == 1024 * 1024);
  CHECK(c.limits.request_line_max == 64 * 1024);
  CHECK(c.limits.client_pipeline_max == 4096);
  CHECK(c.limits.client_output_max == 8 * 1024 * 1024);
  CHECK(c.limits.reply_size_max == 64 * 1024 * 1024);
}

TEST_CASE("every field of a full configuration round-trips", "[config]") {
  const LoadResult r = require_ok(R"(
workers: 3
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    protocol: memcached
    pool: cache
    backlog: 511
  - name: mc-v6
    listen: "[::1]:0"
    pool: other
limits:
  item_size_max: 2m
  request_line_max: 16k
  client_pipeline_max: 128
  client_output_max: 1g
  reply_size_max: 3m
pools:
  cache:
    protocol: memcached
    distribution: modula
    hash: murmur
    hash_tag: "{}"
    timeout: 250
    connect_timeout: 50
    server_connections: 4
    preconnect: true
    tcpkeepalive: true
    auto_eject_hosts: true
    server_retry_timeout: 5000
    server_failure_limit: 7
    allow_flush: true
    servers:
      - 127.0.0.1:21211:1
      - 127.0.0.1:21212:3 cache-2
  other:
    redis: false
    distribution: random
    listen: localhost:22123
    backlog: 64
    client_connections: 100
    servers:
      - memcached.internal:11211:1
)");
  const Config& c = r.config;
  CHECK(c.workers == 3);

  REQUIRE(c.listeners.size() == 3);
  CHECK(c.listeners[0].name == "mc");
  CHECK(c.listeners[0].host == "127.0.0.1");
  CHECK(c.listeners[0].port == 22122);
  CHECK(c.listeners[0].protocol == Protocol::kMemcached);
  CHECK(c.listeners[0].pool == "cache");
  CHECK(c.listeners[0].backlog == 511);
  CHECK(c.listeners[1].name == "mc-v6");
  CHECK(c.listeners[1].host == "::1");
  CHECK(c.listeners[1].port == 0);
  CHECK(c.listeners[1].pool == "other");
  CHECK(c.listeners[1].backlog == 1024);
  // The pool-level listen comes after the listeners list, named after its pool.
  CHECK(c.listeners[2].name == "other");
  CHECK(c.listeners[2].host == "localhost");
  CHECK(c.listeners[2].port == 22123);
  CHECK(c.listeners[2].protocol == Protocol::kMemcached);
  CHECK(c.listeners[2].pool == "other");
  CHECK(c.listeners[2].backlog == 64);
  CHECK(c.listeners[2].where.line == 38);
  CHECK(c.listeners[2].where.column == 13);

  CHECK(c.limits.item_size_max == 2 * 1024 * 1024);
  CHECK(c.limits.request_line_max == 16 * 1024);
  CHECK(c.limits.client_pipeline_max == 128);
  CHECK(c.limits.client_output_max == 1024ull * 1024 * 1024);
  CHECK(c.limits.reply_size_max == 3 * 1024 * 1024);

  REQUIRE(c.pools.size() == 2);
  const PoolConfig& p = c.pools[0];
  CHECK(p.name == "cache");
  CHECK(p.protocol == Protocol::kMemcached);
  CHECK(p.distribution == Distribution::kModula);
  CHECK(p.hash == HashFunction::kMurmur);
  CHECK(p.hash_tag == "{}");
  CHECK(p.timeout == std::chrono::milliseconds(250));
  CHECK(p.connect_timeout == std::chrono::milliseconds(50));
  CHECK(p.server_connections == 4);
  CHECK(p.preconnect);
  CHECK(p.tcpkeepalive);
  CHECK(p.auto_eject_hosts);
  CHECK(p.server_retry_timeout == std::chrono::milliseconds(5000));
  CHECK(p.server_failure_limit == 7);
  CHECK(p.allow_flush);
  REQUIRE(p.servers.size() == 2);
  CHECK(p.servers[0].spec == "127.0.0.1:21211:1");
  CHECK(p.servers[0].host == "127.0.0.1");
  CHECK(p.servers[0].port == 21211);
  CHECK(p.servers[0].weight == 1);
  CHECK(p.servers[0].name.empty());
  CHECK(p.servers[0].identity == "127.0.0.1:21211");
  CHECK(p.servers[1].weight == 3);
  CHECK(p.servers[1].name == "cache-2");
  CHECK(p.servers[1].identity == "cache-2");
  CHECK(p.servers[1].where.line == 34);
  CHECK(p.servers[1].where.column == 9);

  const PoolConfig& o = c.pools[1];
  CHECK(o.name == "other");
  CHECK(o.protocol == Protocol::kMemcached);
  CHECK(o.distribution == Distribution::kRandom);
  REQUIRE(o.servers.size() == 1);
  CHECK(o.servers[0].host == "memcached.internal");
  CHECK(o.servers[0].identity == "memcached.internal");
}

TEST_CASE("workers", "[config]") {
  auto config = [](std::string_view workers) {
    return std::string(workers) + "\n" + yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
)");
  };
  CHECK(require_ok(config("workers: 0")).config.workers == expected_auto_workers());
  CHECK(require_ok(config("workers: 1")).config.workers == 1);
  CHECK(require_ok(config("workers: 256")).config.workers == 256);
  require_error(config("workers: 257"), {"workers", 1, 10, "must be at most 256, got 257"});
  require_error(config("workers: -1"), {"workers", 1, 10, "must not be negative, got -1"});
  require_error(config("workers: two"), {"workers", 1, 10, "expected an integer, got 'two'"});
}

TEST_CASE("log_format", "[config]") {
  auto config = [](std::string_view line) {
    return std::string(line) + "\n" + yaml(R"(
listeners:
  - {name: mc, listen: 127.0.0.1:22122, pool: cache}
pools:
  cache: {servers: [127.0.0.1:21211:1]}
)");
  };
  CHECK(require_ok(config("")).config.log_format == LogFormat::kText);
  CHECK(require_ok(config("log_format: text")).config.log_format == LogFormat::kText);
  CHECK(require_ok(config("log_format: json")).config.log_format == LogFormat::kJson);
  require_error(config("log_format: jsn"),
                {"log_format", 1, 13, "unknown log_format 'jsn' (did you mean 'json'?)"});
}

TEST_CASE("integers must be integers", "[config]") {
  struct Case {
    std::string line;
    int column;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"timeout: 12abc", 14, "expected an integer, got '12abc'"},
      {"timeout: 1.5", 14, "expected an integer, got '1.5'"},
      {"timeout: 1e3", 14, "expected an integer, got '1e3'"},
      {"timeout: 0x10", 14, "expected an integer, got '0x10'"},
      {"timeout: +5", 14, "expected an integer, got '+5'"},
      {"timeout: true", 14, "expected an integer, got 'true'"},
      {"timeout: \"400\"", 14, "expected an integer, got the quoted string '400'"},
      {"timeout: [400]", 14, "expected an integer, got a list"},
      {"timeout: {ms: 400}", 14, "expected an integer, got a map"},
      // An empty value is reported at its key: yaml-cpp marks it at the next token.
      {"timeout:", 5, "expected an integer, got nothing"},
      {"timeout: ~", 5, "expected an integer, got nothing"},
      {"timeout: 0", 14, "must be at least 1, got 0"},
      {"timeout: -400", 14, "must be at least 1, got -400"},
      {"timeout: 86400001", 14, "must be at most 86400000"},
      {"timeout: 99999999999999999999", 14, "must be at most 86400000"},
      {"timeout: -99999999999999999999", 14, "must be at least 1, got -99999999999999999999"},
      {"timeout: 9999999999999999999", 14, "must be at most 86400000"},
      {"connect_timeout: 0", 22, "must be at least 1, got 0"},
      {"server_retry_timeout: -1", 27, "must be at least 1, got -1"},
      {"server_connections: 0", 25, "must be at least 1, got 0"},
      {"server_connections: 1025", 25, "must be at most 1024, got 1025"},
      {"dedicated_connections: -1", 28, "must not be negative, got -1"},
      {"dedicated_connections: 1025", 28, "must be at most 1024, got 1025"},
      {"server_failure_limit: 0", 27, "must be at least 1, got 0"},
      {"client_connections: -1", 25, "must not be negative, got -1"},
      {"client_connections: many", 25, "expected an integer, got 'many'"},
  };
  for (const auto& c : cases) {
    INFO(c.line);
    const std::string key = c.line.substr(0, c.line.find(':'));
    require_error(with_pool_line(c.line), {"pools.cache." + key, 9, c.column, c.message});
  }
  CHECK(require_ok(with_pool_line("dedicated_connections: 0"))
            .config.pools[0]
            .dedicated_connections == 0);
  // Explicitly tagged integers are integers.
  CHECK(require_ok(with_pool_line("timeout: !!int 400")).config.pools[0].timeout.count() == 400);
  CHECK(require_ok(with_pool_line("timeout: 0400")).config.pools[0].timeout.count() == 400);
}

TEST_CASE("booleans must be YAML booleans", "[config]") {
  for (std::string_view key : {"preconnect", "tcpkeepalive", "auto_eject_hosts", "allow_flush"}) {
    INFO(key);
    const std::string k(key);
    const int column = static_cast<int>(k.size()) + 7;
    const std::string path = "pools.cache." + k;
    require_error(with_pool_line(k + ": yes"),
                  {path, 9, column, "expected true or false, got 'yes'"});
    require_error(with_pool_line(k + ": on"),
                  {path, 9, column, "expected true or false, got 'on'"});
    require_error(with_pool_line(k + ": 1"), {path, 9, column, "expected true or false, got '1'"});
    require_error(with_pool_line(k + ": \"true\""),
                  {path, 9, column, "expected true or false, got the quoted string 'true'"});
    require_error(with_pool_line(k + ":"), {path, 9, 5, "expected true or false, got nothing"});
    CHECK(require_ok(with_pool_line(k + ": True")).ok());
    CHECK(require_ok(with_pool_line(k + ": FALSE")).ok());
    CHECK(require_ok(with_pool_line(k + ": !!bool true")).ok());
  }
}

TEST_CASE("sizes take plain bytes or k/m/g suffixes", "[config]") {
  struct Case {
    std::string value;
    uint64_t bytes;
  };
  const std::vector<Case> good = {
      {"1024", 1024},
      {"1k", 1024},
      {"1K", 1024},
      {"512k", 512 * 1024},
      {"1m", 1024 * 1024},
      {"3M", 3 * 1024 * 1024},
      {"1g", 1024ull * 1024 * 1024},
      {"1G", 1024ull * 1024 * 1024},
      {"1048577", 1048577},
      {"\"2m\"", 2 * 1024 * 1024},
  };
  for (const auto& c : good) {
    INFO(c.value);
    const LoadResult r = require_ok(with_limit_line("client_output_max: " + c.value));
    CHECK(r.config.limits.client_output_max == c.bytes);
  }
  CHECK(require_ok(with_limit_line("request_line_max: 1k")).config.limits.request_line_max == 1024);

  struct Bad {
    std::string value;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {"1.5m", "expected a size in bytes, optionally with a k, m or g suffix, got '1.5m'"},
      {"1t", "expected a size in bytes, optionally with a k, m or g suffix, got '1t'"},
      {"1kb", "expected a size in bytes, optionally with a k, m or g suffix, got '1kb'"},
      {"k", "expected a size in bytes, optionally with a k, m or g suffix, got 'k'"},
      {"12abc", "expected a size"},
      {"-1k", "expected a size"},
      {"1 m", "expected a size"},
      {"[1]", "expected a size in bytes, optionally with a k, m or g suffix, got a list"},
      {"0", "must be between 1k and 1g, got 0"},
      {"1023", "must be between 1k and 1g, got 1023"},
      {"1073741825", "must be between 1k and 1g, got 1073741825"},
      {"2g", "must be between 1k and 1g, got 2g"},
      {"99999999999999999g", "must be between 1k and 1g, got 99999999999999999g"},
      {"999999999999999999999999", "must be between 1k and 1g, got 999999999999999999999999"},
  };
  for (std::string_view key : {"item_size_max", "request_line_max", "client_output_max"}) {
    for (const auto& c : bad) {
      INFO(key << ": " << c.value);
      const std::string k(key);
      require_error(with_limit_line(k + ": " + c.value),
                    {"limits." + k, 10, static_cast<int>(k.size()) + 5, c.message});
    }
  }
  // reply_size_max is also checked against item_size_max, so test its bounds with a small item.
  require_error(with_limit_line("reply_size_max: 512"),
                {"limits.reply_size_max", 10, 19, "must be between 1k and 1g, got 512"});

  require_error(with_limit_line("client_pipeline_max: 0"),
                {"limits.client_pipeline_max", 10, 24, "must be at least 1, got 0"});
  require_error(with_limit_line("client_pipeline_max: 1048577"),
                {"limits.client_pipeline_max", 10, 24, "must be at most 1048576"});
  require_error(with_limit_line("client_pipeline_max: 4k"),
                {"limits.client_pipeline_max", 10, 24, "expected an integer, got '4k'"});
}

TEST_CASE("a reply cap below the item cap is an error", "[config]") {
  require_error(with_limit_line("reply_size_max: 512k"),
                {"limits.reply_size_max", 10, 19,
                 "reply_size_max (512k) must not be smaller than item_size_max (1m)"});
  require_error(with_limit_line("item_size_max: 128m"),
                {"limits.item_size_max", 10, 18,
                 "reply_size_max (64m) must not be smaller than item_size_max (128m)"});
  CHECK(require_ok(with_limit_line("reply_size_max: 1m")).ok());
}

TEST_CASE("the hard output cap is at least the largest reply and the soft cap", "[config]") {
  require_error(with_limit_line("client_output_hard_max: 32m"),
                {"limits.client_output_hard_max", 10, 27,
                 "client_output_hard_max (32m) must not be smaller than reply_size_max (64m)"});
  CHECK(require_ok(with_limit_line("client_output_hard_max: 64m"))
            .config.limits.client_output_hard_max == 64u * 1024 * 1024);
  // Unless given, it follows a larger reply cap or soft cap.
  CHECK(require_ok(with_limit_line("reply_size_max: 512m")).config.limits.client_output_hard_max ==
        512u * 1024 * 1024);
  CHECK(
      require_ok(with_limit_line("client_output_max: 300m")).config.limits.client_output_hard_max ==
      300u * 1024 * 1024);
  CHECK(require_ok(with_limit_line("item_size_max: 2m")).config.limits.client_output_hard_max ==
        256u * 1024 * 1024);
}

TEST_CASE("an empty limits section is no limits", "[config]") {
  const LoadResult r = require_ok(with_limit_line("# item_size_max: 2m"));
  CHECK(r.config.limits.item_size_max == 1024 * 1024);
  require_error(with_limit_line("- 1m"), {"limits", 10, 3, "expected a map, got a list"});
}

TEST_CASE("enumerations", "[config]") {
  const std::vector<std::pair<std::string, HashFunction>> hashes = {
      {"one_at_a_time", HashFunction::kOneAtATime},
      {"md5", HashFunction::kMd5},
      {"crc16", HashFunction::kCrc16},
      {"crc32", HashFunction::kCrc32},
      {"crc32a", HashFunction::kCrc32a},
      {"fnv1_64", HashFunction::kFnv1_64},
      {"fnv1a_64", HashFunction::kFnv1a_64},
      {"fnv1_32", HashFunction::kFnv1_32},
      {"fnv1a_32", HashFunction::kFnv1a_32},
      {"hsieh", HashFunction::kHsieh},
      {"murmur", HashFunction::kMurmur},
      {"jenkins", HashFunction::kJenkins},
  };
  for (const auto& [name, hash] : hashes) {
    INFO(name);
    CHECK(require_ok(with_pool_line("hash: " + name)).config.pools[0].hash == hash);
    CHECK(to_string(hash) == name);
  }
  const std::vector<std::pair<std::string, Distribution>> distributions = {
      {"ketama", Distribution::kKetama},
      {"modula", Distribution::kModula},
      {"random", Distribution::kRandom},
  };
  for (const auto& [name, distribution] : distributions) {
    INFO(name);
    CHECK(require_ok(with_pool_line("distribution: " + name)).config.pools[0].distribution ==
          distribution);
    CHECK(to_string(distribution) == name);
  }
  CHECK(to_string(Protocol::kMemcached) == "memcached");
  CHECK(to_string(Protocol::kRedis) == "redis");

  require_error(with_pool_line("hash: fnv1a64"),
                {"pools.cache.hash", 9, 11, "unknown hash 'fnv1a64' (did you mean 'fnv1a_64'?)"});
  require_error(with_pool_line("hash: sha256"),
                {"pools.cache.hash", 9, 11,
                 "unknown hash 'sha256' (expected one of: one_at_a_time, md5, crc16, crc32, "
                 "crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins)"});
  require_error(with_pool_line("distribution: consistent"),
                {"pools.cache.distribution", 9, 19,
                 "unknown distribution 'consistent' (expected one of: ketama, modula, random)"});
  require_error(with_pool_line("distribution: Ketama"),
                {"pools.cache.distribution", 9, 19, "(did you mean 'ketama'?)"});
  require_error(
      with_pool_line("protocol: memcache"),
      {"pools.cache.protocol", 9, 15, "unknown protocol 'memcache' (did you mean 'memcached'?)"});
  require_error(with_pool_line("hash: [md5]"),
                {"pools.cache.hash", 9, 11, "expected a string, got a list"});
}

TEST_CASE("hash_tag is exactly two characters", "[config]") {
  CHECK(require_ok(with_pool_line("hash_tag: \"{}\"")).config.pools[0].hash_tag == "{}");
  CHECK(require_ok(with_pool_line("hash_tag: ab")).config.pools[0].hash_tag == "ab");
  require_error(with_pool_line("hash_tag: \"{\""),
                {"pools.cache.hash_tag", 9, 15, "must be exactly two characters"});
  require_error(with_pool_line("hash_tag: \"{{}}\""),
                {"pools.cache.hash_tag", 9, 15, "must be exactly two characters"});
  require_error(with_pool_line("hash_tag: \"\""),
                {"pools.cache.hash_tag", 9, 15, "must be exactly two characters"});
  // Unquoted, {} is an empty YAML map.
  require_error(with_pool_line("hash_tag: {}"),
                {"pools.cache.hash_tag", 9, 15, "expected a string, got a map"});
}

TEST_CASE("unknown keys", "[config]") {
  require_error(R"(
worker: 2
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
)",
                {"worker", 1, 1, "unknown key 'worker' (did you mean 'workers'?)"});
  require_error(with_pool_line("tiemout: 400"),
                {"pools.cache.tiemout", 9, 5, "unknown key 'tiemout' (did you mean 'timeout'?)"});
  require_error(with_pool_line("auto_eject_host: true"),
                {"pools.cache.auto_eject_host", 9, 5, "(did you mean 'auto_eject_hosts'?)"});
  require_error(with_listener_line("bakclog: 10"),
                {"listeners[0].bakclog", 9, 5, "unknown key 'bakclog' (did you mean 'backlog'?)"});
  require_error(with_limit_line("item_size: 1m"),
                {"limits.item_size", 10, 3, "unknown key 'item_size'"});
  // No suggestion when nothing is close.
  const LoadResult r = load(with_pool_line("sentinel: true"));
  require_errors(r, {{"pools.cache.sentinel", 9, 5, "unknown key 'sentinel'"}});
  CHECK(r.errors[0].message == "unknown key 'sentinel'");
}

TEST_CASE("duplicate keys", "[config]") {
  require_error(with_pool_line("servers: [127.0.0.1:21212:1]"),
                {"pools.cache.servers", 9, 5, "duplicate key 'servers' (first defined at 7:5)"});
  require_error(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
  cache:
    servers:
      - 127.0.0.1:21212:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
)",
                {"pools.cache", 5, 3, "duplicate pool 'cache' (first defined at 2:3)"});
  require_error(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  other:
    servers:
      - 127.0.0.1:21212:1
)",
                {"pools", 9, 1, "duplicate key 'pools' (first defined at 1:1)"});
  require_error(with_listener_line("pool: cache"),
                {"listeners[0].pool", 9, 5, "duplicate key 'pool' (first defined at 8:5)"});
}

TEST_CASE("servers", "[config]") {
  require_error(with_server("127.0.0.1:21211:0"),
                {"pools.cache.servers[0]", 8, 9, "server '127.0.0.1:21211:0' has a zero weight"});
  require_error(with_server("127.0.0.1:21211"),
                {"pools.cache.servers[0]", 8, 9, "is not in the form host:port:weight [name]"});
  require_error(with_server("/var/run/memcached.sock:1"),
                {"pools.cache.servers[0]", 8, 9, "unix sockets are not supported"});
  require_error(
      with_server("127.0.0.1:70000:1"),
      {"pools.cache.servers[0]", 8, 9, "has an invalid port '70000' (must be 1 to 65535)"});
  require_error(with_server("{host: a}"),
                {"pools.cache.servers[0]", 8, 9, "expected a string, got a map"});

  const std::string no_servers_key = yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    timeout: 100
)");
  require_error(no_servers_key, {"pools.cache", 6, 3, "missing required key 'servers'"});

  const std::string head = yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
)");
  require_error(head + "    servers: []\n",
                {"pools.cache.servers", 7, 14, "must list at least one server"});
  require_error(head + "    servers:\n",
                {"pools.cache.servers", 7, 5, "must list at least one server"});
  require_error(
      head + "    servers: 127.0.0.1:21211:1\n",
      {"pools.cache.servers", 7, 14,
       "expected a list of \"host:port:weight [name]\" strings, got '127.0.0.1:21211:1'"});
  require_error(head + "    servers\n", {"pools.cache", 7, 5, "expected a map, got 'servers'"});
}

TEST_CASE("duplicate servers within a pool", "[config]") {
  const std::string head = yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
)");
  // Same address (IPv6 compared in canonical form), however weighted or named.
  require_errors(load(head + "      - 127.0.0.1:21211:1 a\n      - 127.0.0.1:21211:2 b\n"),
                 {{"pools.cache.servers[1]", 9, 9,
                   "duplicate server '127.0.0.1:21211' (same address as servers[0])"}});
  require_errors(load(head + "      - \"[::1]:21211:1\"\n      - \"[0:0::1]:21211:1\"\n"),
                 {{"pools.cache.servers[1]", 9, 9,
                   "duplicate server '[::1]:21211' (same address as servers[0])"}});
  require_errors(load(head + "      - Cache.Example:21211:1\n      - cache.example.:21211:1\n"),
                 {{"pools.cache.servers[1]", 9, 9,
                   "duplicate server 'cache.example:21211' (same address as servers[0])"}});
  // Same name.
  require_errors(
      load(head + "      - 127.0.0.1:21211:1 a\n      - 127.0.0.1:21212:1 b\n"
                  "      - 127.0.0.1:21213:1 a\n"),
      {{"pools.cache.servers[2]", 10, 9, "duplicate server name 'a' (same as servers[0])"}});
  // A name equal to another server's implicit identity would share its ketama points.
  require_errors(load(head + "      - 10.0.0.1:21211:1\n      - 10.0.0.2:21211:1 10.0.0.1:21211\n"),
                 {{"pools.cache.servers[1]", 9, 9,
                   "server identity '10.0.0.1:21211' is the same as servers[0]'s"}});
  // Same host on different ports is fine.
  CHECK(require_ok(head + "      - 127.0.0.1:21211:1\n      - 127.0.0.1:21212:1\n").ok());
}

TEST_CASE("listen addresses", "[config]") {
  struct Good {
    std::string text;
    std::string host;
    uint16_t port;
  };
  const std::vector<Good> good = {
      {"127.0.0.1:22122", "127.0.0.1", 22122}, {"0.0.0.0:11211", "0.0.0.0", 11211},
      {"\"[::1]:22122\"", "::1", 22122},       {"\"[::]:1\"", "::", 1},
      {"localhost:65535", "localhost", 65535}, {"127.0.0.1:0", "127.0.0.1", 0},
  };
  for (const auto& c : good) {
    INFO(c.text);
    const LoadResult r = require_ok(with_listen(c.text));
    CHECK(r.config.listeners[0].host == c.host);
    CHECK(r.config.listeners[0].port == c.port);
  }

  struct Bad {
    std::string text;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {"127.0.0.1", "'127.0.0.1' is not in the form host:port"},
      {"\"127.0.0.1:\"", "'127.0.0.1:' has an invalid port '' (must be 0 to 65535)"},
      {"127.0.0.1:65536", "has an invalid port '65536' (must be 0 to 65535)"},
      {"127.0.0.1:http", "has an invalid port 'http'"},
      {":22122", "':22122' has an empty host"},
      {"::1:22122", "has an IPv6 address without brackets (write it as [::1]:port)"},
      {"\"[::1]22122\"", "'[::1]22122' is not in the form host:port"},
      {"\"[::1:22122\"", "has an unterminated IPv6 address"},
      {"\"[::g]:22122\"", "has an invalid IPv6 address '[::g]'"},
      {"300.0.0.1:22122", "has an invalid IPv4 address '300.0.0.1'"},
      {"my_host!:22122", "has an invalid host name 'my_host!'"},
      {"a..b:22122", "has an invalid host name 'a..b'"},
      {"/tmp/cachegate.sock",
       "'/tmp/cachegate.sock' is a unix socket path; unix sockets are not "
       "supported"},
      {"22122", "'22122' is not in the form host:port"},
      {"[22122]", "expected a string, got a list"},
  };
  for (const auto& c : bad) {
    INFO(c.text);
    require_error(with_listen(c.text), {"listeners[0].listen", 7, 13, c.message});
  }
}

TEST_CASE("listeners", "[config]") {
  const std::string pools = yaml(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
)");  // 4 lines: listeners start at line 5
  SECTION("required keys") {
    require_errors(load(pools + yaml(R"(
listeners:
  - listen: 127.0.0.1:22122
)")),
                   {{"listeners[0]", 6, 5, "missing required key 'name'"},
                    {"listeners[0]", 6, 5, "missing required key 'pool'"}});
    require_errors(load(pools + yaml(R"(
listeners:
  - name: mc
    pool: cache
)")),
                   {{"listeners[0]", 6, 5, "missing required key 'listen'"}});
    require_error(pools + "listeners:\n  - mc\n",
                  {"listeners[0]", 6, 5, "expected a map, got 'mc'"});
    require_error(pools + "listeners:\n  name: mc\n",
                  {"listeners", 6, 3, "expected a list of listeners, got a map"});
  }
  SECTION("names") {
    require_error(pools + yaml(R"(
listeners:
  - name: ""
    listen: 127.0.0.1:22122
    pool: cache
)"),
                  {"listeners[0].name", 6, 11, "must not be empty"});
    require_error(
        pools + yaml(R"(
listeners:
  - name: my listener
    listen: 127.0.0.1:22122
    pool: cache
)"),
        {"listeners[0].name", 6, 11, "'my listener' contains whitespace or control characters"});
    require_error(
        pools + yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
  - name: mc
    listen: 127.0.0.1:22123
    pool: cache
)"),
        {"listeners[1].name", 9, 11, "duplicate listener name 'mc' (first defined at 6:11)"});
  }
  SECTION("addresses") {
    require_error(pools + yaml(R"(
listeners:
  - name: a
    listen: 127.0.0.1:22122
    pool: cache
  - name: b
    listen: 127.0.0.1:22122
    pool: cache
)"),
                  {"listeners[1].listen", 10, 13,
                   "listener 'b' uses address '127.0.0.1:22122' already used by listener 'a' "
                   "(defined at 7:13)"});
    require_error(pools + yaml(R"(
listeners:
  - name: a
    listen: "[::1]:22122"
    pool: cache
  - name: b
    listen: "[0::1]:22122"
    pool: cache
)"),
                  {"listeners[1].listen", 10, 13, "already used by listener 'a'"});
    // Port 0 picks a free port each time; the same host on different ports is fine.
    CHECK(require_ok(pools + yaml(R"(
listeners:
  - name: a
    listen: 127.0.0.1:0
    pool: cache
  - name: b
    listen: 127.0.0.1:0
    pool: cache
  - name: c
    listen: 127.0.0.1:22122
    pool: cache
  - name: d
    listen: 127.0.0.2:22122
    pool: cache
)"))
              .config.listeners.size() == 4);
  }
  SECTION("pool references") {
    require_error(pools + yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cahce
)"),
                  {"listeners[0].pool", 8, 11, "no pool named 'cahce' (did you mean 'cache'?)"});
    const LoadResult r = load(pools + yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: sessions
)"));
    require_errors(r, {{"listeners[0].pool", 8, 11, "no pool named 'sessions'"}});
    CHECK(r.errors[0].message == "no pool named 'sessions'");
  }
  SECTION("backlog") {
    CHECK(require_ok(with_listener_line("backlog: 65535")).config.listeners[0].backlog == 65535);
    require_error(with_listener_line("backlog: 0"),
                  {"listeners[0].backlog", 9, 14, "must be at least 1, got 0"});
    require_error(with_listener_line("backlog: 65536"),
                  {"listeners[0].backlog", 9, 14, "must be at most 65535, got 65536"});
  }
  SECTION("protocol") {
    CHECK(require_ok(with_listener_line("protocol: memcached")).config.listeners[0].protocol ==
          Protocol::kMemcached);
    require_error(with_listener_line("protocol: redis"),
                  {"listeners[0].protocol", 9, 15,
                   "protocol redis does not match pool 'cache''s protocol memcached"});
    require_error(yaml(R"(
pools:
  cache:
    protocol: redis
    servers:
      - 127.0.0.1:6379:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    protocol: memcached
    pool: cache
)"),
                  {"listeners[0].protocol", 9, 15,
                   "protocol memcached does not match pool 'cache''s protocol redis"});
  }
}

TEST_CASE("pool protocol and twemproxy's redis key", "[config]") {
  CHECK(require_ok(with_pool_line("redis: false")).config.pools[0].protocol ==
        Protocol::kMemcached);
  CHECK(require_ok(with_pool_line("protocol: memcached")).ok());
  // The listener takes its pool's protocol when it names none.
  const LoadResult redis = require_ok(with_pool_line("protocol: redis"));
  CHECK(redis.config.pools[0].protocol == Protocol::kRedis);
  CHECK(redis.config.listeners[0].protocol == Protocol::kRedis);
  CHECK(require_ok(with_pool_line("redis: true")).config.pools[0].protocol == Protocol::kRedis);
  require_error(with_pool_line("redis: 1"),
                {"pools.cache.redis", 9, 12, "expected true or false, got '1'"});

  const std::string head = yaml(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
)");
  CHECK(require_ok(head + "    protocol: memcached\n    redis: false\n").ok());
  // Reported at whichever of the two comes second.
  require_error(head + "    protocol: memcached\n    redis: true\n",
                {"pools.cache.redis", 10, 12, "protocol: memcached contradicts redis: true"});
  require_error(head + "    redis: false\n    protocol: redis\n",
                {"pools.cache.protocol", 10, 15, "protocol: redis contradicts redis: false"});
}

// A redis pool (line 7) with one more line at line 8, column 5.
std::string with_redis_pool_line(std::string_view line) {
  return yaml(R"(
listeners:
  - name: r
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    redis: true
)") + "    " +
         std::string(line) + "\n    servers:\n      - 127.0.0.1:6379:1\n";
}

TEST_CASE("twemproxy's redis_auth and redis_db, and redis_auth_file", "[config]") {
  const LoadResult r = require_ok(with_redis_pool_line("redis_auth: s3cret-password"));
  CHECK(r.config.pools[0].server_password == "s3cret-password");
  CHECK(require_ok(with_redis_pool_line("redis_db: 3")).config.pools[0].redis_db == 3);
  CHECK(require_ok(with_redis_pool_line("redis_db: 0")).config.pools[0].redis_db == 0);

  // The value is a password: it must not appear in any message.
  const LoadResult wrong = load(with_pool_line("redis_auth: s3cret-password"));
  require_errors(wrong, {{"pools.cache.redis_auth", 9, 17, "only for redis pools"}});
  CHECK(format_errors(wrong).find("s3cret") == std::string::npos);
  require_error(with_redis_pool_line("redis_auth: [a]"),
                {"pools.cache.redis_auth", 8, 17, "expected a string, got a list"});
  require_error(with_redis_pool_line("redis_auth: ''"),
                {"pools.cache.redis_auth", 8, 17, "must not be empty"});
  require_error(with_pool_line("redis_db: 3"),
                {"pools.cache.redis_db", 9, 15, "only for redis pools"});
  require_error(with_redis_pool_line("redis_db: -1"),
                {"pools.cache.redis_db", 8, 15, "must not be negative, got -1"});
  require_error(with_redis_pool_line("redis_db: db3"),
                {"pools.cache.redis_db", 8, 15, "expected an integer, got 'db3'"});

  testing::TempDir dir;
  const std::string file = dir.write_file("redis.pass", "from-a-file\n");
  CHECK(require_ok(with_redis_pool_line("redis_auth_file: " + file))
            .config.pools[0]
            .server_password == "from-a-file");
  require_error(with_redis_pool_line("redis_auth_file: " + dir.path() + "/missing"),
                {"pools.cache.redis_auth_file", 8, 22, "cannot read"});
  const std::string empty = dir.write_file("empty.pass", "\n");
  require_error(with_redis_pool_line("redis_auth_file: " + empty),
                {"pools.cache.redis_auth_file", 8, 22, "is empty"});
  require_error(
      yaml(R"(
listeners:
  - name: r
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    redis: true
    redis_auth: x
    redis_auth_file: )" +
           file + R"(
    servers:
      - 127.0.0.1:6379:1
)"),
      {"pools.cache.redis_auth_file", 9, 22, "give redis_auth or redis_auth_file, not both"});
}

TEST_CASE("client_connections is accepted and ignored", "[config]") {
  CHECK(require_ok(with_pool_line("client_connections: 0")).ok());
  CHECK(require_ok(with_pool_line("client_connections: 4096")).ok());
}

TEST_CASE("pool-level listen creates a listener named after the pool", "[config]") {
  const LoadResult r = require_ok(R"(
pools:
  sessions:
    listen: 127.0.0.1:22121
    backlog: 2048
    servers:
      - 127.0.0.1:21211:1
  plain:
    listen: "[::1]:22122"
    servers:
      - 127.0.0.1:21212:1
)");
  REQUIRE(r.config.listeners.size() == 2);
  const ListenerConfig& a = r.config.listeners[0];
  CHECK(a.name == "sessions");
  CHECK(a.pool == "sessions");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 22121);
  CHECK(a.protocol == Protocol::kMemcached);
  CHECK(a.backlog == 2048);
  CHECK(a.where.line == 3);
  CHECK(a.where.column == 13);
  const ListenerConfig& b = r.config.listeners[1];
  CHECK(b.name == "plain");
  CHECK(b.host == "::1");
  CHECK(b.backlog == 1024);

  require_error(with_pool_line("backlog: 100"),
                {"pools.cache.backlog", 9, 14, "applies only to a pool-level listen"});
  require_error(with_pool_line("listen: /tmp/cache.sock"),
                {"pools.cache.listen", 9, 13, "unix sockets are not supported"});

  // A pool-level listener clashes with explicit ones like any other listener.
  require_errors(
      load(R"(
listeners:
  - name: cache
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    listen: 127.0.0.1:22122
    servers:
      - 127.0.0.1:21211:1
)"),
      {{"pools.cache.listen", 7, 13, "duplicate listener name 'cache' (first defined at 2:11)"},
       {"pools.cache.listen", 7, 13,
        "listener 'cache' uses address '127.0.0.1:22122' already used by listener "
        "'cache' (defined at 3:13)"}});
  require_errors(
      load(R"(
pools:
  cache:
    listen: 127.0.0.1:22122
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: cache
    listen: 127.0.0.1:22123
    pool: cache
)"),
      {{"listeners[0].name", 7, 11, "duplicate listener name 'cache' (first defined at 3:13)"}});
}

TEST_CASE("pools and listeners are required", "[config]") {
  require_errors(
      load(R"(
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
)"),
      {{"pools", 1, 1, "no pools defined"}, {"listeners[0].pool", 4, 11, "no pool named 'cache'"}});
  require_errors(
      load(R"(
pools: {}
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
)"),
      {{"pools", 1, 8, "no pools defined"}, {"listeners[0].pool", 5, 11, "no pool named 'cache'"}});
  require_errors(
      load(R"(
pools:
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
)"),
      {{"pools", 1, 1, "no pools defined"}, {"listeners[0].pool", 5, 11, "no pool named 'cache'"}});
  require_errors(load(R"(
pools:
  - cache
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
)"),
                 {{"pools", 2, 3, "expected a map of pool names to pools, got a list"},
                  {"listeners[0].pool", 6, 11, "no pool named 'cache'"}});
  require_error(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
)",
                {"listeners", 1, 1, "no listeners defined"});
  require_error(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners: []
)",
                {"listeners", 5, 12, "no listeners defined"});
  require_error(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
)",
                {"listeners", 5, 1, "no listeners defined"});
}

TEST_CASE("pool names", "[config]") {
  require_error(R"(
pools:
  "my pool":
    listen: 127.0.0.1:22122
    servers:
      - 127.0.0.1:21211:1
)",
                {"pools.my pool", 2, 3, "'my pool' contains whitespace or control characters"});
  require_error(R"(
pools:
  "":
    listen: 127.0.0.1:22122
    servers:
      - 127.0.0.1:21211:1
)",
                {"pools", 2, 3, "must not be empty"});
  require_errors(load(R"(
pools:
  [a, b]:
    listen: 127.0.0.1:22122
    servers:
      - 127.0.0.1:21211:1
)"),
                 {{"listeners", 1, 1, "no listeners defined"},
                  {"pools", 2, 3, "keys must be strings, got a list"}});
}

TEST_CASE("documents that are not configurations", "[config]") {
  require_error("", {"", 1, 1, "empty configuration"});
  require_error("# nothing here\n\n", {"", 1, 1, "empty configuration"});
  require_error("~\n", {"", 1, 1, "empty configuration"});
  require_error("- a\n- b\n", {"", 1, 1, "expected a map of workers, listeners, pools and limits"});
  require_error("just text\n", {"", 1, 1, "at the top level, got 'just text'"});
  // A YAML syntax error is one error, where yaml-cpp found it.
  require_error(R"(
pools:
  cache:
    servers: [127.0.0.1:21211:1
listeners: []
)",
                {"", 4, 10, "end of sequence flow not found"});
  require_error("pools:\n  cache: 1\n    servers: 2\n", {"", 3, 12, "illegal map value"});
  require_errors(load(with_pool_line("") + "---\nworkers: 1\n"),
                 {{"", 10, 1, "only one YAML document is allowed"}});
  // yaml-cpp 0.7's LoadAll() loops forever on these (jbeder/yaml-cpp#1040).
  require_error(",\n", {"", 1, 1, "unexpected ','"});
  require_error(", workers: 1\n", {"", 1, 1, "unexpected ','"});
  require_error("# comment\n\n  , x\n", {"", 3, 3, "unexpected ','"});
  require_error("---\n,\n", {"", 2, 1, "unexpected ','"});
  require_error(with_pool_line("") + "---\n,\n", {"", 10, 1, "only one YAML document is allowed"});
}

TEST_CASE("all errors of a document are reported together, in document order", "[config]") {
  const LoadResult r = load(R"(
workers: many
listeners:
  - name: mc
    listen: 127.0.0.1:99999
    pool: missing
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
    protcol: memcached
limits:
  item_size_max: 1.5m
pools:
  cache:
    hash: fnv1a64
    timeout: -1
    servers:
      - 127.0.0.1:21211:0
      - 127.0.0.1:21212:1 x
      - 127.0.0.1:21213:1 x
  other:
    servers: []
    listen: 127.0.0.1:22122
)");
  require_errors(
      r, {
             {"workers", 1, 10, "expected an integer, got 'many'"},
             {"listeners[0].listen", 4, 13, "'127.0.0.1:99999' has an invalid port '99999'"},
             {"listeners[0].pool", 5, 11, "no pool named 'missing'"},
             {"listeners[1].name", 6, 11, "duplicate listener name 'mc' (first defined at 3:11)"},
             {"listeners[1].protcol", 9, 5, "unknown key 'protcol' (did you mean 'protocol'?)"},
             {"limits.item_size_max", 11, 18, "expected a size"},
             {"pools.cache.hash", 14, 11, "unknown hash 'fnv1a64' (did you mean 'fnv1a_64'?)"},
             {"pools.cache.timeout", 15, 14, "must be at least 1, got -1"},
             {"pools.cache.servers[0]", 17, 9, "has a zero weight"},
             {"pools.cache.servers[2]", 19, 9, "duplicate server name 'x' (same as servers[1])"},
             {"pools.other.servers", 21, 14, "must list at least one server"},
             {"pools.other.listen", 22, 13,
              "uses address '127.0.0.1:22122' already used by listener 'mc' (defined at 7:13)"},
         });
  CHECK(r.config.pools.empty());
  CHECK(r.config.listeners.empty());
  CHECK(r.config.source == "test.yaml");
}

TEST_CASE("format_errors writes one line per error", "[config]") {
  const LoadResult r = load_config_string("workers: x\nfoo: 1\n", "cachegate.yaml");
  CHECK(format_errors(r) ==
        "cachegate.yaml:1:1: pools: no pools defined\n"
        "cachegate.yaml:1:1: listeners: no listeners defined (add a listeners list, or a listen "
        "key to a pool)\n"
        "cachegate.yaml:1:10: workers: expected an integer, got 'x'\n"
        "cachegate.yaml:2:1: foo: unknown key 'foo'\n");
  CHECK(format_errors(load_config_string("", "empty.yaml")) ==
        "empty.yaml:1:1: empty configuration\n");
  CHECK(format_errors(require_ok(with_pool_line(""))).empty());
}

}  // namespace
}  // namespace cachegate::config
