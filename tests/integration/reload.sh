#!/usr/bin/env bash
# reload.sh - SIGHUP re-reads the TLS policy file, certificates and CA
# store without a restart: a pin that was wrong is corrected and takes
# effect, and deliveries running meanwhile do not fail.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init reload

h_dns "mx.test. 300 IN A 127.0.0.1"
h_sink good
h_sink pinned --cert "$W/certs/selfsigned.pem" --key "$W/certs/selfsigned.key"
export SEALPOST_ROUTES="good.test=mx.test:$SINK_PORT_good,pin.test=mx.test:$SINK_PORT_pinned"
export SEALPOST_TLS_POLICY=$W/policy SEALPOST_SCAN_INTERVAL=1s
fp=$(openssl x509 -in "$W/certs/selfsigned.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
echo "pin.test fingerprint fingerprint=sha256:$(printf '00%.0s' $(seq 1 32))" >"$W/policy"

"$SP" run >>"$W/engine.log" 2>&1 &
engine=$!
H_PIDS+=($engine)

wait_for() {
	for _ in $(seq 1 200); do
		eval "$1" && return 0
		sleep 0.05
	done
	return 1
}

h_fax pin-1 | h_submit fax@fax.test someone@pin.test
check "a wrong pin refuses the self-signed peer" \
	wait_for 'grep -q "rcpt=someone@pin.test status=deferred .*dsn=4.7.5 .*fingerprint" "$W/engine.log"'
check "nothing reached the pinned receiver" test "$(count_files "$W/pinned.store" '*.eml')" -eq 0

# Deliveries keep flowing to another destination while we reload, repeatedly.
(
	for i in $(seq 1 60); do
		h_fax "flow-$i" | h_submit fax@fax.test "u$i@good.test"
		sleep 0.02
	done
) &
feeder=$!
echo "pin.test fingerprint fingerprint=sha256:$fp" >"$W/policy.new"
mv "$W/policy.new" "$W/policy"
for _ in 1 2 3 4 5; do
	kill -HUP "$engine"
	sleep 0.2
done
wait "$feeder"
check "the reload is logged" log_has 'event=reload msg="TLS certificates, CA store and policy reloaded"'
"$SP" flush >/dev/null
check "after SIGHUP the corrected pin is used: delivered, verified=pinned" \
	wait_for 'grep -q "rcpt=someone@pin.test status=sent .*verified=pinned" "$W/engine.log"'
check "all 60 messages sent during the reloads arrived" \
	wait_for '[ "$(count_files "$W/good.store" "*.eml")" -eq 60 ]'
check "no delivery failed during the reloads" bash -c "! grep -q 'rcpt=u[0-9]*@good.test status=\(deferred\|bounced\)' '$W/engine.log'"

# A broken policy file on reload keeps the old settings.
echo "pin.test nonsense-level" >"$W/policy"
kill -HUP "$engine"
check "a bad policy on reload is refused, the old one kept" \
	wait_for 'grep -q "event=reload .*kept the current TLS settings" "$W/engine.log"'
kill -TERM "$engine"
wait "$engine"
check "engine exits 0" test $? -eq 0
h_done
