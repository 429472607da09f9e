#!/usr/bin/env python3
"""Generates protocol/redis_command_table.inc, the Redis command table, from a real redis-server.

    python3 tools/gen_redis_commands.py > protocol/redis_command_table.inc
    python3 tools/gen_redis_commands.py --port 6379 > ...   # ask a server that is already running

Without --port it starts its own redis-server (from PATH, or --redis-server) on a free loopback
port, with persistence off, and stops it again. Standard library only.

For every command and subcommand the server reports it records what COMMAND INFO says (arity,
flags, ACL categories, legacy key positions, command tips, key specs) and the exact bytes the
server sends for `COMMAND INFO <name>` (RESP2 and RESP3) and `COMMAND DOCS <name>` (RESP2, and
RESP3 after HELLO 3). The bytes are sliced out of what came off the socket, never re-encoded, so
cachegate can answer COMMAND INFO / DOCS / COUNT exactly as that server would.

Determinism: redis-server keeps its commands (and each container's subcommands) in a dict whose
hash seed is random per process, so the order of COMMAND, of a container's subcommand list in
COMMAND INFO and of its "subcommands" map in COMMAND DOCS changes with every server start. The
table is sorted by name instead, and inside a container's captured bytes the subcommand elements
(whole, byte-exact slices) are put in name order. Every other order is Redis's own. Two runs
against the same redis-server version produce identical output.
"""

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# Names as COMMAND reports them -> the constant the C++ header defines for them. An unknown name
# (a newer redis-server) stops the generator, so nothing the server says is silently dropped.
COMMAND_FLAGS = ["write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
                 "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking",
                 "fast", "no_auth", "may_replicate", "sentinel", "only_sentinel",
                 "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys",
                 "allow_busy"]
ACL_CATEGORIES = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
                  "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
                  "blocking", "dangerous", "connection", "transaction", "scripting"]
KEY_SPEC_FLAGS = ["RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key",
                  "incomplete", "variable_flags"]
COMMAND_TIPS = ["nondeterministic_output", "nondeterministic_output_order",
                "request_policy:all_nodes", "request_policy:all_shards",
                "request_policy:multi_shard", "request_policy:special",
                "response_policy:one_succeeded", "response_policy:all_succeeded",
                "response_policy:agg_logical_and", "response_policy:agg_logical_or",
                "response_policy:agg_min", "response_policy:agg_max", "response_policy:agg_sum",
                "response_policy:special"]


def fail(message):
    sys.exit("gen_redis_commands: " + message)


def constant_name(name):
    """'skip_monitor' -> 'kSkipMonitor', 'request_policy:all_shards' -> 'kRequestPolicyAllShards',
    'RO' -> 'kRO' (the header spells them this way)."""
    parts = name.replace(":", "_").split("_")
    return "k" + "".join(p[:1].upper() + p[1:] for p in parts)


# ---------------------------------------------------------------------------------------------
# RESP over a socket


class NeedMore(Exception):
    pass


class Node:
    """One RESP value: its type byte, scalar value or children, and where its bytes are."""

    __slots__ = ("kind", "value", "start", "end", "children")

    def __init__(self, kind, value, start, end, children=None):
        self.kind, self.value, self.start, self.end = kind, value, start, end
        self.children = children


def parse(buf, pos=0):
    """Parses the RESP2/RESP3 value starting at buf[pos]; raises NeedMore if it is incomplete."""
    if pos >= len(buf):
        raise NeedMore()
    kind = chr(buf[pos])
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        raise NeedMore()
    line = buf[pos + 1:eol]
    body = eol + 2
    if kind in "+-(":
        return Node(kind, line, pos, body)
    if kind == ":":
        return Node(kind, int(line), pos, body)
    if kind in "_#,":
        return Node(kind, line, pos, body)
    if kind in "$=!":
        n = int(line)
        if n < 0:
            return Node(kind, None, pos, body)
        if len(buf) < body + n + 2:
            raise NeedMore()
        if buf[body + n:body + n + 2] != b"\r\n":
            raise ValueError("bad bulk string terminator at %d" % (body + n))
        return Node(kind, buf[body:body + n], pos, body + n + 2)
    if kind in "*~>%|":
        n = int(line)
        if n < 0:
            return Node(kind, None, pos, body, [])
        if kind in "%|":
            n *= 2
        children = []
        p = body
        for _ in range(n):
            child = parse(buf, p)
            children.append(child)
            p = child.end
        return Node(kind, None, pos, p, children)
    raise ValueError("unknown RESP type %r at %d" % (kind, pos))


class Connection:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def call(self, *args):
        """Sends one command; returns (raw reply bytes, parsed reply)."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        while True:
            try:
                node = parse(self.buf)
                break
            except NeedMore:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("redis-server closed the connection")
                self.buf += chunk
        raw, self.buf = self.buf[:node.end], self.buf[node.end:]
        if node.kind == "-":
            raise RuntimeError("redis-server: %s -> %s" % (b" ".join(
                a if isinstance(a, bytes) else a.encode() for a in args), node.value))
        return raw, node

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# Starting a server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary):
    """Starts redis-server on a free loopback port; returns (process, port, directory)."""
    directory = tempfile.mkdtemp(prefix="gen-redis-commands-")
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory, "--daemonize", "no", "--logfile", ""],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                Connection(port, timeout=1).close()
                return proc, port, directory
            except OSError:
                time.sleep(0.05)
        # Lost the port to someone else between probing and binding, or slow to start: retry.
        stop_server(proc, None)
    shutil.rmtree(directory, ignore_errors=True)
    fail("could not start %s" % binary)


def stop_server(proc, directory):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Capturing


def text(node):
    return node.value.decode("latin-1")


def pairs(node):
    """The (key, value) children of a RESP3 map or of a RESP2 flat key/value array."""
    return [(node.children[i], node.children[i + 1]) for i in range(0, len(node.children), 2)]


def sorted_bytes(raw, container, groups):
    """The bytes of `container` (a node inside raw) with its children rearranged: `groups` is the
    list of child groups (lists of consecutive child nodes), each with a sort key; the groups are
    concatenated in key order after the container's header line."""
    header = raw[container.start:container.children[0].start] if container.children else None
    if header is None:
        return raw[container.start:container.end]
    ordered = sorted(groups, key=lambda g: g[0])
    body = b"".join(raw[g[1][0].start:g[1][-1].end] for g in ordered)
    if len(header) + len(body) != container.end - container.start:
        fail("reordering changed the length of an element")
    return header + body


def info_element(raw, node):
    """One COMMAND INFO element, with a container's subcommand list in name order."""
    fields = node.children
    subs = fields[9]
    if not subs.children:
        return raw[node.start:node.end]
    groups = [(text(s.children[0]), [s]) for s in subs.children]
    return raw[node.start:subs.start] + sorted_bytes(raw, subs, groups) + raw[subs.end:node.end]


def docs_pair(raw, name_node, docs_node):
    """One command's name + docs from a COMMAND DOCS reply, with a container's "subcommands" map
    in name order."""
    out = raw[name_node.start:docs_node.start]
    pos = docs_node.start
    for key, value in pairs(docs_node):
        if text(key) == "subcommands":
            groups = [(text(k), [k, v]) for k, v in pairs(value)]
            out += raw[pos:value.start] + sorted_bytes(raw, value, groups)
            pos = value.end
    return out + raw[pos:docs_node.end]


def one_info(conn, name):
    """COMMAND INFO <name>: (the element's bytes, the parsed element)."""
    raw, reply = conn.call("COMMAND", "INFO", name)
    if reply.kind != "*" or len(reply.children) != 1:
        fail("COMMAND INFO %s: not a one-element array" % name)
    element = reply.children[0]
    if element.kind != "*" or len(element.children) != 10:
        fail("COMMAND INFO %s: not the 10-field element of Redis 7" % name)
    return info_element(raw, element), element


def one_docs(conn, name):
    """COMMAND DOCS <name>: (the name + docs bytes, the parsed docs)."""
    raw, reply = conn.call("COMMAND", "DOCS", name)
    if len(reply.children) != 2 or text(reply.children[0]) != name:
        fail("COMMAND DOCS %s: not one entry for it" % name)
    key, value = reply.children
    return docs_pair(raw, key, value), value


def parse_key_spec(spec, where):
    out = {"flags": [], "notes": b"", "bs": ("unknown", {}), "fk": ("unknown", {})}
    for key, value in pairs(spec):
        k = text(key)
        if k == "notes":
            out["notes"] = value.value
        elif k == "flags":
            out["flags"] = [text(f) for f in value.children]
        elif k in ("begin_search", "find_keys"):
            d = {text(a): b for a, b in pairs(value)}
            kind = text(d["type"])
            params = {text(a): (text(b) if b.kind in "$+" else b.value)
                      for a, b in pairs(d["spec"])}
            out["bs" if k == "begin_search" else "fk"] = (kind, params)
        else:
            fail("%s: unknown key spec field %r" % (where, k))
    return out


def capture_command(c2, c3, name):
    info2, element = one_info(c2, name)
    info3, _ = one_info(c3, name)
    docs2, docs_node = one_docs(c2, name)
    docs3, _ = one_docs(c3, name)
    f = element.children
    if text(f[0]) != name:
        fail("COMMAND INFO %s: describes %s" % (name, text(f[0])))
    cmd = {
        "name": name,
        "arity": f[1].value,
        "flags": [text(x) for x in f[2].children],
        "first_key": f[3].value,
        "last_key": f[4].value,
        "key_step": f[5].value,
        "acl": [text(x) for x in f[6].children],
        "tips": [text(x) for x in f[7].children],
        "key_specs": [parse_key_spec(s, name) for s in f[8].children],
        "subcommand_names": sorted(text(s.children[0]) for s in f[9].children),
        "subcommands": [],
        "info2": info2, "info3": info3, "docs2": docs2, "docs3": docs3,
        "group": b"",
    }
    for key, value in pairs(docs_node):
        if text(key) == "group":
            cmd["group"] = value.value
    for flag in cmd["flags"]:
        if flag not in COMMAND_FLAGS:
            fail("%s: unknown command flag %r" % (name, flag))
    for cat in cmd["acl"]:
        if not cat.startswith("@") or cat[1:] not in ACL_CATEGORIES:
            fail("%s: unknown ACL category %r" % (name, cat))
    for tip in cmd["tips"]:
        if tip not in COMMAND_TIPS:
            fail("%s: unknown command tip %r" % (name, tip))
    for spec in cmd["key_specs"]:
        for flag in spec["flags"]:
            if flag not in KEY_SPEC_FLAGS:
                fail("%s: unknown key spec flag %r" % (name, flag))
    return cmd


def capture(host, port):
    c2 = Connection(port, host)
    c3 = Connection(port, host)
    _, hello = c3.call("HELLO", "3")
    version = None
    for key, value in pairs(hello):
        if text(key) == "version":
            version = text(value)
    _, count = c2.call("COMMAND", "COUNT")
    _, everything = c2.call("COMMAND")
    names = sorted(text(e.children[0]) for e in everything.children)
    if count.value != len(names):
        fail("COMMAND COUNT says %d, COMMAND lists %d"
                 % (count.value, len(names)))
    commands = []
    for name in names:
        cmd = capture_command(c2, c3, name)
        cmd["subcommands"] = [capture_command(c2, c3, sub) for sub in cmd["subcommand_names"]]
        if any(sub["subcommand_names"] for sub in cmd["subcommands"]):
            fail("%s: a second level of subcommands" % name)
        # A container's element nests its subcommands' elements; they must be the very bytes
        # COMMAND INFO / DOCS give for the subcommand on its own (cachegate serves both).
        for sub in cmd["subcommands"]:
            if sub["info2"] not in cmd["info2"] or sub["info3"] not in cmd["info3"]:
                fail("%s: nested COMMAND INFO differs" % sub["name"])
            if sub["docs2"] not in cmd["docs2"] or sub["docs3"] not in cmd["docs3"]:
                fail("%s: nested COMMAND DOCS differs" % sub["name"])
        commands.append(cmd)
    c2.close()
    c3.close()
    return version, count.value, commands


# ---------------------------------------------------------------------------------------------
# Emitting C++

LITERAL_WIDTH = 92  # characters of escaped text per piece; pieces are adjacent literals


def escape(data):
    out = []
    for b in data:
        c = chr(b)
        if c == "\\" or c == '"':
            out.append("\\" + c)
        elif c == "?":
            out.append("\\?")  # no trigraph can ever form
        elif c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\\n")
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append("\\%03o" % b)  # always three digits, so a following digit stays apart
    return out


def literal(data, indent):
    """A std::string_view initializer {"...", N}: adjacent literal pieces of bounded length
    (compilers cap a single literal's length), broken after a CRLF where one is near."""
    if not data:
        return '{"", 0}'
    pieces, cur, width = [], [], 0
    tokens = escape(data)
    for i, tok in enumerate(tokens):
        cur.append(tok)
        width += len(tok)
        at_crlf = tok == "\\n" and i > 0 and tokens[i - 1] == "\\r"
        if width >= LITERAL_WIDTH or (at_crlf and width >= LITERAL_WIDTH * 2 // 3):
            pieces.append("".join(cur))
            cur, width = [], 0
    if cur:
        pieces.append("".join(cur))
    if len(pieces) == 1:
        return '{"%s", %d}' % (pieces[0], len(data))
    sep = "\n" + " " * indent
    return "{" + sep + sep.join('"%s"' % p for p in pieces) + ",\n" + " " * indent + "%d}" % len(
        data)


def bits(names, prefix, transform=lambda n: n):
    if not names:
        return "0"
    return " | ".join("%s::%s" % (prefix, constant_name(transform(n))) for n in names)


def emit_key_spec(spec, owner):
    """One KeySpec initializer; fields that do not apply to the spec's types stay at their
    defaults (the header gives every field one)."""
    fields = [".flags = %s" % bits(spec["flags"], "KeySpecFlag")]
    bs_kind, bs = spec["bs"]
    fields.append(".begin_search = BeginSearch::%s" % constant_name(bs_kind))
    if bs_kind == "index":
        fields.append(".index = %d" % bs["index"])
    elif bs_kind == "keyword":
        fields.append(".keyword = %s" % literal(bs["keyword"].encode(), 0))
        fields.append(".startfrom = %d" % bs["startfrom"])
    elif bs_kind != "unknown":
        fail("%s: unknown begin_search type %r" % (owner, bs_kind))
    fk_kind, fk = spec["fk"]
    fields.append(".find_keys = FindKeys::%s" % constant_name(fk_kind))
    if fk_kind == "range":
        fields += [".lastkey = %d" % fk["lastkey"], ".limit = %d" % fk["limit"],
                   ".keystep = %d" % fk["keystep"]]
    elif fk_kind == "keynum":
        fields += [".keynumidx = %d" % fk["keynumidx"], ".firstkey = %d" % fk["firstkey"],
                   ".keystep = %d" % fk["keystep"]]
    elif fk_kind != "unknown":
        fail("%s: unknown find_keys type %r" % (owner, fk_kind))
    if spec["notes"]:
        fields.append(".notes = %s" % literal(spec["notes"], 14))
    return "    {" + ",\n     ".join(fields) + "},\n"


def cpp_ident(name):
    return name.replace("|", "_").replace("-", "_")


def emit_command(cmd, spec_index, subs_array):
    fields = [
        ".name = %s" % literal(cmd["name"].encode(), 0),
        ".arity = %d" % cmd["arity"],
        ".flags = %s" % bits(cmd["flags"], "CommandFlag"),
        ".acl_categories = %s" % bits(cmd["acl"], "AclCategory", lambda c: c[1:]),
        ".first_key = %d" % cmd["first_key"],
        ".last_key = %d" % cmd["last_key"],
        ".key_step = %d" % cmd["key_step"],
    ]
    if cmd["key_specs"]:
        fields.append(".key_specs = &kKeySpecs[%d]" % spec_index)
        fields.append(".key_spec_count = %d" % len(cmd["key_specs"]))
    if cmd["tips"]:
        fields.append(".tips = %s" % bits(cmd["tips"], "CommandTip"))
    fields.append(".group = %s" % literal(cmd["group"], 0))
    for field, key in (("info_resp2", "info2"), ("info_resp3", "info3"),
                       ("docs_resp2", "docs2"), ("docs_resp3", "docs3")):
        fields.append(".%s = %s" % (field, literal(cmd[key], 9)))
    if cmd["subcommands"]:
        fields.append(".subcommands = %s" % subs_array)
        fields.append(".subcommand_count = %d" % len(cmd["subcommands"]))
    return "    {" + ",\n     ".join(fields) + "},\n"


def emit(version, count, commands):
    out = []
    w = out.append
    w("// clang-format off\n")
    w("// The Redis command table, generated from redis-server %s by tools/gen_redis_commands.py.\n"
      % version)
    w("// Do not edit: regenerate with\n")
    w("//   python3 tools/gen_redis_commands.py > protocol/redis_command_table.inc\n")
    w("// Included by protocol/redis_commands.cc only; the types are in "
      "protocol/redis_commands.h.\n")
    w("// Sorted by name (the server's own order is random per process; see the generator).\n\n")
    w('constexpr std::string_view kTableRedisVersion = "%s";\n' % version)
    w("constexpr size_t kTableCommandCount = %d;  // COMMAND COUNT\n" % count)
    longest = max(len(c["name"]) for c in commands)
    longest_sub = max([len(s["name"]) for c in commands for s in c["subcommands"]] or [0])
    w("constexpr size_t kLongestCommandName = %d;\n" % longest)
    w("constexpr size_t kLongestSubcommandName = %d;  // \"container|sub\"\n\n" % longest_sub)

    everything = []
    for cmd in commands:
        everything.extend(cmd["subcommands"])
        everything.append(cmd)
    spec_index = {}
    w("constexpr KeySpec kKeySpecs[] = {\n")
    n = 0
    for cmd in everything:
        if not cmd["key_specs"]:
            continue
        spec_index[cmd["name"]] = n
        w("    // %s\n" % cmd["name"])
        for spec in cmd["key_specs"]:
            w(emit_key_spec(spec, cmd["name"]))
            n += 1
    w("};\n\n")

    for cmd in commands:
        if not cmd["subcommands"]:
            continue
        w("constexpr CommandInfo kSubcommands_%s[] = {\n" % cpp_ident(cmd["name"]))
        for sub in cmd["subcommands"]:
            w(emit_command(sub, spec_index.get(sub["name"], 0), None))
        w("};\n\n")

    w("constexpr CommandInfo kCommands[] = {\n")
    for cmd in commands:
        w(emit_command(cmd, spec_index.get(cmd["name"], 0),
                       "kSubcommands_%s" % cpp_ident(cmd["name"])))
    w("};\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, help="ask the redis-server already on this port")
    ap.add_argument("--host", default="127.0.0.1", help="with --port (default 127.0.0.1)")
    ap.add_argument("--redis-server", default="redis-server",
                    help="binary to start when --port is not given (default: from PATH)")
    args = ap.parse_args()

    proc = directory = None
    host, port = args.host, args.port
    if port is None:
        binary = shutil.which(args.redis_server)
        if not binary:
            fail("%s not found" % args.redis_server)
        proc, port, directory = start_server(binary)
        host = "127.0.0.1"
    try:
        version, count, commands = capture(host, port)
    except OSError as e:
        fail("talking to redis-server at %s:%d: %s" % (host, port, e))
    finally:
        if proc is not None:
            stop_server(proc, directory)
    sys.stdout.write(emit(version, count, commands))
    print("gen_redis_commands: redis-server %s, %d commands, %d subcommands" % (
        version, count, sum(len(c["subcommands"]) for c in commands)), file=sys.stderr)


if __name__ == "__main__":
    main()
