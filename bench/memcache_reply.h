#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

// Framing of the memcached text-protocol replies the load generator expects, checked exactly:
// https://github.com/memcached/memcached/blob/master/doc/protocol.txt
//
// The functions are pure: they look at the bytes received so far and either recognise one whole
// reply or say more bytes are needed, without side effects, so the caller simply parses again
// from the start of the reply once more bytes arrive. Replies here are at most a few KiB, so the
// re-parse costs less than carrying parser state across reads would.
namespace cachegate::bench {

enum class ReplyStatus {
  kOk,        // one whole reply was recognised; `consumed` bytes belong to it
  kNeedMore,  // the reply is not complete yet
  kInvalid,   // the bytes are not the reply we asked for: framing is lost
};

struct ReplyResult {
  ReplyStatus status = ReplyStatus::kNeedMore;
  size_t consumed = 0;
  uint32_t hits = 0;         // VALUE blocks, each for one of the requested keys
  bool error_reply = false;  // SERVER_ERROR, CLIENT_ERROR, ERROR, NOT_STORED, ...
  bool bad_value = false;    // a VALUE block whose length or content is not what was stored
};

// A line longer than this without "\r\n" cannot be a reply to our requests (keys are short).
inline constexpr size_t kMaxReplyLine = 2048;

namespace detail {

// Finds the "\r\n" that ends the line starting at `pos`. Returns the offset of '\r', npos when
// the line is still incomplete, or kInvalidLine when it cannot be a line of ours.
inline constexpr size_t kInvalidLine = std::string_view::npos - 1;

inline size_t find_eol(std::string_view in, size_t pos) {
  const size_t avail = in.size() - pos;
  const size_t scan = avail < kMaxReplyLine ? avail : kMaxReplyLine;
  const void* nl = std::memchr(in.data() + pos, '\n', scan);
  if (nl == nullptr) return avail < kMaxReplyLine ? std::string_view::npos : kInvalidLine;
  const size_t lf = static_cast<size_t>(static_cast<const char*>(nl) - in.data());
  if (lf == pos || in[lf - 1] != '\r') return kInvalidLine;
  return lf - 1;
}

inline bool is_error_line(std::string_view line) {
  return line == "ERROR" || line.starts_with("SERVER_ERROR") || line.starts_with("CLIENT_ERROR");
}

// Parses a decimal field ending at a space or at the end of `s`, advancing `pos` past it.
inline bool parse_number(std::string_view s, size_t& pos, uint64_t& out) {
  const size_t start = pos;
  uint64_t v = 0;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
    if (pos - start >= 19) return false;  // would overflow; no field of ours is that long
    v = v * 10 + static_cast<uint64_t>(s[pos] - '0');
    ++pos;
  }
  out = v;
  return pos > start;
}

}  // namespace detail

// The payload the load generator stores under `key`: the key itself, then dots, cut to
// `size`. Writing the key into the value lets a get check that the reply belongs to its request
// and not to a neighbour's, which is the mistake a proxy's reply matching would make.
inline void fill_value(std::string_view key, char* out, size_t size) {
  const size_t n = key.size() < size ? key.size() : size;
  std::memcpy(out, key.data(), n);
  std::memset(out + n, '.', size - n);
}

inline bool value_matches(std::string_view key, std::string_view data, size_t size) {
  if (data.size() != size) return false;
  const size_t n = key.size() < size ? key.size() : size;
  if (std::memcmp(data.data(), key.data(), n) != 0) return false;
  for (size_t i = n; i < size; ++i) {
    if (data[i] != '.') return false;
  }
  return true;
}

// Reply to "get k1 ... kn": zero or more "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n",
// then "END\r\n". Hits come back in request order with misses left out, so each VALUE must name
// the next expected key or a later one; anything else means replies were crossed.
// `key_at(i)` returns the i-th requested key as a string_view.
template <typename KeyAt>
ReplyResult parse_get_reply(std::string_view in, size_t nkeys, KeyAt&& key_at, size_t value_size) {
  ReplyResult r;
  size_t pos = 0;
  size_t next_key = 0;
  for (;;) {
    const size_t eol = detail::find_eol(in, pos);
    if (eol == std::string_view::npos) return r;  // kNeedMore
    if (eol == detail::kInvalidLine) return {ReplyStatus::kInvalid};
    const std::string_view line = in.substr(pos, eol - pos);
    const size_t after_line = eol + 2;
    if (line == "END") {
      r.status = ReplyStatus::kOk;
      r.consumed = after_line;
      return r;
    }
    if (detail::is_error_line(line)) {
      r.status = ReplyStatus::kOk;
      r.consumed = after_line;
      r.error_reply = true;
      return r;
    }
    if (!line.starts_with("VALUE ")) return {ReplyStatus::kInvalid};
    const size_t key_end = line.find(' ', 6);
    if (key_end == std::string_view::npos) return {ReplyStatus::kInvalid};
    const std::string_view key = line.substr(6, key_end - 6);
    while (next_key < nkeys && key_at(next_key) != key)
      ++next_key;
    if (next_key == nkeys) return {ReplyStatus::kInvalid};
    ++next_key;
    size_t p = key_end + 1;
    uint64_t flags = 0;
    uint64_t bytes = 0;
    if (!detail::parse_number(line, p, flags) || p >= line.size() || line[p] != ' ')
      return {ReplyStatus::kInvalid};
    ++p;
    if (!detail::parse_number(line, p, bytes)) return {ReplyStatus::kInvalid};
    if (p != line.size()) {
      uint64_t cas = 0;
      if (line[p] != ' ') return {ReplyStatus::kInvalid};
      ++p;
      if (!detail::parse_number(line, p, cas) || p != line.size()) return {ReplyStatus::kInvalid};
    }
    if (bytes > in.max_size() / 2) return {ReplyStatus::kInvalid};
    if (in.size() - after_line < bytes + 2) return r;  // kNeedMore
    const std::string_view data = in.substr(after_line, bytes);
    if (in[after_line + bytes] != '\r' || in[after_line + bytes + 1] != '\n')
      return {ReplyStatus::kInvalid};
    if (!value_matches(key, data, value_size)) r.bad_value = true;
    ++r.hits;
    pos = after_line + bytes + 2;
  }
}

// Reply to "set": one line, "STORED" on success.
inline ReplyResult parse_store_reply(std::string_view in) {
  const size_t eol = detail::find_eol(in, 0);
  if (eol == std::string_view::npos) return {};
  if (eol == detail::kInvalidLine) return {ReplyStatus::kInvalid};
  const std::string_view line = in.substr(0, eol);
  ReplyResult r{ReplyStatus::kOk, eol + 2};
  if (line == "STORED") return r;
  if (line == "NOT_STORED" || line == "EXISTS" || line == "NOT_FOUND" ||
      detail::is_error_line(line)) {
    r.error_reply = true;
    return r;
  }
  return {ReplyStatus::kInvalid};
}

}  // namespace cachegate::bench
