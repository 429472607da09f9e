#pragma once

// Glob patterns over keys, as Redis matches KEYS patterns: '*' any run of bytes, '?' one byte,
// '[abc]', '[a-z]', '[^a]' one byte of (or not of) a set, '\' makes the next byte literal. Keys
// are bytes (they may hold NUL); matching never allocates.

#include <string_view>

namespace cachegate::routing {

bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace cachegate::routing
