/*
 * bench/main.c - sealpost-bench: dispatch to the subcommands.
 *
 *	sealpost-bench sink [options]	SMTP receiver with STARTTLS and faults
 *	sealpost-bench fill [options]	write fax-like messages into a spool
 *	sealpost-bench run [options]	end-to-end benchmark: sink, fill, engine, report (run.c)
 *	sealpost-bench crypto [options]	cipher throughput of the linked wolfSSL (crypto.c)
 *	sealpost-bench handshake [options]	TLS handshakes per second (handshake.c)
 *
 * Also the small helpers the subcommands share (clocks, number parsing).
 * Exit codes come from sysexits.h; usage errors print to stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "bench/bench.h"
#include "bench/crypto.h"
#include "bench/handshake.h"

static void usage(void);

/* bench_now_us - CLOCK_REALTIME in microseconds */
int64_t
bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* bench_mono_s - CLOCK_MONOTONIC in seconds */
double
bench_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_parse_u64 - whole decimal number in [0, max]; -1 when not */
int
bench_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* usage - the subcommand list */
static void
usage(void)
{
	fprintf(stderr,
	    "usage: sealpost-bench COMMAND [options]\n"
	    "  sink   SMTP receiver (STARTTLS, fault injection, store/hash); sink --help\n"
	    "  fill   write fax-like test messages into a spool; fill --help\n"
	    "  run    end-to-end benchmark: certificates, sink, spool, engine, report; run --help\n"
	    "  crypto cipher throughput of the linked wolfSSL; crypto --help\n"
	    "  handshake  full and resumed TLS handshakes per second; handshake --help\n");
}

/* main - run the subcommand named by argv[1] */
int
main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage();
		return argc < 2 ? EX_USAGE : EX_OK;
	}
	if (strcmp(argv[1], "sink") == 0)
		return bench_sink_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "fill") == 0)
		return bench_fill_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return bench_run_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "crypto") == 0)
		return bench_crypto_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "handshake") == 0)
		return bench_handshake_main(argc - 1, argv + 1);
	fprintf(stderr, "sealpost-bench: unknown command \"%s\"\n", argv[1]);
	usage();
	return EX_USAGE;
}
