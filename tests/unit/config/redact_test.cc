// The configuration as shown to operators: secrets replaced at any depth, file paths kept, and
// the SHA-256 fingerprint of the loaded bytes.

#include "config/redact.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include "config/load.h"
#include "tests/unit/config/expected_errors.h"

namespace cachegate::config {
namespace {

using Catch::Matchers::Contains;

const std::string kSecrets[] = {"hunter2",  "s3cret-auth",  "$pbkdf2-sha256$i=1000$abc$def",
                                "tok-123",  "db-pass",      "api-secret-value",
                                "CapsPass", "nested-secret"};

TEST_CASE("redacted_config_yaml replaces every secret value and keeps file paths",
          "[config][redact]") {
  const std::string text = yaml(R"(
# a comment that is dropped: hunter2
workers: 2
pools:
  cache:
    protocol: redis
    redis_auth: s3cret-auth
    redis_auth_file: /run/secrets/redis
    timeout: "400"
    servers:
      - 127.0.0.1:26379:1
  other:
    auth: {username: app, password: hunter2, password_file: /run/secrets/other}
    tls: {cert: /etc/cert.pem, key: /etc/key.pem}
users:
  - name: alice
    password_hash: "$pbkdf2-sha256$i=1000$abc$def"
    password_file: /run/secrets/alice
  - name: bob
    extra:
      - {token: tok-123, token_file: /run/token}
      - db_password: db-pass
        API_SECRET: api-secret-value
        Password: CapsPass
        password: {deep: [nested-secret]}
admin:
  listen: 127.0.0.1:9090
  token_file: /run/admin-token
)");
  const std::string out = redacted_config_yaml(text);
  INFO(out);
  for (const auto& secret : kSecrets)
    CHECK_THAT(out, !Contains(secret));
  CHECK_THAT(out, !Contains("comment"));

  const YAML::Node root = YAML::Load(out);
  CHECK(root["workers"].Scalar() == "2");
  CHECK(root["pools"]["cache"]["redis_auth"].Scalar() == "<redacted>");
  CHECK(root["pools"]["cache"]["redis_auth_file"].Scalar() == "/run/secrets/redis");
  // A quoted scalar stays a quoted string.
  CHECK(root["pools"]["cache"]["timeout"].Tag() == "!");
  CHECK(root["pools"]["cache"]["timeout"].Scalar() == "400");
  CHECK(root["pools"]["cache"]["servers"][0].Scalar() == "127.0.0.1:26379:1");
  const YAML::Node auth = root["pools"]["other"]["auth"];
  CHECK(auth["username"].Scalar() == "app");
  CHECK(auth["password"].Scalar() == "<redacted>");
  CHECK(auth["password_file"].Scalar() == "/run/secrets/other");
  CHECK(root["pools"]["other"]["tls"]["key"].Scalar() == "/etc/key.pem");
  CHECK(root["users"][0]["password_hash"].Scalar() == "<redacted>");
  CHECK(root["users"][0]["password_file"].Scalar() == "/run/secrets/alice");
  const YAML::Node extra = root["users"][1]["extra"];
  CHECK(extra[0]["token"].Scalar() == "<redacted>");
  CHECK(extra[0]["token_file"].Scalar() == "/run/token");
  CHECK(extra[1]["db_password"].Scalar() == "<redacted>");
  CHECK(extra[1]["API_SECRET"].Scalar() == "<redacted>");
  CHECK(extra[1]["Password"].Scalar() == "<redacted>");
  // A whole map or list under a secret key goes.
  CHECK(extra[1]["password"].IsScalar());
  CHECK(extra[1]["password"].Scalar() == "<redacted>");
  CHECK(root["admin"]["token_file"].Scalar() == "/run/admin-token");

  // Key order is kept.
  std::vector<std::string> keys;
  for (const auto& kv : root)
    keys.push_back(kv.first.Scalar());
  CHECK(keys == std::vector<std::string>{"workers", "pools", "users", "admin"});
}

TEST_CASE("redacted_config_yaml hides a secret reached through an alias", "[config][redact]") {
  const std::string out = redacted_config_yaml(yaml(R"(
pools:
  a:
    auth: {username: u, password: &pw hunter2}
    note: *pw
  b:
    shared: &creds {user: u, secret_key: ok}
    auth: {password: *creds}
    copy: *creds
plain: &plain visible
db_password: *plain
again: *plain
)"));
  INFO(out);
  CHECK_THAT(out, !Contains("hunter2"));
  const YAML::Node root = YAML::Load(out);
  CHECK(root["pools"]["a"]["note"].Scalar() == "<redacted>");
  // A value used under a secret key is hidden wherever else it appears.
  CHECK(root["pools"]["b"]["auth"]["password"].Scalar() == "<redacted>");
  CHECK(root["pools"]["b"]["shared"].Scalar() == "<redacted>");
  CHECK(root["pools"]["b"]["copy"].Scalar() == "<redacted>");
  CHECK(root["plain"].Scalar() == "<redacted>");
  CHECK(root["again"].Scalar() == "<redacted>");
}

TEST_CASE("redacted_config_yaml output of an example loads as the same configuration",
          "[config][redact]") {
  std::ifstream in(std::string(CACHEGATE_SOURCE_DIR) + "/examples/routes.yaml");
  std::stringstream text;
  text << in.rdbuf();
  const LoadResult original = load_config_string(text.str(), "routes.yaml");
  REQUIRE(original.ok());
  const LoadResult redacted = load_config_string(redacted_config_yaml(text.str()), "redacted");
  INFO(format_errors(redacted));
  REQUIRE(redacted.ok());
  CHECK(redacted.config.pools.size() == original.config.pools.size());
  CHECK(redacted.config.routes[0].rules.size() == original.config.routes[0].rules.size());
  CHECK(redacted.config.listeners[0].port == original.config.listeners[0].port);
}

TEST_CASE("redacted_config_yaml refuses text that is not YAML or expands without bound",
          "[config][redact]") {
  CHECK(redacted_config_yaml("").empty());
  CHECK_THROWS_AS(redacted_config_yaml("a: [1, 2\nb: hunter2"), std::runtime_error);
  try {
    redacted_config_yaml("password: \"hunter2\nb: [");
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), !Contains("hunter2"));
  }
  // "Billion laughs": nine levels of ten aliases each.
  std::string laughs = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 10; ++i) {
    const std::string prev = "*l" + std::to_string(i - 1);
    laughs += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j)
      laughs += (j ? ", " : "") + prev;
    laughs += "]\n";
  }
  CHECK_THROWS_WITH(redacted_config_yaml(laughs), Contains("too many"));
  // yaml-cpp lets an alias stand inside its own anchor: a cycle.
  CHECK_THROWS_AS(redacted_config_yaml("a: &a [x, *a]\n"), std::runtime_error);
}

}  // namespace
}  // namespace cachegate::config
