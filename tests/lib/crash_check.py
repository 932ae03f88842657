#!/usr/bin/python3
"""tests/lib/crash_check.py - helpers and the final analysis of the crash tests.

Subcommands (all paths absolute):

  manifest STAGE_NEW MANIFEST     append "MESSAGE-ID<TAB>RCPT,RCPT..." for every
                                  spool file staged in STAGE_NEW
  drop STAGE_NEW SPOOL_NEW        rename every staged file into the spool's new/
                                  at once (a big batch appearing together)
  kill-on-store STORE PID SECS    SIGKILL PID as soon as the sink's store gains
                                  a message (right after a final 250)
  kill-on-log LOG REGEX PID SECS  SIGKILL PID as soon as LOG gets a new line
                                  matching REGEX (e.g. right after a 5xx)
  settled QUEUE_JSON              exit 0 when the queue holds nothing but
                                  recipients the sink always refuses with 451
  check MANIFEST STORE SPOOL QUEUE_JSON KILLS SESSIONS INFLIGHT
                                  the final analysis; prints "ok - ..." /
                                  "FAIL - ..." lines, exit 1 on any failure.
                                  KILLS: a file with the sink's store count
                                  at each kill, a line each; SESSIONS: the
                                  engine's connection limit; INFLIGHT: how
                                  many messages the engine holds at most

Duplicates are attributed to kills: a repeated (Message-ID, recipient) is
charged to the kill that ended the run in which its first copy arrived (the
store's N.env numbers are the sink's acceptance order).  A transaction can be
re-sent only if the engine had it and had not recorded its outcome: one per
session in the middle of a transaction, plus finished ones waiting for the
queue manager to record them.  Both are among the messages the engine holds
(INFLIGHT), which is the hard bound per kill; SESSIONS per kill is printed
as the ideal (nothing finished waits to be recorded).

The sink picks --rcpt-tempfail / --rcpt-permfail recipients by FNV-1a 64 of
the lower-cased address modulo 100 (see bench/README.md); TEMPFAIL_PCT and
PERMFAIL_PCT below must match the sink's arguments in crash_kill9.sh.
"""
import bisect
import json
import os
import re
import signal
import sys
import time

TEMPFAIL_PCT = 2
PERMFAIL_PCT = 1


def fnv1a64(data):
    """FNV-1a 64, as bench/sink.c computes it."""
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def fate(addr):
    """What the sink does with a recipient: 'temp', 'perm' or 'ok'."""
    h = fnv1a64(addr.lower().encode()) % 100
    if h < TEMPFAIL_PCT:
        return "temp"
    if h < TEMPFAIL_PCT + PERMFAIL_PCT:
        return "perm"
    return "ok"


MSGID_RE = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.I | re.M)


def message_id(head):
    """The Message-ID in the first bytes of a message, or None."""
    m = MSGID_RE.search(head)
    return m.group(1).decode("ascii", "replace") if m else None


FINAL_RE = re.compile(rb"^Final-Recipient:\s*rfc822;\s*(\S+)", re.I | re.M)


def dsn_keys(path):
    """A bounce (multipart/report) at the sink: its (original Message-ID,
    failed recipient) pairs, from the returned headers and the
    Final-Recipient fields; None if the message is not a DSN."""
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    head = data.split(b"\n\n", 1)[0]
    if not re.search(rb"report-type=\"?delivery-status", head, re.I):
        return None
    ids = MSGID_RE.findall(data)
    orig = ids[1].decode("ascii", "replace") if len(ids) > 1 else None
    return [(orig, a.decode("ascii", "replace").lower()) for a in FINAL_RE.findall(data)]


def cmd_manifest(stage, out):
    """Record what every staged spool file promises: its id and recipients."""
    with open(out, "a") as f:
        for name in sorted(os.listdir(stage)):
            with open(os.path.join(stage, name), "rb") as g:
                head = g.read(65536)
            env, _, body = head.partition(b"\n\n")
            rcpts = re.findall(rb"^RCPT TO:<([^>]*)>", env, re.M)
            mid = message_id(body)
            if mid is None or not rcpts:
                print("manifest: %s: no Message-ID or recipient" % name)
                return 1
            f.write("%s\t%s\n" % (mid, ",".join(r.decode() for r in rcpts)))
    return 0


def cmd_drop(stage, new):
    """Rename all staged files into new/ as fast as possible."""
    names = os.listdir(stage)
    for name in names:
        os.rename(os.path.join(stage, name), os.path.join(new, name))
    return 0


def store_count(store):
    """Messages the sink has stored so far (complete ones only)."""
    try:
        return sum(1 for e in os.scandir(store) if e.name.endswith(".env")
                   and not e.name.startswith("."))
    except FileNotFoundError:
        return 0


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def cmd_kill_on_store(store, pid, secs):
    """SIGKILL the engine the moment one more message lands at the sink."""
    start = store_count(store)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if store_count(store) > start:
            kill(pid)
            print("killed after store grew from %d" % start)
            return 0
        time.sleep(0.0005)
    kill(pid)
    print("store did not grow in %ss; killed anyway" % secs)
    return 0


def cmd_kill_on_log(log, regex, pid, secs):
    """SIGKILL the engine the moment the log gets a matching line."""
    rx = re.compile(regex)
    end = time.monotonic() + secs
    with open(log, "r", errors="replace") as f:
        f.seek(0, os.SEEK_END)
        buf = ""
        while time.monotonic() < end:
            chunk = f.read()
            if chunk:
                buf += chunk
                lines = buf.split("\n")
                buf = lines.pop()
                if any(rx.search(line) for line in lines):
                    kill(pid)
                    print("killed after a line matching %s" % regex)
                    return 0
            else:
                time.sleep(0.0005)
    kill(pid)
    print("no line matching %s in %ss; killed anyway" % (regex, secs))
    return 0


def load_queue(path):
    with open(path) as f:
        return json.load(f)


def unsettled(q):
    """Recipients still waiting that the sink would eventually accept."""
    bad = []
    for m in q.get("messages", []):
        if m.get("queue") != "queued":
            bad.append("%s in new/" % m.get("id"))
            continue
        for r in m.get("recipients", []):
            st = r.get("status")
            if st in ("pending", "deferred") and fate(r["address"]) != "temp":
                bad.append("%s %s %s" % (m["id"], r["address"], st))
    return bad


def cmd_settled(path):
    try:
        q = load_queue(path)
    except (OSError, ValueError):
        return 1
    return 0 if not unsettled(q) else 1


class Checker:
    def __init__(self):
        self.failed = 0

    def check(self, ok, desc, detail=None):
        if ok:
            print("ok - %s" % desc)
        else:
            self.failed += 1
            print("FAIL - %s" % desc)
            if detail:
                for d in detail[:20]:
                    print("    %s" % d)
                if len(detail) > 20:
                    print("    ... %d more" % (len(detail) - 20))


def cmd_check(manifest, store, spool, queue_json, kills_file, sessions, inflight):
    c = Checker()
    with open(kills_file) as f:
        kill_at = [int(l) for l in f if l.strip()]
    kills = len(kill_at)
    expect = {}                 # Message-ID -> list of recipients
    with open(manifest) as f:
        for line in f:
            mid, rcpts = line.rstrip("\n").split("\t")
            expect[mid] = rcpts.split(",")

    # Arrivals at the sink, in store order (N.env / N.eml, N increasing).
    arrivals = []               # (n, Message-ID, set of rcpts)
    dsns = {}                   # (original Message-ID, rcpt) -> DSNs
    ndsn = 0
    for e in os.scandir(store):
        if e.name.startswith(".") or not e.name.endswith(".env"):
            continue
        n = e.name[:-4]
        with open(e.path) as f:
            rcpts = {l[5:].strip().lower() for l in f if l.startswith("rcpt=")}
        with open(os.path.join(store, n + ".eml"), "rb") as f:
            mid = message_id(f.read(8192))
        keys = dsn_keys(os.path.join(store, n + ".eml"))
        if keys is not None:
            ndsn += 1
            for k in keys:
                dsns[k] = dsns.get(k, 0) + 1
            continue
        arrivals.append((int(n) if n.isdigit() else 0, mid, rcpts))
    arrivals.sort()

    got = {}                    # (Message-ID, rcpt) -> copies
    first = {}                  # (Message-ID, rcpt) -> N of its first copy
    dup_tx = 0                  # transactions that repeated an arrived pair
    per_kill = [0] * (kills + 1)  # index kills: after the last kill
    foreign = 0
    for n, mid, rcpts in arrivals:
        if mid not in expect:
            foreign += 1        # e.g. a DSN from the engine: not ours to count
            continue
        orig = None
        for r in rcpts:
            k = (mid, r)
            if k in got:
                orig = first[k] if orig is None else min(orig, first[k])
            else:
                first[k] = n
            got[k] = got.get(k, 0) + 1
        if orig is not None:
            dup_tx += 1
            per_kill[bisect.bisect_left(kill_at, orig)] += 1
    dup_pairs = sum(v - 1 for v in got.values())

    missing, wrong, nodsn, baddsn = [], [], [], []
    n_ok = n_temp = n_perm = 0
    for mid, rcpts in expect.items():
        for r in rcpts:
            fa = fate(r)
            k = (mid, r.lower())
            if fa == "ok":
                n_ok += 1
                if k not in got:
                    missing.append("%s %s" % (mid, r))
            else:
                n_temp += fa == "temp"
                n_perm += fa == "perm"
                if fa == "perm" and k not in dsns:
                    nodsn.append("%s %s" % (mid, r))
                if k in got:
                    wrong.append("%s %s (%s) arrived" % (mid, r, fa))
    for (mid, r) in dsns:
        if mid not in expect or fate(r) != "perm":
            baddsn.append("%s %s" % (mid, r))
    dsn_dups = sum(v - 1 for v in dsns.values())
    print("# %d messages, %d recipients to deliver, %d always 451, %d always 550; "
          "%d arrivals (%d not ours), %d bounces (DSN), %d kills" % (len(expect), n_ok,
          n_temp, n_perm, len(arrivals), foreign, ndsn, kills))
    print("# duplicates: %d transactions, %d (message, recipient) pairs; "
          "%d sessions x %d kills = %d" % (dup_tx, dup_pairs, sessions, kills,
          sessions * kills))
    print("# duplicate transactions charged to each kill: %s (after the last: %d)"
          % (" ".join(str(x) for x in per_kill[:kills]), per_kill[kills]))
    c.check(not missing, "every deliverable recipient of every message arrived "
            "(%d)" % n_ok, missing)
    c.check(not wrong, "no refused recipient arrived", wrong)
    c.check(per_kill[kills] == 0, "no duplicate without a kill")
    if ndsn == 0:
        print("# no bounce (DSN) arrived: this engine does not send them")
    else:
        c.check(not nodsn, "every always-550 recipient was bounced to the sender "
                "(%d)" % n_perm, nodsn)
        c.check(not baddsn, "no bounce for a recipient that was not refused", baddsn)
        c.check(dsn_dups <= inflight * kills, "duplicate bounces (%d) within "
                "%d in flight x %d kills" % (dsn_dups, inflight, kills))
        c.check(foreign == 0, "every arrival is a message of the test or a bounce")
    over = ["kill %d: %d" % (i + 1, x) for i, x in enumerate(per_kill[:kills])
            if x > inflight]
    c.check(not over, "duplicates per kill (max %d) within the messages the "
            "engine holds in flight (%d)" % (max(per_kill), inflight), over)

    q = load_queue(queue_json)
    bad = unsettled(q)
    c.check(not bad, "the queue holds only recipients the sink always defers", bad)
    held = []
    temp_left = 0
    for m in q.get("messages", []):
        rs = m.get("recipients", [])
        if not any(r.get("status") in ("pending", "deferred") for r in rs):
            held.append("%s: every recipient final, still queued" % m.get("id"))
        temp_left += sum(1 for r in rs if r.get("status") == "deferred")
        if m.get("error"):
            held.append("%s: %s" % (m.get("id"), m.get("error")))
    c.check(not held, "msg/ holds only messages with deferred recipients "
            "(%d messages, %d deferred recipients)" % (len(q.get("messages", [])),
            temp_left), held)
    c.check(temp_left == n_temp, "every always-451 recipient is still deferred "
            "(%d of %d)" % (temp_left, n_temp))

    leftovers = []
    for sub in ("new", "corrupt"):
        d = os.path.join(spool, sub)
        if os.path.isdir(d):
            leftovers += ["%s/%s" % (sub, n) for n in os.listdir(d)]
    c.check(not leftovers, "nothing in new/ or corrupt/", leftovers)
    # A writer killed before its rename (a bounce being written) leaves its
    # file in tmp/: nobody reads it, the bounce is made again after the
    # restart.  At most one per kill.
    tmps = os.listdir(os.path.join(spool, "tmp"))
    c.check(len(tmps) <= kills, "tmp/ holds at most one abandoned file per kill "
            "(%d)" % len(tmps), tmps)
    ids = {m.get("id") for m in q.get("messages", [])}
    orphans = [n for n in os.listdir(os.path.join(spool, "state"))
               if not n.startswith(".") and n not in ids]
    c.check(not orphans, "no state file without its message", orphans)
    stale = [n for n in os.listdir(os.path.join(spool, "state")) if n.startswith(".")]
    if stale:
        print("# %d temporary state files left by kills (removed after a minute by "
              "the next start): %s" % (len(stale), " ".join(stale[:5])))
    return 1 if c.failed else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, a = argv[1], argv[2:]
    if cmd == "manifest":
        return cmd_manifest(*a)
    if cmd == "drop":
        return cmd_drop(*a)
    if cmd == "kill-on-store":
        return cmd_kill_on_store(a[0], int(a[1]), float(a[2]))
    if cmd == "kill-on-log":
        return cmd_kill_on_log(a[0], a[1], int(a[2]), float(a[3]))
    if cmd == "settled":
        return cmd_settled(a[0])
    if cmd == "check":
        return cmd_check(a[0], a[1], a[2], a[3], a[4], int(a[5]), int(a[6]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
