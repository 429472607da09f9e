#pragma once

// cachegate in front of one redis-server and one memcached, with listeners given as YAML: the
// fixture of the TLS and login tests. Header-only so it needs no change to the test support
// library's build.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/redis_cluster.h"
#include "tests/support/servers.h"
#include "tests/support/text_client.h"

namespace cachegate::testing {

// One redis-server, one memcached and a cachegate in front of them. The first listener is a
// plain memcached one without auth ("stats"): the start-up probe connects there (a probe on a
// TLS port would count as a failed handshake, on an auth port as an open client) and `stats` is
// read there. `listeners` are further list entries ("{port1}", "{port2}"… are free ports), `top`
// further top-level YAML (users, auth_limits).
class FrontProxy {
 public:
  explicit FrontProxy(const std::string& listeners, const std::string& top = "",
                      unsigned workers = 2, std::vector<std::string> args = {}) {
    std::string y = "workers: " + std::to_string(workers) + "\n";
    y += "listeners:\n";
    y += "  - {name: stats, listen: \"127.0.0.1:{port}\", pool: cache}\n";
    y += listeners;
    y += top;
    y += "pools:\n";
    y += "  cache:\n";
    y += "    timeout: 1000\n";
    y += "    servers:\n";
    y += "      - 127.0.0.1:" + std::to_string(memcached_.port()) + ":1 m0\n";
    y += "  red:\n";
    y += "    protocol: redis\n";
    y += "    timeout: 1000\n";
    y += "    servers:\n";
    y += "      - 127.0.0.1:" + std::to_string(redis_.port()) + ":1 r0\n";
    // CachegateServer waits for the first listener only. Probing the others would count as
    // clients (handshakes, open connections); cachegate says when every listener is bound. One
    // whose port was taken meanwhile stops it, and it starts again on new ports.
    for (int attempt = 0;; ++attempt) {
      proxy_.reset();
      proxy_ = std::make_unique<CachegateServer>(y, args);
      if (running()) break;
      if (attempt == 3)
        throw std::runtime_error("cachegate did not start every listener:\n" + proxy_->log());
    }
  }
  ~FrontProxy() {
    proxy_.reset();
    memcached_.process().signal(SIGKILL);
  }

  uint16_t port(size_t listener) const { return proxy_->port(listener); }
  CachegateServer& server() { return *proxy_; }

  std::map<std::string, uint64_t> stats() {
    TextClient c("127.0.0.1", port(0));
    auto reply = c.call("stats\r\n", "get");
    REQUIRE(reply);
    std::map<std::string, uint64_t> out;
    std::istringstream in(*reply);
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      std::string stat, name, value;
      fields >> stat >> name >> value;
      if (stat == "STAT") out[name] = std::strtoull(value.c_str(), nullptr, 10);
    }
    return out;
  }

 private:
  // Whether cachegate has bound every listener and runs.
  bool running() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(5000);
    while (std::chrono::steady_clock::now() < deadline) {
      if (proxy_->log().find(" running with ") != std::string::npos) return true;
      if (!proxy_->process().running()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  RedisServer redis_;
  MemcachedServer memcached_;
  std::unique_ptr<CachegateServer> proxy_;
};

}  // namespace cachegate::testing
