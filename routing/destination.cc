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

}  // namespace cachegate::routing
