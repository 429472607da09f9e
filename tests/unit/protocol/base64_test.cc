// base64_decode, used for meta keys sent with the b flag: the decoded bytes are what memcached
// stores under, so they are what cachegate hashes. A decoder that accepts what is not base64, or
// decodes it to other bytes than memcached does, sends a key to a server that does not hold it.
// base64_encode writes such a key again with a user's namespace in front; the encoder is pinned
// to the RFC's vectors, then each is checked against the other over every byte value.

#include "protocol/base64.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

namespace cachegate::protocol {
namespace {

std::string encode(std::string_view in) {
  std::string out;
  base64_encode(in, out);
  return out;
}

// Decodes into a buffer with guard bytes after `capacity`, which must stay untouched.
std::optional<std::string> decode(std::string_view in, size_t capacity = 256) {
  std::vector<char> out(capacity + 16, '#');
  auto n = base64_decode(in, out.data(), capacity);
  for (size_t i = capacity; i < out.size(); ++i)
    REQUIRE(out[i] == '#');
  if (!n) return std::nullopt;
  REQUIRE(*n <= capacity);
  return std::string(out.data(), *n);
}

TEST_CASE("base64: RFC 4648 test vectors", "[base64]") {
  const std::pair<std::string_view, std::string_view> vectors[] = {{"", ""},
                                                                   {"f", "Zg=="},
                                                                   {"fo", "Zm8="},
                                                                   {"foo", "Zm9v"},
                                                                   {"foob", "Zm9vYg=="},
                                                                   {"fooba", "Zm9vYmE="},
                                                                   {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors)
    CHECK(encode(plain) == coded);
  std::string appended = "k";
  base64_encode("foo", appended);
  CHECK(appended == "kZm9v");
  CHECK(decode("Zg==") == std::optional<std::string>("f"));
  CHECK(decode("Zm8=") == std::optional<std::string>("fo"));
  CHECK(decode("Zm9v") == std::optional<std::string>("foo"));
  CHECK(decode("Zm9vYg==") == std::optional<std::string>("foob"));
  CHECK(decode("Zm9vYmE=") == std::optional<std::string>("fooba"));
  CHECK(decode("Zm9vYmFy") == std::optional<std::string>("foobar"));
}

TEST_CASE("base64: every byte value, every padding length", "[base64]") {
  std::string all;
  for (int c = 0; c < 256; ++c)
    all.push_back(static_cast<char>(c));
  for (size_t length = 1; length <= 12; ++length) {
    for (size_t start = 0; start + length <= all.size(); start += 7) {
      const std::string bytes = all.substr(start, length);
      INFO("length " << length << " start " << start);
      REQUIRE(decode(encode(bytes)) == std::optional<std::string>(bytes));
    }
  }
  // The whole range at once, '+' and '/' included.
  CHECK(decode(encode(all), 256) == std::optional<std::string>(all));
  CHECK(decode("+/8=") == std::optional<std::string>("\xfb\xff"));
  // A memcached key's worth: 250 base64 characters are not a multiple of four, 248 are.
  const std::string long_key(186, 'k');
  REQUIRE(encode(long_key).size() == 248);
  CHECK(decode(encode(long_key), 250) == std::optional<std::string>(long_key));
}

TEST_CASE("base64: characters outside the alphabet", "[base64]") {
  for (std::string in :
       {"Zm9!", "Zm9v!!!!", "-_-_", "Zm\tv", "Zm v", " Zm9", "Zm9 ", "Zm9\n", "Zm\x80v", "Zm.v"}) {
    INFO(in);
    CHECK_FALSE(decode(in).has_value());
  }
  CHECK_FALSE(decode(std::string("Zm\0v", 4)).has_value());
}

TEST_CASE("base64: lengths that are not a multiple of four", "[base64]") {
  for (std::string in : {"Z", "Zm", "Zm9", "Zm9vY", "Zm9vYm", "Zm9vYmF", "Zg=", "Zg"}) {
    INFO(in);
    CHECK_FALSE(decode(in).has_value());
  }
  // No key is empty; nothing to decode.
  CHECK_FALSE(decode("").has_value());
}

TEST_CASE("base64: output capacity", "[base64]") {
  CHECK(decode("Zm9v", 3) == std::optional<std::string>("foo"));
  CHECK_FALSE(decode("Zm9v", 2).has_value());
  CHECK(decode("Zm8=", 2) == std::optional<std::string>("fo"));
  CHECK_FALSE(decode("Zm8=", 1).has_value());
  CHECK(decode("Zg==", 1) == std::optional<std::string>("f"));
  CHECK_FALSE(decode("Zg==", 0).has_value());
  CHECK(decode("Zm9vYmFy", 6) == std::optional<std::string>("foobar"));
  CHECK_FALSE(decode("Zm9vYmFy", 5).has_value());
}

// OpenSSL's decoder alone is lenient about '='; memcached rejects these keys ("CLIENT_ERROR error
// decoding key") or reads them differently ("Zg==Zg==" is "f" to it), so they must not decode to
// bytes that would be hashed.
TEST_CASE("base64: padding only at the end, and only where it belongs", "[base64]") {
  for (std::string in : {"====", "Z===", "ab=c", "a=bc", "Zg=A", "Zg==Zg==", "Zm8=Zm8="}) {
    INFO(in);
    CHECK_FALSE(decode(in).has_value());
  }
}

// Only the output capacity bounds the input length.
TEST_CASE("base64: long input that fits the output", "[base64]") {
  const std::string bytes(600, 'x');
  CHECK(decode(encode(bytes), 1024) == std::optional<std::string>(bytes));
}

}  // namespace
}  // namespace cachegate::protocol
