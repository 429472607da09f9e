#pragma once

// The validated, immutable configuration of one cachegate process.
//
// Produced only by load_config_file()/load_config_string() (config/load.h); every field here has
// already been checked, so the rest of the program never re-validates. Pool and server keys use
// twemproxy's names so a twemproxy pool definition can be copied over unchanged.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

// --- TLS and users ---------------------------------------------------------------------------

enum class TlsClientAuth : uint8_t { kNone, kOptional, kRequired };
// kOptional serves plain and TLS clients on one port, told apart by the first bytes (a TLS
// ClientHello starts with 0x16 0x03).
enum class TlsMode : uint8_t { kRequired, kOptional };
enum class TlsVersion : uint8_t { k1_2, k1_3 };

// A listener's `tls:`. Paths are as written (relative to the working directory); the files are
// read when the listener starts and again on reload. Loading has checked them once already: each
// readable and PEM, the key unencrypted and matching the certificate, the cipher lists accepted
// by OpenSSL.
struct ListenerTlsConfig {
  std::string cert;       // PEM certificate chain, leaf first
  std::string key;        // PEM private key
  std::string client_ca;  // PEM CA bundle for client certificates; required unless kNone
  TlsClientAuth client_auth = TlsClientAuth::kNone;
  TlsVersion min_version = TlsVersion::k1_2;
  std::string ciphers;       // OpenSSL cipher list for TLS 1.2; empty: OpenSSL's default
  std::string ciphersuites;  // TLS 1.3 suites; empty: OpenSSL's default
  TlsMode mode = TlsMode::kRequired;
  // A client that has not completed its handshake by then is dropped.
  std::chrono::milliseconds handshake_timeout{10000};
  SourceLocation where;
};

// A pool's `tls:` towards its servers.
struct PoolTlsConfig {
  std::string ca;           // PEM CA bundle to verify servers; empty: the system's default paths
  std::string cert, key;    // client certificate for servers that ask for one (both or neither)
  bool verify = true;       // verify the server's certificate chain and name
  std::string server_name;  // SNI and the name checked; empty: each server's host
  SourceLocation where;
};

enum class ListenerAuth : uint8_t { kNone, kRequired };

// What a user may do. Operation classes: read (get, GET, HGET, SCAN …), write (set, delete,
// incr, SET, DEL, EXPIRE …), admin (flush_all, FLUSHALL, CONFIG, SCRIPT, FUNCTION, KEYS, INFO
// and anything else that touches a whole pool or a server's state).
enum class OpClass : uint8_t { kRead, kWrite, kAdmin };

struct UserConfig {
  std::string name;
  // A PHC-format hash ("$pbkdf2-sha256$i=…$salt$hash" or "$scrypt$ln=…,r=…,p=…$salt$hash"), as
  // `cachegate hash-password` prints, already checked by parse_password_hash (config/password.h);
  // or, from password_file, the hash of the file's password made at load time (pbkdf2-sha256 with
  // 10000 iterations and a fresh salt: that hash never leaves the process, so a higher cost would
  // only slow logins). Empty: no password (the user can only log in by certificate).
  std::string password_hash;
  std::string password_file;  // as written, for reload and messages
  // Client-certificate identities (subject CN, or a DNS/email/URI SAN) that log in as this user.
  std::vector<std::string> tls_identities;
  // allow.ops; empty in YAML means all three.
  bool may_read = true, may_write = true, may_admin = true;
  // allow.keys: glob patterns ('*', '?', '[…]', backslash escapes) every key of a request must
  // match, as the client wrote it (before the namespace is added); empty: every key.
  std::vector<std::string> key_patterns;
  // A prefix added to every key on the way in and removed on the way out.
  std::string key_namespace;
  SourceLocation where;
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
  // Redis: connections each worker may open to each server for one client alone (a transaction
  // with MULTI or WATCH, a blocking command, WAIT, subscriptions), besides the shared ones; past
  // it such a client gets an error. 0: none.
  uint32_t dedicated_connections = 16;
  bool preconnect = false;
  bool tcpkeepalive = false;
  bool auto_eject_hosts = false;
  std::chrono::milliseconds server_retry_timeout{30000};
  uint32_t server_failure_limit = 2;
  bool allow_flush = false;
  // The credentials cachegate presents on every new server connection (secrets: never logged or
  // shown). Redis pools: "AUTH [username] password" (twemproxy's redis_auth, redis_auth_file, or
  // auth: {username, password_file}). memcached pools, for servers started with -Y: memcached's
  // ASCII authentication (a `set` whose data is "username password"); both are then required.
  std::string server_username;
  std::string server_password;
  // Redis pools: the database those connections SELECT (twemproxy's redis_db; clients see it as
  // db 0).
  uint32_t redis_db = 0;
  std::optional<PoolTlsConfig> tls;
  std::vector<ServerConfig> servers;  // non-empty
  SourceLocation where;
};

// --- routes ----------------------------------------------------------------------------------

// What a request does, for matching route rules: finer than OpClass, because replication treats
// deletes and arithmetic apart from other writes (memcached: get/gets/mg → read; set, add, cas,
// touch, gat, ms … → write; delete, md → delete; incr, decr, ma → arithmetic; flush_all → admin.
// Redis: by the command table's flags; DEL/UNLINK/GETDEL delete, INCR/DECR and friends arithmetic).
enum class RouteOp : uint8_t { kRead, kWrite, kDelete, kArithmetic, kAdmin };
inline constexpr uint8_t route_op_bit(RouteOp op) {
  return static_cast<uint8_t>(1u << static_cast<unsigned>(op));
}
inline constexpr uint8_t kAllRouteOps = 0x1f;

// When a rule applies. Every condition given must hold; a rule with none is a catch-all.
struct RouteMatch {
  std::optional<std::string> prefix;   // the key starts with it (may be "")
  std::string glob;                    // '*', '?', '[…]', backslash escapes; empty: any key
  uint8_t ops = kAllRouteOps;          // route_op_bit()s
  std::vector<std::string> listeners;  // listener names; empty: any
  std::vector<std::string> users;      // user names; empty: any (including anonymous clients)
  bool catch_all() const {
    return !prefix && glob.empty() && ops == kAllRouteOps && listeners.empty() && users.empty();
  }
};

enum class RouteKind : uint8_t {
  kPool,       // pool: P — shard into one pool
  kReplicate,  // replicate: {pools, mode, read, miss_failover}
  kFailover,   // failover: [P1, P2, …]
  kWarmup,     // warmup: {cold: A, warm: B}
};
// How a replicated write answers: after every pool answered (the worst reply wins), after a
// majority agreed, or after the first (the others finish in the background).
enum class ReplicateMode : uint8_t { kAllSync, kQuorum, kAllAsync };
// Which pool a replicated read goes to first.
enum class ReadPolicy : uint8_t { kFirst, kRandom, kRoundRobin, kLeastLatency };

struct RouteRule {
  RouteMatch match;
  RouteKind kind = RouteKind::kPool;
  // kPool: one pool; kReplicate and kFailover: in order; kWarmup: {cold, warm}. Each the name of
  // a pool of the listener's protocol.
  std::vector<std::string> pools;
  ReplicateMode mode = ReplicateMode::kAllSync;
  ReadPolicy read = ReadPolicy::kFirst;
  bool miss_failover = false;  // kReplicate: a miss also moves a read to the next pool
  // kFailover: writes that land on a pool other than the first keep at most this TTL (seconds).
  std::optional<uint32_t> failover_ttl;
  // shadow: a copy of every matching request goes to this pool; its replies are ignored.
  std::string shadow_pool;
  double shadow_fraction = 1.0;
  // rewrite: this prefix comes off the client's key (keys without it are left alone), then
  // add_prefix goes in front; keys in replies are rewritten back.
  std::string strip_prefix;
  std::string add_prefix;
  std::optional<uint32_t> ttl_max;                   // ttl: {max}: writes expire within this (s)
  std::optional<std::chrono::milliseconds> timeout;  // overrides the pools' request timeout
  SourceLocation where;
};

struct RouteTableConfig {
  std::string name;
  Protocol protocol = Protocol::kMemcached;  // of its pools (all the same)
  std::vector<RouteRule> rules;              // in the YAML's order; at least one catch-all
  SourceLocation where;
};

// The permission class of an operation: deletes and arithmetic are writes.
inline OpClass op_class(RouteOp op) {
  switch (op) {
    case RouteOp::kRead:
      return OpClass::kRead;
    case RouteOp::kAdmin:
      return OpClass::kAdmin;
    case RouteOp::kWrite:
    case RouteOp::kDelete:
    case RouteOp::kArithmetic:
      break;
  }
  return OpClass::kWrite;
}

inline std::string_view to_string(RouteOp op) {
  switch (op) {
    case RouteOp::kRead:
      return "read";
    case RouteOp::kWrite:
      return "write";
    case RouteOp::kDelete:
      return "delete";
    case RouteOp::kArithmetic:
      return "arithmetic";
    case RouteOp::kAdmin:
      return "admin";
  }
  return "unknown";
}
inline std::string_view to_string(ReplicateMode m) {
  switch (m) {
    case ReplicateMode::kAllSync:
      return "all-sync";
    case ReplicateMode::kQuorum:
      return "quorum";
    case ReplicateMode::kAllAsync:
      return "all-async";
  }
  return "unknown";
}
inline std::string_view to_string(ReadPolicy r) {
  switch (r) {
    case ReadPolicy::kFirst:
      return "first";
    case ReadPolicy::kRandom:
      return "random";
    case ReadPolicy::kRoundRobin:
      return "round_robin";
    case ReadPolicy::kLeastLatency:
      return "least_latency";
  }
  return "unknown";
}

struct ListenerConfig {
  std::string name;
  std::string host;  // IP literal or hostname to bind
  uint16_t port = 0;
  Protocol protocol = Protocol::kMemcached;
  // Exactly one of: the name of a pool in Config::pools with the same protocol, or of a route
  // table in Config::routes with the same protocol.
  std::string pool;
  std::string route;
  uint32_t backlog = 1024;
  std::optional<ListenerTlsConfig> tls;
  ListenerAuth auth = ListenerAuth::kNone;
  // Open client connections on this listener (all workers together) past which new ones are
  // closed at once; 0: no limit.
  uint32_t max_connections = 0;
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

// How log lines are written to stderr: "<time> <level> [<thread>] <message>", or one JSON object
// per line ({"time", "level", "thread", "message"}) for log collectors.
enum class LogFormat : uint8_t { kText, kJson };
inline std::string_view to_string(LogFormat f) {
  return f == LogFormat::kText ? "text" : "json";
}

// The admin HTTP endpoint (`admin:`): health, readiness and introspection for operators, on a
// thread and port of its own, away from the client listeners.
struct AdminConfig {
  std::string host;   // IP literal or hostname to bind, without IPv6 brackets
  uint16_t port = 0;  // 0: any free port
  // The bearer token every path but /healthz and /readyz requires; empty: none. A secret: never
  // logged or shown. Read from token_file at load, without its trailing line end.
  std::string token;
  std::string token_file;                // as written, for messages; empty when there is no token
  std::optional<ListenerTlsConfig> tls;  // the same keys and checks as a listener's `tls:`
  // Open admin connections past which new ones are closed at once: the endpoint is served by one
  // thread and must not be swamped by a script stuck in a loop.
  uint32_t max_connections = 64;
  // A connection that does not send a complete request within this time (from its previous
  // response, or from connecting) is closed; it also bounds each response's write.
  std::chrono::milliseconds request_timeout{10000};
  SourceLocation where;
};

struct Config {
  unsigned workers = 0;  // resolved: never 0 after loading (0 in YAML means one per core)
  LogFormat log_format = LogFormat::kText;
  std::vector<ListenerConfig> listeners;
  std::vector<PoolConfig> pools;
  Limits limits;
  std::vector<UserConfig> users;
  std::vector<RouteTableConfig> routes;
  // Failed logins from one client address: after auth_failures_slow of them within a minute,
  // answers to further attempts are delayed; after auth_failures_block, the address is refused
  // for auth_block_time.
  uint32_t auth_failures_slow = 5;
  uint32_t auth_failures_block = 20;
  std::chrono::milliseconds auth_block_time{60000};
  // A connection that has not authenticated within this time is closed.
  std::chrono::milliseconds auth_timeout{10000};
  std::optional<AdminConfig> admin;  // none: no admin endpoint
  // On SIGTERM, how long requests already in flight are given to finish before the process exits.
  std::chrono::milliseconds drain_timeout{15000};
  // Requests slower than this are logged (`slow_log: {threshold}`); 0: none are.
  std::chrono::milliseconds slow_log_threshold{0};
  std::string source;  // file name the config came from, for messages

  const UserConfig* find_user(std::string_view name) const {
    for (const auto& u : users)
      if (u.name == name) return &u;
    return nullptr;
  }
  const PoolConfig* find_pool(std::string_view name) const {
    for (const auto& p : pools)
      if (p.name == name) return &p;
    return nullptr;
  }
  const RouteTableConfig* find_route(std::string_view name) const {
    for (const auto& r : routes)
      if (r.name == name) return &r;
    return nullptr;
  }
};

std::string_view to_string(Protocol p);
std::string_view to_string(Distribution d);
std::string_view to_string(HashFunction h);

// The YAML spellings of the TLS, authentication and permission choices (config/load.cc parses by
// comparing against them).
inline std::string_view to_string(TlsClientAuth a) {
  switch (a) {
    case TlsClientAuth::kNone:
      return "none";
    case TlsClientAuth::kOptional:
      return "optional";
    case TlsClientAuth::kRequired:
      return "required";
  }
  return "unknown";
}
inline std::string_view to_string(TlsMode m) {
  return m == TlsMode::kRequired ? "required" : "optional";
}
inline std::string_view to_string(TlsVersion v) {
  return v == TlsVersion::k1_2 ? "1.2" : "1.3";
}
inline std::string_view to_string(ListenerAuth a) {
  return a == ListenerAuth::kNone ? "none" : "required";
}
inline std::string_view to_string(OpClass c) {
  switch (c) {
    case OpClass::kRead:
      return "read";
    case OpClass::kWrite:
      return "write";
    case OpClass::kAdmin:
      return "admin";
  }
  return "unknown";
}

}  // namespace cachegate::config
