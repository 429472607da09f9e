// Golden values for twemproxy's twelve key hashes. The expected numbers were computed once by
// twemproxy 0.5's own src/hashkit code (built outside this tree) and are pinned here, so this
// test checks our implementation, libhashkit included, against twemproxy rather than against
// itself. Keys cover the empty key, hsieh's and murmur's one-, two- and three-byte tails,
// jenkins' 12-byte blocks, memcached's longest key, and bytes >= 0x80, where twemproxy reads
// `char` sign-extended.

#include "routing/hash.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace cachegate::routing {
namespace {

using H = config::HashFunction;

// In config::HashFunction (twemproxy's) order.
constexpr std::array<H, 12> kAllHashes = {
    H::kOneAtATime, H::kMd5,     H::kCrc16,    H::kCrc32, H::kCrc32a, H::kFnv1_64,
    H::kFnv1a_64,   H::kFnv1_32, H::kFnv1a_32, H::kHsieh, H::kMurmur, H::kJenkins,
};
constexpr std::array<const char*, 12> kHashNames = {
    "one_at_a_time", "md5",     "crc16",    "crc32", "crc32a", "fnv1_64",
    "fnv1a_64",      "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins",
};

// memcached's longest key.
std::string long_key() {
  std::string key;
  for (int i = 0; i < 25; ++i)
    key += "0123456789";
  return key;
}

std::string high_bytes_key() {
  std::string key;
  for (int c = 0x80; c <= 0xff; ++c)
    key.push_back(static_cast<char>(c));
  return key;
}

struct Golden {
  std::string key;
  std::array<uint32_t, 12> hash;  // in kAllHashes order
};

const std::vector<Golden> kGolden = {
    {std::string("", 0),
     {0x00000000u, 0xd98c1dd4u, 0x00000000u, 0x00000000u, 0x00000000u, 0x84222325u, 0x84222325u,
      0x811c9dc5u, 0x811c9dc5u, 0x00000000u, 0x00000000u, 0xdeadbefcu}},
    {std::string("a", 1),
     {0xca2e9442u, 0xb975c10cu, 0x00007c87u, 0x000068b7u, 0xe8b7be43u, 0x8601b7beu, 0x8601ec8cu,
      0x050c5d7eu, 0xe40c292cu, 0x93642e87u, 0x4b41757cu, 0xe0a38690u}},
    {std::string("foo", 3),
     {0x238678ddu, 0xdb18bdacu, 0x0c3caf96u, 0x00000c73u, 0x8c736521u, 0x6ba13533u, 0xfed9d577u,
      0x408f5e13u, 0xa9f37ed7u, 0x76d4d427u, 0xc4e0338fu, 0x99f84f99u}},
    {std::string("1", 1),
     {0x806b80c9u, 0x3842cac4u, 0x00002672u, 0x000003dcu, 0x83dcefb7u, 0x8601b7eeu, 0x86019afcu,
      0x050c5d2eu, 0x340ca71cu, 0xf2475372u, 0x434c067eu, 0x475b9650u}},
    {std::string("12", 2),
     {0x7401b0b6u, 0xd7d40ac2u, 0x002620b5u, 0x00004f53u, 0x4f5344cdu, 0xb4eb8958u, 0xb4ba0c0au,
      0x2076af58u, 0x1deb2d6au, 0x94180732u, 0x87b7ed35u, 0xa6be908fu}},
    {std::string("123", 3),
     {0x29b8dfb0u, 0x62b92c20u, 0x26209752u, 0x00000848u, 0x884863d2u, 0x6c3a60bbu, 0x1822c4dbu,
      0x72d607bbu, 0x7238631bu, 0x3ce9e2b1u, 0xe9c37f3cu, 0x88dc0412u}},
    {std::string("1234", 4),
     {0xad414afeu, 0xdb9bdc81u, 0x2097d789u, 0x00001be3u, 0x9be3e0a3u, 0xe7325df5u, 0x0314a21du,
      0x81ee2b55u, 0xfdc422fdu, 0xd1781478u, 0x82356ce6u, 0xf0b9f188u}},
    {std::string("12345", 5),
     {0xe0ae3d5cu, 0x0ecb7c82u, 0x97d7546cu, 0x00004bf5u, 0xcbf53a1cu, 0xda95a77au, 0x3c0f89f8u,
      0xdeee36fau, 0x43c2c0d8u, 0x2d79521au, 0x55149238u, 0xeac409c6u}},
    {std::string("123456", 6),
     {0xeef833c1u, 0x39dc0ae1u, 0xd75420e4u, 0x00000972u, 0x0972d361u, 0x6c4b9478u, 0x0e67290au,
      0xeb008bb8u, 0x9995b6aau, 0x05addbcfu, 0x966186d1u, 0xf426c902u}},
    {std::string("1234567", 7),
     {0xfd425086u, 0x0f92eafcu, 0x542086d6u, 0x00005003u, 0x5003699fu, 0x046d47dfu, 0x794b12a7u,
      0xa9dbf29fu, 0x63ae7927u, 0x1ec6a083u, 0x79a5ac4du, 0x539298cau}},
    {std::string("12345678", 8),
     {0xfaf3e0c9u, 0xd25ad525u, 0x20869015u, 0x00001ae0u, 0x9ae0daafu, 0x85b11fd5u, 0x1a90a42du,
      0x043ef075u, 0x0aa8abcdu, 0x69022b0bu, 0x63c91688u, 0x33b3098fu}},
    {std::string("123456789", 9),
     {0xc66b58c5u, 0x94e7f925u, 0x869031c3u, 0x00004bf4u, 0xcbf43926u, 0x2bf916d6u, 0x23c6cdfcu,
      0x24148816u, 0xbb86b11cu, 0xe4fc1670u, 0xb7760690u, 0x19777af6u}},
    {std::string("abcdefghijklm", 13),
     {0x6d99f6dcu, 0xd1bdae22u, 0x72b79537u, 0x00005df4u, 0xddf46ea2u, 0x3df1e6a2u, 0x398bc308u,
      0xe589b522u, 0x3b8356e8u, 0x70ce5414u, 0x2987d8bbu, 0xb621e85fu}},
    {std::string("user:{1234}:profile", 19),
     {0x303e3338u, 0x69380e18u, 0x76bb51b3u, 0x00001567u, 0x95675876u, 0x193c0f57u, 0xb77742dfu,
      0x6bc11d17u, 0x9b42badfu, 0x45b82780u, 0xfc989dc2u, 0xca606680u}},
    {std::string("The quick brown fox jumps over the lazy dog", 43),
     {0x519e91f5u, 0x9d7d109eu, 0x22a3f0c8u, 0x0000414fu, 0x414fa339u, 0x7de37aceu, 0xe7e47110u,
      0xe9c86c6eu, 0x048fff90u, 0x1c19ee97u, 0x30c79125u, 0x12b8163cu}},
    {std::string("\200", 1),
     {0xc31d4e27u, 0x7edd398du, 0x00009188u, 0x00003fbau, 0x3fba6cadu, 0x79fe485fu, 0x79fdec5fu,
      0xfaf3a29fu, 0x04f3b29fu, 0xd6f4cb32u, 0x90556245u, 0xb16fde48u}},
    {std::string("\377", 1),
     {0xae65a494u, 0xd44f5900u, 0x00001ef0u, 0x00007f00u, 0xff000000u, 0x79fe4820u, 0x79fe466eu,
      0xfaf3a2e0u, 0xf9f3a14eu, 0x02a6dba8u, 0xdb530a9cu, 0xe1964da8u}},
    {std::string("a\200", 2),
     {0x66395f3eu, 0x80569f66u, 0x007ca993u, 0x00005087u, 0xd087cb39u, 0x4b14c85au, 0x4aba5d64u,
      0x8f88d2dau, 0xacdaf0c4u, 0x58aacae5u, 0x09f1a677u, 0x26741412u}},
    {std::string("ab\200", 3),
     {0xc8dd56b0u, 0x610ba2d6u, 0x7c74509bu, 0x00000c27u, 0x0c27f200u, 0x94505228u, 0xfabe929eu,
      0xbc63d0a8u, 0xd8b8027eu, 0x584d72a3u, 0xbf8a58aeu, 0x6dd44e68u}},
    {std::string("ab\377", 3),
     {0x0603d118u, 0x82abbd74u, 0x7c74dfe3u, 0x00004c9du, 0xcc9d9eadu, 0x94505257u, 0xfabe022fu,
      0xbc63d0d7u, 0xc3b7e16fu, 0x75dc9fd6u, 0xec9082b2u, 0xe9af676bu}},
    {std::string("\200\201\202", 3),
     {0xe8cce13bu, 0x0a7685b3u, 0x919aa239u, 0x00003f5au, 0x3f5a8994u, 0x94a33c86u, 0x8a50dfa8u,
      0xcfab51a6u, 0x0ef7fca8u, 0x6bc37572u, 0x5822874fu, 0x3015dd51u}},
    {std::string("abcd\376", 5),
     {0x556e91b8u, 0x651866d2u, 0x9da80c33u, 0x0000625au, 0xe25a92a9u, 0x9e2cc5d1u, 0x89dc5c79u,
      0xf1d03ed1u, 0xa6645b79u, 0xf66c378du, 0x53af81cbu, 0x7bb8adafu}},
    {std::string("abcdef\377", 7),
     {0x974f1ad3u, 0x020150b2u, 0x3e3a74e9u, 0x00004ffeu, 0xcffe71d0u, 0x93e7dff7u, 0xe8562f4fu,
      0x53b91537u, 0xf7617e4fu, 0x952fa7e0u, 0x02840577u, 0xc732d424u}},
    {std::string("\303\251t\303\251", 5),
     {0x7fcb4b35u, 0x1e6aafdeu, 0xe626a767u, 0x000044d1u, 0x44d16cd4u, 0xee202e17u, 0xea769c57u,
      0xbebb7c97u, 0x0beea017u, 0xcc955977u, 0xda710acbu, 0x89466c13u}},
    {std::string("key\000nul", 7),
     {0xdf35fa72u, 0x9c981f47u, 0xdb118b3au, 0x00006c23u, 0xec239ddcu, 0x6a20ca3fu, 0x682b8f27u,
      0x1d59daffu, 0x21c23567u, 0x0c2d0583u, 0x1137dee9u, 0x19ed2536u}},
    {long_key(),
     {0xfa1d72ffu, 0xa6454ce3u, 0xaaa0e990u, 0x00007c03u, 0xfc03a249u, 0x36089a2cu, 0x08c87812u,
      0xfc1311ccu, 0x08b61cd2u, 0x0eb55049u, 0x0e0af0f3u, 0xbf7d1c1cu}},
    {high_bytes_key(),
     {0x92924e84u, 0x1504f416u, 0xf01953e8u, 0x00004649u, 0x4649f09du, 0xa4f44625u, 0xece9aea5u,
      0x1d7c8bc5u, 0x3f36c845u, 0xd08f131bu, 0xfd257f20u, 0xeb409d86u}},
};

std::string printable(const std::string& key) {
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out.size() > 60 ? out.substr(0, 60) + "..." : out;
}

TEST_CASE("every hash function matches twemproxy's golden values", "[routing][hash]") {
  for (const auto& golden : kGolden) {
    for (size_t f = 0; f < kAllHashes.size(); ++f) {
      INFO(kHashNames[f] << " of \"" << printable(golden.key) << "\" (" << golden.key.size()
                         << " bytes)");
      CHECK(hash_key(kAllHashes[f], golden.key) == golden.hash[f]);
    }
  }
}

TEST_CASE("hashes do not depend on the key's alignment in memory", "[routing][hash]") {
  // jenkins and murmur read whole words where the key is aligned; the result must not change.
  alignas(8) char buffer[512];
  for (const auto& golden : kGolden) {
    for (size_t offset = 1; offset < 8; ++offset) {
      std::memcpy(buffer + offset, golden.key.data(), golden.key.size());
      for (size_t f = 0; f < kAllHashes.size(); ++f) {
        INFO(kHashNames[f] << " of \"" << printable(golden.key) << "\" at offset " << offset);
        CHECK(hash_function(kAllHashes[f])(buffer + offset, golden.key.size()) == golden.hash[f]);
      }
    }
  }
}

TEST_CASE("twemproxy's hash quirks hold", "[routing][hash]") {
  const std::string check = "123456789";  // the CRC catalogue's check input

  SECTION("crc16 is CRC-16/XMODEM in its low half, with an unmasked 32-bit accumulator") {
    CHECK((hash_key(H::kCrc16, check) & 0xffffu) == 0x31c3u);  // XMODEM's check value
    CHECK(hash_key(H::kCrc16, check) > 0xffffu);
    // One byte is one table entry; a second byte shifts it up by 8 instead of dropping its high
    // byte: (table[0x01] << 8) ^ table[0x10].
    CHECK(hash_key(H::kCrc16, std::string(1, '\x01')) == 0x1021u);
    CHECK(hash_key(H::kCrc16, std::string("\x01\x00", 2)) == ((0x1021u << 8) ^ 0x1231u));
  }
  SECTION("crc32a is the standard CRC-32") {
    CHECK(hash_key(H::kCrc32a, check) == 0xcbf43926u);
  }
  SECTION("crc32 keeps libmemcached's 15 bits of the CRC-32") {
    for (const auto& golden : kGolden) {
      CHECK(hash_key(H::kCrc32, golden.key) < 0x8000u);
      CHECK(hash_key(H::kCrc32, golden.key) ==
            ((hash_key(H::kCrc32a, golden.key) >> 16) & 0x7fffu));
    }
  }
  SECTION("fnv1a_64 is 32-bit arithmetic from the 64-bit offset basis's low half") {
    CHECK(hash_key(H::kFnv1a_64, "") == 0x84222325u);
    CHECK(hash_key(H::kFnv1a_64, "a") == ((0x84222325u ^ 'a') * 0x1b3u));
  }
  SECTION("md5 is the first four digest bytes, little-endian") {
    unsigned char digest[16];
    md5_digest("foo", 3, digest);
    uint32_t expected =
        digest[0] | digest[1] << 8 | digest[2] << 16 | static_cast<uint32_t>(digest[3]) << 24;
    CHECK(hash_key(H::kMd5, "foo") == expected);
  }
  SECTION("bytes >= 0x80 are sign-extended where twemproxy reads char") {
    // one_at_a_time adds each byte as a sign-extended char: 0x80 contributes 0xffffff80.
    uint32_t value = 0xffffff80u;
    value += value << 10;
    value ^= value >> 6;
    value += value << 3;
    value ^= value >> 11;
    value += value << 15;
    CHECK(hash_key(H::kOneAtATime, "\x80") == value);
  }
}

TEST_CASE("md5_digest is MD5", "[routing][hash]") {
  auto hex = [](const std::string& text) {
    unsigned char digest[16];
    md5_digest(text.data(), text.size(), digest);
    std::string out;
    for (unsigned char c : digest) {
      char buf[3];
      std::snprintf(buf, sizeof(buf), "%02x", c);
      out += buf;
    }
    return out;
  };
  // RFC 1321, appendix A.5.
  CHECK(hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(hex("abc") == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(hex("message digest") == "f96b697d7cb7938d525a2f31aaf161d0");
}

}  // namespace
}  // namespace cachegate::routing
