/*
 * bench/handshake.c - `sealpost-bench handshake`: what a TLS handshake
 * costs us, full and resumed, for TLS 1.3 and TLS 1.2.
 *
 *	bench_handshake_main(argc, argv)
 *
 * One thread runs a client context (tls_ctx_new_client, trusting the test
 * CA, verify level) and a server context (tls_ctx_new_server with the
 * CA-signed P-256 test certificate) and pumps the ciphertext of each
 * connection from one to the other in memory: no sockets, no kernel, only
 * the TLS work.  Each connection is what the engine does per session: the
 * handshake with verification, then the server's 220 greeting read by the
 * client (in TLS 1.3 the session ticket rides in front of it and is saved
 * into the session cache there).
 *
 * "full": a client context with its session cache disabled, so that every
 * connection verifies the chain.  "resumed": the same client with a cache;
 * every connection resumes the ticket the previous one saved (a connection
 * that did not resume is counted and printed).  For each: handshakes per
 * second, CPU per handshake of the whole process (getrusage: client and
 * server together, as both run here) and of the client calls alone (the
 * thread CPU clock around them: what the engine pays), and handshakes per
 * CPU second (what one idle core would do; handshakes/s of the wall clock
 * is lower on a loaded machine).
 *
 * Certificates come from --certs DIR (made there by tests/lib/mkcerts.sh
 * when DIR has none), else from a temporary folder removed at exit; the
 * script is found through $SEALPOST_SRC or, failing that, next to this
 * source file.
 *
 * Errors: usage errors give EX_USAGE (--help prints usage, EX_OK); missing
 * certificates EX_CONFIG; a context or handshake that fails EX_SOFTWARE,
 * each with a message on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/version.h>

#include "bench/handshake.h"
#include "common/config.h"
#include "common/status.h"
#include "tls/tls.h"

#define HS_MAX_SECONDS	600.0
#define HS_PUMP_ROUNDS	50	/* handshake flights are 2-4: far beyond */

enum { KIND_FULL, KIND_RESUMED, KIND_NOVERIFY, KIND_N };
static const char *const kind_names[KIND_N] = { "full", "resumed", "full-noverify" };

struct hs_result {
	uint64_t n;		/* connections made */
	uint64_t not_resumed;	/* in the resumed run: should stay 0 */
	double	elapsed;	/* wall seconds */
	double	cpu_us;		/* process CPU, both sides */
	double	client_us;	/* client calls only */
};

static double cpu_thread_us(void);
static double cpu_process_us(void);
static void move(tls_conn_t *from, tls_conn_t *to);
static int one_conn(tls_ctx_t *cctx, tls_ctx_t *sctx, const tls_policy_t *pol,
		    int *resumed, double *client_us, char *err, size_t errlen);
static int run(const char *certs, int version, int kind, double seconds,
	       struct hs_result *r, char *err, size_t errlen);
static int find_certs(const char *dir, char *err, size_t errlen);
static void usage(FILE *fp);

/* usage - the options */
static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: sealpost-bench handshake [--seconds S] [--tls 1.2|1.3] [--certs DIR]\n"
	    "  full and resumed TLS handshakes per second in one thread (client and\n"
	    "  server of tls/ pumped in memory), CPU per handshake of each kind.\n"
	    "  --seconds S  per figure (default 2, at most 600)\n"
	    "  --tls V      only this version (default: both)\n"
	    "  --certs DIR  test certificates (tests/lib/mkcerts.sh makes them there\n"
	    "               when missing); default a temporary folder\n");
}

/* cpu_thread_us - this thread's CPU time in microseconds */
static double
cpu_thread_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* cpu_process_us - user + system CPU of the process in microseconds */
static double
cpu_process_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* move - all pending ciphertext of one side into the other */
static void
move(tls_conn_t *from, tls_conn_t *to)
{
	const void *p;
	size_t n;

	while ((n = tls_conn_output(from, &p)) > 0) {
		tls_conn_input(to, p, n);
		tls_conn_output_done(from, n);
	}
}

/* one_conn - one connection as the engine makes it: handshake, then the
 * greeting read by the client; 0, or -1 with err */
static int
one_conn(tls_ctx_t *cctx, tls_ctx_t *sctx, const tls_policy_t *pol, int *resumed,
	 double *client_us, char *err, size_t errlen)
{
	tls_conn_t *cl, *sv;
	tls_info_t info;
	char buf[64];
	size_t got;
	double t0;
	int cs = SP_AGAIN, ss = SP_AGAIN, i, rc = -1;

	t0 = cpu_thread_us();
	cl = tls_conn_new_client(cctx, pol, "mx.test", 25, "bench.test");
	*client_us += cpu_thread_us() - t0;
	if ((sv = tls_conn_new_server(sctx)) == NULL || cl == NULL) {
		snprintf(err, errlen, "cannot create a connection");
		goto out;
	}
	for (i = 0; i < HS_PUMP_ROUNDS && (cs == SP_AGAIN || ss == SP_AGAIN); i++) {
		if (cs == SP_AGAIN) {
			t0 = cpu_thread_us();
			cs = tls_conn_handshake(cl);
			*client_us += cpu_thread_us() - t0;
		}
		move(cl, sv);
		if (ss == SP_AGAIN)
			ss = tls_conn_handshake(sv);
		t0 = cpu_thread_us();
		move(sv, cl);
		*client_us += cpu_thread_us() - t0;
		if (cs == SP_ERROR || ss == SP_ERROR)
			break;
	}
	if (cs != SP_OK || ss != SP_OK) {
		snprintf(err, errlen, "handshake failed: client: %s; server: %s",
		    tls_conn_error(cl), tls_conn_error(sv));
		goto out;
	}
	if (tls_conn_write(sv, "220 bench\r\n", 11, &got) != SP_OK) {
		snprintf(err, errlen, "server write: %s", tls_conn_error(sv));
		goto out;
	}
	t0 = cpu_thread_us();
	move(sv, cl);
	cs = tls_conn_read(cl, buf, sizeof(buf), &got);
	tls_conn_info(cl, &info);
	*client_us += cpu_thread_us() - t0;
	if (cs != SP_OK) {
		snprintf(err, errlen, "client read: %s", tls_conn_error(cl));
		goto out;
	}
	*resumed = info.resumed;
	rc = 0;
out:
	t0 = cpu_thread_us();
	tls_conn_free(cl);
	*client_us += cpu_thread_us() - t0;
	tls_conn_free(sv);
	return rc;
}

/* run - connections for `seconds` against one server of `version` (12 or
 * 13): kind KIND_FULL, KIND_RESUMED (with the client session cache) or
 * KIND_NOVERIFY (full, encrypt level: what verifying the chain costs) */
static int
run(const char *certs, int version, int kind, double seconds, struct hs_result *r,
    char *err, size_t errlen)
{
	tls_policy_t enc, *pol = NULL;
	int resume = kind == KIND_RESUMED;
	char crt[4200], key[4200], cerr[512];
	sp_config_t cfg;
	tls_ctx_t *cctx = NULL, *sctx = NULL;
	struct timespec a, b;
	double cpu0, deadline;
	int resumed, rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&cfg, 0, sizeof(cfg));
	if (kind == KIND_NOVERIFY) {
		memset(&enc, 0, sizeof(enc));
		snprintf(enc.domain, sizeof(enc.domain), "bench.test");
		enc.level = SP_TLS_ENCRYPT;
		pol = &enc;
	}
	snprintf(cfg.tls_ca_file, sizeof(cfg.tls_ca_file), "%s/ca.pem", certs);
	cfg.tls_min_version = 12;
	cfg.tls_level = SP_TLS_VERIFY;
	cfg.tls_session_cache = resume ? 100 : 0;
	cfg.tls_session_lifetime = 3600;
	snprintf(crt, sizeof(crt), "%s/server.pem", certs);
	snprintf(key, sizeof(key), "%s/server.key", certs);
	if ((cctx = tls_ctx_new_client(&cfg, cerr, sizeof(cerr))) == NULL ||
	    (sctx = tls_ctx_new_server(crt, key, NULL, version == 13 ? 1313 : 1212,
	    cerr, sizeof(cerr))) == NULL) {
		snprintf(err, errlen, "%s", cerr);
		goto out;
	}
	/* a first connection fills the cache (and warms everything up) */
	if (one_conn(cctx, sctx, pol, &resumed, &r->client_us, err, errlen) < 0)
		goto out;
	r->client_us = 0;
	cpu0 = cpu_process_us();
	clock_gettime(CLOCK_MONOTONIC, &a);
	deadline = (double)a.tv_sec + (double)a.tv_nsec / 1e9 + seconds;
	do {
		if (one_conn(cctx, sctx, pol, &resumed, &r->client_us, err, errlen) < 0)
			goto out;
		r->n++;
		if (resume && !resumed)
			r->not_resumed++;
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((double)b.tv_sec + (double)b.tv_nsec / 1e9 < deadline);
	r->cpu_us = cpu_process_us() - cpu0;
	r->elapsed = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	rc = 0;
out:
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
	return rc;
}

/* find_certs - make sure dir holds the test certificates; 0 or -1 with err */
static int
find_certs(const char *dir, char *err, size_t errlen)
{
	char script[4200], cmd[8600], have[4200];
	const char *src = getenv("SEALPOST_SRC");
	struct stat st;
	char *slash;

	snprintf(have, sizeof(have), "%s/server.pem", dir);
	if (stat(have, &st) == 0)
		return 0;
	if (src != NULL && src[0] != '\0')
		snprintf(script, sizeof(script), "%s/tests/lib/mkcerts.sh", src);
	else {
		/* __FILE__ is the absolute path of this file in a CMake build */
		snprintf(script, sizeof(script), "%s", __FILE__);
		if ((slash = strrchr(script, '/')) != NULL)
			*slash = '\0';
		if ((slash = strrchr(script, '/')) != NULL)
			*slash = '\0';
		snprintf(script + strlen(script), sizeof(script) - strlen(script),
		    "/tests/lib/mkcerts.sh");
	}
	if (stat(script, &st) != 0) {
		snprintf(err, errlen, "%s: not found (set SEALPOST_SRC to the source tree, "
		    "or give --certs DIR with ca.pem, server.pem, server.key)", script);
		return -1;
	}
	if (strchr(dir, '\'') != NULL || strchr(script, '\'') != NULL) {
		snprintf(err, errlen, "%s: quote in a path", dir);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "bash '%s' '%s'", script, dir);
	if (system(cmd) != 0) {
		snprintf(err, errlen, "%s %s: failed", script, dir);
		return -1;
	}
	return 0;
}

/* bench_handshake_main - `sealpost-bench handshake` */
int
bench_handshake_main(int argc, char **argv)
{
	static const int versions[] = { 13, 12 };
	char tmp[64] = "", certs[4096] = "", err[1024], cmd[128];
	struct hs_result r;
	double seconds = 2.0;
	char *end;
	int only = 0, i, kind, rc = EX_OK;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EX_OK;
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], &end);
			if (*end != '\0' || !(seconds > 0.0 && seconds <= HS_MAX_SECONDS)) {
				fprintf(stderr, "handshake: --seconds %s: want a number in "
				    "(0, 600]\n", argv[i]);
				return EX_USAGE;
			}
		} else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "1.2") == 0)
				only = 12;
			else if (strcmp(argv[i], "1.3") == 0)
				only = 13;
			else {
				fprintf(stderr, "handshake: --tls %s: want 1.2 or 1.3\n", argv[i]);
				return EX_USAGE;
			}
		} else if (strcmp(argv[i], "--certs") == 0 && i + 1 < argc) {
			snprintf(certs, sizeof(certs), "%s", argv[++i]);
		} else {
			fprintf(stderr, "handshake: unknown or incomplete option %s\n", argv[i]);
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (certs[0] == '\0') {
		snprintf(tmp, sizeof(tmp), "%s", "/tmp/sealpost-hs.XXXXXX");
		if (mkdtemp(tmp) == NULL) {
			perror("handshake: mkdtemp");
			return EX_CANTCREAT;
		}
		snprintf(certs, sizeof(certs), "%s", tmp);
	}
	if (find_certs(certs, err, sizeof(err)) < 0) {
		fprintf(stderr, "handshake: %s\n", err);
		rc = EX_CONFIG;
		goto out;
	}
	printf("handshake: wolfSSL %s, P-256 ECDSA server certificate signed by a test CA, "
	    "verify level, one thread, %.1f s per figure\n", LIBWOLFSSL_VERSION_STRING,
	    seconds);
	printf("%-8s %-13s %12s %14s %16s %16s\n", "version", "kind", "handshakes/s",
	    "CPU us/hs", "client us/hs", "per CPU second");
	for (i = 0; i < 2; i++) {
		if (only != 0 && versions[i] != only)
			continue;
		for (kind = 0; kind < KIND_N; kind++) {
			if (run(certs, versions[i], kind, seconds, &r, err, sizeof(err)) < 0) {
				fprintf(stderr, "handshake: TLS 1.%d %s: %s\n", versions[i] % 10,
				    kind_names[kind], err);
				rc = EX_SOFTWARE;
				goto out;
			}
			printf("%-8s %-13s %12.0f %14.0f %16.0f %16.0f", versions[i] == 13 ?
			    "TLSv1.3" : "TLSv1.2", kind_names[kind],
			    (double)r.n / r.elapsed, r.cpu_us / (double)r.n,
			    r.client_us / (double)r.n, 1e6 * (double)r.n / r.cpu_us);
			if (r.not_resumed > 0)
				printf("  (%llu of %llu not resumed)",
				    (unsigned long long)r.not_resumed, (unsigned long long)r.n);
			printf("\n");
			fflush(stdout);
		}
	}
	printf("(CPU us/hs: client and server together, both run here; client us/hs: "
	    "the client calls alone, what the engine pays per connection;\n"
	    " per CPU second: handshakes per second of CPU, the rate on an idle core;\n"
	    " full-noverify: encrypt level, no chain or name check: the most a "
	    "verdict cache could save)\n");
out:
	tls_thread_cleanup();
	if (tmp[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "handshake: cannot remove %s\n", tmp);
	}
	return rc;
}
