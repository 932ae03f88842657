#!/usr/bin/env bash
# metrics.sh - the Prometheus endpoint of a running engine agrees with what
# the receivers saw.
#
# `sealpost run` (not --drain) with SEALPOST_METRICS_LISTEN delivers N
# messages to a STARTTLS sink (good.test) and one to a sink that offers no
# STARTTLS (nostls.test).  /metrics is scraped until every good recipient
# is counted as sent (bounded wait), then the counters are compared with the
# sink's own summary: recipients and messages, TLS handshakes (full +
# resumed = the sink's TLS sessions, resumed = its resumed ones),
# deliveries by TLS version, the latency histogram, the TLS failure reason
# of the refused host, the queue gauges.  SIGTERM ends the engine (exit 0)
# and the endpoint with it.  A metrics address that cannot be bound stops
# the engine at start, naming the variable.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init metrics

N=${METRICS_N:-40}
h_dns "mx.test. 300 IN A 127.0.0.1"
h_sink good
h_sink nostls --no-starttls
export SEALPOST_ROUTES="good.test=mx.test:$SINK_PORT_good,nostls.test=mx.test:$SINK_PORT_nostls"
export SEALPOST_IDLE_TIMEOUT=1
export SEALPOST_MSGS_PER_CONNECTION=10	# several sessions: resumption gets used

for i in $(seq 1 "$N"); do
	h_fax "m$i" 2000 | h_submit fax@fax.test "r$i@good.test"
done
h_fax refused-1 | h_submit fax@fax.test someone@nostls.test

# scrape PATH - the raw HTTP response of GET PATH (bash /dev/tcp, 5 s bound)
scrape() {
	timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1
		printf "GET %s HTTP/1.0\r\n\r\n" "$1" >&3
		cat <&3' "$MPORT" "$1" 2>/dev/null | tr -d '\r'
}
# metric SERIES - its value in the last scrape ($W/scrape), empty if absent
metric() {
	awk -v s="$1" '$1 == s { v = $2 } END { if (v != "") print v }' "$W/scrape"
}
# metric_sum PREFIX - sum of every series whose name{labels} starts with PREFIX
metric_sum() {
	awk -v p="$1" 'index($1, p) == 1 && $1 !~ /^#/ { s += $2 } END { print s + 0 }' "$W/scrape"
}
# sink_json NAME KEY - a number from the sink's JSON summary (KEY: a/b for nesting)
sink_json() {
	$PY -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("/"): d = d[k]
print(d)' "$W/$1.json" "$2"
}

# A metrics port that is taken: the engine refuses to start, naming it.
busy_refused() {
	SEALPOST_METRICS_LISTEN=127.0.0.1:$SINK_PORT_good timeout 20 "$SP" run \
		>"$W/busy.log" 2>&1
	local rc=$?
	[ "$rc" -eq 78 ] && grep -q "SEALPOST_METRICS_LISTEN=127.0.0.1:$SINK_PORT_good" "$W/busy.log"
}
check "a metrics address already in use stops the engine (78, names the variable)" busy_refused

MPORT=$(h_free_port)
SEALPOST_METRICS_LISTEN=127.0.0.1:$MPORT timeout 180 "$SP" run >>"$W/engine.log" 2>&1 &
EPID=$!
H_PIDS+=("$EPID")

# Wait (at most 60 s) for every good recipient to be counted as sent.
sent=""
for _ in $(seq 1 300); do
	scrape /metrics >"$W/scrape"
	sent=$(metric 'sealpost_recipients_total{status="sent"}')
	deferred=$(metric 'sealpost_recipients_total{status="deferred"}')
	[ "${sent:-0}" -ge "$N" ] && [ "${deferred:-0}" -ge 1 ] && break
	sleep 0.2
done
check "endpoint answers 200 with the exposition content type" \
	grep -q '^Content-Type: text/plain; version=0.0.4' "$W/scrape"
check "sent recipients reach $N (got ${sent:-none})" test "${sent:-0}" -eq "$N"
check "the refused recipient is counted as deferred" \
	test "$(metric 'sealpost_recipients_total{status="deferred"}')" = 1
check "nothing counted as bounced" test "$(metric 'sealpost_recipients_total{status="bounced"}')" = 0
check "the refusal is counted as no_starttls" \
	test "$(metric 'sealpost_tls_failures_total{reason="no_starttls"}')" = 1
check "other paths get 404" bash -c "$(declare -f scrape); MPORT=$MPORT; scrape /nope | head -n 1 | grep -q '^HTTP/1.0 404'"

# Let the queue gauges settle (the good messages leave the queue).
for _ in $(seq 1 50); do
	scrape /metrics >"$W/scrape"
	[ "$(metric 'sealpost_messages_total{outcome="delivered"}')" = "$N" ] &&
		[ "$(metric 'sealpost_queue_messages{state="active"}')" = 0 ] && break
	sleep 0.2
done
check "messages removed as delivered: $N" \
	test "$(metric 'sealpost_messages_total{outcome="delivered"}')" = "$N"
check "queue gauges: none active, the refused one deferred" \
	test "$(metric 'sealpost_queue_messages{state="active"}')" = 0 -a \
	"$(metric 'sealpost_queue_messages{state="deferred"}')" = 1
check "oldest message age is reported" test -n "$(metric sealpost_queue_oldest_message_age_seconds)"
check "DNS lookups are counted" test "$(metric sealpost_dns_lookups_total)" -ge 1
cp "$W/scrape" "$W/scrape.final"

# Idle sessions close after SEALPOST_IDLE_TIMEOUT: active connections back to 0.
for _ in $(seq 1 50); do
	scrape /metrics >"$W/scrape"
	[ "$(metric_sum 'sealpost_connections_active{')" = 0 ] && break
	sleep 0.2
done
check "connections_active drops back to 0 once sessions close" \
	test "$(metric_sum 'sealpost_connections_active{')" = 0
cp "$W/scrape" "$W/scrape.final"

stop_engine() {
	kill -TERM "$EPID" 2>/dev/null || return 1
	wait "$EPID"
}
check "SIGTERM stops the engine with exit 0" stop_engine
check "the endpoint is gone with the engine" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$MPORT) 2>/dev/null"
h_sink_stop good
h_sink_stop nostls
cp "$W/scrape.final" "$W/scrape"

sink_rcpts=$(sink_json good recipients)
sink_msgs=$(sink_json good messages)
sink_tls=$(( $(sink_json good tls/TLSv1.3) + $(sink_json good tls/TLSv1.2) + $(sink_json good tls/other) ))
sink_resumed=$(sink_json good resumed)
full=$(metric 'sealpost_tls_handshakes_total{kind="full"}')
resumed=$(metric 'sealpost_tls_handshakes_total{kind="resumed"}')
check "sink received $N recipients in $N messages (got $sink_rcpts / $sink_msgs)" \
	test "$sink_rcpts" -eq "$N" -a "$sink_msgs" -eq "$N"
check "sent recipients == sink recipients" test "$(metric 'sealpost_recipients_total{status="sent"}')" -eq "$sink_rcpts"
check "handshakes full+resumed ($full+$resumed) == sink TLS sessions ($sink_tls)" \
	test "$(( ${full:-0} + ${resumed:-0} ))" -eq "$sink_tls"
check "resumed handshakes ($resumed) == sink resumed ($sink_resumed)" test "${resumed:-x}" = "$sink_resumed"
check "deliveries_total sums to the sink's messages" \
	test "$(metric_sum 'sealpost_deliveries_total{')" -eq "$sink_msgs"
check "every delivery verified=yes" \
	test "$(( $(metric_sum 'sealpost_deliveries_total{tls_version="TLSv1.3",verified="yes"}') + \
	$(metric_sum 'sealpost_deliveries_total{tls_version="TLSv1.2",verified="yes"}') ))" -eq "$sink_msgs"
check "latency histogram counts every delivery" \
	test "$(metric sealpost_delivery_latency_seconds_count)" -eq "$sink_msgs" -a \
	"$(metric 'sealpost_delivery_latency_seconds_bucket{le="+Inf"}')" -eq "$sink_msgs"
check "no plaintext reached the refusing sink" test "$(sink_json nostls messages)" -eq 0
h_done
