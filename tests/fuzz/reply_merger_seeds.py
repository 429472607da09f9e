#!/usr/bin/env python3
"""Writes the seed inputs of the reply_merger fuzz target to tests/fuzz/corpus/reply_merger/.

An input is the script reply_merger_fuzz.cc reads front to back: each choice is one byte (two,
low byte first, for more than 256 choices), and a byte string is its length then its bytes. The
helpers below make the same choices in the same order, so each seed is a scenario that reads as
written here: the request, where its keys live, and how and in which order each server answers.

    python3 tests/fuzz/reply_merger_seeds.py
"""
import os

FAMILY = {"redis_keyed": 0, "redis_pool": 1, "redis_scan": 2, "mc_retrieval": 3, "mc_broadcast": 4}
KEYED = ["MGET", "MSET", "DEL", "EXISTS", "TOUCH", "UNLINK"]
POOL = [("DBSIZE",), ("KEYS", "*"), ("INFO",), ("INFO", "keyspace"), ("INFO", "server"),
        ("SCRIPT", "EXISTS", "a", "b", "c"), ("SCRIPT", "LOAD", "return 1"), ("SCRIPT", "FLUSH"),
        ("PUBSUB", "NUMSUB", "ch1", "ch2"), ("PUBSUB", "NUMSUB"), ("PUBSUB", "CHANNELS"),
        ("RANDOMKEY",), ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "SET", "maxmemory", "0")]
MC = ["get", "gets", "gat", "gats"]
# Exchange::answer's modes.
FAITHFUL, ERROR, FAILURE, RAW, MANGLED, TRUNCATED = 0, 4, 5, 6, 7, 8
TIMEOUT, CONNECT, CLOSED = 0, 1, 2


class Script:
    def __init__(self):
        self.out = bytearray()

    def pick(self, n, value):
        assert 0 <= value < max(n, 1)
        if n <= 1:
            return
        if n <= 256:
            self.out.append(value)
        else:
            self.out += bytes([value & 0xFF, value >> 8])

    def flip(self, value):
        self.out.append(1 if value else 0)

    def bytes(self, limit, data):
        data = data.encode() if isinstance(data, str) else data
        self.pick(limit + 1, len(data))
        self.out += data

    # A key of make_keys: its text, and whether it is in the namespace.
    def key(self, text, namespaced=False):
        self.bytes(10, text)
        self.pick(4, 0 if namespaced else 1)

    # One sub-request: answered inside send() or left waiting.
    def sent(self, inline):
        self.pick(3, 0 if inline else 1)

    # Which waiting sub-request is answered next, of `waiting`.
    def next(self, waiting, index):
        self.pick(waiting, index)


def write(name, script):
    path = os.path.join(os.path.dirname(__file__), "corpus", "reply_merger", name)
    with open(path, "wb") as f:
        f.write(script.out)


def keyed(command, servers, keys, asked, resp3, lower=False):
    """keys: [(text, server, value or None)]; asked: indexes into keys (MSET: (index, value))."""
    s = Script()
    s.pick(5, FAMILY["redis_keyed"])
    s.pick(len(KEYED), KEYED.index(command))
    s.flip(lower)
    s.pick(5, servers - 1)
    s.pick(8, len(keys) - 1)
    for text, _, _ in keys:
        s.key(text)
    for _, server, value in keys:
        s.pick(servers, server)
        s.pick(3, 0 if value is None else 1)
        if value is not None:
            s.bytes(12, value)
    s.pick(12, len(asked) - 1)
    for a in asked:
        if command == "MSET":
            s.pick(len(keys), a[0])
            s.bytes(8, a[1])
        else:
            s.pick(len(keys), a)
    s.flip(resp3)
    return s


def main():
    os.makedirs(os.path.join(os.path.dirname(__file__), "corpus", "reply_merger"), exist_ok=True)
    three = [("user:1", 2, "alice"), ("user:2", 0, None), ("user:3", 1, "carol"),
             ("user:4", 2, "dave")]

    # MGET over three servers, a key asked twice, answered later, last part first.
    s = keyed("MGET", 3, three, [0, 1, 2, 3, 0], False)
    for _ in range(3):
        s.sent(False)
    for waiting in (3, 2, 1):
        s.next(waiting, waiting - 1)
        s.pick(9, FAITHFUL)
    write("mget-three-servers", s)

    # The same in RESP3, every part answered inside send().
    s = keyed("MGET", 3, three, [3, 2, 1, 0], True)
    for _ in range(3):
        s.sent(True)
        s.pick(9, FAITHFUL)
    write("mget-resp3-inline", s)

    # MSET: each key's value with it; a key set twice keeps the later value.
    s = keyed("MSET", 2, [("a", 0, None), ("b", 1, "old")], [(0, "1"), (1, "2"), (0, "3")], False)
    for _ in range(2):
        s.sent(False)
    for waiting in (2, 1):
        s.next(waiting, 0)
        s.pick(9, FAITHFUL)
    write("mset-two-servers", s)

    # DEL of keys on two servers, in lower case; one part answered inside send().
    s = keyed("DEL", 2, [("x", 0, "1"), ("y", 1, "2"), ("z", 1, None)], [0, 1, 2], False, True)
    s.sent(True)
    s.pick(9, FAITHFUL)
    s.sent(False)
    s.next(1, 0)
    s.pick(9, FAITHFUL)
    write("del-sum", s)

    # MGET with one server answering WRONGTYPE.
    s = keyed("MGET", 3, three, [0, 1, 2], False)
    for _ in range(3):
        s.sent(False)
    s.next(3, 1)
    s.pick(9, ERROR)
    s.pick(6, 1)
    for waiting in (2, 1):
        s.next(waiting, 0)
        s.pick(9, FAITHFUL)
    write("mget-wrongtype", s)

    # EXISTS with one server timing out after another answered.
    s = keyed("EXISTS", 2, [("p", 0, "1"), ("q", 1, "2")], [0, 1, 0], False)
    s.sent(False)
    s.sent(False)
    s.next(2, 0)
    s.pick(9, FAITHFUL)
    s.next(1, 0)
    s.pick(9, FAILURE)
    s.pick(6, TIMEOUT)
    write("exists-timeout", s)

    # MGET where a server's array is one element short.
    s = keyed("MGET", 2, [("m", 0, "v"), ("n", 1, "w"), ("o", 1, None)], [0, 1, 2], False)
    s.sent(False)
    s.sent(False)
    s.next(2, 1)
    s.pick(9, MANGLED)
    s.pick(7, 0)  # the array's count changed
    s.flip(False)
    s.next(1, 0)
    s.pick(9, FAITHFUL)
    write("mget-short-array", s)

    # DEL with a server's raw reply: an integer (the sum must not overflow).
    s = keyed("DEL", 2, [("d1", 0, "1"), ("d2", 1, "2")], [0, 1], False)
    s.sent(False)
    s.sent(False)
    s.next(2, 0)
    s.pick(9, RAW)
    s.bytes(4096, ":9223372036854775807\r\n")
    s.next(1, 0)
    s.pick(9, RAW)
    s.bytes(4096, ":1\r\n")
    write("regress-sum-overflow", s)

    def pool(request, servers, resp3, prefix):
        s = Script()
        s.pick(5, FAMILY["redis_pool"])
        s.pick(len(POOL), POOL.index(request))
        s.pick(5, servers - 1)
        s.flip(resp3)
        s.flip(prefix)
        return s

    # KEYS over three servers, some keys in the namespace.
    s = pool(("KEYS", "*"), 3, False, False)
    for server in range(3):
        s.sent(False)
    for waiting in (3, 2, 1):
        s.next(waiting, 0)
        s.pick(9, FAITHFUL)
        s.pick(4, waiting)  # that many keys
        for i in range(waiting):
            s.flip(i == 0)
    write("keys-three-servers", s)

    # INFO over two servers in RESP3: the Keyspace lines summed.
    s = pool(("INFO",), 2, True, True)
    s.sent(False)
    s.sent(False)
    for waiting in (2, 1):
        s.next(waiting, 0)
        s.pick(9, FAITHFUL)
        for db_present, keys, expires, ttl in ((True, 10, 4, 1000), (False, 0, 0, 0),
                                               (True, 3, 3, 70)):
            s.flip(db_present)
            if db_present:
                s.pick(100, keys - 1)
                s.pick(keys + 1, expires)
                if expires:
                    s.pick(100000, ttl)
    write("info-resp3", s)

    # PUBSUB NUMSUB: each channel's counts summed.
    s = pool(("PUBSUB", "NUMSUB", "ch1", "ch2"), 2, False, False)
    s.sent(True)
    s.pick(9, FAITHFUL)
    s.pick(5, 2)
    s.pick(5, 0)
    s.sent(True)
    s.pick(9, FAITHFUL)
    s.pick(5, 1)
    s.pick(5, 4)
    write("pubsub-numsub", s)

    # SCAN on the second of three servers, which says it has more.
    s = Script()
    s.pick(5, FAMILY["redis_scan"])
    s.pick(5, 2)
    s.pick(3, 1)
    s.pick(1 << 16, 42)
    s.flip(True)
    s.flip(True)
    s.flip(False)
    s.sent(False)
    s.next(1, 0)
    s.pick(9, FAITHFUL)
    s.flip(False)
    s.pick(1 << 16, 9)
    s.pick(4, 2)
    write("scan-next-cursor", s)

    def mc(command, servers, keys, asked, short_line=None):
        s = Script()
        s.pick(5, FAMILY["mc_retrieval"])
        s.pick(4, MC.index(command))
        if command in ("gat", "gats"):
            s.pick(1000, 300)
        s.pick(5, servers - 1)
        s.pick(8, len(keys) - 1)
        for text, _, _ in keys:
            s.key(text)
        for _, server, value in keys:
            s.pick(servers, server)
            s.pick(3, 0 if value is None else 1)
            if value is not None:
                s.bytes(16, value)
                s.pick(3, 1)  # flags 1
                s.pick(1 << 16, 17)  # cas 17 * 4099
        s.pick(16, len(asked) - 1)
        for a in asked:
            s.pick(len(keys), a)
        if command in ("gat", "gats"):
            s.flip(short_line is None)
            if short_line is not None:
                s.pick(48, short_line - 16)
        return s

    # A multi-get over three servers, a key asked twice, a miss.
    s = mc("gets", 3, [("foo", 0, "1"), ("bar", 1, "22"), ("baz", 2, None), ("qux", 1, "\r\nEND\r\n")],
           [0, 1, 2, 3, 0])
    for _ in range(3):
        s.sent(False)
    for waiting in (3, 2, 1):
        s.next(waiting, waiting - 1)
        s.pick(9, FAITHFUL)
    write("mc-gets-three-servers", s)

    # gat with a short line limit: one server's keys go out in several requests.
    s = mc("gat", 2, [("alpha", 0, "a"), ("bravo", 0, "b"), ("charlie", 0, None), ("delta", 1, "d")],
           [0, 1, 2, 3, 1], short_line=24)
    for _ in range(3):
        s.sent(True)
        s.pick(9, FAITHFUL)
    write("mc-gat-split-lines", s)

    # memcached running out of memory in the middle of one part.
    s = mc("get", 2, [("k1", 0, "v1"), ("k2", 0, "v2"), ("k3", 1, "v3")], [0, 1, 2])
    s.sent(False)
    s.sent(False)
    s.next(2, 0)
    s.pick(9, ERROR)
    s.flip(True)
    s.pick(4, 1)
    s.pick(4, 0)
    s.next(1, 0)
    s.pick(9, FAITHFUL)
    write("mc-get-server-error-after-items", s)

    # flush_all to three servers, one refusing.
    s = Script()
    s.pick(5, FAMILY["mc_broadcast"])
    s.pick(5, 2)
    for _ in range(3):
        s.sent(False)
    s.next(3, 2)
    s.pick(9, ERROR)
    s.flip(True)
    s.next(2, 0)
    s.pick(9, FAITHFUL)
    s.next(1, 0)
    s.pick(9, FAITHFUL)
    write("mc-flush-all", s)


if __name__ == "__main__":
    main()
