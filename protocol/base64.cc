#include "protocol/base64.h"

#include <openssl/evp.h>

namespace cachegate::protocol {

namespace {
bool in_alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}
}  // namespace

std::optional<size_t> base64_decode(std::string_view in, char* out, size_t capacity) {
  // OpenSSL's decoder is lenient about where '=' appears; memcached is not, and the bytes hashed
  // here must be the key the server stores. So the shape is checked first (RFC 4648: groups of
  // four, padding only at the very end, at most two '=').
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  while (padding < 2 && in[in.size() - 1 - padding] == '=')
    ++padding;
  for (size_t i = 0; i < in.size() - padding; ++i)
    if (!in_alphabet(in[i])) return std::nullopt;
  const size_t length = in.size() / 4 * 3 - padding;
  if (length > capacity) return std::nullopt;
  // One group at a time: EVP_DecodeBlock writes three bytes per group, padding included.
  size_t written = 0;
  for (size_t group = 0; group < in.size(); group += 4) {
    unsigned char bytes[3];
    if (EVP_DecodeBlock(bytes, reinterpret_cast<const unsigned char*>(in.data() + group), 4) != 3)
      return std::nullopt;
    const size_t take = group + 4 == in.size() ? 3 - padding : 3;
    for (size_t i = 0; i < take; ++i)
      out[written++] = static_cast<char>(bytes[i]);
  }
  return written;
}

}  // namespace cachegate::protocol
