#!/usr/bin/env python3
"""Helpers for the Autobahn suite scripts (run with tests/.venv-autobahn/bin/python).

  harness.py spec fuzzingclient|fuzzingserver SPEC_OUT URL OUTDIR CASES EXCLUDE [AGENT]
  harness.py wait-port PORT SECONDS [PID]     wait until 127.0.0.1:PORT accepts
  harness.py update-reports PORT AGENT        ask a fuzzingserver to write its reports
  harness.py summary REPORT_DIR SPEC AGENT [WSTEST_LOG]
  harness.py count CASES EXCLUDE              print how many cases the patterns select

summary prints a per-group table and, as its last line, `autobahn: N passed, M failed`.
A case passes when its behavior is OK or INFORMATIONAL and its closing handshake
was not FAILED or UNCLEAN. NON-STRICT, FAILED, UNIMPLEMENTED and MISSING cases fail;
with AUTOBAHN_ALLOW_UNIMPLEMENTED=1 UNIMPLEMENTED ones are counted as skipped
(the last line then ends with `, K skipped`); with AUTOBAHN_STRICT_CLOSE=1 the
closing-handshake verdicts WRONG CODE and FAILED BY CLIENT fail a case too
(by default they are listed as warnings, as wstest's report does). Exit status: 0 all passed,
1 some failed, 2 no report / usage error.
"""
import base64
import json
import os
import re
import socket
import struct
import sys
import time
from collections import Counter

BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
CLOSE_FAILURES = ("FAILED", "UNCLEAN")           # fail the case
CLOSE_WARNINGS = ("WRONG CODE", "FAILED BY CLIENT")  # listed, not failures (as in wstest's report)


def split_patterns(s):
    return [p for p in re.split(r"[,\s]+", s) if p]


def cmd_spec(mode, out, url, outdir, cases, exclude, agent="wsflow"):
    spec = {"options": {"failByDrop": False}, "outdir": outdir,
            "cases": split_patterns(cases) or ["*"], "exclude-cases": split_patterns(exclude),
            "exclude-agent-cases": {}}
    if mode == "fuzzingclient":
        spec["servers"] = [{"agent": agent, "url": url}]
    elif mode == "fuzzingserver":
        spec["url"] = url
        spec["interface"] = "127.0.0.1"  # py3port: bind to loopback only
    else:
        raise SystemExit("unknown mode %s" % mode)
    with open(out, "w") as f:
        json.dump(spec, f, indent=2)
    return 0


def cmd_wait_port(port, seconds, pid=None):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        if pid:
            try:
                os.kill(int(pid), 0)
            except OSError:
                return 1  # the process we wait for is gone
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
            return 0
        except OSError:
            time.sleep(0.2)
    return 1


def cmd_update_reports(port, agent, timeout=300.0):
    """GET /updateReports over a minimal WebSocket client; the server writes the
    reports, then sends a close frame, which we answer."""
    port = int(port)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /updateReports?agent=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
           % (agent, port, key))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req.encode())
        buf = b""

        def need(n):
            nonlocal buf
            while len(buf) < n:
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError
                buf += chunk

        try:
            while b"\r\n\r\n" not in buf:
                need(len(buf) + 1)
            head, _, buf = buf.partition(b"\r\n\r\n")
            if b" 101 " not in head.split(b"\r\n")[0]:
                print("update-reports: handshake refused: %r" % head.split(b"\r\n")[0], file=sys.stderr)
                return 1
            while True:
                need(2)
                opcode, n, hdr = buf[0] & 0x0F, buf[1] & 0x7F, 2
                if n == 126:
                    need(4)
                    n, hdr = struct.unpack("!H", buf[2:4])[0], 4
                elif n == 127:
                    need(10)
                    n, hdr = struct.unpack("!Q", buf[2:10])[0], 10
                need(hdr + n)
                payload, buf = buf[hdr:hdr + n], buf[hdr + n:]
                if opcode == 8:
                    mask = os.urandom(4)
                    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:2]))
                    s.sendall(bytes([0x88, 0x80 | len(body)]) + mask + body)
                    return 0
        except EOFError:
            return 0  # server dropped TCP; reports are written before that


def expected_cases(spec_path):
    from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, CaseSetname, CaseBasename
    from autobahntestsuite.caseset import CaseSet
    with open(spec_path) as f:
        spec = json.load(f)
    return CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories).parseSpecCases(spec)


def cmd_count(cases, exclude):
    """Print how many cases the patterns select."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"cases": split_patterns(cases) or ["*"], "exclude-cases": split_patterns(exclude)}, f)
    try:
        print(len(expected_cases(f.name)))
    finally:
        os.unlink(f.name)
    return 0


def case_key(cid):
    return tuple(int(x) for x in cid.split("."))


def shorten(x, n):
    x = " ".join(str(x).split())
    return x if len(x) <= n else x[:n - 3] + "..."


def case_detail(report_dir, entry):
    """(result text, closing handshake text) from the per-case JSON report."""
    try:
        with open(os.path.join(report_dir, entry["reportfile"]), encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError, KeyError):
        return "", ""
    if entry.get("behavior") == "NON-STRICT":  # say what the strict (OK) outcome would have been
        ok = d.get("expected", {}).get("OK")
        text = "got %s, OK needs %s" % (shorten(d.get("received"), 50), shorten(ok, 60))
    elif entry.get("behavior") == "UNIMPLEMENTED":
        text = "permessage-deflate was not negotiated"
    else:
        text = shorten(d.get("result", ""), 110)
    return text, shorten(d.get("resultClose", ""), 80)


def cmd_summary(report_dir, spec_path, agent, log=None):
    allow_unimpl = os.environ.get("AUTOBAHN_ALLOW_UNIMPLEMENTED") == "1"
    close_failures = CLOSE_FAILURES + (CLOSE_WARNINGS if os.environ.get("AUTOBAHN_STRICT_CLOSE") == "1" else ())
    if log and os.path.isfile(log):
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        tb = sum(1 for ln in lines if ln.startswith("Traceback"))
        if tb:
            errs = Counter(ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)[A-Za-z]*: ", ln))
            print("!! wstest logged %d Python traceback(s) (see %s), e.g.:" % (tb, log))
            for msg, n in errs.most_common(3):
                print("   %dx %s" % (n, msg[:150]))
    wanted = expected_cases(spec_path)
    index = os.path.join(report_dir, "index.json")
    results = {}
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            agents = json.load(f)
        results = agents.get(agent, {})
        others = sorted(a for a in agents if a != agent)
        if others:
            print("(report also has agent(s) %s; only %r is judged)" % (", ".join(others), agent))
    if not results:
        print("!! no results for agent %r in %s" % (agent, index))

    groups = {}
    failing, warnings, missing = [], [], []
    npass = nfail = nskip = 0
    for cid in sorted(set(wanted) | set(results), key=case_key):
        g = groups.setdefault(cid.split(".")[0], Counter())
        g["cases"] += 1
        r = results.get(cid)
        if r is None:
            g["MISSING"] += 1
            g["fail"] += 1
            nfail += 1
            missing.append(cid)
            continue
        b = r.get("behavior") if r.get("behavior") in BEHAVIORS else "FAILED"
        bc = r.get("behaviorClose")
        g[b] += 1
        close_bad = bc in close_failures
        if close_bad:
            g["CLOSE"] += 1
        elif bc in CLOSE_WARNINGS:
            warnings.append("%s(%s, code %s)" % (cid, bc, r.get("remoteCloseCode")))
        if b in ("OK", "INFORMATIONAL") and not close_bad:
            g["pass"] += 1
            npass += 1
        elif b == "UNIMPLEMENTED" and allow_unimpl and not close_bad:
            g["skip"] += 1
            nskip += 1
        else:
            g["fail"] += 1
            nfail += 1
            result, rclose = case_detail(report_dir, r)
            failing.append("  %-8s %s, close %s (code %s): %s%s" % (
                cid, r.get("behavior"), bc, r.get("remoteCloseCode"), result,
                (" | close: " + rclose) if close_bad and rclose else ""))

    cols = ["cases", "OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "MISSING", "CLOSE", "pass", "fail"]
    heads = ["cases", "OK", "NSTRICT", "INFO", "UNIMPL", "FAILED", "MISSING", "CLOSE!", "pass", "fail"]
    print("Autobahn summary for agent %r: %d case(s) selected, %d reported" % (agent, len(wanted), len(results)))
    print("  %-6s" % "group" + "".join("%8s" % h for h in heads))
    total = Counter()
    for g in sorted(groups, key=int):
        total.update(groups[g])
        print("  %-6s" % (g + ".*") + "".join("%8d" % groups[g][c] for c in cols))
    print("  %-6s" % "total" + "".join("%8d" % total[c] for c in cols))
    print("  (CLOSE! = closing handshake %s; such cases fail too)" % " or ".join(close_failures))
    if failing:
        print("failing cases (%d):" % len(failing))
        for line in failing[:60]:
            print(line)
        if len(failing) > 60:
            print("  ... %d more, see the HTML report" % (len(failing) - 60))
    if missing:
        print("MISSING cases, no result (peer crashed or hung, or the run was cut short) (%d): %s%s" % (
            len(missing), " ".join(missing[:30]), " ..." if len(missing) > 30 else ""))
    if warnings:
        print("close warnings, not failures (%d): %s" % (len(warnings), " ".join(warnings[:40])))
    if nskip:
        print("UNIMPLEMENTED cases allowed by AUTOBAHN_ALLOW_UNIMPLEMENTED=1: %d" % nskip)
    print("HTML report: %s" % os.path.join(os.path.abspath(report_dir), "index.html"))
    print("autobahn: %d passed, %d failed%s" % (npass, nfail, (", %d skipped" % nskip) if nskip else ""))
    if not results:
        return 2
    return 1 if nfail else 0


def main(argv):
    cmds = {"spec": (cmd_spec, 6, 7), "wait-port": (cmd_wait_port, 2, 3),
            "update-reports": (cmd_update_reports, 2, 2), "summary": (cmd_summary, 3, 4),
            "count": (cmd_count, 2, 2)}
    if len(argv) < 2 or argv[1] not in cmds or not cmds[argv[1]][1] <= len(argv) - 2 <= cmds[argv[1]][2]:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
