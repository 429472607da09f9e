#pragma once

// A Redis client connection (RESP2, or RESP3 after HELLO 3; multibulk and inline requests).
//
// Each request is resolved against the command table (unknown commands and wrong arity are
// answered with Redis's own errors), then handled by its routing::RedisPolicy: forwarded
// unmodified to the server of its keys, split per server (MGET, MSET, DEL, …), sent to every
// server and merged (DBSIZE, KEYS, FLUSHALL, INFO, …), iterated over the servers (SCAN), or
// answered here (PING, HELLO, SELECT, COMMAND, CLIENT …). A user's namespace is put in front of
// every key it names and taken off the keys replies name. A RESP3 client's requests travel on
// server connections that said HELLO 3, so replies are forwarded as the server wrote them.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backends/server.h"
#include "protocol/redis_commands.h"
#include "protocol/resp.h"
#include "proxy/client_session.h"
#include "routing/redis_policy.h"

namespace cachegate::proxy {

class RedisSession final : public ClientSession {
 public:
  using ClientSession::LoginOutcome;
  RedisSession(Worker& worker, Generation& generation, const Generation::Listener& listener, int fd,
               uint32_t id);
  ~RedisSession() override;

 private:
  void process_input() override;
  size_t describe_request(char* out, size_t size) const override;
  std::string failure_reply(routing::Failure failure) override;
  std::string_view on_slot_reply(const Slot& slot, std::string_view reply, bool error) override;
  const routing::ReplyJudge& judge() const override;
  std::string failure_reply_text() const;  // every server of the pool ejected

  void dispatch(const protocol::resp::Request& request, const char* bytes);
  // Answers NOPERM and returns false when the logged-in user may not run this.
  bool permitted(const protocol::redis::CommandInfo& command);
  // For a user with a namespace: puts it in front of the request's keys (and of KEYS and SCAN
  // patterns) and notes which reply names keys. False, after answering, for what it cannot
  // confine to the namespace (FLUSHALL, RANDOMKEY, scripts, …).
  bool apply_namespace(const protocol::redis::CommandInfo& command,
                       const routing::RedisPolicy& policy);
  void forward_to(routing::Pool& pool, uint32_t server);
  // KEYS (`keys`) or SCAN on a routed listener whose empty-key rule rewrites keys: the rewrite
  // applied to the patterns (a SCAN without MATCH gets one), and listing_rule_ set.
  void rewrite_patterns(bool keys);
  // In ns_args_ (the request's arguments, already copied there): KEYS' pattern, or every SCAN
  // MATCH pattern (one added when there is none), replaced by rewrite(pattern).
  template <class Rewrite>
  void rewrite_listing_patterns(bool keys, const Rewrite& rewrite);
  // Makes ns_args_ the request: its arguments and the bytes forwarded.
  void use_rewritten_args();
  void route_keyed(const protocol::redis::CommandInfo& command);
  void route_split(const protocol::redis::CommandInfo& command, const routing::RedisPolicy& policy);
  void route_all(const protocol::redis::CommandInfo& command, const routing::RedisPolicy& policy);
  void route_scan();
  // Transactions. MULTI is answered here; the first command queued after it (or a WATCH before
  // it) picks the server its keys hash to and takes a connection of the client's own there,
  // which carries MULTI, the commands and EXEC. Keys on another server, and what cannot run on
  // one server, are refused and abort the transaction, as a rejected command does in Redis.
  void route_transaction(const protocol::redis::CommandInfo& command);
  void queue_in_transaction(const protocol::redis::CommandInfo& command,
                            const routing::RedisPolicy& policy);
  // The pool and server of the request's keys (of no key: the pool's first live server); false,
  // after answering, when they are not one server of a plain pool, or not the one pinned.
  bool transaction_target(routing::Pool*& pool, uint32_t& server);
  // The one pool and server every key of the request (at least one) is on; false, after
  // answering, when they are on several, or taken through a route rule other than a plain pool
  // (`rule_error` says why that cannot be).
  bool keys_target(routing::Pool*& pool, uint32_t& server, std::string_view rule_error);
  bool pin(routing::Pool& pool, uint32_t server);
  // The error for a request that needs a connection of its own (`use`) when the pool's
  // dedicated_connections to `server` are all taken.
  std::string no_connection_free(std::string_view use, routing::Pool& pool, uint32_t server) const;
  // Whether the pinned connection was reset since it was taken (its server state is gone).
  bool pin_lost() const { return pinned_ && pinned_->resets() != pinned_resets_; }
  void send_pinned();
  void send_pinned_quietly(std::string_view request);  // its reply is dropped
  void unpin(bool clean);
  // Blocking commands (BLPOP, BZPOPMIN, BLMOVE, XREAD … BLOCK, …): to the server of their keys,
  // on a connection of the client's own, with a timeout of the command's block time plus the
  // pool's. Until the reply no further request is dispatched, as Redis runs none either; a client
  // that leaves meanwhile closes that connection, which ends the block on the server.
  void route_blocking(const protocol::redis::CommandInfo& command);
  // How long the request asks to block: -1 when it does not say (in a form the server accepts),
  // 0 for ever.
  int64_t block_milliseconds(std::string_view name) const;
  // The blocking request's outcome is in: its connection goes back (for reuse when `clean`), and
  // requests are dispatched again.
  void end_blocking(bool clean);
  class BlockingCall;
  // WAIT: see WaitCall in redis_session.cc.
  void route_wait();
  void end_wait();
  void abandon_wait();  // the client left
  class WaitCall;

  // Pub/sub. Subscriptions are kept here per client; each channel is subscribed on the server it
  // hashes to in the pub/sub pool (patterns on every server), over one connection of the
  // client's own per server, whose messages are relayed to the client. Confirmations are
  // answered here with the client's own counts. A lost server connection closes the client, so
  // that it subscribes again, as after a server restart.
  enum class Subscription : uint8_t { kChannel, kPattern, kShardChannel };
  void route_subscribe(const protocol::redis::CommandInfo& command);
  void route_publish();
  // A channel or pattern as the servers know it: in the user's namespace, if any.
  std::string server_channel(Subscription kind, std::string_view name) const;
  // The pool channels hash over: the listener's, or on a routed listener the pool reads of an
  // empty key go to (publishers and subscribers must agree on it, whatever their operation).
  routing::Pool& pubsub_pool();
  // For each subscription the client holds, what Redis counts in its confirmations.
  size_t subscription_count(Subscription kind) const;
  size_t subscriptions() const;
  struct Subscriber;
  Subscriber* subscriber(uint32_t server);
  // Takes connections for `servers` (those not held yet); false, after answering, when one cannot
  // be had.
  bool take_subscribers(routing::Pool& pool, const std::vector<uint32_t>& servers);
  void drop_subscriber(uint32_t server);
  void unsubscribe_all();
  void on_push(std::string_view frame, bool error);
  void on_subscriber_lost(routing::Failure failure);
  // Its subscriptions cannot be kept (a lost connection, a refusal): closed, so that the client
  // subscribes again.
  void close_subscriber();
  class PushRelay;

  void on_close() override;
  bool leaves_on_reload() const override { return !subscribers_.empty(); }
  bool holds_server_state() const override {
    return pinned_ || transaction_ != Transaction::kNone || blocked_ || wait_ ||
           !subscribers_.empty();
  }
  void answer_local(const protocol::redis::CommandInfo& command);
  void answer_hello();
  std::string hello_reply();
  void answer_auth();
  void answer_select();
  void answer_command();
  void answer_client(const protocol::redis::CommandInfo& command);
  void reply_error(std::string_view text);  // text without '-' and CRLF
  std::string info_section() const;
  uint64_t client_id() const;
  protocol::ReplyShape shape() const {
    return protocol_ >= 3 ? protocol::ReplyShape::kResp3 : protocol::ReplyShape::kResp2;
  }

  // Set by a request that must wait for earlier ones (must_wait_for_answers()): it stays in in_.
  bool retry_request_ = false;
  bool wait_for_answers() {
    retry_request_ = must_wait_for_answers();
    return retry_request_;
  }
  protocol::resp::RequestParser parser_;
  // The request being dispatched: its arguments and the bytes to forward (the client's own, or a
  // multibulk rewrite of an inline request).
  const std::string_view* args_ = nullptr;
  size_t argc_ = 0;
  std::string_view request_bytes_;
  std::string inline_rewrite_;
  std::vector<uint32_t> key_index_;
  std::vector<uint32_t> server_of_key_;
  std::string scratch_;
  // A namespaced request's arguments, the keys and patterns they point into, and which part of
  // the reply names keys (a protocol::resp::KeyReply, kept in the slot's kind).
  std::vector<std::string_view> ns_args_;
  std::string ns_bytes_;
  uint8_t reply_keys_ = 0;
  config::RouteOp op_ = config::RouteOp::kRead;  // the request's, for routes and permissions
  std::string reply_rewrite_;
  std::string rule_rewrite_;
  std::vector<std::string> patterns_;
  const routing::RouteRule* listing_rule_ = nullptr;
  int protocol_ = 2;
  std::string name_;  // CLIENT SETNAME
  std::string lib_name_, lib_version_;
  std::chrono::steady_clock::time_point connected_at_ = std::chrono::steady_clock::now();

  enum class Transaction : uint8_t {
    kNone,
    kWatching,  // WATCH was sent on pinned_
    kQueuing,   // after MULTI
    kAborted,   // after MULTI and a refused command: EXEC answers EXECABORT
  };
  Transaction transaction_ = Transaction::kNone;
  std::shared_ptr<backends::Server> pinned_server_;
  routing::Ref<backends::ServerConnection> pinned_;
  routing::Pool* pinned_pool_ = nullptr;
  uint32_t pinned_index_ = 0;
  uint64_t pinned_resets_ = 0;
  bool pinned_resp3_ = false;

  // The blocking request in flight, and its connection.
  std::shared_ptr<backends::Server> blocked_server_;
  routing::Ref<backends::ServerConnection> blocked_;
  bool blocked_resp3_ = false;
  routing::Ref<WaitCall> wait_;  // the WAIT in flight

  // By Subscription: each channel with the server it was subscribed on (patterns: on every one).
  // (std::less<>: messages are looked up by the channel's bytes, without a copy.)
  using Subscriptions = std::map<std::string, uint32_t, std::less<>>;
  Subscriptions subscribed_[3];
  struct Subscriber {
    uint32_t server = 0;
    uint32_t subscriptions = 0;  // channels there, and every pattern
    std::shared_ptr<backends::Server> backend;
    routing::Ref<backends::ServerConnection> connection;
  };
  std::vector<Subscriber> subscribers_;
  routing::Pool* pubsub_pool_ = nullptr;  // while subscribed
  routing::Ref<PushRelay> push_relay_;
  std::vector<uint32_t> servers_;
};

}  // namespace cachegate::proxy
