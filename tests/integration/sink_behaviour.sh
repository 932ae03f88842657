#!/usr/bin/env bash
# sink_behaviour.sh - every switch of `sealpost-bench sink`, checked with a
# real client (Python smtplib/ssl/raw sockets in sink_client.py).
#
# Env: SEALPOST_BUILD (folder holding sealpost-bench), SEALPOST_SRC.
# Every sink runs with --duration, on port 0, in a private temp folder, and
# is stopped with SIGTERM (which must write the JSON summary and exit 0).
# Prints "N passed, M failed"; exits 1 when anything failed.
set -u

src=${SEALPOST_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${SEALPOST_BUILD:-$src/build}
build=$(cd "$build" && pwd)
bench=$build/sealpost-bench
py=/usr/bin/python3
client=$src/tests/integration/sink_client.py

if [ ! -x "$bench" ]; then
	echo "sink_behaviour: $bench not built" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sink_behaviour.XXXXXX")
declare -A pids
cleanup() {
	local n
	for n in "${!pids[@]}"; do
		kill -TERM "${pids[$n]}" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

bash "$src/tests/lib/mkcerts.sh" "$work/certs" || { echo "mkcerts failed" >&2; exit 1; }
certs=$work/certs
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }

# start_sink NAME ARGS... - start a sink; its port is in $work/NAME.port
start_sink() {
	local name=$1 i
	shift
	"$bench" sink --listen 127.0.0.1:0 --port-file "$work/$name.port" \
		--json "$work/$name.json" --duration 60 --quiet "$@" \
		>"$work/$name.out" 2>"$work/$name.err" &
	pids[$name]=$!
	for i in $(seq 100); do
		[ -s "$work/$name.port" ] && return 0
		kill -0 "${pids[$name]}" 2>/dev/null || break
		sleep 0.05
	done
	bad "start $name" "$(cat "$work/$name.err")"
	return 1
}

# stop_sink NAME - SIGTERM; the sink must exit 0 and leave its JSON
stop_sink() {
	local name=$1 rc
	kill -TERM "${pids[$name]}"
	wait "${pids[$name]}"
	rc=$?
	unset "pids[$name]"
	if [ $rc -eq 0 ] && [ -s "$work/$name.json" ]; then
		ok "sigterm_writes_summary_and_exits_0 ($name)"
	else
		bad "sigterm_writes_summary_and_exits_0 ($name)" "rc=$rc $(cat "$work/$name.err")"
	fi
}

# check SINK CHECK [STORE] - one sink_client.py check against a sink
check() {
	local out
	if out=$(timeout 60 "$py" "$client" "$2" "$(cat "$work/$1.port")" "$certs" ${3:+"$3"} 2>&1); then
		ok "$2"
	else
		bad "$2" "$out"
	fi
}

# field SINK EXPR - a value from the JSON summary (python expression on j)
field() {
	"$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$work/$1.json" "$2"
}

# expect_field SINK EXPR WANT NAME - compare a summary value
expect_field() {
	local got
	got=$(field "$1" "$2" 2>&1)
	if [ "$got" = "$3" ]; then ok "$4"; else bad "$4" "$2 = $got, want $3"; fi
}

# A: STARTTLS required, store, exact recipient refusals, size
mkdir -p "$work/store"
if start_sink a --cert "$certs/server.pem" --key "$certs/server.key" \
	--store "$work/store" --tempfail-rcpt temp@rcpt.test --permfail-rcpt perm@rcpt.test; then
	check a starttls_required
	check a starttls_injection
	check a rcpt_lists
	check a store "$work/store"
	check a hostile
	stop_sink a
	expect_field a "j['plaintext_messages']" 0 "no_plaintext_message_when_starttls_required"
	expect_field a "j['messages']" 2 "summary_counts_messages"
	expect_field a "j['recipients']" 3 "summary_counts_recipients"
	expect_field a "j['tls']['TLSv1.3'] >= 3" True "summary_counts_tls_versions"
	expect_field a "j['tempfails'] == 1 and j['permfails'] == 1" True "summary_counts_refusals"
fi

# B: no STARTTLS offered (even with a certificate), two threads
if start_sink b -j 2 --cert "$certs/server.pem" --key "$certs/server.key" --no-starttls; then
	check b no_starttls
	check b pipelining
	check b long_line
	stop_sink b
	expect_field b "j['plaintext_messages']" 2 "plaintext_messages_counted"
fi

# C: client certificate required
if start_sink c --cert "$certs/server.pem" --key "$certs/server.key" \
	--client-ca "$certs/client-ca.pem"; then
	check c client_cert
	stop_sink c
	expect_field c "j['messages']" 1 "client_cert_mail_accepted_once"
fi

# D: drop in the middle of DATA
if start_sink d --allow-plaintext --drop-mid-data 100; then
	check d drop_mid_data
	stop_sink d
	expect_field d "j['drops'] == 1 and j['messages'] == 0" True "drop_counted_not_delivered"
fi

# E: size limit; F: refused greeting; G: latency; H: share of tempfails
if start_sink e --allow-plaintext --max-size 1000; then
	check e max_size
	stop_sink e
	expect_field e "j['messages']" 1 "only_the_small_message_counted"
fi
if start_sink f --conn-tempfail 100; then
	check f conn_tempfail
	stop_sink f
fi
if start_sink g --allow-plaintext --latency-ms 300; then
	check g latency
	check g submitted_header
	stop_sink g
	expect_field g "j['latency_ms']['count'] == 1 and 250 <= j['latency_ms']['p50'] < 5000" True \
		"submitted_header_gives_latency"
fi
if start_sink h --allow-plaintext --rcpt-tempfail 50; then
	check h rcpt_shares
	stop_sink h
fi

# I: --max-messages stops the sink by itself, with its summary
if start_sink i --allow-plaintext --max-messages 1 --hash; then
	check i one_message
	for _ in $(seq 50); do
		kill -0 "${pids[i]}" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "${pids[i]}" 2>/dev/null; then
		bad "max_messages_stops_the_sink" "still running"
	else
		wait "${pids[i]}"
		rc=$?
		unset "pids[i]"
		if [ $rc -eq 0 ]; then ok "max_messages_stops_the_sink"
		else bad "max_messages_stops_the_sink" "rc=$rc"; fi
		expect_field i "j['messages'] == 1 and j['digest'] != '0000000000000000'" True \
			"hash_digest_in_summary"
	fi
fi

# J: --duration bounds a run with no client at all
start=$(date +%s)
"$bench" sink --listen 127.0.0.1:0 --duration 1 --quiet >/dev/null 2>&1
rc=$?
if [ $rc -eq 0 ] && [ $(( $(date +%s) - start )) -le 3 ]; then ok "duration_bounds_the_run"
else bad "duration_bounds_the_run" "rc=$rc"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
