#include "tests/support/servers.h"

#include <unistd.h>

#include <csignal>
#include <stdexcept>
#include <thread>

#include "tests/support/ports.h"

namespace cachegate::testing {

namespace {
constexpr int kStartAttempts = 5;
constexpr std::chrono::milliseconds kStartTimeout{5000};

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size())
    text.replace(pos, from.size(), to);
  return text;
}
}  // namespace

bool running_as_root() {
  return ::geteuid() == 0;
}

MemcachedServer::MemcachedServer(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)) {
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    port_ = free_port();
    start();
    if (wait_for_port("127.0.0.1", port_, kStartTimeout)) return;
    process_.stop();
  }
  throw std::runtime_error("memcached did not start");
}

void MemcachedServer::start() {
  std::vector<std::string> argv = {"memcached", "-l", "127.0.0.1", "-p", std::to_string(port_),
                                   "-U",        "0",  "-t",        "1",  "-m",
                                   "64"};
  if (running_as_root()) {
    argv.push_back("-u");
    argv.push_back("nobody");
  }
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  process_ = ChildProcess(argv);
}

void MemcachedServer::kill() {
  process_.signal(SIGKILL);
  process_.stop();
}

void MemcachedServer::restart() {
  process_.stop();
  for (int attempt = 0; attempt < 50; ++attempt) {
    start();
    if (wait_for_port("127.0.0.1", port_, kStartTimeout)) return;
    process_.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("memcached did not restart on its port");
}

NutcrackerServer::NutcrackerServer(const std::vector<std::string>& pool_names,
                                   const std::vector<std::string>& pool_bodies) {
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    ports_.clear();
    std::string yaml;
    for (size_t i = 0; i < pool_names.size(); ++i) {
      ports_.push_back(free_port());
      yaml += pool_names[i] + ":\n  listen: 127.0.0.1:" + std::to_string(ports_.back()) + "\n" +
              pool_bodies[i] + "\n";
    }
    std::string conf = dir_.write_file("nutcracker.yml", yaml);
    uint16_t stats_port = free_port();
    process_ = ChildProcess({"nutcracker", "-c", conf, "-s", std::to_string(stats_port), "-a",
                             "127.0.0.1", "-o", dir_.path() + "/nutcracker.log"});
    bool all = true;
    for (auto p : ports_)
      all = all && wait_for_port("127.0.0.1", p, kStartTimeout);
    if (all) return;
    process_.stop();
  }
  throw std::runtime_error("nutcracker did not start");
}

CachegateServer::CachegateServer(const std::string& config_yaml,
                                 std::vector<std::string> extra_args) {
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    ports_.clear();
    std::string yaml = config_yaml;
    ports_.push_back(free_port());
    yaml = replace_all(yaml, "{port}", std::to_string(ports_[0]));
    for (int i = 1; yaml.find("{port" + std::to_string(i) + "}") != std::string::npos; ++i) {
      ports_.push_back(free_port());
      yaml = replace_all(yaml, "{port" + std::to_string(i) + "}", std::to_string(ports_.back()));
    }
    config_path_ = dir_.write_file("cachegate.yaml", yaml);
    std::vector<std::string> argv = {CACHEGATE_BINARY, "-c", config_path_};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_ = ChildProcess(argv, dir_.path() + "/cachegate.log");
    if (wait_for_port("127.0.0.1", ports_[0], kStartTimeout)) return;
    std::string log = process_.output();
    process_.stop();
    if (log.find("address already in use") == std::string::npos &&
        log.find("Address already in use") == std::string::npos)
      throw std::runtime_error("cachegate did not start:\n" + log);
  }
  throw std::runtime_error("cachegate did not start");
}

}  // namespace cachegate::testing
