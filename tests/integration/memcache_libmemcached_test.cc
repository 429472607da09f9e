// libmemcached, the C client most memcached users link, talking to cachegate as if it were one
// memcached server: thousands of keys spread by cachegate over three real servers, values up to
// 500 KB, multi-gets, cas, counters, deletes — with replies, and with noreply.

#include <libmemcached-1.0/memcached.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/memcache_cluster.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::MemcacheCluster;

constexpr size_t kKeys = 3000;
constexpr size_t kLargeValue = 500 * 1024;
constexpr size_t kMgetBatch = 250;

struct MemcDeleter {
  void operator()(memcached_st* m) const { memcached_free(m); }
};
using Memc = std::unique_ptr<memcached_st, MemcDeleter>;

Memc connect(uint16_t port, bool noreply) {
  Memc memc(memcached_create(nullptr));
  REQUIRE(memc);
  REQUIRE(memcached_server_add(memc.get(), "127.0.0.1", port) == MEMCACHED_SUCCESS);
  REQUIRE(memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1) ==
          MEMCACHED_SUCCESS);
  REQUIRE(memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 10000) ==
          MEMCACHED_SUCCESS);
  if (noreply)
    REQUIRE(memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_NOREPLY, 1) == MEMCACHED_SUCCESS);
  return memc;
}

std::string key_of(size_t i) {
  return std::to_string(i * 7919 % 100003) + ":lm:" + std::to_string(i);
}

// Mostly short values, every hundredth one large, all different.
std::string value_of(size_t i) {
  std::string v = "value-" + std::to_string(i) + "-";
  const size_t size = i % 100 == 0 ? kLargeValue - i % 7 : 10 + i % 300;
  while (v.size() < size)
    v += static_cast<char>('a' + (v.size() * 31 + i) % 26);
  v.resize(size);
  return v;
}

std::string describe(memcached_st* memc, memcached_return_t rc) {
  return memcached_strerror(memc, rc);
}

std::optional<std::string> get(memcached_st* memc, const std::string& key, uint32_t* flags,
                               memcached_return_t* rc_out = nullptr) {
  size_t length = 0;
  uint32_t f = 0;
  memcached_return_t rc;
  char* value = memcached_get(memc, key.data(), key.size(), &length, &f, &rc);
  if (rc_out) *rc_out = rc;
  if (value == nullptr) return std::nullopt;
  std::string out(value, length);
  std::free(value);
  if (flags) *flags = f;
  return out;
}

// memcached_mget over `keys`, then memcached_fetch_result until the end: key → (value, flags,
// cas).
struct Fetched {
  std::string value;
  uint32_t flags;
  uint64_t cas;
};
std::map<std::string, Fetched> mget(memcached_st* memc, const std::vector<std::string>& keys) {
  std::vector<const char*> pointers;
  std::vector<size_t> lengths;
  for (const auto& k : keys) {
    pointers.push_back(k.data());
    lengths.push_back(k.size());
  }
  memcached_return_t rc = memcached_mget(memc, pointers.data(), lengths.data(), keys.size());
  INFO(describe(memc, rc));
  REQUIRE(rc == MEMCACHED_SUCCESS);
  std::map<std::string, Fetched> out;
  // Caller-owned storage: a result libmemcached allocated itself is freed by the last fetch.
  memcached_result_st storage;
  memcached_result_st* result = memcached_result_create(memc, &storage);
  REQUIRE(result == &storage);
  while (memcached_fetch_result(memc, result, &rc) != nullptr) {
    REQUIRE(rc == MEMCACHED_SUCCESS);
    std::string key(memcached_result_key_value(result), memcached_result_key_length(result));
    out[key] = Fetched{std::string(memcached_result_value(result), memcached_result_length(result)),
                       memcached_result_flags(result), memcached_result_cas(result)};
  }
  memcached_result_free(result);
  CHECK((rc == MEMCACHED_END || rc == MEMCACHED_NOTFOUND));
  return out;
}

void store_all(MemcacheCluster& cluster, memcached_st* memc, bool noreply) {
  for (size_t i = 0; i < kKeys; ++i) {
    const std::string k = key_of(i), v = value_of(i);
    memcached_return_t rc =
        memcached_set(memc, k.data(), k.size(), v.data(), v.size(), 0, static_cast<uint32_t>(i));
    INFO("set " << k << ": " << describe(memc, rc));
    REQUIRE((rc == MEMCACHED_SUCCESS || (noreply && rc == MEMCACHED_BUFFERED)));
  }
  if (noreply) REQUIRE(memcached_flush_buffers(memc) == MEMCACHED_SUCCESS);
  // Spread over all three servers, as cachegate placed them.
  std::vector<std::string> sample;
  for (size_t i = 0; i < 300; ++i)
    sample.push_back(key_of(i));
  size_t held = 0;
  for (size_t s = 0; s < cluster.size(); ++s) {
    const size_t n = cluster.held_by(s, sample).size();
    CHECK(n > 30);
    held += n;
  }
  CHECK(held == sample.size());
}

void check_all(memcached_st* memc) {
  for (size_t start = 0; start < kKeys; start += kMgetBatch) {
    std::vector<std::string> keys;
    for (size_t i = start; i < start + kMgetBatch && i < kKeys; ++i)
      keys.push_back(key_of(i));
    keys.push_back("never-stored-" + std::to_string(start));
    auto fetched = mget(memc, keys);
    CHECK(fetched.size() == keys.size() - 1);
    for (size_t i = start; i < start + kMgetBatch && i < kKeys; ++i) {
      auto it = fetched.find(key_of(i));
      INFO("key " << key_of(i));
      REQUIRE(it != fetched.end());
      CHECK(it->second.value == value_of(i));
      CHECK(it->second.flags == i);
      CHECK(it->second.cas != 0);
    }
  }
}

TEST_CASE("libmemcached as the client, with replies", "[memcache][libmemcached]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  Memc memc = connect(cluster.port(), false);
  memcached_st* m = memc.get();

  store_all(cluster, m, false);
  check_all(m);

  SECTION("get, one key at a time") {
    for (size_t i = 0; i < kKeys; i += 7) {
      uint32_t flags = 0;
      auto v = get(m, key_of(i), &flags);
      INFO("key " << key_of(i));
      REQUIRE(v);
      CHECK(*v == value_of(i));
      CHECK(flags == i);
    }
    memcached_return_t rc;
    CHECK_FALSE(get(m, "not-there", nullptr, &rc));
    CHECK(rc == MEMCACHED_NOTFOUND);
  }

  SECTION("delete") {
    for (size_t i = 0; i < kKeys; i += 3) {
      const std::string k = key_of(i);
      CHECK(memcached_delete(m, k.data(), k.size(), 0) == MEMCACHED_SUCCESS);
    }
    for (size_t i = 0; i < 300; ++i) {
      memcached_return_t rc;
      auto v = get(m, key_of(i), nullptr, &rc);
      CHECK(v.has_value() == (i % 3 != 0));
      CHECK(rc == (i % 3 != 0 ? MEMCACHED_SUCCESS : MEMCACHED_NOTFOUND));
    }
    for (size_t i = 0; i < 300; i += 3)
      CHECK(cluster.holders(key_of(i)).empty());
    const std::string k = key_of(0);
    CHECK(memcached_delete(m, k.data(), k.size(), 0) == MEMCACHED_NOTFOUND);
  }

  SECTION("increment and decrement") {
    for (size_t c = 0; c < 30; ++c) {
      const std::string k = "counter-" + std::to_string(c);
      REQUIRE(memcached_set(m, k.data(), k.size(), "100", 3, 0, 0) == MEMCACHED_SUCCESS);
      uint64_t value = 0;
      CHECK(memcached_increment(m, k.data(), k.size(), static_cast<uint32_t>(c), &value) ==
            MEMCACHED_SUCCESS);
      CHECK(value == 100 + c);
      CHECK(memcached_decrement(m, k.data(), k.size(), 1, &value) == MEMCACHED_SUCCESS);
      CHECK(value == 99 + c);
      CHECK(cluster.holders(k).size() == 1);
    }
    uint64_t value = 0;
    CHECK(memcached_increment(m, "no-counter", 10, 1, &value) == MEMCACHED_NOTFOUND);
  }

  SECTION("cas with the unique from gets") {
    std::vector<std::string> keys;
    for (size_t i = 0; i < 200; ++i)
      keys.push_back(key_of(i));
    auto fetched = mget(m, keys);
    REQUIRE(fetched.size() == keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string& k = keys[i];
      const uint64_t cas = fetched[k].cas;
      const std::string v = "cas-" + std::to_string(i);
      CHECK(memcached_cas(m, k.data(), k.size(), v.data(), v.size(), 0, 7, cas) ==
            MEMCACHED_SUCCESS);
      // The old unique no longer matches.
      CHECK(memcached_cas(m, k.data(), k.size(), "late", 4, 0, 0, cas) == MEMCACHED_DATA_EXISTS);
      uint32_t flags = 0;
      CHECK(get(m, k, &flags) == v);
      CHECK(flags == 7);
    }
  }

  SECTION("add, replace, append, prepend") {
    const std::string k = key_of(1);
    CHECK(memcached_add(m, k.data(), k.size(), "x", 1, 0, 0) == MEMCACHED_NOTSTORED);
    CHECK(memcached_add(m, "fresh-key", 9, "x", 1, 0, 0) == MEMCACHED_SUCCESS);
    CHECK(memcached_replace(m, "absent-key", 10, "x", 1, 0, 0) == MEMCACHED_NOTSTORED);
    CHECK(memcached_replace(m, k.data(), k.size(), "mid", 3, 0, 0) == MEMCACHED_SUCCESS);
    CHECK(memcached_append(m, k.data(), k.size(), ">", 1, 0, 0) == MEMCACHED_SUCCESS);
    CHECK(memcached_prepend(m, k.data(), k.size(), "<", 1, 0, 0) == MEMCACHED_SUCCESS);
    CHECK(get(m, k, nullptr) == "<mid>");
  }
}

TEST_CASE("libmemcached as the client, with noreply", "[memcache][libmemcached][noreply]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  Memc memc = connect(cluster.port(), true);
  memcached_st* m = memc.get();

  store_all(cluster, m, true);
  check_all(m);

  // Writes that answer nothing, interleaved with reads that must still get their own replies.
  for (size_t i = 0; i < kKeys; i += 2) {
    const std::string k = key_of(i);
    memcached_return_t rc = memcached_delete(m, k.data(), k.size(), 0);
    CHECK((rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED));
    if (i % 100 == 0) {
      uint32_t flags = 0;
      const std::string next = key_of(i + 1);
      CHECK(get(m, next, &flags) == value_of(i + 1));
      CHECK(flags == i + 1);
    }
  }
  for (size_t i = 0; i < 400; ++i) {
    memcached_return_t rc;
    auto v = get(m, key_of(i), nullptr, &rc);
    INFO("key " << key_of(i));
    CHECK(v.has_value() == (i % 2 == 1));
  }
  for (size_t i = 0; i < 400; i += 2)
    CHECK(cluster.holders(key_of(i)).empty());

  // Counters: with noreply the new value is not known to the client, only to the servers.
  const std::string counter = "nr-counter";
  REQUIRE(memcached_set(m, counter.data(), counter.size(), "5", 1, 0, 0) != MEMCACHED_FAILURE);
  uint64_t ignored = 0;
  for (int i = 0; i < 10; ++i)
    memcached_increment(m, counter.data(), counter.size(), 3, &ignored);
  CHECK(memcached_flush_buffers(m) == MEMCACHED_SUCCESS);
  auto holders = cluster.holders(counter);
  REQUIRE(holders.size() == 1);
  CHECK(testing::eventually(
      [&] {
        auto v = cluster.direct_get(holders[0], counter);
        return v && v->substr(0, 2) == "35";
      },
      std::chrono::milliseconds(2000)));

  // The requests really went out with noreply: an incr of a non-number is refused by its
  // server, and cachegate drops that reply instead of passing it on (and counts it).
  testing::TextClient admin("127.0.0.1", cluster.port());
  auto discarded = [&] {
    auto stats = admin.call("stats\r\n", "get").value_or("");
    const std::string name = "STAT cachegate_noreply_discarded_errors ";
    const size_t p = stats.find(name);
    REQUIRE(p != std::string::npos);
    return std::stoull(stats.substr(p + name.size()));
  };
  const uint64_t before = discarded();
  const std::string text_key = key_of(3);
  memcached_increment(m, text_key.data(), text_key.size(), 1, &ignored);
  CHECK(get(m, text_key, nullptr) == value_of(3));
  CHECK(discarded() == before + 1);

  // cas under noreply: the write lands, the reply is not awaited.
  auto fetched = mget(m, {key_of(1)});
  REQUIRE(fetched.size() == 1);
  const std::string k = key_of(1);
  memcached_cas(m, k.data(), k.size(), "cas-nr", 6, 0, 9, fetched[k].cas);
  uint32_t flags = 0;
  CHECK(get(m, k, &flags) == "cas-nr");
  CHECK(flags == 9);
}

}  // namespace
}  // namespace cachegate
