#include "routing/glob.h"

#include <cstddef>
#include <utility>

namespace cachegate::routing {

namespace {

// Matches one class at pattern[p] ('[' already seen at p - 1) against byte c; sets `end` to the
// index after the closing ']' (or the pattern's end when unclosed, matching what is there).
bool class_match(std::string_view pattern, size_t p, unsigned char c, size_t& end) {
  bool negate = false;
  if (p < pattern.size() && pattern[p] == '^') {
    negate = true;
    ++p;
  }
  bool matched = false;
  while (p < pattern.size() && pattern[p] != ']') {
    if (pattern[p] == '\\' && p + 1 < pattern.size()) {
      ++p;
      if (static_cast<unsigned char>(pattern[p]) == c) matched = true;
      ++p;
    } else if (p + 2 < pattern.size() && pattern[p + 1] == '-' && pattern[p + 2] != ']') {
      unsigned char lo = static_cast<unsigned char>(pattern[p]);
      unsigned char hi = static_cast<unsigned char>(pattern[p + 2]);
      if (lo > hi) std::swap(lo, hi);
      if (c >= lo && c <= hi) matched = true;
      p += 3;
    } else {
      if (static_cast<unsigned char>(pattern[p]) == c) matched = true;
      ++p;
    }
  }
  end = p < pattern.size() ? p + 1 : p;
  return negate ? !matched : matched;
}

}  // namespace

// Iterative with one backtrack point (the last '*'), so time is O(pattern × text) at worst and
// the stack never grows with the input.
bool glob_match(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        star = p++;
        star_text = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        size_t end;
        if (class_match(pattern, p + 1, static_cast<unsigned char>(text[t]), end)) {
          p = end;
          ++t;
          continue;
        }
      } else if (pc == '\\' && p + 1 < pattern.size()) {
        if (pattern[p + 1] == text[t]) {
          p += 2;
          ++t;
          continue;
        }
      } else if (pc == text[t]) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    p = star + 1;
    t = ++star_text;
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

}  // namespace cachegate::routing
