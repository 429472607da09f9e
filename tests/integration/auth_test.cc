// Logins in front of real redis-server and memcached backends: before a client logs in it gets
// exactly what a redis-server with users (or a memcached with -Y) answers; passwords (AUTH,
// HELLO … AUTH, memcached's `set` login) and client certificates log in as the configured users;
// addresses that keep failing are slowed down and then blocked for a while; connections that do
// not log in are closed; a listener's max_connections holds; and no password reaches the log.

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "config/password.h"
#include "tests/support/front_proxy.h"
#include "tests/support/logins.h"
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
using testing::CachegateServer;
using Proxy = testing::FrontProxy;
using testing::kNoReply;
using testing::MemcachedServer;
using testing::printable;
using testing::RedisServer;
using testing::resp_bulk;
using testing::RespClient;
using testing::run_command;
using testing::TempDir;
using testing::TextClient;
using testing::TlsClientOptions;
using testing::TlsMaterial;
using Clock = std::chrono::steady_clock;

// Distinctive, so that the log check can look for them.
const std::string kBobPassword = "bob-Secret-7781";
const std::string kDefaultPassword = "default-Secret-5523";
const std::string kWrongPassword = "wrong-Guess-9932";

constexpr std::string_view kNoAuth = "-NOAUTH Authentication required.\r\n";
constexpr std::string_view kWrongPass =
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

const TlsMaterial& material() {
  static TlsMaterial m;
  return m;
}

// users: bob (password), default (password), alice (client certificate CN=alice only).
std::string users_yaml(const std::string& bob_hash = testing::cheap_password_hash(kBobPassword)) {
  return "users:\n"
         "  - name: bob\n"
         "    password_hash: \"" +
         bob_hash +
         "\"\n"
         "  - name: default\n"
         "    password_hash: \"" +
         testing::cheap_password_hash(kDefaultPassword) +
         "\"\n"
         "  - name: alice\n"
         "    tls_identity: alice\n";
}

// Failed logins are counted per address, and every test connects from 127.0.0.1: tests that do
// not test the throttling set it out of reach.
const std::string kNoThrottling = "auth_limits: {failures_slow: 1000, failures_block: 1000}\n";

// The reference: a redis-server with the same users (bob, and the default user's password).
std::unique_ptr<RedisServer> reference_redis() {
  return std::make_unique<RedisServer>(
      std::vector<std::string>{"--user", "bob", "on", ">" + kBobPassword, "~*", "&*", "+@all",
                               "--requirepass", kDefaultPassword});
}

// HELLO's reply with the connection id replaced by "<id>".
std::string without_id(std::string hello) {
  const std::string field = "$2\r\nid\r\n:";
  const size_t at = hello.find(field);
  if (at == std::string::npos) return hello;
  const size_t start = at + field.size();
  hello.replace(start, hello.find("\r\n", start) - start, "<id>");
  return hello;
}

long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

template <class F>
bool eventually(F condition, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

std::string redis_listener(const std::string& name, const std::string& port,
                           const std::string& more = "") {
  return "  - name: " + name + "\n    listen: \"127.0.0.1:{" + port +
         "}\"\n    pool: red\n    auth: required\n" + more;
}

std::string memcached_listener(const std::string& name, const std::string& port,
                               const std::string& more = "") {
  return "  - name: " + name + "\n    listen: \"127.0.0.1:{" + port +
         "}\"\n    pool: cache\n    auth: required\n" + more;
}

// The memcached login: a `set` whose data is "<user> <password>".
std::string mc_login(const std::string& token, const std::string& key = "auth") {
  return "set " + key + " 0 0 " + std::to_string(token.size()) + "\r\n" + token + "\r\n";
}

// --- Redis
// -----------------------------------------------------------------------------------------

TEST_CASE(
    "A Redis client on an auth listener gets redis-server's answers before, during and "
    "after login",
    "[auth]") {
  Proxy proxy(redis_listener("r", "port1"), users_yaml() + kNoThrottling);
  auto reference = reference_redis();
  RespClient c(proxy.port(1));
  RespClient d(reference->port());

  // Each request goes to both; cachegate must answer with redis-server's bytes.
  const std::vector<std::vector<std::string>> steps = {
      {"GET", "auth:k"},
      {"SET", "auth:k", "v"},
      {"PING"},
      {"ECHO", "x"},
      {"ACL", "WHOAMI"},
      {"CLIENT", "GETNAME"},
      {"SELECT", "0"},
      {"NOSUCHCOMMAND", "a"},  // unknown commands are reported before NOAUTH
      {"GET"},                 // and so is a wrong number of arguments
      {"HELLO"},
      {"HELLO", "3"},
      {"AUTH", "bob", kWrongPassword},
      {"AUTH", kWrongPassword},
      {"AUTH", "nobody", kBobPassword},
      {"AUTH", "a", "b", "c"},
      {"HELLO", "3", "AUTH", "bob", kWrongPassword},
      {"GET", "auth:k"},  // still not logged in
      {"AUTH", "bob", kBobPassword},
      {"ACL", "WHOAMI"},
      {"SET", "auth:k", "v"},
      {"GET", "auth:k"},
      {"RESET"},
      {"GET", "auth:k"},
      {"ACL", "WHOAMI"},
      {"AUTH", kDefaultPassword},
      {"ACL", "WHOAMI"},
      {"GET", "auth:k"},
      {"RESET"},
      {"HELLO", "3", "AUTH", "bob", kBobPassword},
      {"ACL", "WHOAMI"},
      {"GET", "auth:k"},
      {"HGETALL", "auth:none"},
      {"QUIT"},
  };
  for (const auto& step : steps) {
    std::string label;
    for (const auto& a : step)
      label += a + " ";
    INFO(label);
    std::string want = d.call(step);
    std::string got = c.call(step);
    if (step[0] == "HELLO") {
      want = without_id(want);
      got = without_id(got);
    }
    CHECK(printable(got) == printable(want));
  }
  CHECK(c.peer_closed(2000ms));
}

TEST_CASE("Redis logins answer as documented", "[auth]") {
  Proxy proxy(redis_listener("r", "port1"), users_yaml() + kNoThrottling);
  RespClient c(proxy.port(1));

  CHECK(c.call({"GET", "auth:k"}) == kNoAuth);
  CHECK(c.call({"PING"}) == kNoAuth);
  CHECK(c.call({"NOSUCH"}).rfind("-ERR unknown command 'NOSUCH'", 0) == 0);
  CHECK(c.call({"HELLO"}).rfind("-NOAUTH HELLO must be called with the client already "
                                "authenticated",
                                0) == 0);
  CHECK(c.call({"AUTH", "bob", kWrongPassword}) == kWrongPass);
  CHECK(c.call({"GET", "auth:k"}) == kNoAuth);
  CHECK(c.call({"AUTH", "bob", kBobPassword}) == "+OK\r\n");
  CHECK(c.call({"SET", "auth:k", "v"}) == "+OK\r\n");
  CHECK(c.call({"GET", "auth:k"}) == resp_bulk("v"));
  CHECK(c.call({"ACL", "WHOAMI"}) == resp_bulk("bob"));
  CHECK(c.call({"RESET"}) == "+RESET\r\n");
  CHECK(c.call({"GET", "auth:k"}) == kNoAuth);
  CHECK(c.call({"AUTH", kDefaultPassword}) == "+OK\r\n");
  CHECK(c.call({"ACL", "WHOAMI"}) == resp_bulk("default"));

  RespClient h(proxy.port(1));
  const std::string hello = h.call({"HELLO", "3", "AUTH", "bob", kBobPassword});
  CHECK(hello.rfind("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n", 0) == 0);
  CHECK(hello.find("$5\r\nproto\r\n:3\r\n") != std::string::npos);
  CHECK(h.call({"ACL", "WHOAMI"}) == resp_bulk("bob"));
  CHECK(h.call({"HGETALL", "auth:none"}) == "%0\r\n");  // RESP3 from here on
}

TEST_CASE("A client certificate naming a user's tls_identity logs in without AUTH", "[auth][tls]") {
  const TlsMaterial& m = material();
  Proxy proxy(redis_listener("rt", "port1",
                             "    tls:\n"
                             "      cert: \"" +
                                 m.server.cert + "\"\n      key: \"" + m.server.key +
                                 "\"\n      client_ca: \"" + m.ca.cert +
                                 "\"\n      client_auth: optional\n"),
              users_yaml() + kNoThrottling);
  auto options = [&](const TlsMaterial::Pair* cert) {
    TlsClientOptions o;
    o.ca_file = m.ca.cert;
    if (cert != nullptr) {
      o.cert_file = cert->cert;
      o.key_file = cert->key;
    }
    return o;
  };

  RespClient alice(proxy.port(1), options(&m.alice));
  CHECK(alice.call({"ACL", "WHOAMI"}) == resp_bulk("alice"));
  CHECK(alice.call({"SET", "cert:k", "by alice"}) == "+OK\r\n");
  CHECK(alice.call({"GET", "cert:k"}) == resp_bulk("by alice"));
  // RESET goes back to the default user, which has to log in.
  CHECK(alice.call({"RESET"}) == "+RESET\r\n");
  CHECK(alice.call({"GET", "cert:k"}) == kNoAuth);

  // A certificate that names no user, and none at all: a password is needed.
  RespClient bob_cert(proxy.port(1), options(&m.bob));
  CHECK(bob_cert.call({"GET", "cert:k"}) == kNoAuth);
  CHECK(bob_cert.call({"AUTH", "bob", kBobPassword}) == "+OK\r\n");
  CHECK(bob_cert.call({"ACL", "WHOAMI"}) == resp_bulk("bob"));
  RespClient anonymous(proxy.port(1), options(nullptr));
  CHECK(anonymous.call({"GET", "cert:k"}) == kNoAuth);
  CHECK(anonymous.call({"AUTH", "bob", kBobPassword}) == "+OK\r\n");
  CHECK(anonymous.call({"GET", "cert:k"}) == resp_bulk("by alice"));
  // alice has no password: a password login as alice fails.
  RespClient guess(proxy.port(1), options(nullptr));
  CHECK(guess.call({"AUTH", "alice", kBobPassword}) == kWrongPass);
}

TEST_CASE("redis-cli logs in with --user and --pass as on redis-server", "[auth]") {
  Proxy proxy(redis_listener("r", "port1"), users_yaml() + kNoThrottling);
  auto reference = reference_redis();
  auto cli = [](uint16_t port, std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port), "--no-auth-warning"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    run_command(argv, &out);
    return out;
  };
  CHECK(cli(proxy.port(1), {"--user", "bob", "--pass", kBobPassword, "ACL", "WHOAMI"}) == "bob\n");
  CHECK(cli(proxy.port(1), {"--user", "bob", "--pass", kBobPassword, "SET", "cli:k", "v"}) ==
        "OK\n");
  CHECK(cli(proxy.port(1), {"-a", kDefaultPassword, "GET", "cli:k"}) == "v\n");
  const std::vector<std::vector<std::string>> same = {
      {"--user", "bob", "--pass", kBobPassword, "ACL", "WHOAMI"},
      {"--user", "bob", "--pass", kWrongPassword, "ACL", "WHOAMI"},
      {"-a", kDefaultPassword, "ACL", "WHOAMI"},
      {"GET", "cli:k"},
      {"-3", "--user", "bob", "--pass", kBobPassword, "HGETALL", "cli:none"},
  };
  for (const auto& args : same) {
    std::string label;
    for (const auto& a : args)
      label += a + " ";
    INFO(label);
    CHECK(cli(proxy.port(1), args) == cli(reference->port(), args));
  }
}

// --- memcached
// -------------------------------------------------------------------------------------

TEST_CASE("memcached clients on an auth listener get memcached -Y's answers byte for byte",
          "[auth]") {
  TempDir dir;
  const std::string authfile = dir.write_file("authfile", "bob:" + kBobPassword + "\n");
  if (testing::running_as_root()) {
    // memcached reads the file after dropping to "nobody".
    namespace fs = std::filesystem;
    fs::permissions(dir.path(),
                    fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    fs::permissions(authfile, fs::perms::owner_read | fs::perms::owner_write |
                                  fs::perms::group_read | fs::perms::others_read);
  }
  MemcachedServer reference({"-Y", authfile});
  Proxy proxy(memcached_listener("m", "port1"), users_yaml() + kNoThrottling);

  struct Step {
    std::string request;
    std::string kind = "line";
  };
  auto compare = [&](const std::vector<Step>& steps) {
    TextClient c("127.0.0.1", proxy.port(1));
    TextClient d("127.0.0.1", reference.port());
    for (const auto& step : steps) {
      INFO(printable(step.request));
      const auto want = d.call(step.request, step.kind);
      const auto got = c.call(step.request, step.kind);
      REQUIRE(want);
      CHECK(printable(got.value_or("<no reply>")) == printable(*want));
    }
  };

  SECTION("everything but a set is refused before login") {
    compare({{"get auth:k\r\n"},
             {"mg auth:k v\r\n"},
             {"version\r\n"},
             {"stats\r\n"},
             {"delete auth:k\r\n"},
             {"incr auth:k 1\r\n"},
             {"quit\r\n"},
             {"get auth:k\r\n"}});
  }
  SECTION("an unknown command before login") {
    compare({{"bogus\r\n"}, {"get auth:k\r\n"}});
  }
  SECTION("wrong logins and malformed tokens") {
    compare({{mc_login("bob " + kWrongPassword)},
             {"get auth:k\r\n"},
             {mc_login("nobody " + kBobPassword)},
             {mc_login("bob" + kBobPassword)},
             {mc_login(" bob")},
             {mc_login("bob ")},
             {"version\r\n"}});
  }
  SECTION("tokens with extra spaces, which memcached splits into words") {
    compare({{mc_login("bob " + kBobPassword + " ")}, {"get auth:k\r\n", "get"}});
    compare({{mc_login("bob  " + kBobPassword)}, {"get auth:k\r\n", "get"}});
    compare({{mc_login("bob " + kBobPassword + " extra")}, {"get auth:k\r\n", "get"}});
  }
  SECTION("a login, then ordinary requests") {
    compare({{mc_login("bob " + kBobPassword)},
             {"set auth:k 3 0 5\r\nhello\r\n"},
             {"get auth:k\r\n", "get"},
             {"delete auth:k\r\n"},
             {"get auth:k\r\n", "get"}});
  }
  SECTION("a login with noreply is still answered") {
    compare({{"set auth 0 0 " + std::to_string(kBobPassword.size() + 4) + " noreply\r\nbob " +
              kBobPassword + "\r\n"},
             {"get auth:k\r\n", "get"}});
  }
  reference.process().signal(SIGKILL);
}

TEST_CASE("memcached logins answer as documented", "[auth]") {
  Proxy proxy(memcached_listener("m", "port1"), users_yaml() + kNoThrottling);
  TextClient c("127.0.0.1", proxy.port(1));
  CHECK(c.call("get auth:k\r\n") == "CLIENT_ERROR unauthenticated\r\n");
  CHECK(c.call(mc_login("bob " + kWrongPassword)) == "CLIENT_ERROR authentication failure\r\n");
  CHECK(c.call(mc_login("bob" + kBobPassword)) ==
        "CLIENT_ERROR bad authentication token format\r\n");
  CHECK(c.call(mc_login("bob " + kBobPassword)) == "STORED\r\n");
  CHECK(c.call("set auth:k 0 0 1\r\nv\r\n") == "STORED\r\n");
  CHECK(c.call("get auth:k\r\n", "get") == "VALUE auth:k 0 1\r\nv\r\nEND\r\n");
  // The login's own key was not stored anywhere.
  TextClient plain("127.0.0.1", proxy.port(0));
  CHECK(plain.call("get auth\r\n", "get") == "END\r\n");
}

// --- auth: none
// ------------------------------------------------------------------------------------

TEST_CASE("A listener without auth serves clients without login, and AUTH still logs in",
          "[auth]") {
  // bob's hash as an operator makes it.
  std::string hash;
  REQUIRE(
      run_command({"sh", "-c",
                   "printf '%s' '" + kBobPassword + "' | '" + CACHEGATE_BINARY + "' hash-password"},
                  &hash) == 0);
  while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r'))
    hash.pop_back();
  REQUIRE(hash.rfind("$pbkdf2-sha256$i=600000$", 0) == 0);

  Proxy proxy(
      "  - {name: rn, listen: \"127.0.0.1:{port1}\", pool: red, auth: none}\n"
      "  - {name: mn, listen: \"127.0.0.1:{port2}\", pool: cache, auth: none}\n",
      users_yaml(hash) + kNoThrottling);

  RespClient r(proxy.port(1));
  CHECK(r.call({"SET", "none:k", "v"}) == "+OK\r\n");
  CHECK(r.call({"GET", "none:k"}) == resp_bulk("v"));
  CHECK(r.call({"ACL", "WHOAMI"}) == resp_bulk("default"));
  CHECK(r.call({"AUTH", "bob", kWrongPassword}) == kWrongPass);
  CHECK(r.call({"GET", "none:k"}) == resp_bulk("v"));
  CHECK(r.call({"AUTH", "bob", kBobPassword}) == "+OK\r\n");
  CHECK(r.call({"ACL", "WHOAMI"}) == resp_bulk("bob"));
  CHECK(r.call({"GET", "none:k"}) == resp_bulk("v"));
  // HELLO needs no login here.
  CHECK(RespClient(proxy.port(1)).call({"HELLO", "3"}).rfind("%7\r\n", 0) == 0);

  TextClient mc("127.0.0.1", proxy.port(2));
  CHECK(mc.call("set none:m 0 0 2\r\nok\r\n") == "STORED\r\n");
  CHECK(mc.call("get none:m\r\n", "get") == "VALUE none:m 0 2\r\nok\r\nEND\r\n");
}

// --- throttling, timeouts, connection limits --------------------------------------------------

TEST_CASE("Failed logins from one address are slowed, then blocked for block_time", "[auth]") {
  Proxy proxy(
      redis_listener("r", "port1") + memcached_listener("m", "port2"),
      users_yaml() + "auth_limits: {failures_slow: 2, failures_block: 4, block_time: 1500}\n");
  const auto before = proxy.stats();
  RespClient c(proxy.port(1));

  // Two failures are answered at once, the next ones a second late.
  for (int attempt = 1; attempt <= 4; ++attempt) {
    INFO("attempt " << attempt);
    const auto start = Clock::now();
    CHECK(c.call({"AUTH", "bob", kWrongPassword}) == kWrongPass);
    const long long ms = elapsed_ms(start);
    if (attempt <= 2) {
      CHECK(ms < 500);
    } else {
      CHECK(ms >= 900);
      CHECK(ms < 2500);
    }
  }
  const auto blocked_at = Clock::now();

  // Blocked: even the right password is refused, at once, in either protocol.
  auto start = Clock::now();
  const std::string refused = c.call({"AUTH", "bob", kBobPassword});
  CHECK(refused.rfind("-ERR", 0) == 0);
  CHECK(refused.find("too many failed logins") != std::string::npos);
  CHECK(elapsed_ms(start) < 500);
  CHECK(c.call({"GET", "auth:k"}) == kNoAuth);
  TextClient mc("127.0.0.1", proxy.port(2));
  const auto mc_refused = mc.call(mc_login("bob " + kBobPassword));
  REQUIRE(mc_refused);
  CHECK(mc_refused->rfind("CLIENT_ERROR", 0) == 0);
  CHECK(mc_refused->find("too many failed logins") != std::string::npos);

  // After block_time the right password works again.
  std::this_thread::sleep_until(blocked_at + 1700ms);
  start = Clock::now();
  CHECK(c.call({"AUTH", "bob", kBobPassword}) == "+OK\r\n");
  CHECK(elapsed_ms(start) < 500);
  CHECK(c.call({"ACL", "WHOAMI"}) == resp_bulk("bob"));
  CHECK(mc.call(mc_login("bob " + kBobPassword)) == "STORED\r\n");

  const auto after = proxy.stats();
  auto delta = [&](const std::string& name) { return after.at(name) - before.at(name); };
  CHECK(delta("cachegate_auth_failures") == 4);
  CHECK(delta("cachegate_auth_slowed") == 2);
  CHECK(delta("cachegate_auth_blocked") == 2);
  CHECK(delta("cachegate_auth_successes") == 2);
}

TEST_CASE("A connection that does not log in within the auth timeout is closed", "[auth]") {
  Proxy proxy(redis_listener("r", "port1") + memcached_listener("m", "port2"),
              users_yaml() +
                  "auth_limits: {failures_slow: 1000, failures_block: 1000, "
                  "timeout: 500}\n");
  const auto before = proxy.stats();
  const auto start = Clock::now();
  RespClient idle(proxy.port(1));
  TextClient idle_mc("127.0.0.1", proxy.port(2));
  RespClient busy(proxy.port(1));  // refused requests are no login
  RespClient logged_in(proxy.port(1));
  TextClient logged_in_mc("127.0.0.1", proxy.port(2));
  CHECK(logged_in.call({"AUTH", "bob", kBobPassword}) == "+OK\r\n");
  CHECK(logged_in_mc.call(mc_login("bob " + kBobPassword)) == "STORED\r\n");
  CHECK(busy.call({"PING"}) == kNoAuth);

  CHECK(idle.peer_closed(3000ms));
  const long long ms = elapsed_ms(start);
  CHECK(ms >= 450);
  CHECK(ms < 3000);
  CHECK(idle_mc.peer_closed(1000ms));
  CHECK(busy.peer_closed(1000ms));

  // Well past the timeout, the logged-in connections are still served.
  std::this_thread::sleep_until(start + 1200ms);
  CHECK(logged_in.call({"PING"}) == "+PONG\r\n");
  CHECK(logged_in_mc.call("set auth:t 0 0 1\r\nx\r\n") == "STORED\r\n");
  CHECK(proxy.stats().at("cachegate_auth_timeouts") - before.at("cachegate_auth_timeouts") == 3);
}

TEST_CASE("A listener's max_connections closes further clients at once until one leaves",
          "[auth]") {
  Proxy proxy("  - {name: rm, listen: \"127.0.0.1:{port1}\", pool: red, max_connections: 3}\n", "");
  const uint16_t port = proxy.port(1);
  const auto before = proxy.stats();
  std::vector<std::unique_ptr<RespClient>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<RespClient>(port));
    CHECK(open.back()->call({"PING"}) == "+PONG\r\n");
  }

  const auto start = Clock::now();
  RespClient fourth(port);
  CHECK(fourth.peer_closed(2000ms));
  CHECK(elapsed_ms(start) < 500);
  for (auto& c : open)
    CHECK(c->call({"PING"}) == "+PONG\r\n");

  open.erase(open.begin());
  // The slot is free once cachegate has seen the close.
  CHECK(eventually(
      [&] {
        try {
          RespClient next(port, 1000ms);
          return next.call({"PING"}) == "+PONG\r\n";
        } catch (const std::exception&) {
          return false;  // closed before the request went out
        }
      },
      3000ms));
  CHECK(proxy.stats().at("rejected_connections") - before.at("rejected_connections") >= 1);
  // Listeners without a limit are not affected.
  std::vector<std::unique_ptr<TextClient>> stats_clients;
  for (int i = 0; i < 5; ++i) {
    stats_clients.push_back(std::make_unique<TextClient>("127.0.0.1", proxy.port(0)));
    CHECK(stats_clients.back()->call("version\r\n").value_or("").rfind("VERSION", 0) == 0);
  }
}

// --- secrets
// -----------------------------------------------------------------------------------------

TEST_CASE("Passwords and password hashes never appear in cachegate's log", "[auth]") {
  const std::string bob_hash = testing::cheap_password_hash(kBobPassword);
  const std::string token_without_space = "JustOneLongSecretToken4471";
  Proxy proxy(redis_listener("r", "port1") + memcached_listener("m", "port2"),
              users_yaml(bob_hash) + "auth_limits: {failures_slow: 2, failures_block: 1000}\n", 2,
              {"-v"});
  {
    RespClient r(proxy.port(1));
    CHECK(r.call({"AUTH", "bob", kWrongPassword}) == kWrongPass);
    CHECK(r.call({"AUTH", kWrongPassword}) == kWrongPass);
    CHECK(r.call({"HELLO", "3", "AUTH", "bob", kWrongPassword}) == kWrongPass);  // slowed
    CHECK(r.call({"AUTH", "bob", kBobPassword}) == "+OK\r\n");
    CHECK(r.call({"AUTH", kDefaultPassword}) == "+OK\r\n");
    CHECK(r.call({"HELLO", "2", "AUTH", "bob", kBobPassword}).rfind("*14\r\n", 0) == 0);
    TextClient m("127.0.0.1", proxy.port(2));
    CHECK(m.call(mc_login("bob " + kWrongPassword)) == "CLIENT_ERROR authentication failure\r\n");
    CHECK(m.call(mc_login(token_without_space)) ==
          "CLIENT_ERROR bad authentication token format\r\n");
    CHECK(m.call(mc_login("bob " + kBobPassword)) == "STORED\r\n");
  }
  // Stopped, so that everything it had to say is in the file.
  proxy.server().process().stop();
  const std::string log = proxy.server().log();
  INFO(log);
  CHECK(log.find("listener 'r'") != std::string::npos);  // the log was captured
  for (const std::string& secret :
       {kBobPassword, kDefaultPassword, kWrongPassword, token_without_space, bob_hash}) {
    CHECK(log.find(secret) == std::string::npos);
  }
  // Nor any part of a hash (its salt and digest), in case one is logged in pieces.
  const size_t salt_at = bob_hash.rfind('$', bob_hash.rfind('$') - 1) + 1;
  const std::string salt = bob_hash.substr(salt_at, bob_hash.rfind('$') - salt_at);
  const std::string digest = bob_hash.substr(bob_hash.rfind('$') + 1);
  CHECK(log.find(salt) == std::string::npos);
  CHECK(log.find(digest) == std::string::npos);
}

}  // namespace
}  // namespace cachegate

namespace cachegate {
namespace {

TEST_CASE("Redis INFO shows the login figures in its Cachegate section", "[auth]") {
  Proxy proxy(redis_listener("r", "port1"), users_yaml() + kNoThrottling, 1);
  RespClient c(proxy.port(1));
  CHECK(c.call({"AUTH", "bob", kWrongPassword}) == kWrongPass);
  CHECK(c.call({"AUTH", "bob", kWrongPassword}) == kWrongPass);
  CHECK(c.call({"GET", "auth:k"}) == kNoAuth);
  CHECK(c.call({"AUTH", "bob", kBobPassword}) == "+OK\r\n");
  const std::string info = c.call({"INFO"});
  INFO(printable(info));
  const size_t section = info.find("# Cachegate\r\n");
  REQUIRE(section != std::string::npos);
  const std::string ours = info.substr(section, info.find("\r\n\r\n", section) - section);
  CHECK(ours.find("\r\nauth_failures:2\r\n") != std::string::npos);
  CHECK(ours.find("\r\nauth_successes:1\r\n") != std::string::npos);
  CHECK(ours.find("\r\nauth_denied:1\r\n") != std::string::npos);
  CHECK(ours.find("\r\ntls_handshakes:0\r\n") != std::string::npos);
  // memcached's stats show the same figures.
  const auto stats = proxy.stats();
  CHECK(stats.at("cachegate_auth_failures") == 2);
  CHECK(stats.at("cachegate_auth_successes") == 1);
}

}  // namespace
}  // namespace cachegate
