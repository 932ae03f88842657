#!/usr/bin/env bash
# submit_queue_flush.sh - the queue commands end to end through the real
# binary: `sealpost submit` writes one complete file into new/ and prints its
# id, `sealpost queue --json` lists it, -t takes To/Cc/Bcc and drops Bcc, a
# bad address exits 65 (EX_DATAERR), `sealpost flush` reports and pokes.
# Env: SEALPOST_BUILD (folder holding the sealpost binary).
set -euo pipefail

build=${SEALPOST_BUILD:-build}
bin="$build/sealpost"
py=/usr/bin/python3
pass=0
fail=0

if [ ! -x "$bin" ]; then
	echo "FAIL: $bin not built"
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SEALPOST_SPOOL="$work/spool"
export SEALPOST_HELO_NAME=fax.example.com
spool=$SEALPOST_SPOOL

ok() { echo "ok: $1"; pass=$((pass + 1)); }
ko() { echo "FAIL: $1"; fail=$((fail + 1)); }
check() { # check NAME COMMAND...: pass when the command succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else ko "$name"; fi
}

# 1. submit: one complete file in new/, named by the printed id, tmp/ empty
id=$(printf 'Subject: fax\n\nhello\n' | "$bin" submit -f fax@fax.example.com alice@example.org bob@example.net)
check "submit prints a queue id ($id)" grep -Eq '^[0-9a-f]{23}$' <<<"$id"
check "submit puts the file in new/" test -f "$spool/new/$id"
check "submit leaves tmp/ empty" test -z "$(ls -A "$spool/tmp")"
check "the file starts with the envelope" \
	grep -qx 'MAIL FROM:<fax@fax.example.com>' "$spool/new/$id"
check "the message follows the empty line" \
	test "$(sed -n '4p;5p' "$spool/new/$id")" = "$(printf '\nSubject: fax')"

# 2. queue --json: valid JSON listing the message and its recipients
"$bin" queue --json >"$work/queue.json"
if "$py" - "$id" "$work/queue.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[2]))
want = sys.argv[1]
msgs = [m for m in doc["messages"] if m["id"] == want]
assert len(msgs) == 1, "message %s not listed" % want
m = msgs[0]
assert m["sender"] == "fax@fax.example.com", m
addrs = {r["address"]: r for r in m["recipients"]}
assert set(addrs) == {"alice@example.org", "bob@example.net"}, addrs
for r in addrs.values():
    assert r["status"] == "pending", r
    assert r["attempts"] == 0, r
    assert "next_attempt" in r and "last_error" in r, r
assert doc["counts"]["new"] == 1, doc["counts"]
assert doc["counts"]["pending"] == 2, doc["counts"]
PY
then ok "queue --json lists the message with pending recipients"; else ko "queue --json: $(cat "$work/queue.json")"; fi

check "queue (text) shows the id" bash -c "'$bin' queue | grep -q '$id'"

# 3. -t: recipients from To/Cc/Bcc, the Bcc header removed
id2=$(printf 'From: Fax <fax@fax.example.com>\nTo: Carol <carol@example.org>\nCc: dave@example.net (Dave)\nBcc: eve@example.com,\n  frank@example.com\nSubject: t\n\nbody\n' |
	"$bin" submit -t -f fax@fax.example.com)
f2="$spool/new/$id2"
for a in carol@example.org dave@example.net eve@example.com frank@example.com; do
	check "-t takes $a" grep -qx "RCPT TO:<$a>" "$f2"
done
check "-t removes the Bcc header" bash -c "! grep -qi '^bcc:' '$f2' && ! grep -q '^  frank' '$f2'"
check "-t keeps To and Cc" bash -c "grep -q '^To: Carol' '$f2' && grep -q '^Cc: dave' '$f2'"

# 4. exit codes: bad address 65, no recipient 64
set +e
printf 'x\n' | "$bin" submit alice 2>"$work/err"
rc=$?
set -e
check "bad address exits 65 (got $rc)" test "$rc" -eq 65
check "bad address says why" grep -q "no domain part" "$work/err"
set +e
printf 'x\n' | "$bin" submit 2>/dev/null
rc=$?
set -e
check "no recipient exits 64 (got $rc)" test "$rc" -eq 64
check "failed submissions write nothing" test "$(ls "$spool/new" | wc -l)" -eq 2

# 5. flush: output, and the poke file for a running engine
out=$("$bin" flush)
check "flush reports ($out)" grep -Eq '^[0-9]+ messages? made due$' <<<"$out"
check "flush leaves the flush file for the engine" test -f "$spool/flush"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
