// libFuzzer target: the memcached request parser (text and meta commands) on arbitrary client
// bytes. Every request it accepts must lie within the input, and parsing a stream request by
// request must end (each accepted request consumes bytes).

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "protocol/memcache_request.h"

using namespace cachegate::protocol::memcache;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small limits, so that the limit paths are reached by small inputs too.
  RequestParser parser(ParserLimits{256, 1024});
  const char* at = reinterpret_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    Request request;
    const ParseStatus status = parser.parse(at, left, request);
    if (status != ParseStatus::kOk) break;
    if (request.frame_length == 0 || request.frame_length > left) std::abort();
    if (is_retrieval(request.command))
      for (const Span& key : parser.keys())
        if (key.offset + key.length > request.frame_length) std::abort();
    at += request.frame_length;
    left -= request.frame_length;
  }
  return 0;
}
