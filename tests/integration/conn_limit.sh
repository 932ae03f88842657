#!/usr/bin/env bash
# conn_limit.sh - more destinations than connections: every destination is
# served (a closing connection serves the destinations waiting for one, and
# idle sessions give their slot up), nothing stalls.
set -u
. "$SEALPOST_SRC/tests/lib/harness.sh"
h_init conn_limit

h_dns "mx.test. 300 IN A 127.0.0.1"
h_sink good
export SEALPOST_ROUTES="*=mx.test:$SINK_PORT_good"
"$BENCH" fill --spool "$SEALPOST_SPOOL" -n 200 --size 2000 --domains 50 --quiet

check "200 messages to 50 domains through 4 connections drain" \
	h_drain SEALPOST_WORKERS=1 SEALPOST_MAX_CONNECTIONS=4
check "all 200 delivered" test "$(grep -c 'status=sent' "$W/engine.log")" -eq 200
check "the sink got all 200" test "$(count_files "$W/good.store" '*.eml')" -eq 200
check "the queue is empty" queue_empty
h_done
