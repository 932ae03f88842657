#!/usr/bin/env bash
# pickup.sh - spool pickup: files renamed into new/ are claimed within
# milliseconds by a running engine, corrupt ones land in corrupt/ with a
# .why, a restart resumes what was queued, and a flush wakes a running engine.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init pickup

h_dns "mx.test. 300 IN A 127.0.0.1"
h_sink good
h_sink mixed --tempfail-rcpt b@mixed.test --tempfail-rcpt c@mixed.test
export SEALPOST_ROUTES="good.test=mx.test:$SINK_PORT_good,mixed.test=mx.test:$SINK_PORT_mixed"
mkdir -p "$SEALPOST_SPOOL/tmp" "$SEALPOST_SPOOL/new"

# drop NAME CONTENT - the writer's protocol: tmp/, then rename into new/
drop() {
	printf '%s' "$2" >"$SEALPOST_SPOOL/tmp/$1"
	mv "$SEALPOST_SPOOL/tmp/$1" "$SEALPOST_SPOOL/new/$1"
}

# Corrupt input, before the engine starts (found by the start-up scan).
drop no-rcpt $'MAIL FROM:<a@b.test>\n\nSubject: x\n\nbody\n'
drop bad-addr $'MAIL FROM:<a@b.test>\nRCPT TO:<not an address>\n\nbody\n'
drop no-blank $'MAIL FROM:<a@b.test>\nRCPT TO:<x@good.test>\n'
: >"$SEALPOST_SPOOL/tmp/empty"
mv "$SEALPOST_SPOOL/tmp/empty" "$SEALPOST_SPOOL/new/empty"
printf 'MAIL FROM:<a@b.test>\nRCPT TO:<x@good.test>\x00\n\nbody\n' >"$SEALPOST_SPOOL/new/nul"

# A writer that died mid-file a day ago, and one still writing.
: >"$SEALPOST_SPOOL/tmp/abandoned"
touch -d '2 days ago' "$SEALPOST_SPOOL/tmp/abandoned"
: >"$SEALPOST_SPOOL/tmp/being-written"

"$SP" run >>"$W/engine.log" 2>&1 &
engine=$!
H_PIDS+=($engine)

wait_for() {
	for _ in $(seq 1 100); do
		eval "$1" && return 0
		sleep 0.05
	done
	return 1
}
check "corrupt files are moved to corrupt/" \
	wait_for '[ "$(count_files "$SEALPOST_SPOOL/corrupt" "*.why")" -eq 5 ]'
check "a day-old abandoned file in tmp/ is removed at start" test ! -e "$SEALPOST_SPOOL/tmp/abandoned"
check "a fresh file in tmp/ (a writer at work) is left alone" test -e "$SEALPOST_SPOOL/tmp/being-written"
check "no-rcpt.why names the problem" grep -qi 'rcpt' "$SEALPOST_SPOOL/corrupt/no-rcpt.why"
check "bad-addr.why names the line" grep -qi 'line 2' "$SEALPOST_SPOOL/corrupt/bad-addr.why"
check "no-blank.why says the message is missing" grep -Eqi 'blank|empty line|no message|truncated' \
	"$SEALPOST_SPOOL/corrupt/no-blank.why"
check "empty.why says empty" grep -qi 'empty' "$SEALPOST_SPOOL/corrupt/empty.why"
check "nul.why mentions NUL" grep -qi 'nul' "$SEALPOST_SPOOL/corrupt/nul.why"
check "the engine logs each corrupt file" test "$(grep -c 'event=corrupt' "$W/engine.log")" -eq 5

# Pickup latency: drop files one at a time into a running engine.
lat_ok=0
for i in $(seq 1 20); do
	t0=$(date +%s%N)
	drop "live-$i" "$(printf 'MAIL FROM:<fax@fax.test>\nRCPT TO:<u%s@good.test>\n\nSubject: live %s\n\nhello\n' "$i" "$i")"
	for _ in $(seq 1 400); do
		[ -e "$SEALPOST_SPOOL/new/live-$i" ] || break
		sleep 0.005
	done
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	echo "  pickup of live-$i: ${ms} ms"
	[ "$ms" -lt 200 ] && lat_ok=$((lat_ok + 1))
done
check "new files are claimed promptly (inotify; < 200 ms incl. shell overhead)" test "$lat_ok" -ge 18
check "all 20 live messages delivered" \
	wait_for '[ "$(count_files "$W/good.store" "*.eml")" -eq 20 ]'

# flush wakes the running engine: a deferred message becomes due at once
# (its next attempt is 5 minutes away by the default schedule).
h_fax later | h_submit fax@fax.test b@mixed.test
check "a 451 recipient is deferred with attempts=1" \
	wait_for 'grep -q "rcpt=b@mixed.test status=deferred .*attempts=1" "$W/engine.log"'
check "sealpost flush succeeds" "$SP" flush
check "the running engine retries it at once (attempts=2)" \
	wait_for 'grep -q "rcpt=b@mixed.test status=deferred .*attempts=2" "$W/engine.log"'
check "the engine noticed the flush request" log_has 'event=flush'
kill -TERM "$engine"
wait "$engine"
check "engine exits 0 on SIGTERM" test $? -eq 0

# Restart: a message left in msg/ with state is resumed, the delivered
# recipient is not sent again.
h_fax two | h_submit fax@fax.test a@good.test c@mixed.test
h_drain
before=$(count_files "$W/good.store" "*.eml")
"$SP" flush >/dev/null
h_drain
check "after restart+flush the delivered recipient gets no second copy" \
	test "$(count_files "$W/good.store" "*.eml")" -eq "$before"
check "the deferred recipient was tried again (attempts=2)" \
	log_has 'rcpt=c@mixed.test status=deferred .*attempts=2'
h_done
