#pragma once

// A worker: one thread running one event loop that owns everything it touches — its listening
// sockets (the port is shared with the other workers through SO_REUSEPORT, and the kernel spreads
// new connections), its client sessions, its own connections to every backend server and its
// own view of each pool. Nothing on the request path is shared with other workers, so nothing is
// locked. Other threads only read counters, or post work to the loop.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "backends/loop.h"
#include "backends/server.h"
#include "config/config.h"
#include "proxy/client_session.h"
#include "proxy/counters.h"
#include "routing/pool.h"
#include "routing/route_table.h"
#include "routing/routed_request.h"

namespace cachegate::proxy {

class ClientSession;
class Registry;
class Authenticator;

class Worker {
 public:
  // `server_endpoints[p][s]` is the resolved address of config.pools[p].servers[s].
  Worker(unsigned index, const config::Config& config,
         const std::vector<std::vector<boost::asio::ip::tcp::endpoint>>& server_endpoints,
         Registry& registry, const std::vector<ListenerContext>& listener_contexts,
         Authenticator& authenticator);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Before start(), from the main thread: opens listener `listener_index` on `endpoint` with
  // SO_REUSEPORT. Returns the bound endpoint (the real port when `endpoint` had port 0). Throws
  // boost::system::system_error when the address cannot be bound.
  boost::asio::ip::tcp::endpoint open_listener(size_t listener_index,
                                               const boost::asio::ip::tcp::endpoint& endpoint);

  void start();
  // Thread-safe: asks the worker to close listeners, sessions and backend connections, and to
  // leave its loop. join() waits for that.
  void stop();
  void join();

  unsigned index() const { return index_; }
  backends::Loop& loop() { return *loop_; }
  WorkerCounters& counters() { return counters_; }
  const config::Limits& limits() const { return config_.limits; }
  const config::Config& config() const { return config_; }
  Registry& registry() { return registry_; }
  Authenticator& authenticator() { return authenticator_; }

  // Read-only views for stats (safe from other threads: built before start, never resized).
  struct TlsContextFree {
    void operator()(ssl_ctx_st* context) const { backends::free_client_context(context); }
  };
  struct PoolRuntime {
    // Declared before the servers, which use it until they are gone.
    std::unique_ptr<ssl_ctx_st, TlsContextFree> tls_context;
    std::vector<std::unique_ptr<backends::Server>> servers;
    std::unique_ptr<routing::Pool> pool;
  };
  const std::vector<PoolRuntime>& pools() const { return pools_; }
  routing::RouteCounters& route_counters() { return route_counters_; }
  const routing::RouteCounters& route_counters() const { return route_counters_; }

  void add_session(ClientSession* session);
  void remove_session(ClientSession* session);

 private:
  struct ListenerRuntime {
    const config::ListenerConfig* config = nullptr;
    ListenerContext context;
    routing::Pool* pool = nullptr;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
    std::unique_ptr<boost::asio::steady_timer> retry_timer;
  };

  void run();
  void accept_next(ListenerRuntime& listener);
  void shutdown_on_loop();

  const unsigned index_;
  const config::Config& config_;
  Registry& registry_;
  Authenticator& authenticator_;
  // Declared first so it is destroyed last: sockets and timers below need its services until
  // they are gone (see ~Worker for the order things are torn down in).
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<backends::Loop> loop_;
  WorkerCounters counters_;
  std::vector<PoolRuntime> pools_;
  // config_.routes[i] with this worker's pools.
  std::vector<std::unique_ptr<routing::RouteTable>> routes_;
  routing::RouteCounters route_counters_;
  std::vector<ListenerRuntime> listeners_;
  ClientSession* sessions_ = nullptr;
  uint32_t next_session_id_ = 0;
  std::thread thread_;
};

}  // namespace cachegate::proxy
