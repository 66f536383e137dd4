#!/usr/bin/python3
"""Run one kernel lane guest in QEMU and turn what it says into a result.

Started by run-vm.sh, which builds the initramfs and the QEMU command line.
This side:
  - relays the guest console (ttyS0) to stdout and OUTDIR/console.log;
  - answers the guest's "@@KL HOST <n> qmp <json>" requests through QMP and
    acknowledges them on the console's input ("@@KL ACK <n> ok|error <text>"),
    so a scenario can hot-add and hot-remove devices at the moment it wants;
  - enforces an overall timeout;
  - splits the bulk channel (ttyS1) into files under OUTDIR;
  - runs an optional host-side checker on OUTDIR;
  - prints "N passed, N failed" and exits non-zero on any failure, a missing
    result marker, a timeout or a QEMU error.
"""

import argparse
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

RESULT_RE = re.compile(r"^(not ok|ok) - (.*)$")
HOST_RE = re.compile(r"@@KL HOST (\d+) (\S+) ?(.*)$")


class Qmp:
    """Minimal QMP client (docs/interop/qmp-spec.txt): one command at a time."""

    def __init__(self, path, deadline):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw", encoding="utf-8", newline="\n")
        self._read()  # greeting
        self.command({"execute": "qmp_capabilities"})

    def _read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def command(self, cmd):
        """Send one command; return (ok, reply) skipping asynchronous events."""
        self.file.write(json.dumps(cmd) + "\n")
        self.file.flush()
        while True:
            msg = self._read()
            if "event" in msg:
                continue
            if "error" in msg:
                return False, msg["error"]
            return True, msg.get("return")


def split_channel(path, outdir):
    """Cut ttyS1's byte stream into OUTDIR/<name> files."""
    names = []
    if not os.path.exists(path):
        return names
    with open(path, "rb") as f:
        data = f.read()
    for m in re.finditer(rb"@@KL BEGIN (\S+)\n(.*?)\n?\n@@KL END \1\n", data, re.S):
        name = m.group(1).decode()
        if "/" in name or name.startswith("."):
            continue
        with open(os.path.join(outdir, name), "wb") as out:
            out.write(m.group(2) + b"\n" if m.group(2) else b"")
        names.append(name)
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--qmp", required=True, help="QMP socket path used in the QEMU command")
    ap.add_argument("--channel", required=True, help="file that QEMU writes ttyS1 to")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--checker", help="host-side checker run as CHECKER OUTDIR")
    ap.add_argument("--quiet", action="store_true", help="print only results, not the console")
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    qemu = a.qemu[1:] if a.qemu and a.qemu[0] == "--" else a.qemu

    start = time.monotonic()
    deadline = start + a.timeout
    os.makedirs(a.outdir, exist_ok=True)
    console = open(os.path.join(a.outdir, "console.log"), "w", encoding="utf-8")
    qemu_err = open(os.path.join(a.outdir, "qemu.stderr"), "w+", encoding="utf-8")

    proc = subprocess.Popen(qemu, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=qemu_err, bufsize=0)
    lines = queue.Queue()

    def reader():
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n"))
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()

    passed, failed = 0, 0
    harness_fail = []
    markers = {}
    qmp = None

    def stamp():
        return "%6.2f" % (time.monotonic() - start)

    def out(line):
        console.write(f"[{stamp()}] {line}\n")
        console.flush()
        if not a.quiet or RESULT_RE.match(line) or line.startswith("#"):
            print(line if a.quiet else f"[{stamp()}] {line}", flush=True)

    def ack(seq, ok, text):
        msg = f"@@KL ACK {seq} {'ok' if ok else 'error'} {text}\n"
        console.write(f"[{stamp()}] <host> {msg}")
        proc.stdin.write(msg.encode())
        proc.stdin.flush()

    timed_out = False
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = ""
        if line is None:
            break
        if time.monotonic() > deadline:
            timed_out = True
            break
        if line == "":
            continue
        out(line)
        m = RESULT_RE.match(line)
        if m:
            if m.group(1) == "ok":
                passed += 1
            else:
                failed += 1
            continue
        if "@@KL " in line:
            tail = line[line.index("@@KL "):]
            word = tail.split()[1] if len(tail.split()) > 1 else ""
            markers[word] = tail
            h = HOST_RE.search(line)
            if h:
                seq, cmd, arg = h.groups()
                try:
                    if cmd != "qmp":
                        raise ValueError(f"unknown host command '{cmd}'")
                    if qmp is None:
                        qmp = Qmp(a.qmp, deadline)
                    ok, reply = qmp.command(json.loads(arg))
                    ack(seq, ok, json.dumps(reply))
                except Exception as e:  # the guest must get an answer
                    ack(seq, False, f"{type(e).__name__}: {e}")

    if timed_out:
        harness_fail.append(f"guest finished within {a.timeout:.0f} s")
    try:
        proc.kill() if timed_out else None
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    if not timed_out and rc != 0:
        harness_fail.append(f"qemu exited with status {rc}")
    if "READY" not in markers:
        harness_fail.append("guest reached READY (bus and daemon up)")
    if "DONE" not in markers:
        harness_fail.append("guest printed its DONE marker")
    if "RESULT" in markers:
        g = markers["RESULT"].split()
        if len(g) >= 4 and (int(g[2]), int(g[3])) != (passed, failed):
            harness_fail.append(f"guest count {g[2]}/{g[3]} equals console count {passed}/{failed}")
    if "BOOTED" in markers:
        print(f"# booted to /init at {markers['BOOTED'].split()[2]} s guest time")

    qemu_err.seek(0)
    err = qemu_err.read().strip()
    if err and (rc != 0 or timed_out):
        print("# qemu stderr:\n" + "\n".join("#   " + l for l in err.splitlines()))

    shipped = split_channel(a.channel, a.outdir)
    if shipped:
        print(f"# guest shipped: {' '.join(shipped)} (in {a.outdir})")

    if a.checker and "DONE" in markers:
        r = subprocess.run([sys.executable, a.checker, a.outdir], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        for line in r.stdout.splitlines():
            print(line, flush=True)
            console.write(f"<checker> {line}\n")
            m = RESULT_RE.match(line)
            if m:
                passed, failed = (passed + 1, failed) if m.group(1) == "ok" else (passed, failed + 1)
        if r.returncode != 0 and not any(RESULT_RE.match(l) and l.startswith("not ok")
                                         for l in r.stdout.splitlines()):
            harness_fail.append(f"checker {os.path.basename(a.checker)} exited with {r.returncode}")

    for h in harness_fail:
        print(f"not ok - harness: {h}")
        failed += 1
    print(f"# wall time {time.monotonic() - start:.1f} s")
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
