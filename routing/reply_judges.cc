#include "routing/reply_judges.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <optional>
#include <vector>

#include "protocol/ascii.h"
#include "protocol/base64.h"
#include "protocol/key_namespace.h"
#include "protocol/memcache_reply.h"
#include "protocol/redis_commands.h"
#include "protocol/resp.h"

namespace cachegate::routing {

namespace {

using protocol::iequals;
using protocol::lower;

// memcached reads an exptime above 30 days as a Unix time.
constexpr int64_t kMaxRelativeExptime = 30 * 24 * 3600;

}  // namespace

// --- memcached ---------------------------------------------------------------------------------

ReplyClass MemcacheJudge::classify(std::string_view reply, bool error, config::RouteOp op) const {
  if (error) return ReplyClass::kError;
  if (reply.starts_with("VALUE ") || reply.starts_with("VA ")) return ReplyClass::kOk;
  if (reply == "END\r\n" || reply.starts_with("EN")) return ReplyClass::kMiss;
  // A quiet meta request that had nothing to say comes back empty (its MN is framed apart): a
  // miss for a read, done for a write.
  if (reply.empty() || reply == "MN\r\n")
    return op == config::RouteOp::kRead ? ReplyClass::kMiss : ReplyClass::kOk;
  if (reply.starts_with("NOT_STORED") || reply.starts_with("EXISTS") ||
      reply.starts_with("NOT_FOUND") || reply.starts_with("NS") || reply.starts_with("EX") ||
      reply.starts_with("NF"))
    return ReplyClass::kRefused;
  return ReplyClass::kOk;  // STORED, DELETED, TOUCHED, OK, a number, HD …
}

bool MemcacheJudge::ttl_request(std::string_view request, std::string_view key,
                                std::string& out) const {
  if (!request.starts_with("get ") && !request.starts_with("gets ")) return false;
  out.assign("mg ");
  out.append(key);
  out.append(" t\r\n");
  return true;
}

bool MemcacheJudge::fill(std::string_view request, std::string_view key, std::string_view reply,
                         std::string_view ttl_reply, std::string& out) const {
  // "HD t<seconds>" (-1: no expiry); anything else (EN: gone meanwhile) copies nothing.
  const size_t t = ttl_reply.find(" t");
  if (!ttl_reply.starts_with("HD") || t == std::string_view::npos) return false;
  int64_t ttl = 0;
  const char* digits = ttl_reply.data() + t + 2;
  const auto [end, ec] = std::from_chars(digits, ttl_reply.data() + ttl_reply.size(), ttl);
  if (ec != std::errc() || end == digits) return false;
  if (ttl < 0) ttl = 0;
  if (ttl > kMaxRelativeExptime) ttl += static_cast<int64_t>(std::time(nullptr));
  // VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\nEND\r\n
  protocol::memcache::ValueItems items(reply);
  std::string_view item_key, item;
  if (!items.next(item_key, item) || item_key != key) return false;
  const size_t line_end = item.find("\r\n");
  const std::string_view line = item.substr(0, line_end);
  const size_t flags_at = 6 + item_key.size() + 1;
  const size_t flags_end = line.find(' ', flags_at);
  const size_t bytes_end = line.find(' ', flags_end + 1);
  const std::string_view flags = line.substr(flags_at, flags_end - flags_at);
  const std::string_view bytes = line.substr(
      flags_end + 1, bytes_end == std::string_view::npos ? line.npos : bytes_end - flags_end - 1);
  out.assign("add ");
  out.append(key);
  out.push_back(' ');
  out.append(flags);
  out.push_back(' ');
  out.append(std::to_string(ttl));
  out.push_back(' ');
  out.append(bytes);
  out.append(item.substr(line_end));  // \r\n<data>\r\n
  return true;
}

namespace {

// A memcached exptime capped at `max` seconds, or nullopt when it needs no change.
std::optional<int64_t> capped_exptime(int64_t exptime, int64_t max) {
  if (exptime < 0) return std::nullopt;  // already expired: nothing to cap
  if (exptime == 0) return max;          // never
  int64_t remaining = exptime;
  if (exptime > kMaxRelativeExptime) remaining = exptime - static_cast<int64_t>(std::time(nullptr));
  if (remaining <= max) return std::nullopt;
  return max;
}

bool parse_int64(std::string_view text, int64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

bool MemcacheJudge::cap_ttl(std::string_view request, uint32_t max_seconds,
                            std::string& out) const {
  const size_t line_end = request.find("\r\n");
  if (line_end == std::string_view::npos) return false;
  const std::string_view line = request.substr(0, line_end);
  // Tokens as memcached splits them: runs of spaces separate.
  struct Token {
    size_t at;
    std::string_view text;
  };
  Token tokens[24];
  size_t count = 0;
  for (size_t i = 0; i < line.size() && count < std::size(tokens);) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    const size_t end = std::min(line.find(' ', i), line.size());
    tokens[count++] = Token{i, line.substr(i, end - i)};
    i = end;
  }
  if (count < 2) return false;
  const std::string_view command = tokens[0].text;
  const int64_t max = max_seconds;
  // The tokens to change, in line order: where each starts, how long it is, what replaces it.
  struct Change {
    size_t at, length;
    std::string text;
  };
  std::vector<Change> changes;
  auto cap_token = [&](size_t index, std::string_view flag) {
    if (index >= count) return;
    int64_t value = 0;
    if (!parse_int64(tokens[index].text.substr(flag.size()), value)) return;
    if (const auto capped = capped_exptime(value, max))
      changes.push_back({tokens[index].at, tokens[index].text.size(),
                         std::string(flag) + std::to_string(*capped)});
  };
  if (command == "set" || command == "add" || command == "replace" || command == "append" ||
      command == "prepend" || command == "cas") {
    cap_token(3, "");
  } else if (command == "touch") {
    cap_token(2, "");
  } else if (command == "gat" || command == "gats") {
    cap_token(1, "");
  } else if (command == "ms" || command == "mg") {
    // T sets the TTL, N the TTL of an item created on a miss.
    bool has_t = false;
    for (size_t i = command == "ms" ? 3 : 2; i < count; ++i) {
      const char flag = tokens[i].text[0];
      if (flag != 'T' && flag != 'N') continue;
      has_t = has_t || flag == 'T';
      cap_token(i, flag == 'T' ? "T" : "N");
    }
    // An ms without T stores an item that never expires.
    if (command == "ms" && !has_t) changes.push_back({line.size(), 0, " T" + std::to_string(max)});
  }
  if (changes.empty()) return false;
  out.clear();
  size_t at = 0;
  for (const auto& c : changes) {
    out.append(request.substr(at, c.at - at));
    out.append(c.text);
    at = c.at + c.length;
  }
  out.append(request.substr(at));
  return true;
}

bool MemcacheJudge::rewrite_request(std::string_view request, std::string_view strip,
                                    std::string_view add, std::string& out, std::string& key,
                                    std::string& refusal) const {
  refusal.clear();
  const size_t line_end = request.find("\r\n");
  if (line_end == std::string_view::npos) return false;
  const std::string_view line = request.substr(0, line_end);
  // The key is the second word (gat/gats: the third); a meta key with the b flag is base64.
  size_t index = 0, key_at = 0, key_length = 0;
  bool base64 = false;
  const bool touch_first = line.starts_with("gat ") || line.starts_with("gats ");
  for (size_t i = 0; i < line.size();) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    const size_t end = std::min(line.find(' ', i), line.size());
    if (index == (touch_first ? 2u : 1u)) {
      key_at = i;
      key_length = end - i;
    } else if (index > 1 && line.substr(i, end - i) == "b" && line[0] == 'm') {
      base64 = true;
    }
    ++index;
    i = end;
  }
  if (key_length == 0) return false;
  const std::string_view sent = line.substr(key_at, key_length);
  std::string encoded;
  if (base64) {
    char decoded[protocol::memcache::kMaxKeyLength];
    const auto length = protocol::base64_decode(sent, decoded, sizeof decoded);
    if (!length) return false;
    key = rewritten_key(std::string_view(decoded, *length), strip, add);
    protocol::base64_encode(key, encoded);
  } else {
    key = rewritten_key(sent, strip, add);
  }
  const std::string_view new_key = base64 ? std::string_view(encoded) : std::string_view(key);
  // memcached's limits hold for what it is sent.
  if (new_key.size() > protocol::memcache::kMaxKeyLength) {
    refusal = "CLIENT_ERROR key longer than 250 bytes\r\n";
    return false;
  }
  if (line.size() + 2 - key_length + new_key.size() > protocol::memcache::kMaxServerLine &&
      !line.starts_with("get ") && !line.starts_with("gets ")) {
    refusal = "CLIENT_ERROR line too long\r\n";
    return false;
  }
  out.assign(request.substr(0, key_at));
  out.append(new_key);
  out.append(request.substr(key_at + key_length));
  return true;
}

bool MemcacheJudge::restore_reply(std::string_view, std::string_view reply, std::string_view strip,
                                  std::string_view add, std::string& out) const {
  out.clear();
  if (reply.starts_with("VALUE ")) {
    protocol::memcache::strip_value_keys(reply, add, out, strip);
    return true;
  }
  static constexpr std::string_view kMeta[] = {"VA ", "HD ", "EN ", "NF ", "NS ", "EX ", "ME "};
  for (auto code : kMeta) {
    if (reply.starts_with(code)) {
      protocol::memcache::strip_meta_keys(reply, add, out, strip);
      return true;
    }
  }
  return false;
}

// --- Redis -------------------------------------------------------------------------------------

ReplyClass RedisJudge::classify(std::string_view reply, bool error, config::RouteOp op) const {
  if (error || reply.starts_with("-") || reply.starts_with("!")) return ReplyClass::kError;
  // A key of a multi-key read travels alone through a rule (MGET k): one null element is a
  // miss like GET's null.
  const bool null = reply == "$-1\r\n" || reply == "*-1\r\n" || reply == "_\r\n" ||
                    reply == "*1\r\n$-1\r\n" || reply == "*1\r\n_\r\n";
  if (null) return op == config::RouteOp::kRead ? ReplyClass::kMiss : ReplyClass::kRefused;
  return ReplyClass::kOk;
}

namespace {

// The arguments of a RESP request with exactly `argc` of them, or false.
bool request_args(std::string_view request, size_t argc, std::string_view* args) {
  size_t pos = 0;
  protocol::resp::Value top;
  if (!protocol::resp::read_value(request, pos, top) || top.type != '*' ||
      top.count != static_cast<int64_t>(argc))
    return false;
  size_t child = protocol::resp::children_start(top);
  for (size_t i = 0; i < argc; ++i) {
    protocol::resp::Value v;
    if (!protocol::resp::read_value(top.raw, child, v) || v.type != '$') return false;
    args[i] = v.payload;
  }
  return true;
}

}  // namespace

bool RedisJudge::cap_ttl(std::string_view request, uint32_t max_seconds, std::string& out) const {
  size_t pos = 0;
  protocol::resp::Value top;
  if (!protocol::resp::read_value(request, pos, top) || top.type != '*' || top.count < 2)
    return false;
  std::vector<std::string> args;
  size_t child = protocol::resp::children_start(top);
  for (int64_t i = 0; i < top.count; ++i) {
    protocol::resp::Value v;
    if (!protocol::resp::read_value(top.raw, child, v) || v.type != '$') return false;
    args.emplace_back(v.payload);
  }
  const int64_t max_s = max_seconds;
  const int64_t max_ms = max_s * 1000;
  const int64_t now_s = static_cast<int64_t>(std::time(nullptr));
  bool changed = false;
  // Caps the number at args[i], in seconds or milliseconds, relative or absolute (a Unix time).
  auto cap = [&](size_t i, bool millis, bool absolute) {
    int64_t value = 0;
    if (i >= args.size() || !parse_int64(args[i], value)) return;
    const int64_t limit = millis ? max_ms : max_s;
    const int64_t now = millis ? now_s * 1000 : now_s;
    const int64_t remaining = absolute ? value - now : value;
    if (remaining <= limit) return;
    args[i] = std::to_string(absolute ? now + limit : limit);
    changed = true;
  };
  const std::string name = lower(args[0]);
  if (name == "set" || name == "getex") {
    bool has_expiry = false;
    for (size_t i = name == "set" ? 3 : 2; i < args.size(); ++i) {
      const std::string option = lower(args[i]);
      if (option == "ex" || option == "px" || option == "exat" || option == "pxat") {
        has_expiry = true;
        cap(i + 1, option[0] == 'p', option.size() == 4);
        ++i;
      } else if (option == "keepttl") {
        // The key's expiry may be none (it was written some other way): capped instead.
        args[i] = "EX";
        args.insert(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::to_string(max_s));
        has_expiry = changed = true;
        ++i;
      } else if (option == "persist") {
        args[i] = "EX";
        args.insert(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::to_string(max_s));
        has_expiry = changed = true;
        ++i;
      }
    }
    if (!has_expiry && name == "set") {
      args.push_back("EX");
      args.push_back(std::to_string(max_s));
      changed = true;
    }
  } else if (name == "setex" || name == "expire") {
    cap(2, false, false);
  } else if (name == "psetex" || name == "pexpire") {
    cap(2, true, false);
  } else if (name == "expireat") {
    cap(2, false, true);
  } else if (name == "pexpireat") {
    cap(2, true, true);
  } else if (name == "persist" && args.size() == 2) {
    args = {"EXPIRE", args[1], std::to_string(max_s)};
    changed = true;
  }
  if (!changed) return false;
  std::vector<std::string_view> views(args.begin(), args.end());
  out.clear();
  protocol::resp::append_command(out, views.data(), views.size());
  return true;
}

namespace {

// The arguments of a RESP request (views into it), or false.
bool all_args(std::string_view request, std::vector<std::string_view>& args) {
  size_t pos = 0;
  protocol::resp::Value top;
  if (!protocol::resp::read_value(request, pos, top) || top.type != '*' || top.count < 1)
    return false;
  size_t child = protocol::resp::children_start(top);
  for (int64_t i = 0; i < top.count; ++i) {
    protocol::resp::Value v;
    if (!protocol::resp::read_value(top.raw, child, v) || v.type != '$') return false;
    args.push_back(v.payload);
  }
  return true;
}

}  // namespace

bool RedisJudge::rewrite_request(std::string_view request, std::string_view strip,
                                 std::string_view add, std::string& out, std::string& key,
                                 std::string& refusal) const {
  refusal.clear();
  std::vector<std::string_view> args;
  if (!all_args(request, args)) return false;
  const protocol::redis::Resolved resolved = protocol::redis::resolve(args.data(), args.size());
  std::vector<uint32_t> positions;
  if (resolved.status != protocol::redis::Dispatch::kOk ||
      !protocol::redis::key_positions(*resolved.command, args.data(), args.size(), positions) ||
      positions.empty())
    return false;
  std::vector<std::string> keys;
  keys.reserve(positions.size());
  for (uint32_t p : positions)
    keys.push_back(rewritten_key(args[p], strip, add));
  for (size_t i = 0; i < positions.size(); ++i)
    args[positions[i]] = keys[i];
  key = keys[0];
  out.clear();
  protocol::resp::append_command(out, args.data(), args.size());
  return true;
}

bool RedisJudge::restore_reply(std::string_view request, std::string_view reply,
                               std::string_view strip, std::string_view add,
                               std::string& out) const {
  std::vector<std::string_view> args;
  if (!all_args(request, args)) return false;
  const std::string name = lower(args[0]);
  protocol::resp::KeyReply kind = protocol::resp::KeyReply::kNone;
  if (name == "lmpop" || name == "zmpop") kind = protocol::resp::KeyReply::kKeyFirst;
  if (name == "xread" || name == "xreadgroup") kind = protocol::resp::KeyReply::kStreams;
  out.clear();
  return protocol::resp::strip_reply_keys(reply, kind, add, out, strip);
}

bool RedisJudge::ttl_request(std::string_view request, std::string_view key,
                             std::string& out) const {
  std::string_view args[2];
  if (!request_args(request, 2, args) || (!iequals(args[0], "get") && !iequals(args[0], "mget")))
    return false;
  const std::string_view pttl[2] = {"PTTL", key};
  out.clear();
  protocol::resp::append_command(out, pttl, 2);
  return true;
}

bool RedisJudge::fill(std::string_view request, std::string_view key, std::string_view reply,
                      std::string_view ttl_reply, std::string& out) const {
  // PTTL: milliseconds left, -1 without expiry, -2 gone.
  size_t pos = 0;
  protocol::resp::Value ttl, value;
  if (!protocol::resp::read_value(ttl_reply, pos, ttl) || ttl.type != ':') return false;
  int64_t ms = 0;
  std::from_chars(ttl.payload.data(), ttl.payload.data() + ttl.payload.size(), ms);
  if (ms == -2 || ms == 0) return false;
  pos = 0;
  if (!protocol::resp::read_value(reply, pos, value)) return false;
  if (value.type == '*' && value.count == 1) {  // MGET k: its one element
    const std::string_view array = value.raw;
    size_t child = protocol::resp::children_start(value);
    if (!protocol::resp::read_value(array, child, value)) return false;
  }
  if (value.type != '$' || value.is_null()) return false;
  const std::string ms_text = std::to_string(ms);
  out.clear();
  if (ms > 0) {
    const std::string_view set[6] = {"SET", key, value.payload, "PX", ms_text, "NX"};
    protocol::resp::append_command(out, set, 6);
  } else {
    const std::string_view set[4] = {"SET", key, value.payload, "NX"};
    protocol::resp::append_command(out, set, 4);
  }
  return true;
}

}  // namespace cachegate::routing
