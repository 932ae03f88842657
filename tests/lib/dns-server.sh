#!/usr/bin/env bash
# dns-server.sh - a throw-away authoritative DNS server (unbound) for tests.
#
#   dns-server.sh start DIR PORT RECORDS_FILE
#   dns-server.sh stop DIR
#
# start writes DIR/unbound.conf, runs /usr/sbin/unbound in the foreground
# mode in the background (pid in DIR/unbound.pid, log in DIR/unbound.log),
# listening on 127.0.0.1:PORT over UDP and TCP, and returns once it answers
# (exit 1 after 5 s if it never does).  It serves:
#
#   test.           static zone: only what RECORDS_FILE says; anything else
#                   under test. is NXDOMAIN
#   timeout.test.   queries are dropped: clients time out
#   refused.test.   answered with REFUSED
#
# RECORDS_FILE: one resource record a line in zone-file syntax, e.g.
#   mx.test. 300 IN MX 10 mx1.mx.test.
#   mx1.mx.test. 300 IN A 127.0.0.1
# Lines starting with "local-zone:" or "local-data:" are copied verbatim
# (other zones, other types); blank lines and # comments are skipped.
# UDP answers are limited to 512 bytes unless the client sends EDNS, so a
# large answer is truncated and the client must retry over TCP.
set -eu

usage() {
	echo "usage: $0 start DIR PORT RECORDS_FILE | stop DIR" >&2
	exit 2
}

# probe PORT SERIAL - 0 if our server answers test./SOA on PORT: the serial
# tells it apart from another test's server that got the port first
probe() {
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import socket, struct, sys
port = int(sys.argv[1])
serial = struct.pack(">I", int(sys.argv[2]))
q = bytes.fromhex("abcd01000001000000000000") + b"\x04test\x00" + b"\x00\x06\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
try:
    s.sendto(q, ("127.0.0.1", port))
    r, _ = s.recvfrom(4096)
    sys.exit(0 if r[:2] == b"\xab\xcd" and serial in r[12:] else 1)
except OSError:
    sys.exit(1)
EOF
}

# alive PID - 0 while PID runs (not gone, not a zombie)
alive() {
	local st
	st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

cmd=${1:-}
case "$cmd" in
start)
	[ $# -eq 4 ] || usage
	dir=$2 port=$3 records=$4
	mkdir -p "$dir"
	conf=$dir/unbound.conf
	serial=$(( ($$ * 65536 + RANDOM) % 2000000000 + 1 ))
	{
		echo "server:"
		echo "	username: \"\""
		echo "	chroot: \"\""
		echo "	directory: \"$dir\""
		echo "	pidfile: \"\""
		echo "	do-daemonize: no"
		echo "	use-syslog: no"
		echo "	logfile: \"$dir/unbound.log\""
		echo "	verbosity: 1"
		echo "	num-threads: 1"
		echo "	interface: 127.0.0.1"
		echo "	port: $port"
		echo "	do-ip4: yes"
		echo "	do-ip6: no"
		echo "	do-udp: yes"
		echo "	do-tcp: yes"
		echo "	so-reuseport: no"
		echo "	access-control: 127.0.0.0/8 allow"
		echo "	module-config: \"iterator\""
		echo "	trust-anchor-signaling: no"
		echo "	minimal-responses: yes"
		echo "	local-zone: \"test.\" static"
		echo "	local-data: \"test. 60 IN SOA ns.test. hostmaster.test. $serial 3600 600 86400 30\""
		echo "	local-zone: \"timeout.test.\" deny"
		echo "	local-zone: \"refused.test.\" refuse"
		while IFS= read -r line || [ -n "$line" ]; do
			case "$line" in
			''|'#'*) ;;
			local-zone:*|local-data:*) echo "	$line" ;;
			*) echo "	local-data: \"$line\"" ;;
			esac
		done <"$records"
		echo "remote-control:"
		echo "	control-enable: no"
	} >"$conf"
	/usr/sbin/unbound -d -c "$conf" >>"$dir/unbound.log" 2>&1 &
	echo $! >"$dir/unbound.pid"
	for _ in $(seq 1 50); do
		if probe "$port" "$serial"; then
			exit 0
		fi
		if ! kill -0 "$(cat "$dir/unbound.pid")" 2>/dev/null; then
			echo "dns-server: unbound exited; log:" >&2
			cat "$dir/unbound.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "dns-server: unbound does not answer on 127.0.0.1:$port; log:" >&2
	cat "$dir/unbound.log" >&2
	kill "$(cat "$dir/unbound.pid")" 2>/dev/null || true
	exit 1
	;;
stop)
	[ $# -eq 2 ] || usage
	dir=$2
	[ -f "$dir/unbound.pid" ] || exit 0
	pid=$(cat "$dir/unbound.pid")
	# unbound was orphaned when start returned, so once it exits it may
	# stay a zombie until init reaps it: a zombie counts as gone
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 30); do
		alive "$pid" || break
		sleep 0.05
	done
	if alive "$pid"; then
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/unbound.pid"
	;;
*)
	usage
	;;
esac
