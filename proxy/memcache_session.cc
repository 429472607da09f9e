#include "proxy/memcache_session.h"

#include <algorithm>

#include <optional>

#include "protocol/base64.h"
#include "protocol/key_namespace.h"
#include "protocol/memcache_reply.h"
#include "proxy/counters.h"
#include "proxy/log.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "routing/fanout.h"
#include "routing/reply_judges.h"

namespace cachegate::proxy {

using protocol::ReplyShape;
using protocol::memcache::Command;
using protocol::memcache::ParseStatus;
using protocol::memcache::Request;

namespace {
constexpr std::string_view kMetaNoop = "mn\r\n";
constexpr std::string_view kMetaNoopReply = "MN\r\n";
constexpr std::string_view kOk = "OK\r\n";
constexpr std::string_view kNoLiveServer = "SERVER_ERROR no live backend in pool\r\n";
// The bytes a request is forwarded as: the frame from its command name on.
std::string_view forwarded_bytes(const Request& request, const char* frame) {
  return std::string_view(frame + request.start, request.frame_length - request.start);
}
}  // namespace

MemcacheSession::MemcacheSession(Worker& worker, Generation& generation,
                                 const Generation::Listener& listener, int fd, uint32_t id)
    : ClientSession(worker, generation, listener, fd, id),
      parser_(protocol::memcache::ParserLimits{worker.limits().request_line_max,
                                               worker.limits().item_size_max}) {}

size_t MemcacheSession::describe_request(char* out, size_t size) const {
  // The command line: command, key(s) and numbers. The data block (values, and the password of
  // the ASCII login) is not part of it.
  std::string_view line = current_line_;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
    line.remove_suffix(1);
  const size_t n = std::min(line.size(), size);
  line.copy(out, n);
  return n;
}

void MemcacheSession::process_input() {
  while (!closing_) {
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
    // Only a parsed request has a line to describe (a slot opened for an error has none).
    current_line_ = {};
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
      } else if (!authenticated()) {
        // memcached checks the login before it looks at the command.
        counters_.auth_denied.add();
        reply_local("CLIENT_ERROR unauthenticated\r\n");
      } else {
        reply_local(error.reply);
      }
      in_.consume(error.consumed < in_.size() ? error.consumed : in_.size());
      swallow_ = error.swallow;
      if (error.close) {
        in_.clear();
        close_when_done();
      }
      continue;
    }
    current_line_ =
        std::string_view(in_.data() + request.start, request.line_length - request.start);
    dispatch(request, in_.data());
    in_.consume(request.frame_length);
  }
  input_done();
}

std::string MemcacheSession::failure_reply(routing::Failure failure) {
  std::string text = "SERVER_ERROR ";
  text += routing::failure_text(failure);
  text += "\r\n";
  return text;
}

std::string_view MemcacheSession::on_slot_reply(const Slot& s, std::string_view reply, bool error) {
  const uint8_t kind = s.kind & kKindMask;
  const bool items = reply.substr(0, 6) == "VALUE ";
  if (kind == kRetrieval && (items || reply == "END\r\n")) {  // else an error: no answer
    protocol::memcache::ValueItems values(reply);
    std::string_view key, item;
    uint32_t hits = 0;
    while (values.next(key, item))
      ++hits;
    counters_.get_hits.add(hits);
    counters_.get_misses.add(s.keys > hits ? s.keys - hits : 0);
  }
  if (!(s.kind & kStripKeys) || s.user == nullptr || error) return reply;
  const std::string_view ns = s.user->key_namespace;
  reply_rewrite_.clear();
  if (kind == kRetrieval) {
    if (!items) return reply;
    protocol::memcache::strip_value_keys(reply, ns, reply_rewrite_);
  } else {
    protocol::memcache::strip_meta_keys(reply, ns, reply_rewrite_);
  }
  return reply_rewrite_;
}

void MemcacheSession::on_discarded_reply(bool error) {
  if (error) counters_.noreply_discarded_errors.add();
}

// --- dispatch ----------------------------------------------------------------------------------

// memcached's ASCII authentication (its -Y mode): until a login succeeds, the only request served
// is a `set` whose data is "username password"; it answers STORED, and everything else
// "CLIENT_ERROR unauthenticated", as memcached does.
void MemcacheSession::dispatch_login(const Request& request, const char* frame) {
  if (request.command != Command::kSet || !has_users()) {
    counters_.auth_denied.add();
    reply_local("CLIENT_ERROR unauthenticated\r\n");
    return;
  }
  // As memcached reads it: the first two space-separated words are the user and the password.
  std::string_view token(frame + request.line_length, static_cast<size_t>(request.data_length));
  std::string_view words[2];
  size_t found = 0;
  while (found < 2) {
    const size_t start = token.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    token.remove_prefix(start);
    const size_t end = token.find(' ');
    words[found++] = token.substr(0, end);
    token.remove_prefix(end == std::string_view::npos ? token.size() : end);
  }
  if (found < 2) {
    reply_local("CLIENT_ERROR bad authentication token format\r\n");
    return;
  }
  start_login(words[0], std::string(words[1]), [](LoginOutcome o) {
    switch (o) {
      case LoginOutcome::kOk:
        return std::string("STORED\r\n");
      case LoginOutcome::kRefused:
        return std::string("CLIENT_ERROR authentication failure\r\n");
      case LoginOutcome::kBlocked:
        break;
    }
    return std::string(
        "CLIENT_ERROR too many failed logins from this address; try again later\r\n");
  });
}

namespace {

// What a memcached request does, for route rules and users' permissions; nullopt for what
// cachegate answers itself.
std::optional<config::RouteOp> route_op(const Request& request, const char* frame) {
  if (request.command == Command::kMetaGet) {
    // mg with N (create on miss) or T (update the TTL) changes the item. Flags follow the key.
    const size_t flags_at = request.key.offset + request.key.length;
    const std::string_view line(frame + flags_at, request.line_length - flags_at);
    for (size_t i = line.find(' '); i != std::string_view::npos; i = line.find(' ', i + 1)) {
      const char flag = i + 1 < line.size() ? line[i + 1] : ' ';
      if (flag == 'N' || flag == 'T') return config::RouteOp::kWrite;
    }
  }
  return routing::memcache_route_op(request.command);
}

const routing::MemcacheJudge memcache_judge;

}  // namespace

const routing::ReplyJudge& MemcacheSession::judge() const {
  return memcache_judge;
}

bool MemcacheSession::permitted(const Request& request, const char* frame) {
  const auto op = route_op(request, frame);
  if (!op) return true;
  if (!may(config::op_class(*op))) return false;
  if (protocol::memcache::is_retrieval(request.command)) {
    for (const auto& key : parser_.keys())
      if (!key_allowed(key.in(frame))) return false;
    return true;
  }
  if (request.command == Command::kFlushAll) return true;
  return key_allowed(request.base64_key ? parser_.decoded_key() : request.key.in(frame));
}

void MemcacheSession::dispatch(const Request& request, const char* frame) {
  if (!authenticated()) return dispatch_login(request, frame);
  if (user_ != nullptr && !permitted(request, frame)) {
    // Nothing reaches a server. Like any error, it is not sent for a noreply request.
    counters_.permission_denied.add();
    if (!request.noreply) reply_local("CLIENT_ERROR permission denied\r\n");
    return;
  }
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
      const bool ns = !key_namespace().empty();
      if (ns && !namespace_key(request, frame)) return;
      const std::string_view key = ns ? std::string_view(ns_key_) : request.key.in(frame);
      const config::RouteOp op = *route_op(request, frame);
      // The server replies after all (noreply is taken off) and the reply is discarded, so the
      // connection's replies stay one per request.
      std::string_view pieces[4] = {whole};
      const size_t count =
          request.noreply || ns ? forwarded_pieces(request, frame, request.noreply, pieces) : 1;
      if (!send_to(route_of(key, op), key, pieces, count, ReplyShape::kMcLine, op, request.noreply,
                   kOther) &&
          !request.noreply)
        reply_local(kNoLiveServer);
      return;
    }

    case Command::kMetaGet:
    case Command::kMetaSet:
    case Command::kMetaDelete:
    case Command::kMetaArithmetic:
    case Command::kMetaDebug: {
      counters_.cmd_meta.add();
      const bool ns = !key_namespace().empty();
      if (ns && !namespace_key(request, frame)) return;
      const std::string_view key = ns                   ? std::string_view(ns_key_)
                                   : request.base64_key ? parser_.decoded_key()
                                                        : request.key.in(frame);
      const config::RouteOp op = *route_op(request, frame);
      // Replies echo the key (k flag, ME): the namespace comes off again.
      const uint8_t kind = ns ? kMeta | kStripKeys : kMeta;
      std::string_view pieces[5] = {whole};
      size_t count = ns ? forwarded_pieces(request, frame, false, pieces) : 1;
      // Quiet mode: the server may send nothing; the appended mn's MN marks the end.
      if (request.noreply) pieces[count++] = kMetaNoop;
      const ReplyShape shape = request.noreply ? ReplyShape::kMcMetaQuiet : ReplyShape::kMcMeta;
      if (!send_to(route_of(key, op), key, pieces, count, shape, op, false, kind))
        reply_local(kNoLiveServer);
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
      close_when_done();
      return;
  }
}

bool MemcacheSession::namespace_key(const Request& request, const char* frame) {
  const std::string_view ns = key_namespace();
  ns_key_.assign(ns);
  ns_key_.append(request.base64_key ? parser_.decoded_key() : request.key.in(frame));
  size_t length = ns_key_.size();
  if (request.base64_key) {
    ns_encoded_.clear();
    protocol::base64_encode(ns_key_, ns_encoded_);
    length = ns_encoded_.size();
  }
  // memcached's limits are on the key and the line as sent to it, namespace included.
  const size_t line = request.line_length - request.start + (length - request.key.length);
  std::string_view refusal;
  if (length > protocol::memcache::kMaxKeyLength) {
    refusal = protocol::memcache::reply::kKeyTooLong;
  } else if (line > protocol::memcache::kMaxServerLine) {
    refusal = protocol::memcache::reply::kLineTooLong;
  } else {
    return true;
  }
  counters_.client_errors.add();
  if (!request.noreply) reply_local(refusal);
  return false;
}

size_t MemcacheSession::forwarded_pieces(const Request& request, const char* frame,
                                         bool drop_noreply, std::string_view* pieces) const {
  const std::string_view whole = forwarded_bytes(request, frame);
  const std::string_view ns = key_namespace();
  size_t count = 0;
  size_t at = 0;  // how much of `whole` is in pieces already
  if (!ns.empty()) {
    const size_t key_at = request.key.offset - request.start;
    pieces[count++] = whole.substr(0, key_at);
    if (request.base64_key) {
      pieces[count++] = ns_encoded_;
      at = key_at + request.key.length;
    } else {
      pieces[count++] = ns;
      at = key_at;
    }
  }
  if (drop_noreply) {
    const auto& t = request.noreply_token;
    const size_t token_at = t.offset - request.start;
    pieces[count++] = whole.substr(at, token_at - at);
    at = token_at + t.length;
  }
  pieces[count++] = whole.substr(at);
  return count;
}

void MemcacheSession::dispatch_retrieval(const Request& original, const char* original_frame) {
  const Request* rewritten = &original;
  const char* frame = original_frame;
  Request namespaced;
  if (const std::string_view ns = key_namespace(); !ns.empty()) {
    // The line again, the namespace in front of every key; parsed like any line, which also
    // checks the longer keys against memcached's limit.
    ns_line_.assign(protocol::memcache::command_name(original.command));
    if (original.command == Command::kGat || original.command == Command::kGats) {
      ns_line_.push_back(' ');
      ns_line_.append(original.exptime.in(original_frame));
    }
    for (const auto& key : parser_.keys()) {
      ns_line_.push_back(' ');
      ns_line_.append(ns);
      ns_line_.append(key.in(original_frame));
    }
    ns_line_.append("\r\n");
    if (parser_.parse(ns_line_.data(), ns_line_.size(), namespaced) != ParseStatus::kOk) {
      counters_.client_errors.add();
      reply_local(parser_.error().reply);
      return;
    }
    rewritten = &namespaced;
    frame = ns_line_.data();
  }
  const Request& request = *rewritten;
  const uint8_t strip = rewritten != &original ? kStripKeys : 0;
  const auto& keys = parser_.keys();
  counters_.cmd_get.add(keys.size());
  const std::string_view whole = forwarded_bytes(request, frame);
  // Keys by server; on a routed listener, by target (routing::PartRouter): the server of a plain
  // pool rule's pool, or each key on its own through any other rule.
  const config::RouteOp op = *route_op(request, frame);
  const bool routes = routed();
  if (routes) clear_part_targets();
  server_of_key_.resize(keys.size());
  if (!routes) pool_->count(op, keys.size());
  bool one_server = true;
  for (size_t i = 0; i < keys.size(); ++i) {
    server_of_key_[i] =
        routes ? part_target(keys[i].in(frame), op) : pool_->server_for(keys[i].in(frame));
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
  const uint8_t kind = kRetrieval | strip;
  if (one_server && (max_line == 0 || forwarded_line <= max_line)) {
    uint32_t server = server_of_key_[0];
    routing::Pool* pool = routes ? part_pool(server_of_key_[0], server) : pool_;
    if (pool != nullptr) {
      forward(*pool, server, &whole, 1, ReplyShape::kMcRetrieval, false, kind,
              static_cast<uint32_t>(keys.size()));
    } else {
      // One key through a rule.
      send_to(part_route(server_of_key_[0]), keys[0].in(frame), &whole, 1, ReplyShape::kMcRetrieval,
              op, false, kind, 1);
    }
    return;
  }
  if (!one_server) counters_.multiget_fanouts.add();
  const uint32_t cookie = open_slot(kind, static_cast<uint32_t>(keys.size()));
  count_in_flight();
  routing::PartRouter& router = routes ? static_cast<routing::PartRouter&>(*this) : *pool_;
  routing::RetrievalFanout::start(router, protocol::memcache::command_name(request.command),
                                  request.exptime.in(frame), frame, keys, server_of_key_, *this,
                                  cookie, id(), max_line);
}

void MemcacheSession::dispatch_flush_all(const Request& request, const char* frame) {
  counters_.cmd_flush.add();
  if (!key_namespace().empty()) {
    // It would flush every tenant's keys, not just this user's.
    counters_.flush_refused.add();
    if (!request.noreply) {
      reply_local(
          "CLIENT_ERROR flush_all is not available to a user with a namespace: it would flush "
          "every namespace's keys\r\n");
    }
    return;
  }
  const auto& pools = flush_pools();
  for (const routing::Pool* pool : pools) {
    if (pool->config().allow_flush) continue;
    counters_.flush_refused.add();
    if (!request.noreply) {
      reply_local("CLIENT_ERROR flush_all is disabled for pool '" + pool->config().name +
                  "' (set allow_flush: true to enable it)\r\n");
    }
    return;
  }
  // A server known to be down would leave the flush half done: refuse before sending any part.
  for (routing::Pool* pool : pools) {
    for (uint32_t s = 0; s < pool->size(); ++s) {
      if (!pool->server(s).available()) {
        if (!request.noreply) reply_local(failure_reply(routing::Failure::kUnavailable));
        return;
      }
    }
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
  const uint32_t cookie = request.noreply ? kNoSlot : open_slot(kOther);
  count_in_flight();
  routing::Broadcast::start(pools.data(), pools.size(), pieces, count, ReplyShape::kMcLine, *this,
                            cookie, id());
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

}  // namespace cachegate::proxy
