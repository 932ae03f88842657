#!/usr/bin/env bash
# bigqueue.sh BUILD_DIR - the large-queue benchmark of issue 6 (not a test,
# not run by ctest or CI): does a queue of 1,000,000 deferred messages slow
# anything down?
#
#   bench/bigqueue.sh build-rel            # about 6 minutes, 7.8 GB of disk
#                                          # (2,000,000 files of one 4 KB block)
#   BIGQ_N=100000 bench/bigqueue.sh build  # a smaller run
#
# What it does, in a private folder under $BIGQ_DIR (default /tmp), removed
# at the end (also on ^C):
#   1. compiles the generator below with cc, makes the test certificates,
#      starts one STARTTLS sink (sealpost-bench sink) that every route
#      (SEALPOST_ROUTES="*=localhost:PORT") leads to;
#   2. baseline: `sealpost run` on an empty spool, measured as in 4;
#   3. writes BIGQ_N messages straight into msg/ and state/ (queue/README.md
#      formats: ~1 KB, one recipient, deferred, attempts 1, next attempt 3 to
#      4 hours ahead), timed;
#   4. `sealpost run` on that spool: one message dropped into new/ at start,
#      +0.5 s and +1 s, time until the sink stores each; start-up loading
#      time and CPU (until the engine logs event=recovered); VmRSS and VmHWM
#      once loaded; pickup latency of 50 messages dropped one by one
#      (rename into new/ until the file has left new/); CPU (utime+stime)
#      over BIGQ_IDLE seconds of idleness; then that every message dropped
#      was delivered, once.  Also one drop every 0.25 s while loading.
# It prints one table (empty vs loaded).  Knobs: BIGQ_N [1000000],
# BIGQ_DIR [/tmp], BIGQ_IDLE [30] s, BIGQ_KEEP=1 keeps the folder,
# BIGQ_METRICS=1 enables the metrics listener (its queue gauges),
# BIGQ_REUSE=SPOOL measures an existing spool (not removed) instead of
# writing one, BIGQ_COLD=1 drops the page cache before the loaded start (needs root;
# a restart after a reboot reads every state file from disk).
set -eu

build=$(cd "${1:?usage: bigqueue.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
n=${BIGQ_N:-1000000}
idle=${BIGQ_IDLE:-30}
py=/usr/bin/python3
for f in "$build/sealpost" "$build/sealpost-bench"; do
	[ -x "$f" ] || { echo "bigqueue: $f is not built" >&2; exit 1; }
done
[ -x "$py" ] || { echo "bigqueue: needs $py" >&2; exit 1; }

w=$(mktemp -d "${BIGQ_DIR:-/tmp}/bigqueue.XXXXXX")
sink_pid=
cleanup() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
	if [ "${BIGQ_KEEP:-0}" = 1 ]; then
		echo "bigqueue: kept $w"
	else
		echo "bigqueue: removing $w"
		rm -rf "$w"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The generator: fast enough for a million files (two processes, no fsync).
cat >"$w/mkqueue.c" <<'EOF'
/*
 * mkqueue SPOOL N [NEXT_ATTEMPT_MIN [SPREAD [PROCS]]] - write N deferred
 * messages straight into SPOOL/msg and SPOOL/state (queue/README.md
 * formats), as if the engine had claimed each and had one 451.  Ids: 13 hex
 * digits of microseconds (an hour ago plus the index: unique, sorted), 6 of
 * a fake pid, 4 of a counter.  next_attempt in [MIN, MIN + SPREAD).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int
put(int dirfd, const char *name, const char *buf, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	ssize_t w;

	if (fd == -1)
		return -1;
	w = write(fd, buf, len);
	if (close(fd) == -1 || w != (ssize_t)len)
		return -1;
	return 0;
}

static int
make_range(int msgfd, int statefd, long long from, long long to, int64_t t0,
	   int64_t next_min, long long spread)
{
	static const char pad[] =
	    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
	    "tempor incididunt ut labore et dolore magna aliqua.\n";
	char msg[2048], st[1024], id[24];
	int64_t arrival = t0 - 3600;

	for (long long i = from; i < to; i++) {
		uint64_t us = (uint64_t)arrival * 1000000u + (uint64_t)i;
		int64_t next = next_min + (spread > 0 ? (int64_t)((i * 7919) % spread) : 0);
		size_t n;

		snprintf(id, sizeof(id), "%013" PRIx64 "%06x%04x", us, 0xb16u,
		    (unsigned)(i & 0xffff));
		n = (size_t)snprintf(msg, sizeof(msg),
		    "MAIL FROM:<fax%lld@fax.test>\nRCPT TO:<user%lld@deferred.test>\n\n"
		    "From: <fax%lld@fax.test>\nTo: <user%lld@deferred.test>\n"
		    "Subject: fax %lld\nMessage-ID: <%s@bigq.test>\n"
		    "Date: Thu, 1 Jan 2026 00:00:00 +0000\n\n", i, i, i, i, i, id);
		for (int k = 0; k < 6 && n + sizeof(pad) < sizeof(msg); k++) {
			memcpy(msg + n, pad, sizeof(pad) - 1);
			n += sizeof(pad) - 1;
		}
		if (put(msgfd, id, msg, n) == -1) {
			fprintf(stderr, "mkqueue: msg/%s: %s\n", id, strerror(errno));
			return -1;
		}
		n = (size_t)snprintf(st, sizeof(st),
		    "sealpost-state 1\narrival %lld\nwarned 0\nnrcpt 1\n"
		    "rcpt 0 deferred 1 %lld 0 =4.3.0 =mx.deferred.test[192.0.2.1]:25 "
		    "=451%%204.3.0%%20try%%20again%%20later =user%lld@deferred.test\nend\n",
		    (long long)arrival, (long long)next, i);
		if (put(statefd, id, st, n) == -1) {
			fprintf(stderr, "mkqueue: state/%s: %s\n", id, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dirs[] = { "tmp", "new", "msg", "state", "corrupt" };
	char path[4096];
	long long n, spread = 3600;
	int64_t t0 = (int64_t)time(NULL), next_min;
	int procs = 2, msgfd, statefd, rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: mkqueue SPOOL N [NEXT_ATTEMPT_MIN [SPREAD [PROCS]]]\n");
		return 2;
	}
	n = atoll(argv[2]);
	next_min = argc > 3 && atoll(argv[3]) > 0 ? atoll(argv[3]) : t0 + 3 * 3600;
	if (argc > 4)
		spread = atoll(argv[4]);
	if (argc > 5)
		procs = atoi(argv[5]);
	if (n < 0 || n > 100000000 || procs < 1 || procs > 64 || spread < 0) {
		fprintf(stderr, "mkqueue: bad arguments\n");
		return 2;
	}
	mkdir(argv[1], 0750);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", argv[1], dirs[i]);
		if (mkdir(path, 0750) == -1 && errno != EEXIST) {
			fprintf(stderr, "mkqueue: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	snprintf(path, sizeof(path), "%s/msg", argv[1]);
	msgfd = open(path, O_RDONLY | O_DIRECTORY);
	snprintf(path, sizeof(path), "%s/state", argv[1]);
	statefd = open(path, O_RDONLY | O_DIRECTORY);
	if (msgfd == -1 || statefd == -1) {
		fprintf(stderr, "mkqueue: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (int p = 0; p < procs; p++) {
		pid_t pid = fork();

		if (pid == -1) {
			fprintf(stderr, "mkqueue: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid == 0)
			_exit(make_range(msgfd, statefd, n * p / procs, n * (p + 1) / procs,
			    t0, next_min, spread) == 0 ? 0 : 1);
	}
	for (int p = 0; p < procs; p++) {
		int status;

		if (wait(&status) == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = 1;
	}
	return rc;
}
EOF

# The measurement of one engine run (timing needs better than a shell loop).
cat >"$w/measure.py" <<'EOF'
import json, os, signal, subprocess, sys, time

sp_bin, spool, store, label, idle = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
log_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine-%s.log" % label)
tick = os.sysconf("SC_CLK_TCK")
res = {"label": label}

def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def mem(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) // 1024
    return out

seq = [0]
def drop(rcpt):
    seq[0] += 1
    name = "%s-%d" % (label, seq[0])
    body = ("MAIL FROM:<fax@fax.test>\nRCPT TO:<%s>\n\nSubject: %s\n\nhello\n" % (rcpt, name)).encode()
    tmp = os.path.join(spool, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(body)
    os.rename(tmp, os.path.join(spool, "new", name))
    return name, time.monotonic()

def delivered_rcpts(counts=None):
    got = set()
    for e in os.listdir(store):
        if e.endswith(".env") and not e.startswith("."):
            try:
                with open(os.path.join(store, e)) as f:
                    for line in f:
                        if line.startswith("rcpt="):
                            r = line[5:].strip()
                            got.add(r)
                            if counts is not None:
                                counts[r] = counts.get(r, 0) + 1
            except OSError:
                pass
    return got

def log_has(text):
    try:
        with open(log_path) as f:
            for line in f:
                if text in line:
                    return line
    except OSError:
        pass
    return None

log = open(log_path, "w")
t0 = time.monotonic()
eng = subprocess.Popen([sp_bin, "run"], stdout=log, stderr=log)
pid = eng.pid
firsts = {}
pending = [("%s-first%d@new.test" % (label, k), t0 + 0.5 * k) for k in range(3)]
dropped = {}
loaded = None
during = []          # [name, drop time, claim latency or None] while loading
next_during = t0 + 1.5
deadline = t0 + 900
# Phase 1: until the three first messages are delivered and loading is over.
while time.monotonic() < deadline:
    now = time.monotonic()
    for rcpt, at in pending:
        if rcpt not in dropped and now >= at:
            dropped[rcpt] = drop(rcpt)[1]
    got = delivered_rcpts() if len(firsts) < len(pending) else set()
    for rcpt in dropped:
        if rcpt in got and rcpt not in firsts:
            firsts[rcpt] = time.monotonic()
    if loaded is None and now >= next_during:
        name, t = drop("%s-load%d@new.test" % (label, len(during)))
        during.append([name, t, None])
        next_during = now + 0.25
    for d in during:
        if d[2] is None and not os.path.exists(os.path.join(spool, "new", d[0])):
            d[2] = (time.monotonic() - d[1]) * 1000
    if loaded is None and log_has("event=recovered") is not None:
        loaded = time.monotonic()
        res["load_cpu_s"] = round(cpu(pid), 2)
    if eng.poll() is not None:
        sys.exit("engine exited early; see " + log_path)
    if loaded is not None and len(firsts) == len(pending):
        break
    time.sleep(0.005)
for k, (rcpt, at) in enumerate(pending):
    # from engine start (first) / from the drop (later ones)
    if rcpt in firsts:
        res["first%d_s" % k] = round(firsts[rcpt] - (t0 if k == 0 else dropped[rcpt]), 3)
res["load_s"] = round(loaded - t0, 2) if loaded else None
lat = sorted(d[2] for d in during if d[2] is not None)
if lat:
    res["loading_pickup_n"] = len(lat)
    res["loading_pickup_ms_p50"] = round(lat[len(lat) // 2], 1)
    res["loading_pickup_ms_max"] = round(lat[-1], 1)
line = log_has("event=recovered")
res["recovered_line"] = line.strip() if line else None
time.sleep(1)
res.update(mem(pid))
# Phase 2: pickup latency, 50 drops one by one.
lat = []
for k in range(50):
    name, t = drop("%s-pick%d@new.test" % (label, k))
    path = os.path.join(spool, "new", name)
    while os.path.exists(path) and time.monotonic() - t < 10:
        time.sleep(0.0002)
    lat.append((time.monotonic() - t) * 1000)
    time.sleep(0.05)
lat.sort()
res["pickup_ms_p50"] = round(lat[len(lat) // 2], 2)
res["pickup_ms_p90"] = round(lat[int(len(lat) * 0.9)], 2)
res["pickup_ms_max"] = round(lat[-1], 2)
# Phase 3: idle CPU once the pickup messages are delivered.
t = time.monotonic()
while len([r for r in delivered_rcpts() if r.startswith(label + "-pick")]) < 50 and time.monotonic() - t < 30:
    time.sleep(0.1)
time.sleep(2)
c0, w0 = cpu(pid), time.monotonic()
time.sleep(idle)
res["idle_cpu_pct"] = round(100 * (cpu(pid) - c0) / (time.monotonic() - w0), 3)
res.update({k + "_end": v for k, v in mem(pid).items()})
eng.send_signal(signal.SIGTERM)
try:
    eng.wait(60)
except subprocess.TimeoutExpired:
    eng.kill()
res["exit"] = eng.returncode
# Every message this run dropped is delivered exactly once.
counts = {}
delivered_rcpts(counts)
mine = {r: c for r, c in counts.items() if r.startswith(label + "-")}
res["dropped"] = seq[0]
res["delivered"] = len(mine)
res["duplicates"] = sum(1 for c in mine.values() if c > 1)
print(json.dumps(res))
EOF

echo "bigqueue: work folder $w"
cc -O2 -o "$w/mkqueue" "$w/mkqueue.c"
bash "$src/tests/lib/mkcerts.sh" "$w/certs" >/dev/null
mkdir -p "$w/store"
"$build/sealpost-bench" sink --listen 127.0.0.1:0 --port-file "$w/sink.port" \
	--cert "$w/certs/server.pem" --key "$w/certs/server.key" --store "$w/store" \
	--duration 3600 --quiet >"$w/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 100); do [ -s "$w/sink.port" ] && break; sleep 0.05; done
[ -s "$w/sink.port" ] || { echo "bigqueue: sink did not start" >&2; cat "$w/sink.log"; exit 1; }

export SEALPOST_ROUTES="*=localhost:$(cat "$w/sink.port")"
export SEALPOST_TLS_CA_FILE=$w/certs/ca.pem SEALPOST_HELO_NAME=client.sealpost.test
export SEALPOST_WORKERS=${SEALPOST_WORKERS:-2} SEALPOST_LOG_LEVEL=info
unset SEALPOST_TLS_POLICY SEALPOST_DNS_SERVERS SEALPOST_METRICS_LISTEN
if [ "${BIGQ_METRICS:-0}" = 1 ]; then
	# the sealpost_queue_* gauges are computed once a second from the heap
	port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export SEALPOST_METRICS_LISTEN=127.0.0.1:$port
fi

echo "bigqueue: baseline, empty spool"
mkdir -p "$w/empty/spool/tmp" "$w/empty/spool/new"
SEALPOST_SPOOL=$w/empty/spool timeout 1200 "$py" "$w/measure.py" "$build/sealpost" \
	"$w/empty/spool" "$w/store" empty "$idle" >"$w/empty.json"

g0=$(date +%s.%N)
big=$w/big/spool
if [ -n "${BIGQ_REUSE:-}" ]; then
	big=$(cd "$BIGQ_REUSE" && pwd)
	n=$(find "$big/msg" -maxdepth 1 -type f | wc -l)
	echo "bigqueue: reusing $big ($n messages; left in place)"
else
	echo "bigqueue: writing $n deferred messages"
	mkdir -p "$w/big"
	"$w/mkqueue" "$big" "$n" 0 3600 2
fi
g1=$(date +%s.%N)
du -sh "$big" | sed 's/^/bigqueue: spool size /'
if [ "${BIGQ_COLD:-0}" = 1 ]; then
	sync
	echo 3 >/proc/sys/vm/drop_caches || echo "bigqueue: cannot drop the page cache" >&2
fi

echo "bigqueue: loaded spool"
SEALPOST_SPOOL=$big timeout 1800 "$py" "$w/measure.py" "$build/sealpost" \
	"$big" "$w/store" big "$idle" >"$w/big.json"
left=$(find "$big/msg" -maxdepth 1 -type f | wc -l)

"$py" - "$w/empty.json" "$w/big.json" "$n" "$g0" "$g1" "$left" "$idle" <<'EOF'
import json, sys
e, b = (json.load(open(p)) for p in sys.argv[1:3])
n, g0, g1, left, idle = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
print()
print("queue of %d deferred messages written (or found) in %.1f s; %d still queued after the run" % (n, g1 - g0, left))
print(b.get("recovered_line") or "(no event=recovered line)")
print()
rows = [
    ("start-up loading (s)", "load_s", ""),
    ("start-up loading CPU (s)", "load_cpu_s", ""),
    ("VmRSS once loaded (MB)", "VmRSS", "<= 512"),
    ("VmHWM once loaded (MB)", "VmHWM", "<= 512"),
    ("first delivery, dropped at start (s)", "first0_s", "<= 2"),
    ("delivery of drop at +0.5 s (s after drop)", "first1_s", ""),
    ("delivery of drop at +1 s (s after drop)", "first2_s", ""),
    ("pickup while loading, n", "loading_pickup_n", ""),
    ("pickup while loading p50 (ms, 5 ms poll)", "loading_pickup_ms_p50", ""),
    ("pickup while loading max (ms, 5 ms poll)", "loading_pickup_ms_max", ""),
    ("pickup p50 (ms)", "pickup_ms_p50", "unchanged"),
    ("pickup p90 (ms)", "pickup_ms_p90", "unchanged"),
    ("pickup max (ms)", "pickup_ms_max", "unchanged"),
    ("idle CPU over %s s (%%)" % idle, "idle_cpu_pct", "~0"),
    ("VmRSS at the end (MB)", "VmRSS_end", ""),
    ("messages dropped into new/", "dropped", ""),
    ("... delivered", "delivered", "all"),
    ("... delivered more than once", "duplicates", "0"),
    ("engine exit code", "exit", "0"),
]
print("| %-42s | %10s | %10s | %-9s |" % ("", "empty", "%d" % n, "target"))
print("|%s|%s|%s|%s|" % ("-" * 44, "-" * 12, "-" * 12, "-" * 11))
for name, key, target in rows:
    print("| %-42s | %10s | %10s | %-9s |" % (name, e.get(key, "-"), b.get(key, "-"), target))
EOF
