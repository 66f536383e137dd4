#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The lease benchmark's report (tests/bench/lease.sh): medians, ratios with their goals, floors
with the marginal ratios, and the breakdown of one Acquire.

    lease-report.py BENCH.TSV [HOSTDEVD.LOG]

BENCH.TSV: "NAME<TAB>ROUND<TAB>USEC" rows and "trace<TAB>ROUND<TAB>STEP<TAB>MONOTONIC_USEC" rows
(lease-client). HOSTDEVD.LOG: hostdevd's console log with HOSTDEVD_LOG_TIME=1 ("[  SEC.USEC]
hostdevd: MESSAGE", CLOCK_MONOTONIC, the clock of the trace rows). The breakdown lists, for each
traced Acquire, hostdevd's log lines between the client's send and its reply; a step's time is the
time since the line before it. Lines are matched across rounds by their text with numbers blanked
(and their order among equal texts); the medians over the rounds are printed.
"""
import re
import statistics
import sys

GOAL = 1.2


def load(path):
    runs, rounds, traces = {}, {}, {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) == 3 and f[2].isdigit():
            runs.setdefault(f[0], []).append(int(f[2]))
            rounds.setdefault(f[0], {})[f[1]] = int(f[2])
        elif len(f) == 4 and f[0] == "trace" and f[3].isdigit():
            traces.setdefault(int(f[1]), {})[f[2]] = int(f[3])
    return runs, rounds, traces


LOG_LINE = re.compile(r"^\[\s*(\d+)\.(\d{6})\] [^:]+: (.*)$")


def load_log(path):
    lines = []
    try:
        for line in open(path, errors="replace"):
            m = LOG_LINE.match(line.rstrip("\n"))
            if m:
                lines.append((int(m.group(1)) * 1000000 + int(m.group(2)), m.group(3)))
    except FileNotFoundError:
        pass
    return lines


def label(message):
    text = re.sub(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", "BDF", message)
    text = re.sub(r"\d+", "N", text)
    return text[:88]


def main():
    runs, rounds, traces = load(sys.argv[1])
    log = load_log(sys.argv[2]) if len(sys.argv) > 2 else []
    med = {k: statistics.median(v) / 1000 for k, v in runs.items()}

    print("\nlease benchmark (Debian kernel in QEMU TCG, one guest, ms, median of rounds)\n")
    print(f"{'measure':<24} {'rounds':>6} {'median':>9} {'min':>9} {'max':>9}")
    for k in sorted(runs):
        v = runs[k]
        print(f"{k:<24} {len(v):>6} {med[k]:>9.1f} {min(v) / 1000:>9.1f} {max(v) / 1000:>9.1f}")

    def ratio(name, a, b, goal=None, minus=None):
        if a not in med or b not in med or med[b] <= 0 or (minus and minus not in med):
            print(f"{name:<58}    n/a")
            return
        top = med[a] - (med[minus] if minus else 0)
        r = top / med[b]
        p = paired(a, b) if not minus else None
        shown = f"{r:>6.2f} ({p:.2f})" if p is not None else f"{r:>6.2f}       "
        verdict = f"   goal <= {goal}: {'met' if r <= goal else 'NOT met'}" if goal else ""
        print(f"{name:<58} {shown}{verdict}")

    def paired(a, b):
        """The median over the rounds of a/b within one round (neighbours in time: a busy host's load
        changes slower than a round), or None."""
        ra, rb = rounds.get(a, {}), rounds.get(b, {})
        v = [ra[r] / rb[r] for r in ra if r in rb and rb[r] > 0]
        return statistics.median(v) if v else None

    print("\nratios (medians; in brackets: the median of the ratios within each round)")
    ratio("VMM exit -> host driver: hostdevd / kernel", "exit-hostdevd", "exit-kernel", GOAL)
    ratio("Acquire -> ready (running client): hostdevd / raw", "acquire-client", "acquire-raw", GOAL)
    ratio("Acquire -> ready (hostdevctl run): hostdevd / raw", "acquire-hostdevctl", "acquire-raw")
    print("\nfloors: what no change to hostdevd's planning can remove, and the marginal ratios")
    ratio("bus round trip (Peer.Ping) / raw", "bus-ping", "acquire-raw")
    ratio("Acquire dry-run (bus, polkit, validation) / raw", "acquire-dry", "acquire-raw")
    ratio("exec of hostdevctl / raw", "exec", "acquire-raw")
    ratio("(Acquire - dry-run) / raw", "acquire-client", "acquire-raw", minus="acquire-dry")
    ratio("(Acquire - Ping) / raw", "acquire-client", "acquire-raw", minus="bus-ping")
    ratio("(hostdevctl run - exec) / raw", "acquire-hostdevctl", "acquire-raw", minus="exec")
    if "acquire-client" in med and "acquire-raw" in med:
        over = med["acquire-client"] - med["acquire-raw"]
        print(f"\nhostdevd's own cost over the raw writes: {over:.1f} ms (goal: <= "
              f"{(GOAL - 1) * med['acquire-raw']:.1f} ms)")

    if not traces:
        return
    if not log:
        print("\nbreakdown: no timed hostdevd log (HOSTDEVD_LOG_TIME=1) to read")
        return
    steps = {}  # (label, occurrence) -> [delta usec]
    order = []
    totals = []
    for rnd in sorted(traces):
        t = traces[rnd]
        if "client-send" not in t or "client-reply" not in t:
            continue
        t0, t1 = t["client-send"], t["client-reply"]
        totals.append(t1 - t0)
        prev, seen = t0, {}
        window = [(at, msg) for at, msg in log if t0 <= at <= t1]
        for at, msg in window + [(t1, "(client) reply received")]:
            lab = label(msg)
            seen[lab] = seen.get(lab, 0) + 1
            key = (lab, seen[lab])
            if key not in steps:
                steps[key] = []
                order.append(key)
            steps[key].append(at - prev)
            prev = at
    if not totals:
        return
    print(f"\nbreakdown of one Acquire (hostdevd at log level debug, {len(totals)} traced rounds, "
          f"median total {statistics.median(totals) / 1000:.1f} ms; ms since the line before, "
          f"median over the rounds that have the line)\n")
    print(f"{'ms':>7} {'seen':>4}  step (hostdevd's log line, numbers blanked)")
    print(f"{0:>7.1f} {len(totals):>4}  (client) Acquire sent")
    for key in order:
        v = steps[key]
        print(f"{statistics.median(v) / 1000:>7.1f} {len(v):>4}  {key[0]}")


if __name__ == "__main__":
    main()
