#!/usr/bin/env bash
# soak.sh - the engine under steady load for a long time: does anything grow?
#
#   bench/soak.sh BUILD_DIR [MINUTES (10)] [RATE msgs/s (200)] [--keep]
#
# `sealpost run` (the daemon, not --drain) delivers over verified TLS
# (tests/lib/mkcerts.sh certificates, SEALPOST_TLS_CA_FILE) into the bundled
# sink, which answers 1% of RCPTs 451 and 1% 550 (random draws, so a retried
# 451 usually goes through).  `sealpost-bench fill --rate RATE` writes
# RATE*MINUTES*60 messages into new/ at a steady pace.  SEALPOST_RETRY_MIN=30s
# makes the deferred ones come back during the run.  The sender's domain is
# routed to a second sink without faults, so every DSN for a 550 is
# delivered and can be counted apart from the originals (a DSN refused in
# turn would be dropped by design, which would blur the loss check).
#
# Every SOAK_INTERVAL seconds one sample: engine RSS (VmRSS), open fds,
# spool files (msg/ state/ new/), sink totals and the engine's recipient
# counters (its metrics endpoint).  After the fill: a tail for the due
# retries, an idle pause longer than the SMTP idle timeout, the fd count
# again, SIGTERM (exit 0 expected), sinks stopped, `sealpost queue --json`.
#
# Verdict (exit 0 only when all hold):
#   RSS flat       last third's average <= first third's * 1.10 (samples
#                  after SOAK_WARMUP seconds of the fill)
#   no fd leak     fds idle before the fill == fds idle after it
#   spool bounded  at the end of the fill, msg/ <= messages holding a
#                  deferred recipient + RATE*2 in flight; at the end,
#                  msg/ == queued messages, all holding deferred recipients,
#                  and new/ empty
#   no loss        sink recipients + bounced + deferred-in-queue == submitted;
#                  every bounced recipient has a DSN, every DSN arrived or
#                  is still queued
#   no crash       the engine lived through it and SIGTERM ended it with 0
#
# Knobs (environment): SOAK_SIZE [20000] attachment bytes, SOAK_RCPTS [2]
# recipients per message, SOAK_DOMAINS [20], SOAK_SEED [1], SOAK_WARMUP [60] s,
# SOAK_INTERVAL [10] s, SOAK_TAIL [150] s for retries after the fill,
# SOAK_WORKERS [2].  Everything lives in one temp folder, removed at the end
# unless --keep.  Not part of ctest/CI: it takes MINUTES plus about 3.
set -u

keep=0
pos=()
for a in "$@"; do
	case $a in
	--keep) keep=1 ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d'; exit 0 ;;
	*) pos+=("$a") ;;
	esac
done
[ "${#pos[@]}" -ge 1 ] || { echo "usage: soak.sh BUILD_DIR [MINUTES] [RATE] [--keep]" >&2; exit 2; }
build=$(cd "${pos[0]}" && pwd) || exit 2
minutes=${pos[1]:-10}
rate=${pos[2]:-200}
src=$(cd "$(dirname "$0")/.." && pwd)
SP=$build/sealpost
BENCH=$build/sealpost-bench
size=${SOAK_SIZE:-20000}
rcpts=${SOAK_RCPTS:-2}
domains=${SOAK_DOMAINS:-20}
seed=${SOAK_SEED:-1}
warmup=${SOAK_WARMUP:-60}
interval=${SOAK_INTERVAL:-10}
tail_s=${SOAK_TAIL:-150}
sender=fax-noreply@fax.sealpost.test
for f in "$SP" "$BENCH"; do
	[ -x "$f" ] || { echo "soak: $f is not built" >&2; exit 2; }
done
case "$minutes$rate" in *[!0-9]*) echo "soak: MINUTES and RATE are whole numbers" >&2; exit 2 ;; esac
[ "$minutes" -ge 1 ] && [ "$rate" -ge 1 ] || { echo "soak: MINUTES and RATE are at least 1" >&2; exit 2; }
nmsg=$((rate * minutes * 60))
nrcpt=$((nmsg * rcpts))
fill_s=$((minutes * 60))
# Every server gets a lifetime that outlasts the run but ends by itself.
life=$((fill_s + tail_s + 600))

W=$(mktemp -d /tmp/sealpost-soak.XXXXXX)
SPOOL=$W/spool
pids=()
engine=

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null
	if [ "$keep" -eq 1 ]; then
		echo "soak: work folder kept: $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf 'soak: %s\n' "$*"; }
die() { say "$*"; exit 1; }

# wait_file FILE SECS - FILE non-empty within SECS
wait_file() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# free_port - a TCP port on 127.0.0.1 no socket uses, below the ephemeral range
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# start_sink NAME ARGS... - a STARTTLS sink with the test server certificate
start_sink() {
	local name=$1
	shift
	"$BENCH" sink --listen 127.0.0.1:0 --port-file "$W/$name.port" --cert "$W/certs/server.pem" \
		--key "$W/certs/server.key" --json "$W/$name.json" --duration "$life" "$@" \
		>"$W/$name.out" 2>"$W/$name.log" &
	pids+=($!)
	eval "${name}_pid=$!"
	wait_file "$W/$name.port" 10 || { cat "$W/$name.log"; die "sink $name did not start"; }
}

# stop_pid PID SECS - SIGTERM, wait up to SECS; the exit status, 124 on timeout
stop_pid() {
	local end=$((SECONDS + $2))
	kill -TERM "$1" 2>/dev/null || return 127
	while [ $SECONDS -lt $end ]; do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			return $?
		fi
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}

nfiles() { find "$SPOOL/$1" -mindepth 1 -maxdepth 1 -type f 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$engine/status" 2>/dev/null || echo 0; }
nfds() { find "/proc/$engine/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# fd_kinds - the engine's fds by kind (socket, anon_inode:[io_uring], file path)
fd_kinds() {
	local f
	for f in /proc/"$engine"/fd/*; do
		readlink "$f" 2>/dev/null | sed -e 's/^socket:.*/socket/' -e 's/^pipe:.*/pipe/' \
			-e 's/^anon_inode:\[\(.*\)\].*/anon_inode:\1/' -e 's/^anon_inode:\(.*\)/anon_inode:\1/'
	done | sort | uniq -c
}
# sink_field NAME INDEX - a figure from the sink's last per-second line:
# "sink: 12s 345 msgs 28 msgs/s 6 conns 9.1 MB 0 errors" (3 msgs, 7 conns, 11 errors)
sink_field() {
	grep '^sink: .* msgs ' "$W/$1.log" 2>/dev/null | tail -n 1 |
		awk -v i="$2" '{ v = $i + 0 } END { print v + 0 }'
}
# metric STATUS - the engine's recipient counter for sent|deferred|bounced
metric() {
	awk -v s="$1" 'index($0, "sealpost_recipients_total{status=\"" s "\"}") == 1 { print $2 + 0 }' \
		"$W/metrics.txt" 2>/dev/null | head -n 1
}

# sample PHASE - one line of the samples table
sample() {
	local t=$((SECONDS - t0)) rss fds
	rss=$(rss_kb)
	fds=$(nfds)
	timeout 5 curl -s "http://127.0.0.1:$mport/metrics" >"$W/metrics.txt" 2>/dev/null || : >"$W/metrics.txt"
	printf '%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n' "$1" "$t" "$rss" "$fds" \
		"$(nfiles msg)" "$(nfiles state)" "$(nfiles new)" "$(sink_field dest 3)" \
		"$(sink_field dest 7)" "$(metric sent)" "$(metric deferred)" "$(metric bounced)" \
		"$(sink_field dsn 3)" >>"$W/samples.tsv"
	tail -n 1 "$W/samples.tsv" | awk -F'\t' '{ printf "soak: %-5s t=%4ds rss=%6d KB fds=%4d msg/=%5d state/=%5d new/=%5d sink=%7d conns=%5d sent=%7s deferred=%5s bounced=%5s dsn=%5d\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 }'
}

# engine_alive - 0 while the engine process runs
engine_alive() { kill -0 "$engine" 2>/dev/null; }

# queue_json FILE - `sealpost queue --json` into FILE
queue_json() {
	SEALPOST_SPOOL=$SPOOL timeout 60 "$SP" queue --json >"$1" 2>"$1.err"
}
# deferred_rcpts FILE - recipients not final in the queued originals
deferred_rcpts() {
	jq '[.messages[] | select(.sender != "") | .recipients[]
		| select(.status == "deferred" or .status == "pending")] | length' "$1" 2>/dev/null || echo -1
}
# deferred_msgs FILE - queued messages holding a recipient not final
deferred_msgs() {
	jq '[.messages[] | select([.recipients[] | select(.status == "deferred" or .status == "pending")]
		| length > 0)] | length' "$1" 2>/dev/null || echo -1
}
# queued_dsns FILE - DSN messages (sender <>) still queued
queued_dsns() {
	jq '[.messages[] | select(.sender == "")] | length' "$1" 2>/dev/null || echo -1
}

say "work folder $W"
say "$minutes min at $rate msgs/s: $nmsg messages x $rcpts recipients = $nrcpt, attachment $size bytes, $domains domains"
bash "$src/tests/lib/mkcerts.sh" "$W/certs" >/dev/null 2>&1 || die "mkcerts failed"
start_sink dest -j 1 --rcpt-tempfail 1 --rcpt-permfail 1 --seed "$seed"
start_sink dsn -j 1
dest_port=$(cat "$W/dest.port")
dsn_port=$(cat "$W/dsn.port")

unset SEALPOST_TLS_POLICY SEALPOST_DNS_SERVERS SEALPOST_TLS_LEVEL SEALPOST_QUEUE_LIFETIME \
	SEALPOST_RETRY_MAX SEALPOST_DELAY_WARNING
export SEALPOST_SPOOL=$SPOOL
export SEALPOST_TLS_CA_FILE=$W/certs/ca.pem
export SEALPOST_ROUTES="fax.sealpost.test=localhost:$dsn_port,*=localhost:$dest_port"
export SEALPOST_RETRY_MIN=30s
export SEALPOST_WORKERS=${SOAK_WORKERS:-2}
export SEALPOST_HELO_NAME=client.sealpost.test
export SEALPOST_LOG_LEVEL=info
mkdir -p "$SPOOL"

# The engine, with its metrics endpoint on a free port (another try when
# someone took the port in between).
for try in 1 2 3 4 5; do
	mport=$(free_port) || die "no free port for metrics"
	export SEALPOST_METRICS_LISTEN=127.0.0.1:$mport
	"$SP" run >"$W/engine.log" 2>&1 &
	engine=$!
	end=$((SECONDS + 15))
	until grep -q 'sealpost running' "$W/engine.log" 2>/dev/null; do
		engine_alive || break
		if [ $SECONDS -ge $end ]; then
			kill "$engine"
			die "the engine did not say it is running within 15 s"
		fi
		sleep 0.1
	done
	engine_alive && break
	wait "$engine"
	grep -q 'METRICS_LISTEN.*in use' "$W/engine.log" && [ "$try" -lt 5 ] && continue
	tail -n 20 "$W/engine.log"
	die "the engine did not start"
done
pids+=($engine)
sleep 2
t0=$SECONDS
printf 'phase\tt\trss_kb\tfds\tmsg\tstate\tnew\tsink_msgs\tsink_conns\tsent\tdeferred\tbounced\tdsn_msgs\n' >"$W/samples.tsv"
sample idle
fds_before=$(nfds)
fd_kinds >"$W/fds.before"

"$BENCH" fill --spool "$SPOOL" -n "$nmsg" --size "$size" --domains "$domains" \
	--domain-fmt "d%d.soak.test" --rcpts-per-msg "$rcpts" --sender "$sender" \
	--rate "$rate" --seed "$seed" >"$W/fill.log" 2>"$W/fill.err" &
fill=$!
pids+=($fill)
t_fill=$SECONDS
crashed=0
fill_deadline=$((SECONDS + fill_s + 120))
next=$((SECONDS + interval))
while kill -0 "$fill" 2>/dev/null; do
	if [ $SECONDS -ge "$fill_deadline" ]; then
		say "the fill overran its deadline: stopped"
		kill "$fill" 2>/dev/null
		break
	fi
	if [ $SECONDS -ge $next ]; then
		sample fill
		next=$((next + interval))
	fi
	engine_alive || { crashed=1; break; }
	sleep 0.5
done
wait "$fill"
fill_rc=$?
fill_real=$((SECONDS - t_fill))
[ "$crashed" -eq 1 ] && { tail -n 30 "$W/engine.log"; die "the engine died during the fill"; }
[ "$fill_rc" -eq 0 ] || say "fill exit status $fill_rc after ${fill_real} s: $(tail -n 3 "$W/fill.err")"
sample end
msg_fill_end=$(nfiles msg)
queue_json "$W/queue.fill.json"
defm_fill_end=$(deferred_msgs "$W/queue.fill.json")
defr_fill_end=$(deferred_rcpts "$W/queue.fill.json")

# Tail: the retries due soon finish; stop when nothing is left in msg/ and
# new/, or at the deadline (30 s, 60 s, 120 s ... backoff may outlast it).
tail_end=$((SECONDS + tail_s))
next=$((SECONDS + interval))
while [ $SECONDS -lt $tail_end ]; do
	engine_alive || { crashed=1; break; }
	[ "$(nfiles msg)" -eq 0 ] && [ "$(nfiles new)" -eq 0 ] && break
	if [ $SECONDS -ge $next ]; then
		sample tail
		next=$((next + interval))
	fi
	sleep 0.5
done
[ "$crashed" -eq 1 ] && { tail -n 30 "$W/engine.log"; die "the engine died after the fill"; }

# Idle: no delivery for longer than the SMTP idle timeout (5 s), so cached
# sessions have said QUIT; then the fd count must be what it was before.
quiet_end=$((SECONDS + 90))
last=-1
quiet_since=$SECONDS
while [ $SECONDS -lt $quiet_end ]; do
	now=$(( $(sink_field dest 3) + $(sink_field dsn 3) ))
	if [ "$now" -ne "$last" ]; then
		last=$now
		quiet_since=$SECONDS
	elif [ $((SECONDS - quiet_since)) -ge 8 ]; then
		break
	fi
	sleep 0.5
done
sample idle
fds_after=$(nfds)
fd_kinds >"$W/fds.after"
rss_end=$(rss_kb)

stop_pid "$engine" 60
engine_rc=$?
stop_pid "$dest_pid" 10
stop_pid "$dsn_pid" 10
queue_json "$W/queue.end.json"

# ---- figures ----
sent_log=$(grep -c 'event=delivery .*status=sent' "$W/engine.log")
bounced=$(grep 'event=delivery .*status=bounced' "$W/engine.log" | grep -vc "rcpt=\"\?$sender")
dsn_failed=$(grep 'event=dsn .*action=failed' "$W/engine.log" | grep -c .)
dsn_ids=$(grep -o 'event=dsn .*' "$W/engine.log" | grep -o 'dsn_id=[^ ]*' | sort -u | wc -l)
dropped=$(grep -c 'event=bounce_dropped' "$W/engine.log")
errors=$(grep -c 'level=error' "$W/engine.log")
delivered=$(jq '.recipients' "$W/dest.json" 2>/dev/null || echo -1)
dest_msgs=$(jq '.messages' "$W/dest.json" 2>/dev/null || echo -1)
dest_tf=$(jq '.tempfails' "$W/dest.json" 2>/dev/null || echo -1)
dest_pf=$(jq '.permfails' "$W/dest.json" 2>/dev/null || echo -1)
dest_err=$(jq '.errors' "$W/dest.json" 2>/dev/null || echo -1)
dest_conns=$(jq '.connections' "$W/dest.json" 2>/dev/null || echo -1)
dsn_got=$(jq '.messages' "$W/dsn.json" 2>/dev/null || echo -1)
deferred_end=$(deferred_rcpts "$W/queue.end.json")
defm_end=$(deferred_msgs "$W/queue.end.json")
dsn_queued=$(queued_dsns "$W/queue.end.json")
queued_end=$(jq '.messages | length' "$W/queue.end.json" 2>/dev/null || echo -1)
msg_end=$(nfiles msg)
state_end=$(nfiles state)
new_end=$(nfiles new)
corrupt_end=$(find "$SPOOL/corrupt" -mindepth 1 -maxdepth 1 -type f 2>/dev/null | wc -l)
# What the fill really wrote: the originals the engine queued (their
# recipients), plus anything never picked up.
submitted=$(grep 'event=queued' "$W/engine.log" | grep -F "from=$sender " |
	grep -o 'nrcpt=[0-9]*' | awk -F= '{ s += $2 } END { print s + 0 }')
submitted=$((submitted + new_end * rcpts))

echo
echo "=== samples (every ${interval} s; rss in KB) ==="
column -t -s "$(printf '\t')" "$W/samples.tsv" 2>/dev/null || cat "$W/samples.tsv"

# RSS: fill samples after the warm-up, first third against last third.
read -r rss_n rss_first rss_last rss_min rss_max <<EOF
$(awk -F'\t' -v w="$warmup" '$1 == "fill" && $2 >= w { v[n++] = $3 }
	END {
		if (n < 3) { print n, 0, 0, 0, 0; exit }
		k = int(n / 3); mn = v[0]; mx = v[0]
		for (i = 0; i < n; i++) { if (v[i] < mn) mn = v[i]; if (v[i] > mx) mx = v[i] }
		for (i = 0; i < k; i++) { a += v[i]; b += v[n - k + i] }
		printf "%d %.0f %.0f %d %d\n", n, a / k, b / k, mn, mx
	}' "$W/samples.tsv")
EOF
# Where the last third starts and ends: a step (high-water mark after a
# burst) looks different from a slope (a leak).
read -r rss_l0 rss_l1 <<EOF
$(awk -F'\t' -v w="$warmup" '$1 == "fill" && $2 >= w { v[n++] = $3 }
	END { k = int(n / 3); if (k < 1) print 0, 0; else print v[n - k], v[n - 1] }' "$W/samples.tsv")
EOF
max_msg=$(awk -F'\t' '$1 == "fill" && $5 > m { m = $5 } END { print m + 0 }' "$W/samples.tsv")
max_new=$(awk -F'\t' '$1 == "fill" && $7 > m { m = $7 } END { print m + 0 }' "$W/samples.tsv")
max_fds=$(awk -F'\t' 'NR > 1 && $4 > m { m = $4 } END { print m + 0 }' "$W/samples.tsv")
sink_rate=$(jq '.rate' "$W/dest.json" 2>/dev/null || echo -1)

echo
echo "=== figures ==="
printf '%-44s %s\n' \
	"fill" "$nmsg msgs x $rcpts rcpts asked, ${fill_real} s, exit $fill_rc" \
	"RSS after warm-up (${rss_n} samples)" "first third avg ${rss_first} KB, last third avg ${rss_last} KB, min ${rss_min}, max ${rss_max}; at the end ${rss_end} KB" \
	"RSS within the last third" "from ${rss_l0} to ${rss_l1} KB" \
	"fds idle before / after / max" "$fds_before / $fds_after / $max_fds" \
	"max msg/ / new/ during the fill" "$max_msg / $max_new" \
	"at the end of the fill: msg/" "$msg_fill_end (messages with a deferred rcpt: $defm_fill_end, deferred rcpts: $defr_fill_end)" \
	"at the end: msg/ state/ new/ corrupt/" "$msg_end $state_end $new_end $corrupt_end" \
	"at the end: queued msgs (DSNs) / deferred rcpts" "$queued_end ($dsn_queued) / $deferred_end" \
	"submitted recipients" "$submitted" \
	"sink: recipients accepted (msgs)" "$delivered ($dest_msgs)" \
	"sink: 451 / 550 answers, errors, connections" "$dest_tf / $dest_pf, $dest_err, $dest_conns" \
	"sink: rate" "$sink_rate msgs/s" \
	"engine log: rcpts sent (DSNs incl.) / bounced" "$sent_log / $bounced" \
	"DSNs: failed rcpts reported / DSN msgs queued" "$dsn_failed / $dsn_ids" \
	"DSNs: received by the sender's sink" "$dsn_got" \
	"bounce_dropped / level=error lines" "$dropped / $errors" \
	"engine exit on SIGTERM" "$engine_rc"

echo
echo "=== verdict ==="
fail=0
verdict() {
	if [ "$2" -eq 0 ]; then
		echo "ok   - $1"
	else
		echo "FAIL - $1"
		fail=1
	fi
}
[ "$fill_rc" -eq 0 ] && [ "$submitted" -eq "$nrcpt" ]
verdict "the fill wrote everything: $submitted of $nrcpt recipients (exit $fill_rc)" $?
[ "$rss_n" -ge 3 ] && [ "$rss_last" -le $((rss_first * 110 / 100)) ]
verdict "RSS flat: last third ${rss_last} KB <= first third ${rss_first} KB + 10%" $?
[ "$fds_before" -eq "$fds_after" ]
verdict "no fd leak: $fds_before fds idle before, $fds_after after" $?
[ "$msg_fill_end" -le $((defm_fill_end + rate * 2)) ]
verdict "spool bounded at the end of the fill: msg/ $msg_fill_end <= $defm_fill_end deferred + $((rate * 2)) in flight" $?
[ "$msg_end" -eq "$queued_end" ] && [ "$defm_end" -eq "$((queued_end - 0))" ] &&
	[ "$msg_end" -le "$((deferred_end + dsn_queued))" ] && [ "$new_end" -eq 0 ] &&
	[ "$state_end" -le "$msg_end" ]
verdict "spool at the end: msg/ $msg_end == queued $queued_end, all deferred ($defm_end), <= deferred rcpts $deferred_end + DSNs $dsn_queued, new/ $new_end, state/ $state_end" $?
[ $((delivered + bounced + deferred_end)) -eq "$submitted" ]
verdict "no loss: sink $delivered + bounced $bounced + deferred $deferred_end = $((delivered + bounced + deferred_end)) == submitted $submitted" $?
[ "$dsn_failed" -eq "$bounced" ] && [ $((dsn_got + dsn_queued)) -eq "$dsn_ids" ] && [ "$dropped" -eq 0 ]
verdict "every bounce reported: $dsn_failed DSN rcpts for $bounced bounced; $dsn_got received + $dsn_queued queued == $dsn_ids DSNs" $?
[ "$engine_rc" -eq 0 ] && [ "$crashed" -eq 0 ]
verdict "no crash: engine alive throughout, exit $engine_rc on SIGTERM" $?
if [ "$fds_before" -ne "$fds_after" ]; then
	echo "--- fds by kind, before / after ---"
	diff "$W/fds.before" "$W/fds.after"
fi
[ "$fail" -eq 0 ] || keep=1
exit "$fail"
