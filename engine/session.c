/*
 * engine/session.c - the SMTP client session: an explicit state machine
 * (see enum smtp_state in worker_int.h for the legal transitions) driven by
 * the worker's ring completions.
 *
 *	eng_session_new(w, d)         a session for destination d (NULL: no memory)
 *	eng_session_start(s, job)     resolve, connect, EHLO, STARTTLS, ... deliver job
 *	eng_session_take_job(s, job)  an idle session starts its next transaction
 *	eng_session_complete(s, op, res)  a ring completion for one of s's ops
 *	eng_session_timeout(s)        s's deadline passed
 *	eng_session_quit(s)           say QUIT and close (idle session, stop)
 *
 * Forced TLS: nothing of a message is written before the STARTTLS
 * handshake has completed and the peer is verified under its domain's
 * policy.  No STARTTLS, a refused STARTTLS, a failed handshake or
 * verification, or bytes that arrive after the STARTTLS 220 and before the
 * handshake (an injection attempt) make the host fail: the next MX host is
 * tried, and when none is left the job's recipients are deferred with a
 * 4.7.x status naming the host and the reason.
 *
 * Outcomes are data: each recipient of the job gets an eng_outcome_t
 * (SENT/DEFERRED/BOUNCED, enhanced status, reply or reason text).  A session
 * is never freed inside its own processing: entry points count themselves
 * in `busy`, teardown cancels in-flight operations, and the free happens
 * when both counts reach zero (session_settle).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/metrics.h"
#include "engine/worker_int.h"

#define QUIT_TIMEOUT_S	5		/* QUIT is a courtesy: don't wait long */
#define BODY_CHUNK	16384		/* plaintext per TLS write while streaming */
#define OUT_HIGH_WATER	(256 * 1024)	/* stop encoding while this much waits to be sent */

/* What a teardown leads to once in-flight operations have drained. */
enum after { AFTER_NONE, AFTER_NEXT_HOST, AFTER_FREE };

/* Per-state names and what we were doing, for logs and failure texts. */
static const struct {
	const char *name;
	const char *doing;
} state_tab[SMTP_NSTATES] = {
	[SMTP_RESOLVING] = { "resolving", "looking up the destination" },
	[SMTP_CONNECTING] = { "connecting", "connecting" },
	[SMTP_GREETING] = { "greeting", "waiting for the greeting" },
	[SMTP_EHLO] = { "ehlo", "sending EHLO" },
	[SMTP_STARTTLS] = { "starttls", "sending STARTTLS" },
	[SMTP_HANDSHAKE] = { "handshake", "doing the TLS handshake" },
	[SMTP_EHLO_TLS] = { "ehlo_tls", "sending EHLO after STARTTLS" },
	[SMTP_TRANSACTION] = { "transaction", "in a mail transaction" },
	[SMTP_IDLE] = { "idle", "idle" },
	[SMTP_QUIT] = { "quit", "sending QUIT" },
	[SMTP_DONE] = { "done", "closing" },
};

static const char *cmd_doing[] = {
	[SMTP_CMD_RSET] = "sending RSET",
	[SMTP_CMD_MAIL] = "sending MAIL FROM",
	[SMTP_CMD_RCPT] = "sending RCPT TO",
	[SMTP_CMD_DATA] = "sending DATA",
	[SMTP_CMD_DOT] = "sending the end of data",
};

struct session_extra {
	enum after after;
	int	busy;
	int	metered;	/* counted in sealpost_connections_active */
};

static void enter_state(eng_session_t *s, enum smtp_state st);
static const char *doing(const eng_session_t *s);
static void arm_timer(eng_session_t *s);
static void dns_done(void *arg, const dns_result_t *r);
static void connect_next(eng_session_t *s);
static void host_fail(eng_session_t *s, const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void session_lost(eng_session_t *s, const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void teardown(eng_session_t *s, enum after after);
static void session_settle(eng_session_t *s);
static void session_free(eng_session_t *s);
static void idle_unlink(eng_session_t *s);
static void arm_recv(eng_session_t *s);
static void kick_send(eng_session_t *s);
static void out_append(eng_session_t *s, const char *p, size_t n);
static void out_write(eng_session_t *s, const char *p, size_t n);
static void out_pull_tls(eng_session_t *s);
static void smtp_printf(eng_session_t *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void on_recv(eng_session_t *s, int res);
static void on_send(eng_session_t *s, int res);
static void on_connect(eng_session_t *s, int res);
static void feed_plain(eng_session_t *s, const char *p, size_t n);
static void process_lines(eng_session_t *s);
static void on_reply(eng_session_t *s, const smtp_reply_t *r);
static void start_tls(eng_session_t *s);
static void do_handshake(eng_session_t *s);
static void tx_begin(eng_session_t *s);
static void tx_send_more(eng_session_t *s);
static void tx_reply(eng_session_t *s, const smtp_reply_t *r);
static void tx_done(eng_session_t *s);
static void body_fill(eng_session_t *s);
static void job_outcome_reply(eng_session_t *s, size_t j, const smtp_reply_t *r);
static void job_outcome(eng_session_t *s, size_t j, enum q_rcpt_status st,
			const char *dsn, const char *text);
static void job_fail_rest(eng_session_t *s, enum q_rcpt_status st, const char *dsn,
			  const char *text);
static void job_hand_back(eng_session_t *s);
static void next_job_or_idle(eng_session_t *s);

/* The teardown bookkeeping lives beside the session, not in the shared struct. */
typedef struct session_box {
	eng_session_t s;
	struct session_extra x;
} session_box_t;

#define X(s) (&((session_box_t *)(void *)(s))->x)

/* smtp_state_name - the state's name for logs */
const char *
smtp_state_name(enum smtp_state st)
{
	return st < SMTP_NSTATES ? state_tab[st].name : "?";
}

/* eng_session_new - a fresh session for destination d */
eng_session_t *
eng_session_new(eng_worker_t *w, eng_dest_t *d)
{
	session_box_t *b = calloc(1, sizeof(*b));
	eng_session_t *s;

	if (b == NULL)
		return NULL;
	s = &b->s;
	s->w = w;
	s->dest = d;
	s->id = ((unsigned long)w->index << 32) | ++w->next_session_id;
	s->fd = -1;
	s->op_connect.kind = ENG_OP_CONNECT;
	s->op_recv.kind = ENG_OP_RECV;
	s->op_send.kind = ENG_OP_SEND;
	s->op_connect.s = s->op_recv.s = s->op_send.s = s;
	s->state = SMTP_RESOLVING;
	w->nsessions++;
	d->nsessions++;
	return s;
}

/* eng_session_start - take the first job: look up where to go */
void
eng_session_start(eng_session_t *s, eng_job_t *job)
{
	eng_worker_t *w = s->w;
	const sp_route_t *route;

	X(s)->busy++;
	s->job = job;
	s->gen = eng_tls_acquire(w->sh);
	s->pol = tls_policy_lookup(s->gen->policy, s->dest->domain, &s->gen->dflt);
	enter_state(s, SMTP_RESOLVING);
	route = sp_route_find(w->cfg, s->dest->domain);
	if (route)
		dns_resolve_host(w->dns, route->host, route->port, dns_done, s);
	else
		dns_resolve_mx(w->dns, s->dest->domain, w->cfg->smtp_port, dns_done, s);
	X(s)->busy--;
	session_settle(s);
}

/* eng_session_take_job - an idle session starts its next transaction */
void
eng_session_take_job(eng_session_t *s, eng_job_t *job)
{
	X(s)->busy++;
	s->job = job;
	tx_begin(s);
	X(s)->busy--;
	session_settle(s);
}

/* eng_session_quit - polite close of an idle session */
void
eng_session_quit(eng_session_t *s)
{
	X(s)->busy++;
	idle_unlink(s);
	if (s->state == SMTP_IDLE) {
		enter_state(s, SMTP_QUIT);
		smtp_printf(s, "QUIT\r\n");
		arm_timer(s);
	} else if (s->state != SMTP_DONE && s->job == NULL) {
		teardown(s, AFTER_FREE);
	}
	X(s)->busy--;
	session_settle(s);
}

/* eng_session_complete - one ring completion for this session */
void
eng_session_complete(eng_session_t *s, eng_op_t *op, int res)
{
	X(s)->busy++;
	if (X(s)->after == AFTER_NONE) {
		switch (op->kind) {
		case ENG_OP_CONNECT:
			on_connect(s, res);
			break;
		case ENG_OP_RECV:
			on_recv(s, res);
			break;
		case ENG_OP_SEND:
			on_send(s, res);
			break;
		}
	}
	X(s)->busy--;
	session_settle(s);
}

/* eng_session_timeout - the deadline of the current state passed */
void
eng_session_timeout(eng_session_t *s)
{
	X(s)->busy++;
	switch (s->state) {
	case SMTP_IDLE:
		eng_session_quit(s);
		break;
	case SMTP_QUIT:
		teardown(s, AFTER_FREE);
		break;
	case SMTP_CONNECTING:
	case SMTP_GREETING:
	case SMTP_EHLO:
	case SMTP_STARTTLS:
	case SMTP_HANDSHAKE:
	case SMTP_EHLO_TLS:
		host_fail(s, s->state == SMTP_HANDSHAKE ? "4.7.5" : "4.4.2",
		    "timeout %s with %s", doing(s), s->relay);
		break;
	case SMTP_TRANSACTION:
		session_lost(s, "4.4.2", "timeout %s to %s", doing(s), s->relay);
		break;
	default:
		break;
	}
	X(s)->busy--;
	session_settle(s);
}

/* enter_state - the one place states change; traced at debug level */
static void
enter_state(eng_session_t *s, enum smtp_state st)
{
	sp_logline_t l;

	if (sp_log_begin(&l, SP_LOG_DEBUG, "smtp_state")) {
		sp_log_int(&l, "session", (long long)s->id);
		sp_log_str(&l, "from", smtp_state_name(s->state));
		sp_log_str(&l, "to", smtp_state_name(st));
		sp_log_str(&l, "relay", s->relay);
		sp_log_end(&l);
	}
	s->state = st;
}

/* doing - what the session is busy with, for timeout and loss texts */
static const char *
doing(const eng_session_t *s)
{
	if (s->state == SMTP_TRANSACTION) {
		if (s->in_body)
			return "sending the message body";
		if (s->nacked < s->ncmds)
			return cmd_doing[s->cmds[s->nacked]];
	}
	return state_tab[s->state].doing;
}

/* arm_timer - the deadline for what the session now waits for */
static void
arm_timer(eng_session_t *s)
{
	const sp_config_t *c = s->w->cfg;
	unsigned secs;

	switch (s->state) {
	case SMTP_CONNECTING:
		secs = c->connect_timeout;
		break;
	case SMTP_GREETING:
	case SMTP_EHLO:
	case SMTP_STARTTLS:
	case SMTP_HANDSHAKE:
	case SMTP_EHLO_TLS:
		secs = c->greeting_timeout;
		break;
	case SMTP_TRANSACTION:
		if (s->in_body)
			secs = c->data_block_timeout;
		else if (s->nacked >= s->ncmds)
			secs = c->mail_timeout;
		else if (s->cmds[s->nacked] == SMTP_CMD_DATA)
			secs = c->data_init_timeout;
		else if (s->cmds[s->nacked] == SMTP_CMD_DOT)
			secs = c->data_done_timeout;
		else
			secs = c->mail_timeout;
		break;
	case SMTP_IDLE:
		secs = c->idle_timeout;
		break;
	case SMTP_QUIT:
		secs = QUIT_TIMEOUT_S;
		break;
	default:
		eng_timer_set(s, 0);
		return;
	}
	eng_timer_set(s, eng_now_ms() + (int64_t)secs * 1000);
}

/* dns_done - where to connect is known (or why not) */
static void
dns_done(void *arg, const dns_result_t *r)
{
	eng_session_t *s = arg;

	X(s)->busy++;
	if (r->status != DNS_OK) {
		job_fail_rest(s, r->status == DNS_PERMFAIL ? Q_RCPT_BOUNCED : Q_RCPT_DEFERRED,
		    r->dsn[0] ? r->dsn : "4.4.3", r->why);
		s->job->attempted = 1;
		eng_job_finish(s->w, s->job);
		s->job = NULL;
		teardown(s, AFTER_FREE);
	} else {
		s->dns = *r;
		s->host_i = 0;
		s->addr_i = 0;
		connect_next(s);
	}
	X(s)->busy--;
	session_settle(s);
}

/* connect_next - open a socket to the next address, or give up */
static void
connect_next(eng_session_t *s)
{
	const sp_config_t *c = s->w->cfg;
	struct io_uring_sqe *sqe;
	const dns_host_t *h;
	const struct sockaddr *sa;
	char ip[INET6_ADDRSTRLEN] = "?";
	uint16_t port;
	int one = 1;

	while (s->host_i < s->dns.nhosts && s->addr_i >= s->dns.hosts[s->host_i].naddr) {
		s->host_i++;
		s->addr_i = 0;
	}
	if (s->host_i >= s->dns.nhosts) {
		/* Every host failed: the job waits for a later attempt. */
		job_fail_rest(s, Q_RCPT_DEFERRED, s->last_dsn[0] ? s->last_dsn : "4.4.1",
		    s->last_why[0] ? s->last_why : "no usable mail host");
		s->job->attempted = 1;
		s->job->conn_failed = 1;
		eng_job_finish(s->w, s->job);
		s->job = NULL;
		teardown(s, AFTER_FREE);
		return;
	}
	h = &s->dns.hosts[s->host_i];
	sa = (const struct sockaddr *)&h->addr[s->addr_i];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(s->host, sizeof(s->host), "%s", h->name);
	snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", h->name, ip, port);
	s->addr_i++;

	s->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		host_fail(s, "4.4.1", "socket for %s: %s", s->relay, strerror(errno));
		return;
	}
	(void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c->bind_address[0]) {
		struct sockaddr_storage b;
		socklen_t blen = 0;

		memset(&b, 0, sizeof(b));
		if (sa->sa_family == AF_INET &&
		    inet_pton(AF_INET, c->bind_address, &((struct sockaddr_in *)&b)->sin_addr) == 1) {
			b.ss_family = AF_INET;
			blen = sizeof(struct sockaddr_in);
		} else if (sa->sa_family == AF_INET6 &&
		    inet_pton(AF_INET6, c->bind_address, &((struct sockaddr_in6 *)&b)->sin6_addr) == 1) {
			b.ss_family = AF_INET6;
			blen = sizeof(struct sockaddr_in6);
		}
		if (blen && bind(s->fd, (struct sockaddr *)&b, blen) < 0) {
			host_fail(s, "4.4.1", "bind to %s for %s: %s", c->bind_address,
			    s->relay, strerror(errno));
			return;
		}
	}
	{
		sp_logline_t l;

		/* Which MX and address, and why this one: its place in the
		 * RFC 5321 order (preference, then shuffled equals). */
		if (sp_log_begin(&l, SP_LOG_INFO, "connect")) {
			sp_log_int(&l, "session", (long long)s->id);
			sp_log_str(&l, "domain", s->dest->domain);
			sp_log_str(&l, "relay", s->relay);
			sp_log_int(&l, "mx_pref", h->pref);
			sp_log_int(&l, "host", (long long)s->host_i + 1);
			sp_log_int(&l, "hosts", (long long)s->dns.nhosts);
			sp_log_int(&l, "addr", (long long)s->addr_i);
			sp_log_int(&l, "addrs", (long long)h->naddr);
			sp_log_str(&l, "route", sp_route_find(s->w->cfg, s->dest->domain) ? "yes" : "no");
			sp_log_end(&l);
		}
	}
	enter_state(s, SMTP_CONNECTING);
	sqe = eng_get_sqe(s->w);
	io_uring_prep_connect(sqe, s->fd, sa, h->addrlen[s->addr_i - 1]);
	io_uring_sqe_set_data(sqe, &s->op_connect);
	s->op_connect.inflight = 1;
	s->inflight++;
	arm_timer(s);
}

/* on_connect - TCP is up (or not) */
static void
on_connect(eng_session_t *s, int res)
{
	if (res < 0) {
		host_fail(s, "4.4.1", "connect to %s: %s", s->relay, strerror(-res));
		return;
	}
	eng_metrics_connections(s->dest->domain, 1);
	X(s)->metered = 1;
	smtp_reply_init(&s->rp);
	s->plen = 0;
	memset(&s->caps, 0, sizeof(s->caps));
	enter_state(s, SMTP_GREETING);
	arm_recv(s);
	arm_timer(s);
}

/* host_fail - this host cannot be used: close it, then try the next one */
static void
host_fail(eng_session_t *s, const char *dsn, const char *fmt, ...)
{
	sp_logline_t l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->last_why, sizeof(s->last_why), fmt, ap);
	va_end(ap);
	snprintf(s->last_dsn, sizeof(s->last_dsn), "%s", dsn);
	if (sp_log_begin(&l, SP_LOG_WARN, "host_skipped")) {
		sp_log_int(&l, "session", (long long)s->id);
		sp_log_str(&l, "relay", s->relay);
		sp_log_str(&l, "state", smtp_state_name(s->state));
		sp_log_str(&l, "dsn", dsn);
		sp_log_str(&l, "reason", s->last_why);
		sp_log_end(&l);
	}
	teardown(s, AFTER_NEXT_HOST);
}

/* session_lost - the connection broke during a transaction: defer what is open */
static void
session_lost(eng_session_t *s, const char *dsn, const char *fmt, ...)
{
	char why[ENG_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s->job) {
		job_fail_rest(s, Q_RCPT_DEFERRED, dsn, why);
		s->job->attempted = 1;
		eng_job_finish(s->w, s->job);
		s->job = NULL;
	}
	teardown(s, AFTER_FREE);
}

/* teardown - stop the connection; the follow-up runs once ops drained */
static void
teardown(eng_session_t *s, enum after after)
{
	eng_op_t *ops[] = { &s->op_connect, &s->op_recv, &s->op_send };

	if (X(s)->after == AFTER_FREE)
		return;
	X(s)->after = after;
	eng_timer_set(s, 0);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (ops[i]->inflight) {
			struct io_uring_sqe *sqe = eng_get_sqe(s->w);

			io_uring_prep_cancel(sqe, ops[i], 0);
			io_uring_sqe_set_data64(sqe, ENG_UD_IGNORE);
		}
	}
	if (s->fd >= 0)
		shutdown(s->fd, SHUT_RDWR);	/* makes a pending recv complete at once */
}

/* session_settle - run the teardown follow-up when nothing is in flight */
static void
session_settle(eng_session_t *s)
{
	enum after after = X(s)->after;

	if (after == AFTER_NONE || s->inflight > 0 || X(s)->busy > 0)
		return;
	if (s->fd >= 0) {
		close(s->fd);
		if (X(s)->metered) {
			eng_metrics_connections(s->dest->domain, -1);
			X(s)->metered = 0;
		}
		s->fd = -1;
	}
	if (s->tls) {
		tls_conn_free(s->tls);
		s->tls = NULL;
	}
	s->tls_on = 0;
	s->eof = 0;
	s->olen = s->slen = s->soff = 0;
	s->plen = 0;
	s->in_body = 0;
	X(s)->after = AFTER_NONE;
	if (after == AFTER_NEXT_HOST && s->job) {
		X(s)->busy++;
		connect_next(s);
		X(s)->busy--;
		session_settle(s);
		return;
	}
	if (s->job)
		job_hand_back(s);
	session_free(s);
}

/* idle_unlink - take the session off its destination's idle list */
static void
idle_unlink(eng_session_t *s)
{
	for (eng_session_t **pp = &s->dest->idle; *pp; pp = &(*pp)->next_idle)
		if (*pp == s) {
			*pp = s->next_idle;
			s->next_idle = NULL;
			return;
		}
}

/* session_free - release the session and let its destination go on */
static void
session_free(eng_session_t *s)
{
	eng_worker_t *w = s->w;
	eng_dest_t *d = s->dest;

	enter_state(s, SMTP_DONE);
	idle_unlink(s);
	eng_timer_set(s, 0);
	eng_tls_release(s->gen);
	free(s->obuf);
	free(s->sbuf);
	free((session_box_t *)(void *)s);
	w->nsessions--;
	d->nsessions--;
	eng_dest_schedule(w, d);
	eng_dest_schedule_starved(w);
}

/* arm_recv - keep one recv in flight while connected */
static void
arm_recv(eng_session_t *s)
{
	struct io_uring_sqe *sqe;

	if (s->op_recv.inflight || s->eof || X(s)->after != AFTER_NONE)
		return;
	sqe = eng_get_sqe(s->w);
	io_uring_prep_recv(sqe, s->fd, s->rbuf, sizeof(s->rbuf), 0);
	io_uring_sqe_set_data(sqe, &s->op_recv);
	s->op_recv.inflight = 1;
	s->inflight++;
}

/* kick_send - start sending what waits, if no send is in flight */
static void
kick_send(eng_session_t *s)
{
	struct io_uring_sqe *sqe;
	char *t;
	size_t tc;

	if (s->op_send.inflight || X(s)->after != AFTER_NONE || s->fd < 0)
		return;
	if (s->soff >= s->slen) {
		if (s->olen == 0)
			return;
		/* Swap buffers: obuf keeps collecting while sbuf is on the wire. */
		t = s->sbuf, s->sbuf = s->obuf, s->obuf = t;
		tc = s->scap, s->scap = s->ocap, s->ocap = tc;
		s->slen = s->olen;
		s->soff = 0;
		s->olen = 0;
	}
	sqe = eng_get_sqe(s->w);
	io_uring_prep_send(sqe, s->fd, s->sbuf + s->soff, s->slen - s->soff, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &s->op_send);
	s->op_send.inflight = 1;
	s->inflight++;
}

/* out_append - queue raw bytes for the socket */
static void
out_append(eng_session_t *s, const char *p, size_t n)
{
	if (s->olen + n > s->ocap) {
		size_t cap = s->ocap ? s->ocap : 4096;
		char *b;

		while (cap < s->olen + n)
			cap *= 2;
		if ((b = realloc(s->obuf, cap)) == NULL)
			abort();	/* bounded by OUT_HIGH_WATER + one chunk */
		s->obuf = b;
		s->ocap = cap;
	}
	memcpy(s->obuf + s->olen, p, n);
	s->olen += n;
}

/* out_pull_tls - move the TLS layer's ciphertext into the output buffer */
static void
out_pull_tls(eng_session_t *s)
{
	const void *p;
	size_t n;

	while (s->tls && (n = tls_conn_output(s->tls, &p)) > 0) {
		out_append(s, p, n);
		tls_conn_output_done(s->tls, n);
	}
}

/* out_write - plaintext SMTP bytes: through TLS once it is on */
static void
out_write(eng_session_t *s, const char *p, size_t n)
{
	if (!s->tls_on) {
		out_append(s, p, n);
		return;
	}
	while (n > 0) {
		size_t put = 0;

		if (tls_conn_write(s->tls, p, n, &put) != SP_OK) {
			out_pull_tls(s);
			session_lost(s, "4.4.2", "TLS write to %s failed: %s", s->relay,
			    tls_conn_error(s->tls));
			return;
		}
		out_pull_tls(s);
		if (put == 0) {
			session_lost(s, "4.4.2", "TLS layer to %s accepts no data", s->relay);
			return;
		}
		p += put;
		n -= put;
	}
}

/* smtp_printf - format one SMTP command and queue it */
static void
smtp_printf(eng_session_t *s, const char *fmt, ...)
{
	char buf[2 * Q_MAX_LINE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		abort();	/* envelope lines are bounded by the spool parser */
	out_write(s, buf, (size_t)n);
	kick_send(s);
}

/* on_send - a send finished (maybe partly) */
static void
on_send(eng_session_t *s, int res)
{
	if (res < 0) {
		if (s->job && s->state == SMTP_TRANSACTION)
			session_lost(s, "4.4.2", "lost connection with %s while %s: %s",
			    s->relay, doing(s), strerror(-res));
		else
			host_fail(s, "4.4.2", "lost connection with %s while %s: %s",
			    s->relay, doing(s), strerror(-res));
		return;
	}
	s->soff += (size_t)res;
	if (s->in_body) {
		arm_timer(s);	/* data block timeout: progress resets it */
		body_fill(s);
	}
	kick_send(s);
}

/* on_recv - bytes (or the end) arrived */
static void
on_recv(eng_session_t *s, int res)
{
	if (res <= 0) {
		const char *why = res == 0 ? "connection closed" : strerror(-res);

		s->eof = 1;
		if (s->state == SMTP_HANDSHAKE && s->tls) {
			/* Let the TLS layer see the end: the handshake fails with
			 * its own reason, and a resumption attempt is retried. */
			tls_conn_input_eof(s->tls);
			do_handshake(s);
			if (X(s)->after == AFTER_NONE)
				host_fail(s, "4.7.5", "lost connection with %s while %s: %s",
				    s->relay, doing(s), why);
		} else if (s->state == SMTP_IDLE || s->state == SMTP_QUIT) {
			teardown(s, AFTER_FREE);
		} else if (s->state == SMTP_TRANSACTION) {
			session_lost(s, "4.4.2", "lost connection with %s while %s: %s",
			    s->relay, doing(s), why);
		} else {
			host_fail(s, s->state == SMTP_HANDSHAKE ? "4.7.5" : "4.4.2",
			    "lost connection with %s while %s: %s", s->relay, doing(s), why);
		}
		return;
	}
	if (s->state == SMTP_HANDSHAKE) {
		tls_conn_input(s->tls, s->rbuf, (size_t)res);
		do_handshake(s);
	} else if (s->tls_on) {
		tls_conn_input(s->tls, s->rbuf, (size_t)res);
		for (;;) {
			size_t got = 0;
			int rc;

			if (s->plen >= sizeof(s->pbuf)) {
				session_lost(s, "4.5.0", "reply line from %s too long", s->relay);
				return;
			}
			rc = tls_conn_read(s->tls, s->pbuf + s->plen, sizeof(s->pbuf) - s->plen, &got);
			out_pull_tls(s);
			if (rc == SP_AGAIN)
				break;
			if (rc == SP_DONE || rc == SP_ERROR) {
				s->eof = rc == SP_DONE;
				if (s->state == SMTP_IDLE || s->state == SMTP_QUIT)
					teardown(s, AFTER_FREE);
				else if (s->state == SMTP_TRANSACTION)
					session_lost(s, "4.4.2", "lost connection with %s while %s: %s",
					    s->relay, doing(s), rc == SP_DONE ? "TLS closed" :
					    tls_conn_error(s->tls));
				else
					host_fail(s, "4.7.5", "TLS error with %s while %s: %s",
					    s->relay, doing(s), rc == SP_DONE ? "TLS closed" :
					    tls_conn_error(s->tls));
				return;
			}
			s->plen += got;
			process_lines(s);
			if (X(s)->after != AFTER_NONE)
				return;
		}
		kick_send(s);
	} else {
		feed_plain(s, s->rbuf, (size_t)res);
	}
	if (X(s)->after == AFTER_NONE)
		arm_recv(s);
}

/* feed_plain - pre-TLS bytes into the line buffer, reply by reply */
static void
feed_plain(eng_session_t *s, const char *p, size_t n)
{
	while (n > 0 && X(s)->after == AFTER_NONE) {
		size_t room = sizeof(s->pbuf) - s->plen, take = n < room ? n : room;

		if (s->state == SMTP_HANDSHAKE) {
			/* Bytes after the STARTTLS 220, before our ClientHello was
			 * answered: someone is injecting plaintext.  Abort. */
			eng_metrics_tls_failure("injection");
			host_fail(s, "4.7.0", "%zu bytes of plaintext from %s after STARTTLS "
			    "reply (possible injection); TLS aborted", n, s->relay);
			return;
		}
		if (take == 0) {
			host_fail(s, "4.5.0", "reply line from %s too long", s->relay);
			return;
		}
		memcpy(s->pbuf + s->plen, p, take);
		s->plen += take;
		p += take;
		n -= take;
		process_lines(s);
	}
}

/* process_lines - parse complete lines; act on complete replies */
static void
process_lines(eng_session_t *s)
{
	size_t off = 0;

	while (X(s)->after == AFTER_NONE) {
		size_t linelen, used;
		int rc = smtp_next_line(s->pbuf + off, s->plen - off, &linelen, &used);

		if (rc == SP_AGAIN)
			break;
		if (rc == SP_ERROR) {
			if (s->state == SMTP_TRANSACTION)
				session_lost(s, "4.5.0", "reply line from %s too long", s->relay);
			else
				host_fail(s, "4.5.0", "reply line from %s too long", s->relay);
			return;
		}
		rc = smtp_reply_feed(&s->rp, s->pbuf + off, linelen);
		off += used;
		if (rc == SP_ERROR) {
			if (s->state == SMTP_TRANSACTION)
				session_lost(s, "4.5.0", "malformed reply from %s: %s", s->relay,
				    s->rp.error);
			else
				host_fail(s, "4.5.0", "malformed reply from %s: %s", s->relay,
				    s->rp.error);
			return;
		}
		if (rc == SP_OK) {
			on_reply(s, &s->rp.reply);
			if (s->state == SMTP_HANDSHAKE && off < s->plen) {
				eng_metrics_tls_failure("injection");
				host_fail(s, "4.7.0", "%zu bytes of plaintext from %s after "
				    "STARTTLS reply (possible injection); TLS aborted",
				    s->plen - off, s->relay);
				return;
			}
		}
	}
	if (off > 0 && X(s)->after == AFTER_NONE) {
		memmove(s->pbuf, s->pbuf + off, s->plen - off);
		s->plen -= off;
	}
}

/* reply_text - "550 5.1.1 text" on one line, for outcomes and logs */
static void
reply_text(const smtp_reply_t *r, char *buf, size_t len)
{
	/* Cut to the caller's buffer: a reply is kept to ENG_TEXT_MAX. */
	if (snprintf(buf, len, "%d %s%s%s", r->code, r->esc, r->esc[0] ? " " : "", r->text) < 0)
		buf[0] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* on_reply - one complete reply, interpreted by state */
static void
on_reply(eng_session_t *s, const smtp_reply_t *r)
{
	const sp_config_t *c = s->w->cfg;
	char txt[ENG_TEXT_MAX];

	switch (s->state) {
	case SMTP_GREETING:
		if (r->code / 100 != 2) {
			reply_text(r, txt, sizeof(txt));
			host_fail(s, r->code / 100 == 5 ? "5.0.0" : "4.0.0",
			    "%s greeted us with: %s", s->relay, txt);
			return;
		}
		enter_state(s, SMTP_EHLO);
		smtp_printf(s, "EHLO %s\r\n", c->helo_name);
		arm_timer(s);
		break;
	case SMTP_EHLO:
		if (r->code / 100 != 2) {
			reply_text(r, txt, sizeof(txt));
			host_fail(s, "4.7.4", "TLS is required, but %s refused EHLO: %s",
			    s->relay, txt);
			return;
		}
		smtp_caps_parse(r, &s->caps);
		if (!(s->caps.flags & SMTP_CAP_STARTTLS)) {
			eng_metrics_tls_failure("no_starttls");
			host_fail(s, "4.7.4", "TLS is required, but was not offered by %s",
			    s->relay);
			return;
		}
		enter_state(s, SMTP_STARTTLS);
		smtp_printf(s, "STARTTLS\r\n");
		arm_timer(s);
		break;
	case SMTP_STARTTLS:
		if (r->code != 220) {
			eng_metrics_tls_failure("starttls_refused");
			reply_text(r, txt, sizeof(txt));
			host_fail(s, "4.7.4", "TLS is required, but %s refused STARTTLS: %s",
			    s->relay, txt);
			return;
		}
		start_tls(s);
		break;
	case SMTP_EHLO_TLS:
		if (r->code / 100 != 2) {
			reply_text(r, txt, sizeof(txt));
			host_fail(s, "4.5.0", "%s refused EHLO after STARTTLS: %s", s->relay, txt);
			return;
		}
		/* Pre-TLS capabilities are discarded: only these count. */
		memset(&s->caps, 0, sizeof(s->caps));
		smtp_caps_parse(r, &s->caps);
		tx_begin(s);
		break;
	case SMTP_TRANSACTION:
		tx_reply(s, r);
		break;
	case SMTP_QUIT:
		teardown(s, AFTER_FREE);
		break;
	case SMTP_IDLE:
	default:
		/* Unsolicited (a 421 before the server drops us): close. */
		teardown(s, AFTER_FREE);
		break;
	}
}

/* start_tls - STARTTLS accepted: begin the handshake */
static void
start_tls(eng_session_t *s)
{
	uint16_t port = 25;
	const dns_host_t *h = &s->dns.hosts[s->host_i];
	const struct sockaddr *sa = (const void *)&h->addr[s->addr_i - 1];

	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	else
		port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	s->tls = tls_conn_new_client(s->gen->ctx, s->pol, s->host, port, s->dest->domain);
	if (s->tls == NULL) {
		host_fail(s, "4.7.5", "cannot set up TLS for %s (out of memory)", s->relay);
		return;
	}
	enter_state(s, SMTP_HANDSHAKE);
	arm_timer(s);
	do_handshake(s);
}

/* do_handshake - drive the TLS handshake one step */
static void
do_handshake(eng_session_t *s)
{
	int rc = tls_conn_handshake(s->tls);

	out_pull_tls(s);
	if (rc == SP_AGAIN) {
		kick_send(s);
		return;
	}
	if (rc != SP_OK) {
		/* tls/ words every verification failure "certificate ..." */
		eng_metrics_tls_failure(strncmp(tls_conn_error(s->tls), "certificate", 11) == 0 ?
		    "verify" : "handshake");
		kick_send(s);	/* let the alert go out; teardown cancels if needed */
		if (tls_conn_offered_session(s->tls) && !s->resume_retried) {
			/* A resumption the server would not take (restarted,
			 * rotated ticket keys): tls/ dropped the cached session;
			 * try the same address once more with a full handshake. */
			s->resume_retried = 1;
			s->addr_i--;
			host_fail(s, "4.7.5", "TLS handshake with %s failed offering a cached "
			    "session (%s); retrying without it", s->relay, tls_conn_error(s->tls));
			return;
		}
		host_fail(s, "4.7.5", "TLS handshake with %s failed: %s", s->relay,
		    tls_conn_error(s->tls));
		return;
	}
	s->tls_on = 1;
	{
		tls_info_t ti;

		tls_conn_info(s->tls, &ti);
		eng_metrics_handshake(ti.resumed);
	}
	smtp_reply_init(&s->rp);
	enter_state(s, SMTP_EHLO_TLS);
	smtp_printf(s, "EHLO %s\r\n", s->w->cfg->helo_name);
	arm_timer(s);
}

/* tx_begin - start the job's transaction (RSET first on a reused session) */
static void
tx_begin(eng_session_t *s)
{
	eng_job_t *job = s->job;
	const q_msg_t *m = job->msg;
	uint64_t size = m->len - m->body_off;

	enter_state(s, SMTP_TRANSACTION);
	job->attempted = 1;
	if (s->caps.size_limit && size > s->caps.size_limit) {
		char why[ENG_TEXT_MAX];

		snprintf(why, sizeof(why), "message size %llu exceeds the size limit %llu of %s",
		    (unsigned long long)size, (unsigned long long)s->caps.size_limit, s->relay);
		job_fail_rest(s, Q_RCPT_BOUNCED, "5.3.4", why);
		s->ncmds = s->nsent = s->nacked = 0;
		tx_done(s);
		return;
	}
	s->ncmds = s->nsent = s->nacked = s->rcpt_next = s->rcpt_sent = 0;
	s->mail_ok = 0;
	s->accepted = 0;
	s->in_body = 0;
	if (s->msgs_done > 0)
		s->cmds[s->ncmds++] = SMTP_CMD_RSET;
	s->cmds[s->ncmds++] = SMTP_CMD_MAIL;
	for (size_t j = 0; j < job->nrcpt; j++)
		s->cmds[s->ncmds++] = SMTP_CMD_RCPT;
	s->cmds[s->ncmds++] = SMTP_CMD_DATA;
	tx_send_more(s);
	arm_timer(s);
}

/* tx_send_one - write command number nsent */
static void
tx_send_one(eng_session_t *s)
{
	eng_job_t *job = s->job;
	const q_msg_t *m = job->msg;
	int dsn = (s->caps.flags & SMTP_CAP_DSN) != 0;
	char size[40] = "", ret[16] = "", envid[Q_MAX_LINE] = "", body[24] = "";

	switch (s->cmds[s->nsent++]) {
	case SMTP_CMD_RSET:
		smtp_printf(s, "RSET\r\n");
		break;
	case SMTP_CMD_MAIL:
		if (s->caps.flags & SMTP_CAP_SIZE)
			snprintf(size, sizeof(size), " SIZE=%zu", m->len - m->body_off);
		if ((s->caps.flags & SMTP_CAP_8BITMIME) && job->body_8bit)
			snprintf(body, sizeof(body), " BODY=8BITMIME");
		if (dsn && m->ret != Q_RET_NONE)
			snprintf(ret, sizeof(ret), " RET=%s", m->ret == Q_RET_FULL ? "FULL" : "HDRS");
		if (dsn && m->envid)
			snprintf(envid, sizeof(envid), " ENVID=%s", m->envid);
		smtp_printf(s, "MAIL FROM:<%s>%s%s%s%s\r\n", m->sender, size, body, ret, envid);
		break;
	case SMTP_CMD_RCPT: {
		const q_rcpt_t *r = &m->rcpt[job->rcpt[s->rcpt_sent++]];
		char notify[48] = "", orcpt[Q_MAX_LINE] = "";

		if (dsn && r->notify) {
			if (r->notify & Q_NOTIFY_NEVER)
				snprintf(notify, sizeof(notify), " NOTIFY=NEVER");
			else
				snprintf(notify, sizeof(notify), " NOTIFY=%s%s%s",
				    r->notify & Q_NOTIFY_SUCCESS ? "SUCCESS," : "",
				    r->notify & Q_NOTIFY_FAILURE ? "FAILURE," : "",
				    r->notify & Q_NOTIFY_DELAY ? "DELAY," : "");
			notify[strlen(notify) - 1] = notify[strlen(notify) - 1] == ',' ?
			    '\0' : notify[strlen(notify) - 1];
		}
		if (dsn && r->orcpt)
			snprintf(orcpt, sizeof(orcpt), " ORCPT=%s", r->orcpt);
		smtp_printf(s, "RCPT TO:<%s>%s%s\r\n", r->addr, notify, orcpt);
		break;
	}
	case SMTP_CMD_DATA:
		smtp_printf(s, "DATA\r\n");
		break;
	case SMTP_CMD_DOT:
		break;
	}
}

/* tx_send_more - pipelined: everything at once; else one command per reply */
static void
tx_send_more(eng_session_t *s)
{
	if (s->caps.flags & SMTP_CAP_PIPELINING) {
		while (s->nsent < s->ncmds && s->cmds[s->nsent] != SMTP_CMD_DOT &&
		    X(s)->after == AFTER_NONE)
			tx_send_one(s);
	} else if (s->nsent == s->nacked && s->nsent < s->ncmds) {
		tx_send_one(s);
	}
}

/* tx_reply - the reply to the oldest unanswered command of the transaction */
static void
tx_reply(eng_session_t *s, const smtp_reply_t *r)
{
	eng_job_t *job = s->job;
	int pipelined = (s->caps.flags & SMTP_CAP_PIPELINING) != 0;
	char txt[ENG_TEXT_MAX];

	if (job == NULL || s->nacked >= s->nsent) {
		reply_text(r, txt, sizeof(txt));
		session_lost(s, "4.5.0", "unexpected reply from %s: %s", s->relay, txt);
		return;
	}
	switch (s->cmds[s->nacked++]) {
	case SMTP_CMD_RSET:
		if (r->code / 100 != 2) {
			/* A session that cannot reset is unusable; no DATA was
			 * sent, so the job goes back to its destination queue. */
			job->attempted = 0;
			job_hand_back(s);
			teardown(s, AFTER_FREE);
			return;
		}
		break;
	case SMTP_CMD_MAIL:
		s->mail_ok = r->code / 100 == 2;
		if (!s->mail_ok) {
			for (size_t j = 0; j < job->nrcpt; j++)
				job_outcome_reply(s, j, r);
			if (!pipelined) {
				tx_done(s);
				return;
			}
		}
		break;
	case SMTP_CMD_RCPT: {
		size_t j = s->rcpt_next++;

		if (!s->mail_ok)
			break;		/* outcome already set from the MAIL reply */
		if (r->code / 100 == 2)
			s->accepted++;
		else
			job_outcome_reply(s, j, r);
		if (!pipelined && s->rcpt_next == job->nrcpt && s->accepted == 0) {
			tx_done(s);	/* no DATA for nobody; RSET starts the next one */
			return;
		}
		break;
	}
	case SMTP_CMD_DATA:
		if (r->code == 354) {
			s->cmds[s->ncmds++] = SMTP_CMD_DOT;
			s->nsent++;
			smtp_dot_init(&s->dot);
			if (s->accepted == 0 || !s->mail_ok) {
				/* Pipelined and nobody accepted, yet 354: send an
				 * empty message so the server ends the transaction. */
				out_write(s, ".\r\n", 3);
				kick_send(s);
			} else {
				s->in_body = 1;
				s->body_pos = job->msg->body_off;
				body_fill(s);
				kick_send(s);
			}
			arm_timer(s);
			return;
		}
		if (s->mail_ok && s->accepted > 0)
			for (size_t j = 0; j < job->nrcpt; j++)
				job_outcome_reply(s, j, r);	/* only those still open */
		tx_done(s);
		return;
	case SMTP_CMD_DOT:
		if (s->mail_ok && s->accepted > 0)
			for (size_t j = 0; j < job->nrcpt; j++)
				job_outcome_reply(s, j, r);
		tx_done(s);
		return;
	}
	if (X(s)->after == AFTER_NONE) {
		tx_send_more(s);
		arm_timer(s);
	}
}

/* body_fill - encode the message into TLS records while the socket keeps up */
static void
body_fill(eng_session_t *s)
{
	const q_msg_t *m = s->job->msg;
	char chunk[BODY_CHUNK + 8];

	while (s->in_body && s->olen < OUT_HIGH_WATER && X(s)->after == AFTER_NONE) {
		size_t used = 0, n;

		if (s->body_pos >= m->len) {
			n = smtp_dot_finish(&s->dot, chunk, sizeof(chunk));
			s->in_body = 0;
		} else {
			n = smtp_dot_encode(&s->dot, m->data + s->body_pos, m->len - s->body_pos,
			    &used, chunk, BODY_CHUNK);
			s->body_pos += used;
		}
		out_write(s, chunk, n);
	}
	if (!s->in_body)
		arm_timer(s);	/* now waiting for the final reply */
}

/* job_outcome - record one recipient's outcome unless it already has one */
static void
job_outcome(eng_session_t *s, size_t j, enum q_rcpt_status st, const char *dsn,
	    const char *text)
{
	eng_outcome_t *o = &s->job->out[j];

	if (o->status != Q_RCPT_PENDING)
		return;
	o->status = st;
	snprintf(o->dsn, sizeof(o->dsn), "%s", dsn);
	snprintf(o->text, sizeof(o->text), "%s", text);
}

/* job_outcome_reply - outcome from an SMTP reply: 2xx sent, 4xx defer, 5xx bounce */
static void
job_outcome_reply(eng_session_t *s, size_t j, const smtp_reply_t *r)
{
	char txt[ENG_TEXT_MAX];
	enum q_rcpt_status st = r->code / 100 == 2 ? Q_RCPT_SENT :
	    r->code / 100 == 5 ? Q_RCPT_BOUNCED : Q_RCPT_DEFERRED;

	reply_text(r, txt, sizeof(txt));
	job_outcome(s, j, st, smtp_reply_dsn(r), txt);
}

/* job_fail_rest - every recipient without an outcome gets this one */
static void
job_fail_rest(eng_session_t *s, enum q_rcpt_status st, const char *dsn, const char *text)
{
	for (size_t j = 0; j < s->job->nrcpt; j++)
		job_outcome(s, j, st, dsn, text);
	snprintf(s->job->relay, sizeof(s->job->relay), "%s", s->relay);
}

/* job_hand_back - a job this session cannot run goes back to its queue */
static void
job_hand_back(eng_session_t *s)
{
	eng_job_t *job = s->job;
	eng_dest_t *d = s->dest;

	s->job = NULL;
	if (job->attempted) {
		/* Something was already said to a server: let the qmgr decide. */
		job_fail_rest(s, Q_RCPT_DEFERRED, "4.4.2", "session reset failed");
		job->attempted = 1;
		eng_job_finish(s->w, job);
		return;
	}
	job->next = d->qhead;
	d->qhead = job;
	if (d->qtail == NULL)
		d->qtail = job;
}

/* tx_done - the transaction is over: report it, then next job, idle or quit */
static void
tx_done(eng_session_t *s)
{
	eng_job_t *job = s->job;

	job_fail_rest(s, Q_RCPT_DEFERRED, "4.4.2", "no reply for this recipient");
	if (s->tls_on) {
		tls_info_t ti;

		tls_conn_info(s->tls, &ti);
		snprintf(job->tls_version, sizeof(job->tls_version), "%s", ti.version);
		snprintf(job->tls_cipher, sizeof(job->tls_cipher), "%s", ti.cipher);
		snprintf(job->tls_verified, sizeof(job->tls_verified), "%s", ti.verified);
		job->tls_resumed = ti.resumed;
	}
	s->job = NULL;
	s->msgs_done++;
	s->in_body = 0;
	eng_job_finish(s->w, job);
	next_job_or_idle(s);
}

/* next_job_or_idle - reuse the session for the destination's next job */
static void
next_job_or_idle(eng_session_t *s)
{
	eng_worker_t *w = s->w;
	eng_job_t *next;

	if (__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE) ||
	    s->msgs_done >= w->cfg->msgs_per_connection) {
		enter_state(s, SMTP_IDLE);
		eng_session_quit(s);
		return;
	}
	if ((next = eng_dest_pop(s->dest)) != NULL) {
		s->job = next;
		tx_begin(s);
		return;
	}
	if (w->starved != NULL) {
		/* Another destination waits for a connection: give ours up. */
		enter_state(s, SMTP_IDLE);
		eng_session_quit(s);
		return;
	}
	enter_state(s, SMTP_IDLE);
	s->next_idle = s->dest->idle;
	s->dest->idle = s;
	arm_timer(s);
}
