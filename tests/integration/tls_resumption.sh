#!/usr/bin/env bash
# tls_resumption.sh - one connection per message, 100 messages to one host:
# at least 95 handshakes are resumed, for a TLS 1.3 and a TLS 1.2 receiver.
#
#   run 1: res13.test -> the bundled sink, TLS 1.3 only (--min-tls 1.3)
#   run 2: res12.test -> tests/lib/tls_peer.py, TLS 1.2 only (OpenSSL:
#          session tickets)
# Each run is a fresh engine (an empty session cache) with
# SEALPOST_MSGS_PER_CONNECTION=1 and 4 concurrent connections to the host,
# so 4 full handshakes at most.  Counted on both sides: resumed=yes on the
# engine's delivery lines, the receiver's own count, and the engine's
# tls_stats line at exit (full + resumed = 100, none failed).
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init tls_resumption
N=100
MIN_RESUMED=95

h_dns "mx.test. 300 IN A 127.0.0.1"
h_sink res13 --min-tls 1.3
mkdir -p "$W/res12.store"
$PY "$SEALPOST_SRC/tests/lib/tls_peer.py" --port-file "$W/res12.port" --cert "$W/certs/server.pem" \
	--key "$W/certs/server.key" --store "$W/res12.store" --log "$W/res12.tls" \
	--min-tls 1.2 --max-tls 1.2 --duration 300 >"$W/res12.log" 2>&1 &
H_PIDS+=($!)
h_wait_file "$W/res12.port" || { echo "tls_peer did not start"; cat "$W/res12.log"; exit 1; }
export SEALPOST_ROUTES="res13.test=mx.test:$SINK_PORT_res13,res12.test=mx.test:$(cat "$W/res12.port")"
export SEALPOST_MSGS_PER_CONNECTION=1 SEALPOST_DEST_CONCURRENCY=2
: >"$W/engine.log"

# stats_field FROM_LINE NAME - a field of the engine's tls_stats line after FROM_LINE
stats_field() {
	tail -n +"$1" "$W/engine.log" | grep 'event=tls_stats' | tail -1 |
		grep -o "$2=[0-9]*" | cut -d= -f2
}

# one_run DOMAIN VERSION - submit N messages, drain, check the engine side
one_run() {
	local d=$1 v=$2 from sent res full resumed failed
	for i in $(seq 1 $N); do
		h_fax "$d-$i" 500 | h_submit fax@fax.test "r$i@$d"
	done
	from=$(($(wc -l <"$W/engine.log" 2>/dev/null || echo 0) + 1))
	check "$d: engine drains and exits 0" h_drain
	sent=$(tail -n +"$from" "$W/engine.log" | grep -c "@$d status=sent .*tls=$v ")
	res=$(tail -n +"$from" "$W/engine.log" | grep -c "@$d status=sent .*tls=$v .*resumed=yes")
	echo "  $d: $sent sent over $v, $res of them over a resumed session"
	check "$d: all $N sent over $v" test "$sent" -eq $N
	check "$d: at least $MIN_RESUMED deliveries logged resumed=yes" test "$res" -ge $MIN_RESUMED
	full=$(stats_field "$from" full)
	resumed=$(stats_field "$from" resumed)
	failed=$(stats_field "$from" failed)
	echo "  $d: tls_stats full=$full resumed=$resumed failed=$failed"
	check "$d: tls_stats at exit: full + resumed = $N" test "$((full + resumed))" -eq $N
	check "$d: tls_stats at exit: resumed >= $MIN_RESUMED, no failure" \
		test "$resumed" -ge $MIN_RESUMED -a "$failed" -eq 0
	check "$d: tls_stats agrees with the delivery lines" test "$resumed" -eq "$res"
}

one_run res13.test TLSv1.3
h_sink_stop res13
sink_resumed() {
	$PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["resumed"], j["connections"], j["tls_failures"])' \
		"$W/res13.json"
}
read -r s_res s_conns s_fail < <(sink_resumed)
echo "  sink: $s_conns connections, $s_res resumed, $s_fail TLS failures"
check "res13.test: the sink counts $N connections, >= $MIN_RESUMED resumed, no TLS failure" \
	test "$s_conns" -eq $N -a "$s_res" -ge $MIN_RESUMED -a "$s_fail" -eq 0
check "res13.test: the sink kept all $N messages" test "$(count_files "$W/res13.store" '*.eml')" -eq $N

one_run res12.test TLSv1.2
p_res=$(grep -c '"resumed": true' "$W/res12.tls")
p_all=$(grep -c '"version": "TLSv1.2"' "$W/res12.tls")
echo "  tls_peer: $p_all TLS 1.2 sessions, $p_res resumed"
check "res12.test: the OpenSSL receiver saw $N TLS 1.2 sessions, >= $MIN_RESUMED resumed" \
	test "$p_all" -eq $N -a "$p_res" -ge $MIN_RESUMED
check "res12.test: no handshake failed at the receiver" \
	test "$(grep -c '"error"' "$W/res12.tls")" -eq 0
check "res12.test: the receiver kept all $N messages" \
	test "$(count_files "$W/res12.store" '*.eml')" -eq $N
h_done
