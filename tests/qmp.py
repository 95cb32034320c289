#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Minimal QMP client used by gmig's end-to-end tests.

  qmp.py migrate SRC.qmp DST.qmp URI [--cap=C...] [--paused-dst]
                 [--converge-after=S]
      live-migrate, print one JSON line per step, exit 0 when QEMU reports
      "completed" and the destination is running (or paused, with
      --paused-dst). --converge-after: raise the downtime limit after S
      seconds of pre-copy so that a migration that does not converge ends.
  qmp.py cmd SOCK COMMAND [JSON-ARGS]
      run one command, print its return value as JSON.
"""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX)
        deadline = time.time() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.f = self.sock.makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP connection closed")
            # A line may carry more than one message (events are
            # asynchronous); take each in turn.
            dec, pos, line = json.JSONDecoder(), 0, line.strip()
            while pos < len(line):
                r, pos = dec.raw_decode(line, pos)
                while pos < len(line) and line[pos].isspace():
                    pos += 1
                if "error" in r:
                    raise RuntimeError(f"{name}: {r['error']}")
                if "return" in r:
                    return r["return"]


def migrate(src_path, dst_path, uri, timeout=240, caps=(), paused_dst=False, converge=None):
    src, dst = Qmp(src_path), Qmp(dst_path)
    print("src-status", json.dumps(src.cmd("query-status")))
    capabilities = [{"capability": c, "state": True} for c in ("events",) + tuple(caps)]
    src.cmd("migrate-set-capabilities", capabilities=capabilities)
    if caps:
        # Some (multifd) must be set before the destination listens: a
        # test starts it with "-incoming defer" and sets them itself.
        have = {c["capability"] for c in dst.cmd("query-migrate-capabilities") if c["state"]}
        if not set(caps) <= have:
            dst.cmd("migrate-set-capabilities", capabilities=capabilities)
    src.cmd("migrate", uri=uri)
    start = time.time()
    deadline = start + timeout
    forced = False
    r = {}
    while time.time() < deadline:
        r = src.cmd("query-migrate")
        if r.get("status") in ("completed", "failed", "cancelled"):
            break
        # What an operator does when pre-copy does not converge: allow a
        # longer downtime, so that QEMU switches over.
        if converge is not None and not forced and time.time() - start > converge:
            src.cmd("migrate-set-parameters", **{"downtime-limit": 100000})
            print("forced switchover after", converge, "s of pre-copy")
            forced = True
        time.sleep(0.25)
    print("migrate", json.dumps(r))
    # The destination switches to running right after the last chunk
    # (unless it was started with -S: then it waits for "cont").
    st = {}
    want = "prelaunch" if paused_dst else "running"
    for _ in range(40):
        st = dst.cmd("query-status")
        if st.get("status") in (want, "paused" if paused_dst else want):
            break
        time.sleep(0.25)
    print("dst-status", json.dumps(st))
    ok = r.get("status") == "completed" and (paused_dst or st.get("status") == "running")
    return 0 if ok else 1


def main(argv):
    if len(argv) >= 4 and argv[0] == "migrate":
        caps = tuple(a[len("--cap="):] for a in argv[4:] if a.startswith("--cap="))
        conv = [float(a[len("--converge-after="):]) for a in argv[4:] if a.startswith("--converge-after=")]
        return migrate(argv[1], argv[2], argv[3], caps=caps, paused_dst="--paused-dst" in argv,
                       converge=conv[0] if conv else None)
    if len(argv) >= 2 and argv[0] == "cmd":
        args = json.loads(argv[3]) if len(argv) > 3 else {}
        if argv[2] == "pmemsave":
            args = {"val": args["val"], "size": args["size"], "filename": args["filename"]}
        print(json.dumps(Qmp(argv[1]).cmd(argv[2], **args)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
