#pragma once

// Base64 (RFC 4648, with padding) for meta-protocol keys sent with the `b` flag: the decoded bytes
// are what memcached stores, so they are what cachegate hashes (and what a user's namespace is
// put in front of, before the key is encoded again).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cachegate::protocol {

// Decodes `in` into out[0..capacity); returns the decoded length, or nullopt when `in` is not
// valid base64 or does not fit.
std::optional<size_t> base64_decode(std::string_view in, char* out, size_t capacity);
// Appends the encoding of `in` to `out`.
void base64_encode(std::string_view in, std::string& out);

}  // namespace cachegate::protocol
