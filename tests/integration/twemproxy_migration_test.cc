// Moving a fleet from twemproxy to cachegate, end to end: the same pool definition is given to a
// running nutcracker and (pasted unchanged under `pools:`) to cachegate, in front of the same
// memcached servers. Keys written through one proxy must all be found through the other, so a
// fleet switches proxies with its caches warm.

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/servers.h"
#include "tests/support/text_client.h"

namespace cachegate {
namespace {

using testing::CachegateServer;
using testing::MemcachedServer;
using testing::NutcrackerServer;
using testing::TextClient;

constexpr size_t kKeys = 3000;
constexpr size_t kBatch = 200;  // requests written before their replies are read
constexpr size_t kKeysPerGet = 40;

std::string key_for(size_t i) {
  // Varied lengths and characters, some with a hash tag.
  std::string key = "user:" + std::to_string(i * 7919 % 100003);
  if (i % 5 == 0) key += ":{group" + std::to_string(i % 17) + "}:profile";
  if (i % 3 == 0) key = "session/" + key + "/" + std::string(i % 23, 'x');
  return key;
}

std::string value_for(size_t i, const std::string& tag) {
  return tag + "-" + std::to_string(i);
}

// Stores every key through `port`, pipelined in batches, checking each STORED.
void store_all(uint16_t port, const std::string& tag) {
  TextClient client("127.0.0.1", port);
  for (size_t start = 0; start < kKeys; start += kBatch) {
    std::string batch;
    const size_t end = std::min(kKeys, start + kBatch);
    for (size_t i = start; i < end; ++i) {
      const std::string value = value_for(i, tag);
      batch +=
          "set " + key_for(i) + " 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n";
    }
    client.send(batch);
    for (size_t i = start; i < end; ++i)
      REQUIRE(client.read_line() == std::string("STORED"));
  }
}

// Reads every key through `port` with multi-key gets; returns how many came back with the
// value stored under `tag`.
size_t count_found(uint16_t port, const std::string& tag) {
  TextClient client("127.0.0.1", port);
  size_t found = 0;
  for (size_t start = 0; start < kKeys; start += kKeysPerGet) {
    const size_t end = std::min(kKeys, start + kKeysPerGet);
    std::string request = "get";
    for (size_t i = start; i < end; ++i)
      request += " " + key_for(i);
    request += "\r\n";
    auto reply = client.call(request, "get");
    REQUIRE(reply);
    for (size_t i = start; i < end; ++i) {
      const std::string value = value_for(i, tag);
      const std::string item =
          "VALUE " + key_for(i) + " 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n";
      if (reply->find(item) != std::string::npos) ++found;
    }
  }
  return found;
}

void flush_directly(std::vector<MemcachedServer>& servers) {
  for (auto& server : servers) {
    TextClient client("127.0.0.1", server.port());
    REQUIRE(client.call("flush_all\r\n") == std::string("OK\r\n"));
  }
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out += prefix + text.substr(pos, nl - pos) + "\n";
    pos = nl + 1;
  }
  return out;
}

TEST_CASE("a twemproxy pool pasted into cachegate finds every key twemproxy stored, and back",
          "[integration][twemproxy][migration]") {
  std::vector<MemcachedServer> servers(3);
  auto addr = [&](size_t i) { return servers[i].address(); };

  struct Pool {
    std::string label;
    std::string body;  // twemproxy pool keys, without `listen:`
  };
  const std::vector<Pool> pools = {
      {"ketama fnv1a_64, weights and names",
       "hash: fnv1a_64\ndistribution: ketama\ntimeout: 1000\nservers:\n"
       " - " +
           addr(0) + ":1 alpha\n - " + addr(1) + ":3 beta\n - " + addr(2) + ":2 gamma\n"},
      {"modula md5, host:port identities",
       "hash: md5\ndistribution: modula\ntimeout: 1000\nservers:\n"
       " - " +
           addr(0) + ":1\n - " + addr(1) + ":1\n - " + addr(2) + ":2\n"},
      {"ketama murmur with a hash tag",
       "hash: murmur\nhash_tag: \"{}\"\ndistribution: ketama\nauto_eject_hosts: true\n"
       "server_retry_timeout: 30000\nserver_failure_limit: 2\ntimeout: 1000\nservers:\n"
       " - " +
           addr(0) + ":1 one\n - " + addr(1) + ":1 two\n - " + addr(2) + ":1 three\n"},
      {"ketama crc32a, unequal weights",
       "hash: crc32a\ndistribution: ketama\ntimeout: 1000\nservers:\n"
       " - " +
           addr(0) + ":10\n - " + addr(1) + ":1\n - " + addr(2) + ":5\n"},
  };

  for (const auto& pool : pools) {
    SECTION(pool.label) {
      NutcrackerServer nutcracker({"fleet"}, {indent(pool.body, "  ")});
      CachegateServer cachegate("workers: 2\npools:\n  fleet:\n    listen: \"127.0.0.1:{port}\"\n" +
                                indent(pool.body, "    "));

      flush_directly(servers);
      store_all(nutcracker.port(), "tw");
      CHECK(count_found(cachegate.port(), "tw") == kKeys);

      flush_directly(servers);
      store_all(cachegate.port(), "cg");
      CHECK(count_found(nutcracker.port(), "cg") == kKeys);
    }
  }
}

}  // namespace
}  // namespace cachegate
