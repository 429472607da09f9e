#include "proxy/generation.h"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace cachegate::proxy {

namespace {

bool same_tls(const std::optional<config::PoolTlsConfig>& a,
              const std::optional<config::PoolTlsConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->ca == b->ca && a->cert == b->cert && a->key == b->key && a->verify == b->verify &&
         a->server_name == b->server_name;
}

}  // namespace

std::string config_hash_hex(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 is not available");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

bool same_server_options(const config::PoolConfig& a, const config::PoolConfig& b,
                         const config::Limits& limits_a, const config::Limits& limits_b) {
  return a.name == b.name && a.protocol == b.protocol && a.timeout == b.timeout &&
         a.connect_timeout == b.connect_timeout && a.server_connections == b.server_connections &&
         a.tcpkeepalive == b.tcpkeepalive && a.server_username == b.server_username &&
         a.server_password == b.server_password && a.redis_db == b.redis_db &&
         same_tls(a.tls, b.tls) && limits_a.reply_size_max == limits_b.reply_size_max;
}

const Generation::Listener* Generation::listener_named(std::string_view name) const {
  const auto& configs = config().listeners;
  for (size_t l = 0; l < configs.size(); ++l)
    if (configs[l].name == name) return &listeners[l];
  return nullptr;
}

routing::Ref<Generation> build_generation(backends::Loop& loop,
                                          std::shared_ptr<const LoadedConfig> loaded,
                                          Generation* previous) {
  routing::Ref<Generation> generation(new Generation);
  generation->loaded = std::move(loaded);
  const config::Config& config = generation->config();
  generation->pools.resize(config.pools.size());
  for (size_t p = 0; p < config.pools.size(); ++p) {
    const auto& pool_config = config.pools[p];
    auto& runtime = generation->pools[p];
    // The pool of the same name in the previous generation, when its servers can be kept.
    PoolRuntime* old = nullptr;
    if (previous != nullptr) {
      const auto& old_config = previous->config();
      for (size_t q = 0; q < old_config.pools.size(); ++q) {
        if (old_config.pools[q].name == pool_config.name &&
            same_server_options(old_config.pools[q], pool_config, old_config.limits, config.limits))
          old = &previous->pools[q];
      }
    }
    // Kept servers use the context they were made with.
    runtime.tls_context = old != nullptr ? old->tls_context : generation->loaded->pool_tls[p];
    std::vector<routing::Destination*> destinations;
    std::vector<bool> taken(old != nullptr ? old->servers.size() : 0, false);
    for (size_t s = 0; s < pool_config.servers.size(); ++s) {
      const auto& server_config = pool_config.servers[s];
      const auto& endpoint = generation->loaded->server_endpoints[p][s];
      std::shared_ptr<backends::Server> server;
      for (size_t o = 0; old != nullptr && o < old->servers.size() && !server; ++o) {
        const auto& candidate = old->servers[o];
        if (!taken[o] && candidate->endpoint() == endpoint &&
            candidate->config().host == server_config.host &&
            candidate->config().port == server_config.port) {
          taken[o] = true;
          server = candidate;
        }
      }
      runtime.fresh.push_back(!server);
      if (!server) {
        server = std::make_shared<backends::Server>(
            loop, pool_config, server_config, endpoint, static_cast<uint32_t>(s), nullptr,
            config.limits.reply_size_max, runtime.tls_context.get());
      }
      runtime.servers.push_back(std::move(server));
      destinations.push_back(runtime.servers.back().get());
    }
    runtime.pool = std::make_unique<routing::Pool>(pool_config, std::move(destinations));
    // A kept server reports to its new pool from now on; the old pool, still used by requests
    // finishing on the previous configuration, no longer ejects it.
    for (size_t s = 0; s < runtime.servers.size(); ++s)
      runtime.servers[s]->rebind(pool_config, pool_config.servers[s], static_cast<uint32_t>(s),
                                 runtime.pool.get());
  }
  auto pool_named = [&](std::string_view name) -> routing::Pool* {
    for (size_t p = 0; p < config.pools.size(); ++p)
      if (config.pools[p].name == name) return generation->pools[p].pool.get();
    return nullptr;
  };
  for (const auto& table : config.routes) {
    generation->routes.push_back(std::make_unique<routing::RouteTable>(table, pool_named));
    auto& built = *generation->routes.back();
    for (size_t r = 0; r < built.size(); ++r)
      built.rule(r).owner = generation.get();
  }
  generation->listeners.resize(config.listeners.size());
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    const auto& listener = config.listeners[l];
    auto& view = generation->listeners[l];
    view.context.config = &listener;
    view.context.tls = generation->loaded->listener_tls[l].get();
    view.context.open_connections = generation->loaded->open_connections[l].get();
    if (!listener.route.empty()) {
      for (size_t r = 0; r < config.routes.size(); ++r)
        if (config.routes[r].name == listener.route)
          view.context.routes = generation->routes[r].get();
      // The pool of what names no key, for an anonymous client: where the session starts.
      view.pool =
          &view.context.routes->select("", config::RouteOp::kAdmin, listener.name, "").primary();
    } else {
      view.pool = pool_named(listener.pool);
    }
  }
  return generation;
}

}  // namespace cachegate::proxy
