/*
 * bench/sink.c - `sealpost-bench sink`: an SMTP receiver on io_uring, with
 * STARTTLS (tls/ server side), fault injection, and a store or hash of
 * every accepted message.  The engine's integration tests and the
 * benchmark deliver into it.
 *
 *	bench_sink_main(argc, argv)
 *
 * Threads: -j N workers, each with its own ring and its own listening
 * socket per --listen address (SO_REUSEPORT, the kernel spreads the
 * connections).  The main thread only waits for signals, prints the
 * per-second line, watches --duration and --max-messages, and writes the
 * JSON summary at the end.  Every run is bounded: without --duration and
 * --max-messages the sink stops on SIGTERM/SIGINT only, so tests always
 * pass --duration.
 *
 * A connection has at most one recv, one send and one timer in flight
 * (user_data points at a sink_op_t inside the connection); it is freed only
 * when it is closing and nothing is in flight any more.  Input is processed
 * in order; all replies produced by one batch of input go out in one send
 * (after --latency-ms when set).  Bytes the client sends after STARTTLS in
 * the same packet are discarded (RFC 3207 command injection).
 *
 * DATA is streamed through a small state machine that finds CRLF.CRLF and
 * removes the stuffing dot from lines that start with one; the un-stuffed
 * payload is hashed (--hash), kept for --store (written as DIR/N.eml and
 * DIR/N.env through a temporary name and rename), or only counted.
 *
 * Errors: setup problems exit with a sysexits.h code and a message on
 * stderr; anything a client does ends, at worst, that client's connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "bench/bench.h"
#include "common/status.h"
#include "tls/tls.h"

#define SINK_IBUF	(16 * 1024)		/* one recv; a TLS record is at most 16 KB */
#define SINK_MAX_LINE	2048			/* command line, CRLF included */
#define SINK_RBUF	(SINK_IBUF + SINK_MAX_LINE + 64)
#define SINK_MAX_OUT	(256 * 1024)		/* queued output before we stop reading */
#define SINK_MAX_RCPTS	1000
#define SINK_MAX_ADDR	512
#define SINK_MAX_ERRORS	20			/* bad commands before 421 */
#define SINK_MAX_LISTEN	16
#define SINK_MAX_WORKERS 64
#define SINK_MAX_LIST	256			/* --tempfail-rcpt / --permfail-rcpt */
#define SINK_RING	4096
#define SINK_HOSTNAME	"sink.sealpost.test"

enum sink_op_kind { OP_NONE = 0, OP_ACCEPT, OP_RECV, OP_SEND, OP_TIMER };

typedef struct sink_op {
	enum sink_op_kind kind;
	void	*owner;		/* sink_listener_t or sink_conn_t */
} sink_op_t;

typedef struct sink_buf {
	char	*p;
	size_t	len, cap;
} sink_buf_t;

/* Connection modes; legal transitions:
 * PLAIN -> STARTTLS_PENDING (STARTTLS accepted, the 220 not yet queued)
 * STARTTLS_PENDING -> HANDSHAKE (220 queued in plaintext, tls conn made)
 * HANDSHAKE -> TLS (handshake done) */
enum sink_mode { MODE_PLAIN, MODE_STARTTLS_PENDING, MODE_HANDSHAKE, MODE_TLS };

/* DATA scanner states */
enum sink_dstate { DS_BOL, DS_MID, DS_DOT, DS_DOTCR };

typedef struct sink_worker sink_worker_t;

typedef struct sink_conn {
	sink_worker_t *w;
	struct sink_conn *prev, *next;
	int	fd;
	uint64_t id;
	int	inflight;
	int	closing, quit, eof;
	int	recv_busy, send_busy, timer_busy;
	sink_op_t op_recv, op_send, op_timer;
	struct __kernel_timespec ts;
	enum sink_mode mode;
	tls_conn_t *tls;
	const char *tls_version;
	sink_buf_t reply;	/* SMTP replies not yet released (plaintext) */
	sink_buf_t pend;	/* wire bytes waiting for the next send */
	sink_buf_t wire;	/* wire bytes of the send in flight */
	size_t	wire_off;
	size_t	roff, rlen;
	int	skipline;
	unsigned nerrors;
	/* transaction */
	int	helo, has_mail, in_data;
	size_t	nrcpt;
	char	from[SINK_MAX_ADDR + 1];
	sink_buf_t rcpts;	/* "rcpt=ADDR\n" lines, for --store */
	enum sink_dstate ds;
	uint64_t dsize;
	int	oversize, drop;
	int	in_hdr;		/* still in the header section of the payload */
	size_t	hlen;
	char	hline[128];	/* the current header line, truncated */
	int64_t	submitted_us;	/* X-Sealpost-Bench-Submitted:, 0 if absent */
	uint64_t hash;		/* payload hash state (sink_whash) */
	uint64_t htail;		/* bytes not yet making a whole 8-byte word */
	unsigned htail_n;
	sink_buf_t msg;		/* the un-stuffed message, for --store */
	char	ibuf[SINK_IBUF];
	char	rbuf[SINK_RBUF];
} sink_conn_t;

typedef struct sink_listener {
	int	fd;
	sink_op_t op;
	sink_worker_t *w;
	int	paused;		/* out of fds: re-armed by the loop, not at once */
} sink_listener_t;

struct sink_worker {
	int	idx;
	struct io_uring ring;
	sink_listener_t ls[SINK_MAX_LISTEN];
	size_t	nls;
	sink_conn_t *conns;
	uint64_t rnd;
	pthread_t th;
};

typedef struct sink_opts {
	char	*listen[SINK_MAX_LISTEN];
	size_t	nlisten;
	const char *port_file, *cert, *key, *client_ca, *store, *json, *timeline;
	int	no_starttls, allow_plaintext, hash, quiet, min_tls;
	uint64_t latency_ms, rcpt_tempfail, rcpt_permfail, conn_tempfail, drop_mid_data;
	uint64_t max_size, max_messages, duration, workers, seed;
	int	seeded;
	const char *tempfail_rcpt[SINK_MAX_LIST], *permfail_rcpt[SINK_MAX_LIST];
	size_t	ntempfail_rcpt, npermfail_rcpt;
} sink_opts_t;

/* Counters shared by all workers (relaxed atomics: only totals matter) */
typedef struct sink_stats {
	uint64_t messages, recipients, bytes, connections, tls13, tls12, tls_other;
	uint64_t resumed, plaintext, errors, tls_failures, tempfails, permfails;
	uint64_t drops, oversize, digest, seq;
	double	first_conn, last_msg;	/* guarded by sink_time_lock */
} sink_stats_t;

static sink_opts_t sink_o;
static sink_stats_t sink_st;
static tls_ctx_t *sink_tls;
static volatile int sink_stop;
static pthread_mutex_t sink_time_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t sink_sq_lost;

/* Delivery latency (now - X-Sealpost-Bench-Submitted) histogram: 1 ms
 * buckets below 10 s, 100 ms buckets up to 1000 s, then one overflow
 * bucket.  Fixed size whatever the message count. */
#define LAT_FINE	10000
#define LAT_BUCKETS	(LAT_FINE + 9900 + 1)
static uint64_t sink_lat[LAT_BUCKETS];
static uint64_t sink_lat_max;
/* the same, per --timeline interval (taken and zeroed by the main loop) */
static uint64_t sink_iv_n, sink_iv_sum_us, sink_iv_max_us;

static void sink_usage(void);
static void sink_add(uint64_t *ctr, uint64_t n);
static uint64_t sink_get(const uint64_t *ctr);
static void buf_put(sink_buf_t *b, const void *p, size_t n);
static void buf_free(sink_buf_t *b);
static uint64_t sink_rand(uint64_t *s);
static uint64_t sink_fnv(uint64_t h, const void *p, size_t n);
static uint64_t sink_wmix(uint64_t h, uint64_t w);
static void sink_whash(sink_conn_t *c, const char *p, size_t n);
static uint64_t sink_whash_final(const sink_conn_t *c);
static int sink_pct(sink_worker_t *w, uint64_t pct);
static struct io_uring_sqe *sink_sqe(sink_worker_t *w);
static void sink_accept(sink_listener_t *l);
static void conn_new(sink_worker_t *w, int fd);
static void conn_reply(sink_conn_t *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void conn_close(sink_conn_t *c);
static void conn_maybe_free(sink_conn_t *c);
static void conn_pump(sink_conn_t *c);
static void conn_flush(sink_conn_t *c);
static void conn_release(sink_conn_t *c);
static void conn_send(sink_conn_t *c);
static void conn_post_recv(sink_conn_t *c);
static int conn_backpressure(const sink_conn_t *c);
static void conn_tls_drain(sink_conn_t *c);
static int conn_process(sink_conn_t *c);
static void conn_command(sink_conn_t *c, char *line, size_t len);
static void conn_reset_tx(sink_conn_t *c);
static size_t conn_data(sink_conn_t *c, const char *p, size_t n);
static void conn_emit(sink_conn_t *c, const char *p, size_t n);
static void conn_data_end(sink_conn_t *c);
static int sink_store(sink_conn_t *c, uint64_t n);
static int sink_addr(const char *arg, char *out, size_t outlen, const char **rest);
static void sink_cqe(sink_worker_t *w, struct io_uring_cqe *cqe);
static void *sink_worker_run(void *arg);
static int sink_listen(const char *spec, int port_override, int *port_out);
static int sink_write_file(const char *path, const char *text);
static void sink_summary(double elapsed, char *out, size_t outlen);
static void conn_header_scan(sink_conn_t *c, const char *p, size_t n);
static void sink_lat_record(int64_t us);
static void sink_timeline_line(FILE *f);
static uint64_t sink_lat_bucket_ms(size_t b);
static uint64_t sink_lat_pct(uint64_t count, double pct);

/* sink_usage - the options */
static void
sink_usage(void)
{
	fprintf(stderr,
	    "usage: sealpost-bench sink [options]\n"
	    "  --listen ADDR:PORT     listen there (repeatable; port 0 = any) [127.0.0.1:2525]\n"
	    "  --port-file FILE       write the (first) chosen port there\n"
	    "  -j, --threads N        worker threads, each with its own ring [1]\n"
	    "  --cert FILE --key FILE offer STARTTLS with this certificate\n"
	    "  --client-ca FILE       require a client certificate signed by FILE\n"
	    "  --min-tls 1.2|1.3      lowest TLS version accepted [1.2]\n"
	    "  --no-starttls          do not offer STARTTLS; accept plaintext mail\n"
	    "  --allow-plaintext      accept mail without STARTTLS\n"
	    "  --latency-ms N         delay every reply by N ms\n"
	    "  --rcpt-tempfail PCT    share of RCPTs answered 451 4.3.0\n"
	    "  --rcpt-permfail PCT    share of RCPTs answered 550 5.1.1\n"
	    "                         (by a hash of the address; random with --seed)\n"
	    "  --tempfail-rcpt ADDR   answer 451 4.3.0 to this recipient (repeatable)\n"
	    "  --permfail-rcpt ADDR   answer 550 5.1.1 to this recipient (repeatable)\n"
	    "  --conn-tempfail PCT    greet that share of connections with 421\n"
	    "  --drop-mid-data PCT    close that share of connections inside DATA\n"
	    "  --max-size BYTES       announce SIZE, 552 5.3.4 above [52428800]\n"
	    "  --store DIR            keep each message: DIR/N.eml (payload) and DIR/N.env\n"
	    "  --hash                 hash each message (64-bit, word-wise); digest in the summary\n"
	    "  --json FILE            summary written there on exit\n"
	    "  --timeline FILE        every 100 ms a line: MONO_S MESSAGES LAT_N LAT_SUM_MS LAT_MAX_MS\n"
	    "  --max-messages N       stop after N accepted messages\n"
	    "  --duration SEC         stop after SEC seconds\n"
	    "  --seed S               seed of the random fault draws\n"
	    "  --quiet                no per-second line\n");
}

/* sink_add - add to a shared counter */
static void
sink_add(uint64_t *ctr, uint64_t n)
{
	__atomic_add_fetch(ctr, n, __ATOMIC_RELAXED);
}

/* sink_get - read a shared counter */
static uint64_t
sink_get(const uint64_t *ctr)
{
	return __atomic_load_n(ctr, __ATOMIC_RELAXED);
}

/* buf_put - append, growing the buffer; aborts when memory runs out (a
 * test tool: failing loudly beats a half-received message) */
static void
buf_put(sink_buf_t *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL) {
			fprintf(stderr, "sink: out of memory\n");
			abort();
		}
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* buf_free - release a buffer */
static void
buf_free(sink_buf_t *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* sink_rand - xorshift64*, one state per worker */
static uint64_t
sink_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* sink_wmix - fold one 64-bit word into the payload hash */
static uint64_t
sink_wmix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
	return (h << 31) | (h >> 33);
}

/* sink_whash - feed payload bytes to the per-message hash, a word at a
 * time (FNV-1a's multiply per byte was half of the sink's CPU at 80 KB
 * messages); bytes short of a word wait in htail, so how the payload is
 * cut into reads does not change the result */
static void
sink_whash(sink_conn_t *c, const char *p, size_t n)
{
	uint64_t w;

	while (n > 0 && c->htail_n > 0) {
		c->htail |= (uint64_t)(unsigned char)*p++ << (8 * c->htail_n);
		n--;
		if (++c->htail_n == 8) {
			c->hash = sink_wmix(c->hash, c->htail);
			c->htail = 0;
			c->htail_n = 0;
		}
	}
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		c->hash = sink_wmix(c->hash, w);
	}
	for (; n > 0; n--) {
		c->htail |= (uint64_t)(unsigned char)*p++ << (8 * c->htail_n);
		c->htail_n++;
	}
}

/* sink_whash_final - the message's hash: the partial word, the length,
 * and a final avalanche (murmur3's fmix64) */
static uint64_t
sink_whash_final(const sink_conn_t *c)
{
	uint64_t h = sink_wmix(c->hash, c->htail);

	h = sink_wmix(h, c->dsize);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb3f91a1c1a53ULL;
	h ^= h >> 33;
	return h;
}

/* sink_fnv - FNV-1a 64 over bytes: chunking does not change the result */
static uint64_t
sink_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* sink_pct - 1 with probability pct/100 (the worker's random stream) */
static int
sink_pct(sink_worker_t *w, uint64_t pct)
{
	if (pct == 0)
		return 0;
	return sink_rand(&w->rnd) % 100 < pct;
}

/* sink_sqe - a free SQE, submitting to make room when the queue is full */
static struct io_uring_sqe *
sink_sqe(sink_worker_t *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (sqe == NULL) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	if (sqe == NULL) {
		/* the kernel did not take the queued SQEs: our bug or a broken ring */
		fprintf(stderr, "sink: io_uring submission queue stuck\n");
		abort();
	}
	return sqe;
}

/* sink_accept - arm one accept on a listener */
static void
sink_accept(sink_listener_t *l)
{
	struct io_uring_sqe *sqe = sink_sqe(l->w);

	io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &l->op);
}

/* conn_new - a fresh connection: greet (or refuse) and start reading */
static void
conn_new(sink_worker_t *w, int fd)
{
	sink_conn_t *c = calloc(1, sizeof(*c));
	int one = 1;
	double now = bench_mono_s();

	if (c == NULL) {
		close(fd);
		sink_add(&sink_st.errors, 1);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->w = w;
	c->fd = fd;
	c->id = __atomic_add_fetch(&sink_st.connections, 1, __ATOMIC_RELAXED);
	c->op_recv = (sink_op_t){ OP_RECV, c };
	c->op_send = (sink_op_t){ OP_SEND, c };
	c->op_timer = (sink_op_t){ OP_TIMER, c };
	c->ds = DS_BOL;
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	pthread_mutex_lock(&sink_time_lock);
	if (sink_st.first_conn == 0)
		sink_st.first_conn = now;
	pthread_mutex_unlock(&sink_time_lock);

	if (sink_pct(w, sink_o.conn_tempfail)) {
		sink_add(&sink_st.tempfails, 1);
		conn_reply(c, "421 4.3.2 " SINK_HOSTNAME " Service not available, closing "
		    "transmission channel (sink --conn-tempfail)");
		c->quit = 1;
	} else {
		conn_reply(c, "220 " SINK_HOSTNAME " ESMTP sealpost-bench sink");
	}
	conn_pump(c);
	conn_maybe_free(c);
}

/* conn_reply - queue one reply line (CRLF added) */
static void
conn_reply(sink_conn_t *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	buf_put(&c->reply, line, (size_t)n);
}

/* conn_close - stop all I/O now; the memory goes (conn_maybe_free) when
 * nothing is in flight */
static void
conn_close(sink_conn_t *c)
{
	struct io_uring_sqe *sqe;

	if (c->closing)
		return;
	c->closing = 1;
	/* shutdown wakes a pending recv with 0; the cancel covers the rest */
	shutdown(c->fd, SHUT_RDWR);
	if (c->recv_busy) {
		sqe = sink_sqe(c->w);
		io_uring_prep_cancel(sqe, &c->op_recv, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	if (c->timer_busy) {
		sqe = sink_sqe(c->w);
		io_uring_prep_cancel(sqe, &c->op_timer, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	/* freed by the caller at the top (sink_cqe, conn_new), never here:
	 * the functions up the stack still hold c */
}

/* conn_maybe_free - free a closing connection once no operation refers to it */
static void
conn_maybe_free(sink_conn_t *c)
{
	sink_worker_t *w = c->w;

	if (!c->closing || c->inflight > 0)
		return;
	close(c->fd);
	if (c->tls != NULL)
		tls_conn_free(c->tls);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	buf_free(&c->reply);
	buf_free(&c->pend);
	buf_free(&c->wire);
	buf_free(&c->rcpts);
	buf_free(&c->msg);
	free(c);
}

/* conn_backpressure - 1 when the client is not reading its replies */
static int
conn_backpressure(const sink_conn_t *c)
{
	return c->reply.len + c->pend.len > SINK_MAX_OUT;
}

/* conn_tls_drain - move ciphertext produced by wolfSSL to the wire queue */
static void
conn_tls_drain(sink_conn_t *c)
{
	const void *p;
	size_t n;

	while (c->tls != NULL && (n = tls_conn_output(c->tls, &p)) > 0) {
		buf_put(&c->pend, p, n);
		tls_conn_output_done(c->tls, n);
	}
}

/* conn_pump - run the handshake, decrypt, process input, then flush and
 * re-arm the recv; called after every completion on the connection */
static void
conn_pump(sink_conn_t *c)
{
	for (;;) {
		int progress = 0;

		if (c->closing)
			return;
		if (c->mode == MODE_HANDSHAKE) {
			int r = tls_conn_handshake(c->tls);
			tls_info_t info;

			conn_tls_drain(c);
			if (r == SP_ERROR) {
				sink_add(&sink_st.errors, 1);
				sink_add(&sink_st.tls_failures, 1);
				fprintf(stderr, "sink: conn=%llu TLS handshake failed: %s\n",
				    (unsigned long long)c->id, tls_conn_error(c->tls));
				c->quit = 1;	/* send the alert, then close */
				break;
			}
			if (r != SP_OK)
				break;
			c->mode = MODE_TLS;
			memset(&info, 0, sizeof(info));
			tls_conn_info(c->tls, &info);
			c->tls_version = info.version ? info.version : "TLS";
			if (strcmp(c->tls_version, "TLSv1.3") == 0)
				sink_add(&sink_st.tls13, 1);
			else if (strcmp(c->tls_version, "TLSv1.2") == 0)
				sink_add(&sink_st.tls12, 1);
			else
				sink_add(&sink_st.tls_other, 1);
			if (info.resumed)
				sink_add(&sink_st.resumed, 1);
			progress = 1;
		}
		if (c->mode == MODE_TLS && !c->quit && !conn_backpressure(c)) {
			size_t room, got = 0;
			int r;

			if (c->roff > 0) {
				memmove(c->rbuf, c->rbuf + c->roff, c->rlen);
				c->roff = 0;
			}
			room = sizeof(c->rbuf) - c->rlen;
			if (room > 0) {
				r = tls_conn_read(c->tls, c->rbuf + c->rlen, room, &got);
				if (r == SP_OK && got > 0) {
					c->rlen += got;
					progress = 1;
				} else if (r == SP_DONE) {
					c->eof = 1;
				} else if (r == SP_ERROR) {
					sink_add(&sink_st.errors, 1);
					fprintf(stderr, "sink: conn=%llu TLS read: %s\n",
					    (unsigned long long)c->id,
					    tls_conn_error(c->tls));
					conn_close(c);
					return;
				}
			}
			conn_tls_drain(c);
		}
		if ((c->mode == MODE_PLAIN || c->mode == MODE_TLS) && !c->quit &&
		    !conn_backpressure(c) && conn_process(c))
			progress = 1;
		if (c->closing)
			return;
		if (!progress)
			break;
	}
	conn_flush(c);
	if (c->closing)
		return;
	if (c->eof && !c->quit) {
		/* the client went away: a half-sent message is not counted */
		if (c->in_data)
			sink_add(&sink_st.errors, 1);
		conn_close(c);
		return;
	}
	if (c->quit && !c->send_busy && c->pend.len == 0 && c->reply.len == 0 &&
	    !c->timer_busy) {
		conn_close(c);
		return;
	}
	conn_post_recv(c);
}

/* conn_flush - release queued replies (now, or when the latency timer
 * fires) and start a send */
static void
conn_flush(sink_conn_t *c)
{
	if (c->reply.len > 0) {
		if (sink_o.latency_ms > 0) {
			if (!c->timer_busy) {
				struct io_uring_sqe *sqe = sink_sqe(c->w);

				c->ts.tv_sec = (long long)(sink_o.latency_ms / 1000);
				c->ts.tv_nsec = (long long)(sink_o.latency_ms % 1000) * 1000000;
				io_uring_prep_timeout(sqe, &c->ts, 0, 0);
				io_uring_sqe_set_data(sqe, &c->op_timer);
				c->timer_busy = 1;
				c->inflight++;
			}
		} else {
			conn_release(c);
		}
	}
	conn_send(c);
}

/* conn_release - queued replies go to the wire queue (encrypted in TLS);
 * after the STARTTLS 220 the connection switches to the handshake */
static void
conn_release(sink_conn_t *c)
{
	if (c->mode == MODE_TLS) {
		size_t off = 0;

		while (off < c->reply.len) {
			size_t put = 0;

			if (tls_conn_write(c->tls, c->reply.p + off, c->reply.len - off,
			    &put) == SP_ERROR) {
				sink_add(&sink_st.errors, 1);
				c->reply.len = 0;
				conn_close(c);
				return;
			}
			conn_tls_drain(c);
			if (put == 0) {
				sink_add(&sink_st.errors, 1);
				c->reply.len = 0;
				conn_close(c);
				return;
			}
			off += put;
		}
	} else {
		buf_put(&c->pend, c->reply.p, c->reply.len);
	}
	c->reply.len = 0;
	if (c->mode == MODE_STARTTLS_PENDING) {
		c->tls = tls_conn_new_server(sink_tls);
		if (c->tls == NULL) {
			sink_add(&sink_st.errors, 1);
			c->quit = 1;
			return;
		}
		c->mode = MODE_HANDSHAKE;
		/* RFC 3207: nothing sent before the handshake counts */
		c->roff = c->rlen = 0;
		c->skipline = 0;
		c->helo = 0;
		conn_reset_tx(c);
	}
}

/* conn_send - start a send when none is in flight; at most one per socket */
static void
conn_send(sink_conn_t *c)
{
	struct io_uring_sqe *sqe;
	sink_buf_t t;

	if (c->send_busy || c->closing)
		return;
	if (c->wire_off >= c->wire.len) {
		if (c->pend.len == 0)
			return;
		t = c->wire;
		c->wire = c->pend;
		c->pend = t;
		c->pend.len = 0;
		c->wire_off = 0;
	}
	sqe = sink_sqe(c->w);
	io_uring_prep_send(sqe, c->fd, c->wire.p + c->wire_off, c->wire.len - c->wire_off,
	    MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &c->op_send);
	c->send_busy = 1;
	c->inflight++;
}

/* conn_post_recv - arm a recv when there is room for what it brings */
static void
conn_post_recv(sink_conn_t *c)
{
	struct io_uring_sqe *sqe;

	if (c->recv_busy || c->closing || c->eof || c->quit ||
	    c->mode == MODE_STARTTLS_PENDING || conn_backpressure(c))
		return;
	if (c->mode == MODE_PLAIN && sizeof(c->rbuf) - c->rlen < sizeof(c->ibuf))
		return;
	sqe = sink_sqe(c->w);
	io_uring_prep_recv(sqe, c->fd, c->ibuf, sizeof(c->ibuf), 0);
	io_uring_sqe_set_data(sqe, &c->op_recv);
	c->recv_busy = 1;
	c->inflight++;
}

/* conn_process - handle complete commands and DATA bytes in rbuf; 1 when
 * something was consumed */
static int
conn_process(sink_conn_t *c)
{
	int did = 0;

	while (c->rlen > 0 && !c->closing && !c->quit && c->mode != MODE_STARTTLS_PENDING &&
	    c->mode != MODE_HANDSHAKE && !conn_backpressure(c)) {
		char *p = c->rbuf + c->roff, *lf;
		size_t len;

		if (c->in_data) {
			size_t used = conn_data(c, p, c->rlen);

			c->roff += used;
			c->rlen -= used;
			did = 1;
			continue;
		}
		lf = memchr(p, '\n', c->rlen);
		if (lf == NULL) {
			if (c->rlen >= SINK_MAX_LINE) {
				if (!c->skipline) {
					conn_reply(c, "500 5.5.2 Line too long");
					c->nerrors++;
				}
				c->skipline = 1;
				c->roff = c->rlen = 0;
				did = 1;
			}
			break;
		}
		len = (size_t)(lf - p) + 1;
		c->roff += len;
		c->rlen -= len;
		did = 1;
		if (c->skipline) {
			/* the tail of a line already refused */
			c->skipline = 0;
			continue;
		}
		if (len > SINK_MAX_LINE) {
			conn_reply(c, "500 5.5.2 Line too long");
			c->nerrors++;
			continue;
		}
		len--;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		p[len] = '\0';
		conn_command(c, p, len);
		if (c->nerrors >= SINK_MAX_ERRORS && !c->quit) {
			conn_reply(c, "421 4.7.0 " SINK_HOSTNAME " Too many errors, closing");
			c->quit = 1;
		}
	}
	if (c->rlen == 0)
		c->roff = 0;
	return did;
}

/* conn_reset_tx - forget the current transaction */
static void
conn_reset_tx(sink_conn_t *c)
{
	c->has_mail = 0;
	c->in_data = 0;
	c->nrcpt = 0;
	c->from[0] = '\0';
	c->rcpts.len = 0;
	c->msg.len = 0;
	c->dsize = 0;
	c->oversize = 0;
	c->drop = 0;
}

/* sink_addr - the address between < and > at the start of arg (after
 * optional spaces); rest points after '>'.  -1 when malformed. */
static int
sink_addr(const char *arg, char *out, size_t outlen, const char **rest)
{
	const char *gt;
	size_t n, i;

	while (*arg == ' ')
		arg++;
	if (*arg != '<')
		return -1;
	arg++;
	gt = strchr(arg, '>');
	if (gt == NULL)
		return -1;
	n = (size_t)(gt - arg);
	if (n >= outlen || n > SINK_MAX_ADDR)
		return -1;
	for (i = 0; i < n; i++)
		if ((unsigned char)arg[i] <= ' ' || arg[i] == '<' || arg[i] == 0x7f)
			return -1;
	memcpy(out, arg, n);
	out[n] = '\0';
	*rest = gt + 1;
	return 0;
}

/* conn_command - one command line (NUL-terminated, CRLF removed) */
static void
conn_command(sink_conn_t *c, char *line, size_t len)
{
	int offer = sink_tls != NULL && !sink_o.no_starttls;
	int need_tls = offer && !sink_o.allow_plaintext && c->mode != MODE_TLS;
	char addr[SINK_MAX_ADDR + 1];
	const char *rest;
	size_t i;

	if (memchr(line, '\0', len) != NULL) {
		conn_reply(c, "500 5.5.2 NUL in command");
		c->nerrors++;
		return;
	}
	if (strncasecmp(line, "EHLO", 4) == 0 && (line[4] == ' ' || line[4] == '\0')) {
		if (line[4] == '\0' || line[5] == '\0') {
			conn_reply(c, "501 5.5.4 EHLO needs a domain");
			c->nerrors++;
			return;
		}
		conn_reset_tx(c);
		c->helo = 1;
		conn_reply(c, "250-" SINK_HOSTNAME " Hello %.200s", line + 5);
		conn_reply(c, "250-PIPELINING");
		conn_reply(c, "250-SIZE %llu", (unsigned long long)sink_o.max_size);
		conn_reply(c, "250-8BITMIME");
		conn_reply(c, "250-ENHANCEDSTATUSCODES");
		if (offer && c->mode != MODE_TLS)
			conn_reply(c, "250-STARTTLS");
		conn_reply(c, "250 DSN");
	} else if (strncasecmp(line, "HELO", 4) == 0 && (line[4] == ' ' || line[4] == '\0')) {
		if (line[4] == '\0' || line[5] == '\0') {
			conn_reply(c, "501 5.5.4 HELO needs a domain");
			c->nerrors++;
			return;
		}
		conn_reset_tx(c);
		c->helo = 1;
		conn_reply(c, "250 " SINK_HOSTNAME);
	} else if (strcasecmp(line, "STARTTLS") == 0) {
		if (!offer) {
			conn_reply(c, "502 5.5.1 STARTTLS not offered");
			c->nerrors++;
		} else if (c->mode == MODE_TLS) {
			conn_reply(c, "503 5.5.1 TLS already active");
			c->nerrors++;
		} else {
			conn_reply(c, "220 2.0.0 Ready to start TLS");
			c->mode = MODE_STARTTLS_PENDING;
		}
	} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
		if (!c->helo) {
			conn_reply(c, "503 5.5.1 EHLO first");
			c->nerrors++;
		} else if (need_tls) {
			conn_reply(c, "530 5.7.0 Must issue a STARTTLS command first");
		} else if (c->has_mail) {
			conn_reply(c, "503 5.5.1 Nested MAIL command");
			c->nerrors++;
		} else if (sink_addr(line + 10, addr, sizeof(addr), &rest) == -1) {
			conn_reply(c, "501 5.1.7 Bad sender address syntax");
			c->nerrors++;
		} else {
			const char *sz = strcasestr(rest, "SIZE=");
			unsigned long long v = 0;

			if (sz != NULL && (sz == rest || sz[-1] == ' '))
				v = strtoull(sz + 5, NULL, 10);
			if (v > sink_o.max_size) {
				conn_reply(c, "552 5.3.4 Message size exceeds fixed maximum "
				    "message size");
				return;
			}
			conn_reset_tx(c);
			c->has_mail = 1;
			memcpy(c->from, addr, strlen(addr) + 1);
			conn_reply(c, "250 2.1.0 Ok");
		}
	} else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
		uint64_t h;
		int temp = 0, perm = 0;

		if (!c->has_mail) {
			conn_reply(c, "503 5.5.1 Need MAIL command");
			c->nerrors++;
			return;
		}
		if (sink_addr(line + 8, addr, sizeof(addr), &rest) == -1 || addr[0] == '\0') {
			conn_reply(c, "501 5.1.3 Bad recipient address syntax");
			c->nerrors++;
			return;
		}
		if (c->nrcpt >= SINK_MAX_RCPTS) {
			conn_reply(c, "452 4.5.3 Too many recipients");
			return;
		}
		for (i = 0; i < sink_o.ntempfail_rcpt; i++)
			if (strcasecmp(addr, sink_o.tempfail_rcpt[i]) == 0)
				temp = 1;
		for (i = 0; i < sink_o.npermfail_rcpt; i++)
			if (strcasecmp(addr, sink_o.permfail_rcpt[i]) == 0)
				perm = 1;
		if (!temp && !perm && (sink_o.rcpt_tempfail > 0 || sink_o.rcpt_permfail > 0)) {
			if (sink_o.seeded) {
				h = sink_rand(&c->w->rnd) % 100;
			} else {
				char low[SINK_MAX_ADDR + 1] = "";

				for (i = 0; addr[i] != '\0'; i++)
					low[i] = (char)((addr[i] >= 'A' && addr[i] <= 'Z') ?
					    addr[i] + 32 : addr[i]);
				h = sink_fnv(0xcbf29ce484222325ULL, low, i) % 100;
			}
			if (h < sink_o.rcpt_tempfail)
				temp = 1;
			else if (h < sink_o.rcpt_tempfail + sink_o.rcpt_permfail)
				perm = 1;
		}
		if (perm) {
			sink_add(&sink_st.permfails, 1);
			conn_reply(c, "550 5.1.1 <%s>: Recipient address rejected (sink)", addr);
		} else if (temp) {
			sink_add(&sink_st.tempfails, 1);
			conn_reply(c, "451 4.3.0 <%s>: Temporary failure (sink)", addr);
		} else {
			c->nrcpt++;
			buf_put(&c->rcpts, "rcpt=", 5);
			buf_put(&c->rcpts, addr, strlen(addr));
			buf_put(&c->rcpts, "\n", 1);
			conn_reply(c, "250 2.1.5 Ok");
		}
	} else if (strcasecmp(line, "DATA") == 0) {
		if (!c->has_mail) {
			conn_reply(c, "503 5.5.1 Need MAIL command");
			c->nerrors++;
		} else if (c->nrcpt == 0) {
			conn_reply(c, "554 5.5.1 No valid recipients");
		} else {
			c->in_data = 1;
			c->ds = DS_BOL;
			c->dsize = 0;
			c->oversize = 0;
			c->hash = 0xcbf29ce484222325ULL;
			c->htail = 0;
			c->htail_n = 0;
			c->msg.len = 0;
			c->drop = sink_pct(c->w, sink_o.drop_mid_data);
			c->in_hdr = 1;
			c->hlen = 0;
			c->submitted_us = 0;
			conn_reply(c, "354 End data with <CR><LF>.<CR><LF>");
		}
	} else if (strcasecmp(line, "RSET") == 0) {
		conn_reset_tx(c);
		conn_reply(c, "250 2.0.0 Ok");
	} else if (strncasecmp(line, "NOOP", 4) == 0 && (line[4] == ' ' || line[4] == '\0')) {
		conn_reply(c, "250 2.0.0 Ok");
	} else if (strcasecmp(line, "QUIT") == 0) {
		conn_reply(c, "221 2.0.0 Bye");
		if (c->tls != NULL && c->mode == MODE_TLS) {
			conn_release(c);
			tls_conn_shutdown(c->tls);
			conn_tls_drain(c);
		}
		c->quit = 1;
	} else if (strncasecmp(line, "VRFY", 4) == 0) {
		conn_reply(c, "252 2.5.2 Cannot VRFY user");
	} else {
		conn_reply(c, "500 5.5.2 Command unrecognized");
		c->nerrors++;
	}
}

/* conn_emit - payload bytes of the message (already un-stuffed) */
static void
conn_emit(sink_conn_t *c, const char *p, size_t n)
{
	if (n == 0 || c->oversize)
		return;
	if (c->dsize + n > sink_o.max_size) {
		c->oversize = 1;
		c->msg.len = 0;
		return;
	}
	c->dsize += n;
	if (c->in_hdr)
		conn_header_scan(c, p, n);
	if (sink_o.hash)
		sink_whash(c, p, n);
	if (sink_o.store != NULL)
		buf_put(&c->msg, p, n);
}

/* conn_header_scan - watch the header lines of the payload for
 * X-Sealpost-Bench-Submitted: (written by fill); stops at the empty line,
 * so the per-byte loop only ever covers the headers */
static void
conn_header_scan(sink_conn_t *c, const char *p, size_t n)
{
	static const char name[] = "X-Sealpost-Bench-Submitted:";
	size_t i;

	for (i = 0; i < n && c->in_hdr; i++) {
		size_t len;

		if (p[i] != '\n') {
			if (c->hlen < sizeof(c->hline) - 1)
				c->hline[c->hlen++] = p[i];
			continue;
		}
		len = c->hlen;
		if (len > 0 && c->hline[len - 1] == '\r')
			len--;
		c->hline[len] = '\0';
		c->hlen = 0;
		if (len == 0) {
			c->in_hdr = 0;
		} else if (len > sizeof(name) - 1 &&
		    strncasecmp(c->hline, name, sizeof(name) - 1) == 0) {
			char *end;
			long long v = strtoll(c->hline + sizeof(name) - 1, &end, 10);

			if (v > 0 && (*end == '\0' || *end == ' '))
				c->submitted_us = v;
		}
	}
}

/* sink_lat_record - one delivery latency into the histogram */
static void
sink_lat_record(int64_t us)
{
	uint64_t ms = us > 0 ? (uint64_t)us / 1000 : 0;
	size_t b;

	if (ms < LAT_FINE)
		b = (size_t)ms;
	else if (ms < 1000000)
		b = LAT_FINE + (size_t)((ms - LAT_FINE) / 100);
	else
		b = LAT_BUCKETS - 1;
	sink_add(&sink_lat[b], 1);
	{
		uint64_t old = __atomic_load_n(&sink_lat_max, __ATOMIC_RELAXED);

		while (ms > old && !__atomic_compare_exchange_n(&sink_lat_max, &old, ms, 0,
		    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	if (sink_o.timeline != NULL) {
		uint64_t v = us > 0 ? (uint64_t)us : 0;
		uint64_t old = __atomic_load_n(&sink_iv_max_us, __ATOMIC_RELAXED);

		sink_add(&sink_iv_n, 1);
		sink_add(&sink_iv_sum_us, v);
		while (v > old && !__atomic_compare_exchange_n(&sink_iv_max_us, &old, v, 0,
		    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
}

/* sink_timeline_line - one --timeline line: the monotonic clock (the same
 * clock as a parent process's, so it can line the points up with its own
 * events), messages so far, and the latencies recorded since the last line
 * (count, sum and max in ms); flushed so a reader sees whole lines */
static void
sink_timeline_line(FILE *f)
{
	uint64_t n = __atomic_exchange_n(&sink_iv_n, 0, __ATOMIC_RELAXED);
	uint64_t sum = __atomic_exchange_n(&sink_iv_sum_us, 0, __ATOMIC_RELAXED);
	uint64_t max = __atomic_exchange_n(&sink_iv_max_us, 0, __ATOMIC_RELAXED);

	fprintf(f, "%.6f %llu %llu %.3f %.3f\n", bench_mono_s(),
	    (unsigned long long)sink_get(&sink_st.messages), (unsigned long long)n,
	    (double)sum / 1000.0, (double)max / 1000.0);
	fflush(f);
}

/* sink_lat_bucket_ms - the lower bound of bucket b in ms */
static uint64_t
sink_lat_bucket_ms(size_t b)
{
	if (b < LAT_FINE)
		return b;
	return LAT_FINE + (uint64_t)(b - LAT_FINE) * 100;
}

/* sink_lat_pct - the latency (ms) at or below which pct of count fall */
static uint64_t
sink_lat_pct(uint64_t count, double pct)
{
	uint64_t want = (uint64_t)((double)count * pct / 100.0 + 0.999999), seen = 0;
	size_t b;

	if (want == 0)
		want = 1;
	for (b = 0; b < LAT_BUCKETS; b++) {
		seen += sink_get(&sink_lat[b]);
		if (seen >= want)
			return sink_lat_bucket_ms(b);
	}
	return sink_get(&sink_lat_max);
}

/* conn_data - scan DATA bytes for CRLF.CRLF, un-stuffing; returns how
 * many bytes were used (less than n only when the message ended) */
static size_t
conn_data(sink_conn_t *c, const char *p, size_t n)
{
	size_t i = 0;

	if (c->drop) {
		/* --drop-mid-data: some of the message arrived, now vanish */
		sink_add(&sink_st.drops, 1);
		conn_close(c);
		return n;
	}
	while (i < n) {
		switch (c->ds) {
		case DS_BOL:
			if (p[i] == '.') {
				/* dropped: a stuffing dot, or the start of the end */
				c->ds = DS_DOT;
				i++;
				break;
			}
			c->ds = DS_MID;
			/* FALLTHROUGH */
		case DS_MID: {
			const char *lf = memchr(p + i, '\n', n - i);
			size_t end = lf ? (size_t)(lf - p) + 1 : n;

			conn_emit(c, p + i, end - i);
			i = end;
			if (lf != NULL)
				c->ds = DS_BOL;
			break;
		}
		case DS_DOT:
			if (p[i] == '\r') {
				c->ds = DS_DOTCR;
				i++;
			} else {
				c->ds = DS_MID;
			}
			break;
		case DS_DOTCR:
			if (p[i] == '\n') {
				conn_data_end(c);
				return i + 1;
			}
			/* ".\rX": a stuffed line that starts with CR */
			conn_emit(c, "\r", 1);
			c->ds = DS_MID;
			break;
		}
	}
	return n;
}

/* conn_data_end - the final dot: accept (count, store) or refuse */
static void
conn_data_end(sink_conn_t *c)
{
	uint64_t n;

	c->in_data = 0;
	if (c->oversize) {
		conn_reply(c, "552 5.3.4 Message size exceeds fixed maximum message size");
		sink_add(&sink_st.oversize, 1);
		conn_reset_tx(c);
		return;
	}
	n = __atomic_add_fetch(&sink_st.seq, 1, __ATOMIC_RELAXED);
	if (sink_o.store != NULL && sink_store(c, n) == -1) {
		conn_reply(c, "451 4.3.0 Could not store the message (sink)");
		sink_add(&sink_st.errors, 1);
		conn_reset_tx(c);
		return;
	}
	sink_add(&sink_st.messages, 1);
	sink_add(&sink_st.recipients, c->nrcpt);
	sink_add(&sink_st.bytes, c->dsize);
	if (c->submitted_us > 0)
		sink_lat_record(bench_now_us() - c->submitted_us);
	if (c->mode != MODE_TLS)
		sink_add(&sink_st.plaintext, 1);
	if (sink_o.hash)
		__atomic_xor_fetch(&sink_st.digest, sink_whash_final(c), __ATOMIC_RELAXED);
	pthread_mutex_lock(&sink_time_lock);
	sink_st.last_msg = bench_mono_s();
	pthread_mutex_unlock(&sink_time_lock);
	conn_reply(c, "250 2.0.0 Ok: queued as %llu", (unsigned long long)n);
	conn_reset_tx(c);
	if (sink_o.max_messages > 0 && sink_get(&sink_st.messages) >= sink_o.max_messages)
		sink_stop = 1;
}

/* sink_store - DIR/N.eml (payload) and DIR/N.env (envelope), each written
 * under a dot name and renamed, so a reader never sees half a file */
static int
sink_store(sink_conn_t *c, uint64_t n)
{
	sink_buf_t env = { 0 };
	char tmp[4200], dst[4200];
	const char *ext[2] = { "eml", "env" };
	const sink_buf_t *src[2];
	int k;

	buf_put(&env, "from=", 5);
	buf_put(&env, c->from, strlen(c->from));
	buf_put(&env, "\n", 1);
	buf_put(&env, c->rcpts.p, c->rcpts.len);
	buf_put(&env, "tls=", 4);
	if (c->mode == MODE_TLS)
		buf_put(&env, c->tls_version, strlen(c->tls_version));
	else
		buf_put(&env, "none", 4);
	buf_put(&env, "\n", 1);
	src[0] = &c->msg;
	src[1] = &env;
	for (k = 0; k < 2; k++) {
		size_t off = 0;
		int fd;

		snprintf(tmp, sizeof(tmp), "%s/.%llu.%s.tmp", sink_o.store,
		    (unsigned long long)n, ext[k]);
		snprintf(dst, sizeof(dst), "%s/%llu.%s", sink_o.store,
		    (unsigned long long)n, ext[k]);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd == -1)
			goto fail;
		while (off < src[k]->len) {
			ssize_t w = write(fd, src[k]->p + off, src[k]->len - off);

			if (w == -1 && errno == EINTR)
				continue;
			if (w <= 0) {
				close(fd);
				unlink(tmp);
				goto fail;
			}
			off += (size_t)w;
		}
		if (close(fd) == -1 || rename(tmp, dst) == -1) {
			unlink(tmp);
			goto fail;
		}
	}
	buf_free(&env);
	return 0;
fail:
	fprintf(stderr, "sink: store %s: %s\n", tmp, strerror(errno));
	buf_free(&env);
	return -1;
}

/* sink_cqe - one completion */
static void
sink_cqe(sink_worker_t *w, struct io_uring_cqe *cqe)
{
	sink_op_t *op = io_uring_cqe_get_data(cqe);
	sink_conn_t *c;
	int res = cqe->res;

	if (op == NULL)
		return;		/* a cancel request */
	if (op->kind == OP_ACCEPT) {
		sink_listener_t *l = op->owner;

		if (res >= 0) {
			conn_new(w, res);
		} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
		    res == -ENOMEM) {
			/* re-arming now would spin; the loop retries within 100 ms */
			sink_add(&sink_st.errors, 1);
			l->paused = 1;
			return;
		}
		if (!sink_stop)
			sink_accept(l);
		return;
	}
	c = op->owner;
	c->inflight--;
	switch (op->kind) {
	case OP_RECV:
		c->recv_busy = 0;
		if (c->closing)
			break;
		if (res < 0) {
			if (res != -ECONNRESET)
				sink_add(&sink_st.errors, 1);
			conn_close(c);
			break;
		}
		if (res == 0) {
			c->eof = 1;
			if (c->tls != NULL)
				tls_conn_input_eof(c->tls);
		} else if (c->mode == MODE_HANDSHAKE || c->mode == MODE_TLS) {
			tls_conn_input(c->tls, c->ibuf, (size_t)res);
		} else if (c->mode == MODE_PLAIN) {
			if (c->roff > 0) {
				memmove(c->rbuf, c->rbuf + c->roff, c->rlen);
				c->roff = 0;
			}
			/* conn_post_recv guaranteed the room */
			memcpy(c->rbuf + c->rlen, c->ibuf, (size_t)res);
			c->rlen += (size_t)res;
		}
		/* MODE_STARTTLS_PENDING: injected after STARTTLS, dropped */
		conn_pump(c);
		break;
	case OP_SEND:
		c->send_busy = 0;
		if (c->closing)
			break;
		if (res < 0) {
			if (res != -EPIPE && res != -ECONNRESET)
				sink_add(&sink_st.errors, 1);
			conn_close(c);
			break;
		}
		c->wire_off += (size_t)res;
		if (c->wire_off >= c->wire.len) {
			c->wire.len = 0;
			c->wire_off = 0;
		}
		conn_pump(c);
		break;
	case OP_TIMER:
		c->timer_busy = 0;
		if (c->closing)
			break;
		conn_release(c);
		conn_pump(c);
		break;
	default:
		break;
	}
	conn_maybe_free(c);
}

/* sink_worker_run - one worker thread: its ring, its listeners, its
 * connections, until sink_stop; then a short grace for replies in flight */
static void *
sink_worker_run(void *arg)
{
	sink_worker_t *w = arg;
	struct io_uring_cqe *cqe;
	unsigned head, n;
	size_t i;
	double grace = 0;

	for (i = 0; i < w->nls; i++)
		sink_accept(&w->ls[i]);
	for (;;) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100000000 };
		int r;

		if (sink_stop) {
			int sending = 0;
			sink_conn_t *c;

			/* let the last "250 queued" replies reach their clients */
			if (grace == 0)
				grace = bench_mono_s() + 0.5;
			for (c = w->conns; c != NULL; c = c->next)
				if (!c->closing && (c->send_busy || c->pend.len > 0 ||
				    c->reply.len > 0))
					sending = 1;
			if (!sending || bench_mono_s() > grace)
				break;
			ts.tv_nsec = 20000000;
		}
		for (i = 0; i < w->nls; i++) {
			if (w->ls[i].paused && !sink_stop) {
				w->ls[i].paused = 0;
				sink_accept(&w->ls[i]);
			}
		}
		r = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) {
			fprintf(stderr, "sink: io_uring wait: %s\n", strerror(-r));
			sink_add(&sink_sq_lost, 1);
			sink_stop = 1;
			break;
		}
		n = 0;
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			sink_cqe(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->ring, n);
	}
	/* teardown: fds first, then the ring (cancels what is in flight),
	 * then the memory the kernel might still have pointed at */
	for (i = 0; i < w->nls; i++)
		close(w->ls[i].fd);
	{
		sink_conn_t *c;

		for (c = w->conns; c != NULL; c = c->next)
			shutdown(c->fd, SHUT_RDWR);
		io_uring_queue_exit(&w->ring);
		while ((c = w->conns) != NULL) {
			c->closing = 1;
			c->inflight = 0;
			conn_maybe_free(c);
		}
	}
#ifdef FP_ECC
	/* wolfSSL keeps a per-thread ECC fixed-point cache (Debian builds it
	 * with FP_ECC); only this thread can free its own.  tls.h has no
	 * per-thread cleanup call, so the sink makes the wolfCrypt call. */
	wc_ecc_fp_free();
#endif
	return NULL;
}

/* sink_listen - a listening socket for "ADDR:PORT" or "[V6]:PORT";
 * port_override >= 0 replaces the port (the one the first worker got) */
static int
sink_listen(const char *spec, int port_override, int *port_out)
{
	char host[256];
	const char *colon, *h, *portstr;
	struct sockaddr_storage ss;
	socklen_t sl;
	uint64_t port;
	size_t hl;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		h = spec + 1;
		hl = (size_t)(rb - h);
		portstr = rb + 2;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL)
			return -1;
		h = spec;
		hl = (size_t)(colon - spec);
		portstr = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host) || bench_parse_u64(portstr, 65535, &port) == -1)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (port_override >= 0)
		port = (uint64_t)port_override;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*sin6);
	} else {
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -2;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 1024) == -1) {
		close(fd);
		return -2;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
		close(fd);
		return -2;
	}
	*port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* sink_write_file - write text to path through a temporary name */
static int
sink_write_file(const char *path, const char *text)
{
	char tmp[4200];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	if (fputs(text, f) == EOF) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) == EOF || rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* sink_summary - the JSON summary */
static void
sink_summary(double elapsed, char *out, size_t outlen)
{
	uint64_t m = sink_get(&sink_st.messages);
	double active, first, last;
	uint64_t nlat = 0;
	size_t b;

	for (b = 0; b < LAT_BUCKETS; b++)
		nlat += sink_get(&sink_lat[b]);
	pthread_mutex_lock(&sink_time_lock);
	active = sink_st.last_msg > sink_st.first_conn && sink_st.first_conn > 0 ?
	    sink_st.last_msg - sink_st.first_conn : 0;
	first = sink_st.first_conn;
	last = sink_st.last_msg;
	pthread_mutex_unlock(&sink_time_lock);
	snprintf(out, outlen,
	    "{\"messages\": %llu, \"recipients\": %llu, \"bytes\": %llu, "
	    "\"connections\": %llu, \"tls\": {\"TLSv1.3\": %llu, \"TLSv1.2\": %llu, "
	    "\"other\": %llu}, \"resumed\": %llu, \"plaintext_messages\": %llu, "
	    "\"errors\": %llu, \"tls_failures\": %llu, \"tempfails\": %llu, "
	    "\"permfails\": %llu, \"drops\": %llu, \"oversize\": %llu, "
	    "\"digest\": \"%016llx\", \"elapsed\": %.3f, \"active\": %.3f, "
	    "\"rate\": %.1f, \"active_rate\": %.1f, "
	    "\"first_conn_mono\": %.6f, \"last_msg_mono\": %.6f, "
	    "\"latency_ms\": {\"count\": %llu, \"p50\": %llu, \"p90\": %llu, "
	    "\"p99\": %llu, \"max\": %llu}}\n",
	    (unsigned long long)m,
	    (unsigned long long)sink_get(&sink_st.recipients),
	    (unsigned long long)sink_get(&sink_st.bytes),
	    (unsigned long long)sink_get(&sink_st.connections),
	    (unsigned long long)sink_get(&sink_st.tls13),
	    (unsigned long long)sink_get(&sink_st.tls12),
	    (unsigned long long)sink_get(&sink_st.tls_other),
	    (unsigned long long)sink_get(&sink_st.resumed),
	    (unsigned long long)sink_get(&sink_st.plaintext),
	    (unsigned long long)sink_get(&sink_st.errors),
	    (unsigned long long)sink_get(&sink_st.tls_failures),
	    (unsigned long long)sink_get(&sink_st.tempfails),
	    (unsigned long long)sink_get(&sink_st.permfails),
	    (unsigned long long)sink_get(&sink_st.drops),
	    (unsigned long long)sink_get(&sink_st.oversize),
	    (unsigned long long)sink_get(&sink_st.digest),
	    elapsed, active,
	    elapsed > 0 ? (double)m / elapsed : 0.0,
	    active > 0 ? (double)m / active : 0.0,
	    first, last,
	    (unsigned long long)nlat,
	    (unsigned long long)(nlat ? sink_lat_pct(nlat, 50) : 0),
	    (unsigned long long)(nlat ? sink_lat_pct(nlat, 90) : 0),
	    (unsigned long long)(nlat ? sink_lat_pct(nlat, 99) : 0),
	    (unsigned long long)sink_get(&sink_lat_max));
}

/* bench_sink_main - `sealpost-bench sink` */
int
bench_sink_main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port-file", required_argument, NULL, 'P' },
		{ "threads", required_argument, NULL, 'j' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "client-ca", required_argument, NULL, 'C' },
		{ "min-tls", required_argument, NULL, 'V' },
		{ "no-starttls", no_argument, NULL, 'N' },
		{ "allow-plaintext", no_argument, NULL, 'A' },
		{ "latency-ms", required_argument, NULL, 'L' },
		{ "rcpt-tempfail", required_argument, NULL, 't' },
		{ "rcpt-permfail", required_argument, NULL, 'p' },
		{ "tempfail-rcpt", required_argument, NULL, 'T' },
		{ "permfail-rcpt", required_argument, NULL, 'X' },
		{ "conn-tempfail", required_argument, NULL, 'g' },
		{ "drop-mid-data", required_argument, NULL, 'd' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "store", required_argument, NULL, 's' },
		{ "hash", no_argument, NULL, 'H' },
		{ "json", required_argument, NULL, 'J' },
		{ "timeline", required_argument, NULL, 'i' },
		{ "max-messages", required_argument, NULL, 'M' },
		{ "duration", required_argument, NULL, 'D' },
		{ "seed", required_argument, NULL, 'e' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static sink_worker_t workers[SINK_MAX_WORKERS];
	char err[512], json[2048], portline[64];
	sigset_t set;
	double start, last_print, now;
	uint64_t last_msgs = 0;
	FILE *tl = NULL;
	size_t li, wi;
	int ch, first_port = -1;

	sink_o.max_size = 52428800;
	sink_o.workers = 1;
	sink_o.seed = 1;
	sink_o.min_tls = 12;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "j:h", lopts, NULL)) != -1) {
		const char *bad = NULL;

		switch (ch) {
		case 'l':
			if (sink_o.nlisten >= SINK_MAX_LISTEN)
				bad = "--listen (too many)";
			else
				sink_o.listen[sink_o.nlisten++] = optarg;
			break;
		case 'P': sink_o.port_file = optarg; break;
		case 'j':
			if (bench_parse_u64(optarg, SINK_MAX_WORKERS, &sink_o.workers) == -1 ||
			    sink_o.workers == 0)
				bad = "--threads (1..64)";
			break;
		case 'c': sink_o.cert = optarg; break;
		case 'k': sink_o.key = optarg; break;
		case 'C': sink_o.client_ca = optarg; break;
		case 'V':
			if (strcmp(optarg, "1.2") == 0)
				sink_o.min_tls = 12;
			else if (strcmp(optarg, "1.3") == 0)
				sink_o.min_tls = 13;
			else
				bad = "--min-tls (1.2 or 1.3)";
			break;
		case 'N': sink_o.no_starttls = 1; break;
		case 'A': sink_o.allow_plaintext = 1; break;
		case 'L':
			if (bench_parse_u64(optarg, 600000, &sink_o.latency_ms) == -1)
				bad = "--latency-ms";
			break;
		case 't':
			if (bench_parse_u64(optarg, 100, &sink_o.rcpt_tempfail) == -1)
				bad = "--rcpt-tempfail (0..100)";
			break;
		case 'p':
			if (bench_parse_u64(optarg, 100, &sink_o.rcpt_permfail) == -1)
				bad = "--rcpt-permfail (0..100)";
			break;
		case 'T':
			if (sink_o.ntempfail_rcpt >= SINK_MAX_LIST)
				bad = "--tempfail-rcpt (too many)";
			else
				sink_o.tempfail_rcpt[sink_o.ntempfail_rcpt++] = optarg;
			break;
		case 'X':
			if (sink_o.npermfail_rcpt >= SINK_MAX_LIST)
				bad = "--permfail-rcpt (too many)";
			else
				sink_o.permfail_rcpt[sink_o.npermfail_rcpt++] = optarg;
			break;
		case 'g':
			if (bench_parse_u64(optarg, 100, &sink_o.conn_tempfail) == -1)
				bad = "--conn-tempfail (0..100)";
			break;
		case 'd':
			if (bench_parse_u64(optarg, 100, &sink_o.drop_mid_data) == -1)
				bad = "--drop-mid-data (0..100)";
			break;
		case 'm':
			if (bench_parse_u64(optarg, UINT64_MAX / 2, &sink_o.max_size) == -1 ||
			    sink_o.max_size == 0)
				bad = "--max-size";
			break;
		case 's': sink_o.store = optarg; break;
		case 'H': sink_o.hash = 1; break;
		case 'J': sink_o.json = optarg; break;
		case 'i': sink_o.timeline = optarg; break;
		case 'M':
			if (bench_parse_u64(optarg, UINT64_MAX / 2, &sink_o.max_messages) == -1)
				bad = "--max-messages";
			break;
		case 'D':
			if (bench_parse_u64(optarg, 86400 * 365, &sink_o.duration) == -1)
				bad = "--duration (seconds)";
			break;
		case 'e':
			if (bench_parse_u64(optarg, UINT64_MAX, &sink_o.seed) == -1)
				bad = "--seed";
			sink_o.seeded = 1;
			break;
		case 'q': sink_o.quiet = 1; break;
		case 'h': sink_usage(); return EX_OK;
		default: sink_usage(); return EX_USAGE;
		}
		if (bad != NULL) {
			fprintf(stderr, "sink: invalid %s \"%s\"\n", bad, optarg);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sink: unexpected operand \"%s\"\n", argv[optind]);
		return EX_USAGE;
	}
	if ((sink_o.cert == NULL) != (sink_o.key == NULL)) {
		fprintf(stderr, "sink: --cert and --key go together\n");
		return EX_USAGE;
	}
	if (sink_o.client_ca != NULL && sink_o.cert == NULL) {
		fprintf(stderr, "sink: --client-ca needs --cert and --key\n");
		return EX_USAGE;
	}
	if (sink_o.rcpt_tempfail + sink_o.rcpt_permfail > 100) {
		fprintf(stderr, "sink: --rcpt-tempfail + --rcpt-permfail exceed 100\n");
		return EX_USAGE;
	}
	if (sink_o.store != NULL && mkdir(sink_o.store, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "sink: --store %s: %s\n", sink_o.store, strerror(errno));
		return EX_CANTCREAT;
	}
	if (sink_o.nlisten == 0)
		sink_o.listen[sink_o.nlisten++] = "127.0.0.1:2525";
	if (sink_o.cert != NULL && !sink_o.no_starttls) {
		sink_tls = tls_ctx_new_server(sink_o.cert, sink_o.key, sink_o.client_ca,
		    sink_o.min_tls, err, sizeof(err));
		if (sink_tls == NULL) {
			fprintf(stderr, "sink: TLS setup: %s\n", err);
			return EX_CONFIG;
		}
	}

	/* SIGINT/SIGTERM are taken by sigtimedwait in this thread only */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (wi = 0; wi < sink_o.workers; wi++) {
		sink_worker_t *w = &workers[wi];
		int r = io_uring_queue_init(SINK_RING, &w->ring, 0);

		if (r < 0) {
			fprintf(stderr, "sink: io_uring_queue_init: %s\n", strerror(-r));
			return EX_OSERR;
		}
		w->idx = (int)wi;
		w->rnd = sink_o.seed * 0x9E3779B97F4A7C15ULL + wi + 1;
		for (li = 0; li < sink_o.nlisten; li++) {
			static int ports[SINK_MAX_LISTEN];
			int port = 0, fd;

			fd = sink_listen(sink_o.listen[li], wi == 0 ? -1 : ports[li], &port);
			if (fd < 0) {
				fprintf(stderr, "sink: --listen %s: %s\n", sink_o.listen[li],
				    fd == -1 ? "want ADDR:PORT with a numeric address" :
				    strerror(errno));
				return EX_UNAVAILABLE;
			}
			if (wi == 0) {
				ports[li] = port;
				if (first_port < 0)
					first_port = port;
				printf("listening %.*s:%d\n",
				    (int)(strrchr(sink_o.listen[li], ':') - sink_o.listen[li]),
				    sink_o.listen[li], port);
			}
			w->ls[li] = (sink_listener_t){ fd, { OP_ACCEPT, NULL }, w, 0 };
			w->ls[li].op.owner = &w->ls[li];
		}
		w->nls = sink_o.nlisten;
	}
	fflush(stdout);
	snprintf(portline, sizeof(portline), "%d\n", first_port);
	if (sink_o.port_file != NULL && sink_write_file(sink_o.port_file, portline) == -1) {
		fprintf(stderr, "sink: --port-file %s: %s\n", sink_o.port_file, strerror(errno));
		return EX_CANTCREAT;
	}

	if (sink_o.timeline != NULL) {
		tl = fopen(sink_o.timeline, "we");
		if (tl == NULL) {
			fprintf(stderr, "sink: --timeline %s: %s\n", sink_o.timeline,
			    strerror(errno));
			return EX_CANTCREAT;
		}
	}
	start = last_print = bench_mono_s();
	for (wi = 0; wi < sink_o.workers; wi++) {
		if (pthread_create(&workers[wi].th, NULL, sink_worker_run, &workers[wi]) != 0) {
			fprintf(stderr, "sink: cannot start a worker thread\n");
			return EX_OSERR;
		}
	}
	while (!sink_stop) {
		struct timespec wait = { 0, 100000000 };
		int sig = sigtimedwait(&set, NULL, &wait);

		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (tl != NULL)
			sink_timeline_line(tl);
		now = bench_mono_s();
		if (sink_o.duration > 0 && now - start >= (double)sink_o.duration)
			break;
		if (now - last_print >= 1.0) {
			uint64_t m = sink_get(&sink_st.messages);

			if (!sink_o.quiet)
				fprintf(stderr, "sink: %.0fs %llu msgs %.0f msgs/s %llu conns "
				    "%.1f MB %llu errors\n", now - start, (unsigned long long)m,
				    (double)(m - last_msgs) / (now - last_print),
				    (unsigned long long)sink_get(&sink_st.connections),
				    (double)sink_get(&sink_st.bytes) / 1e6,
				    (unsigned long long)sink_get(&sink_st.errors));
			last_msgs = m;
			last_print = now;
		}
	}
	sink_stop = 1;
	for (wi = 0; wi < sink_o.workers; wi++)
		pthread_join(workers[wi].th, NULL);
	if (tl != NULL) {
		sink_timeline_line(tl);
		fclose(tl);
	}
	now = bench_mono_s();
	sink_summary(now - start, json, sizeof(json));
	if (sink_tls != NULL)
		tls_ctx_free(sink_tls);
	if (!sink_o.quiet)
		fprintf(stderr, "sink: summary %s", json);
	if (sink_o.json != NULL && sink_write_file(sink_o.json, json) == -1) {
		fprintf(stderr, "sink: --json %s: %s\n", sink_o.json, strerror(errno));
		return EX_CANTCREAT;
	}
	return sink_get(&sink_sq_lost) ? EX_SOFTWARE : EX_OK;
}
