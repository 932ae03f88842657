#!/usr/bin/env bash
# demo.sh BUILD_DIR - a small end-to-end run: fill a spool, drain it with
# the engine into the bundled STARTTLS sink, print what came through.
#
#   bench/demo.sh build
#
# Steps: test certificates (tests/lib/mkcerts.sh), a sink on 127.0.0.1
# port 0 with the CA-signed server certificate (STARTTLS required, --hash),
# `sealpost-bench fill` of DEMO_MESSAGES messages with DEMO_SIZE-byte PDF
# attachments for demo.test, then `sealpost run --drain` routed to the sink
# (SEALPOST_ROUTES="*=localhost:PORT", verified against the test CA), timed.
# The table comes from the sink's JSON summary.  Everything lives in a
# temporary folder that is removed at the end (DEMO_KEEP=1 keeps it).
#
# Knobs (environment): DEMO_MESSAGES [2000], DEMO_SIZE [60000],
# DEMO_SINK_THREADS [1], DEMO_TIMEOUT seconds for the drain [600],
# DEMO_ROUTE_HOST [localhost] (127.0.0.1 also matches the test certificate).
set -eu

build=$(cd "${1:?usage: demo.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
n=${DEMO_MESSAGES:-2000}
size=${DEMO_SIZE:-60000}
threads=${DEMO_SINK_THREADS:-1}
limit=${DEMO_TIMEOUT:-600}
py=/usr/bin/python3
[ -x "$py" ] || py=python3

for f in "$build/sealpost" "$build/sealpost-bench"; do
	[ -x "$f" ] || { echo "demo: $f is not built (cmake --build $build)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-demo.XXXXXX")
sink_pid=
cleanup() {
	[ -n "$sink_pid" ] && kill -TERM "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
	if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

bash "$src/tests/lib/mkcerts.sh" "$work/certs"

"$build/sealpost-bench" sink --listen 127.0.0.1:0 --port-file "$work/port" \
	--cert "$work/certs/server.pem" --key "$work/certs/server.key" --hash \
	-j "$threads" --json "$work/sink.json" --duration $((limit + 60)) \
	>"$work/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 100); do
	[ -s "$work/port" ] && break
	sleep 0.05
done
[ -s "$work/port" ] || { echo "demo: the sink did not start:" >&2; cat "$work/sink.log" >&2; exit 1; }
port=$(cat "$work/port")

"$build/sealpost-bench" fill --spool "$work/spool" -n "$n" --size "$size" \
	--domains 1 --domain-fmt demo.test

echo "demo: sealpost run --drain -> ${DEMO_ROUTE_HOST:-localhost}:$port (log in $work/engine.log)"
t0=$(date +%s.%N)
set +e
SEALPOST_SPOOL="$work/spool" SEALPOST_ROUTES="*=${DEMO_ROUTE_HOST:-localhost}:$port" \
	SEALPOST_TLS_CA_FILE="$work/certs/ca.pem" \
	timeout "$limit" "$build/sealpost" run --drain >"$work/engine.log" 2>&1
rc=$?
set -e
t1=$(date +%s.%N)

kill -TERM "$sink_pid"
wait "$sink_pid" || true
sink_pid=

"$py" - "$work/sink.json" "$t0" "$t1" "$n" "$rc" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
t0, t1, want, rc = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
el = t1 - t0
m = j["messages"]
rows = [
    ("messages filled", "%d" % want),
    ("messages received", "%d" % m),
    ("engine exit code", "%d%s" % (rc, " (timeout)" if rc == 124 else "")),
    ("elapsed (drain)", "%.2f s" % el),
    ("throughput", "%.0f msgs/s, %.1f MB/s" % (m / el if el > 0 else 0,
                                              j["bytes"] / el / 1e6 if el > 0 else 0)),
    ("connections", "%d (TLSv1.3 %d, TLSv1.2 %d, resumed %d)" % (
        j["connections"], j["tls"]["TLSv1.3"], j["tls"]["TLSv1.2"], j["resumed"])),
    ("latency (fill to sink)", "p50 %d ms, p90 %d ms, p99 %d ms, max %d ms" % (
        j["latency_ms"]["p50"], j["latency_ms"]["p90"], j["latency_ms"]["p99"],
        j["latency_ms"]["max"])),
    ("plaintext messages", "%d" % j["plaintext_messages"]),
    ("sink errors", "%d" % j["errors"]),
]
w = max(len(r[0]) for r in rows)
for k, v in rows:
    print("%-*s  %s" % (w, k, v))
sys.exit(0 if m == want and rc == 0 else 1)
EOF
