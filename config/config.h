#pragma once

// The validated, immutable configuration of one cachegate process.
//
// Produced only by load_config_file()/load_config_string() (config/load.h); every field here has
// already been checked, so the rest of the program never re-validates. Pool and server keys use
// twemproxy's names so a twemproxy pool definition can be copied over unchanged.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace cachegate::config {

enum class Protocol : uint8_t { kMemcached, kRedis };

// twemproxy's key distributions.
enum class Distribution : uint8_t { kKetama, kModula, kRandom };

// twemproxy's hash names, in twemproxy's order.
enum class HashFunction : uint8_t {
  kOneAtATime,
  kMd5,
  kCrc16,
  kCrc32,
  kCrc32a,
  kFnv1_64,
  kFnv1a_64,
  kFnv1_32,
  kFnv1a_32,
  kHsieh,
  kMurmur,
  kJenkins,
};

// Where a value was written in the YAML source (1-based; 0 when not from a file).
struct SourceLocation {
  int line = 0;
  int column = 0;
};

struct ServerConfig {
  std::string spec;  // as written: "host:port:weight [name]"
  std::string host;  // hostname or IP literal, without IPv6 brackets
  uint16_t port = 0;
  uint32_t weight = 1;
  std::string name;  // the optional explicit name; empty when not given
  // The string twemproxy's ketama hashes for this server: the name if given, else "host" when
  // the port is 11211 (libmemcached compatibility), else "host:port".
  std::string identity;
  SourceLocation where;
};

struct PoolConfig {
  std::string name;
  Protocol protocol = Protocol::kMemcached;
  Distribution distribution = Distribution::kKetama;
  HashFunction hash = HashFunction::kFnv1a_64;
  std::string hash_tag;  // empty, or exactly two characters
  // Request timeout: a request not answered within it fails with SERVER_ERROR and the
  // connection it was on is reset (its stream can no longer be trusted).
  std::chrono::milliseconds timeout{1000};
  std::chrono::milliseconds connect_timeout{1000};
  uint32_t server_connections = 1;  // per worker, per server
  bool preconnect = false;
  bool tcpkeepalive = false;
  bool auto_eject_hosts = false;
  std::chrono::milliseconds server_retry_timeout{30000};
  uint32_t server_failure_limit = 2;
  bool allow_flush = false;
  // Redis pools: the password sent with AUTH on every new server connection (twemproxy's
  // redis_auth, or read from redis_auth_file; a secret: never logged or shown), and the database
  // those connections SELECT (twemproxy's redis_db; clients see it as db 0).
  std::string redis_auth;
  uint32_t redis_db = 0;
  std::vector<ServerConfig> servers;  // non-empty
  SourceLocation where;
};

struct ListenerConfig {
  std::string name;
  std::string host;  // IP literal or hostname to bind
  uint16_t port = 0;
  Protocol protocol = Protocol::kMemcached;
  std::string pool;  // name of a pool in Config::pools with the same protocol
  uint32_t backlog = 1024;
  SourceLocation where;
};

// Bounds checked before anything is allocated for a client.
struct Limits {
  // Largest value accepted in a storage command; larger values are swallowed and answered
  // "SERVER_ERROR object too large for cache" (memcached's -I, default 1 MiB).
  uint64_t item_size_max = 1024 * 1024;
  // Longest request line; a line past it without CRLF is an error and closes the connection.
  // Large enough for a multi-get of a few hundred maximal keys.
  uint32_t request_line_max = 64 * 1024;
  // Requests one client may have in flight before cachegate stops reading from it.
  uint32_t client_pipeline_max = 4096;
  // Reply bytes buffered for one client before cachegate stops reading from it.
  uint64_t client_output_max = 8 * 1024 * 1024;
  // Reply bytes held for one client (written or waiting for earlier replies, including parts of
  // multi-gets) past which the client is disconnected: a client that pipelines without reading
  // can otherwise make cachegate hold every reply it asked for.
  uint64_t client_output_hard_max = 256 * 1024 * 1024;
  // Largest Redis request (all arguments together) accepted from a client; redis-server's own
  // bulk limit is 512 MiB, but each request is held whole before it is forwarded.
  uint64_t request_size_max = 64 * 1024 * 1024;
  // Largest reply accepted from a backend; a larger one resets that backend connection.
  uint64_t reply_size_max = 64 * 1024 * 1024;
};

struct Config {
  unsigned workers = 0;  // resolved: never 0 after loading (0 in YAML means one per core)
  std::vector<ListenerConfig> listeners;
  std::vector<PoolConfig> pools;
  Limits limits;
  std::string source;  // file name the config came from, for messages

  const PoolConfig* find_pool(std::string_view name) const {
    for (const auto& p : pools)
      if (p.name == name) return &p;
    return nullptr;
  }
};

std::string_view to_string(Protocol p);
std::string_view to_string(Distribution d);
std::string_view to_string(HashFunction h);

}  // namespace cachegate::config
