// libFuzzer target: the RESP request parser (multibulk and inline) on arbitrary client bytes.
// Besides not crashing: the parser is resumable, so feeding a request a few bytes at a time must
// give exactly what one call with all of them gives; and every argument lies within the input.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/resp.h"

using namespace cachegate::protocol::resp;

namespace {

struct Outcome {
  ParseStatus status = ParseStatus::kNeedMore;
  uint32_t length = 0;
  std::vector<std::string> args;
};

Outcome parse_whole(const char* data, size_t size) {
  RequestParser parser(RequestLimits{64, 4096, 512});
  Request request;
  Outcome out;
  out.status = parser.parse(data, size, request);
  if (out.status == ParseStatus::kOk) {
    out.length = request.length;
    for (const auto& a : parser.args())
      out.args.emplace_back(a);
  }
  return out;
}

// The same, growing the input `step` bytes at a time from one start, as a socket delivers it.
Outcome parse_in_steps(const char* data, size_t size, size_t step) {
  RequestParser parser(RequestLimits{64, 4096, 512});
  Request request;
  Outcome out;
  for (size_t have = std::min(step, size);; have = std::min(have + step, size)) {
    out.status = parser.parse(data, have, request);
    if (out.status != ParseStatus::kNeedMore || have == size) break;
  }
  if (out.status == ParseStatus::kOk) {
    out.length = request.length;
    for (const auto& a : parser.args())
      out.args.emplace_back(a);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const char* data = reinterpret_cast<const char*>(bytes);
  const Outcome whole = parse_whole(data, size);
  if (whole.status == ParseStatus::kOk && (whole.length == 0 || whole.length > size)) std::abort();
  for (size_t step : {1, 3, 7}) {
    const Outcome steps = parse_in_steps(data, size, step);
    if (steps.status != whole.status) std::abort();
    if (whole.status == ParseStatus::kOk &&
        (steps.length != whole.length || steps.args != whole.args))
      std::abort();
  }
  return 0;
}
