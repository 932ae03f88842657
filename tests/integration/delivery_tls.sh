#!/usr/bin/env bash
# delivery_tls.sh - messages reach a real STARTTLS receiver byte-identical,
# and nothing reaches a receiver that cannot prove itself.
#
# One engine run (--drain) delivers to several destinations at once, each
# routed to its own receiver on loopback, through a real DNS server:
#   good.test     sink with a CA-signed mx.test certificate      -> delivered
#   nostls.test   sink that does not offer STARTTLS               -> deferred 4.7.4, nothing sent
#   wrongname.test  certificate for other.test                    -> deferred 4.7.5, nothing sent
#   expired.test  expired certificate                             -> deferred, nothing sent
#   untrusted.test  certificate from an unknown CA                -> deferred, nothing sent
#   selfsigned.test self-signed, not pinned                       -> deferred, nothing sent
#   mixed.test    451 for one recipient, 550 for another          -> 1 sent, 1 deferred, 1 bounced
#   drop.test     connection dropped mid-DATA                     -> deferred, then delivered on retry
#   stall.test    never greets                                    -> timed out, deferred
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init delivery_tls

h_dns "mx.test. 300 IN A 127.0.0.1"
h_sink good
h_sink nostls --no-starttls
h_sink wrongname --cert "$W/certs/wrongname.pem" --key "$W/certs/wrongname.key"
h_sink expired --cert "$W/certs/expired.pem" --key "$W/certs/expired.key"
h_sink untrusted --cert "$W/certs/untrusted.pem" --key "$W/certs/untrusted.key"
h_sink selfsigned --cert "$W/certs/selfsigned.pem" --key "$W/certs/selfsigned.key"
h_sink mixed --tempfail-rcpt later@mixed.test --permfail-rcpt nobody@mixed.test
h_sink drop --drop-mid-data 100
h_badpeer stall stall-greeting

export SEALPOST_ROUTES="good.test=mx.test:$SINK_PORT_good,nostls.test=mx.test:$SINK_PORT_nostls,\
wrongname.test=mx.test:$SINK_PORT_wrongname,expired.test=mx.test:$SINK_PORT_expired,\
untrusted.test=mx.test:$SINK_PORT_untrusted,selfsigned.test=mx.test:$SINK_PORT_selfsigned,\
mixed.test=mx.test:$SINK_PORT_mixed,drop.test=mx.test:$SINK_PORT_drop,stall.test=mx.test:$PEER_PORT_stall"
export SEALPOST_GREETING_TIMEOUT=3

mkdir -p "$W/sent"
for i in $(seq 1 20); do
	h_fax "good-$i" $((i * 997)) >"$W/sent/good-$i"
	h_submit fax@fax.test "a$i@good.test" "b$i@good.test" <"$W/sent/good-$i"
done
for d in nostls wrongname expired untrusted selfsigned drop stall; do
	h_fax "$d-1" | h_submit fax@fax.test "someone@$d.test"
done
h_fax mixed-1 | h_submit fax@fax.test ok@mixed.test later@mixed.test nobody@mixed.test

check "engine drains and exits 0" h_drain

# Byte-identical: each stored payload equals the submitted text with CRLF line ends.
identical() {
	local n=0 f id
	for f in "$W"/good.store/*.eml; do
		id=$(grep -m1 -o 'Message-ID: <[^@]*' "$f" | sed 's/Message-ID: <//')
		[ -n "$id" ] || return 1
		cmp -s "$f" <(sed 's/$/\r/' "$W/sent/$id") || { echo "  differs: $id"; return 1; }
		n=$((n + 1))
	done
	[ "$n" -eq 20 ]
}
check "20 messages arrive at good.test, byte-identical" identical
check "both recipients of each message in one transaction" \
	test "$(grep -h '^rcpt=' "$W"/good.store/*.env | wc -l)" -eq 40
check "every delivery logged with TLS facts" \
	test "$(grep -c 'status=sent.*tls=TLSv1\.[23] cipher=[^ ]* verified=yes resumed=' "$W/engine.log")" -ge 40

for d in nostls wrongname expired untrusted selfsigned; do
	check "$d: nothing reaches the receiver" test "$(count_files "$W/$d.store" '*.eml')" -eq 0
done
check "no STARTTLS: deferred 4.7.4 naming the host" \
	log_has 'rcpt=someone@nostls.test status=deferred relay=mx.test\[127.0.0.1\]:[0-9]+ dsn=4.7.4 reply="TLS is required, but was not offered by mx.test'
check "wrong name: deferred 4.7.5 with the name mismatch" \
	log_has 'rcpt=someone@wrongname.test status=deferred .*dsn=4.7.5 .*mx.test.*(name|match)'
check "expired: deferred 4.7.5, reason says expired" \
	log_has 'rcpt=someone@expired.test status=deferred .*dsn=4.7.5 .*[Ee]xpired'
check "untrusted CA: deferred 4.7.5" \
	log_has 'rcpt=someone@untrusted.test status=deferred .*dsn=4.7.5'
check "self-signed (not pinned): deferred 4.7.5" \
	log_has 'rcpt=someone@selfsigned.test status=deferred .*dsn=4.7.5'
check "a refused peer logs why (host_skipped with reason)" \
	log_has 'event=host_skipped .*reason='

check "mixed: the 250 recipient is delivered" log_has 'rcpt=ok@mixed.test status=sent'
check "mixed: the 451 recipient is deferred" log_has 'rcpt=later@mixed.test status=deferred .*dsn=4.3.0'
check "mixed: the 550 recipient is bounced" log_has 'rcpt=nobody@mixed.test status=bounced .*dsn=5.1.1'
check "mixed: exactly one copy delivered, to ok@ only" \
	test "$(cat "$W"/mixed.store/*.env 2>/dev/null | grep -c '^rcpt=')" -eq 1

check "stall: greeting timeout defers" \
	log_has 'rcpt=someone@stall.test status=deferred .*timeout'
check "drop mid-DATA: deferred, not lost" log_has 'rcpt=someone@drop.test status=deferred'

# The queue keeps exactly the deferred ones, with attempts and reasons.
queue_ok() {
	"$SP" queue --json >"$W/queue.json" || return 1
	$PY - "$W/queue.json" <<'EOF'
import json, sys
q = json.load(open(sys.argv[1]))
rc = {r["address"]: r for m in q["messages"] for r in m["recipients"]}
want_deferred = ["someone@%s.test" % d for d in
                 ("nostls", "wrongname", "expired", "untrusted", "selfsigned", "drop", "stall")]
want_deferred.append("later@mixed.test")
for a in want_deferred:
    r = rc.get(a)
    assert r and r["status"] == "deferred" and r["attempts"] == 1 and r["last_error"], (a, r)
assert rc["ok@mixed.test"]["status"] == "sent", rc["ok@mixed.test"]
assert rc["nobody@mixed.test"]["status"] == "bounced", rc["nobody@mixed.test"]
assert not any(a.endswith("@good.test") for a in rc), "delivered messages left in queue"
EOF
}
check "queue --json lists the deferred recipients with attempts and last error" queue_ok

# Retry: the dropping receiver is fixed; flush and drain again.
kill "$SINK_PID_drop" 2>/dev/null
h_sink drop2
export SEALPOST_ROUTES="${SEALPOST_ROUTES/drop.test=mx.test:$SINK_PORT_drop/drop.test=mx.test:$SINK_PORT_drop2}"
check "flush makes deferred messages due" "$SP" flush
check "second run exits 0" h_drain
check "drop.test: delivered on retry" test "$(count_files "$W/drop2.store" '*.eml')" -eq 1
check "mixed: no second copy to the already delivered recipient" \
	test "$(cat "$W"/mixed.store/*.env 2>/dev/null | grep -c '^rcpt=')" -eq 1
h_done
