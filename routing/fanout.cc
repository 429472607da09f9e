#include "routing/fanout.h"

#include "protocol/memcache_reply.h"

namespace cachegate::routing {

namespace {

// Finished objects wait here for reuse so a multi-get costs no allocation once warm. Per thread:
// a worker only ever recycles its own.
template <class T>
struct FreeList {
  std::vector<T*> items;
  ~FreeList() {
    for (T* p : items)
      delete p;
  }
};
constexpr size_t kMaxPooled = 256;

}  // namespace

void merge_retrieval(const std::vector<std::string_view>& keys,
                     const std::vector<uint32_t>& part_of_key,
                     const std::vector<std::string_view>& parts, std::string& out) {
  struct Cursor {
    protocol::memcache::ValueItems items;
    bool has = false;
    std::string_view key, item;
  };
  std::vector<Cursor> cursors;
  cursors.reserve(parts.size());
  for (auto part : parts) {
    Cursor c{protocol::memcache::ValueItems(part), false, {}, {}};
    c.has = c.items.next(c.key, c.item);
    cursors.push_back(c);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    Cursor& c = cursors[part_of_key[i]];
    if (c.has && c.key == keys[i]) {
      out.append(c.item);
      c.has = c.items.next(c.key, c.item);
    }
  }
  out.append("END\r\n");
}

// --- RetrievalFanout ---------------------------------------------------------------------------

static thread_local FreeList<RetrievalFanout> fanout_free;

void RetrievalFanout::start(PartRouter& router, std::string_view command, std::string_view exptime,
                            const char* request, const std::vector<protocol::memcache::Span>& keys,
                            const std::vector<uint32_t>& server_of_key, ReplyHandler& client,
                            uint32_t cookie, uint32_t affinity, size_t max_line) {
  if (keys.empty()) {  // nothing to ask anyone: an empty retrieval reply
    client.on_reply(cookie, "END\r\n", false);
    return;
  }
  RetrievalFanout* f;
  if (!fanout_free.items.empty()) {
    f = fanout_free.items.back();
    fanout_free.items.pop_back();
  } else {
    f = new RetrievalFanout();
  }
  Ref<RetrievalFanout> self(f);  // keeps it alive while parts may complete synchronously

  // Keys are copied: the client's input buffer moves on before the parts answer.
  f->key_bytes_.clear();
  for (const auto& k : keys)
    f->key_bytes_.append(request + k.offset, k.length);
  f->keys_.clear();
  size_t offset = 0;
  for (const auto& k : keys) {
    f->keys_.emplace_back(f->key_bytes_.data() + offset, k.length);
    offset += k.length;
  }

  // Parts in order of first appearance of their server; a server's keys go to its latest part
  // until that part's line would grow past max_line. Within a part keys keep the client's order,
  // which is what merge_retrieval relies on.
  const size_t base_line = command.size() + (exptime.empty() ? 0 : exptime.size() + 1) + 2;
  f->part_server_.clear();
  f->part_line_.clear();
  f->part_of_key_.resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const size_t grow = keys[i].length + 1;
    size_t part = f->part_server_.size();
    for (size_t p = f->part_server_.size(); p-- > 0;) {
      if (f->part_server_[p] == server_of_key[i]) {
        part = p;
        break;
      }
    }
    if (part == f->part_server_.size() ||
        (max_line != 0 && f->part_line_[part] + grow > max_line)) {
      part = f->part_server_.size();
      f->part_server_.push_back(server_of_key[i]);
      f->part_line_.push_back(base_line);
    }
    f->part_line_[part] += grow;
    f->part_of_key_[i] = static_cast<uint32_t>(part);
  }
  const size_t nparts = f->part_server_.size();
  f->begin(client, cookie, nparts);

  static thread_local std::string sub_request;
  for (uint32_t p = 0; p < nparts; ++p) {
    sub_request.assign(command);
    if (!exptime.empty()) {
      sub_request.push_back(' ');
      sub_request.append(exptime);
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      if (f->part_of_key_[i] != p) continue;
      sub_request.push_back(' ');
      sub_request.append(f->keys_[i]);
    }
    sub_request.append("\r\n");
    std::string_view piece(sub_request);
    std::string_view first_key;
    for (size_t i = 0; i < keys.size() && first_key.empty(); ++i)
      if (f->part_of_key_[i] == p) first_key = f->keys_[i];
    router.send_part(f->part_server_[p], first_key, &piece, 1, protocol::ReplyShape::kMcRetrieval,
                     *f, p, affinity);
  }
}

void RetrievalFanout::on_reply(uint32_t part, std::string_view reply, bool error) {
  if (error) {
    // Only the error line: items a server sent before giving up (memcached's out-of-memory
    // SERVER_ERROR in the middle of a multi-get) would read as a complete answer.
    size_t start = reply.size() >= 2 ? reply.rfind('\n', reply.size() - 2) : std::string::npos;
    keep_error(start == std::string::npos ? reply : reply.substr(start + 1));
  } else {
    keep_reply(part, reply);
  }
  part_done();
}

void RetrievalFanout::deliver_merged(ReplyHandler& client, uint32_t cookie) {
  static thread_local std::vector<std::string_view> parts;
  parts.clear();
  for (size_t p = 0; p < part_server_.size(); ++p)
    parts.emplace_back(part_replies_[p]);
  merged_.clear();
  merge_retrieval(keys_, part_of_key_, parts, merged_);
  client.on_reply(cookie, merged_, false);
}

void RetrievalFanout::destroy() {
  release_client();
  // Recycle the object, but not the memory of a large request: a kept object holds on to its
  // buffers, and kept ones would otherwise each grow to the largest reply the worker ever merged
  // (up to kMaxPooled of them, per worker, for good).
  constexpr size_t kKeep = 64 * 1024;
  const bool small =
      merged_.capacity() < kKeep && key_bytes_.capacity() < kKeep && parts_smaller_than(kKeep);
  if (fanout_free.items.size() < kMaxPooled && small) {
    fanout_free.items.push_back(this);
  } else {
    delete this;
  }
}

// --- Broadcast ---------------------------------------------------------------------------------

static thread_local FreeList<Broadcast> broadcast_free;

void Broadcast::start(Pool& pool, const std::string_view* pieces, size_t count,
                      protocol::ReplyShape shape, ReplyHandler& client, uint32_t cookie,
                      uint32_t affinity) {
  Pool* const pools[1] = {&pool};
  start(pools, 1, pieces, count, shape, client, cookie, affinity);
}

void Broadcast::start(Pool* const* pools, size_t pool_count, const std::string_view* pieces,
                      size_t count, protocol::ReplyShape shape, ReplyHandler& client,
                      uint32_t cookie, uint32_t affinity) {
  Broadcast* b;
  if (!broadcast_free.items.empty()) {
    b = broadcast_free.items.back();
    broadcast_free.items.pop_back();
  } else {
    b = new Broadcast();
  }
  Ref<Broadcast> self(b);
  b->client_ = Ref<ReplyHandler>(&client);
  b->cookie_ = cookie;
  b->failed_ = false;
  b->have_error_ = false;
  b->first_reply_.clear();
  b->outstanding_ = 0;
  for (size_t p = 0; p < pool_count; ++p)
    b->outstanding_ += pools[p]->size();
  uint32_t part = 0;
  for (size_t p = 0; p < pool_count; ++p)
    for (uint32_t s = 0; s < pools[p]->size(); ++s)
      pools[p]->server(s).send(pieces, count, shape, *b, part++, affinity);
}

void Broadcast::on_reply(uint32_t server, std::string_view reply, bool error) {
  if (error && !have_error_) {
    have_error_ = true;
    first_reply_.assign(reply);
  } else if (server == 0 && !have_error_) {
    first_reply_.assign(reply);
  }
  part_done();
}

void Broadcast::on_failure(uint32_t server, Failure failure) {
  if (!failed_) {
    failed_ = true;
    failure_ = failure;
  }
  part_done();
}

void Broadcast::part_done() {
  if (--outstanding_ != 0) return;
  Ref<ReplyHandler> client = std::move(client_);
  if (failed_) {
    client->on_failure(cookie_, failure_);
  } else {
    client->on_reply(cookie_, first_reply_, have_error_);
  }
}

void Broadcast::destroy() {
  client_.reset();
  if (broadcast_free.items.size() < kMaxPooled) {
    broadcast_free.items.push_back(this);
  } else {
    delete this;
  }
}

}  // namespace cachegate::routing
