# tests/lib/harness.sh - shared plumbing for the integration tests (sourced).
#
# Gives each test a private world on loopback: a work folder, test
# certificates, a real DNS server (unbound) serving the test. zone, real
# SMTP peers (the bundled sink, or the scripted bad peer), a spool, and
# helpers to run the engine and check what happened.
#
#   h_init NAME                  work dir $W, certs in $W/certs, binaries $SP, $BENCH
#   h_dns RECORDS...             start unbound with these records; sets $DNS_PORT
#   h_sink NAME ARGS...          start a sink; sets $SINK_PORT_<NAME>, store in $W/NAME.store
#   h_badpeer NAME MODE [ARGS]   start tests/lib/badpeer.py; sets $PEER_PORT_<NAME>
#   h_submit SENDER RCPT... <msg submit one message
#   h_drain [ENV=VAL...]         run `sealpost run --drain` with the test env; log in $W/engine.log
#   check DESC CMD...            one assertion: counts pass/fail, prints the outcome
#   h_done                       stops everything, prints "N passed, M failed", exit status
#
# Every server is started with a bounded lifetime and stopped on exit.

set -u
: "${SEALPOST_BUILD:?SEALPOST_BUILD must name the build folder}"
: "${SEALPOST_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
SP=$SEALPOST_BUILD/sealpost
BENCH=$SEALPOST_BUILD/sealpost-bench
PY=/usr/bin/python3
H_PASS=0
H_FAIL=0
H_PIDS=()

# h_free_port - a TCP+UDP port on 127.0.0.1 nobody listens on
h_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! ss -Htuln "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

h_init() {
	H_NAME=$1
	W=$(mktemp -d "/tmp/sealpost-$H_NAME.XXXXXX")
	trap h_cleanup EXIT
	bash "$SEALPOST_SRC/tests/lib/mkcerts.sh" "$W/certs" >/dev/null 2>&1 ||
		{ echo "harness: mkcerts failed"; exit 1; }
	export SEALPOST_SPOOL=$W/spool
	export SEALPOST_TLS_CA_FILE=$W/certs/ca.pem
	export SEALPOST_WORKERS=${SEALPOST_WORKERS:-2}
	export SEALPOST_HELO_NAME=client.sealpost.test
	export SEALPOST_LOG_LEVEL=${SEALPOST_LOG_LEVEL:-info}
	unset SEALPOST_ROUTES SEALPOST_TLS_POLICY SEALPOST_DNS_SERVERS
}

h_cleanup() {
	local pid
	for pid in "${H_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	[ -n "${DNS_DIR:-}" ] && bash "$SEALPOST_SRC/tests/lib/dns-server.sh" stop "$DNS_DIR" >/dev/null 2>&1
	wait 2>/dev/null || true
	if [ "${H_FAIL:-0}" -eq 0 ] && [ -z "${KEEP:-}" ]; then
		rm -rf "$W"
	else
		echo "harness: work folder kept: $W"
	fi
}

# h_dns RECORD... - unbound on a free port with these zone lines
h_dns() {
	DNS_DIR=$W/dns
	mkdir -p "$DNS_DIR"
	printf '%s\n' "$@" >"$DNS_DIR/records"
	for _ in 1 2 3 4 5; do
		DNS_PORT=$(h_free_port)
		if bash "$SEALPOST_SRC/tests/lib/dns-server.sh" start "$DNS_DIR" "$DNS_PORT" "$DNS_DIR/records" \
			>/dev/null 2>&1 && kill -0 "$(cat "$DNS_DIR/unbound.pid")" 2>/dev/null; then
			export SEALPOST_DNS_SERVERS=127.0.0.1:$DNS_PORT
			return 0
		fi
		bash "$SEALPOST_SRC/tests/lib/dns-server.sh" stop "$DNS_DIR" >/dev/null 2>&1
	done
	echo "harness: cannot start unbound"
	exit 1
}

# h_wait_file FILE - wait up to 5 s for FILE to be non-empty
h_wait_file() {
	for _ in $(seq 1 100); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# h_sink NAME [ARGS...] - a bundled sink with the test's server certificate
h_sink() {
	local name=$1
	shift
	mkdir -p "$W/$name.store"
	"$BENCH" sink --listen 127.0.0.1:0 --port-file "$W/$name.port" --cert "$W/certs/server.pem" \
		--key "$W/certs/server.key" --store "$W/$name.store" --json "$W/$name.json" \
		--duration 300 --quiet "$@" >"$W/$name.log" 2>&1 &
	H_PIDS+=($!)
	eval "SINK_PID_$name=$!"
	h_wait_file "$W/$name.port" || { echo "harness: sink $name did not start"; cat "$W/$name.log"; exit 1; }
	eval "SINK_PORT_$name=$(cat "$W/$name.port")"
}

# h_sink_stop NAME - stop a sink so that it writes its JSON summary
h_sink_stop() {
	local pid
	eval "pid=\$SINK_PID_$1"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
}

# h_badpeer NAME MODE [ARGS...] - a scripted misbehaving SMTP server
h_badpeer() {
	local name=$1 mode=$2
	shift 2
	$PY "$SEALPOST_SRC/tests/lib/badpeer.py" --mode "$mode" --port-file "$W/$name.port" \
		--cert "$W/certs/server.pem" --key "$W/certs/server.key" --log "$W/$name.transcript" \
		--duration 300 "$@" >"$W/$name.log" 2>&1 &
	H_PIDS+=($!)
	h_wait_file "$W/$name.port" || { echo "harness: badpeer $name did not start"; cat "$W/$name.log"; exit 1; }
	eval "PEER_PORT_$name=$(cat "$W/$name.port")"
}

# h_submit SENDER RCPT... - submit stdin as one message
h_submit() {
	local sender=$1
	shift
	"$SP" submit -f "$sender" "$@" >/dev/null
}

# h_fax ID - a small fax-like message with a Message-ID and an attachment
h_fax() {
	local id=$1 size=${2:-3000}
	printf 'From: Fax Service <fax-noreply@fax.test>\nTo: someone@dest.test\n'
	printf 'Subject: Fax %s\nMessage-ID: <%s@fax.test>\nMIME-Version: 1.0\n' "$id" "$id"
	printf 'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
	printf 'You have a fax.\n.a line starting with a dot\n..two dots\n.\nend\n'
	printf -- '--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n'
	head -c "$size" /dev/urandom | base64
	printf -- '--b--\n'
}

# h_drain [VAR=VALUE...] - one engine run until nothing is due; 0 on exit 0.
# SEALPOST_ENGINE_WRAPPER (word-split) runs the engine under a checker, e.g.
# "valgrind --error-exitcode=99 --leak-check=full" (build.sh test does);
# SEALPOST_DRAIN_TIMEOUT gives such a slow run more than 120 s.
h_drain() {
	# shellcheck disable=SC2086
	env "$@" timeout "${SEALPOST_DRAIN_TIMEOUT:-120}" ${SEALPOST_ENGINE_WRAPPER:-} \
		"$SP" run --drain >>"$W/engine.log" 2>&1
}

# check DESC CMD... - one assertion
check() {
	local desc=$1
	shift
	if "$@"; then
		H_PASS=$((H_PASS + 1))
		echo "ok - $desc"
	else
		H_FAIL=$((H_FAIL + 1))
		echo "FAIL - $desc"
	fi
}

# count_files DIR PATTERN - number of files matching
count_files() {
	find "$1" -mindepth 1 -maxdepth 1 -type f -name "$2" 2>/dev/null | wc -l
}

# queue_empty - nothing left in the spool's queue folders
queue_empty() {
	[ "$(count_files "$SEALPOST_SPOOL/msg" '*')" -eq 0 ] &&
		[ "$(count_files "$SEALPOST_SPOOL/new" '*')" -eq 0 ]
}

# log_has REGEX - the engine log has a matching line
log_has() {
	grep -Eq -- "$1" "$W/engine.log"
}

h_done() {
	echo "$H_PASS passed, $H_FAIL failed"
	if [ "$H_FAIL" -ne 0 ]; then
		echo "--- engine log (last 60 lines) ---"
		tail -n 60 "$W/engine.log" 2>/dev/null
		exit 1
	fi
	exit 0
}
