// Placement against a live twemproxy: one nutcracker serves a pool for every combination of
// distribution (ketama, modula), hash function (all twelve) and server list below, in front of
// real memcached servers. Keys are stored through each pool, every backend is then asked which
// keys it holds, and routing::Distribution must name exactly that backend for every key.

#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "routing/distribution.h"
#include "tests/support/servers.h"
#include "tests/support/text_client.h"

namespace cachegate {
namespace {

using D = config::Distribution;
using H = config::HashFunction;
using testing::MemcachedServer;
using testing::NutcrackerServer;
using testing::TextClient;

constexpr std::array<H, 12> kAllHashes = {
    H::kOneAtATime, H::kMd5,     H::kCrc16,    H::kCrc32, H::kCrc32a, H::kFnv1_64,
    H::kFnv1a_64,   H::kFnv1_32, H::kFnv1a_32, H::kHsieh, H::kMurmur, H::kJenkins,
};

// twemproxy's names for the `hash:` key, in config::HashFunction order.
const char* hash_name(H h) {
  static constexpr std::array<const char*, 12> kNames = {
      "one_at_a_time", "md5",     "crc16",    "crc32", "crc32a", "fnv1_64",
      "fnv1a_64",      "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins",
  };
  return kNames[static_cast<size_t>(h)];
}

const char* distribution_name(D d) {
  return d == D::kKetama ? "ketama" : "modula";
}

constexpr size_t kBackends = 6;
constexpr size_t kKeysPerPool = 2000;
// Requests written before their replies are read: enough to keep nutcracker busy, small enough
// that neither side's socket buffers fill while the other is not reading.
constexpr size_t kPipelineDepth = 400;
constexpr size_t kKeysPerGet = 100;

struct ListServer {
  size_t backend;  // index into the memcached servers
  uint32_t weight;
  std::string name;  // empty: twemproxy's identity is "127.0.0.1:<port>"
};

struct ServerList {
  std::string label;
  std::vector<ListServer> servers;
};

std::vector<ServerList> server_lists() {
  // twemproxy 0.5 hashes at most 272 characters of "<name>-<i>" for ketama points: with
  // 270-character names groups 10..39 are cut, with 271 all of them are.
  std::string long_name(269, 'x');
  return {
      // No names: identities are host:port (never port 11211 here), unequal weights.
      {"host:port", {{0, 1, ""}, {1, 2, ""}, {2, 1, ""}, {3, 3, ""}}},
      // Names of different lengths: twemproxy orders servers by name length, then bytes.
      {"named",
       {{0, 1, "cache-primary"},
        {1, 1, "b"},
        {2, 2, "aa"},
        {3, 1, "zz"},
        {4, 1, "m-01"},
        {5, 1, "m-1"}}},
      {"long names",
       {{0, 1, long_name + "a"},
        {1, 1, long_name + "bb"},
        {2, 2, long_name + "c"},
        {3, 1, long_name + "dd"}}},
      // Names and addresses mixed.
      {"mixed", {{5, 1, ""}, {4, 2, "east"}, {3, 1, ""}, {2, 1, "west"}, {1, 5, ""}}},
  };
}

struct PoolCase {
  const ServerList* list;
  D distribution;
  H hash;
  std::string hash_tag;
};

std::string identity_of(const ListServer& s, uint16_t port) {
  if (!s.name.empty()) return s.name;
  // libmemcached compatibility: port 11211 is left out of the identity.
  return port == 11211 ? "127.0.0.1" : "127.0.0.1:" + std::to_string(port);
}

std::string pool_yaml(const PoolCase& c, const std::vector<std::unique_ptr<MemcachedServer>>& mc) {
  std::ostringstream y;
  y << "  hash: " << hash_name(c.hash) << "\n"
    << "  distribution: " << distribution_name(c.distribution) << "\n"
    << "  timeout: 5000\n";
  if (!c.hash_tag.empty()) y << "  hash_tag: \"" << c.hash_tag << "\"\n";
  y << "  servers:\n";
  for (const auto& s : c.list->servers) {
    y << "   - 127.0.0.1:" << mc[s.backend]->port() << ":" << s.weight;
    if (!s.name.empty()) y << " " << s.name;
    y << "\n";
  }
  return y.str();
}

// Printable keys (no space: the text protocol separates on it) of varied length, some carrying
// hash tags, some with bytes >= 0x80, where several hashes read sign-extended chars.
std::vector<std::string> make_keys(std::mt19937& rng) {
  std::uniform_int_distribution<int> printable(0x21, 0x7e);
  std::uniform_int_distribution<int> high(0x80, 0xff);
  std::uniform_int_distribution<int> length(1, 48);
  std::uniform_int_distribution<int> kind(0, 9);
  std::set<std::string> keys;
  while (keys.size() < kKeysPerPool) {
    std::string key;
    int n = length(rng);
    int k = kind(rng);
    for (int i = 0; i < n; ++i) {
      char c = static_cast<char>(k == 0 ? high(rng) : printable(rng));
      key.push_back(c);
    }
    if (k == 1) key = "user:{" + key.substr(0, 6) + "}:" + key;
    if (k == 2) key = "order::" + key.substr(0, 4) + "::" + key;
    keys.insert(key);
  }
  return {keys.begin(), keys.end()};
}

void store_all(TextClient& client, const std::vector<std::string>& keys) {
  for (size_t start = 0; start < keys.size(); start += kPipelineDepth) {
    size_t end = std::min(keys.size(), start + kPipelineDepth);
    std::string batch;
    for (size_t i = start; i < end; ++i)
      batch += "set " + keys[i] + " 0 0 1\r\nx\r\n";
    client.send(batch);
    // Replies, not noreply: nutcracker answers in request order only once each backend has,
    // so the last STORED means every key is in place.
    for (size_t i = start; i < end; ++i) {
      auto line = client.read_line();
      REQUIRE(line);
      REQUIRE(*line == "STORED");
    }
  }
}

std::set<std::string> held_keys(TextClient& backend, const std::vector<std::string>& keys) {
  std::set<std::string> held;
  for (size_t start = 0; start < keys.size(); start += kKeysPerGet) {
    size_t end = std::min(keys.size(), start + kKeysPerGet);
    std::string command = "get";
    for (size_t i = start; i < end; ++i)
      command += " " + keys[i];
    backend.send(command + "\r\n");
    for (;;) {
      auto line = backend.read_line();
      REQUIRE(line);
      if (*line == "END") break;
      REQUIRE(line->rfind("VALUE ", 0) == 0);
      size_t key_end = line->find(' ', 6);
      held.insert(line->substr(6, key_end - 6));
      REQUIRE(backend.read_line());  // the one-byte value
    }
  }
  return held;
}

std::string printable(const std::string& key) {
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

TEST_CASE("placement matches nutcracker's for every hash and distribution",
          "[integration][routing][twemproxy]") {
  std::vector<std::unique_ptr<MemcachedServer>> memcached;
  for (size_t i = 0; i < kBackends; ++i)
    memcached.push_back(std::make_unique<MemcachedServer>());

  const std::vector<ServerList> lists = server_lists();
  std::vector<PoolCase> cases;
  for (const auto& list : lists)
    for (D d : {D::kKetama, D::kModula})
      for (H h : kAllHashes)
        cases.push_back({&list, d, h, ""});
  cases.push_back({&lists[1], D::kKetama, H::kFnv1a_64, "{}"});
  cases.push_back({&lists[3], D::kModula, H::kMurmur, "{}"});
  cases.push_back({&lists[0], D::kKetama, H::kMd5, "::"});
  cases.push_back({&lists[2], D::kModula, H::kHsieh, "::"});

  std::vector<std::string> names, bodies;
  for (size_t i = 0; i < cases.size(); ++i) {
    names.push_back("pool" + std::to_string(i));
    bodies.push_back(pool_yaml(cases[i], memcached));
  }
  NutcrackerServer nutcracker(names, bodies);

  std::vector<std::unique_ptr<TextClient>> backend_clients;
  for (const auto& m : memcached)
    backend_clients.push_back(std::make_unique<TextClient>("127.0.0.1", m->port()));

  std::mt19937 rng(20240611);
  size_t checked = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const PoolCase& c = cases[i];
    INFO("pool \"" << c.list->label << "\" " << distribution_name(c.distribution) << " "
                   << hash_name(c.hash) << " hash_tag \"" << c.hash_tag << "\"");
    std::vector<std::string> keys = make_keys(rng);

    TextClient client("127.0.0.1", nutcracker.port(i));
    store_all(client, keys);

    // Where nutcracker put each key, as an index into the pool's server list.
    std::vector<uint32_t> actual(keys.size(), routing::Distribution::kNoServer);
    for (uint32_t s = 0; s < c.list->servers.size(); ++s) {
      std::set<std::string> held = held_keys(*backend_clients[c.list->servers[s].backend], keys);
      for (size_t k = 0; k < keys.size(); ++k) {
        if (held.count(keys[k])) {
          REQUIRE(actual[k] == routing::Distribution::kNoServer);  // on one server only
          actual[k] = s;
        }
      }
    }
    for (auto& b : backend_clients)
      REQUIRE(b->call("flush_all\r\n") == "OK\r\n");

    std::vector<routing::RingServer> ring;
    for (const auto& s : c.list->servers)
      ring.push_back({identity_of(s, memcached[s.backend]->port()), s.weight});
    routing::Distribution distribution(c.distribution, c.hash, c.hash_tag, ring);

    size_t mismatches = 0;
    for (size_t k = 0; k < keys.size(); ++k) {
      REQUIRE(actual[k] != routing::Distribution::kNoServer);
      uint32_t expected = distribution.server_for(keys[k]);
      if (expected != actual[k] && ++mismatches <= 5) {
        UNSCOPED_INFO("key \"" << printable(keys[k]) << "\": nutcracker " << actual[k]
                               << ", cachegate " << expected);
      }
    }
    CHECK(mismatches == 0);
    checked += keys.size();
  }
  CHECK(checked == cases.size() * kKeysPerPool);
}

}  // namespace
}  // namespace cachegate
