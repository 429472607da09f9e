#include "config/redact.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace cachegate::config {
namespace {

constexpr std::string_view kRedacted = "<redacted>";

// Aliases are expanded on output, so a few lines of anchors can stand for an exponential number
// of nodes ("billion laughs"), and yaml-cpp accepts an alias inside its own anchor (a cycle).
// A configuration has a few thousand nodes and a depth below ten.
constexpr size_t kMaxNodes = 1000000;
constexpr size_t kMaxDepth = 64;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_secret_key(const YAML::Node& key) {
  if (!key.IsScalar()) return false;
  std::string name = key.Scalar();
  std::transform(name.begin(), name.end(), name.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  for (std::string_view secret : {"password", "password_hash", "redis_auth", "token"})
    if (name == secret) return true;
  return ends_with(name, "_password") || ends_with(name, "_secret");
}

class Redactor {
 public:
  explicit Redactor(const YAML::Node& root) { find_secrets(root, false, 0); }

  void emit(YAML::Emitter& out, const YAML::Node& node, size_t depth) {
    if (++nodes_ > kMaxNodes || depth > kMaxDepth)
      throw std::runtime_error("the configuration's aliases expand to too many values");
    if (is_secret(node)) {
      out << std::string(kRedacted);
      return;
    }
    switch (node.Type()) {
      case YAML::NodeType::Map:
        out << YAML::BeginMap;
        for (auto it = node.begin(); it != node.end(); ++it) {
          out << YAML::Key;
          emit(out, it->first, depth + 1);
          out << YAML::Value;
          if (is_secret_key(it->first)) {
            out << std::string(kRedacted);
          } else {
            emit(out, it->second, depth + 1);
          }
        }
        out << YAML::EndMap;
        break;
      case YAML::NodeType::Sequence:
        out << YAML::BeginSeq;
        for (const auto& item : node)
          emit(out, item, depth + 1);
        out << YAML::EndSeq;
        break;
      case YAML::NodeType::Scalar:
        // A quoted scalar stays quoted, so "400" is still a string when read back.
        if (node.Tag() == "!") out << YAML::DoubleQuoted;
        out << node.Scalar();
        break;
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        out << YAML::Null;
        break;
    }
  }

 private:
  // Every node that is, or is inside, a secret key's value: aliases share the node, so this is
  // how a secret is recognised under another key.
  void find_secrets(const YAML::Node& node, bool secret, size_t depth) {
    if (++nodes_ > kMaxNodes || depth > kMaxDepth)
      throw std::runtime_error("the configuration's aliases expand to too many values");
    if (secret) {
      if (is_secret(node)) return;  // already seen, with everything under it
      secrets_.push_back(node);
    }
    if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        find_secrets(it->first, secret, depth + 1);
        find_secrets(it->second, secret || is_secret_key(it->first), depth + 1);
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node)
        find_secrets(item, secret, depth + 1);
    }
  }

  bool is_secret(const YAML::Node& node) const {
    return std::any_of(secrets_.begin(), secrets_.end(),
                       [&](const YAML::Node& s) { return s.is(node); });
  }

  std::vector<YAML::Node> secrets_;
  size_t nodes_ = 0;
};

}  // namespace

std::string redacted_config_yaml(std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    // yaml-cpp's messages name the problem and its position, not the text around it.
    throw std::runtime_error("cannot parse the configuration: " + std::string(e.what()));
  }
  Redactor redactor(root);
  YAML::Emitter out;
  if (!root.IsNull()) redactor.emit(out, root, 0);
  if (!out.good())
    throw std::runtime_error("cannot write the configuration: " + out.GetLastError());
  std::string text = out.c_str();
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text;
}

}  // namespace cachegate::config
