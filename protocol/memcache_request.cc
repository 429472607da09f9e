#include "protocol/memcache_request.h"

#include <climits>
#include <cstring>

#include "protocol/base64.h"

namespace cachegate::protocol::memcache {

namespace {

constexpr std::string_view kNoreply = "noreply";

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

bool parse_u32(std::string_view s, uint32_t& out) {
  uint64_t v;
  if (!parse_u64(s, v) || v > UINT32_MAX) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// memcached reads exptimes with safe_strtol into an int32: a sign is allowed (negative means
// "already expired").
bool parse_exptime(std::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  uint64_t v;
  return parse_u64(s, v) && v <= static_cast<uint64_t>(INT32_MAX) + 1;
}

// memcached's data length: read with strtol, so a sign is allowed ("+5", "-0"), then it must be
// a non-negative int32 no larger than INT_MAX - 2. Anything memcached reads as a length must be
// read the same here, or the data block would be framed differently on the two sides.
bool parse_length(std::string_view s, uint64_t& out) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (!parse_u64(s, out) || out > static_cast<uint64_t>(INT_MAX) - 2) return false;
  return !negative || out == 0;
}

// Keys may not contain control characters or whitespace (protocol.txt, "Keys"); whitespace
// cannot occur inside a token, so control characters are what is left to check.
bool key_has_control_chars(std::string_view key) {
  for (unsigned char c : key)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

bool is(std::string_view a, const char* b) {
  return a == b;
}

}  // namespace

std::string_view command_name(Command c) {
  switch (c) {
    case Command::kGet:
      return "get";
    case Command::kGets:
      return "gets";
    case Command::kGat:
      return "gat";
    case Command::kGats:
      return "gats";
    case Command::kSet:
      return "set";
    case Command::kAdd:
      return "add";
    case Command::kReplace:
      return "replace";
    case Command::kAppend:
      return "append";
    case Command::kPrepend:
      return "prepend";
    case Command::kCas:
      return "cas";
    case Command::kDelete:
      return "delete";
    case Command::kIncr:
      return "incr";
    case Command::kDecr:
      return "decr";
    case Command::kTouch:
      return "touch";
    case Command::kMetaGet:
      return "mg";
    case Command::kMetaSet:
      return "ms";
    case Command::kMetaDelete:
      return "md";
    case Command::kMetaArithmetic:
      return "ma";
    case Command::kMetaDebug:
      return "me";
    case Command::kMetaNoop:
      return "mn";
    case Command::kFlushAll:
      return "flush_all";
    case Command::kVersion:
      return "version";
    case Command::kVerbosity:
      return "verbosity";
    case Command::kStats:
      return "stats";
    case Command::kQuit:
      return "quit";
  }
  return "?";
}

ParseStatus RequestParser::fail(std::string_view reply, uint32_t consumed, uint64_t swallow,
                                bool close) {
  error_.reply = reply;
  error_.consumed = consumed;
  error_.swallow = swallow;
  error_.close = close;
  error_.suppress = noreply_ && !close;
  return ParseStatus::kInvalid;
}

ParseStatus RequestParser::parse(const char* data, size_t size, Request& out) {
  needed_ = 0;
  noreply_ = false;
  if (size == 0) return ParseStatus::kNeedMore;
  // The binary protocol starts with magic byte 0x80; there is no line to answer, only a clear
  // word before closing.
  if (static_cast<unsigned char>(data[0]) == 0x80)
    return fail(reply::kBinaryProtocol, static_cast<uint32_t>(size), 0, true);

  size_t window = size < limits_.request_line_max ? size : limits_.request_line_max;
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', window));
  if (nl == nullptr) {
    if (size >= limits_.request_line_max)
      return fail(reply::kLineTooLong, static_cast<uint32_t>(size), 0, true);
    return ParseStatus::kNeedMore;
  }
  auto line_length = static_cast<uint32_t>(nl - data + 1);
  uint32_t text_end = line_length - 1;
  if (text_end > 0 && data[text_end - 1] == '\r') --text_end;  // memcached also takes bare \n
  return parse_line(data, size, line_length, text_end, out);
}

ParseStatus RequestParser::parse_line(const char* data, size_t size, uint32_t line_length,
                                      uint32_t text_end, Request& out) {
  // Split on single spaces, as memcached's tokenizer does (runs of spaces collapse).
  tokens_.clear();
  for (uint32_t i = 0; i < text_end;) {
    while (i < text_end && data[i] == ' ')
      ++i;
    if (i == text_end) break;
    uint32_t start = i;
    while (i < text_end && data[i] != ' ')
      ++i;
    tokens_.push_back(Span{start, i - start});
  }
  if (tokens_.empty()) return fail(reply::kError, line_length);

  out = Request{};
  out.line_length = line_length;
  out.frame_length = line_length;
  out.start = tokens_[0].offset;
  const size_t n = tokens_.size();
  const std::string_view cmd = tokens_[0].in(data);
  auto tok = [&](size_t i) { return tokens_[i].in(data); };
  // A trailing "noreply" is the flag only after the command's own arguments: "delete noreply"
  // deletes the key "noreply" (memcached looks for the flag only when there are more tokens).
  noreply_ = n > 2 && tok(n - 1) == kNoreply;

  auto check_key = [&](const Span& key) -> std::string_view {
    if (key.length > kMaxKeyLength) return reply::kKeyTooLong;
    if (key_has_control_chars(key.in(data))) return reply::kBadKey;
    return {};
  };
  // The noreply token plus the spaces before it, so forwarding can cut it out.
  auto set_noreply = [&]() {
    out.noreply = true;
    uint32_t prev_end = tokens_[n - 2].offset + tokens_[n - 2].length;
    out.noreply_token = Span{prev_end, tokens_[n - 1].offset + tokens_[n - 1].length - prev_end};
  };

  // Command names are case-sensitive and lower-case (protocol.txt).
  if (cmd.size() == 2 && cmd[0] == 'm') return parse_meta(data, size, out);

  if (is(cmd, "get") || is(cmd, "gets") || is(cmd, "gat") || is(cmd, "gats")) {
    const bool touch = cmd[1] == 'a';
    out.command = touch ? (cmd.size() == 4 ? Command::kGats : Command::kGat)
                        : (cmd.size() == 4 ? Command::kGets : Command::kGet);
    noreply_ = false;  // retrieval commands have no noreply
    const size_t first_key = touch ? 2 : 1;
    if (n <= first_key) return fail(reply::kError, line_length);
    if (touch) {
      if (!parse_exptime(tok(1))) return fail(reply::kBadExptime, line_length);
      out.exptime = tokens_[1];
    }
    keys_.assign(tokens_.begin() + static_cast<ptrdiff_t>(first_key), tokens_.end());
    for (const Span& key : keys_) {
      auto bad = check_key(key);
      if (!bad.empty()) return fail(bad, line_length);
    }
    out.key = keys_[0];
    return ParseStatus::kOk;
  }

  if (is(cmd, "set") || is(cmd, "add") || is(cmd, "replace") || is(cmd, "append") ||
      is(cmd, "prepend") || is(cmd, "cas")) {
    return parse_storage(data, size, out);
  }

  if (is(cmd, "delete")) {
    out.command = Command::kDelete;
    if (line_length > kMaxServerLine) return fail(reply::kLineTooLong, line_length);
    // memcached accepts a legacy hold time of exactly "0": delete <key> [0] [noreply].
    bool valid =
        n == 2 || (n == 3 && (tok(2) == "0" || noreply_)) || (n == 4 && tok(2) == "0" && noreply_);
    if (!valid) return fail(n < 2 ? reply::kError : reply::kDeleteUsage, line_length);
    auto bad = check_key(tokens_[1]);
    if (!bad.empty()) return fail(bad, line_length);
    out.key = tokens_[1];
    if (noreply_) set_noreply();
    return ParseStatus::kOk;
  }

  if (is(cmd, "incr") || is(cmd, "decr")) {
    out.command = cmd[0] == 'i' ? Command::kIncr : Command::kDecr;
    if (line_length > kMaxServerLine) return fail(reply::kLineTooLong, line_length);
    if (n != 3 && n != 4) return fail(reply::kError, line_length);
    if (n == 4 && !noreply_) return fail(reply::kBadFormat, line_length);
    auto bad = check_key(tokens_[1]);
    if (!bad.empty()) return fail(bad, line_length);
    uint64_t delta;
    if (!parse_u64(tok(2), delta)) return fail(reply::kBadDelta, line_length);
    out.key = tokens_[1];
    if (noreply_) set_noreply();
    return ParseStatus::kOk;
  }

  if (is(cmd, "touch")) {
    out.command = Command::kTouch;
    if (line_length > kMaxServerLine) return fail(reply::kLineTooLong, line_length);
    if (n != 3 && n != 4) return fail(reply::kError, line_length);
    if (n == 4 && !noreply_) return fail(reply::kBadFormat, line_length);
    auto bad = check_key(tokens_[1]);
    if (!bad.empty()) return fail(bad, line_length);
    if (!parse_exptime(tok(2))) return fail(reply::kBadExptime, line_length);
    out.key = tokens_[1];
    if (noreply_) set_noreply();
    return ParseStatus::kOk;
  }

  if (is(cmd, "flush_all")) {
    out.command = Command::kFlushAll;
    noreply_ = n > 1 && tok(n - 1) == kNoreply;  // flush_all has no required argument
    if (line_length > kMaxServerLine) return fail(reply::kLineTooLong, line_length);
    size_t args = n - 1 - (noreply_ ? 1 : 0);
    if (args > 1) return fail(reply::kBadFormat, line_length);
    if (args == 1) {
      uint64_t delay;
      if (!parse_u64(tok(1), delay) || delay > INT32_MAX)
        return fail(reply::kBadFormat, line_length);
      out.argument = tokens_[1];
    }
    if (noreply_) set_noreply();
    return ParseStatus::kOk;
  }

  if (is(cmd, "version")) {
    out.command = Command::kVersion;
    noreply_ = false;
    if (n != 1) return fail(reply::kError, line_length);
    return ParseStatus::kOk;
  }

  if (is(cmd, "verbosity")) {
    out.command = Command::kVerbosity;
    if (n != 2 && n != 3) return fail(reply::kError, line_length);
    if (n == 3 && !noreply_) return fail(reply::kBadFormat, line_length);
    uint32_t level;
    if (!parse_u32(tok(1), level)) return fail(reply::kBadFormat, line_length);
    out.argument = tokens_[1];
    if (noreply_) set_noreply();
    return ParseStatus::kOk;
  }

  if (is(cmd, "stats")) {
    out.command = Command::kStats;
    noreply_ = false;
    if (n > 1)
      out.argument = Span{tokens_[1].offset,
                          tokens_[n - 1].offset + tokens_[n - 1].length - tokens_[1].offset};
    return ParseStatus::kOk;
  }

  if (is(cmd, "quit")) {
    out.command = Command::kQuit;
    noreply_ = false;
    return ParseStatus::kOk;
  }

  noreply_ = false;
  // Server administration commands exist in memcached but make no sense through a proxy that
  // spreads keys over many servers: say so rather than "ERROR", which reads as a typo.
  if (is(cmd, "cache_memlimit") || is(cmd, "shutdown") || is(cmd, "slabs") || is(cmd, "lru") ||
      is(cmd, "lru_crawler") || is(cmd, "watch") || is(cmd, "misbehave") || is(cmd, "debugtime") ||
      is(cmd, "extstore") || is(cmd, "refresh_certs")) {
    return fail(reply::kUnsupported, line_length);
  }
  return fail(reply::kError, line_length);
}

ParseStatus RequestParser::parse_storage(const char* data, size_t size, Request& out) {
  const uint32_t line_length = out.line_length;
  const size_t n = tokens_.size();
  const std::string_view cmd = tokens_[0].in(data);
  auto tok = [&](size_t i) { return tokens_[i].in(data); };
  switch (cmd[0]) {
    case 's':
      out.command = Command::kSet;
      break;
    case 'a':
      out.command = cmd[1] == 'd' ? Command::kAdd : Command::kAppend;
      break;
    case 'r':
      out.command = Command::kReplace;
      break;
    case 'p':
      out.command = Command::kPrepend;
      break;
    default:
      out.command = Command::kCas;
      break;
  }
  const bool cas = out.command == Command::kCas;
  const size_t base = cas ? 6 : 5;  // tokens without noreply

  // The length decides framing, so it is read first: once it is known, any other problem with
  // the line still skips the data block and the connection stays usable.
  uint64_t length = 0;
  if (n < 5 || !parse_length(tok(4), length)) return fail(reply::kBadFormat, line_length);
  const uint64_t block = length + 2;
  if (line_length > kMaxServerLine) return fail(reply::kLineTooLong, line_length, block);
  if (n != base && n != base + 1) return fail(reply::kBadFormat, line_length, block);
  if (n == base + 1 && !noreply_) return fail(reply::kBadFormat, line_length, block);
  if (n == base) noreply_ = false;  // "noreply" in the cas position is not noreply

  if (tokens_[1].length > kMaxKeyLength) return fail(reply::kKeyTooLong, line_length, block);
  if (key_has_control_chars(tok(1))) return fail(reply::kBadKey, line_length, block);
  uint32_t flags;
  uint64_t cas_unique;
  if (!parse_u32(tok(2), flags) || !parse_exptime(tok(3)) ||
      (cas && !parse_u64(tok(5), cas_unique))) {
    return fail(reply::kBadFormat, line_length, block);
  }
  if (length > limits_.item_size_max) return fail(reply::kTooLarge, line_length, block);

  out.key = tokens_[1];
  out.data_length = length;
  if (noreply_) {
    out.noreply = true;
    uint32_t prev_end = tokens_[n - 2].offset + tokens_[n - 2].length;
    out.noreply_token = Span{prev_end, tokens_[n - 1].offset + tokens_[n - 1].length - prev_end};
  }
  const uint64_t total = line_length + block;
  if (size < total) {
    needed_ = total;
    return ParseStatus::kNeedMore;
  }
  const char* end = data + line_length + length;
  if (end[0] != '\r' || end[1] != '\n')
    return fail(reply::kBadDataChunk, static_cast<uint32_t>(total));
  out.frame_length = static_cast<uint32_t>(total);
  return ParseStatus::kOk;
}

ParseStatus RequestParser::parse_meta(const char* data, size_t size, Request& out) {
  const uint32_t line_length = out.line_length;
  const size_t n = tokens_.size();
  const std::string_view cmd = tokens_[0].in(data);
  auto tok = [&](size_t i) { return tokens_[i].in(data); };
  noreply_ = false;  // meta quiet mode still returns errors ("Errors are always returned")

  switch (cmd[1]) {
    case 'g':
      out.command = Command::kMetaGet;
      break;
    case 's':
      out.command = Command::kMetaSet;
      break;
    case 'd':
      out.command = Command::kMetaDelete;
      break;
    case 'a':
      out.command = Command::kMetaArithmetic;
      break;
    case 'e':
      out.command = Command::kMetaDebug;
      break;
    case 'n':
      out.command = Command::kMetaNoop;
      return ParseStatus::kOk;
    default:
      return fail(reply::kError, line_length);
  }
  const bool set = out.command == Command::kMetaSet;
  if (n < 2 || (set && n < 3)) return fail(reply::kBadFormat, line_length);

  uint64_t block = 0;
  if (set) {
    uint64_t length;
    // memcached answers an unreadable ms length with "bad data chunk" and skips nothing.
    if (!parse_length(tok(2), length)) return fail(reply::kBadDataChunk, line_length);
    out.data_length = length;
    block = length + 2;
  }
  if (n > kMaxMetaTokens) return fail(reply::kTooManyTokens, line_length, block);
  if (line_length > kMaxServerLine) return fail(reply::kLineTooLong, line_length, block);
  const Span key = tokens_[1];
  if (key.length > kMaxKeyLength) return fail(reply::kKeyTooLong, line_length, block);
  if (key_has_control_chars(key.in(data))) return fail(reply::kBadKey, line_length, block);

  // Flags are single characters, possibly followed by a token; memcached looks only at the
  // first character of each.
  for (size_t i = set ? 3 : 2; i < n; ++i) {
    char flag = data[tokens_[i].offset];
    if (flag == 'b') out.base64_key = true;
    if (flag == 'q') out.noreply = true;
  }
  if (out.command == Command::kMetaDebug) {
    // me has no quiet mode, and decodes its key only when its one flag is exactly "b".
    out.noreply = false;
    out.base64_key = n >= 3 && tok(2) == "b";
  }
  if (out.base64_key) {
    auto decoded = base64_decode(key.in(data), decoded_key_, sizeof decoded_key_);
    if (!decoded || *decoded == 0) return fail(reply::kBadBase64, line_length, block);
    decoded_length_ = *decoded;
  }
  if (set && out.data_length > limits_.item_size_max)
    return fail(reply::kTooLarge, line_length, block);
  out.key = key;

  if (set) {
    const uint64_t total = line_length + block;
    if (size < total) {
      needed_ = total;
      return ParseStatus::kNeedMore;
    }
    const char* end = data + line_length + out.data_length;
    if (end[0] != '\r' || end[1] != '\n')
      return fail(reply::kBadDataChunk, static_cast<uint32_t>(total));
    out.frame_length = static_cast<uint32_t>(total);
  }
  return ParseStatus::kOk;
}

}  // namespace cachegate::protocol::memcache
