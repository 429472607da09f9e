// The admin endpoint (`admin:`), `drain_timeout` and `slow_log`: every key, its defaults, and
// each error pinned by path, line:column and message, as load_test.cc does for the rest.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "config/load.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_material.h"
#include "tests/unit/config/expected_errors.h"

namespace cachegate::config {
namespace {

using Catch::Matchers::Contains;
using std::chrono::milliseconds;

const testing::TlsMaterial& tls_material() {
  static const testing::TlsMaterial m;
  return m;
}

std::string lines_at(std::string_view indent, const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines)
    out += std::string(indent) + l + "\n";
  return out;
}

// A valid configuration (its listener's address at line 2, column 24) followed by `text`, which
// starts at line 5.
std::string with_top(std::string_view text) {
  return yaml(R"(
listeners:
  - {name: mc, listen: 127.0.0.1:22122, pool: cache}
pools:
  cache: {servers: [127.0.0.1:21211:1]}
)") + yaml(text);
}

// with_top() with `admin:` on line 5, column 1 and `lines` under it from line 6, column 3.
std::string admin_lines(const std::vector<std::string>& lines) {
  return with_top("admin:\n") + lines_at("  ", lines);
}

// admin_lines() with a valid listen on line 6; `lines` from line 7, column 3.
std::string admin_with(const std::vector<std::string>& lines) {
  std::vector<std::string> all{"listen: 127.0.0.1:9090"};
  all.insert(all.end(), lines.begin(), lines.end());
  return admin_lines(all);
}

// ---------------------------------------------------------------------------------------------
// admin

TEST_CASE("without admin, drain_timeout or slow_log every default holds", "[config][admin]") {
  const Config c = require_ok(with_top("")).config;
  CHECK_FALSE(c.admin.has_value());
  CHECK(c.drain_timeout == milliseconds(15000));
  CHECK(c.slow_log_threshold == milliseconds(0));
  // An empty `admin:` (everything commented out) is the same as none.
  CHECK_FALSE(require_ok(with_top("admin:\n")).config.admin.has_value());
}

TEST_CASE("admin with only listen gets every default", "[config][admin]") {
  const Config c = require_ok(admin_with({})).config;
  REQUIRE(c.admin.has_value());
  const AdminConfig& a = *c.admin;
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 9090);
  CHECK(a.token.empty());
  CHECK(a.token_file.empty());
  CHECK_FALSE(a.tls.has_value());
  CHECK(a.max_connections == 64);
  CHECK(a.request_timeout == milliseconds(10000));
  CHECK(a.where.line == 5);
  CHECK(a.where.column == 1);
}

TEST_CASE("every key of admin round-trips", "[config][admin]") {
  const testing::TempDir dir;
  const std::string token_file = dir.write_file("token", "s3cret-token\r\n\n");
  const auto& m = tls_material();
  const Config c = require_ok(admin_lines({
                                  "listen: \"[::1]:0\"",
                                  "token_file: " + token_file,
                                  "tls:",
                                  "  cert: " + m.server.cert,
                                  "  key: " + m.server.key,
                                  "  client_auth: optional",
                                  "  client_ca: " + m.ca.cert,
                                  "  min_version: 1.3",
                                  "  mode: optional",
                                  "  handshake_timeout: 2500",
                                  "max_connections: 5",
                                  "request_timeout: 300",
                              }))
                       .config;
  REQUIRE(c.admin.has_value());
  const AdminConfig& a = *c.admin;
  CHECK(a.host == "::1");
  CHECK(a.port == 0);
  CHECK(a.token == "s3cret-token");
  CHECK(a.token_file == token_file);
  REQUIRE(a.tls.has_value());
  CHECK(a.tls->cert == m.server.cert);
  CHECK(a.tls->key == m.server.key);
  CHECK(a.tls->client_ca == m.ca.cert);
  CHECK(a.tls->client_auth == TlsClientAuth::kOptional);
  CHECK(a.tls->min_version == TlsVersion::k1_3);
  CHECK(a.tls->mode == TlsMode::kOptional);
  CHECK(a.tls->handshake_timeout == milliseconds(2500));
  CHECK(a.tls->where.line == 8);
  CHECK(a.tls->where.column == 3);
  CHECK(a.max_connections == 5);
  CHECK(a.request_timeout == milliseconds(300));
}

TEST_CASE("admin.listen is required and checked like a listener's", "[config][admin]") {
  require_error(admin_lines({"max_connections: 5"}),
                {"admin", 5, 1, "missing required key 'listen'"});
  struct Good {
    std::string text, host;
    uint16_t port;
  };
  for (const Good& g : std::vector<Good>{{"127.0.0.1:0", "127.0.0.1", 0},
                                         {"\"[::1]:9090\"", "::1", 9090},
                                         {"localhost:9090", "localhost", 9090},
                                         {"0.0.0.0:65535", "0.0.0.0", 65535}}) {
    INFO(g.text);
    const Config c = require_ok(admin_lines({"listen: " + g.text})).config;
    CHECK(c.admin->host == g.host);
    CHECK(c.admin->port == g.port);
  }
  require_error(admin_lines({"listen: 9090"}),
                {"admin.listen", 6, 11, "'9090' is not in the form host:port"});
  require_error(admin_lines({"listen: ::1:9090"}),
                {"admin.listen", 6, 11, "has an IPv6 address without brackets"});
  require_error(admin_lines({"listen: 127.0.0.1:65536"}),
                {"admin.listen", 6, 11, "has an invalid port '65536' (must be 0 to 65535)"});
  require_error(admin_lines({"listen: [127.0.0.1, 9090]"}),
                {"admin.listen", 6, 11, "expected a string, got a list"});
  require_error(admin_lines({"listen:"}), {"admin.listen", 6, 3, "expected a string, got nothing"});
}

TEST_CASE("admin.listen must not be a listener's address", "[config][admin]") {
  require_error(admin_lines({"listen: 127.0.0.1:22122"}),
                {"admin.listen", 6, 11,
                 "address '127.0.0.1:22122' is already used by listener 'mc' (defined at 2:24)"});
  // Port 0 never clashes; neither does another address on the same port.
  CHECK(require_ok(admin_lines({"listen: 127.0.0.1:0"})).ok());
  CHECK(require_ok(admin_lines({"listen: 127.0.0.2:22122"})).ok());
}

TEST_CASE("admin.token_file must be readable and not empty, and is never echoed",
          "[config][admin]") {
  const testing::TempDir dir;
  const std::string missing = dir.path() + "/missing";
  require_error(
      admin_with({"token_file: " + missing}),
      {"admin.token_file", 7, 15, "cannot read '" + missing + "': No such file or directory"});
  require_error(admin_with({"token_file: " + dir.path()}),
                {"admin.token_file", 7, 15, "is a directory"});
  const std::string blank = dir.write_file("blank", "\r\n\n");
  require_error(admin_with({"token_file: " + blank}),
                {"admin.token_file", 7, 15, "'" + blank + "' is empty"});
  require_error(admin_with({"token_file: \"\""}), {"admin.token_file", 7, 15, "must not be empty"});
  require_error(admin_with({"token_file: [a]"}),
                {"admin.token_file", 7, 15, "expected a string, got a list"});

  // A configuration that fails elsewhere never shows the token it read.
  const std::string token = dir.write_file("token", "do-not-print-me\n");
  const LoadResult r = load(admin_with({"token_file: " + token, "max_connections: 0"}));
  require_errors(r, {{"admin.max_connections", 8, 20, "must be at least 1, got 0"}});
  CHECK_THAT(format_errors(r), !Contains("do-not-print-me"));
}

TEST_CASE("admin.tls has a listener's tls keys and checks", "[config][admin]") {
  const auto& m = tls_material();
  require_error(admin_with({"tls:", "  cert: " + m.server.cert}),
                {"admin.tls", 7, 3, "missing required key 'key'"});
  require_error(admin_with({"tls:", "  cert: " + m.server.cert, "  key: " + m.alice.key}),
                {"admin.tls.key", 9, 10, "does not match the (first) certificate"});
  require_error(admin_with({"tls:", "  cert: " + m.server.cert, "  key: " + m.server.key,
                            "  client_auth: required"}),
                {"admin.tls.client_auth", 10, 18, "client_auth: required needs client_ca"});
  require_error(admin_with({"tls:", "  cert: " + m.server.cert, "  key: " + m.server.key,
                            "  min_version: 1.1"}),
                {"admin.tls.min_version", 10, 18, "TLS 1.1 is not supported"});
  require_error(admin_with({"tls:", "  cert: " + m.server.cert, "  key: " + m.server.key,
                            "  handshake_timeout: 0"}),
                {"admin.tls.handshake_timeout", 10, 24, "must be at least 1, got 0"});
  require_error(
      admin_with({"tls:", "  cert: " + m.server.cert, "  key: " + m.server.key, "  ciphre: x"}),
      {"admin.tls.ciphre", 10, 5, "unknown key 'ciphre' (did you mean 'cipher"});
  require_error(admin_with({"tls: true"}), {"admin.tls", 7, 8, "expected a map, got 'true'"});
}

TEST_CASE("admin.max_connections and admin.request_timeout are bounded", "[config][admin]") {
  CHECK(require_ok(admin_with({"max_connections: 1"})).config.admin->max_connections == 1);
  CHECK(require_ok(admin_with({"max_connections: 10000"})).config.admin->max_connections == 10000);
  require_error(admin_with({"max_connections: 0"}),
                {"admin.max_connections", 7, 20, "must be at least 1, got 0"});
  require_error(admin_with({"max_connections: 10001"}),
                {"admin.max_connections", 7, 20, "must be at most 10000, got 10001"});
  require_error(admin_with({"max_connections: many"}),
                {"admin.max_connections", 7, 20, "expected an integer, got 'many'"});

  CHECK(require_ok(admin_with({"request_timeout: 1"})).config.admin->request_timeout ==
        milliseconds(1));
  require_error(admin_with({"request_timeout: 0"}),
                {"admin.request_timeout", 7, 20, "must be at least 1, got 0"});
  require_error(admin_with({"request_timeout: 10s"}),
                {"admin.request_timeout", 7, 20, "expected an integer, got '10s'"});
  require_error(admin_with({"request_timeout: 86400001"}),
                {"admin.request_timeout", 7, 20, "must be at most 86400000, got 86400001"});
}

TEST_CASE("admin must be a map of known keys", "[config][admin]") {
  require_error(with_top("admin: 127.0.0.1:9090\n"),
                {"admin", 5, 8, "expected a map, got '127.0.0.1:9090'"});
  require_error(admin_with({"tokenfile: /run/token"}),
                {"admin.tokenfile", 7, 3, "unknown key 'tokenfile' (did you mean 'token_file'?)"});
  // The token itself is never written in the configuration, only the file holding it.
  const LoadResult inline_token = load(admin_with({"token: abc"}));
  require_errors(inline_token, {{"admin.token", 7, 3, "unknown key 'token'"}});
  CHECK(inline_token.errors[0].message == "unknown key 'token'");
  require_error(with_top("admni:\n  listen: 127.0.0.1:9090\n"),
                {"admni", 5, 1, "unknown key 'admni' (did you mean 'admin'?)"});
}

// ---------------------------------------------------------------------------------------------
// drain_timeout and slow_log

TEST_CASE("drain_timeout", "[config]") {
  CHECK(require_ok(with_top("drain_timeout: 30000\n")).config.drain_timeout == milliseconds(30000));
  CHECK(require_ok(with_top("drain_timeout: 1\n")).config.drain_timeout == milliseconds(1));
  require_error(with_top("drain_timeout: 0\n"),
                {"drain_timeout", 5, 16, "must be at least 1, got 0"});
  require_error(with_top("drain_timeout: 15s\n"),
                {"drain_timeout", 5, 16, "expected an integer, got '15s'"});
  require_error(with_top("drain_timeout: 86400001\n"),
                {"drain_timeout", 5, 16, "must be at most 86400000, got 86400001"});
  require_error(with_top("drain_timeout:\n"),
                {"drain_timeout", 5, 1, "expected an integer, got nothing"});
  require_error(
      with_top("drain_timout: 5\n"),
      {"drain_timout", 5, 1, "unknown key 'drain_timout' (did you mean 'drain_timeout'?)"});
}

TEST_CASE("slow_log", "[config]") {
  CHECK(require_ok(with_top("slow_log: {threshold: 250}\n")).config.slow_log_threshold ==
        milliseconds(250));
  CHECK(require_ok(with_top("slow_log:\n  threshold: 86400000\n")).config.slow_log_threshold ==
        milliseconds(86400000));
  // An empty `slow_log:` is the same as none: nothing is logged.
  CHECK(require_ok(with_top("slow_log:\n")).config.slow_log_threshold == milliseconds(0));
  require_error(with_top("slow_log: {}\n"), {"slow_log", 5, 1, "missing required key 'threshold'"});
  require_error(with_top("slow_log:\n  threshold: 0\n"),
                {"slow_log.threshold", 6, 14, "must be at least 1, got 0"});
  require_error(with_top("slow_log:\n  threshold: 100ms\n"),
                {"slow_log.threshold", 6, 14, "expected an integer, got '100ms'"});
  require_error(with_top("slow_log: 100\n"), {"slow_log", 5, 11, "expected a map, got '100'"});
  require_errors(
      load(with_top("slow_log:\n  treshold: 100\n")),
      {{"slow_log", 5, 1, "missing required key 'threshold'"},
       {"slow_log.treshold", 6, 3, "unknown key 'treshold' (did you mean 'threshold'?)"}});
}

}  // namespace
}  // namespace cachegate::config
