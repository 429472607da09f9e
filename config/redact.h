#pragma once

// The configuration as it may be shown to an operator (an admin endpoint, a support bundle):
// the YAML with every secret value replaced, and a fingerprint of the exact bytes loaded.

#include <string>
#include <string_view>

namespace cachegate::config {

// `yaml_text` parsed and written out again (yaml-cpp's emitter: comments and formatting are not
// kept, key order is) with the value of every secret key replaced by the string "<redacted>",
// at any depth, inside lists too. Secret keys: `password`, `password_hash`, `redis_auth`,
// `token`, and any key ending in `_password` or `_secret` (compared without regard to case).
// Paths of files holding secrets (`password_file`, `token_file`, `redis_auth_file`, `key`) are
// not secrets and stay.
//
// Aliases are written out in full where they stand; a value that is (or is inside) the value of
// a secret key is redacted wherever it appears, so `password: &p x` cannot be shown again as
// `note: *p`. Throws std::runtime_error (with yaml-cpp's line:column, never the text) when
// `yaml_text` is not YAML, or when expanding aliases would make the output absurdly large.
std::string redacted_config_yaml(std::string_view yaml_text);

}  // namespace cachegate::config
