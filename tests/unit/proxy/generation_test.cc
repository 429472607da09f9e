// What a configuration reload keeps: servers whose pool options and address are unchanged move to
// the new generation as the same objects (with their connections and health); anything else is
// made anew. Built from YAML as a reload would build it, without connecting anywhere.

#include "proxy/generation.h"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "config/load.h"

namespace cachegate::proxy {
namespace {

std::shared_ptr<const LoadedConfig> loaded(const std::string& yaml) {
  auto result = config::load_config_string(yaml, "test.yaml");
  INFO(config::format_errors(result));
  REQUIRE(result.ok());
  auto out = std::make_shared<LoadedConfig>();
  out->config = std::make_shared<config::Config>(std::move(result.config));
  for (const auto& pool : out->config->pools) {
    std::vector<boost::asio::ip::tcp::endpoint> endpoints;
    for (const auto& server : pool.servers)
      endpoints.emplace_back(boost::asio::ip::make_address(server.host), server.port);
    out->server_endpoints.push_back(endpoints);
    out->pool_tls.emplace_back();
  }
  for (size_t l = 0; l < out->config->listeners.size(); ++l) {
    out->listener_tls.emplace_back();
    out->open_connections.push_back(std::make_shared<std::atomic<uint32_t>>(0));
  }
  return out;
}

std::string config_with(const std::string& pool_a, const std::string& pool_b = "") {
  return "workers: 1\n"
         "listeners:\n"
         "  - {name: mc, listen: \"127.0.0.1:0\", pool: a}\n"
         "pools:\n"
         "  a: " +
         pool_a + "\n" + (pool_b.empty() ? "" : "  b: " + pool_b + "\n");
}

struct Fixture {
  boost::asio::io_context io{1};
  backends::Loop loop{io};
};

TEST_CASE("A reload keeps unchanged servers and makes new ones for what changed", "[reload]") {
  Fixture f;
  auto first = build_generation(
      f.loop, loaded(config_with("{servers: [\"127.0.0.1:7001:1 s1\", \"127.0.0.1:7002:1 s2\"]}")),
      nullptr);
  REQUIRE(first->pools.size() == 1);
  auto* s1 = first->pools[0].servers[0].get();
  auto* s2 = first->pools[0].servers[1].get();

  SECTION("the same configuration keeps every server") {
    auto next = build_generation(
        f.loop,
        loaded(config_with("{servers: [\"127.0.0.1:7001:1 s1\", \"127.0.0.1:7002:1 s2\"]}")),
        first.get());
    CHECK(next->pools[0].servers[0].get() == s1);
    CHECK(next->pools[0].servers[1].get() == s2);
    CHECK_FALSE(next->pools[0].fresh[0]);
    CHECK_FALSE(next->pools[0].fresh[1]);
    CHECK(next->pools[0].pool.get() != first->pools[0].pool.get());
    // Kept servers now read the new configuration.
    CHECK(&s1->pool_config() == &next->config().pools[0]);
  }
  SECTION("a server added, one removed, one moved: the moved one is kept at its new index") {
    auto next = build_generation(
        f.loop,
        loaded(config_with("{servers: [\"127.0.0.1:7002:1 s2\", \"127.0.0.1:7003:1 s3\"]}")),
        first.get());
    CHECK(next->pools[0].servers[0].get() == s2);
    CHECK_FALSE(next->pools[0].fresh[0]);
    CHECK(next->pools[0].fresh[1]);
    CHECK(&s2->config() == &next->config().pools[0].servers[0]);
    // The old generation still holds the server it alone had.
    CHECK(first->pools[0].servers[0].get() == s1);
  }
  SECTION("a weight or a name changes where keys go, not the server connections") {
    auto next = build_generation(
        f.loop,
        loaded(config_with("{servers: [\"127.0.0.1:7001:3 one\", \"127.0.0.1:7002:1 s2\"]}")),
        first.get());
    CHECK(next->pools[0].servers[0].get() == s1);
    CHECK(s1->name() == "127.0.0.1:7001:3 one");
  }
  SECTION("a changed timeout makes every server of the pool anew") {
    auto next = build_generation(
        f.loop,
        loaded(config_with(
            "{timeout: 250, servers: [\"127.0.0.1:7001:1 s1\", \"127.0.0.1:7002:1 s2\"]}")),
        first.get());
    CHECK(next->pools[0].servers[0].get() != s1);
    CHECK(next->pools[0].servers[1].get() != s2);
    CHECK(next->pools[0].fresh[0]);
  }
  SECTION("another pool of the same servers does not take them") {
    auto next = build_generation(
        f.loop,
        loaded(config_with("{servers: [\"127.0.0.1:7009:1\"]}",
                           "{servers: [\"127.0.0.1:7001:1 s1\", \"127.0.0.1:7002:1 s2\"]}")),
        first.get());
    CHECK(next->pools[1].servers[0].get() != s1);
    CHECK(next->pools[1].fresh[0]);
  }
  for (auto& g : {first})
    for (auto& pool : g->pools)
      for (auto& server : pool.servers)
        server->shutdown();
}

TEST_CASE("Server options that a kept server depends on", "[reload]") {
  config::PoolConfig a;
  a.name = "a";
  config::Limits limits;
  auto changed = [&](auto&& change) {
    config::PoolConfig b = a;
    config::Limits l = limits;
    change(b, l);
    return !same_server_options(a, b, limits, l);
  };
  CHECK_FALSE(changed([](config::PoolConfig&, config::Limits&) {}));
  CHECK_FALSE(changed([](config::PoolConfig& b, config::Limits&) { b.hash_tag = "{}"; }));
  CHECK_FALSE(changed([](config::PoolConfig& b, config::Limits&) { b.auto_eject_hosts = true; }));
  CHECK(changed([](config::PoolConfig& b, config::Limits&) { b.name = "b"; }));
  CHECK(changed(
      [](config::PoolConfig& b, config::Limits&) { b.timeout = std::chrono::milliseconds(5); }));
  CHECK(changed([](config::PoolConfig& b, config::Limits&) { b.server_connections = 2; }));
  CHECK(changed([](config::PoolConfig& b, config::Limits&) { b.server_password = "x"; }));
  CHECK(changed([](config::PoolConfig& b, config::Limits&) { b.redis_db = 1; }));
  CHECK(changed([](config::PoolConfig& b, config::Limits&) { b.tls = config::PoolTlsConfig{}; }));
  CHECK(changed([](config::PoolConfig& b, config::Limits& l) { l.reply_size_max = 1024; }));
}

TEST_CASE("config_hash_hex is lowercase SHA-256 hex", "[reload]") {
  CHECK(config_hash_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(config_hash_hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(config_hash_hex(std::string_view("a\0b", 3)) != config_hash_hex("ab"));
}

}  // namespace
}  // namespace cachegate::proxy
