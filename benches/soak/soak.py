#!/usr/bin/env python3
"""Helpers of benches/soak/run (standard library only):

  soak.py ports-free PORT...              exit 1 if a port is busy on 127.0.0.1 (UDP or TCP)
  soak.py probe HOST PORT SECONDS OUT     ask and check gathered answers for SECONDS, counts to OUT
  soak.py report DIR                      the figures of one run; exit 1 if it failed

The prober checks what dnsperf cannot: the content of each reply. Cluster A (always up) must be
in every answer, renamed into the distributed domain; cluster B (stopped and started) must be
there whole or not at all; nothing else may be.
"""

import json
import os
import random
import re
import socket
import struct
import sys
import time

# What the zones of the run hold (benches/soak/run writes them): demo-service with 2 endpoints,
# big-service with BIG endpoints, per cluster.
DOMAIN = "default.svc.distributed.local"
SMALL_SRV = f"_demo._tcp.demo-service.{DOMAIN}"
BIG_SRV = f"_demo._tcp.big-service.{DOMAIN}"
BIG = 50
# A reply slower than this is missing: longer than gatherdns's `timeout` (2 s), as dnsperf -t.
REPLY_TIMEOUT = 5.0
# Pause between the prober's queries: about 10 a second, next to thousands from dnsperf.
PROBE_PAUSE = 0.1

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
T_SRV = 33


def ports_free(ports):
    busy = []
    for port in ports:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            # As the servers bind: TIME-WAIT connections of a previous run do not count.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{port}/{'udp' if kind == socket.SOCK_DGRAM else 'tcp'}")
            finally:
                s.close()
    if busy:
        print("[soak] busy on 127.0.0.1: " + " ".join(busy), file=sys.stderr)
        return 1
    return 0


# --- a minimal DNS client ---------------------------------------------------------------


def query(qid, name, qtype):
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".") if label)
    return header + qname + b"\0" + struct.pack(">HH", qtype, 1)


def read_name(msg, pos):
    """The name at pos (compression followed) in lower case, and the position after it."""
    labels, end, hops = [], None, 0
    while True:
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | msg[pos + 1]
            hops += 1
            if hops > 64:
                raise ValueError("compression loop")
            continue
        pos += 1
        if length == 0:
            break
        labels.append(msg[pos : pos + length].decode("ascii", "replace").lower())
        pos += length
    return ".".join(labels), (end if end is not None else pos)


def parse(msg):
    """(id, tc, rcode, [SRV targets in the answer section])."""
    qid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    pos = 12
    for _ in range(qd):
        _, pos = read_name(msg, pos)
        pos += 4
    targets = []
    for _ in range(an):
        _, pos = read_name(msg, pos)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[pos : pos + 10])
        pos += 10
        if rtype == T_SRV:
            target, _ = read_name(msg, pos + 6)
            targets.append(target)
        pos += rdlen
    return qid, bool(flags & 0x0200), RCODES.get(flags & 0xF, str(flags & 0xF)), targets


def udp_ask(addr, msg):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(REPLY_TIMEOUT)
        s.connect(addr)
        s.send(msg)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            s.settimeout(max(0.001, deadline - time.monotonic()))
            reply = s.recv(65535)
            if reply[:2] == msg[:2]:
                return reply


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def tcp_ask(addr, msg):
    with socket.create_connection(addr, timeout=REPLY_TIMEOUT) as s:
        s.settimeout(REPLY_TIMEOUT)
        s.sendall(struct.pack(">H", len(msg)) + msg)
        (length,) = struct.unpack(">H", recv_exact(s, 2))
        return recv_exact(s, length)


def check_targets(targets, endpoints, service):
    """None if the SRV targets are cluster A's whole part and B's whole part, "partial" if
    they are A's part alone, else what is wrong."""
    expected = {
        c: {f"{c}-{service}-{i}.{DOMAIN}" for i in range(endpoints)} for c in ("a", "b")
    }
    got = set(targets)
    if len(got) != len(targets):
        return f"duplicate targets: {sorted(targets)}"
    if not expected["a"] <= got:
        return f"cluster A's part is not whole: {sorted(got)}"
    rest = got - expected["a"]
    if rest and rest != expected["b"]:
        return f"cluster B's part is neither whole nor absent: {sorted(rest)}"
    return None if rest else "partial"


# The probes, in turn: (what, transport, name, check of the parsed reply and its length).
def probes():
    def small(reply, _len):
        _, tc, rcode, targets = reply
        if rcode != "NOERROR" or tc:
            return f"rcode {rcode}, tc {tc}"
        return check_targets(targets, 2, "demo-service")

    def big_tcp(reply, _len):
        _, tc, rcode, targets = reply
        if rcode != "NOERROR" or tc:
            return f"rcode {rcode}, tc {tc}"
        return check_targets(targets, BIG, "big-service")

    def big_udp(reply, length):
        _, tc, rcode, _ = reply
        if rcode != "NOERROR" or not tc or length > 512:
            return f"rcode {rcode}, tc {tc}, {length} bytes (expected NOERROR, TC, <= 512)"
        return None

    return [
        ("small-udp", "udp", SMALL_SRV, small),
        ("small-tcp", "tcp", SMALL_SRV, small),
        ("big-tcp", "tcp", BIG_SRV, big_tcp),
        ("big-udp", "udp", BIG_SRV, big_udp),
    ]


def probe(host, port, seconds, out):
    addr = (host, port)
    counts = {}
    errors = []
    rng = random.Random()
    end = time.monotonic() + seconds
    turn = 0
    kinds = probes()
    while time.monotonic() < end:
        what, transport, name, check = kinds[turn % len(kinds)]
        turn += 1
        c = counts.setdefault(
            what, {"sent": 0, "replied": 0, "missing": 0, "wrong": 0, "partial": 0}
        )
        qid = rng.randrange(65536)
        msg = query(qid, name, T_SRV)
        c["sent"] += 1
        try:
            raw = (udp_ask if transport == "udp" else tcp_ask)(addr, msg)
        except (OSError, ConnectionError) as e:
            c["missing"] += 1
            errors.append(f"{time.strftime('%H:%M:%S')} {what}: no reply ({e})")
            continue
        c["replied"] += 1
        try:
            reply = parse(raw)
            problem = check(reply, len(raw)) if reply[0] == qid else "wrong ID"
        except (ValueError, IndexError, struct.error) as e:
            problem = f"unparsable reply: {e}"
        if problem == "partial":
            c["partial"] += 1
        elif problem:
            c["wrong"] += 1
            errors.append(f"{time.strftime('%H:%M:%S')} {what}: {problem}")
        time.sleep(PROBE_PAUSE)
    with open(out, "w") as f:
        json.dump({"counts": counts, "errors": errors[:100]}, f, indent=1)
    return 0


# --- the report -------------------------------------------------------------------------


def dnsperf_figures(path):
    text = open(path).read()

    def number(label):
        m = re.search(rf"{label}:\s+(\d+)", text)
        return int(m.group(1)) if m else None

    rcodes = {}
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        for code, count in re.findall(r"([A-Z]+|\d+) (\d+) \(", m.group(1)):
            rcodes[code] = int(count)
    return {
        "sent": number("Queries sent"),
        "completed": number("Queries completed"),
        "lost": number("Queries lost"),
        "interrupted": number("Queries interrupted") or 0,
        "rcodes": rcodes,
    }


def growth_check(samples, seconds, column, ratio, slack):
    """(baseline max, last, limit, ok): the last sample against the largest of the baseline
    window, minute 1 to 2 (or the middle third of a run shorter than 3 minutes)."""
    if seconds >= 180:
        lo, hi = 60, 120
    else:
        lo, hi = seconds / 3, 2 * seconds / 3
    window = [s[column] for s in samples if lo <= s["t"] <= hi]
    if not window:
        return None, None, None, True
    base = max(window)
    last = samples[-1][column]
    limit = base * ratio + slack
    return base, last, limit, last <= limit


def report(d):
    conf = dict(line.rstrip("\n").split("\t", 1) for line in open(os.path.join(d, "conditions.tsv")))
    seconds = int(conf["seconds"])
    failures = []
    print(f"## Soak of {conf['binary']}: {seconds} s, {conf['date']}\n")
    print(f"{conf['host']}; {conf['load']}\n")

    print("| stream | sent | replies | missing | RCODE mix, or the prober's checks |")
    print("|---|---:|---:|---:|---|")
    total = {"sent": 0, "completed": 0, "lost": 0, "rcodes": {}}
    for stream in ("udp", "tcp"):
        path = os.path.join(d, f"dnsperf-{stream}.log")
        f = dnsperf_figures(path) if os.path.exists(path) else None
        if not f or f["sent"] is None:
            failures.append(f"dnsperf {stream}: no statistics in {path}")
            continue
        missing = f["sent"] - (f["completed"] or 0)
        mix = ", ".join(f"{k} {v}" for k, v in sorted(f["rcodes"].items(), key=lambda kv: -kv[1]))
        print(f"| dnsperf {stream} | {f['sent']} | {f['completed']} | {missing} | {mix} |")
        total["sent"] += f["sent"]
        total["completed"] += f["completed"] or 0
        for k, v in f["rcodes"].items():
            total["rcodes"][k] = total["rcodes"].get(k, 0) + v
        if missing:
            failures.append(f"dnsperf {stream}: {missing} queries without a reply")
    probe_path = os.path.join(d, "probe.json")
    probe_data = json.load(open(probe_path)) if os.path.exists(probe_path) else None
    if probe_data is None:
        failures.append("the prober wrote no counts")
    else:
        for what, c in sorted(probe_data["counts"].items()):
            print(
                f"| probe {what} | {c['sent']} | {c['replied']} | {c['missing']} | "
                f"{c['wrong']} wrong, {c['partial']} without cluster B |"
            )
            if c["missing"]:
                failures.append(f"probe {what}: {c['missing']} queries without a reply")
            if c["wrong"]:
                failures.append(f"probe {what}: {c['wrong']} wrong answers")
        if probe_data["errors"]:
            print()
        for line in probe_data["errors"][:10]:
            print(f"    {line}")
    mix = ", ".join(
        f"{k} {v} ({100 * v / max(1, total['completed']):.2f} %)"
        for k, v in sorted(total["rcodes"].items(), key=lambda kv: -kv[1])
    )
    print(f"\ndnsperf total: {total['sent']} sent, {total['completed']} replies; {mix}\n")

    samples = []
    for line in open(os.path.join(d, "samples.tsv")):
        t, rss, fds = line.split()
        samples.append({"t": int(t), "rss": int(rss), "fds": int(fds)})
    print("| t (s) | " + " | ".join(str(s["t"]) for s in samples) + " |")
    print("|---|" + "---:|" * len(samples))
    print("| RSS (MiB) | " + " | ".join(f"{s['rss'] / 1024:.1f}" for s in samples) + " |")
    print("| fds | " + " | ".join(str(s["fds"]) for s in samples) + " |")
    print()
    # RSS: 20 % over the baseline's largest sample is growth (allocator noise is a few %);
    # fds: 25 % plus 16 (retired upstream sockets and TCP connections come and go).
    for column, ratio, slack, unit in (("rss", 1.20, 0, " kB"), ("fds", 1.25, 16, "")):
        base, last, limit, ok = growth_check(samples, seconds, column, ratio, slack)
        if base is None:
            failures.append(f"{column}: no samples in the baseline window")
            continue
        verdict = "ok" if ok else "GROWTH"
        print(f"{column}: baseline max {base}{unit}, last {last}{unit}, limit {limit:.0f}{unit}: {verdict}")
        if not ok:
            failures.append(f"{column} grew: last {last} > {limit:.0f} (baseline max {base})")
    rss = [s["rss"] for s in samples]
    print(
        f"RSS first/last/max: {rss[0] / 1024:.1f} / {rss[-1] / 1024:.1f} / {max(rss) / 1024:.1f} MiB; "
        f"fds first/last: {samples[0]['fds']} / {samples[-1]['fds']}"
    )
    events = dict(line.rstrip("\n").split("\t", 1) for line in open(os.path.join(d, "events.tsv")))
    print(
        f"Knot B stopped {events['knot_stops']} times; Corefile rewritten {events['rewrites']} "
        f"times, {events['reloads']} reloads completed, {events['reload_failures']} failed"
    )
    if int(events["reload_failures"]):
        failures.append(f"{events['reload_failures']} reloads failed")
    if int(events["reloads"]) < int(events["rewrites"]):
        failures.append(f"{events['rewrites']} rewrites but {events['reloads']} reloads")
    metrics = os.path.join(d, "metrics.txt")
    if os.path.exists(metrics):
        wanted = re.compile(
            r'^(gatherdns_cluster_sub_queries_total\{.*cluster="([^"]+)",result="([^"]+)"\}'
            r"|(gatherdns_upstream_(?:tc_retries|timeouts|failures)_total)) (\d+)"
        )
        parts = []
        for line in open(metrics):
            m = wanted.match(line)
            if m:
                name = f"{m.group(2)} {m.group(3)}" if m.group(2) else m.group(4)
                parts.append(f"{name} {m.group(5)}")
        print("gatherdns counted: " + "; ".join(parts))
    print()
    if failures:
        for f in failures:
            print(f"FAIL: {f}")
        return 1
    print("PASS")
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "ports-free":
        return ports_free([int(p) for p in argv[2:]])
    if len(argv) == 6 and argv[1] == "probe":
        return probe(argv[2], int(argv[3]), float(argv[4]), argv[5])
    if len(argv) == 3 and argv[1] == "report":
        return report(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
