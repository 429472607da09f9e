#include "protocol/base64.h"

#include <openssl/evp.h>

namespace cachegate::protocol {

std::optional<size_t> base64_decode(std::string_view in, char* out, size_t capacity) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (in.back() == '=') ++padding;
  if (in.size() >= 2 && in[in.size() - 2] == '=') ++padding;
  const size_t decoded = in.size() / 4 * 3;
  if (decoded - padding > capacity) return std::nullopt;
  // EVP_DecodeBlock writes whole groups of three, padding included; decode into a scratch
  // buffer sized for that, then copy the real bytes.
  unsigned char scratch[512];
  if (decoded > sizeof scratch) return std::nullopt;
  int n = EVP_DecodeBlock(scratch, reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0 || static_cast<size_t>(n) != decoded) return std::nullopt;
  const size_t length = decoded - padding;
  for (size_t i = 0; i < length; ++i)
    out[i] = static_cast<char>(scratch[i]);
  return length;
}

}  // namespace cachegate::protocol
