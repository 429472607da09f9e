#include "backends/server.h"

#include "backends/log.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace cachegate::backends {

namespace asio = boost::asio;
using routing::Failure;

namespace {
// Read in chunks of at least this much; a short read means the socket is drained.
constexpr size_t kReadChunk = 16 * 1024;
// An idle connection keeps this much buffer; more is given back after a large reply.
constexpr size_t kIdleBufferKeep = 64 * 1024;
constexpr std::chrono::milliseconds kBackoffFirst{10};
constexpr std::chrono::milliseconds kBackoffMax{1000};
}  // namespace

// --- ServerConnection --------------------------------------------------------------------------

ServerConnection::ServerConnection(Loop& loop, Server& server, bool resp3, bool dedicated)
    : loop_(loop),
      server_(server),
      timer_(loop.io()),
      framer_(server.reply_size_max()),
      resp_framer_(server.reply_size_max()),
      resp3_(resp3),
      dedicated_(dedicated) {}

ServerConnection::~ServerConnection() {
  if (push_handler_ != nullptr) push_handler_->release();
  close_socket();
}

void ServerConnection::send(const std::string_view* pieces, size_t count,
                            protocol::ReplyShape shape, routing::ReplyHandler& handler,
                            uint32_t cookie, std::chrono::milliseconds timeout) {
  auto& counters = server_.counters();
  if (state_ == State::kIdle) {
    // Connect first, so that the handshake (AUTH, SELECT, HELLO 3) is queued ahead of the request.
    connect();
    if (state_ == State::kIdle) {  // failed at once; already counted against the server
      ServerCounters::bump(counters.requests);
      counters.count_failure(Failure::kConnect);
      handler.on_failure(cookie, Failure::kConnect);
      return;
    }
  }
  size_t total = 0;
  for (size_t i = 0; i < count; ++i)
    total += pieces[i].size();
  out_.ensure_writable(total);
  for (size_t i = 0; i < count; ++i)
    out_.append(pieces[i]);
  const auto pool_timeout = server_.pool_config().timeout;
  // A timeout equal to the pool's keeps the queue in deadline order, like no timeout at all.
  const bool own_timeout = timeout.count() > 0 && timeout != pool_timeout;
  const auto now = Clock::now();
  const auto deadline = now + (own_timeout ? timeout : pool_timeout);
  handler.add_ref();
  pending_.push_back(Pending{&handler, cookie, shape, deadline, now, own_timeout});
  if (own_timeout) ++own_timeouts_;
  ServerCounters::bump(counters.requests);
  ServerCounters::bump(counters.in_flight);
  // Connecting: sent when the connection is up.
  if (state_ == State::kConnected) loop_.defer_flush(*this);
  if (own_timeouts_ == 0) {
    // Requests with the pool's timeout join the queue in deadline order, so the timer only needs
    // moving when it waits for something later (a connect deadline) or for nothing.
    if (!timer_armed_ || pending_.front().deadline < timer_due_) arm_timer();
  } else if (own_timeout && own_timeouts_ == 1) {
    // From now on the timer must be due no later than every deadline in the queue, but so far
    // it only watched the front: requests queued behind a handshake may be due before it.
    const auto due = next_deadline();
    if (!timer_armed_ || due < timer_due_) arm_timer_at(due);
  } else if (!timer_armed_) {
    arm_timer();
  } else if (deadline < timer_due_) {
    // The timer is due no later than everything queued before: this request is the earliest.
    arm_timer_at(deadline);
  }
}

void ServerConnection::connect() {
  if (state_ != State::kIdle) return;
  state_ = State::kConnecting;
  connect_deadline_ = Clock::now() + server_.pool_config().connect_timeout;
  // A timer left from before a reset may be due later (a request's long timeout of its own).
  if (!timer_armed_ || connect_deadline_ < timer_due_) arm_timer();
  const auto& endpoint = server_.endpoint();
  fd_ = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    on_connected(errno);
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (server_.pool_config().tcpkeepalive)
    ::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  if (!loop_.watch(fd_, *this)) {
    on_connected(errno);
    return;
  }
  queue_handshake();
  // Completion (or failure) is reported as writability; see on_poll().
  if (::connect(fd_, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0 &&
      errno != EINPROGRESS) {
    on_connected(errno);
  }
}

void ServerConnection::deliver_pushes_to(routing::ReplyHandler& handler, uint32_t cookie) {
  handler.add_ref();
  if (push_handler_ != nullptr) push_handler_->release();
  push_handler_ = &handler;
  push_cookie_ = cookie;
}

void ServerConnection::send_unanswered(std::string_view request) {
  if (state_ == State::kIdle) {
    connect();
    if (state_ == State::kIdle) return;  // failed at once: the push handler has heard
  }
  out_.append(request);
  if (state_ == State::kConnected) loop_.defer_flush(*this);
}

void ServerConnection::abandon() {
  if (push_handler_ != nullptr) std::exchange(push_handler_, nullptr)->release();
  abandoning_ = true;
  reset(Failure::kClosed, 0, false);
  abandoning_ = false;
}

void ServerConnection::queue_handshake() {
  const auto& pool = server_.pool_config();
  auto queue = [&](uint32_t id, std::string_view request, protocol::ReplyShape shape) {
    out_.append(request);
    handshake_.add_ref();
    const auto deadline = Clock::now() + pool.connect_timeout + pool.timeout;
    pending_.push_back(Pending{&handshake_, id, shape, deadline});
    ServerCounters::bump(server_.counters().requests);
    ServerCounters::bump(server_.counters().in_flight);
  };
  std::string request;
  if (pool.protocol == config::Protocol::kMemcached) {
    // memcached's ASCII authentication (-Y): a `set` of any key whose data is "user password",
    // answered STORED; refused with CLIENT_ERROR.
    if (pool.server_username.empty()) return;
    const size_t length = pool.server_username.size() + 1 + pool.server_password.size();
    request = "set cachegate-login 0 0 " + std::to_string(length) + "\r\n" + pool.server_username +
              " " + pool.server_password + "\r\n";
    queue(3, request, protocol::ReplyShape::kMcLine);
    return;
  }
  auto step = [&](uint32_t id, std::initializer_list<std::string_view> args) {
    request.clear();
    protocol::resp::append_command(request, args.begin(), args.size());
    queue(id, request, protocol::ReplyShape::kResp2);
  };
  if (!pool.server_password.empty()) {
    if (pool.server_username.empty()) {
      step(0, {"AUTH", pool.server_password});
    } else {
      step(0, {"AUTH", pool.server_username, pool.server_password});
    }
  }
  const std::string db = std::to_string(pool.redis_db);
  if (pool.redis_db != 0) step(1, {"SELECT", db});
  if (resp3_) step(2, {"HELLO", "3"});
}

void ServerConnection::Handshake::on_reply(uint32_t step, std::string_view reply, bool error) {
  if (!error) return;
  static constexpr std::string_view kSteps[] = {"AUTH", "SELECT", "HELLO 3", "memcached login"};
  // The server's words only (never the password): e.g. "-WRONGPASS invalid username-password".
  std::string_view first_line = reply.substr(0, reply.find('\r'));
  log_warning("server ", connection_.server_.name(), ": ", kSteps[step % 4],
              " refused: ", first_line);
  connection_.reset(Failure::kConnect);
}

void ServerConnection::on_connected(int error) {
  auto& counters = server_.counters();
  if (error != 0) {
    ServerCounters::bump(counters.connect_failures);
    reset(Failure::kConnect);
    return;
  }
  state_ = State::kConnected;
  ServerCounters::bump(counters.connects);
  ServerCounters::bump(counters.connections_open);
  flush_now();
}

void ServerConnection::on_poll(uint32_t events) {
  if (state_ == State::kConnecting) {
    if (!tls_) {
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
      int error = 0;
      socklen_t length = sizeof error;
      if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
      if (error == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0) error = ECONNREFUSED;
      if (error != 0) {
        on_connected(error);
        return;
      }
    }
    finish_connect();
    if (state_ != State::kConnected) return;
  }
  if (state_ != State::kConnected) return;
  if (tls_) {
    // TLS may need the socket readable to write or writable to read: any readiness retries both.
    on_readable(true);
    if (state_ != State::kConnected) return;
    if (write_waiting_) {
      write_waiting_ = false;
      flush_now();
    }
    return;
  }
  if (state_ != State::kConnected) return;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
    on_readable((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    if (state_ != State::kConnected) return;
  }
  if ((events & EPOLLOUT) != 0 && write_waiting_) {
    write_waiting_ = false;
    flush_now();
  }
}

void ServerConnection::finish_connect() {
  ssl_ctx_st* context = server_.tls_context();
  if (context == nullptr) {
    on_connected(0);
    return;
  }
  const auto& pool = server_.pool_config();
  if (!tls_) {
    ssl_st* ssl = new_client_connection(context, fd_, *pool.tls, server_.config().host);
    if (ssl == nullptr) {
      log_warning("server ", server_.name(), ": cannot start TLS: ", openssl_errors());
      on_connected(EPROTO);
      return;
    }
    tls_ = std::make_unique<TlsStream>(ssl);
  }
  // The connect timeout covers the handshake too: the state stays kConnecting until it is done.
  switch (tls_->handshake()) {
    case TlsStream::Io::kOk:
      on_connected(0);
      return;
    case TlsStream::Io::kWantRead:
    case TlsStream::Io::kWantWrite:
      return;
    case TlsStream::Io::kEof:
    case TlsStream::Io::kError:
      break;
  }
  log_warning("server ", server_.name(), ": TLS handshake failed: ", tls_->last_error());
  on_connected(EPROTO);
}

ssize_t ServerConnection::receive(char* data, size_t size) {
  if (!tls_) return ::recv(fd_, data, size, MSG_DONTWAIT);
  const ssize_t n = tls_->receive(data, size);
  if (n < 0 && errno == ECONNRESET) {
    // With TLS 1.3 a server's refusal (a required client certificate missing) arrives as an
    // alert after the handshake looked complete: say why.
    log_warning("server ", server_.name(), ": TLS connection failed: ", tls_->last_error());
    errno = ECONNRESET;
  }
  return n;
}

ssize_t ServerConnection::transmit(const char* data, size_t size) {
  return tls_ ? tls_->transmit(data, size) : ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void ServerConnection::flush_now() {
  if (state_ != State::kConnected || write_waiting_) return;
  while (!out_.empty()) {
    ssize_t n = transmit(out_.data(), out_.size());
    if (n > 0) {
      out_.consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      write_waiting_ = true;  // the next EPOLLOUT edge resumes the flush
      return;
    }
    reset(Failure::kClosed);
    return;
  }
  out_.shrink_if_idle(kIdleBufferKeep);
}

void ServerConnection::on_readable(bool until_eagain) {
  const uint64_t generation = generation_;
  for (;;) {
    in_.ensure_writable(kReadChunk);
    const size_t room = in_.writable();
    ssize_t n = receive(in_.write_ptr(), room);
    if (n > 0) {
      in_.commit(static_cast<size_t>(n));
      const auto received = Clock::now();
      // Hand every complete reply to its waiter, in request order; what no request waits for,
      // to the push handler.
      while (!pending_.empty() || (push_handler_ != nullptr && !in_.empty())) {
        size_t length = 0, payload = 0;
        bool error = false;
        const bool pushed = pending_.empty();
        const auto shape =
            pushed ? (resp3_ ? protocol::ReplyShape::kResp3 : protocol::ReplyShape::kResp2)
                   : pending_.front().shape;
        auto status = frame_front(shape, length, payload, error);
        if (status == protocol::memcache::ParseStatus::kNeedMore) break;
        if (status == protocol::memcache::ParseStatus::kInvalid) {
          reset(Failure::kProtocol);
          return;
        }
        if (pushed) {
          routing::Ref<routing::ReplyHandler> handler(push_handler_);
          handler->on_reply(push_cookie_, std::string_view(in_.data(), payload), error);
          if (generation != generation_) return;  // the handler let this connection go
          in_.consume(length);
          continue;
        }
        Pending done = pending_.pop_front();
        if (done.own_timeout) --own_timeouts_;
        auto& counters = server_.counters();
        ServerCounters::bump(counters.replies);
        ServerCounters::drop(counters.in_flight);
        if (error) ServerCounters::bump(counters.error_replies);
        if (!dedicated_) counters.latency.observe(received - done.sent);
        // A refused handshake is a failure of the server, not a success: it must build up to
        // the backoff like refused connects do.
        if (!error || done.handler != &handshake_) server_.record_success();
        done.handler->on_reply(done.cookie, std::string_view(in_.data(), payload), error);
        done.handler->release();
        if (generation != generation_) return;  // the handler reset this connection
        in_.consume(length);
      }
      if (pending_.empty() && push_handler_ == nullptr && !in_.empty()) {
        // Bytes nobody asked for: the stream is out of step.
        reset(Failure::kProtocol);
        return;
      }
      // A short read means the socket is empty: new data brings a new edge. But a FIN that came
      // with the data brought no edge of its own, so when the peer has hung up, read on to it.
      // TLS reads whole records, so a short read says nothing about what is left.
      if (static_cast<size_t>(n) < room && !until_eagain && !tls_) break;
      continue;
    }
    if (n == 0) {
      reset(Failure::kClosed);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    reset(Failure::kClosed);
    return;
  }
  if (pending_.empty()) in_.shrink_if_idle(kIdleBufferKeep);
}

protocol::memcache::ParseStatus ServerConnection::frame_front(protocol::ReplyShape shape,
                                                              size_t& length, size_t& payload,
                                                              bool& error) {
  using Status = protocol::memcache::ParseStatus;
  if (protocol::is_resp(shape)) {
    protocol::resp::ReplyFrame frame;
    switch (resp_framer_.frame(in_.data(), in_.size(), frame)) {
      case protocol::resp::ParseStatus::kNeedMore:
        return Status::kNeedMore;
      case protocol::resp::ParseStatus::kInvalid:
        return Status::kInvalid;
      case protocol::resp::ParseStatus::kOk:
        break;
    }
    resp_framer_.reset();
    length = payload = frame.length;
    error = frame.error;
    return Status::kOk;
  }
  protocol::memcache::ReplyFrame frame;
  auto status = framer_.frame(in_.data(), in_.size(), shape, frame);
  if (status != Status::kOk) return status;
  framer_.reset();
  length = frame.length;
  payload = frame.payload_length;
  error = frame.error;
  return Status::kOk;
}

void ServerConnection::close_socket() {
  if (fd_ < 0) return;
  loop_.unwatch(fd_, *this);
  tls_.reset();
  ::close(fd_);
  fd_ = -1;
}

size_t ServerConnection::earliest_pending() {
  if (own_timeouts_ == 0) return 0;
  size_t earliest = 0;
  for (size_t i = 1; i < pending_.size(); ++i)
    if (pending_[i].deadline < pending_[earliest].deadline) earliest = i;
  return earliest;
}

ServerConnection::Clock::time_point ServerConnection::next_deadline() {
  // The connect deadline counts too: a request queued on a new connection still fails within
  // its timeout.
  Clock::time_point when = Clock::time_point::max();
  if (state_ == State::kConnecting) when = connect_deadline_;
  if (!pending_.empty()) when = std::min(when, pending_[earliest_pending()].deadline);
  return when;
}

void ServerConnection::arm_timer_at(Clock::time_point when) {
  if (when == Clock::time_point::max()) return;
  timer_armed_ = true;
  timer_due_ = when;
  // Re-arming cancels the previous wait, whose handler then runs with a stale generation.
  const uint64_t generation = ++timer_generation_;
  timer_.expires_at(when);
  routing::Ref<ServerConnection> self(this);
  timer_.async_wait([self, generation](const boost::system::error_code&) {
    if (generation != self->timer_generation_) return;
    self->timer_armed_ = false;
    self->on_timer();
  });
}

// One timer per connection, armed for the earliest deadline and re-armed only when it fires (or
// when a request comes with an earlier deadline than it waits for), so a request with the pool's
// timeout costs no timer operation of its own. Replies leave the timer alone: when it fires for a
// request already answered, it finds nothing late and waits for the next deadline.
void ServerConnection::on_timer() {
  const auto now = Clock::now();
  if (state_ == State::kConnecting && now >= connect_deadline_) {
    ServerCounters::bump(server_.counters().connect_failures);
    reset(Failure::kConnect);
  } else if (!pending_.empty()) {
    const size_t late = earliest_pending();
    if (now >= pending_[late].deadline) {
      // The reply may still come, but the stream cannot be trusted to line up with requests
      // any more: reset, and everything else in flight fails with the late request.
      ServerCounters::bump(server_.counters().timeouts);
      reset(Failure::kTimeout, late);
    }
  }
  if (!timer_armed_) arm_timer();
}

void ServerConnection::reset(Failure failure) {
  reset(failure, 0);
}

void ServerConnection::reset(Failure failure, size_t late, bool counts_against_server) {
  ++generation_;
  const bool had_requests = !pending_.empty();
  if (state_ == State::kConnected) ServerCounters::drop(server_.counters().connections_open);
  close_socket();
  state_ = State::kIdle;
  write_waiting_ = false;
  out_.clear();
  in_.clear();
  out_.shrink_if_idle(kIdleBufferKeep);
  in_.shrink_if_idle(kIdleBufferKeep);
  framer_.reset();
  resp_framer_.reset();
  const bool counts = counts_against_server &&
                      (had_requests || push_handler_ != nullptr || failure == Failure::kConnect);
  fail_pending(failure, failure == Failure::kTimeout ? Failure::kClosed : failure, late);
  if (push_handler_ != nullptr) {
    // A subscribed connection is over: its client is told once.
    routing::Ref<routing::ReplyHandler> handler(push_handler_);
    std::exchange(push_handler_, nullptr)->release();
    handler->on_failure(push_cookie_, failure);
  }
  if (counts) server_.record_failure();
}

void ServerConnection::fail_pending(Failure failure, Failure rest, size_t late) {
  // Detach the queue first: a handler may send again (to a fresh connection) while we fail.
  protocol::RingQueue<Pending> failed;
  std::swap(failed, pending_);
  own_timeouts_ = 0;
  auto& counters = server_.counters();
  for (size_t position = 0; !failed.empty(); ++position) {
    Pending p = failed.pop_front();
    ServerCounters::drop(counters.in_flight);
    if (!abandoning_) counters.count_failure(position == late ? failure : rest);
    p.handler->on_failure(p.cookie, position == late ? failure : rest);
    p.handler->release();
  }
}

// --- Server ------------------------------------------------------------------------------------

Server::Server(Loop& loop, const config::PoolConfig& pool, const config::ServerConfig& server,
               asio::ip::tcp::endpoint endpoint, uint32_t index, routing::HealthObserver* observer,
               uint64_t reply_size_max, ssl_ctx_st* tls_context)
    : loop_(loop),
      pool_(&pool),
      config_(&server),
      endpoint_(endpoint),
      index_(index),
      observer_(observer),
      reply_size_max_(reply_size_max),
      tls_context_(tls_context) {
  connections_.reserve(pool.server_connections);
  for (uint32_t i = 0; i < pool.server_connections; ++i)
    connections_.emplace_back(new ServerConnection(loop, *this));
}

Server::~Server() {
  shutdown();
}

void Server::shutdown() {
  for (auto* set : {&connections_, &resp3_connections_, &idle_dedicated_[0], &idle_dedicated_[1]}) {
    for (auto& c : *set)
      c->reset(Failure::kClosed);
    set->clear();
  }
}

routing::Ref<ServerConnection> Server::acquire_dedicated(bool resp3) {
  auto& idle = idle_dedicated_[resp3 ? 1 : 0];
  if (!idle.empty()) {
    routing::Ref<ServerConnection> connection = std::move(idle.back());
    idle.pop_back();
    return connection;
  }
  // At the bound, an idle connection of the other protocol makes room.
  auto& other = idle_dedicated_[resp3 ? 0 : 1];
  if (dedicated_open_ >= pool_->dedicated_connections && !other.empty()) {
    other.back()->abandon();
    other.pop_back();
    --dedicated_open_;
    ServerCounters::drop(counters_.dedicated_open);
  }
  if (connections_.empty() || dedicated_open_ >= pool_->dedicated_connections) {
    ServerCounters::bump(counters_.dedicated_refused);
    return nullptr;
  }
  ++dedicated_open_;
  ServerCounters::bump(counters_.dedicated_open);
  return routing::Ref<ServerConnection>(new ServerConnection(loop_, *this, resp3, true));
}

void Server::release_dedicated(routing::Ref<ServerConnection> connection, bool resp3, bool clean) {
  if (!connection) return;
  if (clean && !connections_.empty() && connection->open()) {
    idle_dedicated_[resp3 ? 1 : 0].push_back(std::move(connection));
    return;
  }
  // Requests still queued on it fail; the server drops the client's state with the socket.
  connection->abandon();
  --dedicated_open_;
  ServerCounters::drop(counters_.dedicated_open);
}

void Server::send(const std::string_view* pieces, size_t count, protocol::ReplyShape shape,
                  routing::ReplyHandler& handler, uint32_t cookie, uint32_t affinity,
                  std::chrono::milliseconds timeout) {
  if (failing_fast()) {
    counters_.count_failure(Failure::kUnavailable);
    handler.on_failure(cookie, Failure::kUnavailable);
    return;
  }
  if (connections_.empty()) {  // shut down
    handler.on_failure(cookie, Failure::kClosed);
    return;
  }
  if (shape == protocol::ReplyShape::kResp3) {
    if (resp3_connections_.empty()) {
      for (size_t i = 0; i < connections_.size(); ++i)
        resp3_connections_.emplace_back(new ServerConnection(loop_, *this, true));
    }
    resp3_connections_[affinity % resp3_connections_.size()]->send(pieces, count, shape, handler,
                                                                   cookie, timeout);
    return;
  }
  connections_[affinity % connections_.size()]->send(pieces, count, shape, handler, cookie,
                                                     timeout);
}

size_t Server::connections_open() const {
  size_t n = 0;
  for (const auto* set : {&connections_, &resp3_connections_})
    for (const auto& c : *set)
      n += c->connected() ? 1 : 0;
  return n;
}

void Server::preconnect() {
  for (auto& c : connections_)
    c->connect();
}

void Server::record_failure() {
  ++consecutive_failures_;
  counters_.consecutive_failures.store(consecutive_failures_, std::memory_order_relaxed);
  if (consecutive_failures_ >= 2) {
    auto backoff = kBackoffFirst * (1u << std::min<uint32_t>(consecutive_failures_ - 2, 10));
    backoff_until_ = Clock::now() + std::min<Clock::duration>(backoff, kBackoffMax);
  }
  if (pool_->auto_eject_hosts && consecutive_failures_ >= pool_->server_failure_limit &&
      observer_ != nullptr) {
    ServerCounters::bump(counters_.ejections);
    consecutive_failures_ = 0;
    counters_.consecutive_failures.store(0, std::memory_order_relaxed);
    observer_->on_server_ejected(index_);
  }
}

}  // namespace cachegate::backends
