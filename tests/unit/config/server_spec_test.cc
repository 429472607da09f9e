// twemproxy server lines, "host:port:weight [name]", parsed as twemproxy 0.5's conf_add_server
// parses them. The identity column decides where keys land on the ketama ring, so it is pinned
// for every shape of line.

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "config/load.h"

namespace cachegate::config {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("server specs that parse", "[config][server_spec]") {
  struct Case {
    std::string spec;
    std::string host;
    uint16_t port;
    uint32_t weight;
    std::string name;
    std::string identity;
  };
  const std::vector<Case> cases = {
      // Port 11211 is left out of the identity, for libmemcached compatibility.
      {"127.0.0.1:11211:1", "127.0.0.1", 11211, 1, "", "127.0.0.1"},
      {"127.0.0.1:21211:1", "127.0.0.1", 21211, 1, "", "127.0.0.1:21211"},
      {"127.0.0.1:21212:1 cache-2", "127.0.0.1", 21212, 1, "cache-2", "cache-2"},
      {"127.0.0.1:11211:5 s1", "127.0.0.1", 11211, 5, "s1", "s1"},
      {"127.0.0.1:11214:100000", "127.0.0.1", 11214, 100000, "", "127.0.0.1:11214"},
      {"10.0.0.1:65535:2147483647", "10.0.0.1", 65535, 2147483647, "", "10.0.0.1:65535"},
      {"10.0.0.1:1:1", "10.0.0.1", 1, 1, "", "10.0.0.1:1"},
      {"localhost:11211:1", "localhost", 11211, 1, "", "localhost"},
      {"cache-1.example.com:11212:10", "cache-1.example.com", 11212, 10, "",
       "cache-1.example.com:11212"},
      {"Cache_1.Example.com.:11212:1", "Cache_1.Example.com.", 11212, 1, "",
       "Cache_1.Example.com.:11212"},
      // The identity is the text as written, so a zero-padded port stays padded...
      {"127.0.0.1:021212:1", "127.0.0.1", 21212, 1, "", "127.0.0.1:021212"},
      // ...and a padded 11211 is still 11211.
      {"127.0.0.1:011211:1", "127.0.0.1", 11211, 1, "", "127.0.0.1"},
      // A name may contain anything but whitespace, colons included.
      {"127.0.0.1:21211:1 shard:a/1", "127.0.0.1", 21211, 1, "shard:a/1", "shard:a/1"},
      // IPv6: bracketed, or bare as twemproxy reads it from the end.
      {"[::1]:11211:1 name", "::1", 11211, 1, "name", "name"},
      {"[::1]:11212:1", "::1", 11212, 1, "", "[::1]:11212"},
      {"[::1]:11211:1", "::1", 11211, 1, "", "[::1]"},
      {"[2001:db8::7]:6000:3 v6", "2001:db8::7", 6000, 3, "v6", "v6"},
      {"::1:11212:1", "::1", 11212, 1, "", "::1:11212"},
      {"fe80::1:11211:2", "fe80::1", 11211, 2, "", "fe80::1"},
  };
  for (const auto& c : cases) {
    INFO(c.spec);
    ServerConfig s;
    REQUIRE(parse_server_spec(c.spec, s) == "");
    CHECK(s.spec == c.spec);
    CHECK(s.host == c.host);
    CHECK(s.port == c.port);
    CHECK(s.weight == c.weight);
    CHECK(s.name == c.name);
    CHECK(s.identity == c.identity);
  }
}

TEST_CASE("a name is at most 80 bytes", "[config][server_spec]") {
  ServerConfig s;
  const std::string name80(80, 'n');
  REQUIRE(parse_server_spec("127.0.0.1:11211:1 " + name80, s) == "");
  CHECK(s.name == name80);
  CHECK(s.identity == name80);
  CHECK(parse_server_spec("127.0.0.1:11211:1 " + name80 + "n", s) ==
        "has a name longer than 80 bytes");
}

TEST_CASE("server specs that do not parse", "[config][server_spec]") {
  struct Case {
    std::string spec;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {"", "is empty"},
      {"127.0.0.1:11211:0", "has a zero weight"},
      {"127.0.0.1:11211:0 name", "has a zero weight"},
      {"127.0.0.1:11211:-1", "has an invalid weight '-1'"},
      {"127.0.0.1:11211:x", "has an invalid weight 'x'"},
      {"127.0.0.1:11211:", "has an invalid weight ''"},
      {"127.0.0.1:11211:1.5", "has an invalid weight '1.5'"},
      {"127.0.0.1:11211:2147483648", "has a weight above 2147483647"},
      {"127.0.0.1:11211:99999999999999999999", "has a weight above 2147483647"},
      {"127.0.0.1:0:1", "has an invalid port '0' (must be 1 to 65535)"},
      {"127.0.0.1:65536:1", "has an invalid port '65536' (must be 1 to 65535)"},
      {"127.0.0.1:port:1", "has an invalid port 'port'"},
      {"127.0.0.1::1", "has an invalid port ''"},
      {"127.0.0.1:11211", "is not in the form host:port:weight [name]"},
      {"127.0.0.1", "is not in the form host:port:weight [name]"},
      {":1", "is not in the form host:port:weight [name]"},
      {"127.0.0.1 name", "is not in the form host:port:weight [name]"},
      {":11211:1", "has an empty host"},
      {"127.0.0.1:11211:1 ", "has an empty name after the space"},
      // twemproxy splits at the last space, so a second space lands in the weight.
      {"127.0.0.1:11211:1  name", "has an invalid weight '1 '"},
      {"127.0.0.1:11211:1 na\tme", "has a name with whitespace or control characters"},
      {"/var/run/memcached.sock:1", "is a unix socket path; unix sockets are not supported"},
      {"/var/run/memcached.sock:1 name", "unix sockets are not supported"},
      {"256.0.0.1:11211:1", "has an invalid IPv4 address '256.0.0.1'"},
      {"1.2.3:11211:1", "has an invalid IPv4 address '1.2.3'"},
      {"bad_host!:11211:1", "has an invalid host name 'bad_host!'"},
      {".example:11211:1", "has an invalid host name '.example'"},
      {"[::1:11211:1", "has an unterminated IPv6 address '[::1'"},
      {"[::g]:11211:1", "has an invalid IPv6 address '[::g]'"},
      {"[127.0.0.1]:11211:1", "has an invalid IPv6 address '[127.0.0.1]'"},
      {"127.0.0.1:11211:1:1", "has an invalid IPv6 address '127.0.0.1:11211'"},
  };
  for (const auto& c : cases) {
    INFO(c.spec);
    ServerConfig s;
    CHECK_THAT(parse_server_spec(c.spec, s), Contains(c.problem));
  }
}

}  // namespace
}  // namespace cachegate::config
