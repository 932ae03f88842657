#!/usr/bin/env bash
# crash_kill9.sh - kill -9 at any instant loses nothing (DESIGN.md,
# Reliability).  About 3000 messages (1, 3 and 5 recipients, 2 KB, plus a
# few of 2 MB so that DATA takes a while) go through the long-running engine
# into a sink that answers 451 to 2% of recipients, 550 to 1% (both chosen by
# a hash of the address, so the same recipients always) and drops 1% of the
# transactions in the middle of DATA.  The engine is killed with SIGKILL at
# least 12 times: right after a big batch lands in new/ (pickup), with 2 MB
# messages in DATA, the instant the sink stores a message (right after the
# final 250), the instant a recipient is refused with 5xx (bounce / DSN
# write), and at random moments; it is restarted after each kill.  A last run
# continues until only the always-451 recipients remain deferred.
#
# Then, from the sink's store (N.env rcpt= lines + the Message-ID of N.eml)
# against what was written into the spool: every deliverable recipient
# arrived, refused ones never did, the duplicate transactions charged to each
# kill are no more than the engine had in flight (attempted, outcome not yet
# recorded: at most the messages it holds), none without a kill, the queue
# holds exactly the always-451 recipients, and new/, tmp/, corrupt/ are empty.
# One destination, so SEALPOST_MAX_CONNECTIONS = SEALPOST_DEST_CONCURRENCY
# is the number of sessions.
# The analysis is tests/lib/crash_check.py.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init crash_kill9
CHK=$SEALPOST_SRC/tests/lib/crash_check.py
MAXCONN=10
# What the queue manager holds at most (engine/qmgr.c: max_connections + 64
# messages): the hard bound on what one kill can make it send again.
INFLIGHT=$((MAXCONN + 64))

h_dns "mx.test. 300 IN A 127.0.0.1"
# The percentages must match TEMPFAIL_PCT / PERMFAIL_PCT in crash_check.py.
h_sink main -j 2 --rcpt-tempfail 2 --rcpt-permfail 1 --drop-mid-data 1
export SEALPOST_ROUTES="*=mx.test:$SINK_PORT_main"
export SEALPOST_RETRY_MIN=1s SEALPOST_RETRY_MAX=2s SEALPOST_QUEUE_LIFETIME=30d
export SEALPOST_SCAN_INTERVAL=1s SEALPOST_MAX_CONNECTIONS=$MAXCONN SEALPOST_DEST_CONCURRENCY=$MAXCONN
mkdir -p "$SEALPOST_SPOOL/new"

# Stage the batches outside the spool (so each lands in new/ at once) and
# record what each promises.
stage() {
	local name=$1
	shift
	"$BENCH" fill --spool "$W/stage-$name" --domains 1 --domain-fmt "fax.example" \
		--sender fax@fax.test --quiet "$@" >/dev/null &&
		$PY "$CHK" manifest "$W/stage-$name/new" "$W/manifest"
}
stage a -n 1000 --size 2000 --rcpts-per-msg 1 --seed 1 || exit 1
stage b -n 1000 --size 2000 --rcpts-per-msg 3 --seed 2 || exit 1
stage c -n 980 --size 2000 --rcpts-per-msg 5 --seed 3 || exit 1
stage big -n 20 --size 2000000 --rcpts-per-msg 2 --seed 4 || exit 1
drop() {
	$PY "$CHK" drop "$W/stage-$1/new" "$SEALPOST_SPOOL/new"
}

KILLS=0
ALIVE_FAIL=0
engine=
start() {
	echo "=== start $((KILLS + 1))" >>"$W/engine.log"
	"$SP" run >>"$W/engine.log" 2>&1 &
	engine=$!
}
# ms MIN MAX - sleep a random number of milliseconds
ms() {
	sleep "$(printf '0.%03d' $(($1 + RANDOM % ($2 - $1 + 1))))"
}
# killnow WHAT - SIGKILL the engine, which must still have been running
killnow() {
	if ! kill -0 "$engine" 2>/dev/null; then
		ALIVE_FAIL=$((ALIVE_FAIL + 1))
		echo "engine was not running before kill ($1)"
	fi
	kill -KILL "$engine" 2>/dev/null
	killed "$1"
}
# killed WHAT - reap the killed engine, note the sink's store count
killed() {
	{ wait "$engine"; } 2>/dev/null
	sleep 0.05	# what the sink accepted before the kill is stored by now
	KILLS=$((KILLS + 1))
	count_files "$W/main.store" '*.env' >>"$W/kills"
	echo "# kill $KILLS: $1 ($(tail -n 1 "$W/kills") stored)"
}
# killwith WHAT HELPER ARGS... - a helper that kills at the right moment
killwith() {
	local what=$1
	shift
	kill -0 "$engine" 2>/dev/null || { ALIVE_FAIL=$((ALIVE_FAIL + 1)); echo "engine died ($what)"; }
	$PY "$CHK" "$@" >/dev/null &
	{ wait "$engine"; } 2>/dev/null	# reaped here: no "Killed" line from bash
	wait $!
	killed "$what"
}

start
ms 50 150
drop a
ms 0 30
killnow "pickup: just after 1000 files landed in new/"

start
ms 50 500
killnow "random"

start
ms 100 300
drop b
killnow "pickup: the instant 1000 more files landed"

start
killwith "right after a final 250" kill-on-store "$W/main.store" "$engine" 10

start
ms 100 200
drop big
ms 150 400
killnow "mid-DATA of 2 MB messages"

start
ms 200 500
killnow "mid-DATA (2 MB messages resumed)"

start
killwith "right after a 5xx (bounce)" kill-on-log "$W/engine.log" 'status=bounced|event=dsn' "$engine" 10

start
ms 50 200
drop c
ms 50 500
killnow "random, after the last batch"

start
killwith "right after a final 250" kill-on-store "$W/main.store" "$engine" 10

for _ in 1 2 3; do
	start
	ms 50 500
	killnow "random"
done

start
killwith "right after a 5xx (bounce)" kill-on-log "$W/engine.log" 'status=bounced|event=dsn' "$engine" 10

check "the engine was running at each kill (no crash of its own)" test "$ALIVE_FAIL" -eq 0
check "at least 10 kills" test "$KILLS" -ge 10

# Last run: until only the always-451 recipients are left.
start
settled() {
	for _ in $(seq 1 240); do
		if "$SP" queue --json >"$W/queue.json" 2>/dev/null && $PY "$CHK" settled "$W/queue.json"; then
			return 0
		fi
		sleep 0.25
	done
	return 1
}
check "the queue settles to the always-deferred recipients" settled
kill -TERM "$engine"
rc=0
wait "$engine" || rc=$?
check "SIGTERM: the last engine exits 0" test "$rc" -eq 0
"$SP" queue --json >"$W/queue.json" 2>/dev/null
h_sink_stop main
check "no loss, duplicates within the bound, a clean spool" \
	$PY "$CHK" check "$W/manifest" "$W/main.store" "$SEALPOST_SPOOL" "$W/queue.json" "$W/kills" \
	"$MAXCONN" "$INFLIGHT"
check "no event=corrupt in the log" sh -c "! grep -q 'event=corrupt' '$W/engine.log'"
h_done
