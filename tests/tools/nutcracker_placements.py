#!/usr/bin/env python3
"""Records where twemproxy (Debian's `nutcracker`) places a fixed set of keys.

Prints the C++ tables pinned in tests/unit/routing/distribution_test.cc: for each server list,
distribution and hash function it starts a pool in one nutcracker, stores every key through it,
then asks each memcached backend directly which keys it holds. Run it again (and paste its
output) only if the server lists or keys there change:

    python3 tests/tools/nutcracker_placements.py > /tmp/placements.inc

Needs `memcached` and `nutcracker` on PATH. Server identities must not depend on the run, so
lists that exercise twemproxy's "host" / "host:port" identity rules bind fixed addresses on
127.0.0.0/8 (127.0.0.11-15 port 11211 and 127.0.0.21-27 port 11311); the others carry names and
use free ports.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HASHES = ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
          "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"]
HASH_ENUM = {"one_at_a_time": "kOneAtATime", "md5": "kMd5", "crc16": "kCrc16",
             "crc32": "kCrc32", "crc32a": "kCrc32a", "fnv1_64": "kFnv1_64",
             "fnv1a_64": "kFnv1a_64", "fnv1_32": "kFnv1_32", "fnv1a_32": "kFnv1a_32",
             "hsieh": "kHsieh", "murmur": "kMurmur", "jenkins": "kJenkins"}
DIST_ENUM = {"ketama": "kKetama", "modula": "kModula"}

# Keys: short, numbered, hash-tagged, bytes >= 0x80, and memcached's longest (250 bytes).
KEYS = ([b"a", b"foo", b"bar", b"1234567"] + [b"key:%d" % i for i in range(20)] +
        [b"user:{1234}:profile", b"user:{1234}:settings", b"user:{99}:x", b"{}x", b"a{}b{c}",
         b"order::42::lines", b"tag:{:}:", b"caf\xc3\xa9", b"\xe2\x82\xac100", b"ab\xff",
         b"\x80\x81\x82", b"k\xfe\xff\x80\x7f", b"0123456789" * 25, b"last-key"])


def server_lists():
    """name -> list of (address, port, weight, name or None); order is config order."""
    return {
        "one": [("127.0.0.1", None, 1, "solo")],
        "three": [("127.0.0.1", None, 1, n) for n in ("alpha", "beta", "gamma")],
        "five_weighted": [("127.0.0.%d" % (11 + i), 11211, i + 1, None) for i in range(5)],
        "seven_hostport": [("127.0.0.%d" % (21 + i), 11311, w, None)
                           for i, w in enumerate([1, 1, 2, 1, 3, 1, 1])],
        "ten": [("127.0.0.1", None, 1, "cache-%02d" % i) for i in range(10)],
        # 25 equal servers: single-precision rounding gives each 156 points, not 160.
        "twentyfive": [("127.0.0.1", None, 1, "s%02d" % i) for i in range(25)],
    }


_handed_out = set()


def free_port():
    # The kernel may hand a just-released port out again; one run needs them all distinct.
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out and port not in (11211, 11311):
            _handed_out.add(port)
            return port


def wait_port(host, port, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def get_keys(self, keys):
        self.send(b"get " + b" ".join(keys) + b"\r\n")
        found = set()
        while True:
            line = self.line()
            if line == b"END":
                return found
            parts = line.split(b" ")
            if parts[0] != b"VALUE":
                raise RuntimeError("unexpected reply %r" % line)
            found.add(parts[1])
            self.exact(int(parts[3]) + 2)

    def close(self):
        self.sock.close()


def start_memcached(host, port):
    argv = ["memcached", "-l", host, "-p", str(port), "-U", "0", "-t", "1", "-m", "16"]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(host, port):
        raise RuntimeError("memcached did not start on %s:%d" % (host, port))
    return proc


def cpp_string(data):
    out = []
    for b in data:
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\%03o" % b)
    return '"%s"' % "".join(out)


def digit(index):
    return "0123456789abcdefghijklmnopqrstuvwxyz"[index]


def main():
    lists = server_lists()
    procs = []
    backends = {}  # list name -> [(host, port, weight, name)]
    try:
        for list_name, servers in lists.items():
            resolved = []
            for host, port, weight, name in servers:
                port = port or free_port()
                procs.append(start_memcached(host, port))
                resolved.append((host, port, weight, name))
            backends[list_name] = resolved

        # (list, distribution, hash, hash_tag, eject index or None)
        configs = []
        for list_name in lists:
            for dist in ("ketama", "modula"):
                for h in HASHES:
                    configs.append((list_name, dist, h, "", None))
        configs += [("three", "ketama", "fnv1a_64", "{}", None),
                    ("ten", "ketama", "murmur", "{}", None),
                    ("seven_hostport", "modula", "md5", "{}", None),
                    ("ten", "modula", "crc32a", "::", None)]
        # Ejection last: it kills a backend. Server 2 of "ten" goes away.
        configs += [("ten", "ketama", "fnv1a_64", "", 2), ("ten", "ketama", "md5", "", 2),
                    ("ten", "modula", "fnv1a_64", "", 2)]

        workdir = tempfile.mkdtemp()
        pools = []
        yaml = []
        for i, (list_name, dist, h, tag, eject) in enumerate(configs):
            port = free_port()
            pools.append(port)
            yaml.append("pool%d:" % i)
            yaml.append("  listen: 127.0.0.1:%d" % port)
            yaml.append("  hash: %s" % h)
            yaml.append("  distribution: %s" % dist)
            yaml.append("  timeout: 2000")
            if tag:
                yaml.append('  hash_tag: "%s"' % tag)
            if eject is not None:
                yaml.append("  auto_eject_hosts: true")
                yaml.append("  server_failure_limit: 1")
                yaml.append("  server_retry_timeout: 600000")
            yaml.append("  servers:")
            for host, p, weight, name in backends[list_name]:
                yaml.append("   - %s:%d:%d%s" % (host, p, weight, " " + name if name else ""))
        conf = os.path.join(workdir, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write("\n".join(yaml) + "\n")
        nc = subprocess.Popen(["nutcracker", "-c", conf, "-s", str(free_port()), "-o",
                               os.path.join(workdir, "nutcracker.log")])
        procs.append(nc)
        for port in pools:
            if not wait_port("127.0.0.1", port):
                raise RuntimeError("nutcracker did not start")

        rows = []
        for (list_name, dist, h, tag, eject), port in zip(configs, pools):
            servers = backends[list_name]
            live = None
            if eject is not None:
                host, p = servers[eject][0], servers[eject][1]
                victim = next(pr for pr in procs if pr.args[4] == str(p) and pr.args[2] == host)
                if victim.poll() is None:
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                # Requests routed to the dead server fail once and eject it (failure limit 1).
                c = Conn("127.0.0.1", port)
                for key in KEYS:
                    c.send(b"get " + key + b"\r\n")
                    reply = c.line()
                    while reply not in (b"END",) and not reply.startswith(b"SERVER_ERROR"):
                        reply = c.line()
                c.close()
                live = [i != eject for i in range(len(servers))]

            c = Conn("127.0.0.1", port)
            for key in KEYS:
                c.send(b"set " + key + b" 0 0 1\r\nx\r\n")
                reply = c.line()
                if reply != b"STORED":
                    raise RuntimeError("set %r via %s/%s/%s: %r" % (key, list_name, dist, h, reply))
            c.close()

            where = [None] * len(KEYS)
            for index, (host, p, _, _) in enumerate(servers):
                if live is not None and not live[index]:
                    continue
                b = Conn(host, p)
                held = b.get_keys(KEYS)
                b.send(b"flush_all\r\n")
                if b.line() != b"OK":
                    raise RuntimeError("flush_all failed")
                b.close()
                for k, key in enumerate(KEYS):
                    if key in held:
                        if where[k] is not None:
                            raise RuntimeError("key %r on two servers" % key)
                        where[k] = index
            if any(w is None for w in where):
                raise RuntimeError("a key was stored nowhere in %s/%s/%s" % (list_name, dist, h))
            rows.append((list_name, dist, h, tag, live, "".join(digit(w) for w in where)))

        version = subprocess.run(["nutcracker", "-V"], capture_output=True, text=True)
        print("// Generated by tests/tools/nutcracker_placements.py against %s." %
              (version.stdout + version.stderr).strip().splitlines()[0].split()[-1])
        print("const std::vector<std::string> kPlacementKeys = {")
        for key in KEYS:
            print("    std::string(%s, %d)," % (cpp_string(key), len(key)))
        print("};")
        print()
        print("const std::vector<GoldenPlacement> kGoldenPlacements = {")
        for list_name, dist, h, tag, live, placement in rows:
            live_cpp = "{}" if live is None else "{%s}" % ", ".join(
                "true" if x else "false" for x in live)
            print('    {"%s", D::%s, H::%s, "%s", %s, "%s"},' %
                  (list_name, DIST_ENUM[dist], HASH_ENUM[h], tag, live_cpp, placement))
        print("};")
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
