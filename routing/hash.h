#pragma once

// Key hash functions, bit-for-bit identical to twemproxy 0.5's (src/hashkit), so that a fleet
// moves from twemproxy to cachegate with every key on the same server. Pinned by golden values
// in tests/unit/routing and checked against a running nutcracker in tests/integration.
//
// Quirks kept on purpose (they decide where keys live in existing fleets):
// - fnv1a_64 is 32-bit arithmetic (offset 0x84222325, prime 0x1b3);
// - several functions sign-extend each key byte from `char` before mixing;
// - crc32 returns a 15-bit value (libmemcached compatible); crc32a is the full CRC-32;
// - crc16 is 0.5's: the CRC-16/XMODEM table with a 32-bit accumulator that is never masked;
// - md5 is the first four digest bytes, little-endian.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

namespace cachegate::routing {

using HashFn = uint32_t (*)(const char* key, size_t length);

// The function twemproxy uses for `hash: <name>`.
HashFn hash_function(config::HashFunction which);

inline uint32_t hash_key(config::HashFunction which, std::string_view key) {
  return hash_function(which)(key.data(), key.size());
}

// MD5 of `data` into `digest[16]`; used by ketama to place server points.
void md5_digest(const void* data, size_t length, unsigned char digest[16]);

}  // namespace cachegate::routing
