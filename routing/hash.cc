#include "routing/hash.h"

#include <array>

#include <libhashkit-1.0/hashkit.h>
#include <boost/crc.hpp>

namespace cachegate::routing {

namespace {

// Paul Hsieh's SuperFastHash as twemproxy has it (src/hashkit/nc_hsieh.c). Debian builds
// libhashkit without hsieh (its libhashkit_hsieh() returns 0), so it lives here. twemproxy's
// variant differs from the published one in two ways that decide placement: the initial hash
// is 0 rather than the key length, and in the three-byte tail the last byte is read as a
// sign-extended `char`. Debian's nutcracker runs on x86, where `char` is signed, so that byte is
// read as `signed char` here on every platform.
uint32_t hash_hsieh(const char* key, size_t length) {
  if (key == nullptr || length == 0) return 0;

  const auto* bytes = reinterpret_cast<const unsigned char*>(key);
  auto get16 = [](const unsigned char* p) -> uint32_t {
    return (static_cast<uint32_t>(p[1]) << 8) + static_cast<uint32_t>(p[0]);
  };

  uint32_t hash = 0;
  size_t rem = length & 3;
  for (size_t blocks = length >> 2; blocks > 0; --blocks) {
    hash += get16(bytes);
    uint32_t tmp = (get16(bytes + 2) << 11) ^ hash;
    hash = (hash << 16) ^ tmp;
    bytes += 4;
    hash += hash >> 11;
  }

  switch (rem) {
    case 3:
      hash += get16(bytes);
      hash ^= hash << 16;
      hash ^= static_cast<uint32_t>(static_cast<int32_t>(static_cast<signed char>(bytes[2]))) << 18;
      hash += hash >> 11;
      break;
    case 2:
      hash += get16(bytes);
      hash ^= hash << 11;
      hash += hash >> 17;
      break;
    case 1:
      hash += bytes[0];
      hash ^= hash << 10;
      hash += hash >> 1;
      break;
    default:
      break;
  }

  hash ^= hash << 3;
  hash += hash >> 5;
  hash ^= hash << 4;
  hash += hash >> 17;
  hash ^= hash << 25;
  hash += hash >> 6;
  return hash;
}

// twemproxy 0.5's crc16 (src/hashkit/nc_crc16.c as released; later sources replaced it with
// CRC-16/ARC) walks the CRC-16/XMODEM table (polynomial 0x1021, initial value 0) but keeps the
// running value in a uint32_t that is never masked to 16 bits. The low 16 bits are the XMODEM CRC;
// the high 16 hold earlier table entries shifted up, and they take part in placement. No CRC
// library exposes that accumulator, so the table is generated here from the polynomial.
constexpr std::array<uint16_t, 256> kCrc16XmodemTable = [] {
  std::array<uint16_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i << 8;
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = static_cast<uint16_t>(crc);
  }
  return table;
}();
static_assert(kCrc16XmodemTable[1] == 0x1021 && kCrc16XmodemTable[255] == 0x1ef0);

uint32_t hash_crc16(const char* key, size_t length) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(key);
  uint32_t crc = 0;
  for (size_t i = 0; i < length; ++i)
    crc = (crc << 8) ^ kCrc16XmodemTable[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc;
}

// The standard CRC-32 (unlike `crc32`, which keeps libmemcached's 15-bit truncation).
uint32_t hash_crc32a(const char* key, size_t length) {
  boost::crc_32_type crc;
  crc.process_bytes(key, length);
  return crc.checksum();
}

}  // namespace

// libhashkit's functions are taken wherever they give twemproxy's result for every key,
// including bytes >= 0x80 (both read `char` the same way); tests/unit/routing/hash_test.cc pins
// each one with values computed by twemproxy's own code.
HashFn hash_function(config::HashFunction which) {
  switch (which) {
    case config::HashFunction::kOneAtATime:
      return &libhashkit_one_at_a_time;
    case config::HashFunction::kMd5:
      return &libhashkit_md5;
    case config::HashFunction::kCrc16:
      return &hash_crc16;
    case config::HashFunction::kCrc32:
      return &libhashkit_crc32;
    case config::HashFunction::kCrc32a:
      return &hash_crc32a;
    case config::HashFunction::kFnv1_64:
      return &libhashkit_fnv1_64;
    case config::HashFunction::kFnv1a_64:
      return &libhashkit_fnv1a_64;
    case config::HashFunction::kFnv1_32:
      return &libhashkit_fnv1_32;
    case config::HashFunction::kFnv1a_32:
      return &libhashkit_fnv1a_32;
    case config::HashFunction::kHsieh:
      return &hash_hsieh;
    case config::HashFunction::kMurmur:
      return &libhashkit_murmur;
    case config::HashFunction::kJenkins:
      return &libhashkit_jenkins;
  }
  // Unreachable for a validated config; twemproxy's default hash keeps the process routing.
  return &libhashkit_fnv1a_64;
}

void md5_digest(const void* data, size_t length, unsigned char digest[16]) {
  libhashkit_md5_signature(static_cast<const unsigned char*>(data), length, digest);
}

}  // namespace cachegate::routing
