#include "protocol/memcache_reply.h"

#include <cstring>

namespace cachegate::protocol::memcache {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::memcmp(s.data(), prefix.data(), prefix.size()) == 0;
}

// Finds the line at data[pos]; returns false when incomplete. `text` excludes the line ending.
enum class LineResult { kOk, kNeedMore, kTooLong };
LineResult find_line(const char* data, size_t size, size_t pos, std::string_view& text,
                     size_t& next) {
  size_t avail = size - pos;
  size_t window = avail < kMaxReplyLine ? avail : kMaxReplyLine;
  const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', window));
  if (nl == nullptr) return avail >= kMaxReplyLine ? LineResult::kTooLong : LineResult::kNeedMore;
  size_t end = static_cast<size_t>(nl - data);
  next = end + 1;
  if (end > pos && data[end - 1] == '\r') --end;
  text = std::string_view(data + pos, end - pos);
  return LineResult::kOk;
}

// Reads the decimal at s[pos..] up to a space or the end.
bool read_number(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

// The n-th space-separated field of a line (0-based).
std::string_view field(std::string_view line, int n) {
  size_t pos = 0;
  for (int i = 0; i < n; ++i) {
    pos = line.find(' ', pos);
    if (pos == std::string_view::npos) return {};
    while (pos < line.size() && line[pos] == ' ')
      ++pos;
  }
  size_t end = line.find(' ', pos);
  return line.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
}

// The replies memcached gives in one line to the commands forwarded with a one-line reply
// (storage commands, delete, incr/decr, touch, flush_all), besides error lines. Any other line is
// not memcached speaking: passing it on would hand the client a stranger's bytes as its answer,
// and the lines after it as the answers to its next requests.
bool is_line_reply(std::string_view line) {
  static constexpr std::string_view kWords[] = {"STORED",  "NOT_STORED", "EXISTS", "NOT_FOUND",
                                                "DELETED", "TOUCHED",    "OK",     "END"};
  for (std::string_view word : kWords)
    if (line == word) return true;
  if (starts_with(line, "VERSION ")) return true;
  // incr/decr: the new value, a 64-bit unsigned number.
  if (line.empty() || line.size() > 20) return false;
  for (char c : line)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

bool is_error_line(std::string_view line) {
  return line == "ERROR" || starts_with(line, "ERROR ") || starts_with(line, "CLIENT_ERROR") ||
         starts_with(line, "SERVER_ERROR");
}

ParseStatus ReplyFramer::frame_meta(const char* data, size_t size, size_t pos, size_t& next,
                                    bool& is_mn, bool& error) {
  std::string_view line;
  size_t after = 0;
  switch (find_line(data, size, pos, line, after)) {
    case LineResult::kNeedMore:
      return ParseStatus::kNeedMore;
    case LineResult::kTooLong:
      return ParseStatus::kInvalid;
    case LineResult::kOk:
      break;
  }
  is_mn = line == "MN";
  error = is_error_line(line);
  if (starts_with(line, "VA ")) {
    uint64_t length;
    if (!read_number(field(line, 1), length) || length > reply_size_max_)
      return ParseStatus::kInvalid;
    uint64_t end = after + length + 2;
    if (end > size) return ParseStatus::kNeedMore;
    if (data[after + length] != '\r' || data[after + length + 1] != '\n')
      return ParseStatus::kInvalid;
    next = static_cast<size_t>(end);
    return ParseStatus::kOk;
  }
  // Every other meta reply is one line with a two-letter code (HD EN NF NS EX ME MN) or an
  // error line.
  if (!error && (line.size() < 2 || (line.size() > 2 && line[2] != ' ')))
    return ParseStatus::kInvalid;
  next = after;
  return ParseStatus::kOk;
}

ParseStatus ReplyFramer::frame(const char* data, size_t size, ReplyShape shape, ReplyFrame& out) {
  switch (shape) {
    case ReplyShape::kMcLine: {
      std::string_view line;
      size_t after = 0;
      switch (find_line(data, size, 0, line, after)) {
        case LineResult::kNeedMore:
          return ParseStatus::kNeedMore;
        case LineResult::kTooLong:
          return ParseStatus::kInvalid;
        case LineResult::kOk:
          break;
      }
      // Anything else, a retrieval or meta reply included (requests and replies out of step),
      // means the stream can no longer be trusted.
      out.error = is_error_line(line);
      if (!out.error && !is_line_reply(line)) return ParseStatus::kInvalid;
      out.length = out.payload_length = after;
      return ParseStatus::kOk;
    }

    case ReplyShape::kMcRetrieval: {
      size_t pos = scanned_;
      for (;;) {
        std::string_view line;
        size_t after = 0;
        switch (find_line(data, size, pos, line, after)) {
          case LineResult::kNeedMore:
            scanned_ = pos;
            return ParseStatus::kNeedMore;
          case LineResult::kTooLong:
            return ParseStatus::kInvalid;
          case LineResult::kOk:
            break;
        }
        if (line == "END") {
          out.length = out.payload_length = after;
          out.error = false;
          return ParseStatus::kOk;
        }
        if (starts_with(line, "VALUE ")) {
          // VALUE <key> <flags> <bytes> [<cas unique>]
          uint64_t length;
          if (!read_number(field(line, 3), length) || length > reply_size_max_)
            return ParseStatus::kInvalid;
          uint64_t end = after + length + 2;
          if (end > reply_size_max_) return ParseStatus::kInvalid;
          if (end > size) {
            scanned_ = pos;
            return ParseStatus::kNeedMore;
          }
          if (data[after + length] != '\r' || data[after + length + 1] != '\n')
            return ParseStatus::kInvalid;
          pos = static_cast<size_t>(end);
          continue;
        }
        // An error ends the reply, even after items: memcached stops a multi-get it cannot
        // finish (out of memory) with a SERVER_ERROR and no END.
        if (is_error_line(line)) {
          out.length = out.payload_length = after;
          out.error = true;
          return ParseStatus::kOk;
        }
        return ParseStatus::kInvalid;
      }
    }

    case ReplyShape::kMcMeta: {
      size_t next = 0;
      bool is_mn = false, error = false;
      ParseStatus st = frame_meta(data, size, 0, next, is_mn, error);
      if (st != ParseStatus::kOk) return st;
      out.length = out.payload_length = next;
      out.error = error;
      return ParseStatus::kOk;
    }

    case ReplyShape::kMcMetaQuiet: {
      // Zero or one reply to the quiet request, then the MN of the appended "mn".
      size_t pos = scanned_;
      for (;;) {
        size_t next = 0;
        bool is_mn = false, error = false;
        ParseStatus st = frame_meta(data, size, pos, next, is_mn, error);
        if (st == ParseStatus::kNeedMore) scanned_ = pos;
        if (st != ParseStatus::kOk) return st;
        if (is_mn) {
          out.length = next;
          out.payload_length = pos;
          out.error = quiet_error_;
          quiet_error_ = false;
          return ParseStatus::kOk;
        }
        if (pos != 0) return ParseStatus::kInvalid;  // two replies for one request
        quiet_error_ = error;  // kept across calls: the MN may arrive in a later read
        pos = next;
      }
    }
    case ReplyShape::kResp2:
    case ReplyShape::kResp3:
      break;  // not a memcached reply
  }
  return ParseStatus::kInvalid;
}

bool ValueItems::next(std::string_view& key, std::string_view& item) {
  if (!starts_with(rest_, "VALUE ")) return false;
  size_t nl = rest_.find('\n');
  if (nl == std::string_view::npos) return false;
  std::string_view line = rest_.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  uint64_t length = 0;
  if (!read_number(field(line, 3), length)) return false;
  key = field(line, 1);
  size_t total = nl + 1 + length + 2;
  if (total > rest_.size()) return false;
  item = rest_.substr(0, total);
  rest_.remove_prefix(total);
  return true;
}

}  // namespace cachegate::protocol::memcache
