#!/usr/bin/env bash
# peer_faults.sh - hostile and broken receivers end in the right outcome and
# never see a byte of the message in plaintext.
#
# Each destination is routed to a scripted server (tests/lib/badpeer.py)
# that misbehaves in one way; one engine run covers them all, with a good
# receiver alongside to show the engine keeps serving other destinations.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init peer_faults

h_dns "mx.test. 300 IN A 127.0.0.1"
modes="no-ehlo starttls-refused inject close-after-220 garbage long-line endless tls-alert stall-dot trickle"
routes=""
for m in $modes; do
	h_badpeer "${m//-/_}" "$m" --trickle-ms 15
	eval "port=\$PEER_PORT_${m//-/_}"
	routes="$routes${routes:+,}$m.test=mx.test:$port"
done
h_sink good
h_badpeer refused_port good
# A port nobody listens on: connection refused.
closed=$(h_free_port)
export SEALPOST_ROUTES="$routes,good.test=mx.test:$SINK_PORT_good,refused.test=mx.test:$closed"
export SEALPOST_GREETING_TIMEOUT=4 SEALPOST_DATA_DONE_TIMEOUT=3

for m in $modes refused; do
	h_fax "$m" | h_submit fax@fax.test "victim@$m.test"
done
for i in $(seq 1 10); do
	h_fax "good-$i" | h_submit fax@fax.test "u$i@good.test"
done

check "engine drains and exits 0 (no crash, no hang)" h_drain

# nothing of the message (no MAIL FROM) in plaintext to any bad peer
for m in no-ehlo starttls-refused inject close-after-220 garbage long-line endless tls-alert; do
	check "$m: no MAIL FROM sent" bash -c "! grep -q '^C: MAIL' '$W/${m//-/_}.transcript' 2>/dev/null"
	check "$m: recipient deferred" log_has "rcpt=victim@$m.test status=deferred"
done
check "no EHLO: HELO is not tried, 4.7.4" \
	log_has 'rcpt=victim@no-ehlo.test status=deferred .*dsn=4.7.4 .*refused EHLO'
check "STARTTLS refused: 4.7.4 with the server's reply" \
	log_has 'rcpt=victim@starttls-refused.test status=deferred .*dsn=4.7.4 .*refused STARTTLS: 454'
check "injection after STARTTLS 220: aborted, 4.7.0" \
	log_has 'rcpt=victim@inject.test status=deferred .*dsn=4.7.0 .*injection'
check "closed after STARTTLS 220: handshake failure" \
	log_has 'rcpt=victim@close-after-220.test status=deferred .*dsn=4.7.5'
check "garbage greeting: 4.5.0 malformed reply" \
	log_has 'rcpt=victim@garbage.test status=deferred .*dsn=4.5.0 .*malformed'
check "1 MB reply line: 4.5.0 too long" \
	log_has 'rcpt=victim@long-line.test status=deferred .*dsn=4.5.0 .*too long'
check "endless multi-line reply: failed cleanly" \
	log_has 'rcpt=victim@endless.test status=deferred .*dsn=4\.'
check "TLS alert: 4.7.5" log_has 'rcpt=victim@tls-alert.test status=deferred .*dsn=4.7.5'
check "no reply to the final dot: timed out, deferred" \
	log_has 'rcpt=victim@stall-dot.test status=deferred .*timeout .*end of data'
check "trickled replies (one byte per 15 ms): still delivered" \
	log_has 'rcpt=victim@trickle.test status=sent'
check "connection refused: deferred 4.4.1" \
	log_has 'rcpt=victim@refused.test status=deferred .*dsn=4.4.1 .*refused'
check "the good destination got all 10 meanwhile" \
	test "$(count_files "$W/good.store" '*.eml')" -eq 10
check "engine still healthy: clean shutdown line" log_has 'event=shutdown msg="delivered='
h_done
