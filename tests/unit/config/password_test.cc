// Password hashes: the key derivations pinned by RFC 7914's test vectors, PHC strings made by
// another implementation (Python's hashlib) that must verify here, round trips, and the strings
// parse_password_hash refuses, each with its reason.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "config/password.h"

namespace cachegate::config {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

std::vector<uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

std::vector<uint8_t> hex(std::string_view text) {
  std::vector<uint8_t> out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < text.size(); i += 2) {
    while (text[i] == ' ')
      ++i;
    out.push_back(static_cast<uint8_t>(nibble(text[i]) * 16 + nibble(text[i + 1])));
  }
  return out;
}

ParsedHash pbkdf2(std::string_view salt, uint32_t iterations, std::string_view expected_hex) {
  ParsedHash h;
  h.scheme = PasswordScheme::kPbkdf2Sha256;
  h.iterations = iterations;
  h.salt = bytes(salt);
  h.hash = hex(expected_hex);
  return h;
}

ParsedHash parsed(std::string_view phc) {
  ParsedHash h;
  std::string why;
  const bool ok = parse_password_hash(phc, h, &why);
  INFO(why);
  REQUIRE(ok);
  return h;
}

// What parse_password_hash says about `phc`; fails the test when it accepts it.
std::string rejection(std::string_view phc) {
  ParsedHash h;
  std::string why;
  CHECK_FALSE(parse_password_hash(phc, h, &why));
  CHECK_FALSE(why.empty());
  return why;
}

// RFC 7914, section 11.
TEST_CASE("PBKDF2-HMAC-SHA256 derives RFC 7914's test vectors", "[config][password]") {
  const ParsedHash one = pbkdf2("salt", 1,
                                "55 ac 04 6e 56 e3 08 9f ec 16 91 c2 25 44 b6 05 "
                                "f9 41 85 21 6d de 04 65 e6 8b 9d 57 c2 0d ac bc "
                                "49 ca 9c cc f1 79 b6 45 99 16 64 b3 9d 77 ef 31 "
                                "7c 71 b8 45 b1 e3 0b d5 09 11 20 41 d3 a1 97 83");
  REQUIRE(one.hash.size() == 64);
  CHECK(verify_password(one, "passwd"));
  CHECK_FALSE(verify_password(one, "passwe"));
  CHECK_FALSE(verify_password(one, "passwd "));
  CHECK_FALSE(verify_password(one, ""));

  const ParsedHash many = pbkdf2("NaCl", 80000,
                                 "4d dc d8 f6 0b 98 be 21 83 0c ee 5e f2 27 01 f9 "
                                 "64 1a 44 18 d0 4c 04 14 ae ff 08 87 6b 34 ab 56 "
                                 "a1 d4 25 a1 22 58 33 54 9a db 84 1b 51 c9 b3 17 "
                                 "6a 27 2b de bb a1 d0 78 47 8f 62 b3 97 f3 3c 8d");
  CHECK(verify_password(many, "Password"));
  CHECK_FALSE(verify_password(many, "password"));

  // Only the stored length is derived and compared: the first 32 bytes verify on their own.
  ParsedHash prefix = one;
  prefix.hash.resize(32);
  CHECK(verify_password(prefix, "passwd"));
  // One flipped bit anywhere fails.
  ParsedHash flipped = one;
  flipped.hash[63] ^= 1;
  CHECK_FALSE(verify_password(flipped, "passwd"));
}

TEST_CASE("scrypt derives RFC 7914's test vector", "[config][password]") {
  ParsedHash h;
  h.scheme = PasswordScheme::kScrypt;
  h.ln = 10;  // N = 1024
  h.r = 8;
  h.p = 16;
  h.salt = bytes("NaCl");
  h.hash =
      hex("fd ba be 1c 9d 34 72 00 78 56 e7 19 0d 01 e9 fe "
          "7c 6a d7 cb c8 23 78 30 e7 73 76 63 4b 37 31 62 "
          "2e af 30 d9 2e 22 a3 88 6f f1 09 27 9d 98 30 da "
          "c7 27 af b9 4a 83 ee 6d 83 60 cb df a2 cc 06 40");
  REQUIRE(h.hash.size() == 64);
  CHECK(verify_password(h, "password"));
  CHECK_FALSE(verify_password(h, "Password"));
  ParsedHash other_salt = h;
  other_salt.salt = bytes("NaCL");
  CHECK_FALSE(verify_password(other_salt, "password"));
}

// Made with Python's hashlib and base64 (standard alphabet, '=' stripped):
//   salt = b"cachegate-salt16"
//   pbkdf2_hmac("sha256", b"correct horse", salt, 1000)
//   scrypt(b"correct horse", salt=salt, n=2**10, r=8, p=1, dklen=32)
TEST_CASE("PHC strings from another implementation verify", "[config][password]") {
  const ParsedHash p = parsed(
      "$pbkdf2-sha256$i=1000$Y2FjaGVnYXRlLXNhbHQxNg$oskUlB7ivsHtrtjGv4XmFs6drCjhXhMwNwx3IL9tE9E");
  CHECK(p.scheme == PasswordScheme::kPbkdf2Sha256);
  CHECK(p.iterations == 1000);
  CHECK(p.salt == bytes("cachegate-salt16"));
  CHECK(p.hash.size() == 32);
  CHECK(verify_password(p, "correct horse"));
  CHECK_FALSE(verify_password(p, "correct horse battery"));

  const ParsedHash s = parsed(
      "$scrypt$ln=10,r=8,p=1$Y2FjaGVnYXRlLXNhbHQxNg$Xr7AdCAdhsujtZ3CuftPbOYFkbGCmiWdgevqJgDMwNE");
  CHECK(s.scheme == PasswordScheme::kScrypt);
  CHECK(s.ln == 10);
  CHECK(s.r == 8);
  CHECK(s.p == 1);
  CHECK(verify_password(s, "correct horse"));
  CHECK_FALSE(verify_password(s, "Correct horse"));
}

TEST_CASE("hash_password makes PHC strings that verify only the same password",
          "[config][password]") {
  const std::string phc =
      hash_password("s3cret pass", PasswordScheme::kPbkdf2Sha256, PasswordCost{1000});
  CHECK_THAT(phc, StartsWith("$pbkdf2-sha256$i=1000$"));
  // A 16-byte salt and a 32-byte hash: 22 and 43 base64 characters, no padding.
  const std::string salt_and_hash = phc.substr(std::string_view("$pbkdf2-sha256$i=1000$").size());
  CHECK(salt_and_hash.size() == 22 + 1 + 43);
  CHECK(salt_and_hash.find('=') == std::string::npos);
  const ParsedHash h = parsed(phc);
  CHECK(h.salt.size() == 16);
  CHECK(h.hash.size() == 32);
  CHECK(verify_password(h, "s3cret pass"));
  CHECK_FALSE(verify_password(h, "s3cret pass\n"));
  CHECK_FALSE(verify_password(h, "S3cret pass"));

  // A fresh salt every time: the same password never gives the same string.
  const std::string again =
      hash_password("s3cret pass", PasswordScheme::kPbkdf2Sha256, PasswordCost{1000});
  CHECK(again != phc);
  CHECK(verify_password(parsed(again), "s3cret pass"));

  // Any bytes are a password, including NUL and non-ASCII.
  const std::string odd("p\0ss\xc3\xa9", 6);
  const ParsedHash o =
      parsed(hash_password(odd, PasswordScheme::kPbkdf2Sha256, PasswordCost{1000}));
  CHECK(verify_password(o, odd));
  CHECK_FALSE(verify_password(o, "p"));
}

TEST_CASE("the default costs are pbkdf2 with 600000 iterations and scrypt with N=2^15, r=8, p=1",
          "[config][password]") {
  const std::string p = hash_password("default cost");
  CHECK_THAT(p, StartsWith("$pbkdf2-sha256$i=600000$"));
  CHECK(verify_password(parsed(p), "default cost"));

  const std::string s = hash_password("default cost", PasswordScheme::kScrypt);
  CHECK_THAT(s, StartsWith("$scrypt$ln=15,r=8,p=1$"));
  const ParsedHash h = parsed(s);
  CHECK(h.salt.size() == 16);
  CHECK(verify_password(h, "default cost"));
  CHECK_FALSE(verify_password(h, "default cost!"));
}

TEST_CASE("hash_password refuses costs that parse_password_hash would reject",
          "[config][password]") {
  CHECK_THROWS_AS(hash_password("x", PasswordScheme::kPbkdf2Sha256, PasswordCost{999}),
                  std::invalid_argument);
  CHECK_THROWS_AS(hash_password("x", PasswordScheme::kPbkdf2Sha256, PasswordCost{10000001}),
                  std::invalid_argument);
  // 128 * 8 * 2^19 bytes = 512 MiB.
  CHECK_THROWS_AS(hash_password("x", PasswordScheme::kScrypt, PasswordCost{1000, 19, 8, 1}),
                  std::invalid_argument);
  CHECK_THROWS_AS(hash_password("x", PasswordScheme::kScrypt, PasswordCost{1000, 10, 8, 17}),
                  std::invalid_argument);
}

TEST_CASE("scheme names", "[config][password]") {
  CHECK(to_string(PasswordScheme::kPbkdf2Sha256) == "pbkdf2-sha256");
  CHECK(to_string(PasswordScheme::kScrypt) == "scrypt");
  CHECK(password_scheme_from_name("pbkdf2-sha256") == PasswordScheme::kPbkdf2Sha256);
  CHECK(password_scheme_from_name("scrypt") == PasswordScheme::kScrypt);
  CHECK_FALSE(password_scheme_from_name("bcrypt").has_value());
  CHECK_FALSE(password_scheme_from_name("").has_value());
}

TEST_CASE("the bounds of pbkdf2 and scrypt parameters are inclusive", "[config][password]") {
  // 8-byte salt, 16-byte hash: the smallest accepted.
  const std::string salt8 = "AAAAAAAAAAA";              // 8 bytes
  const std::string hash16 = "AAAAAAAAAAAAAAAAAAAAAA";  // 16 bytes
  CHECK(parsed("$pbkdf2-sha256$i=1000$" + salt8 + "$" + hash16).iterations == 1000);
  CHECK(parsed("$pbkdf2-sha256$i=10000000$" + salt8 + "$" + hash16).iterations == 10000000);
  CHECK(parsed("$scrypt$ln=1,r=1,p=1$" + salt8 + "$" + hash16).ln == 1);
  // 128 * 8 * 2^18 = 256 MiB exactly.
  CHECK(parsed("$scrypt$ln=18,r=8,p=16$" + salt8 + "$" + hash16).ln == 18);
  // 128 * 1 * 2^21 = 256 MiB exactly.
  CHECK(parsed("$scrypt$ln=21,r=1,p=1$" + salt8 + "$" + hash16).ln == 21);
  CHECK(parsed("$scrypt$ln=11,r=32,p=1$" + salt8 + "$" + hash16).r == 32);
  // 64-byte salt and hash: the largest.
  const std::string b64_64(86, 'A');
  const ParsedHash big = parsed("$pbkdf2-sha256$i=1000$" + b64_64 + "$" + b64_64);
  CHECK(big.salt.size() == 64);
  CHECK(big.hash.size() == 64);
}

TEST_CASE("malformed password hashes are rejected with the reason", "[config][password]") {
  const std::string salt = "$Y2FjaGVnYXRlLXNhbHQxNg";                       // 16 bytes
  const std::string hash = "$oskUlB7ivsHtrtjGv4XmFs6drCjhXhMwNwx3IL9tE9E";  // 32 bytes
  const std::string good = "$pbkdf2-sha256$i=1000" + salt + hash;
  REQUIRE(parsed(good).iterations == 1000);

  CHECK_THAT(rejection(""), Contains("not a PHC string"));
  CHECK_THAT(rejection("hunter2"), Contains("not a PHC string"));
  CHECK_THAT(rejection("pbkdf2-sha256$i=1000" + salt + hash), Contains("not a PHC string"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000" + salt), Contains("four '$'-separated fields"));
  CHECK_THAT(rejection(good + "$extra"), Contains("four '$'-separated fields"));
  CHECK_THAT(rejection("$argon2id$v=19$m=65536,t=3,p=4" + salt + hash),
             Contains("four '$'-separated fields"));
  CHECK_THAT(rejection("$bcrypt$i=1000" + salt + hash), Contains("unknown scheme"));
  CHECK_THAT(rejection("$PBKDF2-SHA256$i=1000" + salt + hash), Contains("unknown scheme"));

  CHECK_THAT(rejection("$pbkdf2-sha256$1000" + salt + hash), Contains("i=<iterations>"));
  CHECK_THAT(rejection("$pbkdf2-sha256$rounds=1000" + salt + hash), Contains("i=<iterations>"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=01000" + salt + hash), Contains("i=<iterations>"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000,r=1" + salt + hash), Contains("i=<iterations>"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=" + salt + hash), Contains("i=<iterations>"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=-1000" + salt + hash), Contains("i=<iterations>"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=99999999999" + salt + hash), Contains("i=<iterations>"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=999" + salt + hash),
             Contains("iterations must be between 1000 and 10000000"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=10000001" + salt + hash),
             Contains("iterations must be between 1000 and 10000000"));

  CHECK_THAT(rejection("$scrypt$ln=15,r=8" + salt + hash), Contains("ln=<log2 N>,r="));
  CHECK_THAT(rejection("$scrypt$r=8,ln=15,p=1" + salt + hash), Contains("ln=<log2 N>,r="));
  CHECK_THAT(rejection("$scrypt$ln=15,r=8,p=1,x=1" + salt + hash), Contains("ln=<log2 N>,r="));
  CHECK_THAT(rejection("$scrypt$ln=0,r=8,p=1" + salt + hash),
             Contains("ln must be between 1 and 22"));
  CHECK_THAT(rejection("$scrypt$ln=23,r=1,p=1" + salt + hash),
             Contains("ln must be between 1 and 22"));
  CHECK_THAT(rejection("$scrypt$ln=10,r=0,p=1" + salt + hash),
             Contains("r must be between 1 and 32"));
  CHECK_THAT(rejection("$scrypt$ln=10,r=33,p=1" + salt + hash),
             Contains("r must be between 1 and 32"));
  CHECK_THAT(rejection("$scrypt$ln=10,r=8,p=0" + salt + hash),
             Contains("p must be between 1 and 16"));
  CHECK_THAT(rejection("$scrypt$ln=10,r=8,p=17" + salt + hash),
             Contains("p must be between 1 and 16"));
  // 128 * 8 * 2^19 = 512 MiB; 128 * 2 * 2^21 = 512 MiB.
  CHECK_THAT(rejection("$scrypt$ln=19,r=8,p=1" + salt + hash), Contains("more than 256 MiB"));
  CHECK_THAT(rejection("$scrypt$ln=21,r=2,p=1" + salt + hash), Contains("more than 256 MiB"));

  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$Y2FjaGVnYXRlLXNhbHQxNg==" + hash),
             Contains("the salt is not base64"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$Y2FjaGVnYXRlLXNhbHQx.g" + hash),
             Contains("the salt is not base64"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$Y2FjaGVnYXRl LXNhbHQxNg" + hash),
             Contains("the salt is not base64"));
  // Base64url's '-' and '_' are not PHC's alphabet.
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$Y2FjaGVnYXRlLXNhbHQx_g" + hash),
             Contains("the salt is not base64"));
  // One character left over is never a whole byte; non-zero unused bits are a second spelling.
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$Y2FjaGVnYXRlLXNhbHQxN" + hash),
             Contains("the salt is not base64"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$Y2FjaGVnYXRlLXNhbHQxNh" + hash),
             Contains("the salt is not base64"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$c2hvcnQ" + hash),
             Contains("the salt must be 8 to 64 bytes, got 5"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$$" + hash.substr(1)),
             Contains("the salt must be 8 to 64 bytes, got 0"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000$" + std::string(88, 'A') + hash),
             Contains("the salt must be 8 to 64 bytes, got 66"));
  CHECK_THAT(
      rejection("$pbkdf2-sha256$i=1000" + salt + "$oskUlB7ivsHtrtjGv4XmFs6drCjhXhMwNwx3IL9tE9E="),
      Contains("the hash is not base64"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000" + salt + "$AAAAAAAAAAAAAAAAAAAA"),
             Contains("the hash must be 16 to 64 bytes, got 15"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000" + salt + "$" + std::string(88, 'A')),
             Contains("the hash must be 16 to 64 bytes, got 66"));
  CHECK_THAT(rejection("$pbkdf2-sha256$i=1000" + salt + "$"),
             Contains("the hash must be 16 to 64 bytes, got 0"));
}

TEST_CASE("reasons never quote the string being parsed", "[config][password]") {
  // A plaintext password pasted where a hash belongs, and hashes with secret-looking parts.
  for (std::string_view phc : {
           "hunter2-very-secret",
           "$hunter2-very-secret",
           "$hunter2-very-secret$x$y$z",
           "$pbkdf2-sha256$hunter2-very-secret$Y2FjaGVnYXRlLXNhbHQxNg$ksAzfM8qFEmqbtt5k3E6",
           "$pbkdf2-sha256$i=1000$hunter2-very-secret$oskUlB7ivsHtrtjGv4XmFs6drCjhXhMwNwx3IL9tE9E",
           "$pbkdf2-sha256$i=1000$Y2FjaGVnYXRlLXNhbHQxNg$hunter2-very-secret",
       }) {
    INFO(phc);
    const std::string why = rejection(phc);
    CHECK(why.find("hunter2") == std::string::npos);
    CHECK(why.find("secret") == std::string::npos);
  }
}

TEST_CASE("wipe_secret empties the string", "[config][password]") {
  std::string s = "plaintext";
  wipe_secret(s);
  CHECK(s.empty());
  std::string empty;
  wipe_secret(empty);
  CHECK(empty.empty());
}

}  // namespace
}  // namespace cachegate::config
