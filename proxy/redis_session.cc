#include "proxy/redis_session.h"

#include <algorithm>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "cachegate/version.h"
#include "protocol/ascii.h"
#include "protocol/key_namespace.h"
#include "proxy/counters.h"
#include "proxy/log.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "routing/reply_judges.h"
#include "routing/resp_fanout.h"

namespace cachegate::proxy {

namespace resp = protocol::resp;
namespace redis = protocol::redis;
using protocol::iequals;
using protocol::upper;
using routing::RedisPolicy;
using routing::RedisRoute;

namespace {

bool parse_int(std::string_view s, int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

constexpr std::string_view kCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot";

// XREAD [COUNT n] [BLOCK ms] STREAMS …, XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK]
// STREAMS …: the position of BLOCK's argument, or 0 without one (a key or group named "block"
// is not one).
size_t xread_block_index(const std::string_view* args, size_t argc, bool group) {
  for (size_t i = group ? 4 : 1; i < argc && !iequals(args[i], "streams");) {
    if (iequals(args[i], "block")) return i + 1 < argc ? i + 1 : 0;
    i += iequals(args[i], "count") ? 2 : 1;
  }
  return 0;
}

const routing::RedisJudge redis_judge;

uint32_t first_live_server(const routing::Pool& pool) {
  for (uint32_t s = 0; s < pool.size(); ++s)
    if (pool.is_live(s)) return s;
  return routing::Distribution::kNoServer;
}

}  // namespace

RedisSession::RedisSession(Worker& worker, Generation& generation,
                           const Generation::Listener& listener, int fd, uint32_t id)
    : ClientSession(worker, generation, listener, fd, id),
      parser_(resp::RequestLimits{1024 * 1024, worker.limits().request_size_max, 64 * 1024}) {}

// --- input -------------------------------------------------------------------------------------

void RedisSession::process_input() {
  while (!closing_) {
    if (!can_take_more()) {
      pause_reading();
      return;
    }
    if (in_.empty() || needed_ > in_.size()) break;
    // Only a dispatched request has arguments to describe (a slot opened for an error has none).
    argc_ = 0;
    key_index_.clear();
    resp::Request request;
    const auto status = parser_.parse(in_.data(), in_.size(), request);
    if (status == resp::ParseStatus::kNeedMore) {
      needed_ = parser_.needed();
      break;
    }
    needed_ = 0;
    if (status == resp::ParseStatus::kInvalid) {
      // Framing is lost: answer as redis does, then close.
      counters_.client_errors.add();
      reply_error(std::string("ERR ") + std::string(parser_.error()));
      in_.clear();
      close_when_done();
      break;
    }
    if (!request.empty()) dispatch(request, in_.data());
    if (retry_request_) {
      retry_request_ = false;  // dispatched again once earlier requests are answered
      continue;
    }
    in_.consume(request.length);
  }
  input_done();
}

size_t RedisSession::describe_request(char* out, size_t size) const {
  // The command and its first key: never other arguments (values, AUTH's password).
  if (argc_ == 0) return 0;
  std::string text(args_[0].substr(0, size));
  if (!key_index_.empty() && key_index_[0] < argc_) {
    text.push_back(' ');
    text.append(args_[key_index_[0]]);
  }
  const size_t n = std::min(text.size(), size);
  text.copy(out, n);
  return n;
}

void RedisSession::dispatch(const resp::Request& request, const char* bytes) {
  const auto& args = parser_.args();
  args_ = args.data();
  argc_ = args.size();
  key_index_.clear();  // the previous request's
  if (request.is_inline) {
    // Servers are sent multibulk: the inline form's quoting rules are redis-cli's business.
    inline_rewrite_.clear();
    resp::append_command(inline_rewrite_, args_, argc_);
    request_bytes_ = inline_rewrite_;
  } else {
    request_bytes_ = std::string_view(bytes, request.length);
  }
  counters_.redis_commands.add();

  // CLIENT SETINFO (redis 7.2) is newer than the command table; clients send it when they
  // connect and only need it accepted.
  if (argc_ >= 2 && iequals(args_[0], "client") && iequals(args_[1], "setinfo")) {
    if (argc_ != 4)
      return reply_error("ERR wrong number of arguments for 'client|setinfo' command");
    if (iequals(args_[2], "lib-name")) {
      lib_name_.assign(args_[3]);
    } else if (iequals(args_[2], "lib-ver")) {
      lib_version_.assign(args_[3]);
    } else {
      return reply_error("ERR Unrecognized option '" + std::string(args_[2]) + "'");
    }
    return reply_local("+OK\r\n");
  }

  const redis::Resolved resolved = redis::resolve(args_, argc_);
  if (resolved.status != redis::Dispatch::kOk) {
    counters_.client_errors.add();
    return reply_error(redis::dispatch_error(resolved, args_, argc_));
  }
  const redis::CommandInfo& command = *resolved.command;
  // As redis-server with a password: unknown commands and wrong arity are reported first, then
  // everything but AUTH, HELLO, QUIT and RESET waits for a login.
  if (!authenticated() && !command.has(redis::CommandFlag::kNoAuth)) {
    counters_.auth_denied.add();
    return reply_error("NOAUTH Authentication required.");
  }
  if (command.name == "acl|whoami") {
    scratch_.clear();
    resp::append_bulk(scratch_, user_ != nullptr ? std::string_view(user_->name) : "default");
    return reply_local(scratch_);
  }
  RedisPolicy policy = routing::redis_policy(command);
  // XREAD and XREADGROUP block only when asked to (BLOCK); otherwise they are plain reads.
  if (policy.route == RedisRoute::kBlocking &&
      (command.name == "xread" || command.name == "xreadgroup")) {
    if (xread_block_index(args_, argc_, command.name == "xreadgroup") == 0)
      policy = routing::routed(RedisRoute::kKeyed);
  }
  // Keys are found once, for the permission check and the routing. None when the command names
  // none (EVAL with numkeys 0) or names them wrongly (a bad numkeys): one server then decides,
  // and answers the error itself when there is one.
  key_index_.clear();
  if ((policy.route == RedisRoute::kKeyed || policy.route == RedisRoute::kSplit ||
       policy.route == RedisRoute::kTransaction || policy.route == RedisRoute::kBlocking) &&
      !redis::key_positions(command, args_, argc_, key_index_))
    key_index_.clear();
  reply_keys_ = 0;
  patterns_.clear();
  op_ = routing::redis_route_op(command, policy);
  if (user_ != nullptr && policy.route != RedisRoute::kLocal &&
      policy.route != RedisRoute::kUnsupported &&
      (!permitted(command) || (!key_namespace().empty() && !apply_namespace(command, policy))))
    return;
  // KEYS and SCAN on a routed listener reach the rule an empty key matches; its key rewrite
  // applies to their patterns and, undone, to the keys they return.
  listing_rule_ = nullptr;
  if (routed() && (command.name == "keys" || policy.route == RedisRoute::kScan))
    rewrite_patterns(command.name == "keys");
  if (routed() && command.name == "randomkey") {
    const routing::RouteRule* rule = route_of("", op_).rule;
    if (rule != nullptr &&
        (!rule->config->strip_prefix.empty() || !rule->config->add_prefix.empty()))
      return reply_error(
          "ERR RANDOMKEY is not supported through a rule that rewrites keys: it could return a "
          "key the rule does not cover");
  }
  // RESP2 subscribe mode, as redis-server has it.
  if (protocol_ < 3 && policy.route != RedisRoute::kSubscribe && command.name != "ping" &&
      command.name != "quit" && command.name != "reset" && subscriptions() > 0)
    return reply_error("ERR Can't execute '" + std::string(command.name) +
                       "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                       "allowed in this context");
  if (transaction_ == Transaction::kQueuing || transaction_ == Transaction::kAborted)
    return queue_in_transaction(command, policy);
  switch (policy.route) {
    case RedisRoute::kBlocking:
      return route_blocking(command);
    case RedisRoute::kSubscribe:
      return route_subscribe(command);
    case RedisRoute::kPublish:
      return route_publish();
    case RedisRoute::kWait:
      return route_wait();
    case RedisRoute::kTransaction:
      return route_transaction(command);
    case RedisRoute::kLocal:
      return answer_local(command);
    case RedisRoute::kKeyed:
      return route_keyed(command);
    case RedisRoute::kSplit:
      return route_split(command, policy);
    case RedisRoute::kAllServers:
      return route_all(command, policy);
    case RedisRoute::kOneServer: {
      routing::Pool& pool = *route_of("", op_).pool;
      const uint32_t server = first_live_server(pool);
      if (server == routing::Distribution::kNoServer) return reply_error(failure_reply_text());
      return forward_to(pool, server);
    }
    case RedisRoute::kScan:
      return route_scan();
    case RedisRoute::kUnsupported:
      counters_.redis_unsupported.add();
      return reply_error("ERR command '" + std::string(command.name) +
                         "' is not supported by cachegate: " + std::string(policy.why));
  }
}

// The logged-in user's operation classes (routing::redis_route_op says which a command is) and
// key patterns.
bool RedisSession::permitted(const redis::CommandInfo& command) {
  const config::OpClass op = config::op_class(op_);
  if (!may(op)) {
    counters_.permission_denied.add();
    std::string name(command.name);
    reply_error("NOPERM this user has no permissions to run the '" + name + "' command");
    return false;
  }
  if (op == config::OpClass::kAdmin) return true;
  for (uint32_t k : key_index_) {
    if (!key_allowed(args_[k])) {
      counters_.permission_denied.add();
      reply_error(
          "NOPERM this user has no permissions to access one of the keys used as arguments");
      return false;
    }
  }
  return true;
}

// --- namespaces --------------------------------------------------------------------------------

// Everything a namespaced user's request reaches must be a key the prefix can go in front of, or
// a pattern it can go in front of. Commands that reach keys some other way would cross into
// other namespaces: they are refused.
bool RedisSession::apply_namespace(const redis::CommandInfo& command, const RedisPolicy& policy) {
  using resp::KeyReply;
  const std::string_view ns = key_namespace();
  const std::string_view name = command.name;
  const bool keys_route = policy.route == RedisRoute::kKeyed ||
                          policy.route == RedisRoute::kSplit ||
                          policy.route == RedisRoute::kBlocking ||
                          (policy.route == RedisRoute::kTransaction && name == "watch");
  std::string_view why;
  if (policy.flush) {
    why = "it would remove every namespace's keys";
  } else if (name == "randomkey" || name == "dbsize") {
    why = "it would see every namespace's keys";
  } else if (command.has(redis::CommandFlag::kAdmin) ||
             (policy.route == RedisRoute::kAllServers && name != "keys")) {
    // CONFIG SET can evict or lock out every namespace, INFO counts every namespace's keys.
    why = "it reaches the servers beyond the namespace";
  } else if (command.in_category(redis::AclCategory::kScripting)) {
    why = "a script can reach keys outside the namespace";
  } else if (keys_route && key_index_.empty()) {
    why = "its keys cannot be found in the request";
  }
  if (!why.empty()) {
    counters_.permission_denied.add();
    reply_error("NOPERM '" + std::string(name) +
                "' is not available to a user with a namespace: " + std::string(why));
    return false;
  }
  const bool scan = policy.route == RedisRoute::kScan;
  const bool keys = name == "keys";
  if (!keys_route && !scan && !keys) return true;

  // The arguments again, with the namespace in front of each key, and escaped in front of KEYS
  // and SCAN patterns. The bytes are reserved first so the views into them stay valid.
  size_t bytes = 0;
  for (uint32_t k : key_index_)
    bytes += ns.size() + args_[k].size();
  ns_bytes_.clear();
  ns_bytes_.reserve(bytes);
  ns_args_.assign(args_, args_ + argc_);
  for (uint32_t k : key_index_) {
    const size_t at = ns_bytes_.size();
    ns_bytes_.append(ns);
    ns_bytes_.append(args_[k]);
    ns_args_[k] = std::string_view(ns_bytes_.data() + at, ns_bytes_.size() - at);
  }
  if (keys || scan) {
    std::string escaped;
    protocol::append_glob_escaped(ns, escaped);
    rewrite_listing_patterns(keys, [&](std::string_view pattern) {
      return routing::rewritten_key(pattern, {}, escaped);
    });
    reply_keys_ = static_cast<uint8_t>(keys ? KeyReply::kKeyList : KeyReply::kScan);
  } else if (name == "lmpop" || name == "zmpop" || name == "blpop" || name == "brpop" ||
             name == "blmpop" || name == "bzmpop" || name == "bzpopmin" || name == "bzpopmax") {
    reply_keys_ = static_cast<uint8_t>(KeyReply::kKeyFirst);
  } else if (name == "xread" || name == "xreadgroup") {
    reply_keys_ = static_cast<uint8_t>(KeyReply::kStreams);
  }
  use_rewritten_args();
  return true;
}

template <class Rewrite>
void RedisSession::rewrite_listing_patterns(bool keys, const Rewrite& rewrite) {
  // Reserved once per request for both rewrites (namespace, route), so views stay valid.
  if (patterns_.empty()) patterns_.reserve(2 * ns_args_.size() + 4);
  if (keys) {
    patterns_.push_back(rewrite(ns_args_[1]));
    ns_args_[1] = patterns_.back();
    return;
  }
  // SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: without MATCH, one confining the scan.
  bool matched = false;
  for (size_t i = 2; i + 1 < ns_args_.size(); i += 2) {
    if (!iequals(ns_args_[i], "match")) continue;
    patterns_.push_back(rewrite(ns_args_[i + 1]));
    ns_args_[i + 1] = patterns_.back();
    matched = true;
  }
  if (!matched) {
    patterns_.push_back(rewrite("*"));
    ns_args_.push_back("MATCH");
    ns_args_.push_back(patterns_.back());
  }
}

void RedisSession::use_rewritten_args() {
  args_ = ns_args_.data();
  argc_ = ns_args_.size();
  inline_rewrite_.clear();
  resp::append_command(inline_rewrite_, args_, argc_);
  request_bytes_ = inline_rewrite_;
}

const routing::ReplyJudge& RedisSession::judge() const {
  return redis_judge;
}

std::string_view RedisSession::on_slot_reply(const Slot& s, std::string_view reply, bool error) {
  if (s.kind == 0 || error) return reply;
  const auto kind = static_cast<resp::KeyReply>(s.kind);
  // A route rule's rewrite first (add_prefix back to strip_prefix), then the user's namespace.
  if (s.rule != nullptr) {
    const auto& c = *s.rule->config;
    rule_rewrite_.clear();
    if (protocol::resp::strip_reply_keys(reply, kind, c.add_prefix, rule_rewrite_, c.strip_prefix))
      reply = rule_rewrite_;
  }
  if (s.user == nullptr || s.user->key_namespace.empty()) return reply;
  reply_rewrite_.clear();
  if (!protocol::resp::strip_reply_keys(reply, kind, s.user->key_namespace, reply_rewrite_))
    return reply;
  return reply_rewrite_;
}

void RedisSession::rewrite_patterns(bool keys) {
  routing::RouteRule* rule = route_of("", op_).rule;
  if (rule == nullptr) return;
  const auto& c = *rule->config;
  if (c.strip_prefix.empty() && c.add_prefix.empty()) return;
  // The same change a key gets, on a glob: the rule's prefixes escaped.
  std::string strip, add;
  protocol::append_glob_escaped(c.strip_prefix, strip);
  protocol::append_glob_escaped(c.add_prefix, add);
  if (args_ != ns_args_.data()) ns_args_.assign(args_, args_ + argc_);
  rewrite_listing_patterns(
      keys, [&](std::string_view pattern) { return routing::rewritten_key(pattern, strip, add); });
  use_rewritten_args();
  listing_rule_ = rule;
  reply_keys_ = static_cast<uint8_t>(keys ? resp::KeyReply::kKeyList : resp::KeyReply::kScan);
}

// --- routing -----------------------------------------------------------------------------------

void RedisSession::forward_to(routing::Pool& pool, uint32_t server) {
  forward(pool, server, &request_bytes_, 1, shape(), false, reply_keys_);
}

void RedisSession::route_keyed(const redis::CommandInfo& command) {
  if (key_index_.empty()) {
    if (!send_to(route_of("", op_), "", &request_bytes_, 1, shape(), op_, false, reply_keys_))
      reply_error(failure_reply_text());
    return;
  }
  // SORT's BY and GET patterns name keys only known at run time, from the sorted values; on a
  // pool they would silently read another server's empty keyspace.
  if (command.name == "sort" || command.name == "sort_ro") {
    for (size_t i = 2; i + 1 < argc_; ++i) {
      if ((iequals(args_[i], "by") && args_[i + 1].find('*') != std::string_view::npos) ||
          (iequals(args_[i], "get") && args_[i + 1] != "#")) {
        return reply_error(
            "ERR SORT with BY or GET patterns is not supported by cachegate: the keys they "
            "read may live on other servers");
      }
    }
  }
  // COPY … DB n writes into another database of the server, which may be another pool's.
  if (command.name == "copy") {
    for (size_t i = 3; i < argc_; ++i)
      if (iequals(args_[i], "db"))
        return reply_error(
            "ERR COPY with DB is not supported by cachegate: each pool is one database");
  }
  const std::string_view first = args_[key_index_[0]];
  const Target target = route_of(first, op_);
  if (key_index_.size() > 1) {
    // Every key must take the same route, and be on one server in each pool it reaches.
    for (size_t i = 1; i < key_index_.size(); ++i) {
      const Target t = route_of(args_[key_index_[i]], op_);
      if (t.pool != target.pool || t.rule != target.rule) {
        counters_.redis_crossslot.add();
        return reply_error(kCrossSlot);
      }
    }
    // Keys as the pools get them: a rule's rewrite changes where they hash.
    const config::RouteRule* rule = target.rule != nullptr ? target.rule->config : nullptr;
    const bool rewrites =
        rule != nullptr && (!rule->strip_prefix.empty() || !rule->add_prefix.empty());
    std::string rewritten;
    auto stored = [&](std::string_view key) -> std::string_view {
      if (!rewrites) return key;
      rewritten = routing::rewritten_key(key, rule->strip_prefix, rule->add_prefix);
      return rewritten;
    };
    const size_t pools = target.rule != nullptr ? target.rule->pools.size() : 1;
    for (size_t p = 0; p < pools; ++p) {
      routing::Pool& pool = target.rule != nullptr ? *target.rule->pools[p] : *target.pool;
      const uint32_t server = pool.server_for(stored(first));
      for (size_t i = 1; i < key_index_.size(); ++i) {
        const uint32_t s = pool.server_for(stored(args_[key_index_[i]]));
        if (s == routing::Distribution::kNoServer || server == routing::Distribution::kNoServer)
          continue;
        if (s != server) {
          counters_.redis_crossslot.add();
          return reply_error(kCrossSlot);
        }
      }
    }
  }
  if (!send_to(target, first, &request_bytes_, 1, shape(), op_, false, reply_keys_))
    reply_error(failure_reply_text());
}

void RedisSession::route_split(const redis::CommandInfo& command, const RedisPolicy& policy) {
  if (key_index_.empty()) return route_keyed(command);
  // Keys by server; on a routed listener, by target (routing::PartRouter): the server of a plain
  // pool rule's pool, or each key on its own through any other rule.
  const bool routes = routed();
  if (routes) clear_part_targets();
  server_of_key_.resize(key_index_.size());
  if (!routes) pool_->count(op_, key_index_.size());
  bool one_server = true;
  for (size_t i = 0; i < key_index_.size(); ++i) {
    const std::string_view key = args_[key_index_[i]];
    server_of_key_[i] = routes ? part_target(key, op_) : pool_->server_for(key);
    if (server_of_key_[i] == routing::Distribution::kNoServer)
      return reply_error(failure_reply_text());
    one_server = one_server && server_of_key_[i] == server_of_key_[0];
  }
  if (one_server) {
    uint32_t server = server_of_key_[0];
    routing::Pool* pool = routes ? part_pool(server_of_key_[0], server) : pool_;
    if (pool != nullptr) return forward_to(*pool, server);
    // One key through a rule.
    const std::string_view key = args_[key_index_[0]];
    send_to(part_route(server_of_key_[0]), key, &request_bytes_, 1, shape(), op_, false,
            reply_keys_);
    return;
  }
  // A server known to be down would leave the request half done: refuse before sending any
  // part (parts through other rules fail or fail over there).
  for (uint32_t target : server_of_key_) {
    uint32_t server = target;
    routing::Pool* pool = routes ? part_pool(target, server) : pool_;
    if (pool != nullptr && !pool->server(server).available())
      return reply_local(failure_reply(routing::Failure::kUnavailable));
  }
  counters_.multiget_fanouts.add();
  const uint32_t cookie = open_slot();
  count_in_flight();
  routing::PartRouter& router = routes ? static_cast<routing::PartRouter&>(*this) : *pool_;
  routing::RespFanout::start_keyed(router, args_, argc_, key_index_, server_of_key_,
                                   command.name == "mset", policy.merge, shape(), *this, cookie,
                                   id());
}

void RedisSession::route_all(const redis::CommandInfo& command, const RedisPolicy& policy) {
  // On a routed listener: the first pool of the rule a keyless request matches; a flush reaches
  // every pool of that rule.
  routing::Pool* const first[1] = {route_of("", op_).pool};
  const std::vector<routing::Pool*>* all = policy.flush ? &flush_pools() : nullptr;
  routing::Pool* const* pools = all != nullptr ? all->data() : first;
  const size_t count = all != nullptr ? all->size() : 1;
  for (size_t p = 0; p < count; ++p) {
    if (policy.flush && !pools[p]->config().allow_flush) {
      counters_.flush_refused.add();
      return reply_error("ERR " + upper(command.name) + " is disabled for pool '" +
                         pools[p]->config().name + "' (set allow_flush: true to enable it)");
    }
    for (uint32_t s = 0; s < pools[p]->size(); ++s)
      if (!pools[p]->server(s).available())
        return reply_local(failure_reply(routing::Failure::kUnavailable));
  }
  const uint32_t cookie = open_slot(reply_keys_, 0, listing_rule_);
  count_in_flight();
  const std::string prefix = policy.merge == routing::RespMerge::kInfo ? info_section() : "";
  routing::RespFanout::start_pools(pools, count, request_bytes_, policy.merge, shape(), protocol_,
                                   prefix, *this, cookie, id());
}

void RedisSession::route_scan() {
  routing::Pool& pool = *route_of("", op_).pool;
  routing::ScanCursor cursor;
  if (!routing::decode_scan_cursor(args_[1], pool.size(), cursor))
    return reply_error("ERR invalid cursor");
  if (!pool.is_live(cursor.server)) return reply_error(failure_reply_text());
  const uint32_t cookie = open_slot(reply_keys_, 0, listing_rule_);
  count_in_flight();
  routing::ScanRequest::start(pool, cursor, args_ + 2, argc_ - 2, shape(), *this, cookie, id());
}

// --- answered here -----------------------------------------------------------------------------

void RedisSession::reply_error(std::string_view text) {
  // A command refused after MULTI fails the transaction, as in Redis.
  if (transaction_ == Transaction::kQueuing) transaction_ = Transaction::kAborted;
  scratch_.clear();
  resp::append_error(scratch_, text);
  reply_local(scratch_);
}

std::string RedisSession::failure_reply(routing::Failure failure) {
  std::string out;
  resp::append_error(out, "ERR cachegate: " + std::string(routing::failure_text(failure)));
  return out;
}

std::string RedisSession::failure_reply_text() const {
  return "ERR cachegate: " + std::string(routing::failure_text(routing::Failure::kNoServer));
}

uint64_t RedisSession::client_id() const {
  // Unique in the process: sessions are numbered per worker.
  return static_cast<uint64_t>(id()) * worker_.config().workers + worker_.index() + 1;
}

void RedisSession::answer_local(const redis::CommandInfo& command) {
  const std::string_view name = command.name;
  scratch_.clear();
  if (name == "ping") {
    if (argc_ > 2) return reply_error(redis::wrong_arity_error(command));
    if (protocol_ < 3 && subscriptions() > 0) {
      // In RESP2 subscribe mode PING answers with an array, like a message.
      resp::append_array(scratch_, 2);
      resp::append_bulk(scratch_, "pong");
      resp::append_bulk(scratch_, argc_ == 2 ? args_[1] : std::string_view());
      return reply_local(scratch_);
    }
    if (argc_ == 1) return reply_local("+PONG\r\n");
    resp::append_bulk(scratch_, args_[1]);
    return reply_local(scratch_);
  }
  if (name == "echo") {
    resp::append_bulk(scratch_, args_[1]);
    return reply_local(scratch_);
  }
  if (name == "quit") {
    reply_local("+OK\r\n");
    return close_when_done();
  }
  if (name == "reset") {
    transaction_ = Transaction::kNone;
    unpin(false);
    unsubscribe_all();
    protocol_ = 2;
    name_.clear();
    // Back to the default user: logged out where the listener requires a login.
    user_ = nullptr;
    if (listener_.config != nullptr && listener_.config->auth == config::ListenerAuth::kRequired)
      log_out();
    return reply_local("+RESET\r\n");
  }
  if (name == "hello" && pinned_)
    return reply_error(
        "ERR HELLO is not supported by cachegate while WATCH holds a server connection");
  if (name == "hello") return answer_hello();
  if (name == "auth") return answer_auth();
  if (name == "select") return answer_select();
  if (name.substr(0, 7) == "command") return answer_command();
  if (name.substr(0, 6) == "client") return answer_client(command);
  reply_error("ERR command '" + std::string(name) + "' is not supported by cachegate");
}

namespace {

std::string login_reply(RedisSession::LoginOutcome outcome, std::string ok) {
  switch (outcome) {
    case RedisSession::LoginOutcome::kOk:
      return ok;
    case RedisSession::LoginOutcome::kRefused:
      return "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    case RedisSession::LoginOutcome::kBlocked:
      break;
  }
  return "-ERR cachegate: too many failed logins from this address; try again later\r\n";
}

}  // namespace

// With users configured, AUTH [user] password logs in ("default" when no user is named). Without
// any, cachegate behaves as a redis whose default user has no password: AUTH with a password is
// a configuration mistake, the default user's AUTH succeeds.
void RedisSession::answer_auth() {
  if (has_users()) {
    if (argc_ > 3) return reply_error("ERR syntax error");
    const std::string_view name = argc_ == 2 ? std::string_view("default") : args_[1];
    const std::string_view password = argc_ == 2 ? args_[1] : args_[2];
    return start_login(name, std::string(password),
                       [](LoginOutcome o) { return login_reply(o, "+OK\r\n"); });
  }
  if (argc_ == 2) {
    return reply_error(
        "ERR AUTH <password> called without any password configured for the default user. Are "
        "you sure your configuration is correct?");
  }
  if (argc_ == 3 && args_[1] == "default") return reply_local("+OK\r\n");
  reply_error("WRONGPASS invalid username-password pair or user is disabled.");
}

void RedisSession::answer_hello() {
  int version = protocol_;
  size_t i = 1;
  if (argc_ >= 2) {
    int64_t v;
    if (!parse_int(args_[1], v) || v < 0 || v > INT32_MAX)
      return reply_error("ERR Protocol version is not an integer or out of range");
    if (v != 2 && v != 3) return reply_error("NOPROTO unsupported protocol version");
    version = static_cast<int>(v);
    i = 2;
  }
  std::string new_name = name_;
  std::string_view login_name, login_password;
  bool login = false;
  for (; i < argc_; ++i) {
    if (iequals(args_[i], "auth") && i + 2 < argc_) {
      login = true;
      login_name = args_[i + 1];
      login_password = args_[i + 2];
      i += 2;
    } else if (iequals(args_[i], "setname") && i + 1 < argc_) {
      new_name.assign(args_[++i]);
    } else {
      return reply_error("ERR Syntax error in HELLO option '" + std::string(args_[i]) + "'");
    }
  }
  if (login && has_users()) {
    // The protocol and name change only if the login succeeds.
    return start_login(login_name, std::string(login_password),
                       [this, version, new_name = std::move(new_name)](LoginOutcome o) mutable {
                         if (o != LoginOutcome::kOk) return login_reply(o, {});
                         protocol_ = version;
                         name_ = std::move(new_name);
                         return hello_reply();
                       });
  }
  if (login && login_name != "default")
    return reply_error("WRONGPASS invalid username-password pair or user is disabled.");
  if (!authenticated()) {
    counters_.auth_denied.add();
    return reply_error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
        "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
        "protocol version at the same time");
  }
  protocol_ = version;
  name_ = std::move(new_name);
  reply_local(hello_reply());
}

std::string RedisSession::hello_reply() {
  scratch_.clear();
  resp::append_map(scratch_, 7, protocol_);
  resp::append_bulk(scratch_, "server");
  resp::append_bulk(scratch_, "redis");
  resp::append_bulk(scratch_, "version");
  resp::append_bulk(scratch_, redis::table_redis_version());
  resp::append_bulk(scratch_, "proto");
  resp::append_integer(scratch_, protocol_);
  resp::append_bulk(scratch_, "id");
  resp::append_integer(scratch_, static_cast<int64_t>(client_id()));
  resp::append_bulk(scratch_, "mode");
  resp::append_bulk(scratch_, "standalone");
  resp::append_bulk(scratch_, "role");
  resp::append_bulk(scratch_, "master");
  resp::append_bulk(scratch_, "modules");
  resp::append_array(scratch_, 0);
  return scratch_;
}

// A pool is one database to its clients: db 0, which is the servers' redis_db.
void RedisSession::answer_select() {
  int64_t db;
  if (!parse_int(args_[1], db)) return reply_error("ERR value is not an integer or out of range");
  if (db == 0 || db == static_cast<int64_t>(pool_->config().redis_db))
    return reply_local("+OK\r\n");
  reply_error(
      "ERR DB index is out of range (cachegate serves each pool as one database: "
      "SELECT 0)");
}

void RedisSession::answer_command() {
  scratch_.clear();
  auto info_of = [&](const redis::CommandInfo& c) {
    return protocol_ >= 3 ? c.info_resp3 : c.info_resp2;
  };
  auto docs_of = [&](const redis::CommandInfo& c) {
    return protocol_ >= 3 ? c.docs_resp3 : c.docs_resp2;
  };
  const std::string_view sub = argc_ >= 2 ? args_[1] : std::string_view();
  if (argc_ == 1 || (iequals(sub, "info") && argc_ == 2)) {
    const auto all = redis::all_commands();
    resp::append_array(scratch_, all.size());
    for (const auto& c : all)
      scratch_.append(info_of(c));
    return reply_local(scratch_);
  }
  if (iequals(sub, "count")) {
    resp::append_integer(scratch_, static_cast<int64_t>(redis::command_count()));
    return reply_local(scratch_);
  }
  if (iequals(sub, "info")) {
    resp::append_array(scratch_, argc_ - 2);
    for (size_t i = 2; i < argc_; ++i) {
      if (const auto* c = redis::find_command_by_full_name(args_[i])) {
        scratch_.append(info_of(*c));
      } else {
        resp::append_null(scratch_, protocol_);
      }
    }
    return reply_local(scratch_);
  }
  if (iequals(sub, "docs")) {
    std::string entries;
    size_t found = 0;
    if (argc_ == 2) {
      for (const auto& c : redis::all_commands()) {
        entries.append(docs_of(c));
        ++found;
      }
    } else {
      for (size_t i = 2; i < argc_; ++i) {
        if (const auto* c = redis::find_command_by_full_name(args_[i])) {
          entries.append(docs_of(*c));
          ++found;
        }
      }
    }
    resp::append_map(scratch_, found, protocol_);
    scratch_.append(entries);
    return reply_local(scratch_);
  }
  if (iequals(sub, "list") && argc_ == 2) {
    // Every command and subcommand by its full name ("config|get"), as redis lists them.
    std::string names;
    size_t count = 0;
    for (const auto& c : redis::all_commands()) {
      resp::append_bulk(names, c.name);
      ++count;
      for (const auto& sub_command : c.subs()) {
        resp::append_bulk(names, sub_command.name);
        ++count;
      }
    }
    resp::append_array(scratch_, count);
    scratch_.append(names);
    return reply_local(scratch_);
  }
  if (iequals(sub, "getkeys") && argc_ >= 3) {
    const redis::Resolved r = redis::resolve(args_ + 2, argc_ - 2);
    if (r.status != redis::Dispatch::kOk) return reply_error("ERR Invalid command specified");
    if (!redis::key_positions(*r.command, args_ + 2, argc_ - 2, key_index_))
      return reply_error("ERR Invalid arguments specified for command");
    if (key_index_.empty()) return reply_error("ERR The command has no key arguments");
    resp::append_array(scratch_, key_index_.size());
    for (uint32_t k : key_index_)
      resp::append_bulk(scratch_, args_[2 + k]);
    return reply_local(scratch_);
  }
  reply_error("ERR COMMAND " + upper(sub) + " is not supported by cachegate");
}

void RedisSession::answer_client(const redis::CommandInfo& command) {
  const std::string_view name = command.name;
  scratch_.clear();
  if (name == "client|id") {
    resp::append_integer(scratch_, static_cast<int64_t>(client_id()));
    return reply_local(scratch_);
  }
  if (name == "client|getname") {
    if (name_.empty()) {
      resp::append_null(scratch_, protocol_);
    } else {
      resp::append_bulk(scratch_, name_);
    }
    return reply_local(scratch_);
  }
  if (name == "client|setname") {
    for (char c : args_[2]) {
      if (c < '!' || c > '~') {
        return reply_error(
            "ERR Client names cannot contain spaces, newlines or special characters.");
      }
    }
    name_.assign(args_[2]);
    return reply_local("+OK\r\n");
  }
  if (name == "client|info") {
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::steady_clock::now() - connected_at_);
    std::string text = "id=" + std::to_string(client_id()) + " name=" + name_ +
                       " age=" + std::to_string(age.count()) +
                       " db=0 resp=" + std::to_string(protocol_) + " lib-name=" + lib_name_ +
                       " lib-ver=" + lib_version_ + " proxy=cachegate-" + kVersion + "\n";
    if (protocol_ >= 3) {
      scratch_ = "=" + std::to_string(text.size() + 4) + "\r\ntxt:" + text + "\r\n";
    } else {
      resp::append_bulk(scratch_, text);
    }
    return reply_local(scratch_);
  }
  if (name == "client|help") {
    static constexpr std::string_view kHelp[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands cachegate answers are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        "    Set client library name or version."};
    resp::append_array(scratch_, std::size(kHelp));
    for (auto line : kHelp)
      resp::append_simple(scratch_, line);
    return reply_local(scratch_);
  }
  reply_error("ERR CLIENT " + upper(name.substr(7)) + " is not supported by cachegate");
}

// --- transactions ------------------------------------------------------------------------------

namespace {
constexpr std::string_view kMultiRequest = "*1\r\n$5\r\nMULTI\r\n";
constexpr std::string_view kDiscardRequest = "*1\r\n$7\r\nDISCARD\r\n";
constexpr std::string_view kTransactionRule =
    "ERR transactions are not supported by cachegate through a route rule other than a plain "
    "pool: its keys would reach several pools";
constexpr std::string_view kLostPin =
    "ERR cachegate: the connection to the transaction's server was lost; the transaction was "
    "discarded";
}  // namespace

void RedisSession::route_transaction(const redis::CommandInfo& command) {
  const std::string_view name = command.name;
  if (name == "multi") {
    if (pin_lost()) {
      // WATCH was on a connection that is gone: the transaction could not notice changes.
      transaction_ = Transaction::kNone;
      unpin(false);
      return reply_error(kLostPin);
    }
    transaction_ = Transaction::kQueuing;
    if (pinned_) return send_pinned();
    return reply_local("+OK\r\n");
  }
  if (name == "exec") return reply_error("ERR EXEC without MULTI");
  if (name == "discard") return reply_error("ERR DISCARD without MULTI");
  if (name == "unwatch") {
    transaction_ = Transaction::kNone;
    if (!pinned_ || pin_lost()) {
      unpin(false);
      return reply_local("+OK\r\n");
    }
    send_pinned();
    return unpin(true);
  }
  // WATCH: every key on one server, the one of earlier WATCHes.
  if (!pinned_ && wait_for_answers()) return;
  routing::Pool* pool = nullptr;
  uint32_t server = 0;
  if (!transaction_target(pool, server)) return;
  if (pin_lost()) unpin(false);
  if (!pinned_ && !pin(*pool, server)) return;
  transaction_ = Transaction::kWatching;
  send_pinned();
}

void RedisSession::queue_in_transaction(const redis::CommandInfo& command,
                                        const RedisPolicy& policy) {
  const std::string_view name = command.name;
  if (name == "exec" || name == "discard") {
    const bool aborted = transaction_ == Transaction::kAborted;
    transaction_ = Transaction::kNone;
    const bool lost = pin_lost();
    if (name == "exec" && (aborted || lost)) {
      // The server has queued what it was sent; it must not run a transaction the client is told
      // failed.
      if (pinned_ && !lost) send_pinned_quietly(kDiscardRequest);
      unpin(!lost);
      return reply_error(lost ? kLostPin
                              : "EXECABORT Transaction discarded because of previous errors.");
    }
    if (!pinned_ || lost) {
      unpin(false);
      return reply_local(name == "exec" ? "*0\r\n" : "+OK\r\n");
    }
    send_pinned();
    return unpin(true);
  }
  if (name == "quit") return answer_local(command);  // the connection closes, and its pin
  if (name == "reset") return answer_local(command);
  // Answered at once by Redis too, without failing the transaction.
  if (name == "multi") return reply_local("-ERR MULTI calls can not be nested\r\n");
  if (name == "watch") return reply_local("-ERR WATCH inside MULTI is not allowed\r\n");
  if (policy.route == RedisRoute::kUnsupported) {
    counters_.redis_unsupported.add();
    return reply_error("ERR command '" + std::string(name) +
                       "' is not supported by cachegate: " + std::string(policy.why));
  }
  if ((policy.route == RedisRoute::kLocal && name != "ping" && name != "echo") ||
      policy.route == RedisRoute::kSubscribe || policy.route == RedisRoute::kPublish)
    return reply_error("ERR command '" + std::string(name) +
                       "' is not supported by cachegate inside a transaction");
  if (policy.route == RedisRoute::kAllServers || policy.route == RedisRoute::kOneServer ||
      policy.route == RedisRoute::kScan)
    return reply_error("ERR command '" + std::string(name) +
                       "' reaches every server of the pool and cannot run inside a transaction");
  if (reply_keys_ != 0)
    return reply_error("ERR command '" + std::string(name) +
                       "' names keys in its reply and cannot run inside a transaction for a "
                       "user with a namespace");
  // The transaction's first command must not overtake earlier requests on shared connections.
  if (!pinned_ && transaction_ != Transaction::kAborted && wait_for_answers()) return;
  routing::Pool* pool = nullptr;
  uint32_t server = 0;
  if (!transaction_target(pool, server)) return;
  if (pin_lost()) {
    unpin(false);
    return reply_error(kLostPin);
  }
  if (transaction_ == Transaction::kAborted) return reply_local("+QUEUED\r\n");
  if (!pinned_) {
    if (!pin(*pool, server)) return;
    send_pinned_quietly(kMultiRequest);
  }
  send_pinned();
}

bool RedisSession::transaction_target(routing::Pool*& pool, uint32_t& server) {
  if (key_index_.empty()) {
    const Target t = route_of("", op_);
    if (t.rule != nullptr) {
      reply_error(kTransactionRule);
      return false;
    }
    pool = pinned_ ? pinned_pool_ : t.pool;
    server = pinned_ ? pinned_index_ : first_live_server(*pool);
  } else if (!keys_target(pool, server, kTransactionRule)) {
    return false;
  }
  if (server == routing::Distribution::kNoServer) {
    reply_error(failure_reply_text());
    return false;
  }
  // Everything after the first key or WATCH: the server already taken.
  if (pinned_ && (pool != pinned_pool_ || server != pinned_index_)) {
    counters_.redis_crossslot.add();
    reply_error(kCrossSlot);
    return false;
  }
  return true;
}

bool RedisSession::keys_target(routing::Pool*& pool, uint32_t& server,
                               std::string_view rule_error) {
  pool = nullptr;
  for (size_t i = 0; i < key_index_.size(); ++i) {
    const std::string_view key = args_[key_index_[i]];
    const Target t = route_of(key, op_);
    if (t.rule != nullptr) {
      reply_error(rule_error);
      return false;
    }
    const uint32_t s = t.pool->server_for(key);
    if (pool != nullptr && (t.pool != pool || s != server)) {
      counters_.redis_crossslot.add();
      reply_error(kCrossSlot);
      return false;
    }
    pool = t.pool;
    server = s;
  }
  return true;
}

std::string RedisSession::no_connection_free(std::string_view use, routing::Pool& pool,
                                             uint32_t server) const {
  return "ERR cachegate: no connection free for " + std::string(use) + " on server '" +
         std::string(pool.server(server).name()) + "' (pools." + pool.config().name +
         ".dedicated_connections)";
}

bool RedisSession::pin(routing::Pool& pool, uint32_t server) {
  auto backend = backend_server(pool, server);
  const bool resp3 = protocol_ >= 3;
  auto connection = backend ? backend->acquire_dedicated(resp3) : nullptr;
  if (!connection) {
    reply_error(no_connection_free("a transaction", pool, server));
    return false;
  }
  pinned_server_ = std::move(backend);
  pinned_ = std::move(connection);
  pinned_pool_ = &pool;
  pinned_index_ = server;
  pinned_resets_ = pinned_->resets();
  pinned_resp3_ = resp3;
  return true;
}

void RedisSession::send_pinned() {
  const uint32_t cookie = open_slot(reply_keys_);
  count_in_flight();
  pinned_->send(&request_bytes_, 1, shape(), *this, cookie, std::chrono::milliseconds(0));
}

void RedisSession::send_pinned_quietly(std::string_view request) {
  count_in_flight();
  pinned_->send(&request, 1, shape(), *this, kNoSlot, std::chrono::milliseconds(0));
}

void RedisSession::unpin(bool clean) {
  if (!pinned_) return;
  const bool reusable = clean && !pin_lost();
  pinned_server_->release_dedicated(std::move(pinned_), pinned_resp3_, reusable);
  pinned_ = nullptr;
  pinned_server_.reset();
  pinned_pool_ = nullptr;
}

void RedisSession::on_close() {
  transaction_ = Transaction::kNone;
  unpin(false);
  end_blocking(false);
  abandon_wait();
  unsubscribe_all();
}

// --- blocking commands -------------------------------------------------------------------------

// Delivers the blocking request's outcome to its session, after the session has let its
// connection go (so the next blocking request may take it again).
class RedisSession::BlockingCall final : public routing::ReplyHandler {
 public:
  BlockingCall(RedisSession& session, uint32_t cookie) : session_(&session), cookie_(cookie) {}
  void on_reply(uint32_t, std::string_view reply, bool error) override {
    // The reply lives in the connection's buffer, which handing the connection back may free.
    const std::string copy(reply);
    session_->end_blocking(true);
    session_->on_reply(cookie_, copy, error);
  }
  void on_failure(uint32_t, routing::Failure failure) override {
    session_->end_blocking(false);
    session_->on_failure(cookie_, failure);
  }

 private:
  routing::Ref<RedisSession> session_;
  const uint32_t cookie_;
};

namespace {
constexpr std::string_view kBlockingRule =
    "ERR blocking commands are not supported by cachegate through a route rule other than a "
    "plain pool: they wait on one server";
// What "block for ever" (a timeout of 0) waits at most: a month, then the request fails.
constexpr std::chrono::milliseconds kForever = std::chrono::hours(24 * 30);

// A Redis timeout in seconds ("1.5", "0"), in milliseconds; -1 when it is not one.
int64_t seconds_as_milliseconds(std::string_view text) {
  if (text.empty() || text.size() > 64) return -1;
  const std::string copy(text);
  char* end = nullptr;
  const double seconds = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(seconds) || seconds < 0) return -1;
  if (seconds > 1e9) return 0;  // longer than anyone waits: for ever
  return static_cast<int64_t>(std::ceil(seconds * 1000));
}
}  // namespace

int64_t RedisSession::block_milliseconds(std::string_view name) const {
  if (name == "xread" || name == "xreadgroup") {
    const size_t at = xread_block_index(args_, argc_, name == "xreadgroup");
    int64_t ms = 0;
    if (at == 0 || !parse_int(args_[at], ms) || ms < 0) return -1;
    return ms > int64_t{1} << 40 ? 0 : ms;  // longer than anyone waits: for ever
  }
  // BLMPOP and BZMPOP put the timeout first; the others last.
  if (name == "blmpop" || name == "bzmpop")
    return argc_ > 1 ? seconds_as_milliseconds(args_[1]) : -1;
  return seconds_as_milliseconds(args_[argc_ - 1]);
}

void RedisSession::route_blocking(const redis::CommandInfo& command) {
  // Keys not found (a bad numkeys): the server answers the error at once, without blocking.
  if (key_index_.empty()) return route_keyed(command);
  // A client that has gone (EOF) is not blocked for: as Redis does, it is closed, once the
  // replies to what it sent before are out.
  if (peer_eof()) return close_when_done();
  // It must not overtake earlier requests on shared connections (a write it would wait for).
  if (wait_for_answers()) return;
  routing::Pool* pool = nullptr;
  uint32_t server = 0;
  if (!keys_target(pool, server, kBlockingRule)) return;
  if (server == routing::Distribution::kNoServer) return reply_error(failure_reply_text());
  if (!pool->server(server).available())
    return reply_local(failure_reply(routing::Failure::kUnavailable));
  auto backend = backend_server(*pool, server);
  const bool resp3 = protocol_ >= 3;
  auto connection = backend ? backend->acquire_dedicated(resp3) : nullptr;
  if (!connection) return reply_error(no_connection_free("a blocking command", *pool, server));
  // The server answers when the block ends: allow it that long, and the pool's timeout on top.
  const int64_t block = block_milliseconds(command.name);
  std::chrono::milliseconds timeout(0);  // a timeout the server refuses: answered at once
  if (block == 0) {
    timeout = kForever;
  } else if (block > 0) {
    timeout = std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(block) + pool->config().timeout, kForever);
  }
  const uint32_t cookie = open_slot(reply_keys_);
  untime_slot(cookie);
  count_in_flight();
  blocked_server_ = std::move(backend);
  blocked_ = connection;
  blocked_resp3_ = resp3;
  hold_input(true);
  routing::Ref<BlockingCall> call(new BlockingCall(*this, cookie));
  connection->send(&request_bytes_, 1, shape(), *call, 0, timeout);
}

void RedisSession::end_blocking(bool clean) {
  if (!blocked_) return;
  auto connection = std::move(blocked_);
  blocked_ = nullptr;
  auto server = std::move(blocked_server_);
  hold_input(false);
  server->release_dedicated(std::move(connection), blocked_resp3_, clean);
}

// --- WAIT --------------------------------------------------------------------------------------

// WAIT counts the replicas that acknowledged the connection's own writes, and a client's writes
// reach the servers on connections shared with other clients. So each server of the pool gets,
// on a connection of the client's own, a PUBLISH first (Redis replicates every PUBLISH: its
// offset covers everything the server ran before, the client's writes included), then the WAIT,
// which counts the replicas that have that offset. The client gets the smallest count.
class RedisSession::WaitCall final : public routing::ReplyHandler {
 public:
  struct Part {
    std::shared_ptr<backends::Server> server;
    routing::Ref<backends::ServerConnection> connection;
    bool failed = false;
  };
  WaitCall(RedisSession& session, uint32_t cookie, std::vector<Part> parts)
      : session_(&session), cookie_(cookie), parts_(std::move(parts)) {}

  void start(std::string_view wait_request, std::chrono::milliseconds timeout) {
    static constexpr std::string_view kPublish =
        "*3\r\n$7\r\nPUBLISH\r\n$14\r\ncachegate:wait\r\n$0\r\n\r\n";
    routing::Ref<WaitCall> self(this);
    for (uint32_t i = 0; i < parts_.size(); ++i) {
      // Failing at once can end the call (and drop the parts) before the loop does.
      if (!parts_[i].connection) break;
      auto connection = parts_[i].connection;
      connection->send(&kPublish, 1, protocol::ReplyShape::kResp2, *this, 2 * i,
                       std::chrono::milliseconds(0));
      if (!parts_[i].connection) break;
      connection->send(&wait_request, 1, protocol::ReplyShape::kResp2, *this, 2 * i + 1, timeout);
    }
  }
  // The client left: every connection is closed, and nothing is delivered.
  void abandon() {
    session_ = nullptr;
    let_go(false);
  }

  void on_reply(uint32_t cookie, std::string_view reply, bool error) override {
    if (error && error_.empty()) error_.assign(reply);
    if (cookie % 2 == 0) return;  // the PUBLISH
    int64_t replicas = 0;
    if (!error && reply.size() > 3 && reply[0] == ':' &&
        parse_int(reply.substr(1, reply.size() - 3), replicas))
      fewest_ = std::min(fewest_, replicas);
    answered();
  }
  void on_failure(uint32_t cookie, routing::Failure failure) override {
    if (!failure_) failure_ = failure;
    if (cookie / 2 < parts_.size()) parts_[cookie / 2].failed = true;
    if (cookie % 2 == 1) answered();
  }

 private:
  void answered() {
    if (++answers_ != parts_.size() || !session_) return;
    routing::Ref<RedisSession> session = std::move(session_);
    session_ = nullptr;
    let_go(true);
    session->end_wait();
    if (failure_) return session->on_failure(cookie_, *failure_);
    if (!error_.empty()) return session->on_reply(cookie_, error_, true);
    session->on_reply(cookie_, ":" + std::to_string(fewest_) + "\r\n", false);
  }
  void let_go(bool clean) {
    for (auto& part : parts_) {
      if (!part.connection) continue;
      auto connection = std::move(part.connection);
      part.connection = nullptr;
      part.server->release_dedicated(std::move(connection), false, clean && !part.failed);
    }
  }

  routing::Ref<RedisSession> session_;  // until the outcome is delivered, or the client leaves
  const uint32_t cookie_;
  std::vector<Part> parts_;
  size_t answers_ = 0;
  int64_t fewest_ = std::numeric_limits<int64_t>::max();
  std::string error_;
  std::optional<routing::Failure> failure_;
};

void RedisSession::route_wait() {
  // WAIT numreplicas timeout, checked as Redis does.
  int64_t replicas = 0, milliseconds = 0;
  if (!parse_int(args_[1], replicas))
    return reply_error("ERR value is not an integer or out of range");
  if (!parse_int(args_[2], milliseconds))
    return reply_error("ERR timeout is not an integer or out of range");
  if (milliseconds < 0) return reply_error("ERR timeout is negative");
  if (peer_eof()) return close_when_done();
  if (wait_for_answers()) return;
  routing::Pool& pool = *route_of("", config::RouteOp::kWrite).pool;
  std::vector<WaitCall::Part> parts;
  for (uint32_t s = 0; s < pool.size(); ++s) {
    auto backend = pool.server(s).available() ? backend_server(pool, s) : nullptr;
    auto connection = backend ? backend->acquire_dedicated(false) : nullptr;
    if (!connection) {
      // The connections taken already go back unused.
      for (auto& part : parts)
        part.server->release_dedicated(std::move(part.connection), false, true);
      if (!pool.server(s).available())
        return reply_local(failure_reply(routing::Failure::kUnavailable));
      return reply_error(no_connection_free("WAIT", pool, s));
    }
    parts.push_back(WaitCall::Part{std::move(backend), std::move(connection)});
  }
  const auto timeout =
      milliseconds == 0
          ? kForever
          : std::min<std::chrono::milliseconds>(
                std::chrono::milliseconds(milliseconds) + pool.config().timeout, kForever);
  const uint32_t cookie = open_slot();
  untime_slot(cookie);
  count_in_flight();
  hold_input(true);
  wait_ = new WaitCall(*this, cookie, std::move(parts));
  routing::Ref<WaitCall> call = wait_;
  call->start(request_bytes_, timeout);
}

void RedisSession::end_wait() {
  wait_ = nullptr;
  hold_input(false);
}

void RedisSession::abandon_wait() {
  if (!wait_) return;
  routing::Ref<WaitCall> call = std::move(wait_);
  wait_ = nullptr;
  call->abandon();
}

// --- pub/sub -----------------------------------------------------------------------------------

// Relays what subscribed connections receive to their session, until the session is closed.
class RedisSession::PushRelay final : public routing::ReplyHandler {
 public:
  explicit PushRelay(RedisSession& session) : session_(&session) {}
  void detach() { session_ = nullptr; }
  void on_reply(uint32_t, std::string_view reply, bool error) override {
    if (session_ != nullptr) session_->on_push(reply, error);
  }
  void on_failure(uint32_t, routing::Failure failure) override {
    if (session_ != nullptr) session_->on_subscriber_lost(failure);
  }

 private:
  RedisSession* session_;
};

namespace {
constexpr size_t kSubscriptionsMax = 100000;  // per client, of every kind together
constexpr std::string_view kRandomPubsub =
    "ERR pub/sub is not supported by cachegate on a pool with distribution: random: a channel "
    "would have no server of its own";

struct SubscribeCommand {
  std::string_view name;
  bool subscribe;
  uint8_t kind;                     // RedisSession::Subscription
  std::string_view server_command;  // as sent to the servers
};
constexpr SubscribeCommand kSubscribeCommands[] = {
    {"subscribe", true, 0, "SUBSCRIBE"},   {"unsubscribe", false, 0, "UNSUBSCRIBE"},
    {"psubscribe", true, 1, "PSUBSCRIBE"}, {"punsubscribe", false, 1, "PUNSUBSCRIBE"},
    {"ssubscribe", true, 2, "SSUBSCRIBE"}, {"sunsubscribe", false, 2, "SUNSUBSCRIBE"},
};
}  // namespace

size_t RedisSession::subscription_count(Subscription kind) const {
  // As Redis counts: channels and patterns together, shard channels apart.
  if (kind == Subscription::kShardChannel) return subscribed_[2].size();
  return subscribed_[0].size() + subscribed_[1].size();
}

size_t RedisSession::subscriptions() const {
  return subscribed_[0].size() + subscribed_[1].size() + subscribed_[2].size();
}

routing::Pool& RedisSession::pubsub_pool() {
  if (pubsub_pool_ != nullptr) return *pubsub_pool_;
  return *route_of("", config::RouteOp::kRead).pool;
}

RedisSession::Subscriber* RedisSession::subscriber(uint32_t server) {
  for (auto& s : subscribers_)
    if (s.server == server) return &s;
  return nullptr;
}

bool RedisSession::take_subscribers(routing::Pool& pool, const std::vector<uint32_t>& servers) {
  for (uint32_t server : servers) {
    if (subscriber(server) != nullptr) continue;
    std::string refusal;
    if (server == routing::Distribution::kNoServer) {
      refusal = failure_reply_text();
    } else if (!pool.server(server).available()) {
      refusal = failure_reply(routing::Failure::kUnavailable);
      refusal = refusal.substr(1, refusal.size() - 3);  // without '-' and CRLF
    }
    auto backend = refusal.empty() ? backend_server(pool, server) : nullptr;
    // Subscribed connections speak RESP2: messages are the same arrays in both protocols, and a
    // RESP3 client gets them with the push type.
    auto connection = backend ? backend->acquire_dedicated(false) : nullptr;
    if (!connection) {
      if (refusal.empty()) refusal = no_connection_free("subscriptions", pool, server);
      // Connections taken for this request alone go back.
      for (size_t i = subscribers_.size(); i-- > 0;)
        if (subscribers_[i].subscriptions == 0) drop_subscriber(subscribers_[i].server);
      reply_error(refusal);
      return false;
    }
    if (!push_relay_) push_relay_ = new PushRelay(*this);
    connection->deliver_pushes_to(*push_relay_, 0);
    subscribers_.push_back(Subscriber{server, 0, std::move(backend), std::move(connection)});
  }
  pubsub_pool_ = &pool;
  return true;
}

void RedisSession::drop_subscriber(uint32_t server) {
  for (size_t i = 0; i < subscribers_.size(); ++i) {
    if (subscribers_[i].server != server) continue;
    Subscriber gone = std::move(subscribers_[i]);
    subscribers_.erase(subscribers_.begin() + static_cast<ptrdiff_t>(i));
    // Closed, not reused: the server forgets its subscriptions with it.
    gone.backend->release_dedicated(std::move(gone.connection), false, false);
    break;
  }
  if (subscribers_.empty()) pubsub_pool_ = nullptr;
}

void RedisSession::unsubscribe_all() {
  for (auto& set : subscribed_)
    set.clear();
  while (!subscribers_.empty())
    drop_subscriber(subscribers_.back().server);
  if (push_relay_) {
    push_relay_->detach();
    push_relay_ = nullptr;
  }
}

void RedisSession::route_subscribe(const redis::CommandInfo& command) {
  const SubscribeCommand* what = nullptr;
  for (const auto& c : kSubscribeCommands)
    if (c.name == command.name) what = &c;
  const auto kind = static_cast<Subscription>(what->kind);
  auto& subscribed = subscribed_[what->kind];
  routing::Pool& pool = pubsub_pool();
  if (pool.config().distribution == config::Distribution::kRandom)
    return reply_error(kRandomPubsub);
  // The confirmations, one per channel, in one reply; pushes for a RESP3 client.
  scratch_.clear();
  auto confirm = [&](std::string_view channel, bool null) {
    if (protocol_ >= 3) {
      scratch_ += ">3\r\n";
    } else {
      resp::append_array(scratch_, 3);
    }
    resp::append_bulk(scratch_, command.name);
    if (null) {
      scratch_ += protocol_ >= 3 ? "_\r\n" : "$-1\r\n";
    } else {
      resp::append_bulk(scratch_, channel);
    }
    resp::append_integer(scratch_, static_cast<int64_t>(subscription_count(kind)));
  };
  // Where a subscription is: a channel on the server it was subscribed on (its name on the
  // servers, in the user's namespace, hashed then); a pattern on every server.
  auto servers_of = [&](uint32_t server) {
    servers_.clear();
    if (kind == Subscription::kPattern) {
      for (uint32_t s = 0; s < pool.size(); ++s)
        servers_.push_back(s);
    } else {
      servers_.push_back(server);
    }
  };
  std::string request;
  auto tell_servers = [&](std::string_view verb, std::string_view channel) {
    request.clear();
    const std::string name = server_channel(kind, channel);
    const std::string_view parts[2] = {verb, name};
    resp::append_command(request, parts, 2);
    for (uint32_t server : servers_)
      if (Subscriber* s = subscriber(server)) s->connection->send_unanswered(request);
  };

  if (what->subscribe) {
    if (subscriptions() + argc_ - 1 > kSubscriptionsMax)
      return reply_error("ERR cachegate: a client may hold at most " +
                         std::to_string(kSubscriptionsMax) + " subscriptions");
    // Each channel's server, once; then every connection, so that a refusal leaves nothing half
    // subscribed.
    std::vector<uint32_t> server_of(argc_, 0);
    std::vector<uint32_t> needed;
    for (size_t i = 1; i < argc_; ++i) {
      if (kind != Subscription::kPattern) {
        const auto known = subscribed.find(args_[i]);
        server_of[i] = known != subscribed.end() ? known->second
                                                 : pool.server_for(server_channel(kind, args_[i]));
      }
      servers_of(server_of[i]);
      needed.insert(needed.end(), servers_.begin(), servers_.end());
    }
    std::sort(needed.begin(), needed.end());
    needed.erase(std::unique(needed.begin(), needed.end()), needed.end());
    if (!take_subscribers(pool, needed)) return;
    for (size_t i = 1; i < argc_; ++i) {
      if (subscribed.emplace(args_[i], server_of[i]).second) {
        servers_of(server_of[i]);
        for (uint32_t server : servers_)
          if (Subscriber* s = subscriber(server)) ++s->subscriptions;
        tell_servers(what->server_command, args_[i]);
      }
      confirm(args_[i], false);
    }
    return reply_local(scratch_);
  }

  // Unsubscribing: the channels named, or every one of this kind.
  std::vector<std::string> channels;
  if (argc_ == 1) {
    for (const auto& entry : subscribed)
      channels.push_back(entry.first);
  } else {
    channels.assign(args_ + 1, args_ + argc_);
  }
  if (channels.empty()) {
    confirm({}, true);
    return reply_local(scratch_);
  }
  for (const std::string& channel : channels) {
    const auto found = subscribed.find(channel);
    if (found != subscribed.end()) {
      servers_of(found->second);
      subscribed.erase(found);
      // A server left with no subscription of the client's is let go (which unsubscribes);
      // the others are told.
      for (uint32_t server : servers_) {
        Subscriber* s = subscriber(server);
        if (s != nullptr && --s->subscriptions == 0) drop_subscriber(server);
      }
      tell_servers(what->server_command, channel);
    }
    confirm(channel, false);
  }
  reply_local(scratch_);
}

std::string RedisSession::server_channel(Subscription kind, std::string_view name) const {
  const std::string_view ns = key_namespace();
  std::string out;
  if (ns.empty()) {
    out.assign(name);
  } else if (kind == Subscription::kPattern) {
    protocol::append_glob_escaped(ns, out);
    out.append(name);
  } else {
    out.append(ns);
    out.append(name);
  }
  return out;
}

void RedisSession::route_publish() {
  // PUBLISH/SPUBLISH channel message: to the server the channel hashes to, where its
  // subscribers are; in the user's namespace, if any.
  if (!key_namespace().empty()) {
    ns_bytes_ = server_channel(Subscription::kChannel, args_[1]);
    ns_args_.assign(args_, args_ + argc_);
    ns_args_[1] = ns_bytes_;
    use_rewritten_args();
  }
  routing::Pool& pool = pubsub_pool();
  if (pool.config().distribution == config::Distribution::kRandom)
    return reply_error(kRandomPubsub);
  const uint32_t server = pool.server_for(args_[1]);
  if (server == routing::Distribution::kNoServer) return reply_error(failure_reply_text());
  forward_to(pool, server);
}

void RedisSession::on_push(std::string_view frame, bool error) {
  if (closed()) return;
  if (error) {
    // A server refused a subscription cachegate has confirmed already (its ACL forbids the
    // channel): the client must not go on believing it subscribed, and a reply it did not ask
    // for would shift every later one. It is closed, as when a subscribed connection is lost.
    const std::string_view text =
        frame.size() > 3 ? frame.substr(1, std::min<size_t>(frame.size() - 3, 200)) : frame;
    log(LogLevel::kWarning, "client ", id(), ": a server refused a subscription (", text,
        "); closing the client");
    return close_subscriber();
  }
  // Messages are relayed; the servers' confirmations are not (the client had ours).
  size_t at = 0;
  resp::Value top, type, name;
  if (!resp::read_value(frame, at, top) || !top.is_aggregate() || top.count < 3) return;
  size_t pos = resp::children_start(top);
  if (!resp::read_value(top.raw, pos, type) || !resp::read_value(top.raw, pos, name)) return;
  const std::string_view kind = type.payload;
  const Subscriptions* subscribed = nullptr;
  if (kind == "message") {
    subscribed = &subscribed_[0];
  } else if (kind == "pmessage") {
    subscribed = &subscribed_[1];
  } else if (kind == "smessage") {
    subscribed = &subscribed_[2];
  } else {
    return;
  }
  const std::string_view ns = key_namespace();
  if (ns.empty()) {
    // One already unsubscribed from (its UNSUBSCRIBE crossed the message) is not delivered.
    if (subscribed->find(name.payload) == subscribed->end()) return;
    if (protocol_ < 3) return reply_local(frame);
    scratch_.assign(frame);
    scratch_[0] = '>';
    return reply_local(scratch_);
  }
  // A user with a namespace: the channel (and pattern) names without it.
  std::string escaped;
  protocol::append_glob_escaped(ns, escaped);
  const std::string_view prefix = kind == "pmessage" ? std::string_view(escaped) : ns;
  if (!name.payload.starts_with(prefix)) return;
  const std::string_view own = name.payload.substr(prefix.size());
  if (subscribed->find(own) == subscribed->end()) return;
  scratch_.clear();
  scratch_ += protocol_ >= 3 ? '>' : '*';
  scratch_ += std::to_string(top.count) + "\r\n";
  resp::append_bulk(scratch_, kind);
  resp::append_bulk(scratch_, own);
  if (kind == "pmessage") {
    resp::Value channel;
    if (!resp::read_value(top.raw, pos, channel) || !channel.payload.starts_with(ns)) return;
    resp::append_bulk(scratch_, channel.payload.substr(ns.size()));
  }
  scratch_.append(top.raw.substr(pos));  // the message, as it is
  reply_local(scratch_);
}

void RedisSession::on_subscriber_lost(routing::Failure failure) {
  if (closed()) return;
  log(LogLevel::kInfo, "client ", id(), ": a subscribed server connection was lost (",
      routing::failure_text(failure), "); closing the client so that it subscribes again");
  close_subscriber();
}

void RedisSession::close_subscriber() {
  // Nothing more is relayed; its connections go with the client.
  for (auto& set : subscribed_)
    set.clear();
  close_when_done();
}

RedisSession::~RedisSession() {
  // Closed sessions detached it already; one torn down with its worker must not be called.
  if (push_relay_) push_relay_->detach();
}

std::string RedisSession::info_section() const {
  size_t ejected = 0;
  for (uint32_t s = 0; s < pool_->size(); ++s)
    ejected += pool_->is_live(s) ? 0 : 1;
  std::string text = "# Cachegate\r\n";
  text += "cachegate_version:" + std::string(kVersion) + "\r\n";
  text += "workers:" + std::to_string(worker_.config().workers) + "\r\n";
  text += "pool:" + pool_->config().name + "\r\n";
  text += "pool_servers:" + std::to_string(pool_->size()) + "\r\n";
  text += "pool_servers_ejected:" + std::to_string(ejected) + "\r\n";
  text += "redis_commands_table:" + std::string(redis::table_redis_version()) + "\r\n";
  // The same figures as memcached's `stats` shows, summed over the workers.
  const Registry& registry = worker_.registry();
  const std::pair<const char*, Counter WorkerCounters::*> figures[] = {
      {"redis_crossslot", &WorkerCounters::redis_crossslot},
      {"redis_unsupported", &WorkerCounters::redis_unsupported},
      {"tls_handshakes", &WorkerCounters::tls_handshakes},
      {"tls_handshake_failures", &WorkerCounters::tls_handshake_failures},
      {"tls_handshake_timeouts", &WorkerCounters::tls_handshake_timeouts},
      {"auth_successes", &WorkerCounters::auth_successes},
      {"auth_failures", &WorkerCounters::auth_failures},
      {"auth_slowed", &WorkerCounters::auth_slowed},
      {"auth_blocked", &WorkerCounters::auth_blocked},
      {"auth_timeouts", &WorkerCounters::auth_timeouts},
      {"auth_denied", &WorkerCounters::auth_denied},
      {"permission_denied", &WorkerCounters::permission_denied},
  };
  for (const auto& [name, field] : figures)
    text += std::string(name) + ":" + std::to_string(total(registry, field)) + "\r\n";
  for (const auto& [name, value] : route_figures(registry))
    text += std::string(name) + ":" + std::to_string(value) + "\r\n";
  for (const auto& [name, value] : operation_figures(registry))
    text += name + ":" + std::to_string(value) + "\r\n";
  text += "\r\n";
  return text;
}

}  // namespace cachegate::proxy
