// TLS on client listeners, against real redis-server and memcached backends: what redis-cli,
// openssl s_client and our own clients see over TLS is what they see in plain text; plain clients
// are refused on a TLS-only port and served on an optional one; client certificates, minimum
// versions and handshake timeouts are enforced; and certificates are reloaded from their files
// (on change and on SIGHUP) without disturbing open connections, a broken file leaving the
// previous certificate in service.

#include <fcntl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/front_proxy.h"
#include "tests/support/hiredis_client.h"
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
using testing::RespClient;
using testing::run_command;
using testing::TempDir;
using testing::TextClient;
using testing::TlsClientOptions;
using testing::TlsMaterial;
using Clock = std::chrono::steady_clock;

// Certificates shared by the tests that do not change them (made once per run).
const TlsMaterial& material() {
  static TlsMaterial m;
  return m;
}

TlsClientOptions client_tls(const TlsMaterial& m, const TlsMaterial::Pair* cert = nullptr,
                            const std::string& server_name = "localhost") {
  TlsClientOptions o;
  o.ca_file = m.ca.cert;
  o.server_name = server_name;
  if (cert != nullptr) {
    o.cert_file = cert->cert;
    o.key_file = cert->key;
  }
  return o;
}

// The YAML of a listener's `tls:` map, indented for a listener entry.
std::string tls_yaml(const std::string& cert, const std::string& key,
                     const std::vector<std::string>& more = {}) {
  std::string y = "    tls:\n      cert: \"" + cert + "\"\n      key: \"" + key + "\"\n";
  for (const auto& line : more)
    y += "      " + line + "\n";
  return y;
}

// PING over TLS: the reply, or nullopt when the handshake or the first read fails.
std::optional<std::string> tls_ping(uint16_t port, const TlsClientOptions& tls) {
  try {
    RespClient c(port, tls, 3000ms);
    std::string reply = c.call({"PING"});
    if (reply == kNoReply) return std::nullopt;
    return reply;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// redis-cli's output, with `args` after the connection options.
std::string cli(const std::vector<std::string>& connection, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"redis-cli"};
  argv.insert(argv.end(), connection.begin(), connection.end());
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  run_command(argv, &out);
  return out;
}

// `args` with every argument that starts with "{}" given `prefix` there instead, so that two
// clients run the same commands on keys of their own.
std::vector<std::string> with_prefix(std::vector<std::string> args, const std::string& prefix) {
  for (auto& a : args)
    if (a.rfind("{}", 0) == 0) a = prefix + a.substr(2);
  return args;
}

// `openssl s_client` with `request` on its standard input; its standard output is returned.
// Verification failures end the handshake (-verify_return_error).
std::string s_client(uint16_t port, const std::string& request,
                     const std::vector<std::string>& options, int* code = nullptr) {
  TempDir dir;
  const std::string input = dir.write_file("request", request);
  std::string command = "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                        " -CAfile '" + material().ca.cert +
                        "' -servername localhost -verify_return_error -quiet";
  for (const auto& o : options)
    command += " " + o;
  command += " < '" + input + "' 2>/dev/null";
  std::string out;
  const int rc = run_command({"sh", "-c", command}, &out, 10000ms);
  if (code != nullptr) *code = rc;
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `content` to `path` as certificate managers do: to a temporary file, then a rename.
void replace_file(const std::string& path, const std::string& content) {
  const std::string temp = path + ".new";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << content;
  }
  REQUIRE(std::rename(temp.c_str(), path.c_str()) == 0);
}

// Polls `condition` every 100 ms until it holds or `limit` passes.
template <class F>
bool eventually(F condition, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// --- serving over TLS ----------------------------------------------------------------------------

TEST_CASE(
    "A Redis listener with TLS required answers RESP clients, redis-cli and s_client as "
    "its plain twin does",
    "[tls]") {
  const TlsMaterial& m = material();
  Proxy proxy(
      "  - {name: r, listen: \"127.0.0.1:{port1}\", pool: red}\n"
      "  - name: rt\n"
      "    listen: \"127.0.0.1:{port2}\"\n"
      "    pool: red\n" +
      tls_yaml(m.server.cert, m.server.key, {"mode: required"}));
  const uint16_t plain_port = proxy.port(1);
  const uint16_t tls_port = proxy.port(2);

  SECTION("a RESP client gets the plain listener's bytes") {
    RespClient plain(plain_port);
    RespClient tls(tls_port, client_tls(m));
    // Both run the same commands on keys of their own; no reply below contains a key.
    const std::vector<std::vector<std::string>> requests = {
        {"PING"},
        {"ECHO", "over tls"},
        {"SET", "{}:s", "value"},
        {"GET", "{}:s"},
        {"GET", "{}:missing"},
        {"INCRBY", "{}:n", "41"},
        {"INCR", "{}:n"},
        {"RPUSH", "{}:l", "a", "b", "c"},
        {"LRANGE", "{}:l", "0", "-1"},
        {"HSET", "{}:h", "f", "1"},
        {"HGETALL", "{}:h"},
        {"MGET", "{}:s", "{}:missing"},
        {"DEL", "{}:s", "{}:n", "{}:l", "{}:h"},
        {"LPUSH", "{}:wrong"},
        {"NOSUCHCOMMAND", "x"},
        {"HELLO", "3"},
        {"HGETALL", "{}:none"},
        {"HELLO", "2"},
    };
    for (const auto& request : requests) {
      INFO(request[0]);
      std::string want = plain.call(with_prefix(request, "tls-test:plain"));
      std::string got = tls.call(with_prefix(request, "tls-test:tls"));
      // HELLO carries the connection id, which differs between any two connections.
      if (request[0] == "HELLO") {
        const auto cut = [](std::string& s) { s = s.substr(0, s.find("$2\r\nid\r\n")); };
        cut(want);
        cut(got);
      }
      CHECK(printable(got) == printable(want));
      CHECK(got != kNoReply);
    }
    // A value larger than a TLS record (16 KiB) crosses in many records, both ways.
    const std::string big(300000, 'x');
    CHECK(tls.call({"SET", "tls-test:big", big}) == "+OK\r\n");
    CHECK(tls.call({"GET", "tls-test:big"}) == testing::resp_bulk(big));
    CHECK(plain.call({"STRLEN", "tls-test:big"}) == ":300000\r\n");
  }

  SECTION("redis-cli --tls prints what it prints on the plain listener") {
    const std::vector<std::string> plain = {"-h", "127.0.0.1", "-p", std::to_string(plain_port)};
    const std::vector<std::string> tls = {
        "--tls", "--cacert", m.ca.cert, "-h", "127.0.0.1", "-p", std::to_string(tls_port)};
    CHECK(cli(tls, {"PING"}) == "PONG\n");
    CHECK(cli(tls, {"SET", "tls-cli:k", "hello over tls"}) == "OK\n");
    CHECK(cli(tls, {"GET", "tls-cli:k"}) == "hello over tls\n");
    CHECK(cli(plain, {"GET", "tls-cli:k"}) == "hello over tls\n");
    // The same commands on keys of their own print the same lines.
    const std::vector<std::vector<std::string>> same = {
        {"RPUSH", "{}:l", "a", "b"},  {"LRANGE", "{}:l", "0", "-1"},
        {"SET", "{}:k", "v"},         {"EXISTS", "{}:k", "{}:l", "{}:none"},
        {"GET", "{}:none"},           {"NOSUCH"},
        {"-3", "HGETALL", "{}:none"},
    };
    for (const auto& args : same) {
      INFO(args[0]);
      CHECK(cli(tls, with_prefix(args, "tls-cli:t")) == cli(plain, with_prefix(args, "tls-cli:p")));
    }
  }

  SECTION("openssl s_client gets the replies to RESP requests on its standard input") {
    const std::string request = testing::resp_command({"SET", "tls-s:k", "from s_client"}) +
                                testing::resp_command({"GET", "tls-s:k"}) +
                                testing::resp_command({"PING"}) + testing::resp_command({"QUIT"});
    int code = -1;
    const std::string out = s_client(tls_port, request, {}, &code);
    CHECK(printable(out) ==
          printable("+OK\r\n" + testing::resp_bulk("from s_client") + "+PONG\r\n+OK\r\n"));
    CHECK(code == 0);
  }

  SECTION("a plain client is disconnected without a reply") {
    RespClient plain_on_tls(tls_port, 3000ms);
    plain_on_tls.send({"PING"});
    CHECK(plain_on_tls.read() == kNoReply);
    CHECK(plain_on_tls.peer_closed(2000ms));
    // And the listener goes on serving TLS.
    CHECK(tls_ping(tls_port, client_tls(m)) == "+PONG\r\n");
  }
}

TEST_CASE("A memcached listener with TLS stores and returns values", "[tls]") {
  const TlsMaterial& m = material();
  Proxy proxy(
      "  - name: mt\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: cache\n" +
      tls_yaml(m.server.cert, m.server.key));
  TextClient c("127.0.0.1", proxy.port(1), client_tls(m));
  CHECK(c.call("set tls:a 5 0 3\r\nabc\r\n") == "STORED\r\n");
  CHECK(c.call("set tls:b 0 0 2\r\nxy\r\n") == "STORED\r\n");
  CHECK(c.call("get tls:a\r\n", "get") == "VALUE tls:a 5 3\r\nabc\r\nEND\r\n");
  CHECK(c.call("get tls:a tls:none tls:b\r\n", "get") ==
        "VALUE tls:a 5 3\r\nabc\r\nVALUE tls:b 0 2\r\nxy\r\nEND\r\n");
  CHECK(c.call("incr tls:missing 1\r\n") == "NOT_FOUND\r\n");
  CHECK(c.call("delete tls:b\r\n") == "DELETED\r\n");
  CHECK(c.call("get tls:b\r\n", "get") == "END\r\n");
  CHECK(c.call("bogus\r\n") == "ERROR\r\n");
  const std::string big(200000, 'v');
  CHECK(c.call("set tls:big 0 0 200000\r\n" + big + "\r\n") == "STORED\r\n");
  CHECK(c.call("get tls:big\r\n", "get") == "VALUE tls:big 0 200000\r\n" + big + "\r\nEND\r\n");
  // The value reached memcached itself: a plain client of the same pool reads it.
  TextClient plain("127.0.0.1", proxy.port(0));
  CHECK(plain.call("get tls:a\r\n", "get") == "VALUE tls:a 5 3\r\nabc\r\nEND\r\n");
}

TEST_CASE("A listener in optional TLS mode serves plain and TLS clients on one port", "[tls]") {
  const TlsMaterial& m = material();
  Proxy proxy(
      "  - name: ro\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
      tls_yaml(m.server.cert, m.server.key, {"mode: optional"}) +
      "  - name: mo\n"
      "    listen: \"127.0.0.1:{port2}\"\n"
      "    pool: cache\n" +
      tls_yaml(m.server.cert, m.server.key, {"mode: optional"}));

  RespClient plain(proxy.port(1));
  RespClient tls(proxy.port(1), client_tls(m));
  CHECK(plain.call({"SET", "opt:k", "written in plain text"}) == "+OK\r\n");
  CHECK(tls.call({"GET", "opt:k"}) == testing::resp_bulk("written in plain text"));
  CHECK(tls.call({"SET", "opt:k", "written over tls"}) == "+OK\r\n");
  CHECK(plain.call({"GET", "opt:k"}) == testing::resp_bulk("written over tls"));
  // Inline requests (telnet, redis-cli's scripts) start with a letter, not 0x16.
  plain.send_raw("PING\r\n");
  CHECK(plain.read() == "+PONG\r\n");

  TextClient mc_plain("127.0.0.1", proxy.port(2));
  TextClient mc_tls("127.0.0.1", proxy.port(2), client_tls(m));
  CHECK(mc_tls.call("set opt:m 0 0 3\r\ntls\r\n") == "STORED\r\n");
  CHECK(mc_plain.call("get opt:m\r\n", "get") == "VALUE opt:m 0 3\r\ntls\r\nEND\r\n");
  CHECK(mc_plain.call("set opt:m 0 0 5\r\nplain\r\n") == "STORED\r\n");
  CHECK(mc_tls.call("get opt:m\r\n", "get") == "VALUE opt:m 0 5\r\nplain\r\nEND\r\n");
}

TEST_CASE("hiredis in plain text on an optional-TLS listener shares keys with TLS clients",
          "[tls][hiredis]") {
  const TlsMaterial& m = material();
  Proxy proxy(
      "  - name: ro\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
      tls_yaml(m.server.cert, m.server.key, {"mode: optional"}));
  testing::Hiredis hiredis(proxy.port(1));
  RespClient tls(proxy.port(1), client_tls(m));
  CHECK(hiredis.call({"SET", "hi:k", "from hiredis"}) == "status:OK");
  CHECK(tls.call({"GET", "hi:k"}) == testing::resp_bulk("from hiredis"));
  CHECK(tls.call({"RPUSH", "hi:l", "a", "b"}) == ":2\r\n");
  CHECK(hiredis.call({"LRANGE", "hi:l", "0", "-1"}) == "[str:a, str:b]");
  CHECK(hiredis.call({"MGET", "hi:k", "hi:none"}) == "[str:from hiredis, nil]");
}

// --- client certificates, versions ---------------------------------------------------------------

TEST_CASE("With client_auth required only clients with a certificate from client_ca get replies",
          "[tls]") {
  const TlsMaterial& m = material();
  Proxy proxy(
      "  - name: rt\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
      tls_yaml(m.server.cert, m.server.key,
               {"client_ca: \"" + m.ca.cert + "\"", "client_auth: required"}));
  const uint16_t port = proxy.port(1);
  const auto before = proxy.stats();

  // With TLS 1.3 the client's handshake completes before the server has checked the client's
  // certificate; the refusal arrives as an alert on the first read. Either way: no reply.
  CHECK(tls_ping(port, client_tls(m)) == std::nullopt);
  CHECK(tls_ping(port, client_tls(m, &m.rogue)) == std::nullopt);
  CHECK(tls_ping(port, client_tls(m, &m.alice)) == "+PONG\r\n");
  CHECK(tls_ping(port, client_tls(m, &m.bob)) == "+PONG\r\n");

  RespClient alice(port, client_tls(m, &m.alice));
  CHECK(alice.call({"SET", "ca:k", "v"}) == "+OK\r\n");
  CHECK(alice.call({"GET", "ca:k"}) == testing::resp_bulk("v"));

  const auto after = proxy.stats();
  CHECK(after.at("cachegate_tls_handshake_failures") -
            before.at("cachegate_tls_handshake_failures") ==
        2);
}

TEST_CASE("With client_auth optional clients with and without a certificate are served", "[tls]") {
  const TlsMaterial& m = material();
  Proxy proxy(
      "  - name: rt\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
      tls_yaml(m.server.cert, m.server.key,
               {"client_ca: \"" + m.ca.cert + "\"", "client_auth: optional"}));
  CHECK(tls_ping(proxy.port(1), client_tls(m)) == "+PONG\r\n");
  CHECK(tls_ping(proxy.port(1), client_tls(m, &m.alice)) == "+PONG\r\n");
  CHECK(tls_ping(proxy.port(1), client_tls(m, &m.bob)) == "+PONG\r\n");
}

TEST_CASE("With min_version 1.3 a client limited to TLS 1.2 is refused", "[tls]") {
  const TlsMaterial& m = material();
  Proxy proxy(
      "  - name: r13\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
      tls_yaml(m.server.cert, m.server.key, {"min_version: \"1.3\""}) +
      "  - name: r12\n"
      "    listen: \"127.0.0.1:{port2}\"\n"
      "    pool: red\n" +
      tls_yaml(m.server.cert, m.server.key));
  const std::string request = testing::resp_command({"PING"}) + testing::resp_command({"QUIT"});
  const std::string served = "+PONG\r\n+OK\r\n";

  int code = 0;
  CHECK(s_client(proxy.port(1), request, {"-tls1_2"}, &code) == "");
  CHECK(code != 0);
  CHECK(s_client(proxy.port(1), request, {"-tls1_3"}, &code) == served);
  CHECK(code == 0);
  // The default minimum is 1.2: the same client is served there.
  CHECK(s_client(proxy.port(2), request, {"-tls1_2"}, &code) == served);
  CHECK(code == 0);
}

// --- handshakes that go wrong
// ----------------------------------------------------------------------

TEST_CASE(
    "A stalled TLS handshake is dropped after handshake_timeout while others are served, "
    "and garbage is dropped at once",
    "[tls]") {
  const TlsMaterial& m = material();
  // One worker: the stalled client and the others share one event loop.
  Proxy proxy(
      "  - name: rt\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
          tls_yaml(m.server.cert, m.server.key, {"handshake_timeout: 500"}),
      "", 1);
  const uint16_t port = proxy.port(1);
  const auto before = proxy.stats();

  // The first bytes of a TLS record header, then nothing.
  const auto stalled_at = Clock::now();
  TextClient stalled("127.0.0.1", port, 5000ms);
  stalled.send(std::string("\x16\x03\x01", 3));

  // Meanwhile a complete client is served at once.
  const auto served_at = Clock::now();
  CHECK(tls_ping(port, client_tls(m)) == "+PONG\r\n");
  CHECK(elapsed_ms(served_at) < 400);
  CHECK_FALSE(stalled.peer_closed(100ms));

  CHECK(stalled.peer_closed(3000ms));
  const long long stall_ms = elapsed_ms(stalled_at);
  CHECK(stall_ms >= 450);
  CHECK(stall_ms < 3000);

  // A handshake byte followed by something that is no TLS record: closed without waiting.
  const auto garbage_at = Clock::now();
  TextClient garbage("127.0.0.1", port, 5000ms);
  garbage.send("\x16this is not a TLS record\r\n");
  CHECK(garbage.peer_closed(3000ms));
  CHECK(elapsed_ms(garbage_at) < 400);

  const auto after = proxy.stats();
  CHECK(after.at("cachegate_tls_handshake_timeouts") -
            before.at("cachegate_tls_handshake_timeouts") ==
        1);
  CHECK(after.at("cachegate_tls_handshake_failures") -
            before.at("cachegate_tls_handshake_failures") ==
        2);
  CHECK(after.at("cachegate_tls_handshakes") - before.at("cachegate_tls_handshakes") == 1);
}

// --- reload
// ----------------------------------------------------------------------------------------

// The listener's certificate and key, in files of their own that the tests replace.
struct ServedFiles {
  TempDir dir;
  std::string cert = dir.path() + "/served.pem";
  std::string key = dir.path() + "/served.key";
  void serve(const TlsMaterial::Pair& pair) {
    replace_file(cert, read_file(pair.cert));
    replace_file(key, read_file(pair.key));
  }
};

// Which certificate a new handshake meets: only `server2` carries the name second.localhost.
bool serves_second(uint16_t port, const TlsMaterial& m) {
  return tls_ping(port, client_tls(m, nullptr, "second.localhost")) == "+PONG\r\n";
}
bool serves_first(uint16_t port, const TlsMaterial& m) {
  return tls_ping(port, client_tls(m)) == "+PONG\r\n" && !serves_second(port, m);
}

TEST_CASE("A renewed certificate file is served to new connections while open ones go on",
          "[tls]") {
  const TlsMaterial& m = material();
  ServedFiles files;
  files.serve(m.server);
  Proxy proxy(
      "  - name: rt\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
      tls_yaml(files.cert, files.key));
  const uint16_t port = proxy.port(1);
  REQUIRE(serves_first(port, m));

  RespClient before(port, client_tls(m));
  CHECK(before.call({"SET", "reload:k", "v1"}) == "+OK\r\n");

  files.serve(m.server2);
  const auto renewed_at = Clock::now();
  // The files are checked every 2 s.
  CHECK(eventually([&] { return serves_second(port, m); }, 5000ms));
  CHECK(elapsed_ms(renewed_at) < 5000);

  // The connection from before the reload is untouched.
  CHECK(before.call({"GET", "reload:k"}) == testing::resp_bulk("v1"));
  CHECK(before.call({"SET", "reload:k", "v2"}) == "+OK\r\n");
  RespClient after(port, client_tls(m, nullptr, "second.localhost"));
  CHECK(after.call({"GET", "reload:k"}) == testing::resp_bulk("v2"));
  CHECK(proxy.server().log().find("TLS certificate and key reloaded") != std::string::npos);
}

// PEM readers skip text before "-----BEGIN": leading filler makes every file the same size.
std::string padded(const std::string& pem, size_t size) {
  REQUIRE(pem.size() + 1 < size);
  return std::string(size - pem.size() - 1, '#') + "\n" + pem;
}

// Overwrites `path` in place and puts its modification time back: the file watch (inode, size,
// modification time) cannot see the change, only an explicit reload can.
void overwrite_unnoticed(const std::string& path, const std::string& content) {
  struct stat before;
  REQUIRE(::stat(path.c_str(), &before) == 0);
  {
    std::ofstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(0);
    out << content;
  }
  struct stat now;
  REQUIRE(::stat(path.c_str(), &now) == 0);
  REQUIRE(now.st_size == before.st_size);
  REQUIRE(now.st_ino == before.st_ino);
  const timespec times[2] = {before.st_atim, before.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

TEST_CASE("SIGHUP reloads the certificate even when the files look unchanged", "[tls]") {
  const TlsMaterial& m = material();
  ServedFiles files;
  replace_file(files.cert, padded(read_file(m.server.cert), 4096));
  replace_file(files.key, padded(read_file(m.server.key), 1024));
  Proxy proxy(
      "  - name: rt\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
      tls_yaml(files.cert, files.key));
  const uint16_t port = proxy.port(1);
  REQUIRE(serves_first(port, m));
  RespClient before(port, client_tls(m));
  CHECK(before.call({"PING"}) == "+PONG\r\n");

  overwrite_unnoticed(files.cert, padded(read_file(m.server2.cert), 4096));
  overwrite_unnoticed(files.key, padded(read_file(m.server2.key), 1024));
  // A file-watch round passes without a reload: nothing it looks at changed.
  std::this_thread::sleep_for(2300ms);
  CHECK(serves_first(port, m));

  proxy.server().process().signal(SIGHUP);
  CHECK(eventually([&] { return serves_second(port, m); }, 1500ms));
  CHECK(before.call({"PING"}) == "+PONG\r\n");
  CHECK(proxy.server().log().find("SIGHUP") != std::string::npos);
}

TEST_CASE("A broken certificate file leaves the previous certificate in service and is logged",
          "[tls]") {
  const TlsMaterial& m = material();
  ServedFiles files;
  files.serve(m.server);
  Proxy proxy(
      "  - name: rt\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: red\n" +
      tls_yaml(files.cert, files.key));
  const uint16_t port = proxy.port(1);
  REQUIRE(serves_first(port, m));
  RespClient before(port, client_tls(m));

  replace_file(files.cert,
               "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
               "-----END CERTIFICATE-----\n");
  auto failure_logged = [&] {
    return proxy.server().log().find("TLS reload failed") != std::string::npos;
  };
  CHECK(eventually(failure_logged, 5000ms));
  const std::string log = proxy.server().log();
  const size_t line_start = log.rfind('\n', log.find("TLS reload failed")) + 1;
  const std::string line = log.substr(line_start, log.find('\n', line_start) - line_start);
  INFO(line);
  CHECK(line.find(" error ") != std::string::npos);
  CHECK(line.find("'rt'") != std::string::npos);

  // New handshakes still get the old certificate; the open connection goes on.
  CHECK(serves_first(port, m));
  CHECK(before.call({"PING"}) == "+PONG\r\n");

  // An explicit reload of the broken file fails the same way.
  proxy.server().process().signal(SIGHUP);
  std::this_thread::sleep_for(300ms);
  CHECK(serves_first(port, m));
  CHECK(proxy.server().process().running());

  // Once the file is good again, it is taken.
  replace_file(files.key, read_file(m.server2.key));
  replace_file(files.cert, read_file(m.server2.cert));
  CHECK(eventually([&] { return serves_second(port, m); }, 5000ms));
}

}  // namespace
}  // namespace cachegate
