#pragma once

// Password hashes in the PHC string format (https://github.com/P-H-C/phc-string-format):
//
//   $pbkdf2-sha256$i=<iterations>$<salt>$<hash>
//   $scrypt$ln=<log2 N>,r=<block size>,p=<parallelism>$<salt>$<hash>
//
// salt and hash in standard base64 without padding. These are what `cachegate hash-password`
// prints and what users[].password_hash holds; config loading parses them once, and logins call
// verify_password() with the parsed form.
//
// Thread safety: every function may be called from any thread at once (OpenSSL 3 needs no
// locking set-up). verify_password() and hash_password() are CPU-bound for as long as the cost
// parameters say (hundreds of milliseconds at the defaults), so callers on an event loop should
// run them elsewhere.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachegate::config {

enum class PasswordScheme : uint8_t { kPbkdf2Sha256, kScrypt };

// "pbkdf2-sha256" or "scrypt": the PHC identifier, also the names `--scheme` takes.
std::string_view to_string(PasswordScheme scheme);
std::optional<PasswordScheme> password_scheme_from_name(std::string_view name);

// Cost parameters for new hashes. The defaults follow OWASP's password storage guidance:
// 600000 iterations for PBKDF2-HMAC-SHA256; scrypt with N=2^15, r=8, p=1 (32 MiB).
struct PasswordCost {
  uint32_t pbkdf2_iterations = 600000;
  uint32_t scrypt_ln = 15;
  uint32_t scrypt_r = 8;
  uint32_t scrypt_p = 1;
};

// Bounds parse_password_hash() enforces. They keep a hash from a configuration file from turning
// a login into a denial of service (minutes of CPU, gigabytes of memory), and reject costs too
// small to protect anything.
inline constexpr uint32_t kMinPbkdf2Iterations = 1000;
inline constexpr uint32_t kMaxPbkdf2Iterations = 10000000;
inline constexpr uint32_t kMaxScryptLn = 22;
inline constexpr uint32_t kMaxScryptR = 32;
inline constexpr uint32_t kMaxScryptP = 16;
inline constexpr uint64_t kMaxScryptMemory = uint64_t{256} * 1024 * 1024;  // 128·r·N bytes
inline constexpr size_t kMinSaltBytes = 8;
inline constexpr size_t kMaxSaltBytes = 64;
inline constexpr size_t kMinHashBytes = 16;
inline constexpr size_t kMaxHashBytes = 64;

// A parsed PHC string. Only the fields of `scheme` are meaningful.
struct ParsedHash {
  PasswordScheme scheme = PasswordScheme::kPbkdf2Sha256;
  uint32_t iterations = 0;  // pbkdf2-sha256: i
  uint32_t ln = 0;          // scrypt: N = 2^ln
  uint32_t r = 0;
  uint32_t p = 0;
  std::vector<uint8_t> salt;
  std::vector<uint8_t> hash;  // the expected derived key; its length is the key length derived
};

// Hashes `password` with a fresh 16-byte random salt (RAND_bytes) and returns the PHC string,
// with a 32-byte hash. Throws std::invalid_argument when `cost` is outside the bounds above (so
// every string returned parses), std::runtime_error when OpenSSL fails.
std::string hash_password(std::string_view password,
                          PasswordScheme scheme = PasswordScheme::kPbkdf2Sha256,
                          const PasswordCost& cost = {});

// Parses and checks a PHC string: scheme, parameter syntax and bounds, base64, salt and hash
// lengths. On failure returns false and, when `why` is given, sets it to what is wrong. `why`
// never quotes any part of `phc`: a plaintext password pasted where a hash belongs must not end
// up in a log.
bool parse_password_hash(std::string_view phc, ParsedHash& out, std::string* why = nullptr);

// Whether `candidate` derives h.hash with h's scheme, salt and parameters; the comparison takes
// the same time wherever the first difference is (CRYPTO_memcmp). `h` is trusted as it is: its
// bounds are parse_password_hash()'s job, so known-answer tests may use smaller salts. Returns
// false when the derivation itself fails.
bool verify_password(const ParsedHash& h, std::string_view candidate);

// Overwrites the string's bytes in a way the compiler may not drop (OPENSSL_cleanse), then
// clears it: for plaintext passwords once they are no longer needed.
void wipe_secret(std::string& secret);

}  // namespace cachegate::config
