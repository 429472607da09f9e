#include "proxy/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>

#include "proxy/log.h"
#include "proxy/memcache_session.h"
#include "proxy/redis_session.h"
#include "proxy/stats.h"

namespace cachegate::proxy {

namespace asio = boost::asio;

namespace {
// After accept() fails for lack of descriptors, wait this long before trying again rather than
// spinning on a listener that stays readable.
constexpr std::chrono::milliseconds kAcceptRetry{100};
}  // namespace

Worker::Worker(unsigned index, const config::Config& config,
               const std::vector<std::vector<asio::ip::tcp::endpoint>>& server_endpoints,
               Registry& registry, const std::vector<ListenerContext>& listener_contexts,
               Authenticator& authenticator)
    : index_(index),
      config_(config),
      registry_(registry),
      authenticator_(authenticator),
      // Each io_context is run by exactly one thread.
      io_(std::make_unique<asio::io_context>(1)),
      loop_(std::make_unique<backends::Loop>(*io_)) {
  pools_.resize(config.pools.size());
  for (size_t p = 0; p < config.pools.size(); ++p) {
    const auto& pool_config = config.pools[p];
    auto& runtime = pools_[p];
    if (pool_config.tls) {
      std::string error;
      runtime.tls_context.reset(backends::make_client_context(*pool_config.tls, error));
      if (!runtime.tls_context)
        throw std::runtime_error("pool '" + pool_config.name + "': TLS: " + error);
    }
    std::vector<routing::Destination*> destinations;
    for (size_t s = 0; s < pool_config.servers.size(); ++s) {
      runtime.servers.push_back(std::make_unique<backends::Server>(
          *loop_, pool_config, pool_config.servers[s], server_endpoints[p][s],
          static_cast<uint32_t>(s), nullptr, config.limits.reply_size_max,
          runtime.tls_context.get()));
      destinations.push_back(runtime.servers.back().get());
    }
    runtime.pool = std::make_unique<routing::Pool>(pool_config, std::move(destinations));
    for (auto& server : runtime.servers)
      server->set_observer(runtime.pool.get());
  }
  auto pool_named = [this, &config](std::string_view name) -> routing::Pool* {
    for (size_t p = 0; p < config.pools.size(); ++p)
      if (config.pools[p].name == name) return pools_[p].pool.get();
    return nullptr;
  };
  for (const auto& table : config.routes)
    routes_.push_back(std::make_unique<routing::RouteTable>(table, pool_named));
  listeners_.resize(config.listeners.size());
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    const auto& listener = config.listeners[l];
    listeners_[l].config = &listener;
    listeners_[l].context = listener_contexts.at(l);
    if (!listener.route.empty()) {
      for (size_t r = 0; r < config.routes.size(); ++r)
        if (config.routes[r].name == listener.route)
          listeners_[l].context.routes = routes_[r].get();
      // The pool of what names no key, for an anonymous client: where the session starts.
      listeners_[l].pool =
          &listeners_[l]
               .context.routes->select("", config::RouteOp::kAdmin, listener.name, "")
               .primary();
    } else {
      listeners_[l].pool = pool_named(listener.pool);
    }
  }
}

Worker::~Worker() {
  stop();
  join();
  // The loop has stopped; tear down in an order where everything a destructor or a late
  // callback touches still exists: sessions and backend connections first (their failures are
  // delivered to closed sessions and dropped), then the handlers still queued in the
  // io_context (they hold the last references to sessions and connections), then the rest.
  while (sessions_ != nullptr)
    sessions_->close();
  for (auto& listener : listeners_) {
    boost::system::error_code ignored;
    if (listener.acceptor) listener.acceptor->close(ignored);
    if (listener.retry_timer) listener.retry_timer->cancel();
  }
  for (auto& pool : pools_)
    for (auto& server : pool.servers)
      server->shutdown();
  loop_->discard_pending();
  listeners_.clear();
  // The loop's epoll descriptor is an Asio object too, so it goes before the io_context; nothing
  // destroyed with the io_context reaches the loop any more (every socket is closed by now).
  loop_.reset();
  io_.reset();
  pools_.clear();
}

asio::ip::tcp::endpoint Worker::open_listener(size_t listener_index,
                                              const asio::ip::tcp::endpoint& endpoint) {
  auto& listener = listeners_.at(listener_index);
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(*io_);
  acceptor->open(endpoint.protocol());
  acceptor->set_option(asio::socket_base::reuse_address(true));
  // Every worker binds the same port; the kernel balances new connections between them.
  int one = 1;
  if (::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    throw boost::system::system_error(errno, boost::system::system_category(), "SO_REUSEPORT");
  if (endpoint.address().is_v6()) acceptor->set_option(asio::ip::v6_only(true));
  acceptor->bind(endpoint);
  acceptor->listen(static_cast<int>(listener.config->backlog));
  acceptor->non_blocking(true);
  auto bound = acceptor->local_endpoint();
  listener.acceptor = std::move(acceptor);
  listener.retry_timer = std::make_unique<asio::steady_timer>(*io_);
  return bound;
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  set_thread_log_name("worker-" + std::to_string(index_));
  for (auto& pool : pools_) {
    if (!pool.pool->config().preconnect) continue;
    for (auto& server : pool.servers)
      server->preconnect();
  }
  for (auto& listener : listeners_)
    if (listener.acceptor) accept_next(listener);
  // Keep running even with nothing to do until stop() is called.
  auto guard = asio::make_work_guard(*io_);
  io_->run();
}

void Worker::stop() {
  if (!io_) return;
  asio::post(*io_, [this] { shutdown_on_loop(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::shutdown_on_loop() {
  for (auto& listener : listeners_) {
    boost::system::error_code ignored;
    if (listener.acceptor) listener.acceptor->close(ignored);
  }
  while (sessions_ != nullptr)
    sessions_->close();
  io_->stop();
}

void Worker::accept_next(ListenerRuntime& listener) {
  listener.acceptor->async_accept([this, &listener](const boost::system::error_code& ec,
                                                    asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !listener.acceptor->is_open()) return;
    if (ec) {
      counters_.accept_errors.add();
      log(LogLevel::kWarning, "accept on listener '", listener.config->name,
          "' failed: ", ec.message());
      listener.retry_timer->expires_after(kAcceptRetry);
      listener.retry_timer->async_wait([this, &listener](const boost::system::error_code& e) {
        if (!e && listener.acceptor->is_open()) accept_next(listener);
      });
      return;
    }
    // The session drives the socket itself through the loop's epoll set.
    boost::system::error_code release_error;
    socket.non_blocking(true, release_error);
    const int fd = socket.release(release_error);
    if (release_error) {
      accept_next(listener);
      return;
    }
    const uint32_t max = listener.config->max_connections;
    if (max != 0 && listener.context.open_connections->load(std::memory_order_relaxed) >= max) {
      // Over the listener's limit: closed at once, before any memory is spent on it.
      ::close(fd);
      counters_.rejected_connections.add();
      accept_next(listener);
      return;
    }
    ClientSession* session;
    if (listener.config->protocol == config::Protocol::kRedis) {
      session = new RedisSession(*this, *listener.pool, fd, next_session_id_++, listener.context);
    } else {
      session =
          new MemcacheSession(*this, *listener.pool, fd, next_session_id_++, listener.context);
    }
    routing::Ref<ClientSession> hold(session);
    session->start();
    accept_next(listener);
  });
}

void Worker::add_session(ClientSession* session) {
  session->add_ref();  // the list holds a reference until the session closes
  session->prev = nullptr;
  session->next = sessions_;
  if (sessions_ != nullptr) sessions_->prev = session;
  sessions_ = session;
}

void Worker::remove_session(ClientSession* session) {
  if (session->prev != nullptr) {
    session->prev->next = session->next;
  } else if (sessions_ == session) {
    sessions_ = session->next;
  }
  if (session->next != nullptr) session->next->prev = session->prev;
  session->prev = session->next = nullptr;
  session->release();
}

}  // namespace cachegate::proxy
