#!/usr/bin/env bash
# mkcerts.sh DIR - make the test certificates every TLS test uses.
#
# DIR/ca.pem ca.key            test root CA
# DIR/server.pem server.key    signed by ca; SAN mx.test, localhost, 127.0.0.1, *.wild.test
# DIR/server-chain.pem         server.pem (leaf only; the CA is the anchor)
# DIR/wrongname.pem .key       signed by ca; SAN other.test
# DIR/expired.pem .key         signed by ca; SAN mx.test; validity 2001..2002
# DIR/selfsigned.pem .key      self-signed; SAN mx.test
# DIR/untrusted-ca.pem .key    another root CA
# DIR/untrusted.pem .key       signed by untrusted-ca; SAN mx.test
# DIR/client-ca.pem .key       CA for client certificates
# DIR/client.pem .key          signed by client-ca; extendedKeyUsage clientAuth
#
# EC P-256 keys (fast).  Idempotent: does nothing when DIR/ca.pem exists.
# Quiet on success; prints openssl's complaint and exits 1 on failure.
set -eu
dir=${1:?usage: mkcerts.sh DIR}
[ -s "$dir/ca.pem" ] && exit 0
mkdir -p "$dir"
work=$(mktemp -d "$dir/.mk.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/log

fail() { cat "$log" >&2; echo "mkcerts.sh: $1 failed" >&2; exit 1; }

# key NAME - an EC P-256 key in $work/NAME.key
key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$work/$1.key" >>"$log" 2>&1 || fail "key $1"
}

# root NAME CN - a self-signed CA certificate
root() {
	key "$1"
	openssl req -new -x509 -key "$work/$1.key" -out "$work/$1.pem" -days 3650 \
		-subj "/CN=$2" -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >>"$log" 2>&1 || fail "root $1"
}

# leaf NAME CA SAN EKU [DAYS] - a leaf certificate signed by CA
leaf() {
	key "$1"
	openssl req -new -key "$work/$1.key" -out "$work/$1.csr" -subj "/CN=$1" \
		>>"$log" 2>&1 || fail "csr $1"
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
		"$4" "$3" >"$work/$1.ext"
	openssl x509 -req -in "$work/$1.csr" -CA "$work/$2.pem" -CAkey "$work/$2.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days "${5:-3650}" -sha256 \
		-extfile "$work/$1.ext" -out "$work/$1.pem" >>"$log" 2>&1 || fail "leaf $1"
}

root ca "sealpost test CA"
root untrusted-ca "sealpost untrusted CA"
root client-ca "sealpost client CA"
leaf server ca "DNS:mx.test,DNS:localhost,IP:127.0.0.1,DNS:*.wild.test" serverAuth
leaf wrongname ca "DNS:other.test" serverAuth
leaf untrusted untrusted-ca "DNS:mx.test" serverAuth
leaf client client-ca "DNS:client.test" clientAuth

# expired: validity entirely in the past, through `openssl ca` which takes
# explicit dates (x509 -req cannot back-date without faketime)
key expired
openssl req -new -key "$work/expired.key" -out "$work/expired.csr" -subj "/CN=expired" \
	>>"$log" 2>&1 || fail "csr expired"
mkdir -p "$work/ca.db"
: >"$work/ca.db/index.txt"
cat >"$work/ca.cnf" <<CNF
[ ca ]
default_ca = tca
[ tca ]
dir = $work/ca.db
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
default_md = sha256
policy = anything
copy_extensions = none
x509_extensions = ext
unique_subject = no
[ anything ]
commonName = supplied
[ ext ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:mx.test
CNF
openssl rand -hex 8 >"$work/ca.db/serial"
openssl ca -batch -config "$work/ca.cnf" -cert "$work/ca.pem" -keyfile "$work/ca.key" \
	-startdate 20010101000000Z -enddate 20020101000000Z \
	-in "$work/expired.csr" -out "$work/expired.full" >>"$log" 2>&1 || fail "expired"
openssl x509 -in "$work/expired.full" -out "$work/expired.pem" >>"$log" 2>&1 || fail "expired pem"

# selfsigned: its own issuer, names mx.test
key selfsigned
openssl req -new -x509 -key "$work/selfsigned.key" -out "$work/selfsigned.pem" -days 3650 \
	-subj "/CN=mx.test" -sha256 -addext "subjectAltName=DNS:mx.test" \
	-addext "basicConstraints=critical,CA:FALSE" >>"$log" 2>&1 || fail "selfsigned"

cp "$work/server.pem" "$work/server-chain.pem"
for f in ca untrusted-ca client-ca server wrongname untrusted client expired selfsigned; do
	cp "$work/$f.key" "$dir/$f.key"
	chmod 600 "$dir/$f.key"
	[ "$f" = ca ] || cp "$work/$f.pem" "$dir/$f.pem"
done
cp "$work/server-chain.pem" "$dir/server-chain.pem"
# ca.pem last and by rename: its presence says the set is complete
cp "$work/ca.pem" "$dir/.ca.pem.$$"
mv "$dir/.ca.pem.$$" "$dir/ca.pem"
