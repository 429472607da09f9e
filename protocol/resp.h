#pragma once

// Redis RESP2/RESP3: request framing (multibulk and inline commands, parsed exactly as
// redis-server's networking.c parses them, so a forwarded request is framed identically by the
// server), reply framing (every RESP2 and RESP3 type, nested, resumable), a reader for the
// elements of complete replies, and encoders. No allocation per request once warm: argument
// views and the aggregate stack live in vectors the parser reuses.
// Reference: https://redis.io/docs/reference/protocol-spec/

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cachegate::protocol::resp {

enum class ParseStatus : uint8_t { kOk, kNeedMore, kInvalid };

struct RequestLimits {
  uint32_t max_args = 1024 * 1024;          // redis: "invalid multibulk length" above
  uint64_t max_request = 64 * 1024 * 1024;  // one request, all its arguments together
  uint32_t max_inline = 64 * 1024;          // redis: PROTO_INLINE_MAX_SIZE
};

struct Request {
  uint32_t length = 0;  // bytes of input the request takes
  bool is_inline = false;
  // A request with no arguments ("*0", "*-1", an empty inline line): consumed, nothing to do.
  bool empty() const { return argc == 0; }
  uint32_t argc = 0;
};

class RequestParser {
 public:
  explicit RequestParser(RequestLimits limits = {}) : limits_(limits) {}

  // Parses the request at the start of [data, data + size). Resumable: after kNeedMore call
  // again with the same start and more bytes; work already done is kept.
  ParseStatus parse(const char* data, size_t size, Request& out);

  // The arguments of the last kOk request; views into the caller's bytes (multibulk) or into
  // the parser (inline, after unquoting). Valid until the next parse().
  const std::vector<std::string_view>& args() const { return args_; }
  // After kInvalid: redis's own protocol error text (without "-ERR "/CRLF). The connection's
  // framing is lost: answer it, then close.
  std::string_view error() const { return error_; }
  // After kNeedMore: the total size of the request when known, else 0.
  uint64_t needed() const { return needed_; }

 private:
  ParseStatus fail(std::string_view message);
  ParseStatus parse_multibulk(const char* data, size_t size, Request& out);
  ParseStatus parse_inline(const char* data, size_t size, Request& out);
  void reset_state();

  RequestLimits limits_;
  // Resumable multibulk state: bytes validated and the arguments found so far (as offsets).
  size_t pos_ = 0;
  int64_t expected_ = -1;
  struct Span {
    uint32_t offset;
    uint32_t length;
  };
  std::vector<Span> spans_;
  std::vector<std::string_view> args_;
  std::string inline_scratch_;
  std::string error_;
  uint64_t needed_ = 0;
};

struct ReplyFrame {
  size_t length = 0;   // bytes of the reply
  bool error = false;  // a top-level simple error ('-') or blob error ('!')
};

// Longest line (simple string, error, number, header) accepted in a reply.
inline constexpr size_t kMaxReplyLine = 64 * 1024;
// Deepest nesting accepted; redis replies rarely nest more than a handful of levels.
inline constexpr size_t kMaxDepth = 64;

class ReplyFramer {
 public:
  explicit ReplyFramer(uint64_t reply_size_max = 512 * 1024 * 1024)
      : reply_size_max_(reply_size_max) {}

  // Frames the reply at the start of [data, data + size). Resumable: elements already complete
  // are not scanned again; call reset() after kOk (or before framing a new stream).
  ParseStatus frame(const char* data, size_t size, ReplyFrame& out);
  void reset();

 private:
  struct Open {
    int64_t remaining;
    bool attribute;  // an attribute map: not itself an element of its parent
  };
  uint64_t reply_size_max_;
  size_t pos_ = 0;
  std::vector<Open> stack_;
  bool error_ = false;
  bool started_ = false;
};

// One element of a complete reply.
struct Value {
  char type = 0;             // '+', '-', ':', '$', '*', '_', ',', '#', '!', '=', '(', '%', '~', '>'
  std::string_view raw;      // all of its bytes, nested elements included
  std::string_view payload;  // the text of a line type, or the body of a blob type
  int64_t count = 0;         // elements of an aggregate (maps: pairs); -1 for RESP2 nulls
  bool is_null() const { return type == '_' || count < 0; }
  bool is_aggregate() const { return type == '*' || type == '%' || type == '~' || type == '>'; }
};

// Reads the element at in[pos] and moves pos past it (nested elements are skipped: use
// read_value again from pos of the first child, i.e. `raw`'s header end, to walk them).
// Returns false on malformed or incomplete input.
bool read_value(std::string_view in, size_t& pos, Value& out);
// The position just after an aggregate's header line, where its first child starts.
size_t children_start(const Value& aggregate);

// Encoders.
void append_array(std::string& out, size_t count);
void append_bulk(std::string& out, std::string_view bytes);
void append_simple(std::string& out, std::string_view text);
void append_error(std::string& out, std::string_view text);  // text without '-'
void append_integer(std::string& out, int64_t value);
void append_null(std::string& out, int protocol);               // $-1 (RESP2) or _ (RESP3)
void append_map(std::string& out, size_t pairs, int protocol);  // *2n (RESP2) or %n (RESP3)
void append_set(std::string& out, size_t count, int protocol);  // * (RESP2) or ~ (RESP3)
// A request: *argc then each argument as a bulk string.
void append_command(std::string& out, const std::string_view* args, size_t argc);

}  // namespace cachegate::protocol::resp
