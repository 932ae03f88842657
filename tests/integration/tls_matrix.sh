#!/usr/bin/env bash
# tls_matrix.sh - the TLS policy matrix (issue 5) against real receivers on
# loopback, through the engine: who gets a message and who does not.
#
# Run 1 (default settings, a policy file), one destination domain each:
#   good.test        CA-signed mx.test                          -> sent, verified=yes
#   wild.test        route host a.wild.test, cert *.wild.test   -> sent
#   wrongname.test   cert for other.test                        -> refused
#   expired.test     expired cert                               -> refused
#   untrusted.test   cert from an unknown CA                    -> refused
#   selfsigned.test  self-signed, no pin                        -> refused
#   pinned.test      self-signed, pinned by cert SHA-256        -> sent, verified=pinned
#   spki.test        self-signed, pinned by SPKI SHA-256        -> sent, verified=pinned
#   badpin.test      self-signed, a pin of another key          -> refused
#   clientcert.test  server requires a client cert, none set    -> refused
#   old.test         server offers TLS 1.0/1.1 only             -> refused
#   secureok.test    secure match=mx.test                       -> sent
#   secureno.test    secure, no matching name                   -> refused
#   encrypt.test     encrypt, self-signed peer                  -> sent, verified=no
#   noencrypt.test   default level, the same self-signed peer   -> refused
#   tls12.test       server offers TLS 1.2 only                 -> sent, tls=TLSv1.2
# Run 2: SEALPOST_TLS_CERT/KEY set: clientcert2.test (same server) -> sent.
# Run 3: SEALPOST_TLS_MIN_VERSION=1.3: min13.test (the TLS 1.2-only server) -> refused.
# A refused case: nothing reached the receiver, the recipient is deferred
# with dsn=4.7.x and a reason.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init tls_matrix
C=$W/certs

# h_tlspeer NAME ARGS... - tests/lib/tls_peer.py (OpenSSL, fixed versions)
h_tlspeer() {
	local name=$1
	shift
	mkdir -p "$W/$name.store"
	$PY "$SEALPOST_SRC/tests/lib/tls_peer.py" --port-file "$W/$name.port" \
		--cert "$C/server.pem" --key "$C/server.key" --store "$W/$name.store" \
		--log "$W/$name.tls" --duration 300 "$@" >"$W/$name.log" 2>&1 &
	H_PIDS+=($!)
	h_wait_file "$W/$name.port" || { echo "harness: tls_peer $name did not start"; cat "$W/$name.log"; exit 1; }
	eval "PEER_PORT_$name=$(cat "$W/$name.port")"
}

h_dns "mx.test. 300 IN A 127.0.0.1" "a.wild.test. 300 IN A 127.0.0.1"
h_sink good
h_sink wild
h_sink wrongname --cert "$C/wrongname.pem" --key "$C/wrongname.key"
h_sink expired --cert "$C/expired.pem" --key "$C/expired.key"
h_sink untrusted --cert "$C/untrusted.pem" --key "$C/untrusted.key"
for s in selfsigned pinned spki badpin selfenc; do
	h_sink "$s" --cert "$C/selfsigned.pem" --key "$C/selfsigned.key"
done
h_sink clientcert --client-ca "$C/client-ca.pem"
h_sink secureok
h_sink secureno
h_tlspeer old --min-tls 1.0 --max-tls 1.1
h_tlspeer tls12 --min-tls 1.2 --max-tls 1.2

# Pins as operators write them: the certificate's as openssl prints it
# (colons, upper case), the SPKI's as plain lower-case hex.
fp_cert=$(openssl x509 -noout -fingerprint -sha256 -in "$C/selfsigned.pem" | sed 's/.*=//')
fp_spki=$(openssl x509 -noout -pubkey -in "$C/selfsigned.pem" |
	openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
fp_other=$(openssl x509 -noout -fingerprint -sha256 -in "$C/server.pem" | sed 's/.*=//')
cat >"$W/policy" <<EOF
# tls_matrix policy
pinned.test fingerprint fingerprint=sha256:$fp_cert
spki.test   fingerprint fingerprint=sha256:$fp_spki
badpin.test fingerprint fingerprint=sha256:$fp_other
secureok.test secure match=mx.test
secureno.test secure
encrypt.test encrypt
EOF
export SEALPOST_TLS_POLICY=$W/policy

route() { printf '%s=%s:%s,' "$1" "$2" "$3"; }
SEALPOST_ROUTES=$(
	route good.test mx.test "$SINK_PORT_good"
	route wild.test a.wild.test "$SINK_PORT_wild"
	route wrongname.test mx.test "$SINK_PORT_wrongname"
	route expired.test mx.test "$SINK_PORT_expired"
	route untrusted.test mx.test "$SINK_PORT_untrusted"
	route selfsigned.test mx.test "$SINK_PORT_selfsigned"
	route pinned.test mx.test "$SINK_PORT_pinned"
	route spki.test mx.test "$SINK_PORT_spki"
	route badpin.test mx.test "$SINK_PORT_badpin"
	route clientcert.test mx.test "$SINK_PORT_clientcert"
	route clientcert2.test mx.test "$SINK_PORT_clientcert"
	route old.test mx.test "$PEER_PORT_old"
	route secureok.test mx.test "$SINK_PORT_secureok"
	route secureno.test mx.test "$SINK_PORT_secureno"
	route encrypt.test mx.test "$SINK_PORT_selfenc"
	route noencrypt.test mx.test "$SINK_PORT_selfenc"
	route tls12.test mx.test "$PEER_PORT_tls12"
	route min13.test mx.test "$PEER_PORT_tls12"
)
export SEALPOST_ROUTES=${SEALPOST_ROUTES%,}

# stored RCPT_DOMAIN STORE - messages for that domain the receiver kept
stored() {
	cat "$W/$2.store"/*.env 2>/dev/null | grep -c "^rcpt=.*@$1\$"
}
# sent DOMAIN STORE EXTRA_REGEX - delivered, logged with the TLS facts
sent_ok() {
	local d=$1 store=$2 re=$3
	check "$d: delivered" test "$(stored "$d" "$store")" -eq 1
	check "$d: logged sent with $re" \
		log_has "rcpt=x@$d status=sent .*$re"
}
# refused DOMAIN STORE REASON_REGEX - nothing reached the receiver, deferred 4.7.x
refused() {
	local d=$1 store=$2 re=$3
	check "$d: nothing reaches the receiver" \
		test "$(count_files "$W/$store.store" '*.eml')" -eq "${4:-0}" -a "$(stored "$d" "$store")" -eq 0
	check "$d: deferred dsn=4.7.x with the reason ($re)" \
		log_has "rcpt=x@$d status=deferred .*dsn=4\\.7\\.[0-9]+ reply=\"[^\"]*$re"
}

for d in good wild wrongname expired untrusted selfsigned pinned spki badpin clientcert \
	old secureok secureno encrypt noencrypt tls12; do
	h_fax "$d" | h_submit fax@fax.test "x@$d.test"
done
check "run 1: engine drains and exits 0" h_drain

sent_ok good.test good 'tls=TLSv1\.3 .*verified=yes'
sent_ok wild.test wild 'relay=a\.wild\.test.* verified=yes'
refused wrongname.test wrongname 'name mismatch: mx\.test not in \[other\.test\]'
refused expired.test expired '[Ee]xpired'
refused untrusted.test untrusted 'unknown CA'
refused selfsigned.test selfsigned '(unknown CA|self.signed)'
sent_ok pinned.test pinned 'verified=pinned'
sent_ok spki.test spki 'verified=pinned'
refused badpin.test badpin 'fingerprint mismatch'
refused clientcert.test clientcert 'certificate_required'
refused old.test old '(protocol_version|TLS 1\.[01])'
check "old.test: the server saw a handshake fail, never a session" \
	test "$(grep -c '"version"' "$W/old.tls" 2>/dev/null)" -eq 0
sent_ok secureok.test secureok 'verified=yes'
refused secureno.test secureno 'name mismatch: secureno\.test not in'
sent_ok encrypt.test selfenc 'verified=no'
refused noencrypt.test selfenc '(unknown CA|self.signed)' 1
sent_ok tls12.test tls12 'tls=TLSv1\.2 .*verified=yes'

# Run 2: our client certificate is configured: the same server accepts.
h_fax clientcert2 | h_submit fax@fax.test x@clientcert2.test
check "run 2 (client certificate): engine drains and exits 0" \
	h_drain SEALPOST_TLS_CERT="$C/client.pem" SEALPOST_TLS_KEY="$C/client.key"
sent_ok clientcert2.test clientcert 'verified=yes'
check "clientcert.test: the earlier refused message was not sent by run 2" \
	test "$(stored clientcert.test clientcert)" -eq 0

# Run 3: TLS 1.3 minimum: the TLS 1.2-only server is refused.
h_fax min13 | h_submit fax@fax.test x@min13.test
check "run 3 (TLS 1.3 minimum): engine drains and exits 0" h_drain SEALPOST_TLS_MIN_VERSION=1.3
refused min13.test tls12 '(protocol.version|alert)' 1

# No plaintext anywhere: every sent line carries TLS facts.
check "no delivery without TLS" bash -c "! grep 'status=sent' '$W/engine.log' | grep -q 'tls=none'"
h_done
