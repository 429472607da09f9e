#include "proxy/memcache_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "protocol/memcache_reply.h"
#include "proxy/counters.h"
#include "proxy/log.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "routing/fanout.h"

namespace cachegate::proxy {

using protocol::ReplyShape;
using protocol::memcache::Command;
using protocol::memcache::ParseStatus;
using protocol::memcache::Request;

namespace {
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kIdleBufferKeep = 16 * 1024;
constexpr std::string_view kMetaNoop = "mn\r\n";
constexpr std::string_view kMetaNoopReply = "MN\r\n";
constexpr std::string_view kOk = "OK\r\n";
constexpr std::string_view kNoLiveServer = "SERVER_ERROR no live backend in pool\r\n";
constexpr std::chrono::seconds kLingerTimeout{10};
// The bytes a request is forwarded as: the frame from its command name on.
std::string_view forwarded_bytes(const Request& request, const char* frame) {
  return std::string_view(frame + request.start, request.frame_length - request.start);
}
}  // namespace

MemcacheSession::MemcacheSession(Worker& worker, routing::Pool& pool, int fd, uint32_t id)
    : worker_(worker),
      pool_(pool),
      counters_(worker.counters()),
      fd_(fd),
      id_(id),
      parser_(protocol::memcache::ParserLimits{worker.limits().request_line_max,
                                               worker.limits().item_size_max}) {
  slots_.resize(16);
  slot_mask_ = 15;
  counters_.curr_connections.add();
  counters_.total_connections.add();
}

MemcacheSession::~MemcacheSession() {
  if (fd_ >= 0) ::close(fd_);
  counters_.curr_connections.sub();
}

void MemcacheSession::start() {
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  worker_.add_session(this);
  if (!worker_.loop().watch(fd_, *this)) {
    close();
    return;
  }
  on_readable(true);
}

void MemcacheSession::on_poll(uint32_t events) {
  if (closed_) return;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)
    on_readable((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
  if ((events & EPOLLOUT) != 0 && write_waiting_ && !closed_) {
    write_waiting_ = false;
    flush_now();
  }
}

void MemcacheSession::close() {
  if (closed_) return;
  routing::Ref<MemcacheSession> self(this);  // the worker's list may hold the last reference
  closed_ = true;
  held_ = 0;
  if (linger_) linger_->cancel();
  worker_.loop().unwatch(fd_, *this);
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

void MemcacheSession::on_readable(bool until_eagain) {
  routing::Ref<MemcacheSession> self(this);  // a handler below may drop the last other ref
  for (;;) {
    if (closed_ || peer_eof_) return;
    if (!can_take_more()) {
      // Leave the rest in the socket; maybe_resume() reads again when replies drain.
      pause_reading();
      return;
    }
    size_t want = kReadChunk;
    if (needed_ > in_.size() && needed_ - in_.size() > want) want = needed_ - in_.size();
    in_.ensure_writable(want);
    const size_t room = in_.writable();
    ssize_t n = ::recv(fd_, in_.write_ptr(), room, MSG_DONTWAIT);
    if (n > 0) {
      in_.commit(static_cast<size_t>(n));
      counters_.bytes_read.add(static_cast<uint64_t>(n));
      process_input();
      // A short read means the socket is empty: new data brings a new edge. But a FIN that came
      // with the data brought no edge of its own, so when the peer has hung up (or when reading
      // resumes after a pause, when edges went unheeded), read on to EAGAIN or the end.
      if (static_cast<size_t>(n) < room && !until_eagain) break;
      continue;
    }
    if (n == 0) {
      // The client is done sending (it may have half-closed): answer everything it sent, then
      // close. Requests still buffered are processed as replies drain.
      peer_eof_ = true;
      finish_if_done();
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    close();
    return;
  }
}

// A client that is done (quit, end of input, lost framing) but does not read its last replies
// gets a while to take them, not forever.
void MemcacheSession::start_linger() {
  if (linger_) return;
  linger_ = std::make_unique<boost::asio::steady_timer>(worker_.loop().io(), kLingerTimeout);
  routing::Ref<MemcacheSession> self(this);
  linger_->async_wait([self](const boost::system::error_code& ec) {
    if (!ec) self->close();
  });
}

void MemcacheSession::pause_reading() {
  if (!paused_) counters_.paused_reads.add();
  paused_ = true;
}

bool MemcacheSession::can_take_more() const {
  const auto& limits = worker_.limits();
  return !closing_ && in_flight_ < limits.client_pipeline_max &&
         (next_seq_ - head_seq_) < limits.client_pipeline_max &&
         out_.size() + held_ < limits.client_output_max;
}

void MemcacheSession::maybe_resume() {
  if (!paused_ || closed_ || !can_take_more()) return;
  paused_ = false;
  // Requests already buffered first, then the socket (its edge was not consumed).
  process_input();
  if (paused_ || closed_ || closing_ || peer_eof_) return;
  on_readable(true);
}

void MemcacheSession::finish_if_done() {
  if (peer_eof_ && !paused_ && !closing_) closing_ = true;
  if (closing_ && in_flight_ == 0 && head_seq_ == next_seq_) worker_.loop().defer_flush(*this);
}

void MemcacheSession::process_input() {
  while (!closed_ && !closing_) {
    if (!can_take_more()) {
      pause_reading();
      return;
    }
    if (swallow_ > 0) {
      size_t n = in_.size() < swallow_ ? in_.size() : static_cast<size_t>(swallow_);
      in_.consume(n);
      swallow_ -= n;
      if (swallow_ > 0) break;
      continue;
    }
    if (in_.empty() || needed_ > in_.size()) break;
    Request request;
    auto status = parser_.parse(in_.data(), in_.size(), request);
    if (status == ParseStatus::kNeedMore) {
      needed_ = parser_.needed();
      break;
    }
    needed_ = 0;
    if (status == ParseStatus::kInvalid) {
      const auto& error = parser_.error();
      counters_.client_errors.add();
      if (error.suppress) {
        counters_.noreply_discarded_errors.add();
      } else {
        reply_local(error.reply);
      }
      in_.consume(error.consumed < in_.size() ? error.consumed : in_.size());
      swallow_ = error.swallow;
      if (error.close) {
        closing_ = true;
        in_.clear();
      }
      continue;
    }
    dispatch(request, in_.data());
    in_.consume(request.frame_length);
  }
  if (in_.empty()) in_.shrink_if_idle(kIdleBufferKeep);
  if (peer_eof_ || closing_) finish_if_done();
}

// --- dispatch ----------------------------------------------------------------------------------

void MemcacheSession::dispatch(const Request& request, const char* frame) {
  const std::string_view whole = forwarded_bytes(request, frame);
  switch (request.command) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats:
      dispatch_retrieval(request, frame);
      return;

    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
    case Command::kDelete:
    case Command::kIncr:
    case Command::kDecr:
    case Command::kTouch: {
      if (protocol::memcache::is_storage(request.command)) {
        counters_.cmd_set.add();
      } else if (request.command == Command::kDelete) {
        counters_.cmd_delete.add();
      } else if (request.command == Command::kTouch) {
        counters_.cmd_touch.add();
      } else {
        counters_.cmd_arith.add();
      }
      const uint32_t server = pool_.server_for(request.key.in(frame));
      if (server == routing::Distribution::kNoServer) {
        if (!request.noreply) reply_local(kNoLiveServer);
        return;
      }
      if (request.noreply) {
        // The server replies after all (noreply is taken off) and the reply is discarded, so
        // the connection's replies stay one per request.
        const auto& t = request.noreply_token;
        const size_t at = t.offset - request.start;
        std::string_view pieces[2] = {whole.substr(0, at), whole.substr(at + t.length)};
        forward(server, pieces, 2, ReplyShape::kMcLine, true, SlotKind::kOther);
      } else {
        forward(server, &whole, 1, ReplyShape::kMcLine, false, SlotKind::kOther);
      }
      return;
    }

    case Command::kMetaGet:
    case Command::kMetaSet:
    case Command::kMetaDelete:
    case Command::kMetaArithmetic:
    case Command::kMetaDebug: {
      counters_.cmd_meta.add();
      const std::string_view key =
          request.base64_key ? parser_.decoded_key() : request.key.in(frame);
      const uint32_t server = pool_.server_for(key);
      if (server == routing::Distribution::kNoServer) {
        reply_local(kNoLiveServer);
        return;
      }
      if (request.noreply) {
        // Quiet mode: the server may send nothing; the appended mn's MN marks the end.
        std::string_view pieces[2] = {whole, kMetaNoop};
        forward(server, pieces, 2, ReplyShape::kMcMetaQuiet, false, SlotKind::kOther);
      } else {
        forward(server, &whole, 1, ReplyShape::kMcMeta, false, SlotKind::kOther);
      }
      return;
    }

    case Command::kMetaNoop:
      // In order behind everything before it: exactly what ends a quiet pipeline.
      counters_.cmd_meta.add();
      reply_local(kMetaNoopReply);
      return;

    case Command::kFlushAll:
      dispatch_flush_all(request, frame);
      return;

    case Command::kVersion:
      reply_local(version_reply());
      return;

    case Command::kVerbosity:
      // Accepted for compatibility; cachegate's log level is set in its config.
      if (!request.noreply) reply_local(kOk);
      return;

    case Command::kStats:
      answer_stats(request, frame);
      return;

    case Command::kQuit:
      closing_ = true;
      finish_if_done();
      return;
  }
}

void MemcacheSession::dispatch_retrieval(const Request& request, const char* frame) {
  const auto& keys = parser_.keys();
  counters_.cmd_get.add(keys.size());
  const std::string_view whole = forwarded_bytes(request, frame);
  server_of_key_.resize(keys.size());
  bool one_server = true;
  for (size_t i = 0; i < keys.size(); ++i) {
    server_of_key_[i] = pool_.server_for(keys[i].in(frame));
    if (server_of_key_[i] == routing::Distribution::kNoServer) {
      reply_local(kNoLiveServer);
      return;
    }
    one_server = one_server && server_of_key_[i] == server_of_key_[0];
  }
  // memcached accepts get/gets lines of any length but drops the connection on other lines past
  // 2048 bytes: a long gat/gats (many keys, or padded with spaces) is rebuilt in pieces that fit,
  // even when its keys share one server.
  const bool touch = request.command == Command::kGat || request.command == Command::kGats;
  const size_t max_line = touch ? protocol::memcache::kMaxServerLine : 0;
  const size_t forwarded_line = request.line_length - request.start;
  if (one_server && (max_line == 0 || forwarded_line <= max_line)) {
    forward(server_of_key_[0], &whole, 1, ReplyShape::kMcRetrieval, false, SlotKind::kRetrieval,
            static_cast<uint32_t>(keys.size()));
    return;
  }
  if (!one_server) counters_.multiget_fanouts.add();
  const uint32_t cookie = open_slot(SlotKind::kRetrieval, static_cast<uint32_t>(keys.size()));
  ++in_flight_;
  routing::RetrievalFanout::start(pool_, protocol::memcache::command_name(request.command),
                                  request.exptime.in(frame), frame, keys, server_of_key_, *this,
                                  cookie, id_, max_line);
}

void MemcacheSession::dispatch_flush_all(const Request& request, const char* frame) {
  counters_.cmd_flush.add();
  if (!pool_.config().allow_flush) {
    counters_.flush_refused.add();
    if (!request.noreply) {
      reply_local("CLIENT_ERROR flush_all is disabled for pool '" + pool_.config().name +
                  "' (set allow_flush: true to enable it)\r\n");
    }
    return;
  }
  const std::string_view whole = forwarded_bytes(request, frame);
  std::string_view pieces[2] = {whole, {}};
  size_t count = 1;
  if (request.noreply) {
    const auto& t = request.noreply_token;
    const size_t at = t.offset - request.start;
    pieces[0] = whole.substr(0, at);
    pieces[1] = whole.substr(at + t.length);
    count = 2;
  }
  const uint32_t cookie = request.noreply ? kNoSlot : open_slot(SlotKind::kOther);
  ++in_flight_;
  routing::Broadcast::start(pool_, pieces, count, ReplyShape::kMcLine, *this, cookie, id_);
}

void MemcacheSession::answer_stats(const Request& request, const char* frame) {
  std::string out;
  if (!render_memcache_stats(worker_, request.argument.in(frame), out)) {
    reply_local(
        "CLIENT_ERROR unknown stats group; cachegate answers 'stats' and "
        "'stats servers'\r\n");
    return;
  }
  reply_local(out);
}

void MemcacheSession::forward(uint32_t server, const std::string_view* pieces, size_t count,
                              ReplyShape shape, bool noreply, SlotKind kind, uint32_t keys) {
  const uint32_t cookie = noreply ? kNoSlot : open_slot(kind, keys);
  ++in_flight_;
  pool_.server(server).send(pieces, count, shape, *this, cookie, id_);
}

// --- replies -----------------------------------------------------------------------------------

uint32_t MemcacheSession::open_slot(SlotKind kind, uint32_t keys) {
  if (next_seq_ - head_seq_ > slot_mask_) grow_slots();
  Slot& s = slot(next_seq_);
  s.ready = false;
  s.kind = kind;
  s.keys = keys;
  return next_seq_++ & kSeqMask;
}

void MemcacheSession::grow_slots() {
  std::vector<Slot> bigger(slots_.size() * 2);
  const uint32_t mask = static_cast<uint32_t>(bigger.size() - 1);
  for (uint32_t seq = head_seq_; seq != next_seq_; ++seq)
    bigger[seq & mask] = std::move(slots_[seq & slot_mask_]);
  slots_ = std::move(bigger);
  slot_mask_ = mask;
}

void MemcacheSession::reply_local(std::string_view bytes) {
  if (closed_) return;
  if (head_seq_ == next_seq_) {
    out_.append(bytes);
    worker_.loop().defer_flush(*this);
    return;
  }
  complete(open_slot(SlotKind::kOther), bytes);
}

void MemcacheSession::complete(uint32_t seq, std::string_view bytes) {
  if (closed_) return;
  // Cookies carry 31 bits of the sequence; rebuild the full value from the window.
  const uint32_t full = head_seq_ + ((seq - head_seq_) & kSeqMask);
  if (full != head_seq_) {
    Slot& s = slot(full);
    s.bytes.assign(bytes.data(), bytes.size());
    s.ready = true;
    held_ += bytes.size();
    enforce_output_limit();
    return;
  }
  out_.append(bytes);
  ++head_seq_;
  while (head_seq_ != next_seq_ && slot(head_seq_).ready) {
    Slot& s = slot(head_seq_);
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

void MemcacheSession::enforce_output_limit() {
  if (closed_ || out_.size() + held_ <= worker_.limits().client_output_hard_max) return;
  counters_.output_limit_closes.add();
  log(LogLevel::kDebug, "client ", id_, " holds more than client_output_hard_max of replies; ",
      "disconnecting it");
  close();
}

void MemcacheSession::charge(int64_t bytes) {
  if (closed_) return;
  held_ = static_cast<uint64_t>(static_cast<int64_t>(held_) + bytes);
  if (bytes > 0) enforce_output_limit();
}

void MemcacheSession::count_reply(const Slot& s, std::string_view reply) {
  if (s.kind != SlotKind::kRetrieval) return;
  if (reply.substr(0, 6) != "VALUE " && reply != "END\r\n") return;  // an error: no answer
  protocol::memcache::ValueItems items(reply);
  std::string_view key, item;
  uint32_t hits = 0;
  while (items.next(key, item))
    ++hits;
  counters_.get_hits.add(hits);
  counters_.get_misses.add(s.keys > hits ? s.keys - hits : 0);
}

void MemcacheSession::on_reply(uint32_t cookie, std::string_view reply, bool error) {
  --in_flight_;
  if (error) counters_.backend_errors.add();
  if (cookie & kNoSlot) {
    if (error) counters_.noreply_discarded_errors.add();
  } else if (!closed_) {
    count_reply(slot(head_seq_ + ((cookie - head_seq_) & kSeqMask)), reply);
    complete(cookie, reply);
  }
  maybe_resume();
  if (closing_ || peer_eof_) finish_if_done();
}

void MemcacheSession::on_failure(uint32_t cookie, routing::Failure failure) {
  --in_flight_;
  counters_.backend_failures.add();
  if (!(cookie & kNoSlot) && !closed_) {
    std::string text = "SERVER_ERROR ";
    text += routing::failure_text(failure);
    text += "\r\n";
    complete(cookie, text);
  }
  maybe_resume();
  if (closing_ || peer_eof_) finish_if_done();
}

// --- writing -----------------------------------------------------------------------------------

void MemcacheSession::flush_now() {
  if (closed_ || write_waiting_) return;
  while (!out_.empty()) {
    ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
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
  out_.shrink_if_idle(kIdleBufferKeep);
  if (closing_ && in_flight_ == 0 && head_seq_ == next_seq_) {
    close();
    return;
  }
  maybe_resume();
}

}  // namespace cachegate::proxy
