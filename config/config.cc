#include "config/config.h"

namespace cachegate::config {

// These spellings are the YAML values (config/load.cc parses by comparing against them), so they
// are twemproxy's spellings and must not change.

std::string_view to_string(Protocol p) {
  switch (p) {
    case Protocol::kMemcached:
      return "memcached";
    case Protocol::kRedis:
      return "redis";
  }
  return "unknown";
}

std::string_view to_string(Distribution d) {
  switch (d) {
    case Distribution::kKetama:
      return "ketama";
    case Distribution::kModula:
      return "modula";
    case Distribution::kRandom:
      return "random";
  }
  return "unknown";
}

std::string_view to_string(HashFunction h) {
  switch (h) {
    case HashFunction::kOneAtATime:
      return "one_at_a_time";
    case HashFunction::kMd5:
      return "md5";
    case HashFunction::kCrc16:
      return "crc16";
    case HashFunction::kCrc32:
      return "crc32";
    case HashFunction::kCrc32a:
      return "crc32a";
    case HashFunction::kFnv1_64:
      return "fnv1_64";
    case HashFunction::kFnv1a_64:
      return "fnv1a_64";
    case HashFunction::kFnv1_32:
      return "fnv1_32";
    case HashFunction::kFnv1a_32:
      return "fnv1a_32";
    case HashFunction::kHsieh:
      return "hsieh";
    case HashFunction::kMurmur:
      return "murmur";
    case HashFunction::kJenkins:
      return "jenkins";
  }
  return "unknown";
}

}  // namespace cachegate::config
