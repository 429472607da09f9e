#include "routing/routed_request.h"

#include <chrono>
#include <vector>

namespace cachegate::routing {

namespace {

using Clock = std::chrono::steady_clock;
using config::RouteKind;

// Cookies of the warm-up's own requests (pool indexes are the parts' cookies).
constexpr uint32_t kTtlCookie = 0x10000;
constexpr uint32_t kFillCookie = 0x10001;
constexpr size_t kMaxPooled = 256;
constexpr size_t kKeepCapacity = 64 * 1024;

// The rule's own request timeout, or 0: the pools'.
std::chrono::milliseconds timeout_of(const RouteRule& rule) {
  return rule.config->timeout.value_or(std::chrono::milliseconds(0));
}

// The server of `key` in `pool` when it can take a request now, else kNoServer.
uint32_t usable_server(Pool& pool, std::string_view key) {
  const uint32_t s = pool.server_for(key);
  if (s == Distribution::kNoServer || !pool.server(s).available()) return Distribution::kNoServer;
  return s;
}

uint32_t next_random() {
  static thread_local uint64_t state =
      0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<uint32_t>(state >> 32);
}

void send_shadow(RouteRule& rule, const RoutedRequest& request, RouteCounters& counters,
                 uint32_t affinity) {
  rule.shadow_credit += rule.config->shadow_fraction;
  if (rule.shadow_credit < 1.0) return;
  rule.shadow_credit -= 1.0;
  const uint32_t s = usable_server(*rule.shadow, request.key);
  if (s == Distribution::kNoServer ||
      counters.shadow_pending.load(std::memory_order_relaxed) >= kMaxShadowInFlight) {
    RouteCounters::bump(counters.shadow_dropped);
    return;
  }
  RouteCounters::bump(counters.shadow_sent);
  RouteCounters::bump(counters.shadow_pending);
  rule.shadow->server(s).send(request.pieces, request.count, request.shape, counters.sink, 0,
                              affinity);
}

// Outcomes ranked for "the worst reply wins".
enum Rank : uint8_t { kRankOk, kRankRefused, kRankError, kRankFailure };

Rank rank_of(ReplyClass c) {
  switch (c) {
    case ReplyClass::kOk:
      return kRankOk;
    case ReplyClass::kMiss:
    case ReplyClass::kRefused:
      return kRankRefused;
    case ReplyClass::kError:
      break;
  }
  return kRankError;
}

// A request that may need several attempts or several pools: it keeps its bytes and its key.
class Attempt final : public ReplyHandler {
 public:
  static void start(RouteRule& rule, const RoutedRequest& request, const ReplyJudge& judge,
                    RouteCounters& counters, ReplyHandler& client, uint32_t cookie,
                    uint32_t affinity);

  void on_reply(uint32_t part, std::string_view reply, bool error) override;
  void on_failure(uint32_t part, Failure failure) override;

 private:
  enum class Mode : uint8_t { kSequential, kParallel };

  void begin_sequential(bool move_on_miss);
  void next_attempt();
  void begin_parallel();
  // A part's outcome; `sent` is false for a part that was never sent (its server is down).
  void parallel_done(uint32_t part, Rank rank, std::string_view reply, bool error, Failure failure,
                     bool sent = true);
  void answer(std::string_view reply, bool error);
  void answer_failure(Failure failure);
  void start_fill(std::string_view reply);
  void send_fill(std::string_view ttl_reply);
  void destroy() override;

  Ref<ReplyHandler> client_;
  Ref<RefCounted> owner_;  // keeps rule_ alive (RouteRule::owner)
  uint32_t cookie_ = 0;
  uint32_t affinity_ = 0;
  RouteRule* rule_ = nullptr;
  const ReplyJudge* judge_ = nullptr;
  RouteCounters* counters_ = nullptr;
  std::string bytes_;
  std::string key_;
  protocol::ReplyShape shape_ = protocol::ReplyShape::kMcLine;
  config::RouteOp op_ = config::RouteOp::kRead;
  Mode mode_ = Mode::kSequential;
  bool answered_ = false;
  bool warmup_ = false;
  bool move_on_miss_ = false;
  bool ttl_capped_ = false;
  // Sequential: pools to try, in order, and where we are.
  std::vector<uint32_t> order_;
  size_t position_ = 0;
  Clock::time_point sent_at_;
  // What to answer when no later attempt does better: a reply kept, else the last failure.
  std::string kept_reply_;
  bool kept_error_ = false;
  bool have_kept_ = false;
  Failure failure_ = Failure::kNoServer;
  // Parallel.
  size_t outstanding_ = 0;
  size_t ok_ = 0;
  size_t needed_ = 0;  // successes that answer the client (quorum: a majority)
  Rank worst_ = kRankOk;
  std::string worst_reply_;
  bool worst_error_ = false;
  std::string ok_reply_;
  // Warm-up fill; a reply with its keys rewritten back.
  std::string fill_;
  std::string restored_;
};

struct AttemptFreeList {
  std::vector<Attempt*> items;
  ~AttemptFreeList() {
    for (auto* p : items)
      delete p;
  }
};
thread_local AttemptFreeList attempt_free;

void Attempt::start(RouteRule& rule, const RoutedRequest& request, const ReplyJudge& judge,
                    RouteCounters& counters, ReplyHandler& client, uint32_t cookie,
                    uint32_t affinity) {
  Attempt* a;
  if (!attempt_free.items.empty()) {
    a = attempt_free.items.back();
    attempt_free.items.pop_back();
  } else {
    a = new Attempt();
  }
  Ref<Attempt> self(a);  // parts may complete before start() returns
  a->client_ = Ref<ReplyHandler>(&client);
  a->owner_ = Ref<RefCounted>(rule.owner);
  a->cookie_ = cookie;
  a->affinity_ = affinity;
  a->rule_ = &rule;
  a->judge_ = &judge;
  a->counters_ = &counters;
  a->bytes_.clear();
  for (size_t i = 0; i < request.count; ++i)
    a->bytes_.append(request.pieces[i]);
  a->key_.assign(request.key);
  a->shape_ = request.shape;
  a->op_ = request.op;
  a->answered_ = false;
  a->have_kept_ = false;
  a->failure_ = Failure::kNoServer;
  a->warmup_ = false;
  a->ttl_capped_ = false;
  const auto& c = *rule.config;
  const bool read = request.op == config::RouteOp::kRead;
  switch (c.kind) {
    case RouteKind::kFailover:
      a->order_.clear();
      for (uint32_t p = 0; p < rule.pools.size(); ++p)
        a->order_.push_back(p);
      return a->begin_sequential(false);
    case RouteKind::kWarmup:
      a->order_.assign({0u});
      if (read) {
        a->order_.push_back(1);
        a->warmup_ = true;
      }
      return a->begin_sequential(read);
    case RouteKind::kReplicate:
      if (!read) return a->begin_parallel();
      break;
    case RouteKind::kPool:
      a->order_.assign({0u});
      return a->begin_sequential(false);
  }
  // A replicated read: the first pool by the read policy, then the others in order.
  const uint32_t n = static_cast<uint32_t>(rule.pools.size());
  uint32_t first = 0;
  switch (c.read) {
    case config::ReadPolicy::kFirst:
      break;
    case config::ReadPolicy::kRandom:
      first = next_random() % n;
      break;
    case config::ReadPolicy::kRoundRobin:
      first = rule.next_read++ % n;
      break;
    case config::ReadPolicy::kLeastLatency:
      // Unmeasured pools (0) are tried first, so every pool gets measured.
      for (uint32_t p = 1; p < n; ++p)
        if (rule.read_latency_us[p] < rule.read_latency_us[first]) first = p;
      break;
  }
  a->order_.clear();
  for (uint32_t i = 0; i < n; ++i)
    a->order_.push_back((first + i) % n);
  a->begin_sequential(c.miss_failover);
}

// --- sequential: one pool at a time --------------------------------------------------------------

void Attempt::begin_sequential(bool move_on_miss) {
  mode_ = Mode::kSequential;
  move_on_miss_ = move_on_miss;
  position_ = 0;
  next_attempt();
}

void Attempt::next_attempt() {
  while (position_ < order_.size()) {
    const uint32_t p = order_[position_++];
    if (position_ > 1) RouteCounters::bump(counters_->failovers);
    Pool& pool = *rule_->pools[p];
    const uint32_t s = pool.server_for(key_);
    if (s == Distribution::kNoServer) {
      failure_ = Failure::kNoServer;
      continue;
    }
    if (!pool.server(s).available() && position_ < order_.size()) {
      failure_ = Failure::kUnavailable;
      continue;
    }
    // A write that lands on a failover pool keeps at most failover_ttl.
    const auto& c = *rule_->config;
    if (position_ > 1 && !ttl_capped_ && c.kind == RouteKind::kFailover && c.failover_ttl &&
        op_ == config::RouteOp::kWrite) {
      ttl_capped_ = true;
      if (judge_->cap_ttl(bytes_, *c.failover_ttl, fill_)) bytes_.swap(fill_);
    }
    sent_at_ = Clock::now();
    const std::string_view bytes = bytes_;
    pool.server(s).send(&bytes, 1, shape_, *this, p, affinity_, timeout_of(*rule_));
    return;
  }
  if (have_kept_) return answer(kept_reply_, kept_error_);
  answer_failure(failure_);
}

void Attempt::on_reply(uint32_t part, std::string_view reply, bool error) {
  if (part == kTtlCookie) return send_fill(reply);
  if (mode_ == Mode::kParallel) {
    const ReplyClass c = judge_->classify(reply, error, op_);
    return parallel_done(part, rank_of(c), reply, error, Failure::kClosed);
  }
  if (rule_->config->kind == RouteKind::kReplicate && part < rule_->read_latency_us.size()) {
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - sent_at_).count();
    double& avg = rule_->read_latency_us[part];
    avg = avg == 0 ? us : 0.8 * avg + 0.2 * us;
  }
  const ReplyClass c = judge_->classify(reply, error, op_);
  const bool move_on = c == ReplyClass::kError || (c == ReplyClass::kMiss && move_on_miss_);
  if (move_on && position_ < order_.size()) {
    kept_reply_.assign(reply);
    kept_error_ = error;
    have_kept_ = true;
    return next_attempt();
  }
  answer(reply, error);
  if (warmup_ && part == 1 && c == ReplyClass::kOk) start_fill(reply);
}

void Attempt::on_failure(uint32_t part, Failure failure) {
  if (part == kTtlCookie) return;  // no TTL, no fill
  if (mode_ == Mode::kParallel) return parallel_done(part, kRankFailure, {}, false, failure);
  failure_ = failure;
  next_attempt();
}

// --- parallel: every pool at once --------------------------------------------------------------

void Attempt::begin_parallel() {
  mode_ = Mode::kParallel;
  const size_t n = rule_->pools.size();
  const auto mode = rule_->config->mode;
  needed_ = mode == config::ReplicateMode::kQuorum ? n / 2 + 1 : n;
  ok_ = 0;
  worst_ = kRankOk;
  worst_reply_.clear();
  ok_reply_.clear();
  outstanding_ = n;
  const std::string_view bytes = bytes_;
  for (uint32_t p = 0; p < n; ++p) {
    Pool& pool = *rule_->pools[p];
    const uint32_t s = pool.server_for(key_);
    if (s == Distribution::kNoServer || !pool.server(s).available()) {
      parallel_done(p, kRankFailure, {}, false,
                    s == Distribution::kNoServer ? Failure::kNoServer : Failure::kUnavailable,
                    false);
      continue;
    }
    if (mode == config::ReplicateMode::kAllAsync && p > 0) {
      if (counters_->async_pending.load(std::memory_order_relaxed) >= kMaxAsyncInFlight) {
        RouteCounters::bump(counters_->async_dropped);
        parallel_done(p, kRankFailure, {}, false, Failure::kUnavailable, false);
        continue;
      }
      RouteCounters::bump(counters_->async_pending);
    }
    pool.server(s).send(&bytes, 1, shape_, *this, p, affinity_, timeout_of(*rule_));
  }
}

void Attempt::parallel_done(uint32_t part, Rank rank, std::string_view reply, bool error,
                            Failure failure, bool sent) {
  const auto mode = rule_->config->mode;
  if (sent && mode == config::ReplicateMode::kAllAsync && part > 0)
    RouteCounters::bump(counters_->async_pending, -1);
  if (rank >= kRankError) RouteCounters::bump(counters_->replica_failures);
  if (rank == kRankOk) {
    ++ok_;
    if (ok_reply_.empty()) ok_reply_.assign(reply);
  }
  if (rank > worst_) {
    worst_ = rank;
    worst_reply_.assign(reply);
    worst_error_ = error;
    if (rank == kRankFailure) failure_ = failure;
  }
  --outstanding_;
  if (answered_) return;
  if (mode == config::ReplicateMode::kAllAsync) {
    if (part != 0) return;
    if (rank == kRankFailure) return answer_failure(failure);
    return answer(reply, error);
  }
  if (mode == config::ReplicateMode::kQuorum && ok_ >= needed_) return answer(ok_reply_, false);
  if (outstanding_ != 0) return;
  if (worst_ == kRankFailure) return answer_failure(failure_);
  if (worst_ == kRankOk) return answer(ok_reply_, false);
  answer(worst_reply_, worst_error_);
}

// --- answers and warm-up -----------------------------------------------------------------------

void Attempt::answer(std::string_view reply, bool error) {
  if (answered_) return;
  answered_ = true;
  Ref<ReplyHandler> client = std::move(client_);
  const auto& c = *rule_->config;
  if (!error && (!c.strip_prefix.empty() || !c.add_prefix.empty()) &&
      judge_->restore_reply(bytes_, reply, c.strip_prefix, c.add_prefix, restored_))
    reply = restored_;
  client->on_reply(cookie_, reply, error);
}

void Attempt::answer_failure(Failure failure) {
  if (answered_) return;
  answered_ = true;
  Ref<ReplyHandler> client = std::move(client_);
  client->on_failure(cookie_, failure);
}

void Attempt::start_fill(std::string_view reply) {
  kept_reply_.assign(reply);
  std::string ttl_request;
  if (judge_->ttl_request(bytes_, key_, ttl_request)) {
    Pool& warm = *rule_->pools[1];
    const uint32_t s = usable_server(warm, key_);
    if (s == Distribution::kNoServer) return;
    const std::string_view bytes = ttl_request;
    warm.server(s).send(&bytes, 1, judge_->ttl_shape(), *this, kTtlCookie, affinity_);
    return;
  }
  send_fill({});
}

void Attempt::send_fill(std::string_view ttl_reply) {
  if (!judge_->fill(bytes_, key_, kept_reply_, ttl_reply, fill_)) return;
  // The copy is a write of the rule's like any other: ttl.max holds for it too.
  if (const auto& max = rule_->config->ttl_max; max && judge_->cap_ttl(fill_, *max, restored_))
    fill_.swap(restored_);
  Pool& cold = *rule_->pools[0];
  const uint32_t s = usable_server(cold, key_);
  if (s == Distribution::kNoServer) return;
  const std::string_view bytes = fill_;
  cold.server(s).send(&bytes, 1, judge_->fill_shape(), counters_->sink, kFillCookie, affinity_);
}

void Attempt::destroy() {
  client_.reset();
  owner_.reset();
  const bool small = bytes_.capacity() < kKeepCapacity && kept_reply_.capacity() < kKeepCapacity &&
                     worst_reply_.capacity() < kKeepCapacity &&
                     ok_reply_.capacity() < kKeepCapacity && fill_.capacity() < kKeepCapacity &&
                     restored_.capacity() < kKeepCapacity;
  if (attempt_free.items.size() < kMaxPooled && small) {
    attempt_free.items.push_back(this);
  } else {
    delete this;
  }
}

}  // namespace

void RouteSink::on_reply(uint32_t cookie, std::string_view, bool error) {
  done(cookie, error);
}

void RouteSink::on_failure(uint32_t cookie, Failure) {
  done(cookie, true);
}

void RouteSink::done(uint32_t cookie, bool failed) {
  if (cookie == kFillCookie) {
    if (!failed) RouteCounters::bump(counters_.warmup_fills);
    return;
  }
  RouteCounters::bump(counters_.shadow_pending, -1);
  if (failed) RouteCounters::bump(counters_.shadow_failures);
}

void route_request(RouteRule& rule, const RoutedRequest& original, const ReplyJudge& judge,
                   RouteCounters& counters, ReplyHandler& client, uint32_t cookie,
                   uint32_t affinity) {
  RouteCounters::bump(counters.routed);
  const auto& c = *rule.config;
  RoutedRequest request = original;
  // The request as the pools get it: keys rewritten, then the expiry capped. (Thread-local: the
  // bytes are copied by whatever sends them before this returns.)
  static thread_local std::string joined, rewritten, capped, key, refusal;
  std::string_view piece;
  const bool rewrite = !c.strip_prefix.empty() || !c.add_prefix.empty();
  if (rewrite || (c.ttl_max && request.op == config::RouteOp::kWrite)) {
    joined.clear();
    for (size_t i = 0; i < request.count; ++i)
      joined.append(request.pieces[i]);
    piece = joined;
  }
  if (rewrite) {
    if (judge.rewrite_request(piece, c.strip_prefix, c.add_prefix, rewritten, key, refusal)) {
      piece = rewritten;
      request.key = key;
    } else if (!refusal.empty()) {
      return client.on_reply(cookie, refusal, true);
    }
  }
  if (c.ttl_max && request.op == config::RouteOp::kWrite &&
      judge.cap_ttl(piece, *c.ttl_max, capped))
    piece = capped;
  if (!piece.empty()) {
    request.pieces = &piece;
    request.count = 1;
  }
  if (rule.shadow != nullptr) send_shadow(rule, request, counters, affinity);
  const auto kind = c.kind;
  const bool one_pool =
      !rewrite && (kind == RouteKind::kPool ||
                   (kind == RouteKind::kWarmup && request.op != config::RouteOp::kRead));
  if (one_pool) {
    // Straight to the server: nothing to retry, nothing to copy, no reply to rewrite.
    Pool& pool = *rule.pools[0];
    const uint32_t s = pool.server_for(request.key);
    if (s == Distribution::kNoServer) return client.on_failure(cookie, Failure::kNoServer);
    return pool.server(s).send(request.pieces, request.count, request.shape, client, cookie,
                               affinity, timeout_of(rule));
  }
  Attempt::start(rule, request, judge, counters, client, cookie, affinity);
}

}  // namespace cachegate::routing
