#!/usr/bin/env bash
# bounce.sh - every path ends in delivered, bounced with a correct DSN, or
# dropped-and-logged for <> senders.
#
# One message to three recipients at a real receiver that answers 250, 451
# and 550: exactly one delivery; the 550 is bounced at once and the sender
# gets a DSN for it at once; the 451 is retried until the (short) queue
# lifetime ends, then bounced with a second DSN; then the original is gone.
# A delay warning is sent once when enabled.  A bounce of a bounce is dropped.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init bounce

h_dns "mx.test. 300 IN A 127.0.0.1"
h_sink dest --tempfail-rcpt later@dest.test --permfail-rcpt gone@dest.test \
	--permfail-rcpt nobody@dest.test
h_sink senders
export SEALPOST_ROUTES="dest.test=mx.test:$SINK_PORT_dest,sender.test=mx.test:$SINK_PORT_senders"
export SEALPOST_RETRY_MIN=1s SEALPOST_RETRY_MAX=2s SEALPOST_QUEUE_LIFETIME=8s \
	SEALPOST_DELAY_WARNING=3s SEALPOST_SCAN_INTERVAL=1s

"$SP" run >>"$W/engine.log" 2>&1 &
engine=$!
H_PIDS+=($engine)
wait_for() {
	local n=${2:-200}
	for _ in $(seq 1 "$n"); do
		eval "$1" && return 0
		sleep 0.05
	done
	return 1
}
dsn_count() { grep -l '^Content-Type: multipart/report' "$W"/senders.store/*.eml 2>/dev/null | wc -l; }

h_fax fax-1 | "$SP" submit -f fax@sender.test ok@dest.test later@dest.test gone@dest.test >/dev/null
check "the 250 recipient is delivered once" \
	wait_for '[ "$(grep -h "^rcpt=" "$W"/dest.store/*.env 2>/dev/null | wc -l)" -eq 1 ]'
check "the 550 recipient is bounced at once" log_has 'rcpt=gone@dest.test status=bounced .*dsn=5.1.1'
check "the sender gets a DSN for the 550 at once" wait_for '[ "$(dsn_count)" -ge 1 ]'
first=$(grep -l '^Content-Type: multipart/report' "$W"/senders.store/*.eml | head -1)
check "the first DSN reports gone@ as failed 5.1.1, not the others" bash -c "
	grep -q '^Final-Recipient: rfc822;gone@dest.test' '$first' &&
	grep -q '^Action: failed' '$first' && grep -q '^Status: 5.1.1' '$first' &&
	grep -q '^Diagnostic-Code: smtp; 550' '$first' &&
	! grep -q 'Final-Recipient: rfc822;later@dest.test' '$first' &&
	! grep -q 'Final-Recipient: rfc822;ok@dest.test' '$first'"
check "the DSN is addressed from <> to the sender" \
	grep -q '^from=$' "${first%.eml}.env"
check "the DSN was sent from the null sender to fax@sender.test" grep -q '^rcpt=fax@sender.test' "${first%.eml}.env"
check "the DSN returns the original headers" grep -q 'Subject: Fax fax-1' "$first"

check "the 451 recipient is retried" wait_for 'grep -q "rcpt=later@dest.test status=deferred .*attempts=2" "$W/engine.log"' 200
check "one delay warning (Action: delayed) after 3 s" \
	wait_for 'grep -l "^Action: delayed" "$W"/senders.store/*.eml 2>/dev/null | grep -q .' 200
check "the 451 recipient is bounced when the lifetime ends" \
	wait_for 'grep -q "rcpt=later@dest.test status=bounced .*queue lifetime expired" "$W/engine.log"' 300
check "a second failure DSN arrives for it" \
	wait_for '[ "$(grep -l "^Action: failed" "$W"/senders.store/*.eml 2>/dev/null | wc -l)" -eq 2 ]'
check "exactly one delay warning" test "$(grep -l '^Action: delayed' "$W"/senders.store/*.eml | wc -l)" -eq 1
check "the original is gone from the spool" wait_for queue_empty
check "still exactly one delivery to ok@" \
	test "$(grep -h '^rcpt=' "$W"/dest.store/*.env | wc -l)" -eq 1

# Never bounce a bounce: a message with sender <> that fails is logged and dropped.
h_fax fax-2 | "$SP" submit -f '<>' nobody@dest.test >/dev/null
check "a failed <> message is logged as dropped" \
	wait_for 'grep -q "event=bounce_dropped .*rcpt=nobody@dest.test" "$W/engine.log"'
sleep 0.5
check "and no DSN is generated for it" test "$(grep -l 'nobody@dest.test' "$W"/senders.store/*.eml 2>/dev/null | wc -l)" -eq 0
check "the queue is empty again" wait_for queue_empty

kill -TERM "$engine"
wait "$engine"
check "engine exits 0" test $? -eq 0
h_done
