#include "routing/resp_fanout.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "protocol/resp.h"

namespace cachegate::routing {

namespace resp = protocol::resp;

namespace {

constexpr size_t kMaxPooled = 256;
// Buffers past this are given back rather than kept with a recycled object: otherwise every
// kept object would grow to the largest reply its worker ever merged, and keep that for good.
constexpr size_t kKeepCapacity = 64 * 1024;

struct FanoutFreeList {
  std::vector<RespFanout*> items;
  ~FanoutFreeList();
};
thread_local FanoutFreeList fanout_free;

struct ScanFreeList {
  std::vector<ScanRequest*> items;
  ~ScanFreeList();
};
thread_local ScanFreeList scan_free;

// The integer of a ':' reply, or nullopt.
bool integer_of(std::string_view reply, int64_t& out) {
  size_t pos = 0;
  resp::Value v;
  if (!resp::read_value(reply, pos, v) || v.type != ':') return false;
  auto [p, ec] = std::from_chars(v.payload.data(), v.payload.data() + v.payload.size(), out);
  return ec == std::errc() && p == v.payload.data() + v.payload.size();
}

// The elements of an aggregate reply, as raw views: of a RESP3 map, whose count is of pairs, its
// keys and values both (as RESP2 sends a map: one flat array).
bool elements_of(std::string_view reply, std::vector<std::string_view>& out) {
  size_t pos = 0;
  resp::Value top;
  if (!resp::read_value(reply, pos, top) || !top.is_aggregate() || top.count < 0) return false;
  const int64_t count = top.type == '%' ? top.count * 2 : top.count;
  size_t child = resp::children_start(top);
  for (int64_t i = 0; i < count; ++i) {
    resp::Value v;
    if (!resp::read_value(top.raw, child, v)) return false;
    out.push_back(v.raw);
  }
  return true;
}

// INFO's text: a bulk string (RESP2) or a verbatim string "txt:…" (RESP3).
std::string_view info_text(std::string_view reply) {
  size_t pos = 0;
  resp::Value v;
  if (!resp::read_value(reply, pos, v)) return {};
  std::string_view text = v.payload;
  if (v.type == '=' && text.size() >= 4) text.remove_prefix(4);
  return text;
}

// One "dbN:keys=…,expires=…,avg_ttl=…" line; false for a line that is not one (INFO is text
// meant for people: a line cachegate cannot read is left out of the sums, not trusted).
bool read_keyspace_line(std::string_view line, int& db, uint64_t& keys, uint64_t& expires,
                        uint64_t& avg_ttl) {
  const size_t colon = line.find(':');
  if (!line.starts_with("db") || colon == std::string_view::npos) return false;
  auto [end, ec] = std::from_chars(line.data() + 2, line.data() + colon, db);
  if (ec != std::errc() || end != line.data() + colon) return false;
  keys = expires = avg_ttl = 0;
  auto field = [&](std::string_view name, uint64_t& v) {
    size_t p = line.find(name, colon);
    if (p != std::string_view::npos)
      std::from_chars(line.data() + p + name.size(), line.data() + line.size(), v);
  };
  field("keys=", keys);
  field("expires=", expires);
  field("avg_ttl=", avg_ttl);
  return true;
}

uint64_t add_saturating(uint64_t a, uint64_t b) {
  uint64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

// Sums "dbN:keys=…,expires=…,avg_ttl=…" lines of every server's Keyspace section.
std::string merge_keyspace(const std::vector<std::string>& replies) {
  struct Db {
    uint64_t keys = 0, expires = 0;
    // avg_ttl weighted by each server's keys with an expiry, in long double: sums of products of
    // two 64-bit numbers do not fit 64 bits.
    long double ttl_weighted = 0, weight = 0;
  };
  std::map<int, Db> dbs;
  for (const auto& reply : replies) {
    std::string_view text = info_text(reply);
    size_t at = text.find("# Keyspace");
    if (at == std::string_view::npos) continue;
    text.remove_prefix(at);
    size_t line_start = text.find('\n');
    while (line_start != std::string_view::npos && line_start + 1 < text.size()) {
      size_t end = text.find('\n', line_start + 1);
      std::string_view line =
          text.substr(line_start + 1, end == std::string_view::npos ? end : end - line_start - 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || line[0] == '#') break;
      int db = 0;
      uint64_t keys = 0, expires = 0, avg_ttl = 0;
      if (read_keyspace_line(line, db, keys, expires, avg_ttl)) {
        Db& d = dbs[db];
        d.keys = add_saturating(d.keys, keys);
        d.expires = add_saturating(d.expires, expires);
        d.ttl_weighted += static_cast<long double>(avg_ttl) * expires;
        d.weight += expires;
      }
      line_start = end;
    }
  }
  std::string out = "# Keyspace\r\n";
  for (const auto& [db, d] : dbs) {
    // A weighted mean of 64-bit values, but rounding may carry it just past the largest.
    const long double mean = d.weight > 0 ? d.ttl_weighted / d.weight : 0;
    const uint64_t ttl = mean >= 18446744073709551615.0L ? UINT64_MAX : static_cast<uint64_t>(mean);
    out += "db" + std::to_string(db) + ":keys=" + std::to_string(d.keys) +
           ",expires=" + std::to_string(d.expires) + ",avg_ttl=" + std::to_string(ttl) + "\r\n";
  }
  return out;
}

}  // namespace

FanoutFreeList::~FanoutFreeList() {
  for (auto* p : items)
    delete p;
}
ScanFreeList::~ScanFreeList() {
  for (auto* p : items)
    delete p;
}

// --- RespFanout --------------------------------------------------------------------------------

RespFanout* RespFanout::acquire(RespMerge merge) {
  RespFanout* f;
  if (!fanout_free.items.empty()) {
    f = fanout_free.items.back();
    fanout_free.items.pop_back();
  } else {
    f = new RespFanout();
  }
  f->merge_ = merge;
  f->info_prefix_.clear();
  f->part_of_key_.clear();
  f->part_server_.clear();
  return f;
}

void RespFanout::start_keyed(PartRouter& router, const std::string_view* args, size_t argc,
                             const std::vector<uint32_t>& key_index,
                             const std::vector<uint32_t>& server_of_key, bool with_values,
                             RespMerge merge, protocol::ReplyShape shape, ReplyHandler& client,
                             uint32_t cookie, uint32_t affinity) {
  RespFanout* f = acquire(merge);
  Ref<RespFanout> self(f);  // keeps it alive while parts may complete synchronously
  // Parts in order of first appearance of their server.
  auto& part_server = f->part_server_;
  f->part_of_key_.resize(key_index.size());
  for (size_t i = 0; i < key_index.size(); ++i) {
    uint32_t part = 0;
    while (part < part_server.size() && part_server[part] != server_of_key[i])
      ++part;
    if (part == part_server.size()) part_server.push_back(server_of_key[i]);
    f->part_of_key_[i] = part;
  }
  f->parts_ = part_server.size();
  f->begin(client, cookie, f->parts_);

  static thread_local std::string sub;
  static thread_local std::vector<std::string_view> sub_args;
  for (uint32_t p = 0; p < f->parts_; ++p) {
    sub_args.clear();
    sub_args.push_back(args[0]);
    for (size_t i = 0; i < key_index.size(); ++i) {
      if (f->part_of_key_[i] != p) continue;
      sub_args.push_back(args[key_index[i]]);
      if (with_values) sub_args.push_back(args[key_index[i] + 1]);
    }
    sub.clear();
    resp::append_command(sub, sub_args.data(), sub_args.size());
    std::string_view piece(sub);
    router.send_part(part_server[p], sub_args[1], &piece, 1, shape, *f, p, affinity);
  }
  (void)argc;
}

void RespFanout::start_pool(Pool& pool, std::string_view request, RespMerge merge,
                            protocol::ReplyShape shape, int protocol, std::string_view info_prefix,
                            ReplyHandler& client, uint32_t cookie, uint32_t affinity) {
  Pool* const pools[1] = {&pool};
  start_pools(pools, 1, request, merge, shape, protocol, info_prefix, client, cookie, affinity);
}

void RespFanout::start_pools(Pool* const* pools, size_t count, std::string_view request,
                             RespMerge merge, protocol::ReplyShape shape, int protocol,
                             std::string_view info_prefix, ReplyHandler& client, uint32_t cookie,
                             uint32_t affinity) {
  RespFanout* f = acquire(merge);
  Ref<RespFanout> self(f);
  f->protocol_ = protocol;
  f->info_prefix_.assign(info_prefix);
  f->parts_ = 0;
  for (size_t p = 0; p < count; ++p)
    f->parts_ += pools[p]->size();
  f->begin(client, cookie, f->parts_);
  uint32_t part = 0;
  for (size_t p = 0; p < count; ++p)
    for (uint32_t s = 0; s < pools[p]->size(); ++s)
      pools[p]->server(s).send(&request, 1, shape, *f, part++, affinity);
}

void RespFanout::on_reply(uint32_t part, std::string_view reply, bool error) {
  if (error) {
    keep_error(reply);
  } else {
    keep_reply(part, reply);
  }
  part_done();
}

void RespFanout::deliver_merged(ReplyHandler& client, uint32_t cookie) {
  merged_.clear();
  merge_into(merged_);
  client.on_reply(cookie, merged_, !merged_.empty() && merged_[0] == '-');
}

void RespFanout::merge_into(std::string& out) {
  static thread_local std::vector<std::vector<std::string_view>> elements;
  const size_t parts = parts_;
  // Every part's array elements, in `elements`; false unless all are arrays of one length.
  auto aligned_elements = [&] {
    if (elements.size() < parts) elements.resize(parts);
    for (size_t p = 0; p < parts; ++p) {
      elements[p].clear();
      if (!elements_of(part_replies_[p], elements[p]) || elements[p].size() != elements[0].size())
        return false;
    }
    return true;
  };
  auto bad_reply = [&] {
    resp::append_error(out, "ERR cachegate: a server sent an unexpected reply");
  };
  switch (merge_) {
    case RespMerge::kValuesInKeyOrder: {
      if (elements.size() < parts) elements.resize(parts);
      for (size_t p = 0; p < parts; ++p) {
        elements[p].clear();
        if (!elements_of(part_replies_[p], elements[p])) return bad_reply();
      }
      // One value per key each part was asked for: a part with more or fewer did not answer
      // what it was asked, and none of its values can be trusted.
      std::vector<size_t> next(parts, 0);
      for (uint32_t part : part_of_key_)
        ++next[part];
      for (size_t p = 0; p < parts; ++p)
        if (next[p] != elements[p].size()) return bad_reply();
      std::fill(next.begin(), next.end(), 0);
      resp::append_array(out, part_of_key_.size());
      for (uint32_t part : part_of_key_)
        out.append(elements[part][next[part]++]);
      return;
    }
    case RespMerge::kSumIntegers: {
      // Counts of keys never come near 2^63: a sum past it means the replies are no counts.
      int64_t total = 0;
      for (size_t p = 0; p < parts; ++p) {
        int64_t v;
        if (!integer_of(part_replies_[p], v) || __builtin_add_overflow(total, v, &total))
          return bad_reply();
      }
      resp::append_integer(out, total);
      return;
    }
    case RespMerge::kAllOk:
      for (size_t p = 0; p < parts; ++p) {
        if (part_replies_[p] != "+OK\r\n") {
          out.assign(part_replies_[p]);
          return;
        }
      }
      out.assign("+OK\r\n");
      return;
    case RespMerge::kFirstReply:
      out.assign(part_replies_[0]);
      return;
    case RespMerge::kConcatArrays: {
      size_t total = 0;
      if (elements.size() < parts) elements.resize(parts);
      for (size_t p = 0; p < parts; ++p) {
        elements[p].clear();
        if (!elements_of(part_replies_[p], elements[p])) return bad_reply();
        total += elements[p].size();
      }
      resp::append_array(out, total);
      for (size_t p = 0; p < parts; ++p)
        for (auto e : elements[p])
          out.append(e);
      return;
    }
    case RespMerge::kAndArrays: {
      if (!aligned_elements()) return bad_reply();
      resp::append_array(out, elements[0].size());
      for (size_t i = 0; i < elements[0].size(); ++i) {
        bool all = true;
        for (size_t p = 0; p < parts; ++p)
          all = all && elements[p][i] == ":1\r\n";
        out.append(all ? ":1\r\n" : ":0\r\n");
      }
      return;
    }
    case RespMerge::kSumCounts: {
      // [name, count, name, count, …] alike from every server: the counts summed.
      if (!aligned_elements()) return bad_reply();
      resp::append_array(out, elements[0].size());
      for (size_t i = 0; i < elements[0].size(); ++i) {
        if (i % 2 == 0) {
          out.append(elements[0][i]);
          continue;
        }
        int64_t total = 0;
        for (size_t p = 0; p < parts; ++p) {
          int64_t v;
          if (!integer_of(elements[p][i], v) || __builtin_add_overflow(total, v, &total)) {
            out.clear();
            return bad_reply();
          }
        }
        resp::append_integer(out, total);
      }
      return;
    }
    case RespMerge::kFirstNonNull: {
      for (size_t p = 0; p < parts; ++p) {
        size_t pos = 0;
        resp::Value v;
        if (resp::read_value(part_replies_[p], pos, v) && !v.is_null()) {
          out.assign(part_replies_[p]);
          return;
        }
      }
      out.assign(part_replies_[0]);
      return;
    }
    case RespMerge::kInfo: {
      // The first server's sections without its Keyspace, then every server's Keyspace summed.
      std::string text = info_prefix_;
      std::string_view first = info_text(part_replies_[0]);
      size_t keyspace = first.find("# Keyspace");
      std::string_view before = first.substr(0, keyspace);
      text.append(before);
      const bool wanted_keyspace = keyspace != std::string_view::npos;
      if (wanted_keyspace) {
        std::vector<std::string> replies(part_replies_.begin(), part_replies_.begin() + parts);
        text += merge_keyspace(replies);
        // Sections after Keyspace (there are none in redis 7.0's default order), kept as they are.
        size_t after = first.find("\r\n\r\n", keyspace);
        if (after != std::string_view::npos) text.append(first.substr(after + 2));
      }
      if (protocol_ >= 3) {
        out.push_back('=');
        out.append(std::to_string(text.size() + 4));
        out.append("\r\ntxt:");
        out.append(text);
        out.append("\r\n");
      } else {
        resp::append_bulk(out, text);
      }
      return;
    }
  }
}

void RespFanout::destroy() {
  release_client();
  const bool small = merged_.capacity() < kKeepCapacity && parts_smaller_than(kKeepCapacity);
  if (fanout_free.items.size() < kMaxPooled && small) {
    fanout_free.items.push_back(this);
  } else {
    delete this;
  }
}

// --- SCAN --------------------------------------------------------------------------------------

int scan_server_bits(size_t servers) {
  int bits = 0;
  while ((size_t{1} << bits) < servers)
    ++bits;
  return bits;
}

bool decode_scan_cursor(std::string_view text, size_t servers, ScanCursor& out) {
  uint64_t value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size()) return false;
  const int bits = scan_server_bits(servers);
  out.server = static_cast<uint32_t>(bits ? value & ((uint64_t{1} << bits) - 1) : 0);
  out.server_cursor = bits ? value >> bits : value;
  return out.server < servers;
}

std::string encode_scan_cursor(const ScanCursor& cursor, size_t servers) {
  const int bits = scan_server_bits(servers);
  return std::to_string((cursor.server_cursor << bits) | cursor.server);
}

void ScanRequest::start(Pool& pool, const ScanCursor& cursor, const std::string_view* rest,
                        size_t rest_count, protocol::ReplyShape shape, ReplyHandler& client,
                        uint32_t cookie, uint32_t affinity) {
  ScanRequest* r;
  if (!scan_free.items.empty()) {
    r = scan_free.items.back();
    scan_free.items.pop_back();
  } else {
    r = new ScanRequest();
  }
  Ref<ScanRequest> self(r);
  r->client_ = Ref<ReplyHandler>(&client);
  r->cookie_ = cookie;
  r->cursor_ = cursor;
  r->servers_ = pool.size();
  static thread_local std::vector<std::string_view> args;
  static thread_local std::string request;
  const std::string server_cursor = std::to_string(cursor.server_cursor);
  args.clear();
  args.push_back("SCAN");
  args.push_back(server_cursor);
  for (size_t i = 0; i < rest_count; ++i)
    args.push_back(rest[i]);
  request.clear();
  resp::append_command(request, args.data(), args.size());
  std::string_view piece(request);
  pool.server(cursor.server).send(&piece, 1, shape, *r, 0, affinity);
}

void ScanRequest::on_reply(uint32_t, std::string_view reply, bool error) {
  Ref<ReplyHandler> client = std::move(client_);
  if (error) {
    client->on_reply(cookie_, reply, true);
    return;
  }
  // [cursor, [keys…]]: the server's cursor becomes the client's; when this server is done, the
  // next one starts at 0, and after the last one the client's iteration is over.
  size_t pos = 0;
  resp::Value top, cursor, keys;
  size_t child = 0;
  uint64_t next = 0;
  bool ok = resp::read_value(reply, pos, top) && top.type == '*' && top.count == 2;
  if (ok) {
    child = resp::children_start(top);
    ok = resp::read_value(top.raw, child, cursor) && resp::read_value(top.raw, child, keys);
  }
  if (ok) {
    const char* end = cursor.payload.data() + cursor.payload.size();
    auto [p, ec] = std::from_chars(cursor.payload.data(), end, next);
    ok = ec == std::errc() && p == end;
  }
  // The client's cursor carries the server's above the server index: a server cursor with any of
  // the top bits set would come back as another one (or as 0, ending the iteration early).
  const int bits = scan_server_bits(servers_);
  if (ok && bits > 0 && (next >> (64 - bits)) != 0) ok = false;
  if (!ok) {
    rewritten_.clear();
    resp::append_error(rewritten_, "ERR cachegate: a server sent an unexpected SCAN reply");
    client->on_reply(cookie_, rewritten_, true);
    return;
  }
  ScanCursor following{cursor_.server, next};
  if (next == 0) following = ScanCursor{cursor_.server + 1, 0};
  const bool done = next == 0 && cursor_.server + 1 >= servers_;
  rewritten_.clear();
  resp::append_array(rewritten_, 2);
  resp::append_bulk(rewritten_, done ? "0" : encode_scan_cursor(following, servers_));
  rewritten_.append(keys.raw);
  client->on_reply(cookie_, rewritten_, false);
}

void ScanRequest::on_failure(uint32_t, Failure failure) {
  Ref<ReplyHandler> client = std::move(client_);
  client->on_failure(cookie_, failure);
}

void ScanRequest::destroy() {
  client_.reset();
  if (scan_free.items.size() < kMaxPooled && rewritten_.capacity() < kKeepCapacity) {
    scan_free.items.push_back(this);
  } else {
    delete this;
  }
}

}  // namespace cachegate::routing
