#include "protocol/resp.h"

#include <cctype>
#include <climits>
#include <cstring>

namespace cachegate::protocol::resp {

namespace {

// redis's string2ll: optional '-', no '+', no leading zeros, no spaces, fits in int64.
bool string_to_ll(const char* p, size_t n, int64_t& out) {
  if (n == 0 || n > 20) return false;
  if (n == 1 && p[0] == '0') {
    out = 0;
    return true;
  }
  bool negative = false;
  size_t i = 0;
  if (p[0] == '-') {
    negative = true;
    i = 1;
    if (n == 1) return false;
  }
  if (p[i] < '1' || p[i] > '9') return false;
  uint64_t v = 0;
  for (; i < n; ++i) {
    if (p[i] < '0' || p[i] > '9') return false;
    const uint64_t d = static_cast<uint64_t>(p[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    out = v == static_cast<uint64_t>(INT64_MAX) + 1 ? INT64_MIN : -static_cast<int64_t>(v);
  } else {
    if (v > static_cast<uint64_t>(INT64_MAX)) return false;
    out = static_cast<int64_t>(v);
  }
  return true;
}

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return (std::tolower(static_cast<unsigned char>(c)) - 'a') + 10;
}
bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// redis's sdssplitargs over [p, end) (which stands for a NUL-terminated string: a NUL byte ends
// it). Appends the unquoted arguments to `scratch` and their ranges to `spans`. False when quotes
// are unbalanced or a closing quote is not followed by a space.
struct Range {
  size_t offset, length;
};
bool split_args(const char* p, const char* end, std::string& scratch, std::vector<Range>& spans) {
  auto at = [&](const char* q) { return q < end ? *q : '\0'; };
  for (;;) {
    while (at(p) != '\0' && is_space(at(p)))
      ++p;
    if (at(p) == '\0') return true;
    const size_t start = scratch.size();
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      const char c = at(p);
      if (in_double) {
        if (c == '\\' && at(p + 1) == 'x' && is_hex(at(p + 2)) && is_hex(at(p + 3))) {
          scratch.push_back(static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3))));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          char e = at(p);
          switch (e) {
            case 'n':
              e = '\n';
              break;
            case 'r':
              e = '\r';
              break;
            case 't':
              e = '\t';
              break;
            case 'b':
              e = '\b';
              break;
            case 'a':
              e = '\a';
              break;
            default:
              break;
          }
          scratch.push_back(e);
        } else if (c == '"') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          scratch.push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          scratch.push_back('\'');
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          scratch.push_back(c);
        }
      } else {
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"':
            in_double = true;
            break;
          case '\'':
            in_single = true;
            break;
          default:
            scratch.push_back(c);
            break;
        }
      }
      if (at(p) != '\0') ++p;
    }
    spans.push_back(Range{start, scratch.size() - start});
  }
}

}  // namespace

// --- requests ----------------------------------------------------------------------------------

void RequestParser::reset_state() {
  pos_ = 0;
  expected_ = -1;
  spans_.clear();
  needed_ = 0;
}

ParseStatus RequestParser::fail(std::string_view message) {
  error_.assign(message);
  reset_state();
  return ParseStatus::kInvalid;
}

ParseStatus RequestParser::parse(const char* data, size_t size, Request& out) {
  needed_ = 0;
  if (size == 0) return ParseStatus::kNeedMore;
  // redis decides by the first byte: '*' starts a multibulk request, anything else is inline.
  if (data[0] == '*') return parse_multibulk(data, size, out);
  return parse_inline(data, size, out);
}

ParseStatus RequestParser::parse_multibulk(const char* data, size_t size, Request& out) {
  // Lines are found by their '\r' and the '\n' after it is assumed, as redis does. Only the
  // first max_inline + 1 bytes are looked at: a longer line is refused whether or not its end has
  // arrived, so the outcome does not depend on how the bytes were split.
  auto find_cr = [&](size_t from) -> const char* {
    const size_t scan = std::min(size - from, static_cast<size_t>(limits_.max_inline) + 1);
    return static_cast<const char*>(std::memchr(data + from, '\r', scan));
  };
  if (expected_ < 0) {
    const char* cr = find_cr(0);
    if (cr == nullptr) {
      if (size > limits_.max_inline) return fail("Protocol error: too big mbulk count string");
      return ParseStatus::kNeedMore;
    }
    const size_t line = static_cast<size_t>(cr - data);
    if (line + 2 > size) return ParseStatus::kNeedMore;  // the '\n' is not here yet
    int64_t count;
    if (!string_to_ll(data + 1, line - 1, count) || count > INT_MAX ||
        count > static_cast<int64_t>(limits_.max_args)) {
      return fail("Protocol error: invalid multibulk length");
    }
    pos_ = line + 2;
    if (count <= 0) {
      out = Request{};
      out.length = static_cast<uint32_t>(pos_);
      args_.clear();
      reset_state();
      return ParseStatus::kOk;
    }
    expected_ = count;
    spans_.clear();
  }
  while (static_cast<int64_t>(spans_.size()) < expected_) {
    const char* cr = pos_ < size ? find_cr(pos_) : nullptr;
    if (cr == nullptr) {
      if (size - pos_ > limits_.max_inline)
        return fail("Protocol error: too big bulk count string");
      return ParseStatus::kNeedMore;
    }
    const size_t line_end = static_cast<size_t>(cr - data);
    if (line_end + 2 > size) return ParseStatus::kNeedMore;
    if (data[pos_] != '$') {
      std::string message = "Protocol error: expected '$', got '";
      message.push_back(data[pos_]);
      message.push_back('\'');
      return fail(message);
    }
    int64_t length;
    if (!string_to_ll(data + pos_ + 1, line_end - pos_ - 1, length) || length < 0 ||
        static_cast<uint64_t>(length) > limits_.max_request) {
      return fail("Protocol error: invalid bulk length");
    }
    const uint64_t body = line_end + 2;
    const uint64_t next = body + static_cast<uint64_t>(length) + 2;  // redis skips the CRLF unread
    if (next > limits_.max_request) return fail("Protocol error: request too large");
    if (next > size) {
      needed_ = next;
      return ParseStatus::kNeedMore;
    }
    spans_.push_back(Span{static_cast<uint32_t>(body), static_cast<uint32_t>(length)});
    pos_ = static_cast<size_t>(next);
  }
  out = Request{};
  out.length = static_cast<uint32_t>(pos_);
  out.argc = static_cast<uint32_t>(spans_.size());
  args_.clear();
  for (const Span& s : spans_)
    args_.emplace_back(data + s.offset, s.length);
  reset_state();
  return ParseStatus::kOk;
}

ParseStatus RequestParser::parse_inline(const char* data, size_t size, Request& out) {
  // A line longer than max_inline is refused whether or not its end has arrived yet (redis-server
  // refuses it only when it has not, so the outcome would depend on how the bytes were split).
  const size_t scan = std::min(size, static_cast<size_t>(limits_.max_inline) + 1);
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', scan));
  if (nl == nullptr) {
    if (size > limits_.max_inline) return fail("Protocol error: too big inline request");
    return ParseStatus::kNeedMore;
  }
  size_t line = static_cast<size_t>(nl - data);
  const size_t length = line + 1;
  if (line > 0 && data[line - 1] == '\r') --line;
  // A NUL byte ends the line as far as redis's parser is concerned.
  const char* nul = static_cast<const char*>(std::memchr(data, '\0', line));
  const char* end = nul != nullptr ? nul : data + line;
  inline_scratch_.clear();
  static thread_local std::vector<Range> ranges;
  ranges.clear();
  if (!split_args(data, end, inline_scratch_, ranges))
    return fail("Protocol error: unbalanced quotes in request");
  out = Request{};
  out.length = static_cast<uint32_t>(length);
  out.is_inline = true;
  out.argc = static_cast<uint32_t>(ranges.size());
  args_.clear();
  for (const Range& r : ranges)
    args_.emplace_back(inline_scratch_.data() + r.offset, r.length);
  reset_state();
  return ParseStatus::kOk;
}

// --- replies -----------------------------------------------------------------------------------

void ReplyFramer::reset() {
  pos_ = 0;
  stack_.clear();
  error_ = false;
  started_ = false;
}

ParseStatus ReplyFramer::frame(const char* data, size_t size, ReplyFrame& out) {
  for (;;) {
    if (pos_ >= size) return ParseStatus::kNeedMore;
    const size_t window = size - pos_ < kMaxReplyLine ? size - pos_ : kMaxReplyLine;
    const char* nl = static_cast<const char*>(std::memchr(data + pos_, '\n', window));
    if (nl == nullptr)
      return window == kMaxReplyLine ? ParseStatus::kInvalid : ParseStatus::kNeedMore;
    const size_t line_end = static_cast<size_t>(nl - data);  // at '\n'
    if (line_end == pos_ || data[line_end - 1] != '\r') return ParseStatus::kInvalid;
    const char type = data[pos_];
    const char* text = data + pos_ + 1;
    const size_t text_length = line_end - 1 - (pos_ + 1);
    if (!started_) {
      started_ = true;
      error_ = type == '-' || type == '!';
    }
    size_t next = line_end + 1;
    bool element_done = true;
    int64_t n = 0;
    switch (type) {
      case '+':
      case '-':
      case ':':
      case ',':
      case '(':
        break;
      case '_':
        if (text_length != 0) return ParseStatus::kInvalid;
        break;
      case '#':
        if (text_length != 1 || (text[0] != 't' && text[0] != 'f')) return ParseStatus::kInvalid;
        break;
      case '$':
      case '!':
      case '=': {
        if (!string_to_ll(text, text_length, n)) return ParseStatus::kInvalid;
        if (n == -1 && type == '$') break;  // RESP2 null bulk
        if (n < 0 || static_cast<uint64_t>(n) > reply_size_max_) return ParseStatus::kInvalid;
        const uint64_t end = next + static_cast<uint64_t>(n) + 2;
        if (end > reply_size_max_) return ParseStatus::kInvalid;
        if (end > size) return ParseStatus::kNeedMore;
        if (data[end - 2] != '\r' || data[end - 1] != '\n') return ParseStatus::kInvalid;
        next = static_cast<size_t>(end);
        break;
      }
      case '*':
      case '~':
      case '>':
      case '%':
      case '|': {
        if (!string_to_ll(text, text_length, n)) return ParseStatus::kInvalid;
        if (n == -1 && type == '*') break;  // RESP2 null array
        // Every element takes at least 3 bytes, so a count past the reply bound cannot be met
        // (and doubling it for maps cannot overflow).
        if (n < 0 || static_cast<uint64_t>(n) > reply_size_max_) return ParseStatus::kInvalid;
        if (type == '%' || type == '|') n *= 2;
        if (n == 0) {
          if (type == '|') return ParseStatus::kInvalid;  // an empty attribute has no use
          break;
        }
        if (stack_.size() >= kMaxDepth) return ParseStatus::kInvalid;
        stack_.push_back(Open{n, type == '|'});
        element_done = false;
        break;
      }
      default:
        return ParseStatus::kInvalid;  // also RESP3 streamed types, which redis never sends
    }
    pos_ = next;
    if (pos_ > reply_size_max_) return ParseStatus::kInvalid;
    if (!element_done) continue;
    // One element is complete: count it against the aggregates it closes.
    bool counted_at_top = stack_.empty();
    while (!stack_.empty()) {
      if (--stack_.back().remaining > 0) break;
      const bool attribute = stack_.back().attribute;
      stack_.pop_back();
      if (attribute) break;  // an attribute precedes the element it describes
      counted_at_top = stack_.empty();
    }
    if (stack_.empty() && counted_at_top) {
      out.length = pos_;
      out.error = error_;
      return ParseStatus::kOk;
    }
  }
}

// --- reading complete replies ------------------------------------------------------------------

bool read_value(std::string_view in, size_t& pos, Value& out) {
  if (pos >= in.size()) return false;
  ReplyFramer framer(UINT64_MAX);
  ReplyFrame frame;
  if (framer.frame(in.data() + pos, in.size() - pos, frame) != ParseStatus::kOk) return false;
  const char* start = in.data() + pos;
  const char* nl = static_cast<const char*>(std::memchr(start, '\n', frame.length));
  const size_t line = static_cast<size_t>(nl - start) - 1;  // without CRLF
  out = Value{};
  out.type = start[0];
  out.raw = std::string_view(start, frame.length);
  std::string_view text(start + 1, line - 1);
  switch (out.type) {
    case '$':
    case '!':
    case '=':
    case '*':
    case '~':
    case '>':
    case '%':
    case '|':
      string_to_ll(text.data(), text.size(), out.count);
      if (out.type == '$' || out.type == '!' || out.type == '=') {
        if (out.count >= 0) out.payload = std::string_view(start + line + 2, out.count);
      }
      break;
    default:
      out.payload = text;
      break;
  }
  pos += frame.length;
  return true;
}

size_t children_start(const Value& aggregate) {
  return aggregate.raw.find('\n') + 1;
}

// --- encoders ----------------------------------------------------------------------------------

namespace {
void append_header(std::string& out, char type, int64_t n) {
  char buf[24];
  out.push_back(type);
  int len = 0;
  uint64_t v = n < 0 ? static_cast<uint64_t>(-(n + 1)) + 1 : static_cast<uint64_t>(n);
  do {
    buf[len++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  if (n < 0) out.push_back('-');
  while (len > 0)
    out.push_back(buf[--len]);
  out.append("\r\n");
}
}  // namespace

void append_array(std::string& out, size_t count) {
  append_header(out, '*', static_cast<int64_t>(count));
}
void append_bulk(std::string& out, std::string_view bytes) {
  append_header(out, '$', static_cast<int64_t>(bytes.size()));
  out.append(bytes);
  out.append("\r\n");
}
void append_simple(std::string& out, std::string_view text) {
  out.push_back('+');
  out.append(text);
  out.append("\r\n");
}
void append_error(std::string& out, std::string_view text) {
  out.push_back('-');
  out.append(text);
  out.append("\r\n");
}
void append_integer(std::string& out, int64_t value) {
  append_header(out, ':', value);
}
void append_null(std::string& out, int protocol) {
  out.append(protocol >= 3 ? "_\r\n" : "$-1\r\n");
}
void append_map(std::string& out, size_t pairs, int protocol) {
  if (protocol >= 3) {
    append_header(out, '%', static_cast<int64_t>(pairs));
  } else {
    append_header(out, '*', static_cast<int64_t>(pairs * 2));
  }
}
void append_set(std::string& out, size_t count, int protocol) {
  append_header(out, protocol >= 3 ? '~' : '*', static_cast<int64_t>(count));
}
void append_command(std::string& out, const std::string_view* args, size_t argc) {
  append_array(out, argc);
  for (size_t i = 0; i < argc; ++i)
    append_bulk(out, args[i]);
}

}  // namespace cachegate::protocol::resp
