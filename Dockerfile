# cachegate's container image: built on Debian 12 from this source tree, run as a non-root user
# with only the runtime libraries. The Helm chart in charts/cachegate uses it.
#
#   docker build -t cachegate:0.1.0 .
#   docker run --rm -v $PWD/cachegate.yaml:/etc/cachegate/cachegate.yaml:ro cachegate:0.1.0

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libboost1.81-dev libssl-dev libyaml-cpp-dev libhashkit-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY protocol protocol
COPY config config
COPY routing routing
COPY backends backends
COPY proxy proxy
COPY bench bench
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCACHEGATE_TESTS=OFF \
 && cmake --build /build --target cachegate \
 && strip /build/cachegate

FROM debian:12-slim
# The shared libraries `ldd cachegate` names, and CA certificates for TLS towards servers.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3 libyaml-cpp0.7 libhashkit2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 cachegate \
 && useradd --uid 10001 --gid cachegate --no-create-home --shell /usr/sbin/nologin cachegate
COPY --from=build /build/cachegate /usr/local/bin/cachegate
USER 10001:10001
# Memcached, Redis and the admin endpoint, as the chart's defaults place them.
EXPOSE 11211 6379 9090
ENTRYPOINT ["/usr/local/bin/cachegate"]
CMD ["-c", "/etc/cachegate/cachegate.yaml"]
