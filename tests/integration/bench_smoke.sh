#!/usr/bin/env bash
# bench_smoke.sh - a short `sealpost-bench run` end to end (certificates,
# sink, fill, `sealpost run --drain`, report): 300 messages of 20 KB.
# Checks the JSON report: 300 messages received, received + deferred +
# bounced == 300 recipients, the engine exited 0, every message carried a
# latency, a handshake happened, and the run's exit code says success.
# Then a short run at a steady offered rate (--rate), and a run whose
# engine is missing, which must be refused cleanly.
#
# Env: SEALPOST_BUILD (folder holding sealpost and sealpost-bench), SEALPOST_SRC.
set -u

src=${SEALPOST_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=$(cd "${SEALPOST_BUILD:-$src/build}" && pwd)
bench=$build/sealpost-bench
py=/usr/bin/python3
pass=0
fail=0

for f in "$bench" "$build/sealpost"; do
	[ -x "$f" ] || { echo "bench_smoke: $f not built" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

# check DESC CMD... - one assertion
check() {
	local desc=$1
	shift
	if "$@"; then
		pass=$((pass + 1))
		echo "ok   $desc"
	else
		fail=$((fail + 1))
		echo "FAIL $desc"
	fi
}

# jget EXPR - a value from the report, through python's json
jget() {
	"$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$work/report.json" "$1"
}

SEALPOST_SRC=$src TMPDIR=$work timeout 300 "$bench" run -n 300 --size 20000 --workers 2 \
	--json "$work/report.json" --svg "$work/chart.svg" >"$work/out.txt" 2>"$work/err.txt"
rc=$?
cat "$work/out.txt"
check "run exits 0" [ "$rc" -eq 0 ]
check "report is JSON" "$py" -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/report.json"
check "messages == 300" [ "$(jget 'j["messages"]')" = 300 ]
check "received + deferred + bounced == 300" \
	[ "$(jget 'j["received"] + j["deferred"] + j["bounced"]')" = 300 ]
check "counts_add_up is true" [ "$(jget 'j["counts_add_up"]')" = True ]
check "engine log has 300 sent lines" [ "$(jget 'j["sent_logged"]')" = 300 ]
check "engine exit 0" [ "$(jget 'j["engine"]["exit"]')" = 0 ]
check "every message has a latency" [ "$(jget 'j["latency_ms"]["count"]')" = 300 ]
check "p50 <= p99 <= max" [ "$(jget 'j["latency_ms"]["p50"] <= j["latency_ms"]["p99"] <= j["latency_ms"]["max"]')" = True ]
check "handshakes counted" [ "$(jget 'j["handshakes"]["connections"] >= 1 and j["handshakes"]["full"] >= 1')" = True ]
check "engine CPU and RSS measured" [ "$(jget 'j["engine"]["user_s"] + j["engine"]["sys_s"] > 0 and j["engine"]["max_rss_kb"] > 0')" = True ]
check "no plaintext messages" [ "$(jget 'j["errors"]["plaintext_messages"]')" = 0 ]
check "table printed" grep -q "received 300 + deferred 0 + bounced 0 = 300 of 300 (ok)" "$work/out.txt"
check "SVG written" grep -q "<polyline" "$work/chart.svg"
check "no progress output when stderr is not a terminal" [ ! -s "$work/err.txt" ]
check "work folder removed" [ -z "$(ls -d "$work"/sealpost-bench.* 2>/dev/null)" ]

# steady offered load: the engine runs until every recipient has an
# outcome, then stops on SIGTERM
SEALPOST_SRC=$src TMPDIR=$work timeout 300 "$bench" run -n 200 --size 5000 --rate 400 \
	--workers 2 --json "$work/rate.json" >"$work/rate.txt" 2>&1
rc=$?
check "rate run exits 0" [ "$rc" -eq 0 ]
check "rate run: 200 received, counts add up" "$py" -c '
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if j["mode"] == "rate" and j["messages"] == 200 and j["counts_add_up"]
         and j["received"] + j["deferred"] + j["bounced"] == 200 else 1)' "$work/rate.json"
check "rate run: the engine stopped gracefully" [ "$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["engine"]["exit"])' "$work/rate.json")" = 0 ]

# a missing engine: a clear refusal, no run
TMPDIR=$work "$bench" run -n 10 --engine "$work/nope" >/dev/null 2>"$work/err2.txt"
rc=$?
check "missing engine refused (EX_UNAVAILABLE)" [ "$rc" -eq 69 ]
check "missing engine named" grep -q "nope" "$work/err2.txt"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
