// Users, authentication limits, listener and pool TLS, and server credentials: every key, its
// defaults, and each error pinned by path, line:column and message, as load_test.cc does for the
// rest. Certificates and keys are made per run with the openssl command line.

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "config/load.h"
#include "config/password.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/config/expected_errors.h"

namespace cachegate::config {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

// "correct horse", hashed by Python's hashlib (see password_test.cc).
const std::string kHash =
    "$pbkdf2-sha256$i=1000$Y2FjaGVnYXRlLXNhbHQxNg$oskUlB7ivsHtrtjGv4XmFs6drCjhXhMwNwx3IL9tE9E";
const std::string kScryptHash =
    "$scrypt$ln=10,r=8,p=1$Y2FjaGVnYXRlLXNhbHQxNg$Xr7AdCAdhsujtZ3CuftPbOYFkbGCmiWdgevqJgDMwNE";

// Certificates, keys and files that are not what they claim, made once per run.
struct Pki {
  testing::TempDir dir;
  std::string cert;       // self-signed, CN=test, EC P-256
  std::string key;        // its key
  std::string other_key;  // a key of no certificate here
  std::string ca;         // another self-signed certificate, CN=test-ca
  std::string chain;      // cert followed by ca
  std::string encrypted_key;
  std::string not_pem;
  std::string broken_cert;      // a CERTIFICATE block whose content is not a certificate
  std::string cert_and_broken;  // cert followed by that block

  Pki() {
    const std::string d = dir.path();
    cert = d + "/cert.pem";
    key = d + "/key.pem";
    other_key = d + "/other-key.pem";
    ca = d + "/ca.pem";
    encrypted_key = d + "/encrypted-key.pem";
    run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=test", "-days", "1"});
    run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", d + "/ca-key.pem", "-out", ca, "-subj", "/CN=test-ca", "-days", "1"});
    run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
         other_key});
    run({"openssl", "pkey", "-in", key, "-aes256", "-passout", "pass:never-asked", "-out",
         encrypted_key});
    not_pem = dir.write_file("not-pem.txt", "this is not a certificate\n");
    const std::string broken =
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    broken_cert = dir.write_file("broken.pem", broken);
    cert_and_broken = dir.write_file("cert-and-broken.pem", read(cert) + broken);
    chain = dir.write_file("chain.pem", read(cert) + read(ca));
  }

  static void run(const std::vector<std::string>& argv) {
    std::string output;
    if (testing::run_command(argv, &output) != 0)
      throw std::runtime_error("openssl failed: " + output);
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }
};

const Pki& pki() {
  static const Pki p;
  return p;
}

std::string lines_at(std::string_view indent, const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines)
    out += std::string(indent) + l + "\n";
  return out;
}

// A valid configuration whose listener has `tls:` (line 9, column 5) with `lines` under it, from
// line 10, column 7.
std::string listener_tls(const std::vector<std::string>& lines) {
  return yaml(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
    tls:
)") + lines_at("      ", lines);
}

// listener_tls() with a valid cert and key on lines 10 and 11; `lines` from line 12.
std::string listener_tls_with(const std::vector<std::string>& lines) {
  std::vector<std::string> all{"cert: " + pki().cert, "key: " + pki().key};
  all.insert(all.end(), lines.begin(), lines.end());
  return listener_tls(all);
}

// A valid configuration with `lines` in the listener from line 9, column 5, then `rest` at the
// top level.
std::string listener_lines(const std::vector<std::string>& lines, std::string_view rest = "") {
  return yaml(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
)") + lines_at("    ", lines) +
         std::string(rest);
}

// A valid configuration whose pool has the given protocol (line 9) and `lines` from line 10,
// column 5.
std::string pool_lines(std::string_view protocol, const std::vector<std::string>& lines) {
  return yaml(R"(
listeners:
  - name: l
    listen: 127.0.0.1:22122
    pool: cache
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
)") +
         "    protocol: " + std::string(protocol) + "\n" + lines_at("    ", lines);
}

// A valid configuration followed by `text`, which starts at line 9.
std::string with_top(std::string_view text) {
  return yaml(R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
)") + std::string(yaml(text));
}

// A valid configuration with one user, alice (`users:` on line 9, `- name: alice` on line 10),
// whose other keys are `lines`, from line 11, column 5.
std::string user_lines(const std::vector<std::string>& lines) {
  return with_top("users:\n  - name: alice\n") + lines_at("    ", lines);
}

// A valid configuration with `auth_limits:` on line 9 and `lines` from line 10, column 3.
std::string auth_limit_lines(const std::vector<std::string>& lines) {
  return with_top("auth_limits:\n") + lines_at("  ", lines);
}

// ---------------------------------------------------------------------------------------------
// users

TEST_CASE("every key of users round-trips and absent allow means everything", "[config][users]") {
  const LoadResult r = require_ok(with_top(R"(
users:
  - name: alice
    password_hash: ")" + kHash + R"("
    tls_identity: alice.example
    allow:
      ops: [read, write]
      keys: ["app:*", "shared:*", 'a\*b', "[abc]?", "x[^0-9]", '[\]]']
  - name: default
    tls_identity: [svc-a, "Service B"]
  - name: carol
    password_hash: )" + kScryptHash + R"(
    allow:
      ops: [admin]
)"));
  const Config& c = r.config;
  REQUIRE(c.users.size() == 3);
  const UserConfig& a = c.users[0];
  CHECK(a.name == "alice");
  CHECK(a.password_hash == kHash);
  CHECK(a.password_file.empty());
  CHECK(a.tls_identities == std::vector<std::string>{"alice.example"});
  CHECK(a.may_read);
  CHECK(a.may_write);
  CHECK_FALSE(a.may_admin);
  CHECK(a.key_patterns ==
        std::vector<std::string>{"app:*", "shared:*", "a\\*b", "[abc]?", "x[^0-9]", "[\\]]"});
  CHECK(a.key_namespace.empty());
  CHECK(a.where.line == 10);
  CHECK(a.where.column == 5);

  const UserConfig& d = c.users[1];
  CHECK(d.name == "default");
  CHECK(d.password_hash.empty());
  CHECK(d.tls_identities == std::vector<std::string>{"svc-a", "Service B"});
  CHECK(d.may_read);
  CHECK(d.may_write);
  CHECK(d.may_admin);
  CHECK(d.key_patterns.empty());
  CHECK(d.key_namespace.empty());

  const UserConfig& carol = c.users[2];
  CHECK(carol.password_hash == kScryptHash);
  CHECK_FALSE(carol.may_read);
  CHECK_FALSE(carol.may_write);
  CHECK(carol.may_admin);

  CHECK(c.find_user("carol") == &carol);
  CHECK(c.find_user("bob") == nullptr);
}

TEST_CASE("without users, auth_limits, tls or auth every default holds", "[config][users]") {
  const Config c = require_ok(with_top("")).config;
  CHECK(c.users.empty());
  CHECK(c.auth_failures_slow == 5);
  CHECK(c.auth_failures_block == 20);
  CHECK(c.auth_block_time == std::chrono::milliseconds(60000));
  CHECK(c.auth_timeout == std::chrono::milliseconds(10000));
  REQUIRE(c.listeners.size() == 1);
  CHECK_FALSE(c.listeners[0].tls.has_value());
  CHECK(c.listeners[0].auth == ListenerAuth::kNone);
  CHECK(c.listeners[0].max_connections == 0);
  REQUIRE(c.pools.size() == 1);
  CHECK_FALSE(c.pools[0].tls.has_value());
  CHECK(c.pools[0].server_username.empty());
  CHECK(c.pools[0].server_password.empty());
  // An empty `users:` (every entry commented out) is no users.
  CHECK(require_ok(with_top("users:\n")).config.users.empty());
}

TEST_CASE("a password_file is hashed at load with a fresh salt and kept as written",
          "[config][users]") {
  testing::TempDir dir;
  const std::string file = dir.write_file("alice.pass", "file password\r\n");
  const LoadResult r = require_ok(user_lines({"password_file: " + file}));
  const UserConfig& u = r.config.users[0];
  CHECK(u.password_file == file);
  CHECK_THAT(u.password_hash, StartsWith("$pbkdf2-sha256$i=10000$"));
  ParsedHash h;
  REQUIRE(parse_password_hash(u.password_hash, h));
  CHECK(verify_password(h, "file password"));
  CHECK_FALSE(verify_password(h, "file password\r\n"));
  CHECK_FALSE(verify_password(h, "file password\r"));

  const LoadResult again = require_ok(user_lines({"password_file: " + file}));
  CHECK(again.config.users[0].password_hash != u.password_hash);

  // Only the line end goes; a line break inside is part of the password.
  const std::string two_lines = dir.write_file("two.pass", "first\nsecond\n\n");
  const LoadResult t = require_ok(user_lines({"password_file: " + two_lines}));
  REQUIRE(parse_password_hash(t.config.users[0].password_hash, h));
  CHECK(verify_password(h, "first\nsecond"));
}

TEST_CASE("user names follow the listener name rules and are unique", "[config][users]") {
  CHECK(require_ok(with_top("users:\n  - name: default\n    password_hash: '" + kHash + "'\n"))
            .config.users[0]
            .name == "default");
  require_error(with_top("users:\n  - password_hash: '" + kHash + "'\n"),
                {"users[0]", 10, 5, "missing required key 'name'"});
  require_error(with_top("users:\n  - name: \"al ice\"\n"),
                {"users[0].name", 10, 11, "'al ice' contains whitespace or control characters"});
  require_error(with_top("users:\n  - name: \"\"\n"),
                {"users[0].name", 10, 11, "must not be empty"});
  require_error(with_top("users:\n  - name: " + std::string(256, 'u') + "\n"),
                {"users[0].name", 10, 11, "is longer than 255 bytes"});
  CHECK(require_ok(with_top("users:\n  - name: " + std::string(255, 'u') + "\n")).ok());
  require_error(with_top(R"(
users:
  - name: alice
    tls_identity: a
  - name: alice
    tls_identity: b
)"),
                {"users[1].name", 12, 11, "duplicate user name 'alice' (first defined at 10:11)"});
  require_error(with_top("users:\n  alice: {}\n"),
                {"users", 10, 3, "expected a list of users, got a map"});
  require_error(with_top("users:\n  - alice\n"),
                {"users[0]", 10, 5, "expected a map, got 'alice'"});
}

TEST_CASE("password_hash must be a valid PHC string and is never echoed", "[config][users]") {
  const LoadResult plain = load(user_lines({"password_hash: hunter2-plaintext"}));
  require_errors(plain,
                 {{"users[0].password_hash", 11, 20, "invalid password hash: not a PHC string"}});
  CHECK(format_errors(plain).find("hunter2") == std::string::npos);

  const std::string weak =
      "$pbkdf2-sha256$i=999$Y2FjaGVnYXRlLXNhbHQxNg$oskUlB7ivsHtrtjGv4XmFs6drCjhXhMwNwx3IL9tE9E";
  const LoadResult w = load(user_lines({"password_hash: '" + weak + "'"}));
  require_errors(w, {{"users[0].password_hash", 11, 20,
                      "invalid password hash: iterations must be between 1000 and 10000000"}});
  CHECK(format_errors(w).find("Y2FjaGVn") == std::string::npos);
  CHECK(format_errors(w).find("oskUlB7") == std::string::npos);

  require_error(user_lines({"password_hash: '$scrypt$ln=19,r=8,p=1$Y2FjaGVnYXRlLXNhbHQxNg$" +
                            std::string(43, 'A') + "'"}),
                {"users[0].password_hash", 11, 20, "more than 256 MiB"});
  require_error(user_lines({"password_hash: \"\""}),
                {"users[0].password_hash", 11, 20, "must not be empty"});
  require_error(user_lines({"password_hash: [a]"}),
                {"users[0].password_hash", 11, 20, "expected a string, got a list"});
  require_error(user_lines({"password_hash:"}),
                {"users[0].password_hash", 11, 5, "expected a string, got nothing"});
}

TEST_CASE("password_file must be readable, not empty, and not given with password_hash",
          "[config][users]") {
  testing::TempDir dir;
  require_error(user_lines({"password_file: " + dir.path() + "/missing"}),
                {"users[0].password_file", 11, 20,
                 "cannot read '" + dir.path() + "/missing': No such file or directory"});
  require_error(
      user_lines({"password_file: " + dir.path()}),
      {"users[0].password_file", 11, 20, "cannot read '" + dir.path() + "': is a directory"});
  const std::string empty = dir.write_file("empty.pass", "\r\n");
  require_error(user_lines({"password_file: " + empty}),
                {"users[0].password_file", 11, 20, "'" + empty + "' is empty"});
  require_error(user_lines({"password_file: \"\""}),
                {"users[0].password_file", 11, 20, "must not be empty"});
  const std::string file = dir.write_file("alice.pass", "file-secret\n");
  const LoadResult both =
      load(user_lines({"password_hash: '" + kHash + "'", "password_file: " + file}));
  require_errors(
      both, {{"users[0].password_file", 12, 20, "give password_hash or password_file, not both"}});
  CHECK(format_errors(both).find("file-secret") == std::string::npos);
}

TEST_CASE("tls_identity is a string or a list and each identity names one user",
          "[config][users]") {
  CHECK(
      require_ok(user_lines({"tls_identity: \"CN With Space\""})).config.users[0].tls_identities ==
      std::vector<std::string>{"CN With Space"});
  CHECK(require_ok(user_lines({"tls_identity: [a.example, spiffe://x/y]"}))
            .config.users[0]
            .tls_identities == std::vector<std::string>{"a.example", "spiffe://x/y"});
  require_error(user_lines({"tls_identity: []"}),
                {"users[0].tls_identity", 11, 19, "must list at least one identity"});
  require_error(
      user_lines({"tls_identity: {a: b}"}),
      {"users[0].tls_identity", 11, 19, "expected a string or a list of strings, got a map"});
  require_error(user_lines({"tls_identity: [a, \"\"]"}),
                {"users[0].tls_identity[1]", 11, 23, "must not be empty"});
  require_error(user_lines({"tls_identity: [[a]]"}),
                {"users[0].tls_identity[0]", 11, 20, "expected a string, got a list"});
  require_error(user_lines({"tls_identity: \"a\\tb\""}),
                {"users[0].tls_identity", 11, 19, "contains control characters"});
  require_error(user_lines({"tls_identity: " + std::string(1025, 'i')}),
                {"users[0].tls_identity", 11, 19, "is longer than 1024 bytes"});
  CHECK(require_ok(user_lines({"tls_identity: " + std::string(1024, 'i')})).ok());
  require_error(
      user_lines({"tls_identity: [a, a]"}),
      {"users[0].tls_identity[1]", 11, 23, "duplicate identity 'a' (first given at 11:20)"});
  require_error(with_top(R"(
users:
  - name: alice
    tls_identity: shared
  - name: bob
    tls_identity: [own, shared]
)"),
                {"users[1].tls_identity[1]", 13, 25,
                 "identity 'shared' already belongs to user 'alice' (at 11:19)"});
}

TEST_CASE("allow.ops is a non-empty set of read, write and admin", "[config][users]") {
  const UserConfig r = require_ok(user_lines({"allow:", "  ops: [read]"})).config.users[0];
  CHECK(r.may_read);
  CHECK_FALSE(r.may_write);
  CHECK_FALSE(r.may_admin);
  const UserConfig w = require_ok(user_lines({"allow: {ops: [write, admin]}"})).config.users[0];
  CHECK_FALSE(w.may_read);
  CHECK(w.may_write);
  CHECK(w.may_admin);
  // Without ops, everything; an empty `allow:` is no restriction at all.
  const UserConfig k = require_ok(user_lines({"allow:", "  keys: [\"a*\"]"})).config.users[0];
  CHECK((k.may_read && k.may_write && k.may_admin));
  const UserConfig e = require_ok(user_lines({"allow:"})).config.users[0];
  CHECK((e.may_read && e.may_write && e.may_admin));
  CHECK(e.key_patterns.empty());

  require_error(
      user_lines({"allow:", "  ops: [read, read]"}),
      {"users[0].allow.ops[1]", 12, 19, "duplicate operation class 'read' (first given at 12:13)"});
  require_error(user_lines({"allow:", "  ops: []"}),
                {"users[0].allow.ops", 12, 12, "must list at least one of read, write, admin"});
  require_error(user_lines({"allow:", "  ops: read"}),
                {"users[0].allow.ops", 12, 12,
                 "expected a list of operation classes (read, write, admin), got 'read'"});
  require_error(
      user_lines({"allow:", "  ops: [raed]"}),
      {"users[0].allow.ops[0]", 12, 13, "unknown operation class 'raed' (did you mean 'read'?)"});
  require_error(user_lines({"allow:", "  ops: [execute]"}),
                {"users[0].allow.ops[0]", 12, 13,
                 "unknown operation class 'execute' (expected one of: read, write, admin)"});
  require_error(user_lines({"allow: [read]"}),
                {"users[0].allow", 11, 12, "expected a map, got a list"});
  require_error(user_lines({"allow:", "  opps: [read]"}),
                {"users[0].allow.opps", 12, 7, "unknown key 'opps' (did you mean 'ops'?)"});
}

TEST_CASE("allow.keys is a non-empty list of well-formed glob patterns", "[config][users]") {
  require_error(user_lines({"allow:", "  keys: []"}),
                {"users[0].allow.keys", 12, 13, "must list at least one pattern"});
  require_error(user_lines({"allow:", "  keys: \"app:*\""}),
                {"users[0].allow.keys", 12, 13, "expected a list of key patterns"});
  require_error(user_lines({"allow:", "  keys: [\"app:*\", \"\"]"}),
                {"users[0].allow.keys[1]", 12, 23, "must not be empty"});
  require_error(
      user_lines({"allow:", "  keys: [\"app:[ab\"]"}),
      {"users[0].allow.keys[0]", 12, 14, "key pattern 'app:[ab' has a '[' without its ']'"});
  require_error(user_lines({"allow:", "  keys: ['app:[a\\]']"}),
                {"users[0].allow.keys[0]", 12, 14, "has a '[' without its ']'"});
  require_error(
      user_lines({"allow:", "  keys: ['app\\']"}),
      {"users[0].allow.keys[0]", 12, 14, "key pattern 'app\\' ends with a lone backslash"});
  require_error(user_lines({"allow:", "  keys: [[a]]"}),
                {"users[0].allow.keys[0]", 12, 14, "expected a string, got a list"});
}

TEST_CASE("namespace is read and checked", "[config][users]") {
  const LoadResult r = require_ok(user_lines({"namespace: \"tenant-a:\""}));
  CHECK(r.config.users[0].key_namespace == "tenant-a:");
  // Glob characters are fine: cachegate escapes them where it builds a pattern.
  CHECK(require_ok(user_lines({"namespace: \"t*[a]?:\""})).config.users[0].key_namespace ==
        "t*[a]?:");
  CHECK(require_ok(user_lines({"namespace: " + std::string(249, 'n')}))
            .config.users[0]
            .key_namespace.size() == 249);
  require_error(user_lines({"namespace: " + std::string(250, 'n')}),
                {"users[0].namespace", 11, 16, "is longer than 249 bytes"});
  require_error(user_lines({"namespace: \"\""}),
                {"users[0].namespace", 11, 16, "must not be empty"});
  require_error(user_lines({"namespace: \"a b\""}),
                {"users[0].namespace", 11, 16, "'a b' contains whitespace or control characters"});
  require_error(user_lines({"namespace: [a]"}),
                {"users[0].namespace", 11, 16, "expected a string, got a list"});
}

TEST_CASE("a namespace must not start with another user's", "[config][users]") {
  const std::string users = R"(users:
  - {name: a, namespace: "a:", password_file: /dev/null}
  - {name: ab, namespace: "a:b:", password_file: /dev/null}
  - {name: b, namespace: "b", password_file: /dev/null}
  - {name: b2, namespace: "b:", password_file: /dev/null}
  - {name: a2, namespace: "a:", password_file: /dev/null}
)";
  const LoadResult r = load_config_string(with_top(users), "test.yaml");
  std::vector<std::string> messages;
  for (const auto& e : r.errors)
    if (e.path.find("namespace") != std::string::npos)
      messages.push_back(e.path + ": " + e.message);
  REQUIRE(messages.size() == 3);
  CHECK(messages[0] ==
        "users[1].namespace: 'a:b:' starts with user 'a''s namespace 'a:' (at 10:26); one user "
        "would see the other's keys");
  CHECK(messages[1] ==
        "users[3].namespace: 'b:' starts with user 'b''s namespace 'b' (at 12:26); one user would "
        "see the other's keys");
  // Users may share a namespace, but a2's is also the start of ab's.
  CHECK(messages[2] ==
        "users[4].namespace: 'a:' is the start of user 'ab''s namespace 'a:b:' (at 11:27); one "
        "user would see the other's keys");
}

TEST_CASE("a namespace must not contain a pool's hash tag characters", "[config][users]") {
  const std::string text = R"(pools:
  cache:
    hash_tag: "{}"
    listen: 127.0.0.1:22122
    servers:
      - 127.0.0.1:21211:1
users:
  - name: alice
    namespace: "t{1}:"
)";
  require_error(text, {"users[0].namespace", 9, 16,
                       "'t{1}:' contains a character of pool 'cache''s hash_tag '{}'"});
}

TEST_CASE("unknown keys in users and auth_limits get suggestions", "[config][users]") {
  require_error(user_lines({"pasword_hash: x"}),
                {"users[0].pasword_hash", 11, 5,
                 "unknown key 'pasword_hash' (did you mean 'password_hash'?)"});
  require_error(user_lines({"tls_identiy: x"}),
                {"users[0].tls_identiy", 11, 5, "(did you mean 'tls_identity'?)"});
  require_error(with_top("user:\n  - name: a\n"),
                {"user", 9, 1, "unknown key 'user' (did you mean 'users'?)"});
  require_error(with_top("auth_limit:\n  timeout: 5\n"),
                {"auth_limit", 9, 1, "unknown key 'auth_limit' (did you mean 'auth_limits'?)"});
  require_error(auth_limit_lines({"failure_slow: 3"}),
                {"auth_limits.failure_slow", 10, 3, "(did you mean 'failures_slow'?)"});
}

// ---------------------------------------------------------------------------------------------
// auth_limits

TEST_CASE("auth_limits sets the login throttling and its bounds hold", "[config][auth]") {
  const Config c = require_ok(auth_limit_lines({"failures_slow: 3", "failures_block: 10",
                                                "block_time: 1000", "timeout: 500"}))
                       .config;
  CHECK(c.auth_failures_slow == 3);
  CHECK(c.auth_failures_block == 10);
  CHECK(c.auth_block_time == std::chrono::milliseconds(1000));
  CHECK(c.auth_timeout == std::chrono::milliseconds(500));
  CHECK(require_ok(with_top("auth_limits:\n")).config.auth_failures_block == 20);
  // Equal is fine; unless given, blocking starts no earlier than slowing down.
  CHECK(require_ok(auth_limit_lines({"failures_slow: 7", "failures_block: 7"}))
            .config.auth_failures_block == 7);
  const Config raised = require_ok(auth_limit_lines({"failures_slow: 50"})).config;
  CHECK(raised.auth_failures_slow == 50);
  CHECK(raised.auth_failures_block == 50);
  CHECK(require_ok(auth_limit_lines({"failures_slow: 1000000", "failures_block: 1000000"})).ok());

  require_error(auth_limit_lines({"failures_slow: 0"}),
                {"auth_limits.failures_slow", 10, 18, "must be at least 1, got 0"});
  require_error(auth_limit_lines({"failures_slow: 1000001"}),
                {"auth_limits.failures_slow", 10, 18, "must be at most 1000000, got 1000001"});
  require_error(auth_limit_lines({"failures_slow: \"5\""}),
                {"auth_limits.failures_slow", 10, 18, "expected an integer"});
  require_error(
      auth_limit_lines({"failures_slow: 10", "failures_block: 5"}),
      {"auth_limits.failures_block", 11, 19, "must not be smaller than failures_slow (10), got 5"});
  require_error(
      auth_limit_lines({"failures_block: 3"}),
      {"auth_limits.failures_block", 10, 19, "must not be smaller than failures_slow (5), got 3"});
  require_error(auth_limit_lines({"block_time: 1.5"}),
                {"auth_limits.block_time", 10, 15, "expected an integer, got '1.5'"});
  require_error(auth_limit_lines({"timeout: 0"}),
                {"auth_limits.timeout", 10, 12, "must be at least 1, got 0"});
  require_error(auth_limit_lines({"timeout: 86400001"}),
                {"auth_limits.timeout", 10, 12, "must be at most 86400000"});
  require_error(with_top("auth_limits: [1]\n"),
                {"auth_limits", 9, 14, "expected a map, got a list"});
}

// ---------------------------------------------------------------------------------------------
// listeners[].tls, auth, max_connections

TEST_CASE("every key of a listener's tls round-trips", "[config][tls]") {
  const Pki& p = pki();
  const LoadResult r = require_ok(
      listener_tls({"cert: " + p.chain, "key: " + p.key, "client_ca: " + p.ca,
                    "client_auth: required", "min_version: 1.3", "ciphers: \"ECDHE+AESGCM\"",
                    "ciphersuites: TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
                    "mode: optional", "handshake_timeout: 2500"}));
  REQUIRE(r.config.listeners[0].tls.has_value());
  const ListenerTlsConfig& t = *r.config.listeners[0].tls;
  CHECK(t.cert == p.chain);
  CHECK(t.key == p.key);
  CHECK(t.client_ca == p.ca);
  CHECK(t.client_auth == TlsClientAuth::kRequired);
  CHECK(t.min_version == TlsVersion::k1_3);
  CHECK(t.ciphers == "ECDHE+AESGCM");
  CHECK(t.ciphersuites == "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256");
  CHECK(t.mode == TlsMode::kOptional);
  CHECK(t.handshake_timeout == std::chrono::milliseconds(2500));
  CHECK(t.where.line == 9);
  CHECK(t.where.column == 5);

  const ListenerTlsConfig d = *require_ok(listener_tls_with({})).config.listeners[0].tls;
  CHECK(d.cert == p.cert);
  CHECK(d.client_ca.empty());
  CHECK(d.client_auth == TlsClientAuth::kNone);
  CHECK(d.min_version == TlsVersion::k1_2);
  CHECK(d.ciphers.empty());
  CHECK(d.ciphersuites.empty());
  CHECK(d.mode == TlsMode::kRequired);
  CHECK(d.handshake_timeout == std::chrono::milliseconds(10000));
}

TEST_CASE("a listener's cert and key are required readable PEM files that match", "[config][tls]") {
  const Pki& p = pki();
  require_error(listener_tls({"key: " + p.key}),
                {"listeners[0].tls", 9, 5, "missing required key 'cert'"});
  require_error(listener_tls({"cert: " + p.cert}),
                {"listeners[0].tls", 9, 5, "missing required key 'key'"});
  const std::string missing = p.dir.path() + "/missing.pem";
  require_error(listener_tls({"cert: " + missing, "key: " + p.key}),
                {"listeners[0].tls.cert", 10, 13,
                 "cannot read '" + missing + "': No such file or directory"});
  require_error(listener_tls({"cert: " + p.dir.path(), "key: " + p.key}),
                {"listeners[0].tls.cert", 10, 13, "': is a directory"});
  require_error(
      listener_tls({"cert: " + p.not_pem, "key: " + p.key}),
      {"listeners[0].tls.cert", 10, 13, "'" + p.not_pem + "' contains no PEM certificate"});
  require_error(listener_tls({"cert: " + p.key, "key: " + p.key}),
                {"listeners[0].tls.cert", 10, 13, "contains no PEM certificate"});
  require_error(listener_tls({"cert: " + p.broken_cert, "key: " + p.key}),
                {"listeners[0].tls.cert", 10, 13,
                 "has a certificate that cannot be parsed (number 1 in the file)"});
  require_error(listener_tls({"cert: " + p.cert_and_broken, "key: " + p.key}),
                {"listeners[0].tls.cert", 10, 13, "(number 2 in the file)"});
  require_error(listener_tls({"cert: \"\"", "key: " + p.key}),
                {"listeners[0].tls.cert", 10, 13, "must not be empty"});
  require_error(listener_tls({"cert: [a]", "key: " + p.key}),
                {"listeners[0].tls.cert", 10, 13, "expected a string, got a list"});

  require_error(listener_tls({"cert: " + p.cert, "key: " + p.cert}),
                {"listeners[0].tls.key", 11, 12, "'" + p.cert + "' contains no PEM private key"});
  require_error(listener_tls({"cert: " + p.cert, "key: " + p.not_pem}),
                {"listeners[0].tls.key", 11, 12, "contains no PEM private key"});
  // No passphrase prompt: an encrypted key is an error, whatever the terminal.
  require_error(listener_tls({"cert: " + p.cert, "key: " + p.encrypted_key}),
                {"listeners[0].tls.key", 11, 12, "is an encrypted private key"});
  require_error(listener_tls({"cert: " + p.cert, "key: " + missing}),
                {"listeners[0].tls.key", 11, 12, "No such file or directory"});
  const LoadResult mismatch = load(listener_tls({"cert: " + p.cert, "key: " + p.other_key}));
  require_errors(mismatch, {{"listeners[0].tls.key", 11, 12,
                             "'" + p.other_key + "' does not match the (first) certificate in '" +
                                 p.cert + "'"}});
  CHECK(format_errors(mismatch).find("PRIVATE KEY") == std::string::npos);
  // A chain is checked against its first certificate: the CA's key does not match it.
  require_error(listener_tls({"cert: " + p.chain, "key: " + p.dir.path() + "/ca-key.pem"}),
                {"listeners[0].tls.key", 11, 12, "does not match"});
  require_error(listener_lines({"tls: yes"}),
                {"listeners[0].tls", 9, 10, "expected a map, got 'yes'"});
  require_error(listener_lines({"tls:"}),
                {"listeners[0].tls", 9, 5, "expected a map, got nothing"});
}

TEST_CASE("client_ca is a PEM file and is required for client_auth optional or required",
          "[config][tls]") {
  const Pki& p = pki();
  for (std::string_view mode : {"optional", "required"}) {
    INFO(mode);
    require_error(listener_tls_with({"client_auth: " + std::string(mode)}),
                  {"listeners[0].tls.client_auth", 12, 20,
                   "client_auth: " + std::string(mode) + " needs client_ca"});
  }
  CHECK(require_ok(listener_tls_with({"client_auth: optional", "client_ca: " + p.ca}))
            .config.listeners[0]
            .tls->client_auth == TlsClientAuth::kOptional);
  // Given but unused with client_auth none: allowed.
  CHECK(require_ok(listener_tls_with({"client_auth: none", "client_ca: " + p.chain}))
            .config.listeners[0]
            .tls->client_ca == p.chain);
  require_error(listener_tls_with({"client_ca: " + p.not_pem}),
                {"listeners[0].tls.client_ca", 12, 18, "contains no PEM certificate"});
  require_error(listener_tls_with({"client_auth: maybe"}),
                {"listeners[0].tls.client_auth", 12, 20,
                 "unknown client_auth 'maybe' (expected one of: none, optional, required)"});
  require_error(listener_tls_with({"client_auth: requried", "client_ca: " + p.ca}),
                {"listeners[0].tls.client_auth", 12, 20, "(did you mean 'required'?)"});
}

TEST_CASE("min_version is 1.2 or 1.3 whether or not it is quoted", "[config][tls]") {
  CHECK(require_ok(listener_tls_with({"min_version: 1.2"})).config.listeners[0].tls->min_version ==
        TlsVersion::k1_2);
  CHECK(require_ok(listener_tls_with({"min_version: 1.3"})).config.listeners[0].tls->min_version ==
        TlsVersion::k1_3);
  CHECK(require_ok(listener_tls_with({"min_version: \"1.3\""}))
            .config.listeners[0]
            .tls->min_version == TlsVersion::k1_3);
  require_error(
      listener_tls_with({"min_version: 1.1"}),
      {"listeners[0].tls.min_version", 12, 20, "TLS 1.1 is not supported (expected 1.2 or 1.3)"});
  require_error(listener_tls_with({"min_version: 1.0"}),
                {"listeners[0].tls.min_version", 12, 20, "TLS 1.0 is not supported"});
  require_error(listener_tls_with({"min_version: TLSv1.2"}),
                {"listeners[0].tls.min_version", 12, 20,
                 "unknown TLS version 'TLSv1.2' (expected 1.2 or 1.3)"});
  require_error(listener_tls_with({"min_version: 1.20"}),
                {"listeners[0].tls.min_version", 12, 20, "unknown TLS version '1.20'"});
}

TEST_CASE("ciphers and ciphersuites must leave OpenSSL something to use", "[config][tls]") {
  // OpenSSL skips names it does not know as long as one remains.
  CHECK(require_ok(listener_tls_with({"ciphers: \"ECDHE+AESGCM:NOT-A-CIPHER\""})).ok());
  require_error(listener_tls_with({"ciphers: NOT-A-CIPHER"}),
                {"listeners[0].tls.ciphers", 12, 16,
                 "OpenSSL knows none of the TLS 1.2 ciphers in 'NOT-A-CIPHER'"});
  require_error(listener_tls_with({"ciphers: TLS_AES_128_GCM_SHA256"}),
                {"listeners[0].tls.ciphers", 12, 16, "(TLS 1.3 suites go in ciphersuites)"});
  require_error(listener_tls_with({"ciphers: \"\""}),
                {"listeners[0].tls.ciphers", 12, 16, "must not be empty"});
  require_error(listener_tls_with({"ciphersuites: TLS_NOT_A_SUITE"}),
                {"listeners[0].tls.ciphersuites", 12, 21,
                 "OpenSSL knows none of the TLS 1.3 cipher suites in 'TLS_NOT_A_SUITE'"});
  require_error(listener_tls_with({"ciphersuites: ECDHE+AESGCM"}),
                {"listeners[0].tls.ciphersuites", 12, 21, "OpenSSL knows none"});
  require_error(listener_tls_with({"ciphersuites: \"\""}),
                {"listeners[0].tls.ciphersuites", 12, 21, "must not be empty"});
  require_error(
      listener_tls_with({"cipher: x"}),
      {"listeners[0].tls.cipher", 12, 7, "unknown key 'cipher' (did you mean 'ciphers'?)"});
}

TEST_CASE("tls mode and handshake_timeout", "[config][tls]") {
  CHECK(require_ok(listener_tls_with({"mode: required"})).config.listeners[0].tls->mode ==
        TlsMode::kRequired);
  require_error(listener_tls_with({"mode: opt"}),
                {"listeners[0].tls.mode", 12, 13,
                 "unknown mode 'opt' (expected one of: required, optional)"});
  require_error(listener_tls_with({"handshake_timeout: 0"}),
                {"listeners[0].tls.handshake_timeout", 12, 26, "must be at least 1, got 0"});
  require_error(listener_tls_with({"handshake_timeout: 10s"}),
                {"listeners[0].tls.handshake_timeout", 12, 26, "expected an integer, got '10s'"});
}

// A configuration whose listener has `auth: required` (line 9, value at column 11) and `extra`
// listener lines after it, followed by `users`.
std::string auth_required(const std::vector<std::string>& extra, std::string_view users) {
  std::vector<std::string> lines{"auth: required"};
  lines.insert(lines.end(), extra.begin(), extra.end());
  return listener_lines(lines, yaml(users));
}

TEST_CASE("auth required needs a user who can log in on that listener", "[config][auth]") {
  const Pki& p = pki();
  const std::string by_password = "users:\n  - name: a\n    password_hash: '" + kHash + "'\n";
  const std::string by_identity = "users:\n  - name: a\n    tls_identity: test\n";
  const std::vector<std::string> tls_none{"tls:", "  cert: " + p.cert, "  key: " + p.key};
  std::vector<std::string> tls_optional = tls_none;
  tls_optional.push_back("  client_auth: optional");
  tls_optional.push_back("  client_ca: " + p.ca);
  std::vector<std::string> tls_required = tls_none;
  tls_required.push_back("  client_auth: required");
  tls_required.push_back("  client_ca: " + p.ca);
  const Expected nobody{"listeners[0].auth", 9, 11, "no user can log in on this listener"};

  CHECK(require_ok(auth_required({}, by_password)).config.listeners[0].auth ==
        ListenerAuth::kRequired);
  CHECK(require_ok(auth_required(tls_none, by_password)).ok());
  CHECK(require_ok(auth_required(tls_optional, by_identity)).ok());
  CHECK(require_ok(auth_required(tls_required, by_identity)).ok());
  testing::TempDir dir;
  const std::string file = dir.write_file("a.pass", "pw\n");
  CHECK(
      require_ok(auth_required({}, "users:\n  - name: a\n    password_file: " + file + "\n")).ok());

  require_error(auth_required({}, ""), nobody);
  require_error(auth_required({}, by_identity), nobody);
  require_error(auth_required(tls_none, by_identity), nobody);
  require_error(auth_required(tls_optional, "users:\n  - name: a\n"), nobody);
  // When client_auth itself is wrong, or a password is, that error is the only one.
  require_error(
      auth_required({"tls:", "  cert: " + p.cert, "  key: " + p.key, "  client_auth: sometimes"},
                    by_identity),
      {"listeners[0].tls.client_auth", 13, 20, "unknown client_auth 'sometimes'"});
  require_error(auth_required({}, "users:\n  - name: a\n    password_hash: nope\n"),
                {"users[0].password_hash", 12, 20, "invalid password hash"});

  CHECK(require_ok(listener_lines({"auth: none"})).config.listeners[0].auth == ListenerAuth::kNone);
  require_error(
      listener_lines({"auth: maybe"}),
      {"listeners[0].auth", 9, 11, "unknown auth 'maybe' (expected one of: none, required)"});
  require_error(listener_lines({"auth: true"}),
                {"listeners[0].auth", 9, 11, "unknown auth 'true'"});
}

TEST_CASE("max_connections is 0 for no limit up to 10000000", "[config][listeners]") {
  CHECK(require_ok(listener_lines({"max_connections: 0"})).config.listeners[0].max_connections ==
        0);
  CHECK(require_ok(listener_lines({"max_connections: 10000000"}))
            .config.listeners[0]
            .max_connections == 10000000);
  require_error(listener_lines({"max_connections: 10000001"}),
                {"listeners[0].max_connections", 9, 22, "must be at most 10000000, got 10000001"});
  require_error(listener_lines({"max_connections: -1"}),
                {"listeners[0].max_connections", 9, 22, "must not be negative, got -1"});
  require_error(listener_lines({"max_connection: 5"}),
                {"listeners[0].max_connection", 9, 5, "(did you mean 'max_connections'?)"});
}

// ---------------------------------------------------------------------------------------------
// pools.<name>.tls and auth

TEST_CASE("a pool's tls has defaults and every key round-trips", "[config][tls]") {
  const Pki& p = pki();
  const LoadResult d = require_ok(pool_lines("memcached", {"tls: {}"}));
  REQUIRE(d.config.pools[0].tls.has_value());
  const PoolTlsConfig& t = *d.config.pools[0].tls;
  CHECK(t.ca.empty());
  CHECK(t.cert.empty());
  CHECK(t.key.empty());
  CHECK(t.verify);
  CHECK(t.server_name.empty());
  CHECK(t.where.line == 10);
  CHECK(t.where.column == 5);

  const LoadResult r = require_ok(
      pool_lines("redis", {"tls:", "  ca: " + p.ca, "  cert: " + p.cert, "  key: " + p.key,
                           "  verify: false", "  server_name: cache.internal"}));
  const PoolTlsConfig& f = *r.config.pools[0].tls;
  CHECK(f.ca == p.ca);
  CHECK(f.cert == p.cert);
  CHECK(f.key == p.key);
  CHECK_FALSE(f.verify);
  CHECK(f.server_name == "cache.internal");
}

TEST_CASE("a pool's client certificate and key come together and match", "[config][tls]") {
  const Pki& p = pki();
  require_error(pool_lines("memcached", {"tls:"}),
                {"pools.cache.tls", 10, 5,
                 "expected a map, got nothing (write tls: {} for TLS with every default)"});
  require_error(pool_lines("memcached", {"tls: true"}),
                {"pools.cache.tls", 10, 10, "expected a map, got 'true'"});
  require_error(pool_lines("memcached", {"tls:", "  cert: " + p.cert}),
                {"pools.cache.tls.cert", 11, 13, "given without key"});
  require_error(pool_lines("memcached", {"tls:", "  key: " + p.key}),
                {"pools.cache.tls.key", 11, 12, "given without cert"});
  require_error(pool_lines("memcached", {"tls:", "  cert: " + p.cert, "  key: " + p.other_key}),
                {"pools.cache.tls.key", 12, 12, "does not match the (first) certificate"});
  require_error(pool_lines("memcached", {"tls:", "  ca: " + p.not_pem}),
                {"pools.cache.tls.ca", 11, 11, "contains no PEM certificate"});
  require_error(pool_lines("memcached", {"tls:", "  ca: " + p.key}),
                {"pools.cache.tls.ca", 11, 11, "contains no PEM certificate"});
  require_error(pool_lines("memcached", {"tls:", "  verify: yes"}),
                {"pools.cache.tls.verify", 11, 15, "expected true or false, got 'yes'"});
  require_error(pool_lines("memcached", {"tls:", "  verfy: true"}),
                {"pools.cache.tls.verfy", 11, 7, "unknown key 'verfy' (did you mean 'verify'?)"});
}

TEST_CASE("a pool's tls server_name is a host name", "[config][tls]") {
  CHECK(require_ok(pool_lines("redis", {"tls:", "  server_name: cache.internal."}))
            .config.pools[0]
            .tls->server_name == "cache.internal.");
  require_error(pool_lines("redis", {"tls:", "  server_name: 10.0.0.1"}),
                {"pools.cache.tls.server_name", 11, 20, "'10.0.0.1' is an IP address"});
  require_error(pool_lines("redis", {"tls:", "  server_name: \"::1\""}),
                {"pools.cache.tls.server_name", 11, 20, "is an IP address"});
  require_error(pool_lines("redis", {"tls:", "  server_name: \"[::1]\""}),
                {"pools.cache.tls.server_name", 11, 20, "is an IP address"});
  require_error(pool_lines("redis", {"tls:", "  server_name: \"bad name\""}),
                {"pools.cache.tls.server_name", 11, 20, "'bad name' is not a valid host name"});
  require_error(pool_lines("redis", {"tls:", "  server_name: \"\""}),
                {"pools.cache.tls.server_name", 11, 20, "must not be empty"});
}

TEST_CASE("a pool's auth sets the credentials cachegate presents to its servers",
          "[config][auth]") {
  testing::TempDir dir;
  const std::string file = dir.write_file("server.pass", "from-file\r\n");
  const PoolConfig r = require_ok(pool_lines("redis", {"auth: {password: pw1}"})).config.pools[0];
  CHECK(r.server_username.empty());
  CHECK(r.server_password == "pw1");
  const PoolConfig u =
      require_ok(pool_lines("redis", {"auth:", "  username: app", "  password: pw2"}))
          .config.pools[0];
  CHECK(u.server_username == "app");
  CHECK(u.server_password == "pw2");
  const PoolConfig m =
      require_ok(pool_lines("memcached", {"auth:", "  username: mc", "  password_file: " + file}))
          .config.pools[0];
  CHECK(m.server_username == "mc");
  CHECK(m.server_password == "from-file");
  // A YAML number is a password too.
  CHECK(
      require_ok(pool_lines("redis", {"auth: {password: 1234}"})).config.pools[0].server_password ==
      "1234");

  require_error(pool_lines("memcached", {"auth:", "  password: pw"}),
                {"pools.cache.auth", 10, 5,
                 "missing required key 'username' (memcached's authentication needs a username and "
                 "a password)"});
  require_error(
      pool_lines("redis", {"auth:", "  username: app"}),
      {"pools.cache.auth", 10, 5, "missing required key 'password' (or 'password_file')"});
  require_error(
      pool_lines("redis", {"auth: {}"}),
      {"pools.cache.auth", 10, 5, "missing required key 'password' (or 'password_file')"});
  require_errors(load(pool_lines("memcached", {"auth: {}"})),
                 {{"pools.cache.auth", 10, 5, "missing required key 'password'"},
                  {"pools.cache.auth", 10, 5, "missing required key 'username'"}});
  require_error(
      pool_lines("redis", {"auth:", "  username: u", "  password: pw", "  password_file: " + file}),
      {"pools.cache.auth.password_file", 13, 22, "give password or password_file, not both"});
  require_error(pool_lines("redis", {"auth:", "  password: \"\""}),
                {"pools.cache.auth.password", 11, 17, "must not be empty"});
  require_error(pool_lines("redis", {"auth:", "  password: [a]"}),
                {"pools.cache.auth.password", 11, 17, "expected a string, got a list"});
  require_error(
      pool_lines("redis", {"auth:", "  username: \"a b\"", "  password: pw"}),
      {"pools.cache.auth.username", 11, 17, "'a b' contains whitespace or control characters"});
  require_error(pool_lines("redis", {"auth:", "  password_file: " + dir.path() + "/missing"}),
                {"pools.cache.auth.password_file", 11, 22, "No such file or directory"});
  const std::string empty = dir.write_file("empty.pass", "\n\n");
  require_error(pool_lines("redis", {"auth:", "  password_file: " + empty}),
                {"pools.cache.auth.password_file", 11, 22, "'" + empty + "' is empty"});
  require_error(pool_lines("redis", {"auth: pw"}),
                {"pools.cache.auth", 10, 11, "expected a map, got 'pw'"});
  require_error(
      pool_lines("redis", {"auth:", "  usename: u", "  password: pw"}),
      {"pools.cache.auth.usename", 11, 7, "unknown key 'usename' (did you mean 'username'?)"});
}

TEST_CASE("a pool's auth is not given together with redis_auth or redis_auth_file",
          "[config][auth]") {
  testing::TempDir dir;
  const std::string file = dir.write_file("redis.pass", "x\n");
  require_error(pool_lines("redis", {"redis_auth: a", "auth: {password: b}"}),
                {"pools.cache.auth", 11, 11, "give auth or redis_auth, not both"});
  require_error(pool_lines("redis", {"redis_auth_file: " + file, "auth: {password: b}"}),
                {"pools.cache.auth", 11, 11, "give auth or redis_auth_file, not both"});
  // The old keys keep working alone.
  CHECK(require_ok(pool_lines("redis", {"redis_auth_file: " + file}))
            .config.pools[0]
            .server_password == "x");
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("secrets never appear in error messages", "[config][auth]") {
  const Pki& p = pki();
  testing::TempDir dir;
  const std::string file = dir.write_file("s3.pass", "plain-secret-3\n");
  const LoadResult r = load(yaml(R"(
listeners:
  - name: l
    listen: 127.0.0.1:22122
    pool: cache
    tls:
      cert: )" + p.cert + R"(
      key: )" + p.other_key + R"(
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
    redis_auth: plain-secret-4
    auth:
      password: plain-secret-2
users:
  - name: a
    password_hash: plain-secret-1
  - name: a
    password_hash: ')" + kScryptHash +
                                 R"('
  - name: b
    password_hash: ')" + kHash + R"('
    password_file: )" + file + R"(
)"));
  const std::string messages = format_errors(r);
  INFO(messages);
  CHECK(r.errors.size() == 7);
  for (std::string_view secret : {"plain-secret", "Y2FjaGVn", "Xr7AdCA", "oskUlB7", "PRIVATE"})
    CHECK(messages.find(secret) == std::string::npos);
}

TEST_CASE("errors in users, auth limits, tls and credentials are reported together in order",
          "[config]") {
  const Pki& p = pki();
  require_errors(load(yaml(R"(
auth_limits:
  failures_slow: 0
users:
  - name: alice
    allow: {ops: [reed]}
pools:
  cache:
    servers:
      - 127.0.0.1:21211:1
    auth: {password: x}
    tls: {cert: )" + p.cert +
                           R"(}
listeners:
  - name: mc
    listen: 127.0.0.1:22122
    pool: cache
    auth: required
    max_connections: lots
    tls:
      key: )" + p.key + R"(
      min_version: 1.1
)")),
                 {
                     {"auth_limits.failures_slow", 2, 18, "must be at least 1, got 0"},
                     {"users[0].allow.ops[0]", 5, 19, "unknown operation class 'reed'"},
                     {"pools.cache.auth", 10, 5, "missing required key 'username'"},
                     {"pools.cache.tls.cert", 11, 17, "given without key"},
                     {"listeners[0].auth", 16, 11, "no user can log in on this listener"},
                     {"listeners[0].max_connections", 17, 22, "expected an integer, got 'lots'"},
                     {"listeners[0].tls", 18, 5, "missing required key 'cert'"},
                     {"listeners[0].tls.min_version", 20, 20, "TLS 1.1 is not supported"},
                 });
}

}  // namespace
}  // namespace cachegate::config
