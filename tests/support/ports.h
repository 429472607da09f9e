#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cachegate::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and released). Ports are
// never fixed in tests; a server started on one that was taken meanwhile fails its readiness
// check and the fixture retries with a new port.
uint16_t free_port();

// A blocking TCP socket connected to host:port (an IPv4 or IPv6 literal), or -1 with errno set.
int connect_tcp(const std::string& host, uint16_t port);

// True once something accepts TCP connections on host:port, polling until `timeout`.
bool wait_for_port(const std::string& host, uint16_t port, std::chrono::milliseconds timeout);

}  // namespace cachegate::testing
