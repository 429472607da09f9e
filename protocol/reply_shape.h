#pragma once

#include <cstdint>

namespace cachegate::protocol {

// What a backend's reply to one request looks like, so the reply stream (which carries no
// request ids) can be cut into one frame per request, in order.
enum class ReplyShape : uint8_t {
  kMcLine,       // one line: STORED, DELETED, NOT_FOUND, 42, OK, VERSION …, errors
  kMcRetrieval,  // VALUE items then END, or one error line
  kMcMeta,       // "VA <n> …" with a data block, or one line (HD, EN, NF, NS, EX, ME …, errors)
  // A quiet meta request followed by the "mn" cachegate appended: zero or one meta reply, then
  // MN. Only the part before MN is the request's reply.
  kMcMetaQuiet,
  // One RESP reply of any type. The version says which of a server's connection sets carries
  // the request: RESP3 replies need a connection that said HELLO 3.
  kResp2,
  kResp3,
};

inline bool is_resp(ReplyShape shape) {
  return shape == ReplyShape::kResp2 || shape == ReplyShape::kResp3;
}

}  // namespace cachegate::protocol
