#!/usr/bin/env bash
# dns-bench.sh BUILD_DIR - is resolution ever the bottleneck?
#
#   bench/dns-bench.sh build-rel
#
# 10,000 messages to 1,000 distinct domains (d0.test .. d999.test), every
# domain with its own MX record naming one of four MX hosts
# (mx1..mx4.wild.test, A 127.0.0.11..14), all served by a local unbound
# (tests/lib/dns-server.sh) that the engine reaches through
# SEALPOST_DNS_SERVERS.  One sink listens on the four addresses, same port
# (SEALPOST_SMTP_PORT).  `sealpost run --drain` delivers everything; the
# resolver's exit line (event=dns_stats, one per worker) gives the counters.
#
# First the resolver alone (a small C driver built from this script against
# BUILD_DIR's libsp_dns.a): all domains with a cold cache, then warm, at most
# DNSB_WINDOW [200] lookups in flight.  Then the engine run.
#
# Prints messages/s, DNS lookups/s (dns_resolve_* calls over the run's wall
# time), the share of lookups answered entirely from the cache, and the
# per-question figures (MX/A/AAAA questions, cache-answered, joined to one
# already in flight, sent on the wire).
#
# Knobs (environment): DNSB_MESSAGES [10000], DNSB_DOMAINS [1000],
# DNSB_SIZE [2000] attachment bytes, DNSB_WORKERS [2],
# DNSB_DEST_CONCURRENCY [DNSB_WORKERS: one session per domain and worker;
# more sessions mean more lookups, the later ones cache hits], DNSB_TIMEOUT [300]
# seconds for the drain, DNSB_KEEP=1 keeps the work folder.
set -eu

build=$(cd "${1:?usage: dns-bench.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
n=${DNSB_MESSAGES:-10000}
ndom=${DNSB_DOMAINS:-1000}
size=${DNSB_SIZE:-2000}
workers=${DNSB_WORKERS:-2}
limit=${DNSB_TIMEOUT:-300}
py=/usr/bin/python3
# One session per domain per worker, and room for all of them at once: a
# worker whose connection limit is reached while other domains wait only
# reschedules the domain of a session that ends (engine, reported), so a
# drain with more waiting domains than free connections can stall.
conc=${DNSB_DEST_CONCURRENCY:-$workers}
maxconn=$(( (ndom * ((conc + workers - 1) / workers) + 100) * workers ))

for f in "$build/sealpost" "$build/sealpost-bench"; do
	[ -x "$f" ] || { echo "dns-bench: $f is not built" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-dnsbench.XXXXXX")
sink_pid=
cleanup() {
	[ -n "$sink_pid" ] && kill -TERM "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
	bash "$src/tests/lib/dns-server.sh" stop "$work/dns" >/dev/null 2>&1 || true
	if [ "${DNSB_KEEP:-0}" = 1 ]; then echo "dns-bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# free_port - a port nobody uses on any address, TCP or UDP
free_port() {
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

bash "$src/tests/lib/mkcerts.sh" "$work/certs" >/dev/null 2>&1

# the zone: one MX per domain, spread over four hosts
mkdir -p "$work/dns"
{
	for h in 1 2 3 4; do
		echo "mx$h.wild.test. 300 IN A 127.0.0.$((10 + h))"
	done
	for i in $(seq 0 $((ndom - 1))); do
		echo "d$i.test. 300 IN MX 10 mx$((i % 4 + 1)).wild.test."
	done
} >"$work/dns/records"
dns_port=
for _ in 1 2 3 4 5; do
	dns_port=$(free_port)
	if bash "$src/tests/lib/dns-server.sh" start "$work/dns" "$dns_port" "$work/dns/records" \
		>/dev/null 2>&1; then
		break
	fi
	bash "$src/tests/lib/dns-server.sh" stop "$work/dns" >/dev/null 2>&1 || true
	dns_port=
done
[ -n "$dns_port" ] || { echo "dns-bench: unbound did not start" >&2; exit 1; }

# Phase 1, the resolver alone: every domain looked up through dns/ as the
# engine does (one resolver, a poll loop standing in for the ring), first
# with a cold cache, then again from the cache.  Compiled here against the
# build's libraries so that nothing else is timed.
cat >"$work/storm.c" <<'EOF'
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dns/dns.h"

static struct pollfd pfd[64];
static int npfd, ndone, nok;

static void
on_watch(void *arg, int fd, int rd, int wr)
{
	int i;

	(void)arg;
	for (i = 0; i < npfd && pfd[i].fd != fd; i++)
		;
	if (!rd && !wr) {
		if (i < npfd)
			pfd[i] = pfd[--npfd];
		return;
	}
	if (i == npfd && npfd < 64)
		npfd++;
	pfd[i].fd = fd;
	pfd[i].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
}

static void
on_done(void *arg, const dns_result_t *res)
{
	(void)arg;
	ndone++;
	nok += res->status == DNS_OK && res->nhosts > 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* round_ - resolve d0..d(n-1), at most `window` in flight; seconds taken */
static double
round_(dns_resolver_t *r, int n, int window)
{
	char name[64];
	int next = 0, i;
	double t0 = now();

	ndone = nok = 0;
	while (ndone < n) {
		while (next < n && next - ndone < window) {
			snprintf(name, sizeof(name), "d%d.test", next++);
			dns_resolve_mx(r, name, 25, on_done, NULL);
		}
		if (ndone >= n)
			break;
		if (poll(pfd, (nfds_t)npfd, dns_next_timeout_ms(r)) > 0) {
			struct pollfd ready[64];
			int nr = npfd;

			memcpy(ready, pfd, sizeof(ready));
			for (i = 0; i < nr; i++)
				if (ready[i].revents)
					dns_process_fd(r, ready[i].fd,
					    (ready[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0,
					    (ready[i].revents & POLLOUT) != 0);
		} else
			dns_process_timeout(r);
	}
	return now() - t0;
}

int
main(int argc, char **argv)
{
	static sp_config_t cfg;
	char err[256];
	dns_resolver_t *r;
	dns_stats_t st;
	int n = atoi(argv[2]), window = atoi(argv[3]);
	double cold, warm;

	snprintf(cfg.dns_servers[0].host, sizeof(cfg.dns_servers[0].host), "127.0.0.1");
	cfg.dns_servers[0].port = (uint16_t)atoi(argv[1]);
	cfg.ndns_servers = 1;
	if ((r = dns_resolver_new(&cfg, on_watch, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "storm: %s\n", err);
		return 1;
	}
	cold = round_(r, n, window);
	printf("resolver, cold cache  %d lookups (%d resolved) in %.3f s: %.0f lookups/s\n",
	    n, nok, cold, n / cold);
	warm = round_(r, n, window);
	printf("resolver, warm cache  %d lookups (%d resolved) in %.3f s: %.0f lookups/s\n",
	    n, nok, warm, n / warm);
	dns_resolver_stats(r, &st);
	printf("resolver              %llu questions on the wire, %llu lookups from the cache\n",
	    (unsigned long long)st.queries, (unsigned long long)st.cache_hits);
	dns_resolver_free(r);
	return nok == n ? 0 : 1;
}
EOF
if cc -O2 -I"$src" -o "$work/storm" "$work/storm.c" "$build/libsp_dns.a" "$build/libsp_common.a" \
	-lcares -lpthread 2>"$work/storm.err"; then
	SEALPOST_LOG_LEVEL=warn "$work/storm" "$dns_port" "$ndom" "${DNSB_WINDOW:-200}" 2>/dev/null ||
		echo "dns-bench: resolver phase failed" >&2
else
	echo "dns-bench: cannot build the resolver phase (see $work/storm.err)" >&2
fi

# Phase 2, the engine: fill, drain, read the resolvers' exit lines.
port=$(free_port)
"$build/sealpost-bench" sink --listen 127.0.0.11:$port --listen 127.0.0.12:$port \
	--listen 127.0.0.13:$port --listen 127.0.0.14:$port --port-file "$work/port" \
	--cert "$work/certs/server.pem" --key "$work/certs/server.key" -j 1 \
	--json "$work/sink.json" --duration $((limit + 60)) --quiet >"$work/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 100); do
	[ -s "$work/port" ] && break
	sleep 0.05
done
[ -s "$work/port" ] || { echo "dns-bench: the sink did not start:" >&2; cat "$work/sink.log" >&2; exit 1; }

"$build/sealpost-bench" fill --spool "$work/spool" -n "$n" --size "$size" \
	--domains "$ndom" --domain-fmt 'd%d.test' --quiet

echo "dns-bench: $n messages to $ndom domains, DNS 127.0.0.1:$dns_port, sink port $port"
# the kernel's count of UDP datagrams dropped for a full receive buffer
# (system-wide: other traffic on the machine counts too)
rcvbuf_errors() { awk '/^Udp:/ { v = $6 } END { print v + 0 }' /proc/net/snmp; }
drops0=$(rcvbuf_errors)
t0=$(date +%s.%N)
set +e
env -u SEALPOST_ROUTES SEALPOST_SPOOL="$work/spool" SEALPOST_TLS_CA_FILE="$work/certs/ca.pem" \
	SEALPOST_DNS_SERVERS="127.0.0.1:$dns_port" SEALPOST_SMTP_PORT="$port" \
	SEALPOST_WORKERS="$workers" SEALPOST_HELO_NAME=client.sealpost.test \
	SEALPOST_MAX_CONNECTIONS="$maxconn" SEALPOST_DEST_CONCURRENCY="$conc" \
	SEALPOST_LOG_LEVEL=info timeout "$limit" "$build/sealpost" run --drain >"$work/engine.log" 2>&1
rc=$?
set -e
t1=$(date +%s.%N)
drops=$(( $(rcvbuf_errors) - drops0 ))
kill -TERM "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
sink_pid=

$py - "$work/engine.log" "$work/sink.json" "$t0" "$t1" "$rc" "$n" "$drops" <<'EOF'
import json, re, sys
log, sinkf, t0, t1, rc, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
drops = int(sys.argv[7])
wall = t1 - t0
tot = {}
workers = 0
sent = 0
for line in open(log, errors="replace"):
    if "event=dns_stats" in line:
        workers += 1
        for k, v in re.findall(r"(\w+)=(\d+)", line):
            tot[k] = tot.get(k, 0) + int(v)
    elif "event=delivery" in line and "status=sent" in line:
        sent += 1
sink = json.load(open(sinkf))
g = lambda k: tot.get(k, 0)
print("engine exit status    %d" % rc)
print("wall time             %.2f s" % wall)
print("delivered (log/sink)  %d / %d of %d" % (sent, sink.get("messages", 0), n))
print("messages/s            %.0f" % (sent / wall if wall > 0 else 0))
print("DNS lookups           %d (%d resolvers)  %.0f lookups/s" % (g("lookups"), workers, g("lookups") / wall if wall > 0 else 0))
print("  answered from cache %d (%.1f%%)" % (g("cache_hits"), 100.0 * g("cache_hits") / g("lookups") if g("lookups") else 0))
print("  failures            %d" % g("failures"))
print("DNS questions         %d  (MX, A, AAAA)" % g("questions"))
print("  from cache          %d (%.1f%%)" % (g("question_hits"), 100.0 * g("question_hits") / g("questions") if g("questions") else 0))
print("  joined in flight    %d" % g("joined"))
print("  sent on the wire    %d  %.0f queries/s" % (g("queries"), g("queries") / wall if wall > 0 else 0))
if g("waits"):
    print("lookups that waited   %d: mean %.1f ms, max %d ms (dns_resolve_* to done)" %
          (g("waits"), g("wait_ms_total") / g("waits"), max(int(x) for x in re.findall(r"wait_ms_max=(\d+)", open(log, errors="replace").read()))))
print("UDP receive drops     %d  (kernel RcvbufErrors during the run, all sockets)" % drops)
sys.exit(0 if rc == 0 and sent == n else 1)
EOF
