#pragma once

// hiredis, the C client most Redis libraries are built on, in a small RAII wrapper for
// integration tests. Replies are rendered as short text ("status:OK", "int:3", "str:v", "nil",
// "err:ERR …", "[str:a, nil]") so that a test states the whole expected answer in one
// comparison. Header-only; the test executable links hiredis itself.

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cachegate::testing {

struct HiredisReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using HiredisReply = std::unique_ptr<redisReply, HiredisReplyDeleter>;

// The text form of a reply; nested arrays are rendered recursively.
inline std::string describe(const redisReply* r) {
  if (r == nullptr) return "no reply";
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      return "status:" + std::string(r->str, r->len);
    case REDIS_REPLY_ERROR:
      return "err:" + std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return "int:" + std::to_string(r->integer);
    case REDIS_REPLY_NIL:
      return "nil";
    case REDIS_REPLY_STRING:
      return "str:" + std::string(r->str, r->len);
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (size_t i = 0; i < r->elements; ++i) {
        if (i > 0) out += ", ";
        out += describe(r->element[i]);
      }
      return out + "]";
    }
    default:
      return "type:" + std::to_string(r->type);
  }
}

class Hiredis {
 public:
  Hiredis(uint16_t port, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    timeval tv{};
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    context_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (context_ == nullptr || context_->err != 0) {
      const std::string why = context_ ? context_->errstr : "out of memory";
      if (context_) redisFree(context_);
      throw std::runtime_error("hiredis could not connect: " + why);
    }
    redisSetTimeout(context_, tv);
  }
  ~Hiredis() {
    if (context_) redisFree(context_);
  }
  Hiredis(const Hiredis&) = delete;
  Hiredis& operator=(const Hiredis&) = delete;

  redisContext* context() { return context_; }
  // hiredis's own error for the connection (I/O, protocol, EOF), empty while it is healthy.
  std::string error() const { return context_->err ? context_->errstr : ""; }

  // One synchronous command; the reply object (null when hiredis failed, see error()).
  HiredisReply command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    return HiredisReply(static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data())));
  }
  // command() rendered by describe().
  std::string call(const std::vector<std::string>& args) { return describe(command(args).get()); }

  // Pipelining: queue commands with append(), then collect their replies with get_reply().
  void append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(args.size()), argv.data(),
                               lengths.data()) != REDIS_OK)
      throw std::runtime_error("redisAppendCommandArgv failed: " + error());
  }
  HiredisReply get_reply() {
    void* reply = nullptr;
    if (redisGetReply(context_, &reply) != REDIS_OK) return nullptr;
    return HiredisReply(static_cast<redisReply*>(reply));
  }

 private:
  redisContext* context_ = nullptr;
};

}  // namespace cachegate::testing
