// cachegate: a caching reverse proxy for memcached (and Redis) fleets.

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>

#include "cachegate/version.h"
#include "config/load.h"
#include "config/password.h"
#include "proxy/app.h"
#include "proxy/log.h"
#include "routing/explain.h"

namespace {

constexpr const char kUsage[] =
    "usage: cachegate -c FILE            run the proxy with the configuration in FILE\n"
    "       cachegate --check-config FILE  validate FILE; exit 0 if valid, else print every\n"
    "                                      problem with its line:column and exit 2\n"
    "       cachegate hash-password [--scheme pbkdf2-sha256|scrypt]\n"
    "                                      read a password from standard input (asked twice,\n"
    "                                      unechoed, on a terminal) and print its hash for\n"
    "                                      users[].password_hash\n"
    "       cachegate route -c FILE --listener NAME --op OP --key KEY [--user NAME]\n"
    "                                      print the rule a request takes and the servers its\n"
    "                                      key reaches (OP: a command such as get or SET, or\n"
    "                                      read, write, delete, arithmetic, admin)\n"
    "       cachegate --version            print the version\n"
    "       cachegate --help               print this help\n"
    "options:\n"
    "  -v, --verbose                       log debug messages too\n"
    "  -q, --quiet                         log warnings and errors only\n";

int usage_error(const std::string& message) {
  std::cerr << "cachegate: " << message << "\n" << kUsage;
  return 2;
}

// The terminal's settings while a password is typed without echo, so that a signal arriving
// meanwhile (Ctrl-C) does not leave the shell without echo.
termios g_saved_termios;
volatile sig_atomic_t g_echo_off = 0;

void restore_echo_and_reraise(int sig) {
  if (g_echo_off) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Prints `prompt` on stderr and reads one line from the terminal on stdin with echo off.
std::optional<std::string> read_unechoed_line(const char* prompt) {
  termios t;
  if (::tcgetattr(STDIN_FILENO, &t) != 0) return std::nullopt;
  g_saved_termios = t;
  // Not SIGTSTP: after a stop and `fg` the read goes on, and must still be without echo.
  constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  struct sigaction restore = {};
  restore.sa_handler = restore_echo_and_reraise;
  struct sigaction previous[std::size(kSignals)];
  for (size_t i = 0; i < std::size(kSignals); ++i)
    ::sigaction(kSignals[i], &restore, &previous[i]);
  std::cerr << prompt << std::flush;
  // ECHONL: the newline the user types still shows, so the next prompt starts on a new line.
  t.c_lflag = (t.c_lflag & ~static_cast<tcflag_t>(ECHO)) | ECHONL;
  std::optional<std::string> line;
  if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) {
    g_echo_off = 1;
    std::string text;
    if (std::getline(std::cin, text)) line = std::move(text);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    g_echo_off = 0;
  }
  for (size_t i = 0; i < std::size(kSignals); ++i)
    ::sigaction(kSignals[i], &previous[i], nullptr);
  return line;
}

int hash_password_command(int argc, char** argv) {
  using namespace cachegate;
  auto scheme = config::PasswordScheme::kPbkdf2Sha256;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string name;
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--scheme") {
      if (++i >= argc) return usage_error("--scheme needs pbkdf2-sha256 or scrypt");
      name = argv[i];
    } else if (arg.rfind("--scheme=", 0) == 0) {
      name = arg.substr(9);
    } else if (!arg.empty() && arg.front() == '-') {
      return usage_error("unknown argument '" + arg + "'");
    } else {
      // Not echoed: it is most likely the password itself.
      return usage_error(
          "hash-password reads the password from standard input, not from its "
          "arguments");
    }
    const auto s = config::password_scheme_from_name(name);
    if (!s) return usage_error("unknown scheme '" + name + "' (expected pbkdf2-sha256 or scrypt)");
    scheme = *s;
  }

  std::string password;
  if (::isatty(STDIN_FILENO)) {
    auto first = read_unechoed_line("Password: ");
    auto second = first ? read_unechoed_line("Repeat password: ") : std::nullopt;
    if (!first || !second) {
      std::cerr << "cachegate: cannot read the password from the terminal\n";
      return 2;
    }
    const bool same = *first == *second;
    password = std::move(*first);
    config::wipe_secret(*second);
    if (!same) {
      config::wipe_secret(password);
      std::cerr << "cachegate: the passwords do not match\n";
      return 2;
    }
  } else if (!std::getline(std::cin, password)) {
    std::cerr << "cachegate: no password on standard input\n";
    return 2;
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) {
    std::cerr << "cachegate: the password is empty\n";
    return 2;
  }
  int status = 0;
  try {
    std::cout << config::hash_password(password, scheme) << "\n" << std::flush;
  } catch (const std::exception& e) {
    std::cerr << "cachegate: " << e.what() << "\n";
    status = 2;
  }
  config::wipe_secret(password);
  return status;
}

// `cachegate route`: route explain without starting the proxy.
int route_command(int argc, char** argv) {
  using namespace cachegate;
  std::string file, listener, op, user;
  std::optional<std::string> key;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string* target = arg == "-c" || arg == "--config" ? &file
                          : arg == "--listener"            ? &listener
                          : arg == "--op"                  ? &op
                          : arg == "--user"                ? &user
                                                           : nullptr;
    if (arg == "--key") {
      if (++i >= argc) return usage_error("--key needs a key");
      key = argv[i];
      continue;
    }
    if (target == nullptr) return usage_error("unknown argument '" + arg + "'");
    if (++i >= argc) return usage_error(arg + " needs a value");
    *target = argv[i];
  }
  if (file.empty() || listener.empty() || op.empty() || !key)
    return usage_error("route needs -c FILE, --listener, --op and --key");
  auto result = config::load_config_file(file);
  if (!result.ok()) {
    std::cerr << config::format_errors(result);
    return 2;
  }
  std::string error;
  const auto text = routing::explain_route(result.config, listener, op, *key, user, error);
  if (!text) {
    std::cerr << "cachegate: " << error << "\n";
    return 2;
  }
  std::cout << *text;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cachegate;
  // A command rather than an option: it runs instead of the proxy and takes its own arguments.
  if (argc >= 2 && std::strcmp(argv[1], "hash-password") == 0)
    return hash_password_command(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "route") == 0) return route_command(argc, argv);
  std::string config_path;
  std::string check_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--version" || arg == "-V") {
      std::cout << "cachegate " << kVersion << "\n";
      return 0;
    }
    if (arg == "-v" || arg == "--verbose") {
      proxy::set_log_level(proxy::LogLevel::kDebug);
    } else if (arg == "-q" || arg == "--quiet") {
      proxy::set_log_level(proxy::LogLevel::kWarning);
    } else if (arg == "-c" || arg == "--config") {
      if (++i >= argc) return usage_error(arg + " needs a file");
      config_path = argv[i];
    } else if (arg == "--check-config" || arg == "-t") {
      if (++i >= argc) return usage_error(arg + " needs a file");
      check_path = argv[i];
    } else {
      return usage_error("unknown argument '" + arg + "'");
    }
  }

  if (!check_path.empty()) {
    auto result = config::load_config_file(check_path);
    if (!result.ok()) {
      std::cerr << config::format_errors(result);
      return 2;
    }
    std::cout << check_path << ": configuration is valid\n";
    return 0;
  }
  if (config_path.empty()) return usage_error("no configuration file (-c FILE)");

  return proxy::run_proxy(config_path);
}
