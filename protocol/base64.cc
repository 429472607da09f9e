#include "protocol/base64.h"

#include <cstdint>

namespace cachegate::protocol {

namespace {

// The value of a base64 alphabet character, or -1.
int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

// Strict RFC 4648 (memcached is strict, and the bytes hashed here must be the key the server
// stores): groups of four, padding only at the very end, at most two '='.
std::optional<size_t> base64_decode(std::string_view in, char* out, size_t capacity) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  while (padding < 2 && in[in.size() - 1 - padding] == '=')
    ++padding;
  const size_t length = in.size() / 4 * 3 - padding;
  if (length > capacity) return std::nullopt;
  size_t written = 0;
  uint32_t bits = 0;
  int held = 0;
  for (size_t i = 0; i < in.size() - padding; ++i) {
    const int v = value_of(in[i]);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    held += 6;
    if (held >= 8) {
      held -= 8;
      out[written++] = static_cast<char>((bits >> held) & 0xff);
    }
  }
  return written;
}

void base64_encode(std::string_view in, std::string& out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t bits = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
                          static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 |
                          static_cast<unsigned char>(in[i + 2]);
    const char group[4] = {kAlphabet[bits >> 18], kAlphabet[(bits >> 12) & 63],
                           kAlphabet[(bits >> 6) & 63], kAlphabet[bits & 63]};
    out.append(group, 4);
  }
  const size_t left = in.size() - i;
  if (left == 0) return;
  uint32_t bits = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
  if (left == 2) bits |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
  const char group[4] = {kAlphabet[bits >> 18], kAlphabet[(bits >> 12) & 63],
                         left == 2 ? kAlphabet[(bits >> 6) & 63] : '=', '='};
  out.append(group, 4);
}

}  // namespace cachegate::protocol
