#pragma once

// Real servers for integration tests, each on a free loopback port, stopped on destruction.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace cachegate::testing {

class MemcachedServer {
 public:
  // Starts memcached on 127.0.0.1 with `extra_args` (e.g. {"-I", "2m"}); waits until it accepts.
  explicit MemcachedServer(std::vector<std::string> extra_args = {});
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return process_; }
  // Kill it now (SIGKILL: no goodbye to clients), and start it again on the same port.
  void kill();
  void restart();

 private:
  void start();
  std::vector<std::string> extra_args_;
  uint16_t port_ = 0;
  ChildProcess process_;
};

class NutcrackerServer {
 public:
  // One nutcracker process serving every pool given: `pool_bodies[i]` is the YAML of pool
  // `pool_names[i]` without its `listen:` line (indented by two spaces); each pool gets a free
  // listen port here, in order.
  NutcrackerServer(const std::vector<std::string>& pool_names,
                   const std::vector<std::string>& pool_bodies);
  uint16_t port(size_t pool_index = 0) const { return ports_.at(pool_index); }

 private:
  TempDir dir_;
  std::vector<uint16_t> ports_;
  ChildProcess process_;
};

// cachegate itself, from the build tree.
class CachegateServer {
 public:
  // `config_yaml` may contain "{port}" (replaced by a free port for the first listener),
  // "{port1}", "{port2}"… for further listeners. Waits until the first listener accepts.
  explicit CachegateServer(const std::string& config_yaml,
                           std::vector<std::string> extra_args = {});
  uint16_t port(size_t listener = 0) const { return ports_.at(listener); }
  ChildProcess& process() { return process_; }
  std::string log() const { return process_.output(); }
  const std::string& config_path() const { return config_path_; }

 private:
  TempDir dir_;
  std::vector<uint16_t> ports_;
  std::string config_path_;
  ChildProcess process_;
};

// True when the test runs as root (memcached then needs "-u nobody").
bool running_as_root();

}  // namespace cachegate::testing
