#!/usr/bin/env bash
# dns_routing.sh - mail goes where a real DNS server says, by RFC 5321 §5.
#
# The engine resolves through unbound (h_dns) and delivers to sinks on
# 127.0.0.2.. (Linux routes all of 127/8 to lo), all on one port P, which is
# SEALPOST_SMTP_PORT for every host found in DNS.  MX hosts are named
# *.wild.test so that the test certificate verifies them.
#
#   prio.test      MX 10 a (down), MX 20 b      -> via b, a logged host_skipped
#   eq.test        MX 10 c, MX 10 d             -> over 40 messages both get mail,
#                                                  even with answers from the cache
#   implicit.wild.test  no MX, A only           -> delivered to its A
#   null.test      MX 0 . (and an A with a sink) -> bounced 5.1.10, 0 connections
#   nothere.test   NXDOMAIN                     -> bounced 5.1.2
#   timeout.test   server drops the queries     -> deferred 4.4.3, again on retry
#   big.test       40 MX with long names (TCP)  -> delivered to the best one
#   routed.test    MX c, but SEALPOST_ROUTES    -> the route wins
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init dns_routing

P=$(h_free_port) || { echo "no free port"; exit 1; }
export SEALPOST_SMTP_PORT=$P

records=(
	"prio.test. 300 IN MX 10 a.wild.test."
	"prio.test. 300 IN MX 20 b.wild.test."
	"a.wild.test. 300 IN A 127.0.0.2"
	"b.wild.test. 300 IN A 127.0.0.3"
	"eq.test. 300 IN MX 10 c.wild.test."
	"eq.test. 300 IN MX 10 d.wild.test."
	"c.wild.test. 300 IN A 127.0.0.4"
	"d.wild.test. 300 IN A 127.0.0.5"
	"implicit.wild.test. 300 IN A 127.0.0.6"
	"null.test. 300 IN MX 0 ."
	"null.test. 300 IN A 127.0.0.7"
	"routed.test. 300 IN MX 10 c.wild.test."
	"mx.test. 300 IN A 127.0.0.1"
)
# 40 MX records with 50-octet first labels: about 2.5 KB, more than a UDP
# answer may carry (512 without EDNS, unbound's 1232 with), so TCP is needed
long=long-mail-exchanger-name-for-a-big-answer-padding
for i in $(seq 10 49); do
	records+=("big.test. 300 IN MX $i $long-$i.wild.test.")
done
records+=("$long-10.wild.test. 300 IN A 127.0.0.8")
h_dns "${records[@]}"

# sink_at NAME ADDR - a sink on ADDR:P only; store in $W/NAME.store
sink_at() {
	local name=$1 addr=$2
	mkdir -p "$W/$name.store"
	"$BENCH" sink --listen "$addr:$P" --port-file "$W/$name.port" --cert "$W/certs/server.pem" \
		--key "$W/certs/server.key" --store "$W/$name.store" --json "$W/$name.json" \
		--duration 300 --quiet >"$W/$name.log" 2>&1 &
	H_PIDS+=($!)
	eval "SINK_PID_$name=$!"
	h_wait_file "$W/$name.port" || { echo "sink $name did not start"; cat "$W/$name.log"; exit 1; }
}

# rcpts NAME DOMAIN - recipients of DOMAIN that sink NAME received
rcpts() {
	cat "$W/$1.store"/*.env 2>/dev/null | grep -c "^rcpt=.*@$2\$"
}

# connections NAME - connections the (stopped) sink NAME counted
connections() {
	$PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["connections"])' "$W/$1.json"
}

# drain N [VAR=VALUE...] - one engine run, its log in $W/drainN.log too
drain() {
	local n=$1
	shift
	env "$@" timeout 120 "$SP" run --drain >"$W/drain$n.log" 2>&1
	local rc=$?
	cat "$W/drain$n.log" >>"$W/engine.log"
	return $rc
}

# status ADDR - the queue's status of recipient ADDR, "gone" if not queued
status() {
	"$SP" queue --json | $PY -c '
import json, sys
q = json.load(sys.stdin)
st = [r for m in q["messages"] for r in m["recipients"] if r["address"] == sys.argv[1]]
print("%s %d" % (st[0]["status"], st[0]["attempts"]) if st else "gone")' "$1"
}

sink_at b 127.0.0.3
sink_at c 127.0.0.4
sink_at d 127.0.0.5
sink_at implicit 127.0.0.6
sink_at nullsink 127.0.0.7
sink_at big 127.0.0.8
h_sink route
export SEALPOST_ROUTES="routed.test=mx.test:$SINK_PORT_route"

start=$SECONDS
for d in prio.test implicit.wild.test null.test nothere.test timeout.test big.test routed.test; do
	h_fax "$d" | h_submit fax@fax.test "u@$d"
done
check "first run exits 0" drain 1

check "prio: delivered via the second MX" test "$(rcpts b prio.test)" -eq 1
check "prio: the first MX (nothing listening) is logged as skipped" \
	grep -Eq "event=host_skipped .*relay=a\.wild\.test\[127\.0\.0\.2\]:$P" "$W/drain1.log"
check "prio: delivery logged through b.wild.test" \
	grep -Eq "rcpt=u@prio\.test status=sent relay=b\.wild\.test\[127\.0\.0\.3\]:$P" "$W/drain1.log"
check "the log says which MX was tried, in preference order" \
	bash -c "grep -E 'event=connect .*domain=prio\.test relay=a\.wild\.test.* mx_pref=10 host=1 hosts=2' '$W/drain1.log' >/dev/null &&
	grep -E 'event=connect .*domain=prio\.test relay=b\.wild\.test.* mx_pref=20 host=2 hosts=2' '$W/drain1.log' >/dev/null"
check "implicit MX: delivered to the domain's own address" test "$(rcpts implicit implicit.wild.test)" -eq 1
check "null MX: bounced 5.1.10" \
	grep -Eq 'rcpt=u@null\.test status=bounced .*dsn=5\.1\.10' "$W/drain1.log"
check "NXDOMAIN: bounced 5.1.2" \
	grep -Eq 'rcpt=u@nothere\.test status=bounced .*dsn=5\.1\.2' "$W/drain1.log"
check "no answer: deferred 4.4.3" \
	grep -Eq 'rcpt=u@timeout\.test status=deferred .*dsn=4\.4\.3' "$W/drain1.log"
check "no answer: queued with one attempt" test "$(status u@timeout.test)" = "deferred 1"
check "large answer (TCP): delivered to the best of 40 MX" test "$(rcpts big big.test)" -eq 1
check "routes win over DNS: routed.test went to its route" test "$(rcpts route routed.test)" -eq 1
check "routes win over DNS: its MX got nothing" test "$(rcpts c routed.test)" -eq 0
check "the resolver logs its counters at exit" \
	grep -Eq 'event=dns_stats lookups=[1-9][0-9]* cache_hits=[0-9]+ queries=[1-9]' "$W/drain1.log"

# The big answer really needs TCP: over UDP without EDNS it comes truncated.
udp_truncated() {
	$PY - "$DNS_PORT" <<'EOF'
import socket, struct, sys
q = bytes.fromhex("beef01000001000000000000") + b"\x03big\x04test\x00" + b"\x00\x0f\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
r, _ = s.recvfrom(65535)
sys.exit(0 if r[:2] == b"\xbe\xef" and r[2] & 0x02 else 1)
EOF
}
check "large answer: UDP reply is truncated (TC bit), so it came over TCP" udp_truncated

h_sink_stop nullsink
check "null MX: its A record's sink saw no connection" test "$(connections nullsink)" -eq 0

# Equal preferences: one worker, one message per connection and session, so
# each message is its own lookup and all but the first come from the cache.
for i in $(seq 1 40); do
	h_fax "eq-$i" 500 | h_submit fax@fax.test "u$i@eq.test"
done
check "equal preferences run exits 0" drain 2 SEALPOST_WORKERS=1 SEALPOST_DEST_CONCURRENCY=1 \
	SEALPOST_MSGS_PER_CONNECTION=1
nc=$(rcpts c eq.test) nd=$(rcpts d eq.test)
echo "  eq.test: c.wild.test got $nc, d.wild.test got $nd"
check "equal preferences: all 40 delivered" test $((nc + nd)) -eq 40
check "equal preferences: both hosts got mail" test "$nc" -ge 5 -a "$nd" -ge 5
hits=$(sed -n 's/.*event=dns_stats .*cache_hits=\([0-9]*\).*/\1/p' "$W/drain2.log" | head -1)
check "equal preferences: the lookups were answered from the cache" test "${hits:-0}" -ge 30

# Retry of the silent domain: still deferred, one more attempt counted.
flush() { "$SP" flush >/dev/null; }
check "flush makes the deferred message due" flush
check "retry run exits 0" drain 3
check "no answer on retry: deferred 4.4.3 again" \
	grep -Eq 'rcpt=u@timeout\.test status=deferred .*dsn=4\.4\.3' "$W/drain3.log"
check "no answer on retry: two attempts" test "$(status u@timeout.test)" = "deferred 2"
check "nothing delivered twice" test "$(rcpts b prio.test)" -eq 1 -a "$(rcpts big big.test)" -eq 1
echo "  took $((SECONDS - start)) s"
h_done
