// libFuzzer target: the reply framers that read what servers send (memcached text and meta,
// RESP2/RESP3), and the namespace stripping applied to Redis replies that name keys. The first
// byte picks the shape; the rest is the stream. Every frame must lie within the input, and
// framing resumed a byte at a time must agree with framing all at once.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "protocol/key_namespace.h"
#include "protocol/memcache_reply.h"
#include "protocol/resp.h"

using namespace cachegate::protocol;

namespace {

void frame_memcache(const char* data, size_t size, ReplyShape shape) {
  memcache::ReplyFramer whole(4096), steps(4096);
  memcache::ReplyFrame a, b;
  const auto status = whole.frame(data, size, shape, a);
  memcache::ParseStatus resumed = memcache::ParseStatus::kNeedMore;
  for (size_t have = 1; have <= size; ++have) {
    resumed = steps.frame(data, have, shape, b);
    if (resumed != memcache::ParseStatus::kNeedMore) break;
  }
  if (size == 0) return;
  if (status != resumed) std::abort();
  if (status == memcache::ParseStatus::kOk &&
      (a.length != b.length || a.length > size || a.payload_length > a.length))
    std::abort();
}

void frame_resp(const char* data, size_t size) {
  resp::ReplyFramer whole(4096), steps(4096);
  resp::ReplyFrame a, b;
  const auto status = whole.frame(data, size, a);
  resp::ParseStatus resumed = resp::ParseStatus::kNeedMore;
  for (size_t have = 1; have <= size; ++have) {
    resumed = steps.frame(data, have, b);
    if (resumed != resp::ParseStatus::kNeedMore) break;
  }
  if (size == 0) return;
  if (status != resumed) std::abort();
  if (status != resp::ParseStatus::kOk) return;
  if (a.length != b.length || a.length > size) std::abort();
  // A framed reply, with keys in it as each kind of reply names them.
  const std::string_view reply(data, a.length);
  for (auto kind : {resp::KeyReply::kKeyList, resp::KeyReply::kScan, resp::KeyReply::kKeyFirst,
                    resp::KeyReply::kStreams}) {
    std::string out;
    if (resp::strip_reply_keys(reply, kind, "ns:", out)) {
      // What comes out must frame as one whole reply again.
      resp::ReplyFramer again(1 << 20);
      resp::ReplyFrame f;
      if (again.frame(out.data(), out.size(), f) != resp::ParseStatus::kOk ||
          f.length != out.size())
        std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const char* data = reinterpret_cast<const char*>(bytes) + 1;
  const size_t rest = size - 1;
  switch (bytes[0] % 5) {
    case 0:
      return frame_memcache(data, rest, ReplyShape::kMcLine), 0;
    case 1:
      return frame_memcache(data, rest, ReplyShape::kMcRetrieval), 0;
    case 2:
      return frame_memcache(data, rest, ReplyShape::kMcMeta), 0;
    case 3:
      return frame_memcache(data, rest, ReplyShape::kMcMetaQuiet), 0;
    default:
      return frame_resp(data, rest), 0;
  }
}
