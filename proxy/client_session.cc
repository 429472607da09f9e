#include "proxy/client_session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "config/password.h"
#include "proxy/auth.h"
#include "proxy/counters.h"
#include "proxy/log.h"
#include "proxy/tls.h"
#include "proxy/worker.h"
#include "routing/glob.h"

namespace cachegate::proxy {

namespace {
constexpr size_t kReadChunk = 16 * 1024;
// Buffers up to this size go back to the worker's spares when empty; larger ones (a large value
// went through) are freed, so that one does not pin its memory.
constexpr size_t kIdleBufferKeep = 16 * 1024;
// Reply slots a session starts with: enough for a client that waits for each answer; a
// pipelining one grows them (doubling) once.
constexpr uint32_t kInitialSlots = 4;
constexpr uint32_t kSeqMask = 0x7fffffffu;
// A client that is done but does not read its last replies gets this long to take them.
constexpr std::chrono::seconds kLingerTimeout{10};
// How long the answer to a failed login waits once its address has failed too often.
constexpr std::chrono::seconds kSlowLoginDelay{1};
}  // namespace

ClientSession::ClientSession(Worker& worker, Generation& generation,
                             const Generation::Listener& listener, int fd, uint32_t id)
    : worker_(worker),
      generation_(&generation),
      pool_(listener.pool),
      counters_(worker.counters()),
      listener_(listener.context),
      listener_counters_(&worker.listener_counters(listener.context.config->name)),
      slow_threshold_(generation.config().slow_log_threshold),
      fd_(fd),
      id_(id) {
  slots_.resize(kInitialSlots);
  slot_mask_ = kInitialSlots - 1;
  counters_.curr_connections.add();
  counters_.total_connections.add();
  listener_counters_->connections_open.add();
  if (listener_.open_connections != nullptr)
    listener_.open_connections->fetch_add(1, std::memory_order_relaxed);
}

ClientSession::~ClientSession() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
  counters_.curr_connections.sub();
  listener_counters_->connections_open.sub();
}

void ClientSession::start() {
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  worker_.add_session(this);
  if (listener_.config != nullptr && listener_.config->auth == config::ListenerAuth::kRequired)
    log_out();
  if (!worker_.loop().watch(fd_, *this)) {
    close();
    return;
  }
  if (listener_.tls != nullptr) {
    if (listener_.tls->config().mode == config::TlsMode::kOptional) {
      transport_ = Transport::kDetect;
    } else {
      start_tls();
    }
    if (!advance_transport()) return;
  }
  on_readable(true);
}

// --- transport ---------------------------------------------------------------------------------

void ClientSession::start_tls() {
  ssl_st* ssl = listener_.tls->new_connection(fd_);
  if (ssl == nullptr) {
    counters_.tls_handshake_failures.add();
    listener_counters_->tls_handshake_failures.add();
    log(LogLevel::kWarning, "listener '", listener_.config->name, "': no TLS context; closing");
    close();
    return;
  }
  tls_ = std::make_unique<TlsStream>(ssl);
  transport_ = Transport::kHandshake;
  // A client that starts a handshake and stalls is dropped; nothing else waits for it.
  handshake_timer_ = std::make_unique<boost::asio::steady_timer>(
      worker_.loop().io(), listener_.tls->config().handshake_timeout);
  routing::Ref<ClientSession> self(this);
  handshake_timer_->async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->closed_ || self->transport_ != Transport::kHandshake) return;
    self->counters_.tls_handshake_failures.add();
    self->listener_counters_->tls_handshake_failures.add();
    self->counters_.tls_handshake_timeouts.add();
    log(LogLevel::kDebug, "client ", self->id_, ": TLS handshake timed out");
    self->close();
  });
}

bool ClientSession::advance_transport() {
  if (closed_) return false;
  if (transport_ == Transport::kDetect) {
    // A TLS record starts with 0x16 (handshake); no memcached or Redis request does.
    char first;
    const ssize_t n = ::recv(fd_, &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
    if (n <= 0) {
      close();
      return false;
    }
    if (first != 0x16) {
      transport_ = Transport::kPlain;
      return true;
    }
    start_tls();
    if (closed_) return false;
  }
  if (transport_ == Transport::kHandshake) {
    switch (tls_->handshake()) {
      case TlsStream::Io::kOk:
        break;
      case TlsStream::Io::kWantRead:
      case TlsStream::Io::kWantWrite:
        return false;
      case TlsStream::Io::kEof:
      case TlsStream::Io::kError:
        counters_.tls_handshake_failures.add();
        listener_counters_->tls_handshake_failures.add();
        log(LogLevel::kDebug, "client ", id_, ": TLS handshake failed: ", tls_->last_error());
        close();
        return false;
    }
    transport_ = Transport::kTls;
    if (handshake_timer_) handshake_timer_->cancel();
    handshake_timer_.reset();
    counters_.tls_handshakes.add();
    listener_counters_->tls_handshakes.add();
    peer_identities_ = tls_->peer_identities();
    if (!peer_identities_.empty()) {
      const std::string name = worker_.authenticator().user_for_identities(peer_identities_);
      if (const auto* user = name.empty() ? nullptr : generation_->config().find_user(name)) {
        user_ = user;
        authenticated_ = true;
        counters_.auth_successes.add();
      }
    }
  }
  return true;
}

ssize_t ClientSession::receive(char* data, size_t size) {
  return tls_ ? tls_->receive(data, size) : ::recv(fd_, data, size, MSG_DONTWAIT);
}

ssize_t ClientSession::transmit(const char* data, size_t size) {
  return tls_ ? tls_->transmit(data, size) : ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void ClientSession::on_poll(uint32_t events) {
  if (closed_) return;
  if (transport_ == Transport::kDetect || transport_ == Transport::kHandshake) {
    if (!advance_transport()) return;
    // The events that completed the handshake may carry the first requests too.
    on_readable(true);
    return;
  }
  if (tls_) {
    // TLS may need the socket readable to go on writing, or writable to go on reading (key
    // updates): any readiness retries both.
    if (write_waiting_) {
      write_waiting_ = false;
      flush_now();
      if (closed_) return;
    }
    on_readable(true);
    return;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)
    on_readable((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
  if ((events & EPOLLOUT) != 0 && write_waiting_ && !closed_) {
    write_waiting_ = false;
    flush_now();
  }
}

void ClientSession::close() {
  if (closed_) return;
  routing::Ref<ClientSession> self(this);  // the worker's list may hold the last reference
  closed_ = true;
  on_close();
  held_ = 0;
  if (listener_.open_connections != nullptr)
    listener_.open_connections->fetch_sub(1, std::memory_order_relaxed);
  if (linger_) linger_->cancel();
  if (handshake_timer_) handshake_timer_->cancel();
  if (auth_timer_) auth_timer_->cancel();
  worker_.loop().unwatch(fd_, *this);
  if (tls_) {
    if (transport_ == Transport::kTls) tls_->shutdown();
    tls_.reset();
  }
  ::close(fd_);
  fd_ = -1;
  worker_.remove_session(this);
  // Slots may hold large replies; in-flight requests keep this object alive until they answer.
  slots_.clear();
  slots_.shrink_to_fit();
  in_.clear();
  in_.shrink_if_idle(0);
  out_.clear();
  out_.shrink_if_idle(0);
}

// --- reading -----------------------------------------------------------------------------------

void ClientSession::on_readable(bool until_eagain) {
  routing::Ref<ClientSession> self(this);  // a handler below may drop the last other ref
  for (;;) {
    if (closed_ || peer_eof_) return;
    if (!can_take_more() && !watching_input()) {
      // Leave the rest in the socket; maybe_resume() reads again when replies drain.
      pause_reading();
      return;
    }
    // Room for a large request grows with what has arrived (at most doubling the buffer), not
    // to the size its header announces: otherwise a client that announces a value of
    // request_size_max and sends nothing more costs that much memory per connection.
    size_t want = kReadChunk;
    if (needed_ > in_.size()) want = std::max(want, std::min(needed_ - in_.size(), in_.size()));
    acquire_buffer(in_);
    in_.ensure_writable(want);
    const size_t room = in_.writable();
    ssize_t n = receive(in_.write_ptr(), room);
    if (n > 0) {
      in_.commit(static_cast<size_t>(n));
      counters_.bytes_read.add(static_cast<uint64_t>(n));
      if (generation_.get() != &worker_.generation()) adopt_current_generation();
      process_input();
      // A short read means the socket is empty: new data brings a new edge. But a FIN that came
      // with the data brought no edge of its own, so when the peer has hung up (or when reading
      // resumes after a pause, when edges went unheeded), read on to EAGAIN or the end. TLS
      // reads whole records off the socket, so a short read says nothing about what is left.
      if (static_cast<size_t>(n) < room && !until_eagain && !tls_) break;
      continue;
    }
    if (n == 0) {
      if (input_held_) {
        // Gone while blocked: as redis-server does, drop it now, and its server connection.
        close();
        return;
      }
      // The client is done sending (it may have half-closed): answer everything it sent, then
      // close. Requests still buffered are processed as replies drain.
      peer_eof_ = true;
      finish_if_done();
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (in_.empty()) release_buffer(in_);
      break;
    }
    close();
    return;
  }
}

void ClientSession::start_linger() {
  if (linger_) return;
  linger_ = std::make_unique<boost::asio::steady_timer>(worker_.loop().io(), kLingerTimeout);
  routing::Ref<ClientSession> self(this);
  linger_->async_wait([self](const boost::system::error_code& ec) {
    if (!ec) self->close();
  });
}

void ClientSession::pause_reading() {
  if (!paused_) counters_.paused_reads.add();
  paused_ = true;
}

bool ClientSession::can_take_more() const {
  const auto& limits = generation_->config().limits;
  return !closing_ && !closed_ && !login_pending_ && !input_held_ &&
         !(awaiting_answers_ && in_flight_ != 0) && in_flight_ < limits.client_pipeline_max &&
         (next_seq_ - head_seq_) < limits.client_pipeline_max &&
         out_.size() + held_ < limits.client_output_max;
}

void ClientSession::maybe_resume() {
  if (!paused_ || closed_ || !can_take_more()) return;
  paused_ = false;
  // Requests already buffered first, then the socket (its edge was not consumed). A request
  // that holds input reads on too: the client leaving must be seen.
  process_input();
  if (closed_ || closing_ || peer_eof_ || (paused_ && !watching_input())) return;
  on_readable(true);
}

// A worker serves many connections that mostly wait between requests, and only those in the
// middle of a request or a reply need a buffer: an empty one goes back to the worker's spares and
// the next session that reads or writes takes it from there, so that an idle connection holds
// none and nothing is allocated per request.
void ClientSession::acquire_buffer(protocol::Buffer& buffer) {
  auto& spares = worker_.spare_buffers();
  if (buffer.capacity() != 0 || spares.empty()) return;  // without a spare, it grows as it fills
  buffer = std::move(spares.back());
  spares.pop_back();
}

void ClientSession::release_buffer(protocol::Buffer& buffer) {
  auto& spares = worker_.spare_buffers();
  if (buffer.capacity() <= kIdleBufferKeep && spares.size() < Worker::kSpareBuffersMax &&
      buffer.capacity() != 0) {
    buffer.clear();
    spares.push_back(std::move(buffer));
  } else {
    buffer.shrink_if_idle(0);
  }
}

void ClientSession::input_done() {
  if (in_.empty()) release_buffer(in_);
  if (peer_eof_ || closing_) finish_if_done();
}

void ClientSession::finish_if_done() {
  if (peer_eof_ && !paused_ && !closing_) closing_ = true;
  if (closing_ && in_flight_ == 0 && head_seq_ == next_seq_) worker_.loop().defer_flush(*this);
}

// --- logins ------------------------------------------------------------------------------------

// The client's address, for counting failed logins per address; looked up at the first login.
const std::string& ClientSession::peer_address() {
  if (!peer_address_.empty() || closed_) return peer_address_;
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  char text[INET6_ADDRSTRLEN] = "";
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
    if (peer.ss_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, text, sizeof text);
    } else {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, text, sizeof text);
    }
  }
  peer_address_ = text;
  return peer_address_;
}

void ClientSession::log_out() {
  authenticated_ = false;
  user_ = nullptr;
  // A connection that does not log in soon is closed; it holds a descriptor and memory.
  if (!auth_timer_) {
    auth_timer_ = std::make_unique<boost::asio::steady_timer>(worker_.loop().io());
  }
  auth_timer_->expires_after(generation_->config().auth_timeout);
  routing::Ref<ClientSession> self(this);
  auth_timer_->async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->closed_ || self->authenticated_) return;
    self->counters_.auth_timeouts.add();
    self->close();
  });
}

bool ClientSession::has_users() const {
  return !generation_->config().users.empty();
}

bool ClientSession::may(config::OpClass op) const {
  if (user_ == nullptr) return true;
  switch (op) {
    case config::OpClass::kRead:
      return user_->may_read;
    case config::OpClass::kWrite:
      return user_->may_write;
    case config::OpClass::kAdmin:
      return user_->may_admin;
  }
  return false;
}

bool ClientSession::key_allowed(std::string_view key) const {
  if (user_ == nullptr || user_->key_patterns.empty()) return true;
  for (const auto& pattern : user_->key_patterns)
    if (routing::glob_match(pattern, key)) return true;
  return false;
}

void ClientSession::start_login(std::string_view name, std::string password,
                                std::function<std::string(LoginOutcome)> reply) {
  const uint32_t cookie = open_slot();
  ++in_flight_;
  Authenticator& auth = worker_.authenticator();
  const auto standing = auth.standing(peer_address());
  if (standing == Authenticator::Standing::kBlocked) {
    config::wipe_secret(password);
    counters_.auth_blocked.add();
    on_reply(cookie, reply(LoginOutcome::kBlocked), false);
    return;
  }
  login_pending_ = true;
  routing::Ref<ClientSession> self(this);
  auth.check_password(
      name, std::move(password), worker_.loop().io(),
      [self, cookie, reply = std::move(reply),
       slow = standing == Authenticator::Standing::kSlow](const config::UserConfig* checked) {
        // The same user in the configuration this session runs: the check may have run against
        // a newer one.
        const config::UserConfig* user =
            checked != nullptr ? self->generation_->config().find_user(checked->name) : nullptr;
        auto deliver = [self, cookie, reply, user] {
          self->login_pending_ = false;
          Authenticator& a = self->worker_.authenticator();
          if (user != nullptr) {
            a.record_success(self->peer_address());
            self->user_ = user;
            self->authenticated_ = true;
            self->counters_.auth_successes.add();
            self->on_reply(cookie, reply(LoginOutcome::kOk), false);
          } else {
            a.record_failure(self->peer_address());
            self->counters_.auth_failures.add();
            self->listener_counters_->auth_failures.add();
            // Answered by cachegate, not a server's error: not counted as a backend error.
            self->on_reply(cookie, reply(LoginOutcome::kRefused), false);
          }
        };
        if (!slow || user != nullptr) {
          deliver();
          return;
        }
        // An address that keeps failing waits for each answer: a guess per second at most.
        auto timer =
            std::make_shared<boost::asio::steady_timer>(self->worker_.loop().io(), kSlowLoginDelay);
        self->counters_.auth_slowed.add();
        timer->async_wait([timer, deliver](const boost::system::error_code&) { deliver(); });
      });
}

// --- replies -----------------------------------------------------------------------------------

void ClientSession::forward(routing::Pool& pool, uint32_t server, const std::string_view* pieces,
                            size_t count, protocol::ReplyShape shape, bool discard, uint8_t kind,
                            uint32_t keys) {
  const uint32_t cookie = discard ? kNoSlot : open_slot(kind, keys);
  ++in_flight_;
  pool.server(server).send(pieces, count, shape, *this, cookie, id_);
}

// --- routes ------------------------------------------------------------------------------------

ClientSession::Target ClientSession::select_route(std::string_view key, config::RouteOp op) {
  const std::string_view user = user_ != nullptr ? std::string_view(user_->name) : "";
  routing::RouteRule& rule = listener_.routes->select(key, op, listener_.config->name, user);
  if (routing::Pool* pool = rule.direct_pool()) {
    pool->count(op);
    return {pool, nullptr};
  }
  rule.primary().count(op);
  return {&rule.primary(), &rule};
}

bool ClientSession::send_to(const Target& target, std::string_view key,
                            const std::string_view* pieces, size_t count,
                            protocol::ReplyShape shape, config::RouteOp op, bool discard,
                            uint8_t kind, uint32_t keys) {
  if (target.rule == nullptr) {
    const uint32_t server = target.pool->server_for(key);
    if (server == routing::Distribution::kNoServer) return false;
    forward(*target.pool, server, pieces, count, shape, discard, kind, keys);
    return true;
  }
  const uint32_t cookie = discard ? kNoSlot : open_slot(kind, keys);
  ++in_flight_;
  routing::route_request(*target.rule, routing::RoutedRequest{key, pieces, count, shape, op},
                         judge(), *listener_.route_counters, *this, cookie, id_);
  return true;
}

const std::vector<routing::Pool*>& ClientSession::flush_pools() {
  const Target t = route_of("", config::RouteOp::kAdmin);
  flush_pools_.clear();
  if (t.rule != nullptr) {
    flush_pools_.assign(t.rule->pools.begin(), t.rule->pools.end());
  } else {
    flush_pools_.push_back(t.pool);
  }
  return flush_pools_;
}

uint32_t ClientSession::part_target(std::string_view key, config::RouteOp op) {
  const Target t = route_of(key, op);
  if (t.rule != nullptr) {
    part_targets_.push_back(PartTarget{t.pool, t.rule, 0, op});
    return static_cast<uint32_t>(part_targets_.size() - 1);
  }
  const uint32_t server = t.pool->server_for(key);
  if (server == routing::Distribution::kNoServer) return server;
  for (uint32_t i = 0; i < part_targets_.size(); ++i) {
    const PartTarget& p = part_targets_[i];
    if (p.rule == nullptr && p.pool == t.pool && p.server == server) return i;
  }
  part_targets_.push_back(PartTarget{t.pool, nullptr, server, op});
  return static_cast<uint32_t>(part_targets_.size() - 1);
}

void ClientSession::send_part(uint32_t target, std::string_view key, const std::string_view* pieces,
                              size_t count, protocol::ReplyShape shape,
                              routing::ReplyHandler& handler, uint32_t cookie, uint32_t affinity) {
  const PartTarget t = part_targets_[target];
  if (t.rule == nullptr) {
    t.pool->server(t.server).send(pieces, count, shape, handler, cookie, affinity);
    return;
  }
  routing::route_request(*t.rule, routing::RoutedRequest{key, pieces, count, shape, t.op}, judge(),
                         *listener_.route_counters, handler, cookie, affinity);
}

uint32_t ClientSession::open_slot(uint8_t kind, uint32_t keys, const routing::RouteRule* rule) {
  if (next_seq_ - head_seq_ > slot_mask_) grow_slots();
  Slot& s = slot(next_seq_);
  s.ready = false;
  s.kind = kind;
  s.keys = keys;
  s.user = user_;
  s.rule = rule;
  s.untimed = false;
  s.started = Clock::now();
  s.label_length = 0;
  if (slow_threshold_.count() > 0) {
    s.label_length = static_cast<uint8_t>(describe_request(s.label, sizeof s.label));
    // Keys may hold any byte: the log line stays one printable line.
    for (uint8_t i = 0; i < s.label_length; ++i) {
      const unsigned char c = static_cast<unsigned char>(s.label[i]);
      if (c < 0x20 || c == 0x7f) s.label[i] = '?';
    }
  }
  return next_seq_++ & kSeqMask;
}

void ClientSession::grow_slots() {
  std::vector<Slot> bigger(slots_.size() * 2);
  const uint32_t mask = static_cast<uint32_t>(bigger.size() - 1);
  for (uint32_t seq = head_seq_; seq != next_seq_; ++seq)
    bigger[seq & mask] = std::move(slots_[seq & slot_mask_]);
  slots_ = std::move(bigger);
  slot_mask_ = mask;
}

// Cookies carry 31 bits of the sequence; rebuild the full value from the window of open slots.
uint32_t ClientSession::full_seq(uint32_t cookie) const {
  return head_seq_ + ((cookie - head_seq_) & kSeqMask);
}

void ClientSession::reply_local(std::string_view bytes) {
  if (closed_) return;
  if (head_seq_ == next_seq_) {
    acquire_buffer(out_);
    out_.append(bytes);
    worker_.loop().defer_flush(*this);
    enforce_output_limit();
    return;
  }
  complete(open_slot(), bytes);
}

void ClientSession::complete(uint32_t cookie, std::string_view bytes) {
  if (closed_) return;
  const uint32_t full = full_seq(cookie);
  if (full != head_seq_) {
    Slot& s = slot(full);
    s.bytes.assign(bytes.data(), bytes.size());
    s.ready = true;
    held_ += bytes.size();
    enforce_output_limit();
    return;
  }
  acquire_buffer(out_);
  out_.append(bytes);
  const auto now = Clock::now();
  slot_done(slot(head_seq_), now);
  ++head_seq_;
  while (head_seq_ != next_seq_ && slot(head_seq_).ready) {
    Slot& s = slot(head_seq_);
    slot_done(s, now);
    out_.append(s.bytes);
    held_ -= s.bytes.size();
    s.ready = false;
    if (s.bytes.capacity() > 64 * 1024) {
      std::string().swap(s.bytes);
    } else {
      s.bytes.clear();
    }
    ++head_seq_;
  }
  worker_.loop().defer_flush(*this);
  enforce_output_limit();
}

void ClientSession::slot_done(const Slot& s, Clock::time_point now) {
  const auto elapsed = now - s.started;
  listener_counters_->requests.add();
  if (s.untimed) return;
  listener_counters_->latency.observe(elapsed);
  if (slow_threshold_.count() > 0 && elapsed >= slow_threshold_) {
    listener_counters_->slow_requests.add();
    // What the request was (its command and first key), never a value or a password.
    log(LogLevel::kWarning, "slow request: ",
        std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() / 1000.0,
        " ms on listener '", listener_.config->name, "', client ", id_,
        s.user != nullptr ? ", user '" + s.user->name + "'" : std::string(), ": ",
        std::string_view(s.label, s.label_length));
  }
}

void ClientSession::enforce_output_limit() {
  if (closed_ || out_.size() + held_ <= generation_->config().limits.client_output_hard_max) return;
  counters_.output_limit_closes.add();
  log(LogLevel::kDebug, "client ", id_, " holds more than client_output_hard_max of replies; ",
      "disconnecting it");
  close();
}

void ClientSession::charge(int64_t bytes) {
  if (closed_) return;
  held_ = static_cast<uint64_t>(static_cast<int64_t>(held_) + bytes);
  if (bytes > 0) enforce_output_limit();
}

void ClientSession::on_reply(uint32_t cookie, std::string_view reply, bool error) {
  --in_flight_;
  if (error) counters_.backend_errors.add();
  if (cookie & kNoSlot) {
    on_discarded_reply(error);
  } else if (!closed_) {
    complete(cookie, on_slot_reply(slot(full_seq(cookie)), reply, error));
  }
  maybe_resume();
  if (closing_ || peer_eof_) finish_if_done();
  // A reply nobody waits for (noreply) queues nothing to write: the drain looks here instead.
  if (draining_) worker_.loop().defer_flush(*this);
}

void ClientSession::on_failure(uint32_t cookie, routing::Failure failure) {
  --in_flight_;
  counters_.backend_failures.add();
  if (!(cookie & kNoSlot) && !closed_) complete(cookie, failure_reply(failure));
  maybe_resume();
  if (closing_ || peer_eof_) finish_if_done();
  if (draining_) worker_.loop().defer_flush(*this);
}

// --- writing -----------------------------------------------------------------------------------

void ClientSession::flush_now() {
  if (closed_ || write_waiting_) return;
  while (!out_.empty()) {
    ssize_t n = transmit(out_.data(), out_.size());
    if (n > 0) {
      out_.consume(static_cast<size_t>(n));
      counters_.bytes_written.add(static_cast<uint64_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      write_waiting_ = true;
      if (closing_) start_linger();
      return;
    }
    close();
    return;
  }
  release_buffer(out_);
  if (closing_ && in_flight_ == 0 && head_seq_ == next_seq_) {
    close();
    return;
  }
  maybe_resume();
  close_if_drained();
}

// --- reloads and draining ------------------------------------------------------------------

void ClientSession::adopt_current_generation() {
  Generation& next = worker_.generation();
  if (closed_ || generation_.get() == &next || !idle()) return;
  if (leaves_on_reload()) {
    log(LogLevel::kInfo, "client ", id_, ": closing it for the new configuration");
    close_when_done();
    return;
  }
  if (holds_server_state()) return;
  // Not while plain or TLS is still being decided: that follows the listener it was accepted by.
  if (transport_ != Transport::kPlain && transport_ != Transport::kTls) return;
  const Generation::Listener* listener = next.listener_named(listener_.config->name);
  if (listener == nullptr || listener->context.config->protocol != listener_.config->protocol) {
    log(LogLevel::kDebug, "client ", id_, ": its listener '", listener_.config->name,
        "' was removed or changed protocol; closing");
    close_when_done();
    return;
  }
  const config::UserConfig* user = nullptr;
  if (user_ != nullptr) {
    user = next.config().find_user(user_->name);
    if (user == nullptr) {
      log(LogLevel::kInfo, "client ", id_, ": user '", user_->name,
          "' is no longer configured; closing");
      close_when_done();
      return;
    }
  }
  // A listener that now requires TLS does not keep plain connections.
  const ListenerTls* tls = listener->context.tls;
  if (transport_ == Transport::kPlain && tls != nullptr &&
      tls->config().mode == config::TlsMode::kRequired) {
    log(LogLevel::kDebug, "client ", id_, ": listener '", listener_.config->name,
        "' now requires TLS; closing this plain connection");
    close_when_done();
    return;
  }
  const bool auth_required = listener->context.config->auth == config::ListenerAuth::kRequired;
  generation_ = &next;
  pool_ = listener->pool;
  listener_ = listener->context;
  user_ = user;
  slow_threshold_ = next.config().slow_log_threshold;
  if (auth_required && user_ == nullptr && authenticated_) {
    log_out();  // an anonymous client of a listener that now requires a login
  } else if (!auth_required && !authenticated_) {
    authenticated_ = true;
    if (auth_timer_) auth_timer_->cancel();
  }
}

std::shared_ptr<backends::Server> ClientSession::backend_server(const routing::Pool& pool,
                                                                uint32_t index) const {
  for (const auto& runtime : generation_->pools)
    if (runtime.pool.get() == &pool) return runtime.servers.at(index);
  return nullptr;
}

void ClientSession::start_draining() {
  if (closed_) return;
  draining_ = true;
  // A connection still in its TLS handshake has sent no request; one blocked in a command
  // (BLPOP 0) could hold the drain to its timeout, and Redis disconnects it at shutdown too.
  if ((transport_ != Transport::kPlain && transport_ != Transport::kTls) || blocked()) {
    close();
    return;
  }
  close_if_drained();
}

void ClientSession::close_if_drained() {
  if (!draining_ || closed_ || !idle() || !out_.empty() || paused_ || write_waiting_) return;
  // Requests that reached the socket before now are still answered.
  routing::Ref<ClientSession> self(this);
  on_readable(true);
  if (!closed_ && idle() && out_.empty() && !paused_ && !write_waiting_) close();
}

}  // namespace cachegate::proxy
