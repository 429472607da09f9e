// TLS and credentials towards the servers, against a real memcached started with -Z (TLS only)
// and -Y (ASCII authentication) and a real redis-server with only a TLS port, ACL users or
// requirepass, all with certificates made for this run. Plain clients of cachegate read and
// write through to them (checked on the servers themselves); a server whose certificate does not
// verify, or whose name does not match, fails requests at once with a connection error and a
// logged reason; wrong server credentials fail requests without the password reaching the log.

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

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
using testing::CachegateServer;
using testing::ChildProcess;
using testing::MemcachedServer;
using testing::printable;
using testing::resp_array_of_bulks;
using testing::resp_bulk;
using testing::RespClient;
using testing::TempDir;
using testing::TextClient;
using testing::TlsClientOptions;
using testing::TlsMaterial;
using Clock = std::chrono::steady_clock;

// Distinctive, so that the log checks can look for them.
const std::string kServerPassword = "srv-Secret-60213";
const std::string kWrongPassword = "srv-Wrong-77140";

constexpr std::string_view kMcConnectFailed = "SERVER_ERROR backend connection failed\r\n";
constexpr std::string_view kRedisConnectFailed = "-ERR cachegate: backend connection failed\r\n";

const TlsMaterial& material() {
  static TlsMaterial m;
  return m;
}

std::string text(const std::optional<std::string>& reply) {
  return reply.value_or("<no reply>");
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
    std::this_thread::sleep_for(20ms);
  }
}

// Files a memcached running as `nobody` must read after dropping root: a directory it may
// traverse (a fresh temporary directory is 0700) holding world-readable copies. Only test
// material goes here.
class NobodyReadable {
 public:
  NobodyReadable() { std::filesystem::permissions(dir_.path(), std::filesystem::perms(0755)); }
  std::string copy(const std::string& from, const std::string& name) {
    const std::string to = dir_.path() + "/" + name;
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(to, std::filesystem::perms(0644));
    return to;
  }
  std::string write(const std::string& name, const std::string& content) {
    const std::string to = dir_.write_file(name, content);
    std::filesystem::permissions(to, std::filesystem::perms(0644));
    return to;
  }

 private:
  TempDir dir_;
};

// A memcached that speaks only TLS (-Z) with `cert` as its certificate (plain when `tls` is
// false), and with `-Y authfile` when `authfile_content` is given.
class TestMemcached {
 public:
  explicit TestMemcached(const TlsMaterial::Pair& cert, const std::string& authfile_content = {},
                         bool tls = true) {
    std::vector<std::string> args;
    if (tls) {
      args = {"-Z", "-o",
              "ssl_chain_cert=" + files_.copy(cert.cert, "server.pem") +
                  ",ssl_key=" + files_.copy(cert.key, "server-key.pem")};
    }
    if (!authfile_content.empty()) {
      args.push_back("-Y");
      args.push_back(files_.write("authfile", authfile_content));
    }
    server_ = std::make_unique<MemcachedServer>(args);
  }
  // Its data is throw-away; SIGTERM would cost a second of waiting for its clock thread.
  ~TestMemcached() { server_->process().signal(SIGKILL); }

  uint16_t port() const { return server_->port(); }
  std::string output() { return server_->process().output(); }

  // A TLS client straight to the server.
  std::unique_ptr<TextClient> direct() {
    TlsClientOptions o;
    o.ca_file = material().ca.cert;
    return std::make_unique<TextClient>("127.0.0.1", port(), o);
  }

 private:
  NobodyReadable files_;
  std::unique_ptr<MemcachedServer> server_;
};

// A redis-server with a TLS port and no plain one.
class TlsRedis {
 public:
  TlsRedis(const TlsMaterial::Pair& cert, bool auth_clients,
           const std::vector<std::string>& extra_args = {}) {
    const TlsMaterial& m = material();
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = testing::free_port();
      std::vector<std::string> argv = {"redis-server",
                                       "--port",
                                       "0",
                                       "--tls-port",
                                       std::to_string(port_),
                                       "--bind",
                                       "127.0.0.1",
                                       "--tls-cert-file",
                                       cert.cert,
                                       "--tls-key-file",
                                       cert.key,
                                       "--tls-ca-cert-file",
                                       m.ca.cert,
                                       "--tls-auth-clients",
                                       auth_clients ? "yes" : "no",
                                       "--save",
                                       "",
                                       "--appendonly",
                                       "no",
                                       "--daemonize",
                                       "no",
                                       "--dir",
                                       dir_.path()};
      argv.insert(argv.end(), extra_args.begin(), extra_args.end());
      process_ = ChildProcess(argv, dir_.path() + "/redis.log");
      if (testing::wait_for_port("127.0.0.1", port_, 5000ms)) return;
      process_.stop();
    }
    throw std::runtime_error("redis-server did not start:\n" + process_.output());
  }

  uint16_t port() const { return port_; }

  // A TLS client straight to the server, with a client certificate (alice's) in case it asks.
  std::unique_ptr<RespClient> direct() {
    const TlsMaterial& m = material();
    TlsClientOptions o;
    o.ca_file = m.ca.cert;
    o.cert_file = m.alice.cert;
    o.key_file = m.alice.key;
    return std::make_unique<RespClient>(port_, o);
  }

 private:
  TempDir dir_;
  uint16_t port_ = 0;
  ChildProcess process_;
};

// cachegate with one plain listener in front of one server; `pool_more` are further pool keys,
// indented by four spaces.
std::unique_ptr<CachegateServer> gate(const std::string& protocol, uint16_t server_port,
                                      const std::string& pool_more) {
  std::string y = "workers: 1\n";
  y += "listeners:\n";
  y += "  - {name: front, listen: \"127.0.0.1:{port}\", pool: back}\n";
  y += "pools:\n";
  y += "  back:\n";
  y += "    protocol: " + protocol + "\n";
  y += "    timeout: 3000\n";
  y += "    connect_timeout: 3000\n";
  y += "    servers: [\"127.0.0.1:" + std::to_string(server_port) + ":1 s0\"]\n";
  y += pool_more;
  return std::make_unique<CachegateServer>(y);
}

std::string tls_yaml(const std::vector<std::string>& lines) {
  if (lines.empty()) return "    tls: {}\n";
  std::string y = "    tls:\n";
  for (const auto& line : lines)
    y += "      " + line + "\n";
  return y;
}

std::string quoted(const std::string& path) {
  return "\"" + path + "\"";
}

std::unique_ptr<TextClient> mc_client(CachegateServer& g) {
  return std::make_unique<TextClient>("127.0.0.1", g.port());
}

// --- memcached over TLS ------------------------------------------------------------------------

TEST_CASE("Plain memcached clients read and write through cachegate to a TLS-only memcached",
          "[backend-tls]") {
  const TlsMaterial& m = material();
  TestMemcached server(m.server);
  const std::string server_name = GENERATE(std::string(), std::string("localhost"));
  INFO("server_name: " + server_name);
  std::vector<std::string> tls = {"ca: " + quoted(m.ca.cert)};
  if (!server_name.empty()) tls.push_back("server_name: " + server_name);
  auto g = gate("memcached", server.port(), tls_yaml(tls));

  // The server takes TLS only: a plain request gets no answer.
  {
    TextClient plain("127.0.0.1", server.port(), 1000ms);
    plain.send("version\r\n");
    CHECK_FALSE(plain.read_line().has_value());
  }

  auto c = mc_client(*g);
  CHECK(text(c->call("set tls:k 0 0 7\r\nthrough\r\n")) == "STORED\r\n");
  CHECK(text(c->call("get tls:k\r\n", "get")) == "VALUE tls:k 0 7\r\nthrough\r\nEND\r\n");
  auto d = server.direct();
  CHECK(text(d->call("get tls:k\r\n", "get")) == "VALUE tls:k 0 7\r\nthrough\r\nEND\r\n");

  REQUIRE(text(d->call("set tls:direct 5 0 6\r\ndirect\r\n")) == "STORED\r\n");
  CHECK(text(c->call("get tls:k tls:direct tls:none\r\n", "get")) ==
        "VALUE tls:k 0 7\r\nthrough\r\nVALUE tls:direct 5 6\r\ndirect\r\nEND\r\n");
  CHECK(text(c->call("mg tls:direct v f\r\n", "meta")) == "VA 6 f5\r\ndirect\r\n");
  CHECK(text(c->call("delete tls:k\r\n")) == "DELETED\r\n");
  CHECK(text(d->call("get tls:k\r\n", "get")) == "END\r\n");

  // A value larger than a TLS record (16 KiB) crosses in several.
  const std::string big(100000, 'b');
  CHECK(text(c->call("set tls:big 0 0 100000\r\n" + big + "\r\n")) == "STORED\r\n");
  CHECK(text(d->call("get tls:big\r\n", "get")) ==
        "VALUE tls:big 0 100000\r\n" + big + "\r\nEND\r\n");
  CHECK(text(c->call("get tls:big\r\n", "get")) ==
        "VALUE tls:big 0 100000\r\n" + big + "\r\nEND\r\n");
}

TEST_CASE("A memcached whose certificate does not verify fails requests at once, and logs why",
          "[backend-tls]") {
  const TlsMaterial& m = material();
  TestMemcached server(m.server);

  SECTION("a CA that did not sign the server's certificate") {
    auto g = gate("memcached", server.port(), tls_yaml({"ca: " + quoted(m.rogue_ca.cert)}));
    auto c = mc_client(*g);
    const auto start = Clock::now();
    CHECK(text(c->call("set v:k 0 0 1\r\nx\r\n")) == kMcConnectFailed);
    // A verification failure is known at once; it is not a timeout (3 s here).
    CHECK(elapsed_ms(start) < 2000);
    CHECK(text(c->call("get v:k\r\n", "get")).rfind("SERVER_ERROR backend ", 0) == 0);
    CHECK(eventually(
        [&] {
          const std::string log = g->log();
          return log.find("TLS handshake failed") != std::string::npos &&
                 log.find("certificate verify failed") != std::string::npos;
        },
        2000ms));
    INFO(g->log());
    CHECK(text(server.direct()->call("get v:k\r\n", "get")) == "END\r\n");
  }

  SECTION("verify: false accepts the same server") {
    auto g = gate("memcached", server.port(),
                  tls_yaml({"ca: " + quoted(m.rogue_ca.cert), "verify: false"}));
    auto c = mc_client(*g);
    CHECK(text(c->call("set v:k 0 0 1\r\nx\r\n")) == "STORED\r\n");
    CHECK(text(server.direct()->call("get v:k\r\n", "get")) == "VALUE v:k 0 1\r\nx\r\nEND\r\n");
    CHECK(g->log().find("TLS handshake failed") == std::string::npos);
  }

  SECTION("a server_name the certificate does not name") {
    auto g = gate("memcached", server.port(),
                  tls_yaml({"ca: " + quoted(m.ca.cert), "server_name: second.localhost"}));
    auto c = mc_client(*g);
    const auto start = Clock::now();
    CHECK(text(c->call("set v:k 0 0 1\r\nx\r\n")) == kMcConnectFailed);
    CHECK(elapsed_ms(start) < 2000);
    CHECK(eventually(
        [&] {
          const std::string log = g->log();
          return log.find("TLS handshake failed") != std::string::npos &&
                 log.find("certificate") != std::string::npos;
        },
        2000ms));
    INFO(g->log());
    CHECK(text(server.direct()->call("get v:k\r\n", "get")) == "END\r\n");
  }
}

// --- memcached credentials ---------------------------------------------------------------------

TEST_CASE("cachegate logs in to a memcached started with -Y", "[backend-tls]") {
  const TlsMaterial& m = material();
  const bool tls = GENERATE(false, true);
  INFO((tls ? "over TLS" : "plain"));
  TestMemcached server(m.server, "cacheuser:" + kServerPassword + "\n", tls);
  const std::string tls_keys = tls ? tls_yaml({"ca: " + quoted(m.ca.cert)}) : "";
  // Straight to the server: it wants a login first.
  auto direct = [&]() {
    auto d = tls ? server.direct() : std::make_unique<TextClient>("127.0.0.1", server.port());
    const std::string token = "cacheuser " + kServerPassword;
    REQUIRE(text(d->call("set x 0 0 " + std::to_string(token.size()) + "\r\n" + token + "\r\n")) ==
            "STORED\r\n");
    return d;
  };

  SECTION("with the right password requests go through") {
    auto g =
        gate("memcached", server.port(),
             tls_keys + "    auth: {username: cacheuser, password: \"" + kServerPassword + "\"}\n");
    auto c = mc_client(*g);
    CHECK(text(c->call("set y:k 0 0 2\r\nok\r\n")) == "STORED\r\n");
    CHECK(text(c->call("get y:k\r\n", "get")) == "VALUE y:k 0 2\r\nok\r\nEND\r\n");
    CHECK(text(direct()->call("get y:k\r\n", "get")) == "VALUE y:k 0 2\r\nok\r\nEND\r\n");
    // The login is cachegate's own: it is not an item the client can see.
    CHECK(text(c->call("get cachegate-login\r\n", "get")) == "END\r\n");
    CHECK(g->log().find(kServerPassword) == std::string::npos);
  }

  SECTION("with a wrong password requests fail and the log says why, without the password") {
    auto g =
        gate("memcached", server.port(),
             tls_keys + "    auth: {username: cacheuser, password: \"" + kWrongPassword + "\"}\n");
    auto c = mc_client(*g);
    CHECK(text(c->call("set y:k 0 0 2\r\nno\r\n")) == kMcConnectFailed);
    CHECK(text(c->call("get y:k\r\n", "get")).rfind("SERVER_ERROR backend ", 0) == 0);
    CHECK(eventually([&] { return g->log().find("memcached login refused") != std::string::npos; },
                     2000ms));
    const std::string log = g->log();
    INFO(log);
    CHECK(log.find(kWrongPassword) == std::string::npos);
    CHECK(log.find(kServerPassword) == std::string::npos);
    CHECK(text(direct()->call("get y:k\r\n", "get")) == "END\r\n");
  }

  SECTION("without credentials the server refuses every request") {
    auto g = gate("memcached", server.port(), tls_keys);
    auto c = mc_client(*g);
    // memcached's own refusal, passed on as the server's reply.
    CHECK(text(c->call("get y:k\r\n", "get")) == "CLIENT_ERROR unauthenticated\r\n");
  }
}

TEST_CASE("A memcached password can come from password_file", "[backend-tls]") {
  TestMemcached server(material().server, "cacheuser:" + kServerPassword + "\n", false);
  TempDir dir;
  const std::string file = dir.write_file("mc-password", kServerPassword + "\n");
  auto g = gate("memcached", server.port(),
                "    auth: {username: cacheuser, password_file: " + quoted(file) + "}\n");
  auto c = mc_client(*g);
  CHECK(text(c->call("set pf:k 0 0 2\r\nok\r\n")) == "STORED\r\n");
  CHECK(text(c->call("get pf:k\r\n", "get")) == "VALUE pf:k 0 2\r\nok\r\nEND\r\n");
}

// --- Redis over TLS ----------------------------------------------------------------------------

TEST_CASE("Plain Redis clients read and write through cachegate to a TLS-only redis-server",
          "[backend-tls]") {
  const TlsMaterial& m = material();
  TlsRedis server(m.server, false);
  const std::string server_name = GENERATE(std::string(), std::string("localhost"));
  INFO("server_name: " + server_name);
  std::vector<std::string> tls = {"ca: " + quoted(m.ca.cert)};
  if (!server_name.empty()) tls.push_back("server_name: " + server_name);
  auto g = gate("redis", server.port(), tls_yaml(tls));

  RespClient c(g->port());
  CHECK(c.call({"SET", "tls:k", "through"}) == "+OK\r\n");
  CHECK(c.call({"GET", "tls:k"}) == resp_bulk("through"));
  auto d = server.direct();
  CHECK(d->call({"GET", "tls:k"}) == resp_bulk("through"));
  REQUIRE(d->call({"SET", "tls:direct", "direct"}) == "+OK\r\n");
  CHECK(c.call({"MGET", "tls:k", "tls:direct"}) == resp_array_of_bulks({"through", "direct"}));
  CHECK(c.call({"HSET", "tls:h", "f", "v"}) == ":1\r\n");
  CHECK(d->call({"HGET", "tls:h", "f"}) == resp_bulk("v"));
  CHECK(c.call({"DEL", "tls:k"}) == ":1\r\n");
  CHECK(d->call({"EXISTS", "tls:k"}) == ":0\r\n");

  const std::string big(100000, 'r');
  CHECK(c.call({"SET", "tls:big", big}) == "+OK\r\n");
  CHECK(d->call({"GET", "tls:big"}) == resp_bulk(big));
  CHECK(c.call({"GET", "tls:big"}) == resp_bulk(big));

  // RESP3 clients get server connections of their own, over TLS as well.
  RespClient r3(g->port());
  CHECK(r3.call({"HELLO", "3"}).rfind("%7\r\n", 0) == 0);
  CHECK(r3.call({"HGETALL", "tls:h"}) == "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
}

TEST_CASE("A redis-server that requires client certificates accepts the pool's", "[backend-tls]") {
  const TlsMaterial& m = material();
  TlsRedis server(m.server, true);

  SECTION("with cert and key") {
    auto g = gate("redis", server.port(),
                  tls_yaml({"ca: " + quoted(m.ca.cert), "cert: " + quoted(m.alice.cert),
                            "key: " + quoted(m.alice.key)}));
    RespClient c(g->port());
    CHECK(c.call({"SET", "cc:k", "v"}) == "+OK\r\n");
    CHECK(c.call({"GET", "cc:k"}) == resp_bulk("v"));
    CHECK(server.direct()->call({"GET", "cc:k"}) == resp_bulk("v"));
  }

  SECTION("without one the server turns cachegate away") {
    auto g = gate("redis", server.port(), tls_yaml({"ca: " + quoted(m.ca.cert)}));
    RespClient c(g->port());
    const std::string reply = c.call({"SET", "cc:k", "v"});
    INFO(printable(reply));
    CHECK(reply.rfind("-ERR cachegate: backend connection ", 0) == 0);
    CHECK(server.direct()->call({"EXISTS", "cc:k"}) == ":0\r\n");
  }
}

TEST_CASE("A redis-server whose certificate does not verify fails requests at once",
          "[backend-tls]") {
  const TlsMaterial& m = material();

  SECTION("a CA that did not sign the server's certificate") {
    TlsRedis server(m.server, false);
    auto g = gate("redis", server.port(), tls_yaml({"ca: " + quoted(m.rogue_ca.cert)}));
    RespClient c(g->port());
    const auto start = Clock::now();
    CHECK(c.call({"SET", "v:k", "x"}) == kRedisConnectFailed);
    CHECK(elapsed_ms(start) < 2000);
    CHECK(c.call({"GET", "v:k"}).rfind("-ERR cachegate: backend ", 0) == 0);
    CHECK(eventually(
        [&] {
          const std::string log = g->log();
          return log.find("TLS handshake failed") != std::string::npos &&
                 log.find("certificate verify failed") != std::string::npos;
        },
        2000ms));
    INFO(g->log());
    CHECK(server.direct()->call({"EXISTS", "v:k"}) == ":0\r\n");
  }

  SECTION("verify: false accepts the same server") {
    TlsRedis server(m.server, false);
    auto g =
        gate("redis", server.port(), tls_yaml({"ca: " + quoted(m.rogue_ca.cert), "verify: false"}));
    RespClient c(g->port());
    CHECK(c.call({"SET", "v:k", "x"}) == "+OK\r\n");
    CHECK(server.direct()->call({"GET", "v:k"}) == resp_bulk("x"));
  }

  SECTION("server_name must be a name the certificate holds") {
    // server2's certificate names second.localhost; server's does not.
    TlsRedis right(m.server2, false);
    TlsRedis wrong(m.server, false);
    const std::string keys =
        tls_yaml({"ca: " + quoted(m.ca.cert), "server_name: second.localhost"});
    auto good = gate("redis", right.port(), keys);
    auto bad = gate("redis", wrong.port(), keys);
    RespClient ok(good->port());
    CHECK(ok.call({"SET", "v:k", "x"}) == "+OK\r\n");
    CHECK(right.direct()->call({"GET", "v:k"}) == resp_bulk("x"));
    RespClient refused(bad->port());
    CHECK(refused.call({"SET", "v:k", "x"}) == kRedisConnectFailed);
    CHECK(eventually(
        [&] {
          const std::string log = bad->log();
          return log.find("TLS handshake failed") != std::string::npos &&
                 log.find("certificate") != std::string::npos;
        },
        2000ms));
    INFO(bad->log());
    CHECK(wrong.direct()->call({"EXISTS", "v:k"}) == ":0\r\n");
  }
}

// --- Redis credentials -------------------------------------------------------------------------

TEST_CASE("cachegate logs in to a TLS redis-server as an ACL user", "[backend-tls]") {
  const TlsMaterial& m = material();
  TlsRedis server(
      m.server, false,
      {"--user", "cg", "on", ">" + kServerPassword, "~*", "+@all", "--user", "default", "off"});
  const std::string ca = "ca: " + quoted(m.ca.cert);
  auto direct = [&] {
    auto d = server.direct();
    REQUIRE(d->call({"AUTH", "cg", kServerPassword}) == "+OK\r\n");
    return d;
  };

  SECTION("with the right password") {
    auto g =
        gate("redis", server.port(),
             tls_yaml({ca}) + "    auth: {username: cg, password: \"" + kServerPassword + "\"}\n");
    RespClient c(g->port());
    CHECK(c.call({"SET", "acl:k", "v"}) == "+OK\r\n");
    CHECK(c.call({"GET", "acl:k"}) == resp_bulk("v"));
    CHECK(direct()->call({"GET", "acl:k"}) == resp_bulk("v"));
    CHECK(g->log().find(kServerPassword) == std::string::npos);
  }

  SECTION("with a wrong password") {
    auto g =
        gate("redis", server.port(),
             tls_yaml({ca}) + "    auth: {username: cg, password: \"" + kWrongPassword + "\"}\n");
    RespClient c(g->port());
    CHECK(c.call({"SET", "acl:k", "v"}) == kRedisConnectFailed);
    CHECK(eventually([&] { return g->log().find("AUTH refused") != std::string::npos; }, 2000ms));
    const std::string log = g->log();
    INFO(log);
    CHECK(log.find("WRONGPASS") != std::string::npos);
    CHECK(log.find(kWrongPassword) == std::string::npos);
    CHECK(log.find(kServerPassword) == std::string::npos);
    CHECK(direct()->call({"EXISTS", "acl:k"}) == ":0\r\n");
  }

  SECTION("without credentials the disabled default user can do nothing") {
    auto g = gate("redis", server.port(), tls_yaml({ca}));
    RespClient c(g->port());
    // redis-server's own refusal, passed on as the server's reply.
    CHECK(c.call({"SET", "acl:k", "v"}).rfind("-NOAUTH ", 0) == 0);
    CHECK(direct()->call({"EXISTS", "acl:k"}) == ":0\r\n");
  }
}

TEST_CASE("cachegate sends a password-only AUTH to a redis-server with requirepass",
          "[backend-tls]") {
  testing::RedisServer server({"--requirepass", kServerPassword});
  auto direct = [&] {
    auto d = server.client();
    REQUIRE(d->call({"AUTH", kServerPassword}) == "+OK\r\n");
    return d;
  };

  SECTION("right") {
    auto g = gate("redis", server.port(), "    auth: {password: \"" + kServerPassword + "\"}\n");
    RespClient c(g->port());
    CHECK(c.call({"SET", "rp:k", "v"}) == "+OK\r\n");
    CHECK(direct()->call({"GET", "rp:k"}) == resp_bulk("v"));
  }

  SECTION("wrong") {
    auto g = gate("redis", server.port(), "    auth: {password: \"" + kWrongPassword + "\"}\n");
    RespClient c(g->port());
    CHECK(c.call({"SET", "rp:k", "v"}) == kRedisConnectFailed);
    CHECK(eventually([&] { return g->log().find("AUTH refused") != std::string::npos; }, 2000ms));
    CHECK(g->log().find(kWrongPassword) == std::string::npos);
    CHECK(direct()->call({"EXISTS", "rp:k"}) == ":0\r\n");
  }
}

}  // namespace
}  // namespace cachegate
