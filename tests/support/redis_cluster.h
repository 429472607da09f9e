#pragma once

// Redis pools behind cachegate for integration tests: real redis-server processes and one
// cachegate in front of them, every process on a free loopback port. Header-only so it needs no
// change to the test support library's build.
//
// Where a key lives is always learnt from the servers themselves (a direct EXISTS), never
// computed: the tests check cachegate's placement, so they must not share its code.

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

#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"
#include "tests/support/temp_dir.h"

namespace cachegate::testing {

// One redis-server on a free loopback port, without persistence, stopped on destruction.
class RedisServer {
 public:
  // `extra_args` are further command-line options, e.g. {"--requirepass", "secret"}.
  explicit RedisServer(std::vector<std::string> extra_args = {})
      : extra_args_(std::move(extra_args)) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      start();
      if (wait_for_port("127.0.0.1", port_, std::chrono::milliseconds(5000))) return;
      process_.stop();
    }
    throw std::runtime_error("redis-server did not start:\n" + process_.output());
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return process_; }
  std::string log() const { return process_.output(); }

  // Kill it now (SIGKILL: no goodbye to its clients), and start it again on the same port.
  void kill() {
    process_.signal(SIGKILL);
    process_.stop();
  }
  void restart() {
    process_.stop();
    for (int attempt = 0; attempt < 50; ++attempt) {
      start();
      if (wait_for_port("127.0.0.1", port_, std::chrono::milliseconds(5000))) return;
      process_.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("redis-server did not restart on its port");
  }

  // A new connection straight to this server.
  std::unique_ptr<RespClient> client() { return std::make_unique<RespClient>(port_); }

 private:
  void start() {
    std::vector<std::string> argv = {
        "redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save",   "",
        "--appendonly", "no",     "--daemonize",         "no",     "--dir",     dir_.path()};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    process_ = ChildProcess(argv, dir_.path() + "/redis.log");
  }

  TempDir dir_;
  std::vector<std::string> extra_args_;
  uint16_t port_ = 0;
  ChildProcess process_;
};

struct RedisClusterOptions {
  size_t servers = 3;
  unsigned workers = 2;
  // Request timeout of the pool, in milliseconds.
  int timeout_ms = 1000;
  bool allow_flush = true;
  // Empty for none; otherwise two characters, e.g. "{}".
  std::string hash_tag = "{}";
  // Further pool keys, one per line, without indentation ("redis_db: 3").
  std::vector<std::string> pool_keys;
  // Extra command-line arguments for every redis-server.
  std::vector<std::string> server_args;
};

// cachegate (one worker) in front of one redis-server on `port`: listener `r` on pool `red`.
// `pool_options` go inside the pool's map ("timeout: 300, "), `top` lines before `listeners:`.
inline std::string single_redis_config(uint16_t port, const std::string& pool_options = "",
                                       const std::string& top = "") {
  return "workers: 1\n" + top +
         "listeners:\n"
         "  - {name: r, listen: \"127.0.0.1:{port}\", pool: red}\n"
         "pools:\n"
         "  red: {protocol: redis, " +
         pool_options + "servers: [\"127.0.0.1:" + std::to_string(port) + ":1 r0\"]}\n";
}

// `servers` shards behind one worker, with further pool keys ("dedicated_connections: 1").
inline RedisClusterOptions redis_shards(size_t servers, std::vector<std::string> pool_keys = {},
                                        int timeout_ms = 1000) {
  RedisClusterOptions options;
  options.servers = servers;
  options.workers = 1;
  options.timeout_ms = timeout_ms;
  options.pool_keys = std::move(pool_keys);
  return options;
}

// The cachegate YAML for `options` in front of redis-servers on `ports`.
inline std::string redis_cluster_config(const RedisClusterOptions& options,
                                        const std::vector<uint16_t>& ports) {
  std::string y;
  y += "workers: " + std::to_string(options.workers) + "\n";
  y += "listeners:\n";
  y += "  - {name: r, listen: \"127.0.0.1:{port}\", pool: red}\n";
  y += "pools:\n";
  y += "  red:\n";
  y += "    protocol: redis\n";
  y += "    distribution: ketama\n";
  y += "    hash: fnv1a_64\n";
  if (!options.hash_tag.empty()) y += "    hash_tag: \"" + options.hash_tag + "\"\n";
  y += "    timeout: " + std::to_string(options.timeout_ms) + "\n";
  y += std::string("    allow_flush: ") + (options.allow_flush ? "true" : "false") + "\n";
  for (const auto& line : options.pool_keys)
    y += "    " + line + "\n";
  y += "    servers:\n";
  for (size_t i = 0; i < ports.size(); ++i)
    y += "      - 127.0.0.1:" + std::to_string(ports[i]) + ":1 r" + std::to_string(i) + "\n";
  return y;
}

class RedisCluster {
 public:
  explicit RedisCluster(RedisClusterOptions options = {}) : options_(std::move(options)) {
    std::vector<uint16_t> ports;
    for (size_t i = 0; i < options_.servers; ++i) {
      servers_.push_back(std::make_unique<RedisServer>(options_.server_args));
      ports.push_back(servers_.back()->port());
    }
    proxy_ = std::make_unique<CachegateServer>(redis_cluster_config(options_, ports));
  }
  // cachegate first, so that it never sees its servers go away under it.
  ~RedisCluster() {
    proxy_.reset();
    servers_.clear();
  }
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  const RedisClusterOptions& options() const { return options_; }
  size_t size() const { return servers_.size(); }
  RedisServer& server(size_t i) { return *servers_.at(i); }
  CachegateServer& proxy() { return *proxy_; }
  uint16_t port() const { return proxy_->port(); }

  // A new client connection to cachegate.
  std::unique_ptr<RespClient> client(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    return std::make_unique<RespClient>(proxy_->port(), timeout);
  }
  // A new client connection straight to server `i`, bypassing cachegate.
  std::unique_ptr<RespClient> direct(size_t i) { return servers_.at(i)->client(); }

  // Every server that holds `key` right now (in db `db`).
  std::vector<size_t> holders(const std::string& key, int db = 0) {
    std::vector<size_t> out;
    for (size_t i = 0; i < servers_.size(); ++i) {
      auto d = direct(i);
      if (db != 0 && d->call({"SELECT", std::to_string(db)}) != "+OK\r\n")
        throw std::runtime_error("SELECT failed");
      if (d->call({"EXISTS", key}) == ":1\r\n") out.push_back(i);
    }
    return out;
  }

  // The one server holding `key`; throws when none or several do.
  size_t holder(const std::string& key) {
    auto h = holders(key);
    if (h.size() != 1)
      throw std::runtime_error(key + " is on " + std::to_string(h.size()) + " servers");
    return h[0];
  }

  // Learns which server cachegate sends keys to: stores `prefix` + number through cachegate
  // until every server holds at least `per_server` of them, then asks each server directly which
  // ones it got. Returns the keys grouped by server, `per_server` each, and removes every probe
  // key again (directly, on the server that holds it).
  std::vector<std::vector<std::string>> keys_per_server(size_t per_server,
                                                        const std::string& prefix = "key-") {
    std::vector<std::vector<std::string>> grouped(servers_.size());
    auto c = client();
    const size_t batch = 64;
    for (size_t round = 0; round < 100; ++round) {
      std::string writes;
      std::vector<std::string> keys;
      for (size_t i = 0; i < batch; ++i) {
        keys.push_back(prefix + std::to_string(round * batch + i));
        writes += resp_command({"SET", keys.back(), "probe"});
      }
      auto replies = c->pipeline(writes, batch);
      for (const auto& r : replies)
        if (r != "+OK\r\n") throw std::runtime_error("probe SET failed: " + printable(r));
      if (replies.size() != batch) throw std::runtime_error("probe SET got no reply");
      for (size_t s = 0; s < servers_.size(); ++s) {
        auto d = direct(s);
        std::string exists;
        for (const auto& k : keys)
          exists += resp_command({"EXISTS", k});
        auto held = d->pipeline(exists, batch);
        std::string unlink;
        size_t unlinks = 0;
        for (size_t i = 0; i < keys.size() && i < held.size(); ++i) {
          if (held[i] != ":1\r\n") continue;
          if (grouped[s].size() < per_server) grouped[s].push_back(keys[i]);
          unlink += resp_command({"UNLINK", keys[i]});
          ++unlinks;
        }
        if (unlinks > 0 && d->pipeline(unlink, unlinks).size() != unlinks)
          throw std::runtime_error("probe cleanup failed");
      }
      bool done = true;
      for (const auto& g : grouped)
        done = done && g.size() >= per_server;
      if (done) return grouped;
    }
    throw std::runtime_error("a server got too few keys");
  }

  // Clients connected to server `i`, as it counts them (the probe connection included).
  int connected_clients(size_t i) {
    const std::string info = direct(i)->call({"INFO", "clients"});
    const size_t at = info.find("connected_clients:");
    if (at == std::string::npos) throw std::runtime_error("INFO clients failed: " + info);
    return std::atoi(info.c_str() + at + 18);
  }
  // Waits up to 2 s for server `i` to count `clients` connected clients; whether it did.
  bool await_connected_clients(size_t i, int clients) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (connected_clients(i) == clients) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // The sum of every server's DBSIZE, asked directly.
  long long direct_dbsize() {
    long long total = 0;
    for (size_t i = 0; i < servers_.size(); ++i) {
      const std::string r = direct(i)->call({"DBSIZE"});
      if (r.empty() || r[0] != ':') throw std::runtime_error("DBSIZE failed: " + r);
      total += std::stoll(r.substr(1));
    }
    return total;
  }

 private:
  RedisClusterOptions options_;
  std::vector<std::unique_ptr<RedisServer>> servers_;
  std::unique_ptr<CachegateServer> proxy_;
};

}  // namespace cachegate::testing
