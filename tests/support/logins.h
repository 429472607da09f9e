#pragma once

// Building blocks of the tests that log in through cachegate: users whose password hashes are
// cheap to check, pools of the servers the test started, and memcached's ASCII login.

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/password.h"
#include "tests/support/text_client.h"

namespace cachegate::testing {

// A password hash at the lowest cost accepted, so that a login takes microseconds.
inline std::string cheap_password_hash(const std::string& password) {
  return config::hash_password(password, config::PasswordScheme::kPbkdf2Sha256,
                               config::PasswordCost{config::kMinPbkdf2Iterations});
}

// cachegate in front of one redis-server on `server_port`: a listener `r` that requires a login,
// and each user of `tenants` ({name, namespace}) with the password "pw".
inline std::string tenant_redis_config(
    uint16_t server_port, const std::vector<std::pair<std::string, std::string>>& tenants) {
  const std::string hash = cheap_password_hash("pw");
  std::string y =
      "workers: 1\n"
      "listeners:\n"
      "  - {name: r, listen: \"127.0.0.1:{port}\", pool: red, auth: required}\n"
      "users:\n";
  for (const auto& [name, ns] : tenants)
    y += "  - {name: " + name + ", password_hash: \"" + hash + "\", namespace: \"" + ns + "\"}\n";
  return y +
         "pools:\n  red: {protocol: redis, servers: [\"127.0.0.1:" + std::to_string(server_port) +
         ":1 r0\"]}\n";
}

// A `pools:` entry named `name` over 127.0.0.1 servers on `ports` (named <prefix>0, <prefix>1,
// …), with a 1 s timeout and flushes allowed; `extra` lines go at the pool's level.
inline std::string test_pool_yaml(const std::string& name, const std::string& protocol,
                                  const std::vector<uint16_t>& ports,
                                  const std::string& server_prefix,
                                  const std::vector<std::string>& extra = {}) {
  std::string y = "  " + name + ":\n    protocol: " + protocol + "\n";
  y += "    timeout: 1000\n    allow_flush: true\n";
  for (const auto& line : extra)
    y += "    " + line + "\n";
  y += "    servers: [";
  for (size_t i = 0; i < ports.size(); ++i) {
    y += i > 0 ? ", " : "";
    y += "\"127.0.0.1:" + std::to_string(ports[i]) + ":1 " + server_prefix + std::to_string(i) +
         "\"";
  }
  return y + "]\n";
}

// memcached's ASCII login (its -Y mode) as the first request on `client`; must succeed.
inline void memcache_login(TextClient& client, const std::string& user,
                           const std::string& password) {
  const std::string token = user + " " + password;
  REQUIRE(client.call("set login 0 0 " + std::to_string(token.size()) + "\r\n" + token + "\r\n")
              .value_or("<no reply>") == "STORED\r\n");
}

}  // namespace cachegate::testing
