#!/usr/bin/env bash
# suspension.sh - a destination that refuses connections is suspended (its
# messages wait without connection attempts and without being charged an
# attempt), and delivery resumes when it comes back.  Also covers the
# long-running engine: inotify pickup, retries on the schedule, SIGTERM.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init suspension

h_dns "mx.test. 300 IN A 127.0.0.1"
port=$(h_free_port)
export SEALPOST_ROUTES="dead.test=mx.test:$port"
export SEALPOST_RETRY_MIN=3s SEALPOST_RETRY_MAX=3s SEALPOST_SCAN_INTERVAL=1s

"$SP" run >>"$W/engine.log" 2>&1 &
engine=$!
H_PIDS+=($engine)

# wait_log REGEX COUNT SECONDS - until the engine log has COUNT matching lines
wait_log() {
	for _ in $(seq 1 $(($3 * 10))); do
		[ "$(grep -Ec -- "$1" "$W/engine.log")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

for i in 1 2 3 4 5 6; do
	h_fax "dead-$i" | h_submit fax@fax.test "r$i@dead.test"
done
check "connection failures are deferred 4.4.1" wait_log 'rcpt=r[0-9]@dead.test status=deferred .*dsn=4.4.1' 6 15
check "the destination is suspended after repeated failures" wait_log 'event=suspended .*domain=dead.test' 1 5

for i in 7 8; do
	h_fax "dead-$i" | h_submit fax@fax.test "r$i@dead.test"
done
check "new mail for a suspended destination waits without a connection attempt" \
	wait_log 'rcpt=r[78]@dead.test status=deferred relay=none dsn=4.4.1 reply="delivery temporarily suspended: .*attempts=0' 2 5

# The destination comes back.
"$BENCH" sink --listen "127.0.0.1:$port" --cert "$W/certs/server.pem" --key "$W/certs/server.key" \
	--store "$W/back.store" --duration 120 --quiet >"$W/back.log" 2>&1 &
H_PIDS+=($!)
mkdir -p "$W/back.store"
delivered() {
	for _ in $(seq 1 400); do
		[ "$(count_files "$W/back.store" '*.eml')" -ge 8 ] && return 0
		sleep 0.1
	done
	return 1
}
check "all 8 messages are delivered once it is back" delivered
check "the suspension is lifted" wait_log 'event=resumed .*domain=dead.test' 1 5
check "exactly 8 copies (no duplicates)" test "$(count_files "$W/back.store" '*.eml')" -eq 8

kill -TERM "$engine"
rc=0
wait "$engine" || rc=$?
check "SIGTERM: the engine stops gracefully with exit 0" test "$rc" -eq 0
check "the queue is empty" queue_empty
h_done
