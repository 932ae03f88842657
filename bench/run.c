/*
 * bench/run.c - `sealpost-bench run`: one end-to-end delivery benchmark.
 *
 *	bench_run_main(argc, argv)
 *
 * In a private temporary folder: test certificates (tests/lib/mkcerts.sh,
 * or openssl directly when the script cannot be found), the bundled sink
 * (this binary, `sink` mode, STARTTLS required, --hash, --timeline), a
 * spool filled by this binary's `fill` mode, and the engine (`sealpost run
 * --drain` on a pre-filled spool, or `sealpost run` while `fill --rate R`
 * offers a steady load, stopped with SIGTERM once every message has an
 * outcome).  The engine delivers over verified TLS to
 * SEALPOST_ROUTES="*=localhost:PORT" with the test CA as its trust store.
 *
 * Measured: messages/s (sink messages / time from the engine's start to
 * the sink's last accepted message), latency from the spool drop to the
 * sink's 250 (the sink's histogram of X-Sealpost-Bench-Submitted ages),
 * the engine's CPU seconds and peak RSS (wait4 rusage), handshakes full
 * and resumed (the sink's counts), and errors (sink errors, deferred and
 * bounced log lines of the engine).  Received + deferred + bounced must
 * equal the number of recipients filled, else the run fails.
 *
 * Children are this process's own: each is waited for; on SIGINT/SIGTERM
 * or a timeout they get SIGTERM, then SIGKILL after 5 s.  Errors: a
 * message on stderr and a sysexits.h code (EX_SOFTWARE when the counts do
 * not add up or the run timed out).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

#define RUN_MAX_N	10000000
#define RUN_PATH	4096

typedef struct run_opts {
	uint64_t n, size, domains, rate, workers, sink_threads, msgs_per_conn;
	uint64_t concurrency, timeout;
	const char *engine, *json, *svg, *tls_min;
	int	keep;
} run_opts_t;

/* an incrementally read, growing text file (engine log, sink timeline) */
typedef struct run_tail {
	int	fd;
	char	buf[8192];
	size_t	len;
} run_tail_t;

/* one --timeline line of the sink */
typedef struct run_point {
	double	t;		/* CLOCK_MONOTONIC seconds */
	uint64_t msgs, lat_n;
	double	lat_sum_ms, lat_max_ms;
} run_point_t;

typedef struct run_state {
	run_opts_t o;
	char	work[RUN_PATH], self[RUN_PATH], engine[RUN_PATH];
	pid_t	sink, engine_pid, fill;
	double	t_engine, t_end;
	int	engine_status, fill_status, timed_out, interrupted, started;
	struct rusage engine_ru, sink_ru;
	uint64_t sent, deferred, bounced;
	char	first_problem[512];
	run_tail_t log, tl;
	run_point_t *pts;
	size_t	npts, cappts;
	int	progress;
} run_state_t;

/* the sink's JSON summary, the fields the report uses */
typedef struct run_sink {
	double	messages, recipients, bytes, connections, tls13, tls12, resumed;
	double	errors, tls_failures, plaintext, p50, p90, p99, max, lat_count;
	double	first_mono, last_mono;
	int	ok;
} run_sink_t;

static volatile sig_atomic_t run_signalled;

static void run_usage(void);
static void run_on_signal(int sig);
static int run_path(char *out, const char *a, const char *b);
static pid_t run_spawn(run_state_t *s, char *const argv[], const char *logname,
		       int engine_env);
static int run_wait(pid_t pid, double limit, int *status, struct rusage *ru);
static void run_stop(pid_t pid, int *status, struct rusage *ru);
static int run_certs(run_state_t *s);
static int run_find_mkcerts(const run_state_t *s, char *out);
static int run_wait_file(const char *path, double secs, pid_t pid);
static int run_tail_open(run_tail_t *t, const char *path);
static void run_tail_lines(run_state_t *s, run_tail_t *t,
			   void (*fn)(run_state_t *, char *));
static void run_log_line(run_state_t *s, char *line);
static void run_tl_line(run_state_t *s, char *line);
static int run_has_token(const char *line, const char *tok);
static void run_progress(run_state_t *s, int final);
static int run_read_sink(const char *path, run_sink_t *k);
static double run_json_num(const char *j, const char *key);
static void run_report(run_state_t *s, const run_sink_t *k, FILE *out, int json);
static int run_svg(run_state_t *s, const char *path);
static int run_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw);
static int run_main_loop(run_state_t *s);

/* run_usage - the options */
static void
run_usage(void)
{
	fprintf(stderr,
	    "usage: sealpost-bench run [options]\n"
	    "  -n N                  messages [10000]\n"
	    "  --size BYTES          raw PDF attachment size per message [60000]\n"
	    "  --domains K           recipient domains (all routed to the sink) [1]\n"
	    "  --rate R              offer R msgs/s while the engine runs (latency under\n"
	    "                        load); default: pre-fill the spool, then drain it\n"
	    "  --engine PATH         the sealpost binary [next to this one]\n"
	    "  --workers W           SEALPOST_WORKERS of the engine [its default]\n"
	    "  --concurrency C       SEALPOST_DEST_CONCURRENCY of the engine [its default]\n"
	    "  --msgs-per-conn M     SEALPOST_MSGS_PER_CONNECTION of the engine [its default]\n"
	    "  --tls-min 1.2|1.3     lowest TLS version, engine and sink [1.2]\n"
	    "  --sink-threads T      sink worker threads [2]\n"
	    "  --timeout SEC         give up after SEC seconds [60 + N/100]\n"
	    "  --json FILE           the report as JSON\n"
	    "  --svg FILE            a chart of throughput and latency over time\n"
	    "  --keep                keep the work folder (spool, logs, certificates)\n"
	    "Environment: SEALPOST_SRC (source tree, to find tests/lib/mkcerts.sh), TMPDIR.\n");
}

/* run_on_signal - remember SIGINT/SIGTERM; the loop stops the children */
static void
run_on_signal(int sig)
{
	run_signalled = sig;
}

/* run_path - out = a "/" b, bounded; -1 when too long */
static int
run_path(char *out, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la + 1 + lb >= RUN_PATH)
		return -1;
	memcpy(out, a, la);
	out[la] = '/';
	memcpy(out + la + 1, b, lb + 1);
	return 0;
}

/* run_spawn - fork and exec argv with stdout+stderr appended to
 * WORK/logname (or /dev/null when NULL); engine_env sets the engine's
 * configuration in the child only */
static pid_t
run_spawn(run_state_t *s, char *const argv[], const char *logname, int engine_env)
{
	char logpath[RUN_PATH];
	pid_t pid;

	if (logname != NULL && run_path(logpath, s->work, logname) == -1)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid != 0)
		return pid;

	/* child */
	{
		sigset_t none;
		int fd = open(logname ? logpath : "/dev/null",
		    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (fd == -1 || in == -1 || dup2(in, 0) == -1 || dup2(fd, 1) == -1 ||
		    dup2(fd, 2) == -1)
			_exit(EX_OSERR);
		if (engine_env) {
			char v[RUN_PATH + 64];
			static const char *drop[] = {
				"SEALPOST_TLS_POLICY", "SEALPOST_DNS_SERVERS",
				"SEALPOST_TLS_CA_DIR", "SEALPOST_TLS_CERT", "SEALPOST_TLS_KEY",
				"SEALPOST_BIND_ADDRESS", "SEALPOST_TLS_CIPHERS",
				"SEALPOST_METRICS_LISTEN", "SEALPOST_LOG_FORMAT",
			};
			size_t i;

			for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
				unsetenv(drop[i]);
			snprintf(v, sizeof(v), "%s/spool", s->work);
			setenv("SEALPOST_SPOOL", v, 1);
			snprintf(v, sizeof(v), "%s/certs/ca.pem", s->work);
			setenv("SEALPOST_TLS_CA_FILE", v, 1);
			setenv("SEALPOST_TLS_LEVEL", "verify", 1);
			setenv("SEALPOST_TLS_MIN_VERSION", s->o.tls_min, 1);
			setenv("SEALPOST_LOG_LEVEL", "info", 1);
			setenv("SEALPOST_HELO_NAME", "bench.sealpost.test", 1);
			if (s->o.workers > 0) {
				snprintf(v, sizeof(v), "%llu", (unsigned long long)s->o.workers);
				setenv("SEALPOST_WORKERS", v, 1);
			}
			if (s->o.concurrency > 0) {
				snprintf(v, sizeof(v), "%llu", (unsigned long long)s->o.concurrency);
				setenv("SEALPOST_DEST_CONCURRENCY", v, 1);
			}
			if (s->o.msgs_per_conn > 0) {
				snprintf(v, sizeof(v), "%llu",
				    (unsigned long long)s->o.msgs_per_conn);
				setenv("SEALPOST_MSGS_PER_CONNECTION", v, 1);
			}
			snprintf(v, sizeof(v), "*=localhost:%s", getenv("RUN_SINK_PORT"));
			setenv("SEALPOST_ROUTES", v, 1);
			unsetenv("RUN_SINK_PORT");
		}
		execv(argv[0], argv);
		fprintf(stderr, "sealpost-bench run: exec %s: %s\n", argv[0], strerror(errno));
		_exit(EX_UNAVAILABLE);
	}
}

/* run_wait - wait up to limit seconds (< 0: forever) for pid; 0 when it
 * ended (status and rusage filled), -1 on timeout or a signal to us */
static int
run_wait(pid_t pid, double limit, int *status, struct rusage *ru)
{
	double end = bench_mono_s() + limit;

	for (;;) {
		pid_t r = wait4(pid, status, WNOHANG, ru);

		if (r == pid)
			return 0;
		if (r == -1 && errno != EINTR)
			return 0;
		if ((limit >= 0 && bench_mono_s() > end) || run_signalled)
			return -1;
		usleep(20000);
	}
}

/* run_stop - SIGTERM pid, SIGKILL after 5 s, reap it */
static void
run_stop(pid_t pid, int *status, struct rusage *ru)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	{
		double end = bench_mono_s() + 5;

		while (wait4(pid, status, WNOHANG, ru) == 0) {
			if (bench_mono_s() > end) {
				kill(pid, SIGKILL);
				wait4(pid, status, 0, ru);
				return;
			}
			usleep(20000);
		}
	}
}

/* run_find_mkcerts - tests/lib/mkcerts.sh under $SEALPOST_SRC, the parent
 * of the build folder, or the source folder named in its CMakeCache.txt */
static int
run_find_mkcerts(const run_state_t *s, char *out)
{
	char dir[RUN_PATH], line[RUN_PATH + 64];
	const char *src = getenv("SEALPOST_SRC");
	FILE *f;

	if (src != NULL && *src && snprintf(out, RUN_PATH, "%s/tests/lib/mkcerts.sh", src) <
	    RUN_PATH && access(out, R_OK) == 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s", s->self);
	snprintf(dir, sizeof(dir), "%s", dirname(dir));
	if (snprintf(out, RUN_PATH, "%s/../tests/lib/mkcerts.sh", dir) < RUN_PATH &&
	    access(out, R_OK) == 0)
		return 0;
	if (snprintf(line, sizeof(line), "%s/CMakeCache.txt", dir) >= (int)sizeof(line) ||
	    (f = fopen(line, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "CMAKE_HOME_DIRECTORY:INTERNAL=", 30) == 0) {
			line[strcspn(line, "\n")] = '\0';
			fclose(f);
			return snprintf(out, RUN_PATH, "%s/tests/lib/mkcerts.sh", line + 30) <
			    RUN_PATH && access(out, R_OK) == 0 ? 0 : -1;
		}
	}
	fclose(f);
	return -1;
}

/* run_certs - WORK/certs/{ca.pem,server.pem,server.key}: mkcerts.sh, else
 * a CA and a server certificate (localhost, 127.0.0.1, mx.test) made with
 * openssl directly */
static int
run_certs(run_state_t *s)
{
	static const char script[] =
	    "set -e; cd \"$1\"\n"
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key\n"
	    "openssl req -new -x509 -key ca.key -out ca.pem -days 3650 -subj '/CN=sealpost bench CA'"
	    " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign\n"
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key\n"
	    "openssl req -new -key server.key -out server.csr -subj /CN=localhost\n"
	    "printf 'basicConstraints=CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
	    "extendedKeyUsage=serverAuth\\nsubjectAltName=DNS:localhost,DNS:mx.test,IP:127.0.0.1\\n'"
	    " >server.ext\n"
	    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650"
	    " -sha256 -extfile server.ext -out server.pem\n";
	char dir[RUN_PATH], mk[RUN_PATH];
	char *argv[6];
	int st = 0;
	pid_t pid;

	if (run_path(dir, s->work, "certs") == -1 || mkdir(dir, 0700) == -1)
		return -1;
	if (run_find_mkcerts(s, mk) == 0) {
		argv[0] = (char *)"/bin/bash";
		argv[1] = mk;
		argv[2] = dir;
		argv[3] = NULL;
	} else {
		argv[0] = (char *)"/bin/sh";
		argv[1] = (char *)"-c";
		argv[2] = (char *)script;
		argv[3] = (char *)"mkcerts";
		argv[4] = dir;
		argv[5] = NULL;
	}
	pid = run_spawn(s, argv, "certs.log", 0);
	if (pid == -1 || run_wait(pid, 60, &st, NULL) == -1 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "sealpost-bench run: making test certificates failed (see %s/certs.log)\n",
		    s->work);
		s->o.keep = 1;
		return -1;
	}
	return 0;
}

/* run_wait_file - wait until path is non-empty (pid must stay alive) */
static int
run_wait_file(const char *path, double secs, pid_t pid)
{
	double end = bench_mono_s() + secs;
	struct stat st;
	int status;

	while (bench_mono_s() < end && !run_signalled) {
		if (stat(path, &st) == 0 && st.st_size > 0)
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

/* run_tail_open - start reading path from its beginning (it may not
 * exist yet: then fd stays -1 and we try again later) */
static int
run_tail_open(run_tail_t *t, const char *path)
{
	if (t->fd == -1)
		t->fd = open(path, O_RDONLY | O_CLOEXEC);
	return t->fd;
}

/* run_tail_lines - feed every complete new line of t to fn (a line
 * longer than the buffer is cut; only our own children write these) */
static void
run_tail_lines(run_state_t *s, run_tail_t *t, void (*fn)(run_state_t *, char *))
{
	for (;;) {
		ssize_t n;
		size_t start = 0, i;

		if (t->fd == -1)
			return;
		if (t->len == sizeof(t->buf) - 1) {
			t->buf[t->len] = '\0';
			fn(s, t->buf);
			t->len = 0;
		}
		n = read(t->fd, t->buf + t->len, sizeof(t->buf) - 1 - t->len);
		if (n <= 0)
			return;
		t->len += (size_t)n;
		for (i = 0; i < t->len; i++) {
			if (t->buf[i] == '\n') {
				t->buf[i] = '\0';
				fn(s, t->buf + start);
				start = i + 1;
			}
		}
		memmove(t->buf, t->buf + start, t->len - start);
		t->len -= start;
	}
}

/* run_has_token - line holds " tok" followed by a space or its end */
static int
run_has_token(const char *line, const char *tok)
{
	size_t n = strlen(tok);
	const char *p = line;

	while ((p = strstr(p, tok)) != NULL) {
		if ((p == line || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

/* run_log_line - count the engine's per-recipient outcomes; keep the
 * first line that is not a success, to show why */
static void
run_log_line(run_state_t *s, char *line)
{
	int bad = 0;

	if (run_has_token(line, "status=sent"))
		s->sent++;
	else if (run_has_token(line, "status=deferred"))
		s->deferred++, bad = 1;
	else if (run_has_token(line, "status=bounced"))
		s->bounced++, bad = 1;
	else if (strstr(line, "event=startup") != NULL)
		s->started = 1;
	if (bad && s->first_problem[0] == '\0')
		snprintf(s->first_problem, sizeof(s->first_problem), "%s", line);
}

/* run_tl_line - one sink timeline point */
static void
run_tl_line(run_state_t *s, char *line)
{
	run_point_t p;
	unsigned long long m, n;

	if (sscanf(line, "%lf %llu %llu %lf %lf", &p.t, &m, &n, &p.lat_sum_ms,
	    &p.lat_max_ms) != 5)
		return;
	p.msgs = m;
	p.lat_n = n;
	if (s->npts == s->cappts) {
		size_t cap = s->cappts ? s->cappts * 2 : 1024;
		run_point_t *np = realloc(s->pts, cap * sizeof(*np));

		if (np == NULL)
			return;		/* the chart loses points; the figures do not */
		s->pts = np;
		s->cappts = cap;
	}
	s->pts[s->npts++] = p;
}

/* run_progress - a bar on stderr (only when it is a terminal) */
static void
run_progress(run_state_t *s, int final)
{
	uint64_t got = s->npts ? s->pts[s->npts - 1].msgs : 0, want = s->o.n;
	double el = (final && s->t_end > 0 ? s->t_end : bench_mono_s()) - s->t_engine;
	int w = 40, fill, i;
	char bar[64];

	if (!s->progress)
		return;
	if (got > want)
		got = want;
	fill = want ? (int)((double)got * w / (double)want) : w;
	for (i = 0; i < w; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[w] = '\0';
	fprintf(stderr, "\r[%s] %llu/%llu  %.1f s  %.0f msgs/s  deferred %llu bounced %llu%s",
	    bar, (unsigned long long)got, (unsigned long long)want, el,
	    el > 0 ? (double)got / el : 0.0, (unsigned long long)s->deferred,
	    (unsigned long long)s->bounced, final ? "\n" : "");
	fflush(stderr);
}

/* run_json_num - the number after "key": in j (a flat search: the sink's
 * keys are unique), or -1 */
static double
run_json_num(const char *j, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(j, k);
	if (p == NULL)
		return -1;
	return strtod(p + strlen(k), NULL);
}

/* run_read_sink - the sink's summary file */
static int
run_read_sink(const char *path, run_sink_t *k)
{
	char j[4096];
	size_t n;
	FILE *f = fopen(path, "re");

	memset(k, 0, sizeof(*k));
	if (f == NULL)
		return -1;
	n = fread(j, 1, sizeof(j) - 1, f);
	fclose(f);
	j[n] = '\0';
	k->messages = run_json_num(j, "messages");
	k->recipients = run_json_num(j, "recipients");
	k->bytes = run_json_num(j, "bytes");
	k->connections = run_json_num(j, "connections");
	k->tls13 = run_json_num(j, "TLSv1.3");
	k->tls12 = run_json_num(j, "TLSv1.2");
	k->resumed = run_json_num(j, "resumed");
	k->errors = run_json_num(j, "errors");
	k->tls_failures = run_json_num(j, "tls_failures");
	k->plaintext = run_json_num(j, "plaintext_messages");
	k->lat_count = run_json_num(j, "count");
	k->p50 = run_json_num(j, "p50");
	k->p90 = run_json_num(j, "p90");
	k->p99 = run_json_num(j, "p99");
	k->max = run_json_num(j, "max");
	k->first_mono = run_json_num(j, "first_conn_mono");
	k->last_mono = run_json_num(j, "last_msg_mono");
	k->ok = k->messages >= 0 && k->recipients >= 0 && k->errors >= 0;
	return k->ok ? 0 : -1;
}

/* run_report - the figures as a table (json 0) or as JSON (json 1) */
static void
run_report(run_state_t *s, const run_sink_t *k, FILE *out, int json)
{
	double el = k->last_mono > s->t_engine ? k->last_mono - s->t_engine : 0;
	double cpu_u = (double)s->engine_ru.ru_utime.tv_sec +
	    (double)s->engine_ru.ru_utime.tv_usec / 1e6;
	double cpu_s = (double)s->engine_ru.ru_stime.tv_sec +
	    (double)s->engine_ru.ru_stime.tv_usec / 1e6;
	double sink_cpu = (double)s->sink_ru.ru_utime.tv_sec +
	    (double)s->sink_ru.ru_utime.tv_usec / 1e6 +
	    (double)s->sink_ru.ru_stime.tv_sec + (double)s->sink_ru.ru_stime.tv_usec / 1e6;
	double rate = el > 0 ? k->messages / el : 0;
	double per1000 = k->messages > 0 ? (cpu_u + cpu_s) * 1000.0 / k->messages : 0;
	uint64_t received = (uint64_t)k->recipients;
	int add_up = received + s->deferred + s->bounced == s->o.n;
	int ecode = WIFEXITED(s->engine_status) ? WEXITSTATUS(s->engine_status) :
	    128 + WTERMSIG(s->engine_status);
	double errors = k->errors + (double)s->deferred + (double)s->bounced;

	if (json) {
		fprintf(out,
		    "{\"mode\": \"%s\", \"messages_requested\": %llu, \"size\": %llu, "
		    "\"domains\": %llu, \"rate_offered\": %llu, \"tls_min\": \"%s\",\n"
		    " \"messages\": %.0f, \"received\": %llu, \"deferred\": %llu, "
		    "\"bounced\": %llu, \"sent_logged\": %llu, \"counts_add_up\": %s, "
		    "\"timed_out\": %s, \"interrupted\": %s,\n"
		    " \"elapsed_s\": %.3f, \"msgs_per_s\": %.1f, \"mb_per_s\": %.2f,\n"
		    " \"latency_ms\": {\"count\": %.0f, \"p50\": %.0f, \"p90\": %.0f, "
		    "\"p99\": %.0f, \"max\": %.0f},\n"
		    " \"engine\": {\"exit\": %d, \"user_s\": %.3f, \"sys_s\": %.3f, "
		    "\"cpu_s_per_1000\": %.4f, \"max_rss_kb\": %ld},\n"
		    " \"sink\": {\"cpu_s\": %.3f, \"threads\": %llu},\n"
		    " \"handshakes\": {\"connections\": %.0f, \"full\": %.0f, \"resumed\": %.0f, "
		    "\"TLSv1.3\": %.0f, \"TLSv1.2\": %.0f},\n"
		    " \"errors\": {\"total\": %.0f, \"sink\": %.0f, \"tls_failures\": %.0f, "
		    "\"plaintext_messages\": %.0f, \"deferred\": %llu, \"bounced\": %llu}}\n",
		    s->o.rate ? "rate" : "drain", (unsigned long long)s->o.n,
		    (unsigned long long)s->o.size, (unsigned long long)s->o.domains,
		    (unsigned long long)s->o.rate, s->o.tls_min,
		    k->messages, (unsigned long long)received, (unsigned long long)s->deferred,
		    (unsigned long long)s->bounced, (unsigned long long)s->sent,
		    add_up ? "true" : "false", s->timed_out && !run_signalled ? "true" : "false",
		    run_signalled ? "true" : "false",
		    el, rate, el > 0 ? k->bytes / el / 1e6 : 0,
		    k->lat_count, k->p50, k->p90, k->p99, k->max,
		    ecode, cpu_u, cpu_s, per1000, s->engine_ru.ru_maxrss,
		    sink_cpu, (unsigned long long)s->o.sink_threads,
		    k->connections, k->connections - k->resumed, k->resumed, k->tls13, k->tls12,
		    errors, k->errors, k->tls_failures, k->plaintext,
		    (unsigned long long)s->deferred, (unsigned long long)s->bounced);
		return;
	}
	fprintf(out, "sealpost-bench run: %llu messages x %llu B attachment, %llu domain%s, %s, "
	    "verified TLS >= %s\n",
	    (unsigned long long)s->o.n, (unsigned long long)s->o.size,
	    (unsigned long long)s->o.domains, s->o.domains == 1 ? "" : "s",
	    s->o.rate ? "steady offered load" : "pre-filled spool, drained", s->o.tls_min);
	if (s->o.rate)
		fprintf(out, "  %-26s %llu msgs/s\n", "offered", (unsigned long long)s->o.rate);
	fprintf(out, "  %-26s %.0f msgs/s  (%.1f MB/s, %.0f messages in %.3f s)\n",
	    "throughput", rate, el > 0 ? k->bytes / el / 1e6 : 0, k->messages, el);
	/* the sink's histogram has 1 ms buckets: 0 means below 1 ms */
	fprintf(out, "  %-26s p50 %s%.0f  p90 %s%.0f  p99 %s%.0f  max %s%.0f ms%s\n",
	    "latency spool -> 250", k->p50 < 1 ? "<" : "", k->p50 < 1 ? 1 : k->p50,
	    k->p90 < 1 ? "<" : "", k->p90 < 1 ? 1 : k->p90,
	    k->p99 < 1 ? "<" : "", k->p99 < 1 ? 1 : k->p99,
	    k->max < 1 ? "<" : "", k->max < 1 ? 1 : k->max,
	    s->o.rate ? "" : "  (includes waiting in the pre-filled queue)");
	fprintf(out, "  %-26s %.3f s per 1000 msgs  (user %.2f s, sys %.2f s)\n",
	    "engine CPU", per1000, cpu_u, cpu_s);
	fprintf(out, "  %-26s %.1f MB\n", "engine peak RSS", (double)s->engine_ru.ru_maxrss / 1024);
	fprintf(out, "  %-26s %.2f s (%llu thread%s)\n", "sink CPU", sink_cpu,
	    (unsigned long long)s->o.sink_threads, s->o.sink_threads == 1 ? "" : "s");
	fprintf(out, "  %-26s %.0f connections: %.0f full, %.0f resumed (TLSv1.3 %.0f, TLSv1.2 %.0f)\n",
	    "handshakes", k->connections, k->connections - k->resumed, k->resumed,
	    k->tls13, k->tls12);
	fprintf(out, "  %-26s received %llu + deferred %llu + bounced %llu = %llu of %llu %s\n",
	    "recipients", (unsigned long long)received, (unsigned long long)s->deferred,
	    (unsigned long long)s->bounced,
	    (unsigned long long)(received + s->deferred + s->bounced),
	    (unsigned long long)s->o.n, add_up ? "(ok)" : "(DO NOT ADD UP)");
	fprintf(out, "  %-26s %.0f (sink %.0f, TLS failures %.0f, plaintext %.0f)\n", "errors",
	    errors, k->errors, k->tls_failures, k->plaintext);
	fprintf(out, "  %-26s %d%s\n", "engine exit", ecode, run_signalled ? " (interrupted)" :
	    s->timed_out ? " (timed out)" : "");
	if (s->first_problem[0])
		fprintf(out, "  first problem: %.400s\n", s->first_problem);
}

/* run_svg - throughput (per sink timeline interval, ~100 ms) and mean and
 * maximum latency of the messages accepted in each interval, over time */
static int
run_svg(run_state_t *s, const char *path)
{
	const double W = 860, H = 220, X0 = 70, Y1 = 40, Y2 = 320;
	double tmax = 0.1, rmax = 1, lmax = 1;
	size_t i;
	FILE *f = fopen(path, "we");

	if (f == NULL)
		return -1;
	for (i = 1; i < s->npts; i++) {
		double dt = s->pts[i].t - s->pts[i - 1].t;
		double r = dt > 0 ? (double)(s->pts[i].msgs - s->pts[i - 1].msgs) / dt : 0;

		if (s->pts[i].t - s->t_engine > tmax)
			tmax = s->pts[i].t - s->t_engine;
		if (r > rmax)
			rmax = r;
		if (s->pts[i].lat_max_ms > lmax)
			lmax = s->pts[i].lat_max_ms;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"600\" "
	    "font-family=\"sans-serif\" font-size=\"12\">\n"
	    "<rect width=\"960\" height=\"600\" fill=\"white\"/>\n"
	    "<text x=\"%g\" y=\"20\" font-size=\"14\">sealpost-bench run: %llu x %llu B, %s"
	    "</text>\n", X0, (unsigned long long)s->o.n, (unsigned long long)s->o.size,
	    s->o.rate ? "steady offered load" : "pre-filled spool");
	for (int panel = 0; panel < 2; panel++) {
		double y0 = panel ? Y2 : Y1, vmax = panel ? lmax : rmax;

		fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
		    "stroke=\"#888\"/>\n", X0, y0, W, H);
		fprintf(f, "<text x=\"%g\" y=\"%g\">%s</text>\n", X0, y0 - 6,
		    panel ? "latency spool to 250 per interval (ms): mean (blue), max (red)"
			  : "messages/s received by the sink (per ~100 ms interval)");
		fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.0f</text>\n",
		    X0 - 4, y0 + 10, vmax);
		fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">0</text>\n",
		    X0 - 4, y0 + H);
		fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.1f s</text>\n",
		    X0 + W, y0 + H + 16, tmax);
		fprintf(f, "<text x=\"%g\" y=\"%g\">0 s (engine start)</text>\n", X0, y0 + H + 16);
		for (int line = 0; line < (panel ? 2 : 1); line++) {
			fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
			    "points=\"", panel == 0 ? "#2a7" : line == 0 ? "#36c" : "#c33");
			for (i = 1; i < s->npts; i++) {
				const run_point_t *p = &s->pts[i], *q = &s->pts[i - 1];
				double t = p->t - s->t_engine, v, dt = p->t - q->t;

				if (t < 0)
					continue;
				if (panel == 0)
					v = dt > 0 ? (double)(p->msgs - q->msgs) / dt : 0;
				else if (p->lat_n == 0)
					continue;
				else
					v = line == 0 ? p->lat_sum_ms / (double)p->lat_n : p->lat_max_ms;
				fprintf(f, "%.1f,%.1f ", X0 + t / tmax * W, y0 + H - v / vmax * H);
			}
			fprintf(f, "\"/>\n");
		}
	}
	fprintf(f, "</svg>\n");
	return fclose(f) == 0 ? 0 : -1;
}

/* run_rm - nftw callback removing one entry */
static int
run_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* run_main_loop - follow the log and the timeline until every message
 * has an outcome (or the engine exits, or time runs out) */
static int
run_main_loop(run_state_t *s)
{
	char logpath[RUN_PATH], tlpath[RUN_PATH];
	double limit = (double)s->o.timeout, last_bar = 0;
	int engine_done = 0, fill_done = s->fill <= 0;

	if (run_path(logpath, s->work, "engine.log") == -1 ||
	    run_path(tlpath, s->work, "timeline") == -1)
		return -1;
	for (;;) {
		double now = bench_mono_s();
		pid_t r;

		run_tail_open(&s->log, logpath);
		run_tail_open(&s->tl, tlpath);
		run_tail_lines(s, &s->log, run_log_line);
		run_tail_lines(s, &s->tl, run_tl_line);
		if (now - last_bar >= 0.1) {
			run_progress(s, 0);
			last_bar = now;
		}
		if (!engine_done) {
			r = wait4(s->engine_pid, &s->engine_status, WNOHANG, &s->engine_ru);
			if (r == s->engine_pid)
				engine_done = 1;
		}
		if (!fill_done && waitpid(s->fill, &s->fill_status, WNOHANG) == s->fill) {
			fill_done = 1;
			s->fill = 0;
			if (!WIFEXITED(s->fill_status) || WEXITSTATUS(s->fill_status) != 0) {
				fprintf(stderr, "%ssealpost-bench run: fill failed (see %s/fill.log)\n",
				    s->progress ? "\n" : "", s->work);
				s->timed_out = 1;
				break;
			}
		}
		if (engine_done)
			break;
		if (fill_done && s->o.rate > 0 && s->sent + s->deferred + s->bounced >= s->o.n) {
			/* every recipient has an outcome: a graceful stop */
			run_stop(s->engine_pid, &s->engine_status, &s->engine_ru);
			engine_done = 1;
			break;
		}
		if (run_signalled || now - s->t_engine > limit) {
			if (!run_signalled)
				fprintf(stderr, "%ssealpost-bench run: timed out after %.0f s\n",
				    s->progress ? "\n" : "", limit);
			s->timed_out = 1;
			break;
		}
		usleep(20000);
	}
	if (s->fill > 0)
		run_stop(s->fill, &s->fill_status, NULL);
	if (!engine_done)
		run_stop(s->engine_pid, &s->engine_status, &s->engine_ru);
	s->t_end = bench_mono_s();
	run_tail_lines(s, &s->log, run_log_line);
	return 0;
}

/* bench_run_main - `sealpost-bench run` */
int
bench_run_main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 'S' },
		{ "domains", required_argument, NULL, 'k' },
		{ "rate", required_argument, NULL, 'R' },
		{ "engine", required_argument, NULL, 'E' },
		{ "workers", required_argument, NULL, 'w' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "sink-threads", required_argument, NULL, 'j' },
		{ "json", required_argument, NULL, 'J' },
		{ "svg", required_argument, NULL, 'G' },
		{ "keep", no_argument, NULL, 'K' },
		{ "tls-min", required_argument, NULL, 'V' },
		{ "msgs-per-conn", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static run_state_t st;
	run_state_t *s = &st;
	char port[32], path[RUN_PATH], spool[RUN_PATH], nbuf[32], sbuf[32], kbuf[32];
	char rbuf[32], jbuf[32], dbuf[32], tlpath[RUN_PATH], jpath[RUN_PATH];
	char certp[RUN_PATH], keyp[RUN_PATH];
	struct sigaction sa;
	run_sink_t k;
	int ch, rc = EX_OK, status = 0;
	ssize_t len;
	const char *tmp = getenv("TMPDIR");

	memset(s, 0, sizeof(*s));
	s->o = (run_opts_t){ .n = 10000, .size = 60000, .domains = 1, .sink_threads = 2,
	    .tls_min = "1.2" };
	s->log.fd = s->tl.fd = -1;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:h", lopts, NULL)) != -1) {
		const char *bad = NULL;

		switch (ch) {
		case 'n':
			if (bench_parse_u64(optarg, RUN_MAX_N, &s->o.n) == -1 || s->o.n == 0)
				bad = "-n";
			break;
		case 'S':
			if (bench_parse_u64(optarg, 48u * 1024 * 1024, &s->o.size) == -1)
				bad = "--size";
			break;
		case 'k':
			if (bench_parse_u64(optarg, 100000, &s->o.domains) == -1 ||
			    s->o.domains == 0)
				bad = "--domains";
			break;
		case 'R':
			if (bench_parse_u64(optarg, 1000000, &s->o.rate) == -1)
				bad = "--rate";
			break;
		case 'E': s->o.engine = optarg; break;
		case 'w':
			if (bench_parse_u64(optarg, 256, &s->o.workers) == -1 || s->o.workers == 0)
				bad = "--workers (1..256)";
			break;
		case 'c':
			if (bench_parse_u64(optarg, 10000, &s->o.concurrency) == -1 ||
			    s->o.concurrency == 0)
				bad = "--concurrency (1..10000)";
			break;
		case 'j':
			if (bench_parse_u64(optarg, 64, &s->o.sink_threads) == -1 ||
			    s->o.sink_threads == 0)
				bad = "--sink-threads (1..64)";
			break;
		case 'J': s->o.json = optarg; break;
		case 'G': s->o.svg = optarg; break;
		case 'K': s->o.keep = 1; break;
		case 'V':
			if (strcmp(optarg, "1.2") != 0 && strcmp(optarg, "1.3") != 0)
				bad = "--tls-min (1.2 or 1.3)";
			s->o.tls_min = optarg;
			break;
		case 'm':
			if (bench_parse_u64(optarg, 100000, &s->o.msgs_per_conn) == -1 ||
			    s->o.msgs_per_conn == 0)
				bad = "--msgs-per-conn (1..100000)";
			break;
		case 'T':
			if (bench_parse_u64(optarg, 86400, &s->o.timeout) == -1 || s->o.timeout == 0)
				bad = "--timeout (1..86400 s)";
			break;
		case 'h': run_usage(); return EX_OK;
		default: run_usage(); return EX_USAGE;
		}
		if (bad != NULL) {
			fprintf(stderr, "run: invalid %s \"%s\"\n", bad, optarg);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "run: unexpected operand \"%s\"\n", argv[optind]);
		return EX_USAGE;
	}
	if (s->o.timeout == 0)
		s->o.timeout = 60 + s->o.n / 100 + (s->o.rate ? s->o.n / s->o.rate : 0);

	len = readlink("/proc/self/exe", s->self, sizeof(s->self) - 1);
	if (len <= 0 || (size_t)len >= sizeof(s->self) - 1) {
		fprintf(stderr, "run: cannot find this program (/proc/self/exe)\n");
		return EX_OSERR;
	}
	s->self[len] = '\0';
	if (s->o.engine != NULL) {
		if (strlen(s->o.engine) >= sizeof(s->engine)) {
			fprintf(stderr, "run: --engine path too long\n");
			return EX_USAGE;
		}
		memcpy(s->engine, s->o.engine, strlen(s->o.engine) + 1);
	} else {
		memcpy(path, s->self, strlen(s->self) + 1);
		if (run_path(s->engine, dirname(path), "sealpost") == -1) {
			fprintf(stderr, "run: path too long\n");
			return EX_OSERR;
		}
	}
	if (access(s->engine, X_OK) != 0) {
		fprintf(stderr, "run: the engine %s is not executable: %s (--engine PATH)\n",
		    s->engine, strerror(errno));
		return EX_UNAVAILABLE;
	}
	if (snprintf(s->work, sizeof(s->work), "%s/sealpost-bench.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp") >= (int)sizeof(s->work) || mkdtemp(s->work) == NULL) {
		fprintf(stderr, "run: cannot make a work folder: %s\n", strerror(errno));
		return EX_CANTCREAT;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = run_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	s->progress = isatty(2);

	if (run_certs(s) == -1) {
		rc = EX_SOFTWARE;
		goto out;
	}

	/* the sink: STARTTLS required, hashing, a timeline for progress and chart */
	run_path(tlpath, s->work, "timeline");
	run_path(jpath, s->work, "sink.json");
	run_path(path, s->work, "port");
	run_path(certp, s->work, "certs/server.pem");
	run_path(keyp, s->work, "certs/server.key");
	snprintf(jbuf, sizeof(jbuf), "%llu", (unsigned long long)s->o.sink_threads);
	snprintf(dbuf, sizeof(dbuf), "%llu", (unsigned long long)s->o.timeout + 60);
	{
		char *av[] = { s->self, (char *)"sink", (char *)"--listen", (char *)"127.0.0.1:0",
		    (char *)"--port-file", path, (char *)"--cert", certp, (char *)"--key", keyp,
		    (char *)"--min-tls", (char *)s->o.tls_min, (char *)"--hash", (char *)"-j", jbuf,
		    (char *)"--json", jpath, (char *)"--timeline", tlpath, (char *)"--duration",
		    dbuf, (char *)"--quiet", NULL };

		s->sink = run_spawn(s, av, "sink.log", 0);
	}
	if (s->sink == -1 || run_wait_file(path, 10, s->sink) == -1) {
		fprintf(stderr, "run: the sink did not start (see %s/sink.log)\n", s->work);
		s->o.keep = 1;
		rc = EX_UNAVAILABLE;
		goto out;
	}
	{
		FILE *f = fopen(path, "re");

		if (f == NULL || fgets(port, sizeof(port), f) == NULL) {
			if (f)
				fclose(f);
			rc = EX_UNAVAILABLE;
			goto out;
		}
		fclose(f);
		port[strcspn(port, "\n")] = '\0';
	}
	setenv("RUN_SINK_PORT", port, 1);

	run_path(spool, s->work, "spool");
	snprintf(nbuf, sizeof(nbuf), "%llu", (unsigned long long)s->o.n);
	snprintf(sbuf, sizeof(sbuf), "%llu", (unsigned long long)s->o.size);
	snprintf(kbuf, sizeof(kbuf), "%llu", (unsigned long long)s->o.domains);
	snprintf(rbuf, sizeof(rbuf), "%llu", (unsigned long long)s->o.rate);
	{
		char *av[] = { s->self, (char *)"fill", (char *)"--spool", spool, (char *)"-n",
		    nbuf, (char *)"--size", sbuf, (char *)"--domains", kbuf, (char *)"--quiet",
		    s->o.rate ? (char *)"--rate" : NULL, rbuf, NULL };
		char *eng[] = { s->engine, (char *)"run", s->o.rate ? NULL : (char *)"--drain",
		    NULL };

		if (s->o.rate == 0) {
			if (s->progress)
				fprintf(stderr, "filling %llu messages...", (unsigned long long)s->o.n);
			s->fill = run_spawn(s, av, "fill.log", 0);
			if (s->fill == -1 || run_wait(s->fill, (double)s->o.timeout, &status,
			    NULL) == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				fprintf(stderr, "\nrun: fill failed (see %s/fill.log)\n", s->work);
				if (s->fill > 0)
					run_stop(s->fill, &status, NULL);
				s->fill = 0;
				s->o.keep = 1;
				rc = EX_SOFTWARE;
				goto out;
			}
			s->fill = 0;
			if (s->progress)
				fprintf(stderr, "\r");
		}
		s->t_engine = bench_mono_s();
		s->engine_pid = run_spawn(s, eng, "engine.log", 1);
		if (s->engine_pid == -1) {
			rc = EX_OSERR;
			goto out;
		}
		if (s->o.rate > 0) {
			/* offer the load once the engine says it runs, so the
			 * first messages do not wait for its start */
			double end = bench_mono_s() + 10;

			run_path(path, s->work, "engine.log");
			while (!s->started && bench_mono_s() < end && !run_signalled &&
			    waitpid(s->engine_pid, &status, WNOHANG) == 0) {
				run_tail_open(&s->log, path);
				run_tail_lines(s, &s->log, run_log_line);
				usleep(10000);
			}
			s->fill = run_spawn(s, av, "fill.log", 0);
		}
	}
	run_main_loop(s);

	/* the sink writes its summary on SIGTERM */
	run_stop(s->sink, &status, &s->sink_ru);
	s->sink = 0;
	run_tail_lines(s, &s->tl, run_tl_line);
	run_progress(s, 1);
	if (run_read_sink(jpath, &k) == -1) {
		fprintf(stderr, "run: no summary from the sink (see %s/sink.log)\n", s->work);
		s->o.keep = 1;
		rc = EX_SOFTWARE;
		goto out;
	}
	run_report(s, &k, stdout, 0);
	fflush(stdout);
	if (s->o.json != NULL) {
		FILE *f = fopen(s->o.json, "we");

		if (f == NULL) {
			fprintf(stderr, "run: --json %s: %s\n", s->o.json, strerror(errno));
			rc = EX_CANTCREAT;
		} else {
			run_report(s, &k, f, 1);
			if (fclose(f) != 0)
				rc = EX_IOERR;
		}
	}
	if (s->o.svg != NULL && run_svg(s, s->o.svg) == -1) {
		fprintf(stderr, "run: --svg %s: %s\n", s->o.svg, strerror(errno));
		rc = EX_CANTCREAT;
	}
	if ((uint64_t)k.recipients + s->deferred + s->bounced != s->o.n || s->timed_out ||
	    run_signalled) {
		rc = EX_SOFTWARE;
		s->o.keep = 1;
	} else if (s->o.rate == 0 && (!WIFEXITED(s->engine_status) ||
	    WEXITSTATUS(s->engine_status) != 0)) {
		rc = EX_SOFTWARE;
		s->o.keep = 1;
	}
out:
	if (s->fill > 0)
		run_stop(s->fill, &status, NULL);
	if (s->engine_pid > 0 && waitpid(s->engine_pid, &status, WNOHANG) == 0)
		run_stop(s->engine_pid, &status, NULL);
	if (s->sink > 0)
		run_stop(s->sink, &status, NULL);
	if (s->log.fd != -1)
		close(s->log.fd);
	if (s->tl.fd != -1)
		close(s->tl.fd);
	free(s->pts);
	if (s->o.keep)
		fprintf(stderr, "run: work folder kept: %s\n", s->work);
	else
		nftw(s->work, run_rm, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
