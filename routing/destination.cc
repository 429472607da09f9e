#include "routing/destination.h"

namespace cachegate::routing {

std::string_view failure_text(Failure failure) {
  switch (failure) {
    case Failure::kTimeout:
      return "backend timeout";
    case Failure::kConnect:
      return "backend connection failed";
    case Failure::kClosed:
      return "backend connection closed";
    case Failure::kUnavailable:
      return "backend unavailable";
    case Failure::kNoServer:
      return "no live backend in pool";
    case Failure::kProtocol:
      return "backend sent an invalid reply";
  }
  return "backend failure";
}

std::string_view failure_name(Failure failure) {
  switch (failure) {
    case Failure::kTimeout:
      return "timeout";
    case Failure::kConnect:
      return "connect";
    case Failure::kClosed:
      return "closed";
    case Failure::kUnavailable:
      return "unavailable";
    case Failure::kNoServer:
      return "no_server";
    case Failure::kProtocol:
      return "protocol";
  }
  return "unknown";
}

}  // namespace cachegate::routing
