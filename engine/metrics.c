/*
 * engine/metrics.c - Prometheus metrics: counters and their HTTP endpoint.
 *
 *	eng_metrics_start(cfg, err, errlen)	serve on SEALPOST_METRICS_LISTEN
 *	eng_metrics_stop()			stop serving, join the thread
 *	eng_metrics_port()			the port listened on
 *	eng_metrics_rcpt(), _message_done(), _delivery(), _handshake(),
 *	_tls_failure(), _dns(), _queue(), _connections()	updates
 *	eng_metrics_render(&len)		the exposition text (caller frees)
 *
 * The counters live in one global struct of C11 atomics, updated with
 * relaxed adds from any thread: nothing orders them against each other, and
 * a scrape may see one counter of a pair bumped and not yet the other; that
 * is the usual contract of Prometheus counters and costs the delivery
 * threads one uncontended atomic add each.  Active connections by
 * destination are the exception: a 64-slot table under a mutex (taken once
 * per connection opened or closed).  A slot whose count is zero is reused
 * by a new destination; when all are busy, the connection is counted under
 * destination="other".  Closing a connection decrements its destination's
 * slot if that holds any, else "other", so the sum over the series stays
 * exact even when a destination moves between a slot and "other".
 *
 * The HTTP side is one thread with its own io_uring: accept, recv, send and
 * a one-second tick; it never touches the delivery threads' rings or locks
 * (only the connection table's mutex, briefly, while rendering).  Hostile
 * clients are bounded: at most ENG_METRICS_MAX_CLIENTS at once (further
 * connections wait in the listen backlog), ENG_METRICS_MAX_REQUEST bytes of
 * request head (then 431), ENG_METRICS_CLIENT_TIMEOUT seconds from accept
 * to close.  Every response carries Connection: close; after sending it the
 * server half-closes and reads until the client's end (or the deadline) so
 * that unread request bytes do not turn the close into a reset that could
 * destroy the response in flight.
 *
 * Errors: eng_metrics_start returns -1 with a reason naming
 * SEALPOST_METRICS_LISTEN; a client's trouble only ends that client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>

#include "engine/metrics.h"

/* Fixed label sets: index order is exposition order. */
enum { R_SENT, R_DEFERRED, R_BOUNCED, R_N };
static const char *const rcpt_names[R_N] = { "sent", "deferred", "bounced" };

enum { V_12, V_13, V_OTHER, V_N };
static const char *const version_names[V_N] = { "TLSv1.2", "TLSv1.3", "other" };

enum { VF_YES, VF_NO, VF_PINNED, VF_OTHER, VF_N };
static const char *const verified_names[VF_N] = { "yes", "no", "pinned", "other" };

enum { F_NO_STARTTLS, F_REFUSED, F_HANDSHAKE, F_VERIFY, F_INJECTION, F_OTHER, F_N };
static const char *const failure_names[F_N] = {
	"no_starttls", "starttls_refused", "handshake", "verify", "injection", "other"
};

/* Latency buckets (seconds): fax delivery spans milliseconds on a warm
 * session to minutes behind a slow receiver. */
static const double bucket_le[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300
};
static const char *const bucket_text[] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
	"30", "60", "120", "300"
};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))
_Static_assert(sizeof(bucket_le) / sizeof(bucket_le[0]) ==
    sizeof(bucket_text) / sizeof(bucket_text[0]), "bucket tables differ");

typedef _Atomic uint64_t ctr_t;

/* Zero-initialised as static storage: valid atomics before any start. */
static struct {
	ctr_t	rcpt[R_N];
	ctr_t	msgs[2];		/* delivered, bounced */
	ctr_t	deliveries[V_N][VF_N];
	ctr_t	lat_bucket[NBUCKETS + 1];	/* per bucket, not cumulative; last: > 300 s */
	ctr_t	lat_sum_us;
	ctr_t	handshakes[2];		/* full, resumed */
	ctr_t	tls_fail[F_N];
	ctr_t	dns_lookups, dns_hits;
	ctr_t	q_active, q_deferred, q_new;
	_Atomic int64_t q_oldest;
	_Atomic int64_t start_time;
} M;

typedef struct conn_slot {
	char	dest[256];
	uint64_t n;
} conn_slot_t;

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static conn_slot_t conn_slots[ENG_METRICS_DEST_SLOTS];
static unsigned conn_used;		/* slots ever named */
static uint64_t conn_other;

/* The HTTP server. */
#define UD_IGNORE	0
#define UD_ACCEPT	1
#define UD_EVENT	2
#define UD_TICK		3

enum mc_phase { MC_READ, MC_WRITE, MC_DRAIN };

typedef struct mclient {
	int	used;
	int	fd;
	int	inflight;		/* one op at a time: recv or send */
	int	closing;
	enum mc_phase phase;
	int64_t	deadline_ms;
	size_t	rlen;
	char	*wbuf;
	size_t	wlen, woff;
	char	rbuf[ENG_METRICS_MAX_REQUEST];
} mclient_t;

typedef struct mserver {
	pthread_t thr;
	int	running;
	struct io_uring ring;
	int	lfd, efd;
	uint64_t ebuf;
	int	accept_inflight, event_inflight, tick_inflight;
	int	accept_paused;		/* an accept error: retry on the next tick */
	int	stopping;
	struct __kernel_timespec tick;
	unsigned nclients;
	mclient_t clients[ENG_METRICS_MAX_CLIENTS];
} mserver_t;

static mserver_t *srv;
static _Atomic unsigned srv_port;

/* A growable text buffer for rendering. */
typedef struct sbuf {
	char	*p;
	size_t	len, cap;
	int	oom;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_label_value(sbuf_t *b, const char *s);
static void sb_head(sbuf_t *b, const char *name, const char *type, const char *help);
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl);
static void *serve(void *arg);
static int64_t mono_ms(void);
static struct io_uring_sqe *get_sqe(mserver_t *s);
static void arm_accept(mserver_t *s);
static void arm_event(mserver_t *s);
static void arm_tick(mserver_t *s);
static void arm_recv(mserver_t *s, mclient_t *c);
static void arm_send(mserver_t *s, mclient_t *c);
static void on_accept(mserver_t *s, int res);
static void on_tick(mserver_t *s);
static void on_client(mserver_t *s, mclient_t *c, int res);
static void client_request(mserver_t *s, mclient_t *c);
static void client_respond(mserver_t *s, mclient_t *c, int code, const char *reason,
			   int http10, int head, char *body, size_t blen);
static void client_close(mserver_t *s, mclient_t *c);
static void client_release(mserver_t *s, mclient_t *c);
static void begin_stop(mserver_t *s);
static int busy(const mserver_t *s);

/* Updates. */

/* eng_metrics_rcpt - count one recipient attempt's outcome */
void
eng_metrics_rcpt(enum q_rcpt_status st)
{
	switch (st) {
	case Q_RCPT_SENT:
		atomic_fetch_add_explicit(&M.rcpt[R_SENT], 1, memory_order_relaxed);
		break;
	case Q_RCPT_DEFERRED:
		atomic_fetch_add_explicit(&M.rcpt[R_DEFERRED], 1, memory_order_relaxed);
		break;
	case Q_RCPT_BOUNCED:
		atomic_fetch_add_explicit(&M.rcpt[R_BOUNCED], 1, memory_order_relaxed);
		break;
	default:
		break;
	}
}

/* eng_metrics_message_done - count a message removed from the queue */
void
eng_metrics_message_done(int bounced_any)
{
	atomic_fetch_add_explicit(&M.msgs[bounced_any ? 1 : 0], 1, memory_order_relaxed);
}

/* eng_metrics_delivery - count an accepted transaction and its latency */
void
eng_metrics_delivery(const char *tls_version, const char *verified, double latency_s)
{
	size_t v = V_OTHER, f = VF_OTHER, b;

	if (tls_version && strcmp(tls_version, "TLSv1.2") == 0)
		v = V_12;
	else if (tls_version && strcmp(tls_version, "TLSv1.3") == 0)
		v = V_13;
	for (size_t i = 0; verified && i < VF_OTHER; i++)
		if (strcmp(verified, verified_names[i]) == 0)
			f = i;
	atomic_fetch_add_explicit(&M.deliveries[v][f], 1, memory_order_relaxed);

	/* A clock step can make the latency negative, a bug NaN: both 0. */
	if (!(latency_s > 0) || isnan(latency_s))
		latency_s = 0;
	if (latency_s > 1e9)
		latency_s = 1e9;
	for (b = 0; b < NBUCKETS && latency_s > bucket_le[b]; b++)
		;
	atomic_fetch_add_explicit(&M.lat_bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&M.lat_sum_us, (uint64_t)(latency_s * 1e6 + 0.5),
	    memory_order_relaxed);
}

/* eng_metrics_handshake - count a completed handshake, full or resumed */
void
eng_metrics_handshake(int resumed)
{
	atomic_fetch_add_explicit(&M.handshakes[resumed ? 1 : 0], 1, memory_order_relaxed);
}

/* eng_metrics_tls_failure - count a host refused for a TLS reason */
void
eng_metrics_tls_failure(const char *reason_class)
{
	size_t r = F_OTHER;

	for (size_t i = 0; reason_class && i < F_OTHER; i++)
		if (strcmp(reason_class, failure_names[i]) == 0)
			r = i;
	atomic_fetch_add_explicit(&M.tls_fail[r], 1, memory_order_relaxed);
}

/* eng_metrics_dns - add DNS lookup and cache hit deltas */
void
eng_metrics_dns(uint64_t lookups, uint64_t hits)
{
	if (lookups)
		atomic_fetch_add_explicit(&M.dns_lookups, lookups, memory_order_relaxed);
	if (hits)
		atomic_fetch_add_explicit(&M.dns_hits, hits, memory_order_relaxed);
}

/* eng_metrics_queue - replace the queue gauges */
void
eng_metrics_queue(uint64_t active, uint64_t deferred, uint64_t new_files, int64_t oldest_arrival)
{
	atomic_store_explicit(&M.q_active, active, memory_order_relaxed);
	atomic_store_explicit(&M.q_deferred, deferred, memory_order_relaxed);
	atomic_store_explicit(&M.q_new, new_files, memory_order_relaxed);
	atomic_store_explicit(&M.q_oldest, oldest_arrival, memory_order_relaxed);
}

/* eng_metrics_connections - +1/-1 active connections to a destination */
void
eng_metrics_connections(const char *dest, int delta)
{
	conn_slot_t *hit = NULL, *freeslot = NULL;

	if (dest == NULL)
		dest = "";
	pthread_mutex_lock(&conn_lock);
	/* O(64) string compares per connection open/close: negligible next
	 * to the TCP and TLS handshakes being counted. */
	for (unsigned i = 0; i < conn_used; i++) {
		if (strncmp(conn_slots[i].dest, dest, sizeof(conn_slots[i].dest) - 1) == 0) {
			hit = &conn_slots[i];
			break;
		}
		if (freeslot == NULL && conn_slots[i].n == 0)
			freeslot = &conn_slots[i];
	}
	if (delta > 0) {
		if (hit == NULL && conn_used < ENG_METRICS_DEST_SLOTS)
			hit = &conn_slots[conn_used++];
		else if (hit == NULL)
			hit = freeslot;
		if (hit != NULL) {
			snprintf(hit->dest, sizeof(hit->dest), "%s", dest);
			hit->n += (uint64_t)delta;
		} else {
			conn_other += (uint64_t)delta;
		}
	} else if (delta < 0) {
		uint64_t d = (uint64_t)(-(int64_t)delta);

		for (; d > 0; d--) {
			if (hit != NULL && hit->n > 0)
				hit->n--;
			else if (conn_other > 0)
				conn_other--;
		}
	}
	pthread_mutex_unlock(&conn_lock);
}

/* Rendering. */

/* sb_printf - append formatted text; on allocation failure set oom */
static void
sb_printf(sbuf_t *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap * 2 : 8192;
			char *p;

			while (cap - b->len <= (size_t)n)
				cap *= 2;
			if ((p = realloc(b->p, cap)) == NULL) {
				b->oom = 1;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

/* sb_label_value - a label value, escaped; non-printable bytes become '?' */
static void
sb_label_value(sbuf_t *b, const char *s)
{
	char out[600];
	size_t o = 0;

	for (; *s && o + 3 < sizeof(out); s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '\\' || ch == '"') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (ch < 0x20 || ch >= 0x7f) {
			out[o++] = '?';
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	sb_printf(b, "%s", out);
}

/* sb_head - the # HELP and # TYPE lines of a metric family */
static void
sb_head(sbuf_t *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* eng_metrics_render - the exposition text; malloc'd, caller frees */
char *
eng_metrics_render(size_t *len)
{
	sbuf_t b = { 0 };
	uint64_t cum = 0, n;
	int64_t oldest, now = (int64_t)time(NULL);
	conn_slot_t *snap;
	unsigned nsnap;
	uint64_t other;

	sb_head(&b, "sealpost_recipients_total", "counter",
	    "Recipient delivery attempts by outcome.");
	for (size_t i = 0; i < R_N; i++)
		sb_printf(&b, "sealpost_recipients_total{status=\"%s\"} %llu\n", rcpt_names[i],
		    (unsigned long long)LOAD(M.rcpt[i]));

	sb_head(&b, "sealpost_messages_total", "counter",
	    "Messages removed from the queue with every recipient final, by outcome "
	    "(bounced: at least one recipient bounced).");
	sb_printf(&b, "sealpost_messages_total{outcome=\"delivered\"} %llu\n",
	    (unsigned long long)LOAD(M.msgs[0]));
	sb_printf(&b, "sealpost_messages_total{outcome=\"bounced\"} %llu\n",
	    (unsigned long long)LOAD(M.msgs[1]));

	sb_head(&b, "sealpost_deliveries_total", "counter",
	    "SMTP transactions with at least one recipient accepted, by TLS version "
	    "and peer verification.");
	for (size_t v = 0; v < V_N; v++)
		for (size_t f = 0; f < VF_N; f++) {
			n = LOAD(M.deliveries[v][f]);
			if ((v == V_OTHER || f == VF_OTHER) && n == 0)
				continue;
			sb_printf(&b, "sealpost_deliveries_total{tls_version=\"%s\",verified=\"%s\"} %llu\n",
			    version_names[v], verified_names[f], (unsigned long long)n);
		}

	sb_head(&b, "sealpost_delivery_latency_seconds", "histogram",
	    "Time from spool arrival to the final 250 reply, per accepted transaction.");
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += LOAD(M.lat_bucket[i]);
		sb_printf(&b, "sealpost_delivery_latency_seconds_bucket{le=\"%s\"} %llu\n",
		    bucket_text[i], (unsigned long long)cum);
	}
	cum += LOAD(M.lat_bucket[NBUCKETS]);
	sb_printf(&b, "sealpost_delivery_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)cum);
	sb_printf(&b, "sealpost_delivery_latency_seconds_sum %.6f\n",
	    (double)LOAD(M.lat_sum_us) / 1e6);
	sb_printf(&b, "sealpost_delivery_latency_seconds_count %llu\n", (unsigned long long)cum);

	sb_head(&b, "sealpost_tls_handshakes_total", "counter",
	    "Completed TLS handshakes, full or resumed.");
	sb_printf(&b, "sealpost_tls_handshakes_total{kind=\"full\"} %llu\n",
	    (unsigned long long)LOAD(M.handshakes[0]));
	sb_printf(&b, "sealpost_tls_handshakes_total{kind=\"resumed\"} %llu\n",
	    (unsigned long long)LOAD(M.handshakes[1]));

	sb_head(&b, "sealpost_tls_failures_total", "counter",
	    "Hosts refused because TLS could not be set up or verified, by reason.");
	for (size_t i = 0; i < F_N; i++) {
		n = LOAD(M.tls_fail[i]);
		if (i == F_OTHER && n == 0)
			continue;
		sb_printf(&b, "sealpost_tls_failures_total{reason=\"%s\"} %llu\n",
		    failure_names[i], (unsigned long long)n);
	}

	sb_head(&b, "sealpost_dns_lookups_total", "counter", "DNS lookups (MX and address).");
	sb_printf(&b, "sealpost_dns_lookups_total %llu\n", (unsigned long long)LOAD(M.dns_lookups));
	sb_head(&b, "sealpost_dns_cache_hits_total", "counter",
	    "DNS lookups answered from the cache.");
	sb_printf(&b, "sealpost_dns_cache_hits_total %llu\n", (unsigned long long)LOAD(M.dns_hits));

	sb_head(&b, "sealpost_queue_messages", "gauge",
	    "Queued messages: active (being delivered), deferred (waiting for their "
	    "next attempt), new (not yet picked up).");
	sb_printf(&b, "sealpost_queue_messages{state=\"active\"} %llu\n",
	    (unsigned long long)LOAD(M.q_active));
	sb_printf(&b, "sealpost_queue_messages{state=\"deferred\"} %llu\n",
	    (unsigned long long)LOAD(M.q_deferred));
	sb_printf(&b, "sealpost_queue_messages{state=\"new\"} %llu\n",
	    (unsigned long long)LOAD(M.q_new));
	sb_head(&b, "sealpost_queue_oldest_message_age_seconds", "gauge",
	    "Age of the oldest queued message (0 when the queue is empty).");
	oldest = LOAD(M.q_oldest);
	sb_printf(&b, "sealpost_queue_oldest_message_age_seconds %lld\n",
	    (long long)(oldest > 0 && now > oldest ? now - oldest : 0));

	sb_head(&b, "sealpost_connections_active", "gauge",
	    "Open SMTP connections by destination domain (beyond "
	    "64 destinations: \"other\").");
	/* Copy under the lock, format outside it: the delivery threads wait
	 * on this mutex for at most a 64-slot memcpy. */
	snap = malloc(sizeof(conn_slots));
	pthread_mutex_lock(&conn_lock);
	nsnap = snap ? conn_used : 0;
	if (snap)
		memcpy(snap, conn_slots, nsnap * sizeof(*snap));
	other = conn_other;
	pthread_mutex_unlock(&conn_lock);
	if (snap == NULL)
		b.oom = 1;
	for (unsigned i = 0; i < nsnap; i++) {
		sb_printf(&b, "sealpost_connections_active{destination=\"");
		sb_label_value(&b, snap[i].dest);
		sb_printf(&b, "\"} %llu\n", (unsigned long long)snap[i].n);
	}
	free(snap);
	if (other > 0)
		sb_printf(&b, "sealpost_connections_active{destination=\"other\"} %llu\n",
		    (unsigned long long)other);

	sb_head(&b, "sealpost_start_time_seconds", "gauge",
	    "Unix time the metrics endpoint started.");
	sb_printf(&b, "sealpost_start_time_seconds %lld\n", (long long)LOAD(M.start_time));

	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}

/* Server. */

/* parse_listen - "ip:port" or "[ipv6]:port" into a socket address */
static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64];
	const char *colon, *h = s, *hend;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (*s == '[') {
		h = s + 1;
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			return -1;
		colon = hend + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		hend = colon;
	}
	if ((size_t)(hend - h) >= sizeof(host) || hend == h)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || port > 65535)
		return -1;
	{
		struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;

		if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons((uint16_t)port);
			*sl = sizeof(*in4);
			return 0;
		}
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			*sl = sizeof(*in6);
			return 0;
		}
	}
	return -1;
}

/* eng_metrics_start - bind, start the serving thread */
int
eng_metrics_start(const sp_config_t *cfg, char *err, size_t errlen)
{
	const char *listen_on = cfg->metrics_listen;
	struct sockaddr_storage ss, got;
	socklen_t sl = 0, gl = sizeof(got);
	sigset_t all, old;
	mserver_t *s;
	int one = 1, rc;

	atomic_store(&M.start_time, (int64_t)time(NULL));
	if (listen_on[0] == '\0')
		return 0;
	if (srv != NULL) {
		snprintf(err, errlen, "SEALPOST_METRICS_LISTEN=%s: metrics already started",
		    listen_on);
		return -1;
	}
	if (parse_listen(listen_on, &ss, &sl) < 0) {
		snprintf(err, errlen, "SEALPOST_METRICS_LISTEN=%s: not a numeric ip:port", listen_on);
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "SEALPOST_METRICS_LISTEN=%s: out of memory", listen_on);
		return -1;
	}
	s->efd = -1;
	if ((s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(s->lfd, 64) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&got, &gl) < 0) {
		snprintf(err, errlen, "SEALPOST_METRICS_LISTEN=%s: cannot listen: %s", listen_on,
		    strerror(errno));
		goto fail;
	}
	if ((s->efd = eventfd(0, EFD_CLOEXEC)) < 0) {
		snprintf(err, errlen, "SEALPOST_METRICS_LISTEN=%s: eventfd: %s", listen_on,
		    strerror(errno));
		goto fail;
	}
	if ((rc = io_uring_queue_init(2 * ENG_METRICS_MAX_CLIENTS + 8, &s->ring, 0)) < 0) {
		snprintf(err, errlen, "SEALPOST_METRICS_LISTEN=%s: io_uring_queue_init: %s",
		    listen_on, strerror(-rc));
		goto fail;
	}
	for (unsigned i = 0; i < ENG_METRICS_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	/* The thread must never take a process signal (the engine reads
	 * SIGTERM/SIGINT from a signalfd): start it with all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thr, NULL, serve, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		io_uring_queue_exit(&s->ring);
		snprintf(err, errlen, "SEALPOST_METRICS_LISTEN=%s: thread: %s", listen_on,
		    strerror(rc));
		goto fail;
	}
	s->running = 1;
	srv = s;
	atomic_store(&srv_port, got.ss_family == AF_INET6 ?
	    ntohs(((struct sockaddr_in6 *)(void *)&got)->sin6_port) :
	    ntohs(((struct sockaddr_in *)(void *)&got)->sin_port));
	return 0;
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->efd >= 0)
		close(s->efd);
	free(s);
	return -1;
}

/* eng_metrics_stop - wake the thread, wait for it, release everything */
void
eng_metrics_stop(void)
{
	mserver_t *s = srv;
	uint64_t one = 1;

	if (s == NULL)
		return;
	if (write(s->efd, &one, sizeof(one)) < 0)
		abort();	/* an eventfd write only fails on a bug */
	pthread_join(s->thr, NULL);
	io_uring_queue_exit(&s->ring);
	close(s->lfd);
	close(s->efd);
	free(s);
	srv = NULL;
	atomic_store(&srv_port, 0);
}

/* eng_metrics_port - the bound port, 0 when not serving */
uint16_t
eng_metrics_port(void)
{
	return (uint16_t)atomic_load(&srv_port);
}

/* mono_ms - CLOCK_MONOTONIC milliseconds */
static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* get_sqe - an SQE, submitting first if the ring is full */
static struct io_uring_sqe *
get_sqe(mserver_t *s)
{
	struct io_uring_sqe *sqe;

	/* The ring holds two entries per client plus our four fixed ops, so
	 * one submit always frees room. */
	while ((sqe = io_uring_get_sqe(&s->ring)) == NULL)
		io_uring_submit(&s->ring);
	return sqe;
}

static void
arm_accept(mserver_t *s)
{
	struct io_uring_sqe *sqe;

	if (s->accept_inflight || s->accept_paused || s->stopping ||
	    s->nclients >= ENG_METRICS_MAX_CLIENTS)
		return;
	sqe = get_sqe(s);
	io_uring_prep_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, UD_ACCEPT);
	s->accept_inflight = 1;
}

static void
arm_event(mserver_t *s)
{
	struct io_uring_sqe *sqe = get_sqe(s);

	io_uring_prep_read(sqe, s->efd, &s->ebuf, sizeof(s->ebuf), 0);
	io_uring_sqe_set_data64(sqe, UD_EVENT);
	s->event_inflight = 1;
}

static void
arm_tick(mserver_t *s)
{
	struct io_uring_sqe *sqe = get_sqe(s);

	s->tick.tv_sec = 1;
	s->tick.tv_nsec = 0;
	io_uring_prep_timeout(sqe, &s->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, UD_TICK);
	s->tick_inflight = 1;
}

static void
arm_recv(mserver_t *s, mclient_t *c)
{
	struct io_uring_sqe *sqe = get_sqe(s);

	if (c->phase == MC_DRAIN)
		io_uring_prep_recv(sqe, c->fd, c->rbuf, sizeof(c->rbuf), 0);
	else
		io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
	io_uring_sqe_set_data(sqe, c);
	c->inflight = 1;
}

static void
arm_send(mserver_t *s, mclient_t *c)
{
	struct io_uring_sqe *sqe = get_sqe(s);

	io_uring_prep_send(sqe, c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, c);
	c->inflight = 1;
}

/* busy - anything of ours still in the kernel */
static int
busy(const mserver_t *s)
{
	if (s->accept_inflight || s->event_inflight || s->tick_inflight)
		return 1;
	for (unsigned i = 0; i < ENG_METRICS_MAX_CLIENTS; i++)
		if (s->clients[i].used)
			return 1;
	return 0;
}

/* serve - the metrics thread: one ring, completions until stopped and idle */
static void *
serve(void *arg)
{
	mserver_t *s = arg;

	arm_event(s);
	arm_tick(s);
	arm_accept(s);
	while (!s->stopping || busy(s)) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int rc = io_uring_submit_and_wait(&s->ring, 1);

		if (rc < 0 && rc != -EINTR) {
			/* Only on a broken ring: wait a little rather than spin. */
			usleep(10000);
		}
		io_uring_for_each_cqe(&s->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);

			seen++;
			switch (ud) {
			case UD_IGNORE:
				break;
			case UD_ACCEPT:
				s->accept_inflight = 0;
				on_accept(s, cqe->res);
				break;
			case UD_EVENT:
				s->event_inflight = 0;
				begin_stop(s);
				break;
			case UD_TICK:
				s->tick_inflight = 0;
				on_tick(s);
				break;
			default:
				on_client(s, (mclient_t *)(uintptr_t)ud, cqe->res);
				break;
			}
		}
		io_uring_cq_advance(&s->ring, seen);
	}
	return NULL;
}

/* begin_stop - cancel everything; the loop ends when all ops came back */
static void
begin_stop(mserver_t *s)
{
	struct io_uring_sqe *sqe;

	s->stopping = 1;
	if (s->accept_inflight) {
		sqe = get_sqe(s);
		io_uring_prep_cancel64(sqe, UD_ACCEPT, 0);
		io_uring_sqe_set_data64(sqe, UD_IGNORE);
	}
	if (s->tick_inflight) {
		sqe = get_sqe(s);
		io_uring_prep_cancel64(sqe, UD_TICK, 0);
		io_uring_sqe_set_data64(sqe, UD_IGNORE);
	}
	for (unsigned i = 0; i < ENG_METRICS_MAX_CLIENTS; i++)
		if (s->clients[i].used)
			client_close(s, &s->clients[i]);
}

/* on_accept - a new client, or an accept error */
static void
on_accept(mserver_t *s, int res)
{
	mclient_t *c = NULL;

	if (res < 0) {
		/* Out of descriptors and the like: try again on the next tick
		 * instead of spinning on the same error. */
		if (res != -EINTR && res != -EAGAIN && res != -ECONNABORTED && res != -ECANCELED)
			s->accept_paused = 1;
		arm_accept(s);
		return;
	}
	if (s->stopping) {
		close(res);
		return;
	}
	for (unsigned i = 0; i < ENG_METRICS_MAX_CLIENTS; i++)
		if (!s->clients[i].used) {
			c = &s->clients[i];
			break;
		}
	if (c == NULL) {	/* cannot happen: accept is armed only with room */
		close(res);
		return;
	}
	c->used = 1;
	c->fd = res;
	c->inflight = 0;
	c->closing = 0;
	c->phase = MC_READ;
	c->rlen = 0;
	c->wbuf = NULL;
	c->wlen = c->woff = 0;
	c->deadline_ms = mono_ms() + ENG_METRICS_CLIENT_TIMEOUT * 1000;
	s->nclients++;
	arm_recv(s, c);
	arm_accept(s);
}

/* on_tick - end clients past their deadline; resume a paused accept */
static void
on_tick(mserver_t *s)
{
	int64_t now = mono_ms();

	if (s->stopping)
		return;
	for (unsigned i = 0; i < ENG_METRICS_MAX_CLIENTS; i++) {
		mclient_t *c = &s->clients[i];

		if (c->used && !c->closing && now >= c->deadline_ms)
			client_close(s, c);
	}
	s->accept_paused = 0;
	arm_accept(s);
	arm_tick(s);
}

/* on_client - a client's recv or send completed */
static void
on_client(mserver_t *s, mclient_t *c, int res)
{
	c->inflight = 0;
	if (c->closing) {
		client_release(s, c);
		return;
	}
	switch (c->phase) {
	case MC_READ:
		if (res <= 0) {
			client_close(s, c);
			return;
		}
		c->rlen += (size_t)res;
		client_request(s, c);
		return;
	case MC_WRITE:
		if (res < 0) {
			client_close(s, c);
			return;
		}
		c->woff += (size_t)res;
		if (c->woff < c->wlen) {
			arm_send(s, c);
			return;
		}
		/* Sent: half-close, then read until the client closes. */
		shutdown(c->fd, SHUT_WR);
		c->phase = MC_DRAIN;
		arm_recv(s, c);
		return;
	case MC_DRAIN:
		if (res <= 0)
			client_close(s, c);
		else
			arm_recv(s, c);
		return;
	}
}

/* client_request - a complete request head yet?  Then answer it. */
static void
client_request(mserver_t *s, mclient_t *c)
{
	char *line_end, *sp1, *sp2, *target_end;
	size_t mlen, tlen;
	int http10, head;
	char *body;
	size_t blen = 0;

	if (memmem(c->rbuf, c->rlen, "\r\n\r\n", 4) == NULL &&
	    memmem(c->rbuf, c->rlen, "\n\n", 2) == NULL) {
		if (c->rlen >= sizeof(c->rbuf)) {
			client_respond(s, c, 431, "Request Header Fields Too Large", 0, 0,
			    NULL, 0);
			return;
		}
		arm_recv(s, c);
		return;
	}
	/* Request line: METHOD SP TARGET SP HTTP/1.x */
	line_end = memchr(c->rbuf, '\n', c->rlen);
	if (line_end > c->rbuf && line_end[-1] == '\r')
		line_end--;
	*line_end = '\0';
	sp1 = strchr(c->rbuf, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1') || sp2[9] != '\0') {
		client_respond(s, c, 400, "Bad Request", 0, 0, NULL, 0);
		return;
	}
	http10 = sp2[8] == '0';
	mlen = (size_t)(sp1 - c->rbuf);
	target_end = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	if (target_end == NULL)
		target_end = sp2;
	tlen = (size_t)(target_end - sp1 - 1);
	if (tlen != 8 || memcmp(sp1 + 1, "/metrics", 8) != 0) {
		client_respond(s, c, 404, "Not Found", http10, 0, NULL, 0);
		return;
	}
	head = mlen == 4 && memcmp(c->rbuf, "HEAD", 4) == 0;
	if (!head && !(mlen == 3 && memcmp(c->rbuf, "GET", 3) == 0)) {
		client_respond(s, c, 405, "Method Not Allowed", http10, 0, NULL, 0);
		return;
	}
	if ((body = eng_metrics_render(&blen)) == NULL) {
		client_respond(s, c, 503, "Service Unavailable", http10, 0, NULL, 0);
		return;
	}
	client_respond(s, c, 200, "OK", http10, head, body, blen);
}

/* client_respond - build the response (takes body) and start sending */
static void
client_respond(mserver_t *s, mclient_t *c, int code, const char *reason, int http10,
	       int head, char *body, size_t blen)
{
	char hdr[512];
	const char *type = "text/plain; charset=utf-8";
	char msg[128];
	int hlen;

	if (body == NULL) {
		snprintf(msg, sizeof(msg), "%d %s\n", code, reason);
		blen = strlen(msg);
	} else {
		type = "text/plain; version=0.0.4; charset=utf-8";
	}
	hlen = snprintf(hdr, sizeof(hdr), "HTTP/1.%c %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", http10 ? '0' : '1', code,
	    reason, type, blen, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	c->wlen = (size_t)hlen + (head ? 0 : blen);
	if ((c->wbuf = malloc(c->wlen)) == NULL) {
		free(body);
		client_close(s, c);
		return;
	}
	memcpy(c->wbuf, hdr, (size_t)hlen);
	if (!head)
		memcpy(c->wbuf + hlen, body ? body : msg, blen);
	free(body);
	c->woff = 0;
	c->phase = MC_WRITE;
	arm_send(s, c);
}

/* client_close - end a client: cancel its op, free once it came back */
static void
client_close(mserver_t *s, mclient_t *c)
{
	struct io_uring_sqe *sqe;

	if (!c->inflight) {
		client_release(s, c);
		return;
	}
	if (c->closing)
		return;
	c->closing = 1;
	sqe = get_sqe(s);
	io_uring_prep_cancel(sqe, c, 0);
	io_uring_sqe_set_data64(sqe, UD_IGNORE);
	shutdown(c->fd, SHUT_RDWR);	/* makes a pending recv complete at once */
}

/* client_release - nothing in flight: close and free the slot */
static void
client_release(mserver_t *s, mclient_t *c)
{
	close(c->fd);
	c->fd = -1;
	free(c->wbuf);
	c->wbuf = NULL;
	c->used = 0;
	c->closing = 0;
	s->nclients--;
	arm_accept(s);
}
