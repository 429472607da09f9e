#include "protocol/key_namespace.h"

#include <charconv>
#include <optional>

#include "protocol/base64.h"
#include "protocol/memcache_reply.h"
#include "protocol/resp.h"

namespace cachegate::protocol {

void append_glob_escaped(std::string_view literal, std::string& out) {
  for (char c : literal) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
}

namespace memcache {

namespace {

// Appends `key` without `prefix` (as sent: plain, or base64 of the stored bytes).
void append_stripped_key(std::string_view key, std::string_view prefix,
                         std::string_view replacement, bool base64, std::string& out) {
  if (!base64) {
    if (key.starts_with(prefix)) {
      out.append(replacement);
      out.append(key.substr(prefix.size()));
    } else {
      out.append(key);
    }
    return;
  }
  char decoded[kMaxKeyLength];
  const std::optional<size_t> length = base64_decode(key, decoded, sizeof decoded);
  const std::string_view bytes(decoded, length ? *length : 0);
  if (!length || !bytes.starts_with(prefix)) {
    out.append(key);
    return;
  }
  std::string restored(replacement);
  restored.append(bytes.substr(prefix.size()));
  base64_encode(restored, out);
}

// Whether a meta reply line carries the b flag: memcached writes the key it echoes in base64
// when the item's key is binary, whatever the request used.
bool has_b_flag(std::string_view line, size_t flags_from) {
  size_t token = 0;
  while (!line.empty()) {
    const size_t end = line.find(' ');
    if (token >= flags_from && line.substr(0, end) == "b") return true;
    if (end == std::string_view::npos) break;
    line.remove_prefix(end + 1);
    ++token;
  }
  return false;
}

// Appends a meta reply's header line (without its line ending) with the k flag's key stripped.
// `flags_from` is the number of tokens before the flags (the code; VA: and its size).
void append_meta_line(std::string_view line, size_t flags_from, std::string_view prefix,
                      std::string_view replacement, std::string& out) {
  const bool base64 = has_b_flag(line, flags_from);
  size_t token = 0;
  while (!line.empty()) {
    const size_t end = line.find(' ');
    const std::string_view word = line.substr(0, end);
    if (token >= flags_from && word.size() > 1 && word[0] == 'k') {
      out.push_back('k');
      append_stripped_key(word.substr(1), prefix, replacement, base64, out);
    } else {
      out.append(word);
    }
    if (end == std::string_view::npos) break;
    out.push_back(' ');
    line.remove_prefix(end + 1);
    ++token;
  }
}

}  // namespace

void strip_value_keys(std::string_view reply, std::string_view prefix, std::string& out,
                      std::string_view replacement) {
  ValueItems items(reply);
  std::string_view key, item;
  size_t consumed = 0;
  while (items.next(key, item)) {
    // The key is the VALUE line's second word.
    const size_t key_at = static_cast<size_t>(key.data() - item.data());
    out.append(item.substr(0, key_at));
    append_stripped_key(key, prefix, replacement, false, out);
    out.append(item.substr(key_at + key.size()));
    consumed = static_cast<size_t>(item.data() + item.size() - reply.data());
  }
  out.append(reply.substr(consumed));  // END
}

void strip_meta_keys(std::string_view reply, std::string_view prefix, std::string& out,
                     std::string_view replacement) {
  while (!reply.empty()) {
    const size_t nl = reply.find('\n');
    if (nl == std::string_view::npos || nl == 0 || reply[nl - 1] != '\r') break;
    const std::string_view line = reply.substr(0, nl - 1);
    size_t taken = nl + 1;
    const std::string_view code = line.substr(0, 3);
    if (code == "VA ") {
      // VA <size> <flags>*, then the data block and CRLF, copied as they are.
      append_meta_line(line, 2, prefix, replacement, out);
      const std::string_view digits = line.substr(3);
      uint64_t size = 0;
      std::from_chars(digits.data(), digits.data() + digits.size(), size);
      out.append("\r\n");
      const size_t block = static_cast<size_t>(size) + 2;
      out.append(reply.substr(taken, block));
      taken = taken + block < reply.size() ? taken + block : reply.size();
    } else if (code == "ME ") {
      // ME <key> <name=value>*: the key as stored, in base64 when it is binary, unmarked.
      out.append("ME ");
      const std::string_view rest = line.substr(3);
      const size_t end = rest.find(' ');
      const std::string_view key = rest.substr(0, end);
      append_stripped_key(key, prefix, replacement, !key.starts_with(prefix), out);
      if (end != std::string_view::npos) out.append(rest.substr(end));
      out.append("\r\n");
    } else if (code == "HD " || code == "EN " || code == "NF " || code == "NS " || code == "EX ") {
      append_meta_line(line, 1, prefix, replacement, out);
      out.append("\r\n");
    } else {
      // MN, a code without flags, errors: nothing names a key.
      out.append(reply.substr(0, taken));
    }
    reply.remove_prefix(taken);
  }
  out.append(reply);
}

}  // namespace memcache

namespace resp {

namespace {

void append_header(std::string& out, char type, int64_t count) {
  out.push_back(type);
  out.append(std::to_string(count));
  out.append("\r\n");
}

// A bulk string `replacement` + what follows `prefix` in `key`.
void append_replaced(std::string_view key, std::string_view prefix, std::string_view replacement,
                     std::string& out) {
  append_header(out, '$', static_cast<int64_t>(replacement.size() + key.size() - prefix.size()));
  out.append(replacement);
  out.append(key.substr(prefix.size()));
  out.append("\r\n");
}

// A bulk key with its prefix replaced; any other element as it is.
void append_stripped(const Value& v, std::string_view prefix, std::string_view replacement,
                     std::string& out) {
  if (v.type == '$' && !v.is_null() && v.payload.starts_with(prefix)) {
    append_replaced(v.payload, prefix, replacement, out);
  } else {
    out.append(v.raw);
  }
}

// An aggregate of keys: only those in the namespace, without it.
bool append_key_list(const Value& list, std::string_view prefix, std::string_view replacement,
                     std::string& out) {
  if (!list.is_aggregate() || list.is_null()) return false;
  std::string kept;
  int64_t count = 0;
  size_t pos = children_start(list);
  Value key;
  for (int64_t i = 0; i < list.count; ++i) {
    if (!read_value(list.raw, pos, key)) return false;
    if (key.type != '$' || key.is_null() || !key.payload.starts_with(prefix)) continue;
    append_replaced(key.payload, prefix, replacement, kept);
    ++count;
  }
  append_header(out, list.type, count);
  out.append(kept);
  return true;
}

}  // namespace

namespace {

bool rewrite_reply_keys(std::string_view reply, KeyReply kind, std::string_view prefix,
                        std::string& out, std::string_view replacement) {
  size_t at = 0;
  Value top;
  if (kind == KeyReply::kNone || !read_value(reply, at, top) || !top.is_aggregate() ||
      top.is_null())
    return false;
  // Only the aggregate each reply is made of: anything else (a server's odd answer) is left as
  // it is rather than rebuilt with a header of another type.
  const bool expected = top.type == '*' || (kind == KeyReply::kKeyList && top.type == '~') ||
                        (kind == KeyReply::kStreams && top.type == '%');
  if (!expected) return false;
  size_t pos = children_start(top);
  Value first, second;
  switch (kind) {
    case KeyReply::kNone:
      return false;
    case KeyReply::kKeyList:
      return append_key_list(top, prefix, replacement, out);
    case KeyReply::kScan: {
      if (top.count != 2 || !read_value(top.raw, pos, first) || !read_value(top.raw, pos, second))
        return false;
      std::string keys;
      if (!append_key_list(second, prefix, replacement, keys)) return false;
      append_header(out, top.type, 2);
      out.append(first.raw);
      out.append(keys);
      return true;
    }
    case KeyReply::kKeyFirst: {
      if (top.count < 2 || !read_value(top.raw, pos, first)) return false;
      append_header(out, top.type, top.count);
      append_stripped(first, prefix, replacement, out);
      out.append(top.raw.substr(pos));  // the elements after the key, as they are
      return true;
    }
    case KeyReply::kStreams: {
      // RESP3: a map of key → entries; RESP2: an array of [key, entries] pairs.
      std::string body;
      for (int64_t i = 0; i < top.count; ++i) {
        if (top.type == '%') {
          if (!read_value(top.raw, pos, first) || !read_value(top.raw, pos, second)) return false;
          append_stripped(first, prefix, replacement, body);
          body.append(second.raw);
          continue;
        }
        Value pair;
        if (!read_value(top.raw, pos, pair) || !pair.is_aggregate() || pair.count != 2)
          return false;
        size_t inner = children_start(pair);
        if (!read_value(pair.raw, inner, first) || !read_value(pair.raw, inner, second))
          return false;
        append_header(body, pair.type, 2);
        append_stripped(first, prefix, replacement, body);
        body.append(second.raw);
      }
      append_header(out, top.type, top.count);
      out.append(body);
      return true;
    }
  }
  return false;
}

}  // namespace

bool strip_reply_keys(std::string_view reply, KeyReply kind, std::string_view prefix,
                      std::string& out, std::string_view replacement) {
  const size_t start = out.size();
  if (!rewrite_reply_keys(reply, kind, prefix, out, replacement)) return false;
  // The rewrite reads the reply element by element; what it writes must be one whole reply as
  // the framer that accepted the original sees it. A server's malformed reply that the two read
  // differently (a bare CR inside a line) goes to the client as it came (found by fuzzing).
  ReplyFramer framer(UINT64_MAX);
  ReplyFrame frame;
  const std::string_view written(out.data() + start, out.size() - start);
  if (framer.frame(written.data(), written.size(), frame) != ParseStatus::kOk ||
      frame.length != written.size()) {
    out.resize(start);
    return false;
  }
  return true;
}

}  // namespace resp

}  // namespace cachegate::protocol
