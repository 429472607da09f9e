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
// While a replaced generation is still in use, look this often whether it can go.
constexpr std::chrono::milliseconds kSettleInterval{200};
}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const LoadedConfig> loaded, Registry& registry,
               Authenticator& authenticator)
    : index_(index),
      registry_(registry),
      authenticator_(authenticator),
      // Each io_context is run by exactly one thread.
      io_(std::make_unique<asio::io_context>(1)),
      loop_(std::make_unique<backends::Loop>(*io_)) {
  current_ = build_generation(*loop_, std::move(loaded), nullptr);
  attach_counters(*current_);
  settle_timer_ = std::make_unique<asio::steady_timer>(*io_);
  spare_buffers_.reserve(kSpareBuffersMax);  // giving one back never allocates
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
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ignored;
    acceptor->acceptor->close(ignored);
    acceptor->retry_timer->cancel();
  }
  settle_timer_->cancel();
  auto shut_down_servers = [](Generation& generation) {
    for (auto& pool : generation.pools)
      for (auto& server : pool.servers)
        server->shutdown();
  };
  shut_down_servers(*current_);
  for (auto& generation : retired_)
    shut_down_servers(*generation);
  loop_->discard_pending();
  acceptors_.clear();
  settle_timer_.reset();
  // The loop's epoll descriptor is an Asio object too, so it goes before the io_context; nothing
  // destroyed with the io_context reaches the loop any more (every socket is closed by now).
  loop_.reset();
  io_.reset();
  retired_.clear();
  current_ = nullptr;
}

std::unique_ptr<asio::ip::tcp::acceptor> Worker::bind_listener(
    const asio::ip::tcp::endpoint& endpoint, uint32_t backlog, std::string& error) {
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(*io_);
  boost::system::error_code ec;
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  // Every worker binds the same port; the kernel balances new connections between them.
  int one = 1;
  if (!ec &&
      ::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    ec.assign(errno, boost::system::system_category());
  if (!ec && endpoint.address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(static_cast<int>(backlog), ec);
  if (!ec) acceptor->non_blocking(true, ec);
  if (ec) {
    error = ec.message();
    return nullptr;
  }
  return acceptor;
}

void Worker::add_listener(const std::string& name,
                          std::unique_ptr<asio::ip::tcp::acceptor> acceptor) {
  auto entry = std::make_unique<Acceptor>();
  entry->name = name;
  entry->acceptor = std::move(acceptor);
  entry->retry_timer = std::make_unique<asio::steady_timer>(*io_);
  acceptors_.push_back(std::move(entry));
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  set_thread_log_name("worker-" + std::to_string(index_));
  for (auto& pool : current_->pools) {
    if (!pool.pool->config().preconnect) continue;
    for (auto& server : pool.servers)
      server->preconnect();
  }
  for (auto& acceptor : acceptors_)
    accept_next(*acceptor);
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
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ignored;
    acceptor->acceptor->close(ignored);
  }
  while (sessions_ != nullptr)
    sessions_->close();
  io_->stop();
}

void Worker::apply(std::shared_ptr<const LoadedConfig> loaded, std::vector<std::string> closed,
                   std::vector<ListenerChange> opened, std::function<void()> done) {
  // The acceptors travel in a shared holder: Asio handlers must be copyable.
  auto changes = std::make_shared<std::vector<ListenerChange>>(std::move(opened));
  asio::post(*io_, [this, loaded = std::move(loaded), closed = std::move(closed), changes,
                    done = std::move(done)]() mutable {
    routing::Ref<Generation> next = build_generation(*loop_, std::move(loaded), current_.get());
    attach_counters(*next);
    {
      std::lock_guard<std::mutex> lock(generation_mutex_);
      retired_.push_back(current_);
      current_ = next;
    }
    for (size_t p = 0; p < current_->pools.size(); ++p) {
      const auto& pool = current_->pools[p];
      if (!pool.pool->config().preconnect) continue;
      for (size_t s = 0; s < pool.servers.size(); ++s)
        if (pool.fresh[s]) pool.servers[s]->preconnect();
    }
    for (const auto& name : closed) {
      for (auto it = acceptors_.begin(); it != acceptors_.end(); ++it) {
        if ((*it)->name != name) continue;
        boost::system::error_code ignored;
        (*it)->acceptor->close(ignored);
        (*it)->retry_timer->cancel();
        // Handlers still queued for it see a closed acceptor and hold no pointer into it.
        asio::post(*io_, [gone = std::shared_ptr<Acceptor>(std::move(*it))] {});
        acceptors_.erase(it);
        break;
      }
    }
    for (auto& change : *changes) {
      add_listener(change.name, std::move(change.acceptor));
      if (!draining_) accept_next(*acceptors_.back());
    }
    settle_generations();
    done();
  });
}

void Worker::attach_counters(Generation& generation) {
  for (auto& pool : generation.pools)
    pool.pool->counters = &pool_counters(pool.pool->config().name);
  for (auto& listener : generation.listeners)
    if (!listener.context.config->route.empty())
      listener.context.route_counters = &route_counters(listener.context.config->route);
}

routing::RouteCounters& Worker::route_counters(std::string_view route) {
  return find_or_add(route_counters_, route);
}

void Worker::settle_generations() {
  // Sessions with nothing in flight move now; busy ones move when they next are idle (see
  // ClientSession::on_readable), or at a later look from the timer.
  std::vector<routing::Ref<ClientSession>> sessions;
  for (ClientSession* s = sessions_; s != nullptr; s = s->next)
    sessions.emplace_back(s);
  for (auto& session : sessions)
    session->adopt_current_generation();
  // A generation goes once nothing holds it but this list: no session routes with it, and no
  // request still works through its rules (RouteRule::owner). Oldest first: servers kept by a
  // later generation point into it (Server::rebind), and an older one may still send to them.
  while (!retired_.empty() && retired_.front()->ref_count() == 1)
    retired_.erase(retired_.begin());
  if (!retired_.empty()) {
    settle_timer_->expires_after(kSettleInterval);
    settle_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) settle_generations();
    });
  }
}

void Worker::drain(std::function<void()> done) {
  asio::post(*io_, [this, done = std::move(done)]() mutable {
    draining_ = true;
    drained_ = std::move(done);
    for (auto& acceptor : acceptors_) {
      boost::system::error_code ignored;
      acceptor->acceptor->close(ignored);
      acceptor->retry_timer->cancel();
    }
    std::vector<routing::Ref<ClientSession>> sessions;
    for (ClientSession* s = sessions_; s != nullptr; s = s->next)
      sessions.emplace_back(s);
    for (auto& session : sessions)
      session->start_draining();
    check_drained();
  });
}

void Worker::check_drained() {
  if (!draining_ || sessions_ != nullptr || !drained_) return;
  auto done = std::move(drained_);
  drained_ = nullptr;
  done();
}

void Worker::accept_next(Acceptor& entry) {
  entry.acceptor->async_accept([this, &entry](const boost::system::error_code& ec,
                                              asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !entry.acceptor->is_open()) return;
    const Generation::Listener* listener = current_->listener_named(entry.name);
    if (ec || listener == nullptr) {
      counters_.accept_errors.add();
      log(LogLevel::kWarning, "accept on listener '", entry.name, "' failed: ", ec.message());
      entry.retry_timer->expires_after(kAcceptRetry);
      entry.retry_timer->async_wait([this, &entry](const boost::system::error_code& e) {
        if (!e && entry.acceptor->is_open()) accept_next(entry);
      });
      return;
    }
    // The session drives the socket itself through the loop's epoll set.
    boost::system::error_code release_error;
    socket.non_blocking(true, release_error);
    const int fd = socket.release(release_error);
    if (release_error) {
      accept_next(entry);
      return;
    }
    const uint32_t max = listener->context.config->max_connections;
    ListenerCounters& counters = listener_counters(entry.name);
    counters.accepted.add();
    if (max != 0 && listener->context.open_connections->load(std::memory_order_relaxed) >= max) {
      // Over the listener's limit: closed at once, before any memory is spent on it.
      ::close(fd);
      counters_.rejected_connections.add();
      counters.rejected.add();
      accept_next(entry);
      return;
    }
    ClientSession* session;
    if (listener->context.config->protocol == config::Protocol::kRedis) {
      session = new RedisSession(*this, *current_, *listener, fd, next_session_id_++);
    } else {
      session = new MemcacheSession(*this, *current_, *listener, fd, next_session_id_++);
    }
    routing::Ref<ClientSession> hold(session);
    session->start();
    accept_next(entry);
  });
}

template <class T>
T& Worker::find_or_add(Named<T>& list, std::string_view name) {
  for (auto& [n, counters] : list)
    if (n == name) return *counters;
  std::lock_guard<std::mutex> lock(generation_mutex_);
  list.emplace_back(std::string(name), std::make_unique<T>());
  return *list.back().second;
}

ListenerCounters& Worker::listener_counters(std::string_view listener) {
  return find_or_add(listener_counters_, listener);
}

routing::PoolCounters& Worker::pool_counters(std::string_view pool) {
  return find_or_add(pool_counters_, pool);
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
  check_drained();
}

}  // namespace cachegate::proxy
