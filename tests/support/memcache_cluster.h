#pragma once

// A memcached pool behind cachegate for integration tests: N real memcached servers and one
// cachegate in front of them, every process on a free loopback port. Header-only so it needs no
// change to the test support library's build.
//
// Where a key lives is always learnt from the servers themselves (a direct get), never computed:
// the tests check cachegate's placement, so they must not share its code.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/servers.h"
#include "tests/support/text_client.h"

namespace cachegate::testing {

struct ClusterOptions {
  size_t servers = 2;
  unsigned workers = 2;
  // Request timeout of the pool, in milliseconds.
  int timeout_ms = 400;
  bool allow_flush = true;
  // Further pool keys, one per line, without indentation ("auto_eject_hosts: true").
  std::vector<std::string> pool_keys;
  // Keys of the top-level `limits:` map, one per line, without indentation.
  std::vector<std::string> limits;
  // Extra command-line arguments for every memcached.
  std::vector<std::string> memcached_args;
};

// The cachegate YAML for `options` in front of memcached servers on `ports`.
inline std::string cluster_config(const ClusterOptions& options,
                                  const std::vector<uint16_t>& ports) {
  std::string y;
  y += "workers: " + std::to_string(options.workers) + "\n";
  y += "listeners:\n";
  y += "  - {name: mc, listen: \"127.0.0.1:{port}\", protocol: memcached, pool: cache}\n";
  if (!options.limits.empty()) {
    y += "limits:\n";
    for (const auto& line : options.limits)
      y += "  " + line + "\n";
  }
  y += "pools:\n";
  y += "  cache:\n";
  y += "    distribution: ketama\n";
  y += "    hash: fnv1a_64\n";
  y += "    timeout: " + std::to_string(options.timeout_ms) + "\n";
  y += std::string("    allow_flush: ") + (options.allow_flush ? "true" : "false") + "\n";
  for (const auto& line : options.pool_keys)
    y += "    " + line + "\n";
  y += "    servers:\n";
  for (size_t i = 0; i < ports.size(); ++i)
    y += "      - 127.0.0.1:" + std::to_string(ports[i]) + ":1 shard-" + std::to_string(i) + "\n";
  return y;
}

class MemcacheCluster {
 public:
  explicit MemcacheCluster(ClusterOptions options = {}) : options_(std::move(options)) {
    std::vector<uint16_t> ports;
    for (size_t i = 0; i < options_.servers; ++i) {
      servers_.push_back(std::make_unique<MemcachedServer>(options_.memcached_args));
      ports.push_back(servers_.back()->port());
    }
    proxy_ = std::make_unique<CachegateServer>(cluster_config(options_, ports));
  }

  // memcached takes about a second to exit on SIGTERM (it waits for its clock thread); its
  // data is throw-away here, so it is killed outright, after cachegate has stopped.
  ~MemcacheCluster() {
    proxy_.reset();
    for (auto& s : servers_)
      s->process().signal(SIGKILL);
  }
  MemcacheCluster(const MemcacheCluster&) = delete;
  MemcacheCluster& operator=(const MemcacheCluster&) = delete;

  const ClusterOptions& options() const { return options_; }
  size_t size() const { return servers_.size(); }
  MemcachedServer& server(size_t i) { return *servers_.at(i); }
  CachegateServer& proxy() { return *proxy_; }
  uint16_t port() const { return proxy_->port(); }

  // A new client connection to cachegate.
  std::unique_ptr<TextClient> client(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    return std::make_unique<TextClient>("127.0.0.1", proxy_->port(), timeout);
  }
  // A new client connection straight to memcached server `i`, bypassing cachegate.
  std::unique_ptr<TextClient> direct(size_t i) {
    return std::make_unique<TextClient>("127.0.0.1", servers_.at(i)->port());
  }

  // The value of `key` on server `i` (a direct get), or nullopt when that server lacks it.
  std::optional<std::string> direct_get(size_t i, const std::string& key) {
    auto c = direct(i);
    return value_of(c->call("get " + key + "\r\n", "get"));
  }

  // Every server that holds `key` right now.
  std::vector<size_t> holders(const std::string& key) {
    std::vector<size_t> out;
    for (size_t i = 0; i < servers_.size(); ++i)
      if (direct_get(i, key)) out.push_back(i);
    return out;
  }

  // Learns which server cachegate sends keys to: stores `prefix` + number through cachegate
  // until every server holds at least `per_server` of them, then asks each server directly
  // which ones it got. Returns the keys grouped by server, `per_server` each, and removes every
  // probe key again (directly, on the server that holds it).
  std::vector<std::vector<std::string>> keys_per_server(size_t per_server,
                                                        const std::string& prefix = "key-") {
    std::vector<std::vector<std::string>> grouped(servers_.size());
    auto c = client();
    std::vector<std::string> probes;
    const size_t batch = 64;
    for (size_t round = 0; round < 100; ++round) {
      std::string writes;
      std::vector<std::string> keys;
      for (size_t i = 0; i < batch; ++i) {
        keys.push_back(prefix + std::to_string(round * batch + i));
        writes += "set " + keys.back() + " 0 0 1\r\nx\r\n";
      }
      c->send(writes);
      for (size_t i = 0; i < batch; ++i)
        if (c->read_line() != "STORED") throw std::runtime_error("probe set failed");
      for (size_t s = 0; s < servers_.size(); ++s) {
        for (const auto& key : held_by(s, keys)) {
          if (grouped[s].size() < per_server) grouped[s].push_back(key);
          probes.push_back(key);
        }
      }
      bool done = true;
      for (const auto& g : grouped)
        done = done && g.size() >= per_server;
      if (done) break;
    }
    for (size_t s = 0; s < servers_.size(); ++s) {
      if (grouped[s].size() < per_server) throw std::runtime_error("a server got too few keys");
      auto d = direct(s);
      for (const auto& key : probes)
        d->send("delete " + key + " noreply\r\n");
      if (d->call("version\r\n").value_or("").rfind("VERSION", 0) != 0)
        throw std::runtime_error("cleanup failed");
    }
    return grouped;
  }

  // The subset of `keys` that server `i` holds (one direct multi-get).
  std::set<std::string> held_by(size_t i, const std::vector<std::string>& keys) {
    std::set<std::string> held;
    if (keys.empty()) return held;
    std::string command = "get";
    for (const auto& k : keys)
      command += " " + k;
    auto d = direct(i);
    d->send(command + "\r\n");
    for (;;) {
      auto line = d->read_line();
      if (!line) throw std::runtime_error("no reply from memcached");
      if (*line == "END") break;
      if (line->rfind("VALUE ", 0) != 0) throw std::runtime_error("unexpected: " + *line);
      const size_t key_end = line->find(' ', 6);
      const size_t len_start = line->find(' ', key_end + 1) + 1;
      const size_t len_end = line->find(' ', len_start);
      held.insert(line->substr(6, key_end - 6));
      const size_t length = std::stoul(line->substr(len_start, len_end - len_start));
      if (!d->read_exact(length + 2)) throw std::runtime_error("short value from memcached");
    }
    return held;
  }

  // The data block of a single-item "VALUE … END" reply; nullopt for a miss (or no reply).
  static std::optional<std::string> value_of(const std::optional<std::string>& reply) {
    if (!reply || reply->rfind("VALUE ", 0) != 0) return std::nullopt;
    const size_t line_end = reply->find("\r\n");
    const size_t end = reply->rfind("\r\nEND\r\n");
    if (line_end == std::string::npos || end == std::string::npos || end < line_end + 2)
      return std::nullopt;
    return reply->substr(line_end + 2, end - line_end - 2);
  }

 private:
  ClusterOptions options_;
  std::vector<std::unique_ptr<MemcachedServer>> servers_;
  std::unique_ptr<CachegateServer> proxy_;
};

// The "VALUE <key> <flags> <bytes>\r\n<data>\r\n" item memcached sends for a hit.
inline std::string value_item(const std::string& key, const std::string& data, uint32_t flags = 0) {
  return "VALUE " + key + " " + std::to_string(flags) + " " + std::to_string(data.size()) + "\r\n" +
         data + "\r\n";
}

// Everything a connection sends up to and including its next "MN" line (data blocks of VALUE
// and VA lines read by their length, so a value cannot end it early); nullopt on timeout or
// close. With "mn" sent last, this is the whole answer to a pipeline, however many lines it has.
inline std::optional<std::string> read_through_mn(TextClient& c) {
  std::string out;
  for (;;) {
    auto line = c.read_line();
    if (!line) return std::nullopt;
    out += *line + "\r\n";
    if (*line == "MN") return out;
    size_t length_field = std::string::npos;
    if (line->rfind("VALUE ", 0) == 0) {
      length_field = 3;
    } else if (line->rfind("VA ", 0) == 0) {
      length_field = 1;
    }
    if (length_field == std::string::npos) continue;
    size_t pos = 0;
    for (size_t i = 0; i < length_field; ++i)
      pos = line->find(' ', pos) + 1;
    auto data = c.read_exact(std::stoul(line->substr(pos, line->find(' ', pos) - pos)) + 2);
    if (!data) return std::nullopt;
    out += *data;
  }
}

// Empty when `got` is exactly `want`; otherwise a short account of the first difference. For
// replies of megabytes, where printing both sides would drown the report.
inline std::string first_difference(const std::optional<std::string>& got,
                                    const std::string& want) {
  if (!got) return "no reply (timeout or closed), wanted " + std::to_string(want.size()) + " bytes";
  if (*got == want) return {};
  size_t i = 0;
  while (i < got->size() && i < want.size() && (*got)[i] == want[i])
    ++i;
  const size_t from = i < 40 ? 0 : i - 40;
  auto excerpt = [&](const std::string& s) {
    std::string out;
    for (char c : s.substr(from, 120)) {
      if (c == '\r') {
        out += "\\r";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    return out;
  };
  return "got " + std::to_string(got->size()) + " bytes, wanted " + std::to_string(want.size()) +
         "; first difference at byte " + std::to_string(i) + ": got [" + excerpt(*got) +
         "] wanted [" + excerpt(want) + "]";
}

// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace cachegate::testing
