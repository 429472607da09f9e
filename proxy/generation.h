#pragma once

// A configuration as the process runs it, and what a configuration reload swaps.
//
// LoadedConfig is what every worker shares of one loaded file: the parsed configuration, its
// text and hash, the servers' resolved addresses and the listeners' TLS contexts. It is built on
// the main thread and never changed afterwards.
//
// Generation is one worker's running instance of it: its pools with their servers, its route
// tables and the context each listener gives its sessions. It belongs to that worker's thread
// (its reference count is not atomic). Client sessions hold the generation they route with; a
// reload makes a new one current, and each session moves to it at its first moment with nothing
// in flight, so a request always runs start to end on one configuration. The old generation
// goes when its last session has moved and no request still works through its route rules
// (each holds it through RouteRule::owner), older generations first.
//
// Servers outlive generations: a reload that leaves a pool's server options and a server's
// address alone hands the same backends::Server, with its open connections and its health, to
// the new pool.

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/loop.h"
#include "backends/server.h"
#include "config/config.h"
#include "routing/pool.h"
#include "routing/ref_counted.h"
#include "routing/route_table.h"
#include "routing/routed_request.h"

namespace cachegate::proxy {

class ListenerTls;

// What a session needs to know about the listener that accepted it.
struct ListenerContext {
  const config::ListenerConfig* config = nullptr;
  ListenerTls* tls = nullptr;  // null when the listener has no tls:
  // Open connections of this listener in all workers, for max_connections (touched on accept
  // and close only). Kept across reloads for a listener of the same name.
  std::atomic<uint32_t>* open_connections = nullptr;
  // The worker's route table when the listener names a route instead of a pool, and the
  // worker's counters for that route.
  routing::RouteTable* routes = nullptr;
  routing::RouteCounters* route_counters = nullptr;
};

struct LoadedConfig {
  std::shared_ptr<const config::Config> config;
  std::string text;  // the file as read, for /config
  std::string hash;  // SHA-256 of text, lowercase hex
  std::chrono::system_clock::time_point loaded_at;
  uint64_t number = 1;  // 1 at start-up, then one more per successful reload
  // server_endpoints[p][s]: the resolved address of config->pools[p].servers[s].
  std::vector<std::vector<boost::asio::ip::tcp::endpoint>> server_endpoints;
  // By listener index: the listener's TLS context (null without tls:) and its connection count.
  std::vector<std::shared_ptr<ListenerTls>> listener_tls;
  std::vector<std::shared_ptr<std::atomic<uint32_t>>> open_connections;
  // By pool index: the TLS client context towards its servers (null without tls:). Shared by the
  // workers: OpenSSL contexts may make connections on several threads.
  std::vector<std::shared_ptr<ssl_ctx_st>> pool_tls;
};

struct TlsContextFree {
  void operator()(ssl_ctx_st* context) const { backends::free_client_context(context); }
};

struct PoolRuntime {
  // Declared before the servers, which use it until they are gone.
  std::shared_ptr<ssl_ctx_st> tls_context;
  std::vector<std::shared_ptr<backends::Server>> servers;
  std::unique_ptr<routing::Pool> pool;
  // Servers made for this generation rather than kept from the previous one.
  std::vector<bool> fresh;
};

struct Generation final : routing::RefCounted {
  struct Listener {
    ListenerContext context;
    routing::Pool* pool = nullptr;  // where a session starts (see ClientSession)
  };

  std::shared_ptr<const LoadedConfig> loaded;
  std::vector<PoolRuntime> pools;  // by config pool index
  std::vector<std::unique_ptr<routing::RouteTable>> routes;
  std::vector<Listener> listeners;  // by config listener index

  const config::Config& config() const { return *loaded->config; }
  // The listener of that name, or null when this configuration has none.
  const Listener* listener_named(std::string_view name) const;
};

// Builds a worker's generation of `loaded` on `loop`. Servers of `previous` (may be null) whose
// pool options and address are unchanged are kept.
routing::Ref<Generation> build_generation(backends::Loop& loop,
                                          std::shared_ptr<const LoadedConfig> loaded,
                                          Generation* previous);

// Lowercase hex SHA-256 of a configuration file's bytes (LoadedConfig::hash): which
// configuration a process runs, comparable with `sha256sum FILE`.
std::string config_hash_hex(std::string_view bytes);

// Whether a server of pool `a` may be handed as it is to pool `b`: everything a server
// connection depends on is the same.
bool same_server_options(const config::PoolConfig& a, const config::PoolConfig& b,
                         const config::Limits& limits_a, const config::Limits& limits_b);

}  // namespace cachegate::proxy
