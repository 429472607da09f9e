#pragma once

// A worker: one thread running one event loop that owns everything it touches — its listening
// sockets (the port is shared with the other workers through SO_REUSEPORT, and the kernel spreads
// new connections), its client sessions, its own connections to every backend server and its
// own view of each pool. Nothing on the request path is shared with other workers, so nothing is
// locked. Other threads only read counters, or post work to the loop.
//
// The configuration it runs is a Generation (proxy/generation.h); a reload builds the next one
// on the worker's own thread and makes it current between two events of the loop.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "backends/loop.h"
#include "backends/server.h"
#include "config/config.h"
#include "protocol/buffer.h"
#include "proxy/client_session.h"
#include "proxy/counters.h"
#include "proxy/generation.h"
#include "routing/routed_request.h"

namespace cachegate::proxy {

class ClientSession;
class Registry;
class Authenticator;

class Worker {
 public:
  Worker(unsigned index, std::shared_ptr<const LoadedConfig> loaded, Registry& registry,
         Authenticator& authenticator);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // A listening socket on `endpoint` with SO_REUSEPORT, made on this worker's event loop but not
  // accepting yet (see add_listener and apply). Returns nullptr with `error` set when the
  // address cannot be bound. Callable from any thread.
  std::unique_ptr<boost::asio::ip::tcp::acceptor> bind_listener(
      const boost::asio::ip::tcp::endpoint& endpoint, uint32_t backlog, std::string& error);
  // Before start(): the acceptor of the listener named `name`.
  void add_listener(const std::string& name,
                    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor);

  void start();
  // Thread-safe: asks the worker to close listeners, sessions and backend connections, and to
  // leave its loop. join() waits for that.
  void stop();
  void join();

  // A configuration reload, posted to the loop from another thread: the listeners named in
  // `closed` stop accepting, `opened` start, the generation of `loaded` becomes current, and
  // `done` runs on the worker's thread once that is so.
  struct ListenerChange {
    std::string name;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
  };
  void apply(std::shared_ptr<const LoadedConfig> loaded, std::vector<std::string> closed,
             std::vector<ListenerChange> opened, std::function<void()> done);
  // SIGTERM, posted from another thread: every listener stops accepting; each client connection
  // is closed at its first moment with nothing in flight and nothing unwritten. `done` runs on
  // the worker's thread when the last one is gone (at once if none are open).
  void drain(std::function<void()> done);

  unsigned index() const { return index_; }
  backends::Loop& loop() { return *loop_; }
  WorkerCounters& counters() { return counters_; }
  // The current generation, for the worker's own thread.
  Generation& generation() { return *current_; }
  const config::Config& config() const { return current_->config(); }
  const config::Limits& limits() const { return current_->config().limits; }
  Registry& registry() { return registry_; }
  Authenticator& authenticator() { return authenticator_; }
  bool draining() const { return draining_; }

  // For readers on other threads (stats, metrics): runs `read` with the current generation while
  // the worker cannot swap it. Only counters and what never changes in a generation may be read.
  template <class Read>
  void read_generation(Read&& read) const {
    std::lock_guard<std::mutex> lock(generation_mutex_);
    read(static_cast<const Generation&>(*current_));
  }
  // A route's counters (worker thread; made on first use, kept by name across reloads).
  routing::RouteCounters& route_counters(std::string_view route);

  // Counters kept by name across reloads (worker thread; made on first use).
  ListenerCounters& listener_counters(std::string_view listener);
  routing::PoolCounters& pool_counters(std::string_view pool);
  // For readers on other threads: every listener's / pool's counters with its name.
  template <class Read>
  void read_listener_counters(Read&& read) const {
    read_named(listener_counters_, read);
  }
  template <class Read>
  void read_pool_counters(Read&& read) const {
    read_named(pool_counters_, read);
  }
  template <class Read>
  void read_route_counters(Read&& read) const {
    read_named(route_counters_, read);
  }

  void add_session(ClientSession* session);
  void remove_session(ClientSession* session);

  // Empty I/O buffers its sessions gave back, for the next one that reads or writes (see
  // ClientSession::release_buffer); at most kSpareBuffersMax. Worker thread only.
  static constexpr size_t kSpareBuffersMax = 64;
  std::vector<protocol::Buffer>& spare_buffers() { return spare_buffers_; }

 private:
  struct Acceptor {
    std::string name;  // the listener's
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
    std::unique_ptr<boost::asio::steady_timer> retry_timer;
  };

  void run();
  void accept_next(Acceptor& acceptor);
  void shutdown_on_loop();
  // Moves idle sessions to the current generation, and frees generations nobody uses any more.
  void settle_generations();
  // Points the generation's pools and routed listeners at the worker's counters of their names.
  void attach_counters(Generation& generation);
  void check_drained();

  const unsigned index_;
  Registry& registry_;
  Authenticator& authenticator_;
  // Declared first so it is destroyed last: sockets and timers below need its services until
  // they are gone (see ~Worker for the order things are torn down in).
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<backends::Loop> loop_;
  WorkerCounters counters_;
  routing::Ref<Generation> current_;
  mutable std::mutex generation_mutex_;  // held by the worker only while it swaps current_
  // Generations replaced by a reload that sessions or background copies still use.
  std::vector<routing::Ref<Generation>> retired_;
  std::unique_ptr<boost::asio::steady_timer> settle_timer_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  // Counters by name, never removed (their addresses are held by sessions and pools). Guarded by
  // generation_mutex_ against readers when one is added.
  template <class T>
  using Named = std::vector<std::pair<std::string, std::unique_ptr<T>>>;
  template <class T>
  T& find_or_add(Named<T>& list, std::string_view name);
  template <class T, class Read>
  void read_named(const Named<T>& list, Read& read) const {
    std::lock_guard<std::mutex> lock(generation_mutex_);
    for (const auto& [name, counters] : list)
      read(name, static_cast<const T&>(*counters));
  }
  Named<ListenerCounters> listener_counters_;
  Named<routing::PoolCounters> pool_counters_;
  // Their sinks receive background copies' replies: they must outlive every server connection.
  Named<routing::RouteCounters> route_counters_;
  ClientSession* sessions_ = nullptr;
  std::vector<protocol::Buffer> spare_buffers_;
  uint32_t next_session_id_ = 0;
  bool draining_ = false;
  std::function<void()> drained_;
  std::thread thread_;
};

}  // namespace cachegate::proxy
