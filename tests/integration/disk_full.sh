#!/usr/bin/env bash
# disk_full.sh - a full spool disk loses nothing and crashes nothing, and
# delivery recovers when space returns (DESIGN.md, Reliability).
#
# First, I/O errors in `sealpost submit` through an LD_PRELOAD shim
# (tests/lib/faultfs.c, built here with cc): write ENOSPC, fsync EIO,
# create ENOSPC, rename EIO, and fsync of new/ EIO after the rename (the
# file must be withdrawn): exit 75/73, the reason, nothing left behind.
#
# Then the spool is a 2 MB tmpfs mounted by the test (root needed; without
# the permission to mount, the shim makes every write in the spool fail
# with ENOSPC instead, while a control file exists).  Three
# messages are queued, two more are staged on the same file system, then a
# filler file takes every free byte.  With the disk full:
#   - `sealpost submit` exits EX_TEMPFAIL (75) or EX_CANTCREAT (73), says
#     "No space left on device", and leaves nothing in new/ or tmp/;
#   - the long-running engine claims, delivers and removes the three (claim
#     and removal need no space); the disk is filled again (removals free
#     pages);
#   - a staged message with one recipient accepted and one deferred (451)
#     is renamed into new/: its state cannot be written, the engine logs
#     event=spool with the ENOSPC reason, holds the outcomes in memory and
#     starts no new attempt until the spool takes writes again (so the
#     accepted recipient is never sent again), and leaves no temporary file;
#   - a staged message with a recipient refused (550) waits in new/ while
#     deliveries are paused; its bounce is written once space returns.
# Then the fillers are deleted and `sealpost flush` run: the deferred
# message's state is written, submit works again, and once the peer accepts
# the deferred recipient every recipient has arrived exactly once, the
# bounce (if any) once, and the queue, new/ and tmp/ are empty.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init disk_full
engine=
# Stop the engine and unmount before the harness removes the work folder.
disk_full_cleanup() {
	[ -n "$engine" ] && kill -KILL "$engine" 2>/dev/null && { wait "$engine"; } 2>/dev/null
	mountpoint -q "$W/spool" && umount -l "$W/spool"
	h_cleanup
}
trap disk_full_cleanup EXIT

mkdir -p "$W/spool"
SHIM=
if command -v cc >/dev/null &&
	cc -shared -fPIC -o "$W/faultfs.so" "$SEALPOST_SRC/tests/lib/faultfs.c" -ldl 2>"$W/cc.err"; then
	SHIM=$W/faultfs.so
else
	echo "# no LD_PRELOAD shim: $(cat "$W/cc.err" 2>/dev/null)"
fi
# faulty MODE CMD... - run CMD with the shim's MODE faults on the spool while
# $W/full exists (ASan must accept a library loaded before its runtime)
faulty() {
	local mode=$1
	shift
	env LD_PRELOAD="$SHIM" FAULTFS_DIR="$SEALPOST_SPOOL" FAULTFS_CTL="$W/full" FAULTFS_MODE="$mode" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}

# I/O errors in submit (shim on a plain folder): a clean failure, nothing left.
if [ -n "$SHIM" ]; then
	mkdir -p "$W/spool/io"
	touch "$W/full"
	for f in "w:write ENOSPC:No space left on device" "s:fsync EIO:Input/output error" \
		"o:create ENOSPC:No space left on device" "r:rename EIO:Input/output error" \
		"d:fsync of new/ EIO:Input/output error"; do
		mode=${f%%:*} what=${f#*:} why=${f##*:}
		what=${what%%:*}
		rc=0
		printf 'Subject: io\n\nx\n' | SEALPOST_SPOOL=$W/spool/io faulty "$mode" "$SP" submit ok@d.test \
			>"$W/io.out" 2>"$W/io.err" || rc=$?
		check "submit, $what: exits 75 or 73 (got $rc)" test "$rc" -eq 75 -o "$rc" -eq 73
		check "submit, $what: says why: $(head -c 150 "$W/io.err")" grep -q "$why" "$W/io.err"
		check "submit, $what: nothing left in new/ or tmp/" \
			test "$(find "$W/spool/io/new" "$W/spool/io/tmp" -type f | wc -l)" -eq 0
	done
	rm -rf "$W/full" "$W/spool/io"
fi

MODE=tmpfs
# DISK_FULL_SHIM=1 forces the shim (to test the fallback as root).
if [ -n "${DISK_FULL_SHIM:-}" ] && [ -n "$SHIM" ]; then
	echo "mount not tried: DISK_FULL_SHIM is set" >"$W/mount.err"
	mounted=0
elif mount -t tmpfs -o size=2m,mode=0750 tmpfs "$W/spool" 2>"$W/mount.err"; then
	mounted=1
else
	mounted=0
fi
if [ "$mounted" = 0 ]; then
	if [ -z "$SHIM" ]; then
		echo "# skipped: cannot mount a tmpfs here ($(cat "$W/mount.err")) and no shim"
		h_done
	fi
	echo "# cannot mount a tmpfs here ($(cat "$W/mount.err")): the disk is made full by the shim"
	MODE=shim
fi
# engine_env CMD... - CMD as it runs on the spool (through the shim if no tmpfs)
engine_env() {
	if [ "$MODE" = shim ]; then
		faulty w "$@"
	else
		"$@"
	fi
}
# engine_start - the long-running engine, as engine_env would run it; $! is
# the engine itself (a simple command, not a function), so signals reach it
engine_start() {
	if [ "$MODE" = shim ]; then
		LD_PRELOAD="$SHIM" FAULTFS_DIR="$SEALPOST_SPOOL" FAULTFS_CTL="$W/full" FAULTFS_MODE=w \
			ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
			"$SP" run >>"$W/engine.log" 2>&1 &
	else
		"$SP" run >>"$W/engine.log" 2>&1 &
	fi
	engine=$!
}

h_dns "mx.test. 300 IN A 127.0.0.1"
h_sink a --tempfail-rcpt later@d.test --permfail-rcpt nobody@d.test
export SEALPOST_ROUTES="*=mx.test:$SINK_PORT_a"
export SEALPOST_RETRY_MIN=1s SEALPOST_RETRY_MAX=1s SEALPOST_SCAN_INTERVAL=1s

for i in 1 2 3; do
	h_fax "full-$i" | h_submit fax@fax.test "ok$i@d.test" || exit 1
done
# Two more, staged on the same file system, to be renamed into new/ later
# (a rename needs no space).
mkdir -p "$W/spool/stage"
{ printf 'MAIL FROM:<fax@fax.test>\nRCPT TO:<ok4@d.test>\nRCPT TO:<later@d.test>\n\n'; h_fax full-4; } \
	>"$W/spool/stage/m4"
{ printf 'MAIL FROM:<fax@fax.test>\nRCPT TO:<ok5@d.test>\nRCPT TO:<nobody@d.test>\n\n'; h_fax full-5; } \
	>"$W/spool/stage/m5"

# fill - take every free byte of the spool (again: removals free pages)
fill() {
	if [ "$MODE" = shim ]; then
		touch "$W/full"
		return 0
	fi
	# Never outside the 2 MB tmpfs, and never more than 4 MB whatever happens.
	mountpoint -q "$W/spool" || { echo "fill: $W/spool is not the test tmpfs"; return 1; }
	dd if=/dev/zero of="$W/spool/filler.$1" bs=4096 count=1024 2>/dev/null
	test "$(df --output=avail -B1 "$W/spool" | tail -n 1)" -lt 4096
}
# unfill - space returns
unfill() {
	rm -f "$W"/spool/filler.* "$W/full"
}
check "the spool is full" fill 1

# submit on a full disk
rc=0
h_fax "refused" | engine_env "$SP" submit -f fax@fax.test ok9@d.test >"$W/submit.out" 2>"$W/submit.err" || rc=$?
check "submit on a full disk exits 75 or 73 (got $rc)" test "$rc" -eq 75 -o "$rc" -eq 73
check "submit says why: $(head -c 200 "$W/submit.err")" grep -q 'No space left on device' "$W/submit.err"
check "submit prints no queue id" test ! -s "$W/submit.out"
check "submit leaves nothing in new/ beyond the 3 queued" test "$(count_files "$W/spool/new" '*')" -eq 3
check "submit leaves nothing in tmp/" test "$(count_files "$W/spool/tmp" '*')" -eq 0

# wait_for SECONDS CMD... - until CMD succeeds
wait_for() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
stored() {
	cat "$W"/a.store/*.env "$W"/b.store/*.env 2>/dev/null | grep -c "^rcpt=$1\$"
}
arrived() {
	[ "$(stored "$1")" -ge 1 ]
}

engine_start
check "with the disk full, messages are claimed, delivered and removed" \
	wait_for 10 sh -c "[ \$(cat '$W'/a.store/*.env 2>/dev/null | grep -c '^rcpt=ok') -ge 3 ] && [ -z \"\$(ls '$W/spool/msg')\" ]"
check "the spool is full again" fill 2

# A message with a recipient the peer defers (451) arrives.
mv "$W/spool/stage/m4" "$W/spool/new/m4"
m4=
find_m4() {
	m4=$(grep -l '^RCPT TO:<later@d.test>' "$W"/spool/msg/* 2>/dev/null | head -n 1)
	m4=${m4##*/}
	[ -n "$m4" ]
}
check "it is claimed on the full disk" wait_for 5 find_m4
check "the failed state write is logged with its reason" \
	wait_for 5 log_has "event=spool .*$m4.*No space left on device"
# log_count REGEX N - the engine log has at least N matching lines
log_count() {
	[ "$(grep -Ec -- "$1" "$W/engine.log")" -ge "$2" ]
}
check "its outcomes are held in memory and new attempts pause" \
	wait_for 5 log_has "event=spool .*$m4.*held in memory, new deliveries paused"
sleep 2
check "no new attempt while the state cannot be written (attempts stay 1)" \
	test "$(grep -Ec "event=delivery .*id=$m4 .*rcpt=later@d.test .*status=deferred" "$W/engine.log")" -eq 1
check "the engine is still running" kill -0 "$engine"
check "the deferred message is still queued" test -f "$W/spool/msg/$m4"
check "its state could not be written" test ! -e "$W/spool/state/$m4"
check "no temporary state file left behind" test "$(find "$W/spool/state" -name '.*' | wc -l)" -eq 0
check "the recipient accepted before the failed write is not sent again" test "$(stored ok4@d.test)" -eq 1
check "nothing in new/" test "$(count_files "$W/spool/new" '*')" -eq 0

# A message with a recipient the peer refuses (550): if this engine writes
# bounces, the bounce cannot be written now and must not be lost.
DSN=0
grep -q 'delivery-status' "$SP" && DSN=1
mv "$W/spool/stage/m5" "$W/spool/new/m5"
sleep 1
check "a new message waits in new/ while deliveries are paused (nothing lost)" \
	test -e "$W/spool/new/m5"
check "the engine is still running" kill -0 "$engine"

# Space returns.
unfill
# As an operator would once the disk is fixed: everything due now (a bounce
# that could not be written may otherwise wait a while for its retry).
"$SP" flush >/dev/null
check "once space returns, the deferred message's state is written at its next attempt" \
	wait_for 5 test -s "$W/spool/state/$m4"
rc=0
h_fax "after" | "$SP" submit -f fax@fax.test ok6@d.test >"$W/submit2.out" 2>&1 || rc=$?
check "submit works again (exit $rc)" test "$rc" -eq 0
check "a message submitted after the recovery is delivered" wait_for 10 arrived ok6@d.test

# The peer now accepts the deferred recipient.
h_sink_stop a
mkdir -p "$W/b.store"
"$BENCH" sink --listen "127.0.0.1:$SINK_PORT_a" --cert "$W/certs/server.pem" --key "$W/certs/server.key" \
	--store "$W/b.store" --duration 120 --quiet >"$W/b.log" 2>&1 &
H_PIDS+=($!)
check "the deferred recipient is delivered" wait_for 15 arrived later@d.test
check "the queue empties" wait_for 10 queue_empty
for r in ok1 ok2 ok3 ok4 ok5 ok6 later; do
	check "$r arrived exactly once" test "$(stored "$r@d.test")" -eq 1
done
check "the refused recipient never arrived" test "$(stored nobody@d.test)" -eq 0
if [ "$DSN" = 1 ]; then
	check "the bounce for the refused recipient reached the sender exactly once" \
		test "$(grep -l 'Final-Recipient: rfc822; *nobody@d.test' "$W"/a.store/*.eml "$W"/b.store/*.eml 2>/dev/null | wc -l)" -eq 1
else
	echo "# this engine writes no bounces (DSN): the bounce on a full disk is not tested"
fi
kill -TERM "$engine"
rc=0
wait "$engine" || rc=$?
engine=
check "SIGTERM: the engine exits 0" test "$rc" -eq 0
check "nothing left in tmp/" test "$(count_files "$W/spool/tmp" '*')" -eq 0
check "nothing in corrupt/" test "$(count_files "$W/spool/corrupt" '*')" -eq 0
check "no crash, no assertion in the log" sh -c "! grep -Eq 'Assertion|AddressSanitizer|runtime error' '$W/engine.log'"
h_done
