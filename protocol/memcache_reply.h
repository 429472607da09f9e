#pragma once

// memcached text and meta protocol: framing of server replies.
//
// Replies carry no request id, so a connection's reply stream is cut by the shape of the reply
// each request expects, strictly in request order. Anything that does not fit the expected
// shape means the stream can no longer be trusted: the caller resets the connection.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/memcache_request.h"
#include "protocol/reply_shape.h"

namespace cachegate::protocol::memcache {

struct ReplyFrame {
  size_t length = 0;          // bytes of the reply in the stream
  size_t payload_length = 0;  // bytes that are the request's reply (without a quiet sentinel)
  bool error = false;         // ERROR, CLIENT_ERROR …, SERVER_ERROR …
};

// Longest reply line accepted (VALUE lines carry a key of at most 250 bytes and a few numbers;
// ME and stats lines are longer but bounded).
inline constexpr size_t kMaxReplyLine = 8 * 1024;

class ReplyFramer {
 public:
  explicit ReplyFramer(uint64_t reply_size_max = 64 * 1024 * 1024)
      : reply_size_max_(reply_size_max) {}

  // Frames the reply at the start of [data, data + size). Resumable: bytes already validated
  // are not scanned again on the next call for the same reply; call reset() after kOk.
  ParseStatus frame(const char* data, size_t size, ReplyShape shape, ReplyFrame& out);
  void reset() {
    scanned_ = 0;
    quiet_error_ = false;
  }

 private:
  // One meta reply at data[pos]; on kOk sets `next` past it and reports whether it was "MN".
  ParseStatus frame_meta(const char* data, size_t size, size_t pos, size_t& next, bool& is_mn,
                         bool& error);

  uint64_t reply_size_max_;
  size_t scanned_ = 0;
  bool quiet_error_ = false;  // the reply before a quiet request's MN was an error
};

bool is_error_line(std::string_view line);

// Walks the VALUE items of a complete retrieval reply (as framed above).
class ValueItems {
 public:
  explicit ValueItems(std::string_view reply) : rest_(reply) {}
  // The next item: its key, and all of its bytes (VALUE line, data block, CRLF).
  bool next(std::string_view& key, std::string_view& item);

 private:
  std::string_view rest_;
};

}  // namespace cachegate::protocol::memcache
