#pragma once

// How the route layer reads memcached and Redis replies (routing/routed_request.h's ReplyJudge),
// and how a warm-up copies an item from the warm pool into the cold one:
//
// - memcached: a single-key get/gets that hit on the warm pool is followed by `mg <key> t` there
//   (its remaining TTL), then `add <key> <flags> <ttl> <bytes>` on the cold pool — add, so that a
//   value written to the cold pool meanwhile is not overwritten. Meta reads are served from the
//   warm pool but not copied (their replies do not carry the flags unless asked for).
// - Redis: a GET that hit is followed by `PTTL <key>`, then `SET <key> <value> [PX <ttl>] NX`.
//   Other reads are served from the warm pool but not copied.
//
// Capping a write's expiry (a rule's ttl.max, a failover route's failover_ttl):
// - memcached: the exptime of set/add/replace/append/prepend/cas, touch, gat/gats, and the T
//   flag of ms (added when absent) and mg; 0 (never) and times further away become the cap; an
//   exptime past 30 days is a Unix time and is read as one.
// - Redis: SET (EX/PX/EXAT/PXAT; EX added when it has none), SETEX, PSETEX, GETEX (PERSIST
//   becomes EX), EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT. Commands that set no expiry (HSET, LPUSH,
//   MSET …) are sent as they are.
//
// A rule's rewrite of keys: memcached requests name one key (the route layer carries multi-key
// gets one key at a time), a base64 meta key is rewritten as the bytes it stands for; Redis
// requests name their keys where the command table says. Replies naming keys (VALUE lines, meta
// k flags and ME; LMPOP/ZMPOP and XREAD) are rewritten back.

#include "routing/routed_request.h"

namespace cachegate::routing {

class MemcacheJudge final : public ReplyJudge {
 public:
  ReplyClass classify(std::string_view reply, bool error, config::RouteOp op) const override;
  bool ttl_request(std::string_view request, std::string_view key, std::string& out) const override;
  bool fill(std::string_view request, std::string_view key, std::string_view reply,
            std::string_view ttl_reply, std::string& out) const override;
  bool cap_ttl(std::string_view request, uint32_t max_seconds, std::string& out) const override;
  bool rewrite_request(std::string_view request, std::string_view strip, std::string_view add,
                       std::string& out, std::string& key, std::string& refusal) const override;
  bool restore_reply(std::string_view request, std::string_view reply, std::string_view strip,
                     std::string_view add, std::string& out) const override;
  protocol::ReplyShape ttl_shape() const override { return protocol::ReplyShape::kMcMeta; }
  protocol::ReplyShape fill_shape() const override { return protocol::ReplyShape::kMcLine; }
};

class RedisJudge final : public ReplyJudge {
 public:
  ReplyClass classify(std::string_view reply, bool error, config::RouteOp op) const override;
  bool ttl_request(std::string_view request, std::string_view key, std::string& out) const override;
  bool fill(std::string_view request, std::string_view key, std::string_view reply,
            std::string_view ttl_reply, std::string& out) const override;
  bool cap_ttl(std::string_view request, uint32_t max_seconds, std::string& out) const override;
  bool rewrite_request(std::string_view request, std::string_view strip, std::string_view add,
                       std::string& out, std::string& key, std::string& refusal) const override;
  bool restore_reply(std::string_view request, std::string_view reply, std::string_view strip,
                     std::string_view add, std::string& out) const override;
  protocol::ReplyShape ttl_shape() const override { return protocol::ReplyShape::kResp2; }
  protocol::ReplyShape fill_shape() const override { return protocol::ReplyShape::kResp2; }
};

}  // namespace cachegate::routing
