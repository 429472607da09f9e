#include "config/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <limits>
#include <stdexcept>

namespace cachegate::config {
namespace {

constexpr size_t kNewSaltBytes = 16;
constexpr size_t kNewHashBytes = 32;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// PHC's B64: the standard alphabet without '=' padding.
std::string base64(const std::vector<uint8_t>& bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t{bytes[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict decoding, as the PHC format asks: no padding, no whitespace, and the unused low bits of
// the last character zero, so that every byte string has exactly one spelling.
bool unbase64(std::string_view text, std::vector<uint8_t>& out) {
  out.clear();
  if (text.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = base64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;
}

// A PHC decimal: digits without a leading zero, at most 10 of them.
std::optional<uint32_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s.front() == '0')) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// "name=value,name=value" with exactly the given names in the given order (PHC fixes the order
// per function).
template <size_t N>
bool parse_parameters(std::string_view text, const std::array<std::string_view, N>& names,
                      std::array<uint32_t, N>& values) {
  for (size_t i = 0; i < N; ++i) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    if (item.size() <= names[i].size() || item.substr(0, names[i].size()) != names[i] ||
        item[names[i].size()] != '=')
      return false;
    const auto v = parse_decimal(item.substr(names[i].size() + 1));
    if (!v) return false;
    values[i] = *v;
    if (i + 1 < N) {
      if (comma == std::string_view::npos) return false;
      text.remove_prefix(comma + 1);
    } else if (comma != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

uint64_t scrypt_memory(uint32_t ln, uint32_t r) {
  return uint64_t{128} * r * (uint64_t{1} << ln);
}

// What OpenSSL's scrypt allocates (its B and V arrays), plus slack: its maxmem argument.
uint64_t scrypt_maxmem(uint32_t ln, uint32_t r, uint32_t p) {
  return uint64_t{128} * r * ((uint64_t{1} << ln) + 2) + uint64_t{128} * r * p + 1024 * 1024;
}

bool derive(const ParsedHash& h, std::string_view password, uint8_t* out, size_t length) {
  if (h.scheme == PasswordScheme::kPbkdf2Sha256) {
    if (h.iterations == 0 || h.iterations > static_cast<uint32_t>(std::numeric_limits<int>::max()))
      return false;
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), h.salt.data(),
                             static_cast<int>(h.salt.size()), static_cast<int>(h.iterations),
                             EVP_sha256(), static_cast<int>(length), out) == 1;
  }
  if (h.ln == 0 || h.ln >= 64 || h.r == 0 || h.p == 0) return false;
  return EVP_PBE_scrypt(password.data(), password.size(), h.salt.data(), h.salt.size(),
                        uint64_t{1} << h.ln, h.r, h.p, scrypt_maxmem(h.ln, h.r, h.p), out,
                        length) == 1;
}

std::string phc_string(const ParsedHash& h) {
  std::string out = "$";
  out += to_string(h.scheme);
  if (h.scheme == PasswordScheme::kPbkdf2Sha256) {
    out += "$i=" + std::to_string(h.iterations);
  } else {
    out +=
        "$ln=" + std::to_string(h.ln) + ",r=" + std::to_string(h.r) + ",p=" + std::to_string(h.p);
  }
  return out + "$" + base64(h.salt) + "$" + base64(h.hash);
}

bool fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return false;
}

}  // namespace

std::string_view to_string(PasswordScheme scheme) {
  switch (scheme) {
    case PasswordScheme::kPbkdf2Sha256:
      return "pbkdf2-sha256";
    case PasswordScheme::kScrypt:
      return "scrypt";
  }
  return "unknown";
}

std::optional<PasswordScheme> password_scheme_from_name(std::string_view name) {
  for (auto s : {PasswordScheme::kPbkdf2Sha256, PasswordScheme::kScrypt})
    if (to_string(s) == name) return s;
  return std::nullopt;
}

std::string hash_password(std::string_view password, PasswordScheme scheme,
                          const PasswordCost& cost) {
  ParsedHash h;
  h.scheme = scheme;
  if (scheme == PasswordScheme::kPbkdf2Sha256) {
    if (cost.pbkdf2_iterations < kMinPbkdf2Iterations ||
        cost.pbkdf2_iterations > kMaxPbkdf2Iterations)
      throw std::invalid_argument("pbkdf2 iterations out of range");
    h.iterations = cost.pbkdf2_iterations;
  } else {
    if (cost.scrypt_ln < 1 || cost.scrypt_ln > kMaxScryptLn || cost.scrypt_r < 1 ||
        cost.scrypt_r > kMaxScryptR || cost.scrypt_p < 1 || cost.scrypt_p > kMaxScryptP ||
        scrypt_memory(cost.scrypt_ln, cost.scrypt_r) > kMaxScryptMemory)
      throw std::invalid_argument("scrypt parameters out of range");
    h.ln = cost.scrypt_ln;
    h.r = cost.scrypt_r;
    h.p = cost.scrypt_p;
  }
  h.salt.resize(kNewSaltBytes);
  if (RAND_bytes(h.salt.data(), static_cast<int>(h.salt.size())) != 1)
    throw std::runtime_error("cannot get random bytes for a salt");
  h.hash.resize(kNewHashBytes);
  if (!derive(h, password, h.hash.data(), h.hash.size()))
    throw std::runtime_error(std::string("cannot compute the ") + std::string(to_string(scheme)) +
                             " hash");
  return phc_string(h);
}

bool parse_password_hash(std::string_view phc, ParsedHash& out, std::string* why) {
  static constexpr std::string_view kForm =
      "$pbkdf2-sha256$i=<iterations>$<salt>$<hash> or $scrypt$ln=<n>,r=<n>,p=<n>$<salt>$<hash>";
  if (phc.empty() || phc.front() != '$')
    return fail(
        why, "not a PHC string (" + std::string(kForm) + ", as `cachegate hash-password` prints)");
  std::array<std::string_view, 4> fields;
  std::string_view rest = phc.substr(1);
  for (size_t i = 0; i < fields.size(); ++i) {
    const size_t dollar = rest.find('$');
    if ((dollar == std::string_view::npos) != (i + 1 == fields.size()))
      return fail(why, "expected four '$'-separated fields (" + std::string(kForm) + ")");
    fields[i] = rest.substr(0, dollar);
    if (dollar != std::string_view::npos) rest.remove_prefix(dollar + 1);
  }
  const auto scheme = password_scheme_from_name(fields[0]);
  if (!scheme) return fail(why, "unknown scheme (expected pbkdf2-sha256 or scrypt)");
  ParsedHash h;
  h.scheme = *scheme;
  if (h.scheme == PasswordScheme::kPbkdf2Sha256) {
    std::array<uint32_t, 1> v{};
    if (!parse_parameters(fields[1], std::array<std::string_view, 1>{"i"}, v))
      return fail(why, "pbkdf2-sha256 parameters must be i=<iterations>");
    if (v[0] < kMinPbkdf2Iterations || v[0] > kMaxPbkdf2Iterations)
      return fail(why, "iterations must be between " + std::to_string(kMinPbkdf2Iterations) +
                           " and " + std::to_string(kMaxPbkdf2Iterations));
    h.iterations = v[0];
  } else {
    std::array<uint32_t, 3> v{};
    if (!parse_parameters(fields[1], std::array<std::string_view, 3>{"ln", "r", "p"}, v))
      return fail(why, "scrypt parameters must be ln=<log2 N>,r=<block size>,p=<parallelism>");
    if (v[0] < 1 || v[0] > kMaxScryptLn)
      return fail(why, "ln must be between 1 and " + std::to_string(kMaxScryptLn));
    if (v[1] < 1 || v[1] > kMaxScryptR)
      return fail(why, "r must be between 1 and " + std::to_string(kMaxScryptR));
    if (v[2] < 1 || v[2] > kMaxScryptP)
      return fail(why, "p must be between 1 and " + std::to_string(kMaxScryptP));
    if (scrypt_memory(v[0], v[1]) > kMaxScryptMemory)
      return fail(why, "scrypt would need more than " +
                           std::to_string(kMaxScryptMemory / (1024 * 1024)) +
                           " MiB (128 * r * 2^ln bytes)");
    h.ln = v[0];
    h.r = v[1];
    h.p = v[2];
  }
  if (!unbase64(fields[2], h.salt))
    return fail(why, "the salt is not base64 (standard alphabet, no padding)");
  if (h.salt.size() < kMinSaltBytes || h.salt.size() > kMaxSaltBytes)
    return fail(why, "the salt must be " + std::to_string(kMinSaltBytes) + " to " +
                         std::to_string(kMaxSaltBytes) + " bytes, got " +
                         std::to_string(h.salt.size()));
  if (!unbase64(fields[3], h.hash))
    return fail(why, "the hash is not base64 (standard alphabet, no padding)");
  if (h.hash.size() < kMinHashBytes || h.hash.size() > kMaxHashBytes)
    return fail(why, "the hash must be " + std::to_string(kMinHashBytes) + " to " +
                         std::to_string(kMaxHashBytes) + " bytes, got " +
                         std::to_string(h.hash.size()));
  out = std::move(h);
  return true;
}

bool verify_password(const ParsedHash& h, std::string_view candidate) {
  if (h.hash.empty() || h.hash.size() > kMaxHashBytes) return false;
  std::array<uint8_t, kMaxHashBytes> derived{};
  const bool ok = derive(h, candidate, derived.data(), h.hash.size()) &&
                  CRYPTO_memcmp(derived.data(), h.hash.data(), h.hash.size()) == 0;
  OPENSSL_cleanse(derived.data(), derived.size());
  return ok;
}

void wipe_secret(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace cachegate::config
