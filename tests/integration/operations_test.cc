// Operating cachegate: the admin endpoint (health, readiness, Prometheus metrics checked by
// promtool, the redacted configuration, route explanations, servers), configuration reloads
// under load, refused reloads, the drain on SIGTERM and the slow-request log. Real memcached
// servers, a real cachegate process, curl and promtool as an operator would use them.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/logins.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/text_client.h"
#include "tests/support/tls_material.h"

namespace cachegate {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using testing::CachegateServer;
using testing::MemcachedServer;
using testing::TextClient;

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

struct HttpReply {
  int status = 0;
  std::string body;
};

// GET through curl, as an operator (or a Prometheus scraper) would.
HttpReply http_get(uint16_t port, const std::string& path, const std::string& token = "") {
  std::vector<std::string> argv = {"curl", "-s", "--max-time", "10", "-w", "\n%{http_code}"};
  if (!token.empty()) {
    argv.push_back("-H");
    argv.push_back("Authorization: Bearer " + token);
  }
  argv.push_back("http://127.0.0.1:" + std::to_string(port) + path);
  std::string output;
  testing::run_command(argv, &output, 15s);
  HttpReply reply;
  const size_t cut = output.rfind('\n');
  if (cut == std::string::npos) return reply;
  reply.status = std::atoi(output.c_str() + cut + 1);
  reply.body = output.substr(0, cut);
  return reply;
}

// The value of one sample line of a metrics text ("name{labels} value"), or nullopt.
std::optional<double> metric(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  size_t at = 0;
  while ((at = text.find(prefix, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + prefix.size()));
    at += prefix.size();
  }
  return std::nullopt;
}

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// memcached's own figure, asked of the server directly.
uint64_t server_stat(uint16_t port, const std::string& name) {
  TextClient c("127.0.0.1", port);
  auto reply = c.call("stats\r\n", "get");
  REQUIRE(reply);
  const std::string key = "STAT " + name + " ";
  const size_t at = reply->find(key);
  REQUIRE(at != std::string::npos);
  return std::stoull(reply->substr(at + key.size()));
}

std::optional<std::string> server_get(uint16_t port, const std::string& key) {
  TextClient c("127.0.0.1", port);
  auto reply = c.call("get " + key + "\r\n", "get");
  if (!reply || reply->rfind("VALUE ", 0) != 0) return std::nullopt;
  const size_t start = reply->find("\r\n") + 2;
  return reply->substr(start, reply->find("\r\n", start) - start);
}

// SIGSTOP, and wait until the kernel shows the server stopped: kill() returns before the
// signal has taken hold, and a request sent in between would still be answered.
void pause_server(MemcachedServer& server) {
  server.process().signal(SIGSTOP);
  const std::string path = "/proc/" + std::to_string(server.process().pid()) + "/stat";
  REQUIRE(wait_for([&] {
    std::ifstream in(path);
    std::string stat;
    std::getline(in, stat);
    const size_t close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'T';
  }));
}

bool store(TextClient& c, const std::string& key, const std::string& value) {
  auto reply =
      c.call("set " + key + " 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n");
  return reply && *reply == "STORED\r\n";
}

// Two memcached servers, and a configuration file written from a template where {m0} and {m1}
// are their ports, {port} the first listener's, {admin} the admin endpoint's and {portN} further
// free ports fixed for the whole test (a rewritten file keeps them).
class Operated {
 public:
  explicit Operated(const std::string& config_template) : template_(config_template) {
    admin_port_ = testing::free_port();
    for (int i = 1; i <= 3; ++i)
      extra_ports_.push_back(testing::free_port());
    token_path_ = dir_.write_file("token", "s3cr3t-token\n");
    proxy_ = std::make_unique<CachegateServer>(fill(config_template, false));
    REQUIRE(wait_for([&] { return log().find(" running with ") != std::string::npos; }));
  }
  ~Operated() {
    m0.process().signal(SIGCONT);
    m1.process().signal(SIGCONT);
  }

  // `keep_listener_port`: {port} becomes the running first listener's port.
  std::string fill(std::string text, bool keep_listener_port) const {
    text = replace_all(text, "{m0}", std::to_string(m0.port()));
    text = replace_all(text, "{m1}", std::to_string(m1.port()));
    text = replace_all(text, "{admin}", std::to_string(admin_port_));
    text = replace_all(text, "{token_file}", token_path_);
    for (size_t i = 0; i < extra_ports_.size(); ++i)
      text =
          replace_all(text, "{port" + std::to_string(i + 1) + "}", std::to_string(extra_ports_[i]));
    if (keep_listener_port) text = replace_all(text, "{port}", std::to_string(proxy_->port(0)));
    return text;
  }
  // Rewrites the configuration file (same ports) without telling cachegate.
  void rewrite(const std::string& config_template) {
    const std::string path = proxy_->config_path();
    const std::string text = fill(config_template, true);
    // Written beside and renamed over, as editors and Kubernetes do: never half a file.
    const std::string temporary = dir_.write_file("next.yaml", text);
    REQUIRE(std::rename(temporary.c_str(), path.c_str()) == 0);
  }
  void reload(const std::string& config_template) {
    rewrite(config_template);
    proxy_->process().signal(SIGHUP);
  }

  uint16_t port() const { return proxy_->port(0); }
  uint16_t port(size_t n) const { return extra_ports_.at(n - 1); }
  uint16_t admin_port() const { return admin_port_; }
  std::string log() const { return proxy_->log(); }
  CachegateServer& proxy() { return *proxy_; }
  HttpReply get(const std::string& path) { return http_get(admin_port_, path, kToken); }

  static constexpr const char* kToken = "s3cr3t-token";
  MemcachedServer m0, m1;

 private:
  testing::TempDir dir_;
  std::string template_;
  uint16_t admin_port_ = 0;
  std::vector<uint16_t> extra_ports_;
  std::string token_path_;
  std::unique_ptr<CachegateServer> proxy_;
};

const char* const kRoutedConfig =
    "workers: 2\n"
    "admin: {listen: \"127.0.0.1:{admin}\", token_file: \"{token_file}\"}\n"
    "listeners:\n"
    "  - {name: main, listen: \"127.0.0.1:{port}\", route: r}\n"
    "users:\n"
    "  - {name: alice, password_hash: \"HASH\"}\n"
    "pools:\n"
    "  a: {timeout: 1000, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n"
    "  b: {timeout: 1000, servers: [\"127.0.0.1:{m1}:1 b0\"]}\n"
    "  red: {protocol: redis, redis_auth: \"hunter2-pool-password\", servers: "
    "[\"127.0.0.1:{m1}:1\"]}\n"
    "routes:\n"
    "  r:\n"
    "    - {match: {prefix: \"b:\"}, pool: b}\n"
    "    - {match: {}, pool: a}\n";

TEST_CASE(
    "The admin endpoint answers health, readiness, metrics valid for promtool, the "
    "redacted config, route explanations and servers",
    "[operations][admin]") {
  const std::string hash = testing::cheap_password_hash("alice-password");
  Operated ops(replace_all(kRoutedConfig, "HASH", hash));
  INFO(ops.log());
  {
    TextClient c("127.0.0.1", ops.port());
    for (int i = 0; i < 20; ++i) {
      REQUIRE(store(c, "k" + std::to_string(i), "v"));
      REQUIRE(store(c, "b:" + std::to_string(i), "w"));
      REQUIRE(c.call("get k" + std::to_string(i) + "\r\n", "get"));
    }
  }
  REQUIRE(server_get(ops.m1.port(), "b:3") == "w");

  SECTION("health and readiness need no token") {
    auto health = http_get(ops.admin_port(), "/healthz");
    CHECK(health.status == 200);
    CHECK(health.body == "ok\n");
    auto ready = http_get(ops.admin_port(), "/readyz");
    CHECK(ready.status == 200);
    CHECK(ready.body == "ready\n");
  }
  SECTION("everything else needs the bearer token") {
    for (const char* path :
         {"/metrics", "/config", "/servers", "/routes?listener=main&op=get&key=x"}) {
      CHECK(http_get(ops.admin_port(), path).status == 401);
      CHECK(http_get(ops.admin_port(), path, "wrong-token").status == 401);
    }
    CHECK(ops.get("/nowhere").status == 404);
  }
  SECTION("metrics are valid Prometheus text and count the traffic") {
    // Replies are counted as they are queued, a moment after the client may read them.
    HttpReply reply;
    REQUIRE(wait_for([&] {
      reply = ops.get("/metrics");
      auto n = metric(reply.body, "cachegate_listener_requests_total{listener=\"main\"}");
      return n && *n >= 60;
    }));
    REQUIRE(reply.status == 200);
    testing::TempDir dir;
    const std::string file = dir.write_file("metrics.txt", reply.body);
    std::string promtool;
    const int rc =
        testing::run_command({"sh", "-c", "promtool check metrics < " + file}, &promtool, 30s);
    INFO(promtool);
    CHECK(rc == 0);
    CHECK(metric(reply.body, "cachegate_pool_requests_total{pool=\"a\",op=\"write\"}") == 20);
    CHECK(metric(reply.body, "cachegate_pool_requests_total{pool=\"b\",op=\"write\"}") == 20);
    CHECK(metric(reply.body, "cachegate_pool_requests_total{pool=\"a\",op=\"read\"}") == 20);
    const std::string a0 = "pool=\"a\",server=\"a0\",address=\"" + ops.m0.address() + "\"";
    const std::string b0 = "pool=\"b\",server=\"b0\",address=\"" + ops.m1.address() + "\"";
    CHECK(metric(reply.body, "cachegate_server_requests_total{" + a0 + "}") == 40);
    CHECK(metric(reply.body, "cachegate_server_replies_total{" + b0 + "}") == 20);
    CHECK(metric(reply.body, "cachegate_server_failures_total{" + a0 + ",kind=\"timeout\"}") == 0);
    CHECK(metric(reply.body, "cachegate_pool_request_duration_seconds_count{pool=\"a\"}") == 40);
    CHECK(metric(reply.body,
                 "cachegate_listener_request_duration_seconds_bucket{listener="
                 "\"main\",le=\"+Inf\"}") == 60);
    CHECK(metric(reply.body, "cachegate_listener_connections_accepted_total{listener=\"main\"}") >=
          1);
    CHECK(metric(reply.body, "cachegate_config_reloads_total{result=\"ok\"}") == 0);
    CHECK(metric(reply.body, "cachegate_config_generation") == 1);
    CHECK(metric(reply.body, "cachegate_ready") == 1);
    CHECK(metric(reply.body, "cachegate_workers") == 2);
    // memcached's stats shows the same figures in its own format.
    TextClient stats("127.0.0.1", ops.port());
    auto text = stats.call("stats\r\n", "get");
    REQUIRE(text);
    CHECK_THAT(*text, Contains("STAT cachegate_pool_b_write_requests 20\r\n"));
    CHECK_THAT(*text, Contains("STAT cachegate_config_generation 1\r\n"));
    CHECK_THAT(*text, Contains("STAT cachegate_listener_main_requests "));
  }
  SECTION("the configuration is shown with its secrets redacted") {
    auto reply = ops.get("/config");
    REQUIRE(reply.status == 200);
    CHECK_THAT(reply.body, Contains("# sha256: "));
    CHECK_THAT(reply.body, Contains("<redacted>"));
    CHECK_THAT(reply.body, Contains("token_file"));
    CHECK_THAT(reply.body, !Contains("hunter2-pool-password"));
    CHECK_THAT(reply.body, !Contains(hash));
    CHECK_THAT(reply.body, !Contains(Operated::kToken));
    // The same hash as the metrics name.
    const size_t at = reply.body.find("# sha256: ") + 10;
    const std::string sha = reply.body.substr(at, 64);
    CHECK_THAT(ops.get("/metrics").body,
               Contains("cachegate_config_info{sha256=\"" + sha + "\"} 1"));
  }
  SECTION("routes are explained, and bad questions get a 400") {
    auto reply = ops.get("/routes?listener=main&op=get&key=b%3A42");
    REQUIRE(reply.status == 200);
    CHECK_THAT(reply.body, Contains("b0"));
    CHECK_THAT(reply.body, !Contains("a0"));
    auto other = ops.get("/routes?listener=main&op=set&key=plain");
    REQUIRE(other.status == 200);
    CHECK_THAT(other.body, Contains("a0"));
    CHECK(ops.get("/routes?listener=main&op=get").status == 400);
    CHECK(ops.get("/routes?listener=nope&op=get&key=x").status == 400);
  }
  SECTION("servers are listed with their figures") {
    auto reply = ops.get("/servers");
    REQUIRE(reply.status == 200);
    CHECK_THAT(reply.body, Contains("\"pool\":\"a\",\"server\":\"a0\""));
    CHECK_THAT(reply.body, Contains("\"pool\":\"b\",\"server\":\"b0\""));
    CHECK_THAT(reply.body, Contains("\"state\":\"connected\""));
    CHECK(std::regex_search(reply.body, std::regex("\"server\":\"a0\"[^}]*\"requests\":40")));
  }
}

TEST_CASE("Readiness turns false while a pool has no live server", "[operations][admin]") {
  Operated ops(
      "workers: 1\n"
      "admin: {listen: \"127.0.0.1:{admin}\"}\n"
      "listeners:\n"
      "  - {name: main, listen: \"127.0.0.1:{port}\", pool: a}\n"
      "pools:\n"
      "  a: {timeout: 500, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n");
  CHECK(http_get(ops.admin_port(), "/readyz").status == 200);
  ops.m0.process().signal(SIGKILL);
  TextClient c("127.0.0.1", ops.port());
  for (int i = 0; i < 3; ++i)
    c.call("get k\r\n", "get");
  auto reply = http_get(ops.admin_port(), "/readyz");
  CHECK(reply.status == 503);
  CHECK_THAT(reply.body, Contains("pool 'a' has no live server"));
  CHECK(metric(http_get(ops.admin_port(), "/metrics").body, "cachegate_ready") == 0);
}

const char* const kBeforeReload =
    "workers: 2\n"
    "admin: {listen: \"127.0.0.1:{admin}\"}\n"
    "listeners:\n"
    "  - {name: main, listen: \"127.0.0.1:{port}\", route: r}\n"
    "  - {name: old, listen: \"127.0.0.1:{port1}\", pool: a}\n"
    "pools:\n"
    "  a: {timeout: 1000, preconnect: true, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n"
    "routes:\n"
    "  r:\n"
    "    - {match: {}, pool: a}\n";

const char* const kAfterReload =
    "workers: 2\n"
    "admin: {listen: \"127.0.0.1:{admin}\"}\n"
    "listeners:\n"
    "  - {name: main, listen: \"127.0.0.1:{port}\", route: r}\n"
    "  - {name: added, listen: \"127.0.0.1:{port2}\", pool: b}\n"
    "pools:\n"
    "  a: {timeout: 1000, preconnect: true, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n"
    "  b: {timeout: 1000, servers: [\"127.0.0.1:{m1}:1 b0\"]}\n"
    "routes:\n"
    "  r:\n"
    "    - {match: {prefix: \"n:\"}, pool: b}\n"
    "    - {match: {}, pool: a}\n";

TEST_CASE(
    "A reload under load changes routes and listeners with no error for unaffected keys "
    "and keeps connections to unchanged servers",
    "[operations][reload]") {
  Operated ops(kBeforeReload);
  // Both workers have connected to a0 (preconnect); what memcached counted so far, this probe
  // included.
  REQUIRE(wait_for([&] { return server_stat(ops.m0.port(), "curr_connections") >= 3; }));

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, errors{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      TextClient c("127.0.0.1", ops.port());
      for (int i = 0; !stop; ++i) {
        const std::string key = "load:" + std::to_string(t) + ":" + std::to_string(i % 100);
        const std::string value = std::to_string(i);
        auto stored =
            c.call("set " + key + " 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n");
        auto got = c.call("get " + key + "\r\n", "get");
        if (!stored || *stored != "STORED\r\n" || !got ||
            got->find("\r\n" + value + "\r\n") == std::string::npos) {
          ++errors;
        }
        ++done;
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  TextClient idle("127.0.0.1", ops.port());  // a connection opened before, used after
  REQUIRE(store(idle, "n:before", "1"));
  CHECK(server_get(ops.m0.port(), "n:before") == "1");

  const uint64_t before_reload = done;
  const uint64_t connections_before = server_stat(ops.m0.port(), "total_connections");
  ops.reload(kAfterReload);
  REQUIRE(wait_for([&] { return ops.log().find("configuration 2 (sha256") != std::string::npos; }));
  std::this_thread::sleep_for(300ms);
  // No worker reconnected to a0: only this probe is new.
  CHECK(server_stat(ops.m0.port(), "total_connections") == connections_before + 1);
  stop = true;
  for (auto& t : load)
    t.join();
  INFO(ops.log());
  CHECK(errors == 0);
  CHECK(done > before_reload);

  // The new rule, on a connection opened before the reload.
  REQUIRE(store(idle, "n:after", "2"));
  CHECK(server_get(ops.m1.port(), "n:after") == "2");
  CHECK(server_get(ops.m0.port(), "n:after") == std::nullopt);
  // The added listener serves; the removed one is gone.
  TextClient added("127.0.0.1", ops.port(2));
  REQUIRE(store(added, "via-added", "3"));
  CHECK(server_get(ops.m1.port(), "via-added") == "3");
  CHECK(testing::connect_tcp("127.0.0.1", ops.port(1)) < 0);
  auto metrics = http_get(ops.admin_port(), "/metrics").body;
  CHECK(metric(metrics, "cachegate_config_reloads_total{result=\"ok\"}") == 1);
  CHECK(metric(metrics, "cachegate_config_generation") == 2);
}

TEST_CASE(
    "A bad configuration is refused and the running one stays, and a changed file is "
    "picked up without a signal",
    "[operations][reload]") {
  Operated ops(kBeforeReload);
  TextClient c("127.0.0.1", ops.port());
  REQUIRE(store(c, "k", "1"));

  SECTION("invalid YAML content") {
    ops.reload(replace_all(kBeforeReload, "pool: a}\n", "pool: nosuchpool}\n"));
    REQUIRE(wait_for(
        [&] { return ops.log().find("configuration reload failed") != std::string::npos; }));
    CHECK_THAT(ops.log(), Contains("nosuchpool"));
  }
  SECTION("a change that needs a restart") {
    ops.reload(replace_all(kBeforeReload, "workers: 2", "workers: 3"));
    REQUIRE(wait_for(
        [&] { return ops.log().find("configuration reload failed") != std::string::npos; }));
    CHECK_THAT(ops.log(), Contains("workers: changing it needs a restart"));
  }
  SECTION("a listener whose port is taken") {
    testing::TempDir dir;
    // Another process holds the port the new listener wants.
    const uint16_t taken = testing::free_port();
    testing::ChildProcess holder({"python3", "-c",
                                  "import socket,time\n"
                                  "s=socket.socket()\n"
                                  "s.bind(('127.0.0.1'," +
                                      std::to_string(taken) +
                                      "))\n"
                                      "s.listen()\n"
                                      "time.sleep(60)\n"});
    REQUIRE(testing::wait_for_port("127.0.0.1", taken, 5s));
    ops.reload(replace_all(kBeforeReload, "{port1}", std::to_string(taken)));
    REQUIRE(wait_for(
        [&] { return ops.log().find("configuration reload failed") != std::string::npos; }));
    // The old listener still serves.
    TextClient old("127.0.0.1", ops.port(1));
    CHECK(store(old, "still", "1"));
  }
  // The running configuration serves as before, on the same connection.
  CHECK(store(c, "k2", "2"));
  CHECK(server_get(ops.m0.port(), "k2") == "2");
  auto metrics = http_get(ops.admin_port(), "/metrics").body;
  CHECK(metric(metrics, "cachegate_config_reloads_total{result=\"failed\"}") == 1);
  CHECK(metric(metrics, "cachegate_config_generation") == 1);

  // A good file later is picked up by the watch, without SIGHUP.
  ops.rewrite(kAfterReload);
  REQUIRE(wait_for([&] { return ops.log().find("configuration 2 (sha256") != std::string::npos; }));
  REQUIRE(store(c, "n:x", "4"));
  CHECK(server_get(ops.m1.port(), "n:x") == "4");
}

const char* const kDrainConfig =
    "workers: 2\n"
    "drain_timeout: DRAIN\n"
    "admin: {listen: \"127.0.0.1:{admin}\"}\n"
    "listeners:\n"
    "  - {name: main, listen: \"127.0.0.1:{port}\", pool: a}\n"
    "pools:\n"
    "  a: {timeout: 20000, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n";

TEST_CASE("SIGTERM drains under load: no acknowledged write is lost and the process exits 0",
          "[operations][drain]") {
  Operated ops(replace_all(kDrainConfig, "DRAIN", "10000"));
  std::atomic<bool> go{true};
  std::vector<std::vector<std::string>> acknowledged(4);
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      // Reconnects after each close, as a client library would, until connections are refused.
      for (int i = 0; go;) {
        std::unique_ptr<TextClient> connection;
        try {
          connection = std::make_unique<TextClient>("127.0.0.1", ops.port(), 3s);
        } catch (const std::exception&) {
          return;  // refused: the listener is closed
        }
        TextClient& c = *connection;
        for (; go; ++i) {
          const std::string key = "drain:" + std::to_string(t) + ":" + std::to_string(i);
          bool stored = false;
          try {
            stored = store(c, key, "v" + std::to_string(i));
          } catch (const std::exception&) {
            // A send to a connection the proxy closed: not acknowledged.
          }
          if (!stored) break;
          acknowledged[t].push_back(key);
        }
        ++i;
      }
    });
  }
  std::this_thread::sleep_for(400ms);
  ops.proxy().process().signal(SIGTERM);
  const int code = ops.proxy().process().wait_exit(15s);
  go = false;
  for (auto& t : load)
    t.join();
  INFO(ops.log());
  CHECK(code == 0);
  CHECK_THAT(ops.log(), Contains("drained"));
  size_t total = 0;
  for (int t = 0; t < 4; ++t) {
    total += acknowledged[t].size();
    for (const auto& key : acknowledged[t])
      REQUIRE(server_get(ops.m0.port(), key).has_value());
  }
  CHECK(total > 0);
}

// Stores k = v1, stops a0 and sends `get k`: a request cachegate holds in flight.
void send_stuck_get(Operated& ops, TextClient& c) {
  REQUIRE(store(c, "k", "v1"));
  pause_server(ops.m0);
  c.send("get k\r\n");
  std::this_thread::sleep_for(100ms);
}

TEST_CASE("A drain waits for a request in flight, and readiness is false meanwhile",
          "[operations][drain]") {
  Operated ops(replace_all(kDrainConfig, "DRAIN", "10000"));
  TextClient c("127.0.0.1", ops.port(), 10s);
  send_stuck_get(ops, c);
  ops.proxy().process().signal(SIGTERM);
  REQUIRE(wait_for([&] { return ops.log().find("draining") != std::string::npos; }));
  auto ready = http_get(ops.admin_port(), "/readyz");
  INFO(ops.log());
  CHECK(ready.status == 503);
  CHECK(ready.body == "draining\n");
  // New connections are refused while the old one waits.
  CHECK(testing::connect_tcp("127.0.0.1", ops.port()) < 0);
  CHECK(ops.proxy().process().running());
  ops.m0.process().signal(SIGCONT);
  auto reply = c.read_reply("get");
  REQUIRE(reply);
  CHECK(*reply == "VALUE k 0 2\r\nv1\r\nEND\r\n");
  CHECK(ops.proxy().process().wait_exit(5s) == 0);
}

TEST_CASE("drain_timeout bounds the wait for a request that does not finish",
          "[operations][drain]") {
  Operated ops(replace_all(kDrainConfig, "DRAIN", "500"));
  TextClient c("127.0.0.1", ops.port(), 10s);
  send_stuck_get(ops, c);
  const auto start = std::chrono::steady_clock::now();
  ops.proxy().process().signal(SIGTERM);
  CHECK(ops.proxy().process().wait_exit(8s) == 0);
  CHECK(std::chrono::steady_clock::now() - start < 8s);
  CHECK_THAT(ops.log(), Contains("drain_timeout passed"));
  CHECK(c.peer_closed());
}

TEST_CASE("The slow-request log names the command and key, never the value", "[operations][log]") {
  Operated ops(
      "workers: 1\n"
      "slow_log: {threshold: 100}\n"
      "admin: {listen: \"127.0.0.1:{admin}\"}\n"
      "listeners:\n"
      "  - {name: main, listen: \"127.0.0.1:{port}\", pool: a}\n"
      "pools:\n"
      "  a: {timeout: 5000, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n");
  TextClient c("127.0.0.1", ops.port());
  REQUIRE(store(c, "fast", "quick-value"));
  pause_server(ops.m0);
  c.send("set slowkey 0 0 17\r\nsecret-value-1234\r\n");
  std::this_thread::sleep_for(300ms);
  ops.m0.process().signal(SIGCONT);
  REQUIRE(c.read_line() == std::optional<std::string>("STORED"));
  REQUIRE(wait_for([&] { return ops.log().find("slow request") != std::string::npos; }));
  const std::string log = ops.log();
  CHECK_THAT(log, Contains("set slowkey 0 0 17"));
  CHECK_THAT(log, Contains("listener 'main'"));
  CHECK_THAT(log, !Contains("secret-value-1234"));
  CHECK(count_of(log, "slow request") == 1);
  CHECK(metric(http_get(ops.admin_port(), "/metrics").body,
               "cachegate_listener_slow_requests_total{listener=\"main\"}") == 1);
}

TEST_CASE(
    "A reload moves logged-in Redis clients to the new rules, and closes the connections "
    "of a removed user",
    "[operations][reload]") {
  testing::RedisServer r0, r1;
  const std::string alice_hash = testing::cheap_password_hash("alice-pw");
  const std::string bob_hash = testing::cheap_password_hash("bob-pw");
  auto config = [&](bool after) {
    std::string y =
        "workers: 1\n"
        "listeners:\n"
        "  - {name: red, listen: \"127.0.0.1:{port}\", route: r, auth: required}\n"
        "users:\n"
        "  - {name: alice, password_hash: \"" +
        alice_hash + "\", namespace: \"a:\"}\n";
    if (!after) y += "  - {name: bob, password_hash: \"" + bob_hash + "\"}\n";
    y += "pools:\n"
         "  p0: {protocol: redis, servers: [\"127.0.0.1:" +
         std::to_string(r0.port()) +
         ":1 r0\"]}\n"
         "  p1: {protocol: redis, servers: [\"127.0.0.1:" +
         std::to_string(r1.port()) +
         ":1 r1\"]}\n"
         "routes:\n"
         "  r:\n";
    if (after) y += "    - {match: {prefix: \"a:n:\"}, pool: p1}\n";
    y += "    - {match: {}, pool: p0}\n";
    return y;
  };
  CachegateServer proxy(config(false));
  testing::RespClient alice(proxy.port());
  REQUIRE(alice.call({"AUTH", "alice", "alice-pw"}) == "+OK\r\n");
  testing::RespClient bob(proxy.port());
  REQUIRE(bob.call({"AUTH", "bob", "bob-pw"}) == "+OK\r\n");
  REQUIRE(alice.call({"SET", "n:1", "before"}) == "+OK\r\n");
  CHECK(testing::RespClient(r0.port()).call({"GET", "a:n:1"}) == "$6\r\nbefore\r\n");

  const std::string text = replace_all(config(true), "{port}", std::to_string(proxy.port()));
  testing::TempDir dir;
  const std::string next = dir.write_file("next.yaml", text);
  REQUIRE(std::rename(next.c_str(), proxy.config_path().c_str()) == 0);
  proxy.process().signal(SIGHUP);
  REQUIRE(
      wait_for([&] { return proxy.log().find("configuration 2 (sha256") != std::string::npos; }));

  // Still logged in, with the new rule for its namespaced keys.
  CHECK(alice.call({"SET", "n:2", "after"}) == "+OK\r\n");
  CHECK(testing::RespClient(r1.port()).call({"GET", "a:n:2"}) == "$5\r\nafter\r\n");
  CHECK(alice.call({"GET", "n:1"}) == "$-1\r\n");  // now read from r1
  CHECK(alice.call({"ACL", "WHOAMI"}) == "$5\r\nalice\r\n");
  // bob is gone: his connection is closed, and he cannot log in again.
  CHECK(bob.call({"PING"}) == testing::kNoReply);
  testing::RespClient again(proxy.port());
  CHECK_THAT(again.call({"AUTH", "bob", "bob-pw"}), Contains("WRONGPASS"));
}

// Regressions: reloads while work of the previous configuration is still out.

TEST_CASE(
    "A reload while a quorum's last replica is still out, and while a server kept by one "
    "reload and dropped by the next still has a request, keeps running",
    "[operations][reload]") {
  const char* const quorum =
      "workers: 1\n"
      "listeners:\n"
      "  - {name: main, listen: \"127.0.0.1:{port}\", route: r}\n"
      "pools:\n"
      "  a: {timeout: 1500, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n"
      "  b: {timeout: 1500, servers: [\"127.0.0.1:{m1}:1 b0\"]}\n"
      "  c: {timeout: 1500, auto_eject_hosts: true, server_failure_limit: 1, servers: "
      "[\"127.0.0.1:{port3}:1 c0\"]}\n"
      "routes:\n"
      "  r:\n"
      "    - match: {}\n"
      "      replicate: {pools: [a, b, c], mode: quorum}\n";
  Operated ops(quorum);
  // c0, on the fixture's {port3}, accepts and never answers.
  testing::ChildProcess silent({"python3", "-c",
                                "import socket,sys\n"
                                "s=socket.socket()\n"
                                "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                                "s.bind(('127.0.0.1',int(sys.argv[1])))\n"
                                "s.listen()\n"
                                "c=[]\n"
                                "while True: c.append(s.accept())\n",
                                std::to_string(ops.port(3))});
  REQUIRE(testing::wait_for_port("127.0.0.1", ops.port(3), 5s));
  TextClient c("127.0.0.1", ops.port());
  REQUIRE(store(c, "k", "v"));  // a and b answered; c is still out
  // Two reloads: the first keeps every server, the second drops pool c's.
  ops.reload(std::string(quorum) + "slow_log: {threshold: 1000}\n");
  REQUIRE(wait_for([&] { return ops.log().find("configuration 2 (sha256") != std::string::npos; }));
  ops.reload(replace_all(quorum, "[a, b, c]", "[a, b]"));
  REQUIRE(wait_for([&] { return ops.log().find("configuration 3 (sha256") != std::string::npos; }));
  // c's request times out on the first configuration's rule and pool.
  std::this_thread::sleep_for(2000ms);
  INFO(ops.log());
  CHECK(ops.proxy().process().running());
  CHECK(store(c, "k2", "v"));
  CHECK(server_get(ops.m1.port(), "k2") == "v");
}

TEST_CASE(
    "A connection still deciding between plain and TLS finishes on the listener that "
    "accepted it when a reload removes TLS",
    "[operations][reload]") {
  testing::TlsMaterial tls;
  const std::string with_tls =
      "workers: 1\n"
      "listeners:\n"
      "  - {name: main, listen: \"127.0.0.1:{port}\", pool: a}\n"
      "  - {name: secure, listen: \"127.0.0.1:{port1}\", pool: a, tls: {cert: \"" +
      tls.server.cert + "\", key: \"" + tls.server.key +
      "\", mode: optional}}\n"
      "pools:\n"
      "  a: {timeout: 1000, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n";
  Operated ops(with_tls);
  TextClient undecided("127.0.0.1", ops.port(1));  // has sent nothing yet
  std::this_thread::sleep_for(100ms);
  ops.reload(replace_all(
      with_tls,
      ", tls: {cert: \"" + tls.server.cert + "\", key: \"" + tls.server.key + "\", mode: optional}",
      ""));
  REQUIRE(wait_for([&] { return ops.log().find("configuration 2 (sha256") != std::string::npos; }));
  // A TLS ClientHello's first bytes: the session still holds its listener's TLS context.
  undecided.send(std::string("\x16\x03\x01\x00\x05hello", 10));
  std::this_thread::sleep_for(200ms);
  CHECK(ops.proxy().process().running());
  TextClient plain("127.0.0.1", ops.port(1));
  CHECK(store(plain, "k", "v"));
}

TEST_CASE("A plain connection is closed when a reload makes its listener require TLS",
          "[operations][reload]") {
  testing::TlsMaterial tls;
  const std::string plain_config =
      "workers: 1\n"
      "listeners:\n"
      "  - {name: main, listen: \"127.0.0.1:{port}\", pool: a}\n"
      "pools:\n"
      "  a: {timeout: 1000, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n";
  Operated ops(plain_config);
  TextClient c("127.0.0.1", ops.port());
  REQUIRE(store(c, "k", "v"));
  ops.reload(replace_all(
      plain_config, "pool: a}",
      "pool: a, tls: {cert: \"" + tls.server.cert + "\", key: \"" + tls.server.key + "\"}}"));
  REQUIRE(wait_for([&] { return ops.log().find("configuration 2 (sha256") != std::string::npos; }));
  CHECK(c.peer_closed());
}

TEST_CASE("A reload that moves a listener onto another listener's port is refused",
          "[operations][reload]") {
  Operated ops(kBeforeReload);
  ops.reload(replace_all(kBeforeReload, "{port1}", std::to_string(ops.port())));
  REQUIRE(
      wait_for([&] { return ops.log().find("configuration reload failed") != std::string::npos; }));
  TextClient old("127.0.0.1", ops.port(1));
  CHECK(store(old, "still", "1"));
}

TEST_CASE("A drain does not wait for a noreply request that was answered", "[operations][drain]") {
  Operated ops(replace_all(kDrainConfig, "DRAIN", "8000"));
  TextClient c("127.0.0.1", ops.port());
  c.send("set k 0 0 1 noreply\r\nv\r\n");
  REQUIRE(wait_for([&] { return server_get(ops.m0.port(), "k").has_value(); }));
  const auto start = std::chrono::steady_clock::now();
  ops.proxy().process().signal(SIGTERM);
  CHECK(ops.proxy().process().wait_exit(10s) == 0);
  CHECK(std::chrono::steady_clock::now() - start < 4s);
  CHECK_THAT(ops.log(), !Contains("drain_timeout passed"));
}

TEST_CASE("The slow-request log never shows what follows an error reply", "[operations][log]") {
  Operated ops(
      "workers: 1\n"
      "slow_log: {threshold: 100}\n"
      "listeners:\n"
      "  - {name: main, listen: \"127.0.0.1:{port}\", pool: a}\n"
      "pools:\n"
      "  a: {timeout: 5000, servers: [\"127.0.0.1:{m0}:1 a0\"]}\n");
  TextClient c("127.0.0.1", ops.port());
  REQUIRE(store(c, "k", "v"));
  pause_server(ops.m0);
  c.send("get k\r\nbogus\r\nset s 0 0 11\r\nTOPSECRET42\r\n");
  std::this_thread::sleep_for(300ms);
  ops.m0.process().signal(SIGCONT);
  REQUIRE(c.read_reply("get"));
  REQUIRE(wait_for([&] { return count_of(ops.log(), "slow request") >= 2; }));
  INFO(ops.log());
  CHECK_THAT(ops.log(), !Contains("TOPSECRET42"));
  CHECK_THAT(ops.log(), Contains(": get k"));
}

}  // namespace
}  // namespace cachegate
