#!/usr/bin/env bash
# compare-postfix.sh BUILD_DIR - the same fax-mail workload through sealpost
# and through Debian's Postfix, against the same sink, in one run; prints
# both delivery rates and their ratio.  A benchmark, not a test (not in
# ctest/CI): it installs postfix if missing and needs root.
#
#   bench/compare-postfix.sh build
#   N=5000 SIZE=60000 CONCURRENCY="20 50 100" bench/compare-postfix.sh build
#
# Workload: N messages (`sealpost-bench fill`: text part + SIZE-byte PDF
# attachment), one destination domain, forced verified TLS (the test CA,
# the certificate names localhost), delivered into `sealpost-bench sink`
# (STARTTLS required, --hash, SINK_THREADS threads) on 127.0.0.1.
#
# sealpost: `sealpost-bench run -n N --size SIZE` (pre-filled spool,
# `sealpost run --drain`; messages/s = sink messages / time from engine
# start to the last accepted message).
#
# Postfix: a throw-away instance in a temporary folder (`postfix -c DIR`;
# queue_directory and data_directory inside it; DIR listed in
# alternate_config_directories of /etc/postfix/main.cf, which is created
# minimal when absent and restored on exit; no chroot, so /etc/hosts is
# readable; tlsproxy enabled for smtp_tls_connection_reuse; maillog_file
# with maillog_file_prefixes).  relayhost = [localhost]:SINKPORT with
# smtp_tls_security_level = verify, smtp_tls_CAfile = test CA,
# smtp_tls_verify_cert_match = hostname, TLS session cache
# btree:$data_directory/smtp_scache, smtp_tls_connection_reuse = yes, and
# initial_destination_concurrency = default/smtp_destination_concurrency_limit
# = C for each C in CONCURRENCY (the best rate is kept and named).
# Messages are injected over SMTP into the instance's own smtpd and held
# there (header_checks: /^Subject:/ HOLD); once all N are in the hold queue,
# `postsuper -H ALL` + `postqueue -f` release them and only delivery is
# timed: from the release to the sink's N-th accepted message.
#
# Knobs (environment): N [5000], SIZE [60000], CONCURRENCY ["20 50 100"],
# SINK_THREADS [2] (both sinks), TIMEOUT seconds per delivery phase [300],
# KEEP=1 keeps the work folder.
set -euo pipefail

build=$(cd "${1:?usage: compare-postfix.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-5000}
size=${SIZE:-60000}
concs=${CONCURRENCY:-20 50 100}
sink_threads=${SINK_THREADS:-2}
limit=${TIMEOUT:-300}
bench=$build/sealpost-bench
py=/usr/bin/python3

for f in "$build/sealpost" "$bench"; do
	[ -x "$f" ] || { echo "compare: $f is not built" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "compare: needs root (Postfix's master runs as root)" >&2; exit 1; }
if ! command -v postfix >/dev/null 2>&1 && [ ! -x /usr/sbin/postfix ]; then
	echo "compare: installing postfix (debconf: No configuration)"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

work=$(mktemp -d "${TMPDIR:-/tmp}/sp-postfix.XXXXXX")
chmod 755 "$work"
pfdir=$work/pf
sink_pid=
main_cf=/etc/postfix/main.cf
main_cf_state=none
cleanup() {
	set +e
	[ -d "$pfdir" ] && timeout 30 postfix -c "$pfdir" stop >/dev/null 2>&1
	if [ -s "$pfdir/queue/pid/master.pid" ]; then
		kill "$(tr -d ' ' <"$pfdir/queue/pid/master.pid")" 2>/dev/null
	fi
	[ -n "$sink_pid" ] && kill -TERM "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
	case $main_cf_state in
	created) rm -f "$main_cf" ;;
	edited) cp "$work/main.cf.orig" "$main_cf" ;;
	esac
	if [ "${KEEP:-0}" = 1 ]; then echo "compare: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$src/tests/lib/mkcerts.sh" "$work/certs"
chmod 644 "$work/certs/ca.pem"

# --- sealpost -----------------------------------------------------------
echo "== sealpost: sealpost-bench run -n $n --size $size --sink-threads $sink_threads"
SEALPOST_SRC=$src timeout $((limit + 120)) "$bench" run -n "$n" --size "$size" --sink-threads "$sink_threads" \
	--json "$work/sealpost.json" --timeout "$limit"
sp_rate=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["msgs_per_s"])' \
	"$work/sealpost.json")

# --- the sink Postfix delivers into (the one `run` uses, same options) ----
"$bench" sink --listen 127.0.0.1:0 --port-file "$work/port" \
	--cert "$work/certs/server.pem" --key "$work/certs/server.key" --hash -j "$sink_threads" \
	--json "$work/sink.json" --timeline "$work/timeline" \
	--duration $((limit * 4 + 600)) --quiet >"$work/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "compare: sink did not start" >&2; cat "$work/sink.log" >&2; exit 1; }
sink_port=$(cat "$work/port")

# --- the messages, once, as spool files (envelope + message) --------------
"$bench" fill --spool "$work/spool" -n "$n" --size "$size" --domains 1 \
	--domain-fmt demo.test --crlf --quiet

# --- Postfix instance -----------------------------------------------------
mkdir -p "$pfdir/queue" "$pfdir/data"
chown postfix "$pfdir/data"
if [ -e "$main_cf" ]; then
	cp "$main_cf" "$work/main.cf.orig"
	main_cf_state=edited
	if grep -q '^alternate_config_directories' "$main_cf"; then
		sed -i "s|^alternate_config_directories *=.*|& $pfdir|" "$main_cf"
	else
		echo "alternate_config_directories = $pfdir" >>"$main_cf"
	fi
else
	main_cf_state=created
	printf 'compatibility_level = 3.6\nalternate_config_directories = %s\n' "$pfdir" >"$main_cf"
fi
inj_port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo '/^Subject:/ HOLD' >"$pfdir/header_checks"

# pf_config C - main.cf and master.cf for destination concurrency C
pf_config() {
	local c=$1
	cat >"$pfdir/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pfdir/queue
data_directory = $pfdir/data
myhostname = bench-postfix.test
mydomain = test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
header_checks = regexp:$pfdir/header_checks
in_flow_delay = 0
message_size_limit = 52428800
maillog_file = $pfdir/maillog
maillog_file_prefixes = $pfdir
relayhost = [localhost]:$sink_port
smtp_host_lookup = native
disable_dns_lookups = yes
smtp_tls_security_level = verify
smtp_tls_CAfile = $work/certs/ca.pem
smtp_tls_verify_cert_match = hostname
smtp_tls_session_cache_database = btree:\${data_directory}/smtp_scache
smtp_tls_connection_reuse = yes
smtp_tls_loglevel = 0
initial_destination_concurrency = $c
default_destination_concurrency_limit = $c
smtp_destination_concurrency_limit = $c
default_process_limit = $((c + 50))
EOF
	cat >"$pfdir/master.cf" <<EOF
127.0.0.1:$inj_port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# sink_count - messages the sink has accepted so far (last timeline line)
sink_count() {
	tail -n 1 "$work/timeline" 2>/dev/null | awk '{print $2+0}'
}

# pf_try C - inject N held messages, release, time the delivery; prints
# "RATE SENT DEFERRED BOUNCED SECONDS"
pf_try() {
	local c=$1 base t0 n_hold
	pf_config "$c"
	rm -f "$pfdir/maillog"
	postfix -c "$pfdir" check >"$work/pf-check.log" 2>&1 ||
		{ echo "compare: postfix check failed:" >&2; cat "$work/pf-check.log" >&2; return 1; }
	postfix -c "$pfdir" start >"$work/pf-start.log" 2>&1 ||
		{ echo "compare: postfix start failed:" >&2; cat "$work/pf-start.log" >&2; return 1; }
	for _ in $(seq 100); do
		"$py" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
			"$inj_port" 2>/dev/null && break
		sleep 0.1
	done
	# inject over SMTP (2 connections), every message held by header_checks
	timeout "$limit" "$py" - "$work/spool/new" "$inj_port" <<'EOF' >&2
import os, smtplib, sys, threading
d, port = sys.argv[1], int(sys.argv[2])
files = sorted(os.listdir(d))
def part(fs):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    for f in fs:
        raw = open(os.path.join(d, f), "rb").read()
        env, _, msg = raw.partition(b"\n\n")
        lines = env.decode().splitlines()
        frm = lines[0].split("<", 1)[1].split(">", 1)[0]
        rcpts = [l.split("<", 1)[1].split(">", 1)[0] for l in lines[1:]]
        s.sendmail(frm, rcpts, msg)
    s.quit()
ts = [threading.Thread(target=part, args=(files[i::2],)) for i in range(2)]
[t.start() for t in ts]
[t.join() for t in ts]
EOF
	for _ in $(seq $((limit * 10))); do
		n_hold=$(find "$pfdir/queue/hold" -type f 2>/dev/null | wc -l)
		[ "$n_hold" -ge "$n" ] && break
		sleep 0.1
	done
	[ "$n_hold" -ge "$n" ] || { echo "compare: only $n_hold of $n messages held" >&2; return 1; }
	base=$(sink_count)
	t0=$("$py" -c 'import time; print(time.monotonic())')
	postsuper -c "$pfdir" -H ALL 2>/dev/null
	postqueue -c "$pfdir" -f
	for _ in $(seq $((limit * 20))); do
		[ "$(sink_count)" -ge $((base + n)) ] && break
		sleep 0.05
	done
	"$py" - "$work/timeline" "$t0" "$base" "$n" "$pfdir/maillog" <<'EOF'
import sys
tl, t0, base, n, log = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
done = None
for line in open(tl):
    f = line.split()
    if len(f) >= 2 and int(f[1]) >= base + n:
        done = float(f[0]); break
sent = defer = bounce = 0
try:
    for line in open(log, errors="replace"):
        sent += " status=sent " in line
        defer += " status=deferred " in line
        bounce += " status=bounced " in line
except OSError:
    pass
el = (done - t0) if done else 0
print("%.1f %d %d %d %.3f" % (n / el if el > 0 else 0, sent, defer, bounce, el))
EOF
	timeout 30 postfix -c "$pfdir" stop >/dev/null 2>&1 || true
	for _ in $(seq 100); do [ -s "$pfdir/queue/pid/master.pid" ] || break; sleep 0.1; done
	# the next try starts from an empty queue
	postsuper -c "$pfdir" -d ALL >/dev/null 2>&1 || true
}

best_rate=0
best_c=
for c in $concs; do
	echo "== postfix: destination concurrency $c, $n messages"
	if ! r=$(pf_try "$c"); then
		echo "compare: the Postfix try with concurrency $c failed" >&2
		continue
	fi
	read -r rate sent defer bounce el <<<"$r"
	echo "postfix c=$c: $rate msgs/s ($n in $el s; maillog: sent $sent, deferred $defer, bounced $bounce)"
	if "$py" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$rate" "$best_rate"; then
		best_rate=$rate
		best_c=$c
	fi
done

echo
echo "== result ($n messages, $size B attachments, verified TLS, one destination)"
printf '%-40s %10s msgs/s\n' "sealpost" "$sp_rate"
printf '%-40s %10s msgs/s\n' "postfix (best: concurrency ${best_c:-none})" "$best_rate"
"$py" -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print("%-40s %10s" % ("ratio sealpost / postfix", "%.1fx" % (a / b) if b > 0 else "n/a"))' \
	"$sp_rate" "$best_rate"
