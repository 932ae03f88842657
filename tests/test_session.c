/*
 * test_session.c - the SMTP client state machine, driven by canned replies.
 *
 * A scripted peer thread in the test accepts the worker's connection on
 * loopback and plays a script: for each step it reads one command line
 * (checking its prefix) and answers with canned bytes; a STARTTLS step
 * switches the peer to TLS (tls/ server side over the socket).  The real
 * worker (its io_uring, its resolver, its session) runs one job per test,
 * and the test asserts the per-recipient outcomes a user would see and what
 * the peer received.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/eng_internal.h"
#include "tls/tls.h"

#define ACT_NONE	0
#define ACT_STARTTLS	1	/* after the reply, do the TLS handshake */
#define ACT_BODY	2	/* read the message up to CRLF.CRLF, then reply */
#define ACT_CLOSE	3	/* close after the reply */

typedef struct step {
	const char *expect;	/* prefix of the command line; NULL: none (greeting) */
	const char *reply;
	int	action;
} step_t;

typedef struct peer {
	int	lfd;
	uint16_t port;
	const step_t *steps;
	size_t	nsteps;
	int	conns;		/* connections to accept */
	int	fail_conn;	/* this connection (0-based) dies in the handshake; -1 none */
	int	accepted;
	tls_ctx_t *tctx;
	tls_conn_t *tls;
	int	fd;
	char	in[1 << 16];
	size_t	inlen;
	char	transcript[1 << 17];
	size_t	tlen;
	char	error[256];
	char	body[1 << 16];
	size_t	bodylen;
	pthread_t th;
} peer_t;

static char certdir[] = "/tmp/sealpost-session-XXXXXX";
static sp_config_t cfg;
static eng_shared_t sh;

/* peer_fill - read more plaintext from the client into p->in */
static int
peer_fill(peer_t *p)
{
	char raw[16384];
	ssize_t n;

	for (;;) {
		if (p->tls) {
			size_t got = 0;
			int rc = tls_conn_read(p->tls, p->in + p->inlen, sizeof(p->in) - p->inlen, &got);
			const void *o;
			size_t olen;

			while ((olen = tls_conn_output(p->tls, &o)) > 0) {
				if (write(p->fd, o, olen) < 0)
					return -1;
				tls_conn_output_done(p->tls, olen);
			}
			if (rc == SP_OK) {
				memcpy(p->transcript + p->tlen, p->in + p->inlen,
				    got < sizeof(p->transcript) - p->tlen ? got : 0);
				p->tlen += got < sizeof(p->transcript) - p->tlen ? got : 0;
				p->inlen += got;
				return 0;
			}
			if (rc != SP_AGAIN)
				return -1;
		}
		n = read(p->fd, raw, sizeof(raw));
		if (n <= 0)
			return -1;
		if (p->tls) {
			tls_conn_input(p->tls, raw, (size_t)n);
			continue;
		}
		memcpy(p->in + p->inlen, raw, (size_t)n);
		p->inlen += (size_t)n;
		if (p->tlen + (size_t)n < sizeof(p->transcript)) {
			memcpy(p->transcript + p->tlen, raw, (size_t)n);
			p->tlen += (size_t)n;
		}
		return 0;
	}
}

/* peer_line - one CRLF line from the client into buf */
static int
peer_line(peer_t *p, char *buf, size_t len)
{
	char *nl;

	while ((nl = memchr(p->in, '\n', p->inlen)) == NULL)
		if (peer_fill(p) < 0)
			return -1;
	size_t n = (size_t)(nl - p->in) + 1;
	snprintf(buf, len, "%.*s", (int)n, p->in);
	memmove(p->in, p->in + n, p->inlen - n);
	p->inlen -= n;
	return 0;
}

/* peer_send - plaintext or TLS reply bytes */
static void
peer_send(peer_t *p, const char *s)
{
	size_t put = 0, olen;
	const void *o;

	if (p->tls == NULL) {
		if (write(p->fd, s, strlen(s)) < 0)
			return;
		return;
	}
	tls_conn_write(p->tls, s, strlen(s), &put);
	while ((olen = tls_conn_output(p->tls, &o)) > 0) {
		if (write(p->fd, o, olen) < 0)
			return;
		tls_conn_output_done(p->tls, olen);
	}
}

/* peer_handshake - the server side of STARTTLS over the blocking socket */
static int
peer_handshake(peer_t *p)
{
	char raw[16384];
	const void *o;
	size_t olen;

	p->tls = tls_conn_new_server(p->tctx);
	if (p->inlen)
		tls_conn_input(p->tls, p->in, p->inlen);
	p->inlen = 0;
	for (;;) {
		int rc = tls_conn_handshake(p->tls);
		ssize_t n;

		while ((olen = tls_conn_output(p->tls, &o)) > 0) {
			if (write(p->fd, o, olen) < 0)
				return -1;
			tls_conn_output_done(p->tls, olen);
		}
		if (rc == SP_OK)
			return 0;
		if (rc != SP_AGAIN)
			return -1;
		if ((n = read(p->fd, raw, sizeof(raw))) <= 0)
			return -1;
		tls_conn_input(p->tls, raw, (size_t)n);
	}
}

/* peer_main - accept, then play the script on each connection */
static void *
peer_main(void *arg)
{
	peer_t *p = arg;

	for (int c = 0; c < p->conns; c++) {
		char line[2048];

		if ((p->fd = accept(p->lfd, NULL, NULL)) < 0)
			break;
		p->accepted++;
		p->inlen = 0;
		for (size_t i = 0; i < p->nsteps; i++) {
			const step_t *st = &p->steps[i];

			if (st->expect) {
				if (peer_line(p, line, sizeof(line)) < 0) {
					snprintf(p->error, sizeof(p->error), "step %zu: EOF, wanted %s",
					    i, st->expect);
					goto next;
				}
				if (strncasecmp(line, st->expect, strlen(st->expect)) != 0) {
					snprintf(p->error, sizeof(p->error), "step %zu: got %.100s wanted %.60s",
					    i, line, st->expect);
					goto next;
				}
			}
			if (st->action == ACT_BODY) {
				char *end;

				while ((end = memmem(p->in, p->inlen, "\r\n.\r\n", 5)) == NULL &&
				    !(p->inlen >= 3 && memcmp(p->in, ".\r\n", 3) == 0))
					if (peer_fill(p) < 0)
						goto next;
				size_t n = end ? (size_t)(end - p->in) + 5 : 3;
				memcpy(p->body, p->in, n);
				p->bodylen = n;
				memmove(p->in, p->in + n, p->inlen - n);
				p->inlen -= n;
			}
			if (st->reply)
				peer_send(p, st->reply);
			if (st->action == ACT_STARTTLS && c == p->fail_conn) {
				char hello[4096];

				if (read(p->fd, hello, sizeof(hello)) < 0)
					goto next;
				goto next;	/* the ClientHello read, then gone */
			}
			if (st->action == ACT_STARTTLS && peer_handshake(p) < 0) {
				snprintf(p->error, sizeof(p->error), "step %zu: handshake failed", i);
				goto next;
			}
			if (st->action == ACT_CLOSE)
				goto next;
		}
		/* Let the client say QUIT (or close) before we hang up. */
		while (peer_line(p, line, sizeof(line)) == 0)
			if (strncasecmp(line, "QUIT", 4) == 0) {
				peer_send(p, "221 bye\r\n");
				break;
			}
next:
		if (p->tls)
			tls_conn_free(p->tls);
		p->tls = NULL;
		close(p->fd);
	}
	tls_thread_cleanup();	/* wolfSSL's per-thread ECC cache: LSan */
	return NULL;
}

/* peer_start - listen on 127.0.0.1:0 and run the script in a thread */
static void
peer_start(peer_t *p, const step_t *steps, size_t n, int conns)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char err[256];

	memset(p, 0, sizeof(*p));
	p->steps = steps;
	p->nsteps = n;
	p->conns = conns;
	p->fail_conn = -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(p->lfd >= 0);
	cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(p->lfd, 8), 0);
	getsockname(p->lfd, (struct sockaddr *)&a, &alen);
	p->port = ntohs(a.sin_port);
	char cert[300], key[300];
	snprintf(cert, sizeof(cert), "%s/server.pem", certdir);
	snprintf(key, sizeof(key), "%s/server.key", certdir);
	p->tctx = tls_ctx_new_server(cert, key, NULL, 12, err, sizeof(err));
	cr_assert_not_null(p->tctx, "%s", err);
	pthread_create(&p->th, NULL, peer_main, p);
}

static void
peer_stop(peer_t *p)
{
	shutdown(p->lfd, SHUT_RDWR);
	pthread_join(p->th, NULL);
	close(p->lfd);
	tls_ctx_free(p->tctx);
}

/* setup_engine - config routed to the peer, encrypt level (the peer is 127.0.0.1) */
static void
setup_engine(uint16_t port, const char *extra)
{
	char routes[128], *envp[8];
	char err[512];
	int n = 0;

	snprintf(routes, sizeof(routes), "SEALPOST_ROUTES=*=127.0.0.1:%u", port);
	envp[n++] = routes;
	envp[n++] = "SEALPOST_WORKERS=1";
	envp[n++] = "SEALPOST_TLS_LEVEL=encrypt";
	envp[n++] = "SEALPOST_HELO_NAME=client.test";
	envp[n++] = "SEALPOST_GREETING_TIMEOUT=5";
	if (extra)
		envp[n++] = (char *)extra;
	envp[n] = NULL;
	cr_assert_eq(sp_config_load(&cfg, envp, err, sizeof(err)), 0, "%s", err);
	sp_log_init(SP_LOG_TEXT, SP_LOG_ERROR, 2);
	memset(&sh, 0, sizeof(sh));
	sh.cfg = &cfg;
	pthread_mutex_init(&sh.gen_lock, NULL);
	eng_tls_gen_t *g = eng_tls_gen_new(&cfg, err, sizeof(err));
	cr_assert_not_null(g, "%s", err);
	eng_tls_publish(&sh, g);
	cr_assert_eq(eng_jobq_init(&sh.done), 0);
}

static void
teardown_engine(void)
{
	eng_tls_publish(&sh, NULL);
	eng_jobq_destroy(&sh.done);
}

/* make_msg - a parsed message from spool text */
static q_msg_t *
make_msg(const char *text)
{
	q_msg_t *m = calloc(1, sizeof(*m));
	char why[256];

	cr_assert_eq(q_parse(text, strlen(text), m, why, sizeof(why)), Q_OK, "%s", why);
	m->data = strdup(text);
	m->len = strlen(text);
	snprintf(m->id, sizeof(m->id), "TESTID");
	return m;
}

/* make_job - every recipient of m in one job */
static eng_job_t *
make_job(const q_msg_t *m)
{
	eng_job_t *j = calloc(1, sizeof(*j));

	j->msg = m;
	snprintf(j->domain, sizeof(j->domain), "%s", m->rcpt[0].domain);
	j->nrcpt = m->nrcpt;
	j->rcpt = calloc(m->nrcpt, sizeof(*j->rcpt));
	j->out = calloc(m->nrcpt, sizeof(*j->out));
	for (size_t i = 0; i < m->nrcpt; i++)
		j->rcpt[i] = i;
	return j;
}

static void
free_job(eng_job_t *j)
{
	free(j->rcpt);
	free(j->out);
	free(j);
}

/* wait_done - the next finished job (10 s at most) */
static eng_job_t *
wait_done(void)
{
	struct pollfd pfd = { .fd = sh.done.efd, .events = POLLIN };
	eng_job_t *j;

	for (int i = 0; i < 100; i++) {
		if ((j = eng_jobq_take_all(&sh.done)) != NULL) {
			cr_assert_null(j->next, "one job at a time");
			return j;
		}
		if (poll(&pfd, 1, 100) > 0) {
			uint64_t v;

			if (read(sh.done.efd, &v, sizeof(v)) < 0)
				continue;
		}
	}
	cr_assert_fail("no job finished within 10 s");
	return NULL;
}

/* run_one - deliver msg through a worker against the scripted peer */
static eng_job_t *
run_one(peer_t *p, const step_t *steps, size_t n, const char *msgtext, const char *extra,
	q_msg_t **mout)
{
	eng_worker_t *w;
	eng_job_t *j;
	char err[256];

	peer_start(p, steps, n, 1);
	setup_engine(p->port, extra);
	w = eng_worker_start(&sh, 0, err, sizeof(err));
	cr_assert_not_null(w, "%s", err);
	*mout = make_msg(msgtext);
	eng_worker_submit(w, make_job(*mout));
	j = wait_done();
	eng_worker_stop(w);
	eng_worker_join(w);
	peer_stop(p);
	teardown_engine();
	return j;
}

/* run_two - deliver two one-recipient messages through one worker, one
 * after the other (the peer accepts `conns` connections, `fail_conn` of
 * them dying in the handshake); pause_us between the two lets the first
 * session close when it is not reused */
static void
run_two(peer_t *p, const step_t *steps, size_t n, int conns, int fail_conn, const char *extra,
	useconds_t pause_us, eng_job_t **j1, eng_job_t **j2, q_msg_t **m1, q_msg_t **m2)
{
	const char *text = "MAIL FROM:<a@b.test>\nRCPT TO:<x@dest.test>\n\nhello\n";
	eng_worker_t *w;
	char err[256];

	peer_start(p, steps, n, conns);
	p->fail_conn = fail_conn;
	setup_engine(p->port, extra);
	w = eng_worker_start(&sh, 0, err, sizeof(err));
	cr_assert_not_null(w, "%s", err);
	*m1 = make_msg(text);
	*m2 = make_msg(text);
	eng_worker_submit(w, make_job(*m1));
	*j1 = wait_done();
	if (pause_us)
		usleep(pause_us);
	eng_worker_submit(w, make_job(*m2));
	*j2 = wait_done();
	eng_worker_stop(w);
	eng_worker_join(w);
	peer_stop(p);
	teardown_engine();
}

static void
certs_init(void)
{
	char cmd[512];

	cr_assert_not_null(mkdtemp(certdir));
	snprintf(cmd, sizeof(cmd), "bash '%s' '%s' >/dev/null 2>&1",
	    SP_TEST_DATA "/../lib/mkcerts.sh", certdir);
	cr_assert_eq(system(cmd), 0, "mkcerts.sh failed");
}

static void
certs_fini(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
	if (system(cmd) != 0)
		return;
}

TestSuite(session, .init = certs_init, .fini = certs_fini, .timeout = 60);

#define GREET_TO_TLS(ehlo2) \
	{ NULL, "220 peer ESMTP\r\n", ACT_NONE }, \
	{ "EHLO client.test", "250-peer\r\n250-PIPELINING\r\n250 STARTTLS\r\n", ACT_NONE }, \
	{ "STARTTLS", "220 2.0.0 go\r\n", ACT_STARTTLS }, \
	{ "EHLO client.test", ehlo2, ACT_NONE }

static const char *MSG2 =
	"MAIL FROM:<fax@sender.test>\n"
	"RCPT TO:<ok@dest.test>\n"
	"RCPT TO:<gone@dest.test>\n"
	"\n"
	"Subject: t\n\n.starts with a dot\nline two\n";

Test(session, pipelined_transaction_gives_each_recipient_its_reply)
{
	static const step_t s[] = {
		GREET_TO_TLS("250-peer\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"),
		{ "MAIL FROM:<fax@sender.test>", "250 2.1.0 ok\r\n", 0 },
		{ "RCPT TO:<ok@dest.test>", "250 2.1.5 ok\r\n", 0 },
		{ "RCPT TO:<gone@dest.test>", "550-5.1.1 no such user\r\n550 5.1.1 really\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ NULL, "250 2.0.0 queued as X1\r\n", ACT_BODY },
	};
	peer_t p;
	q_msg_t *m;
	eng_job_t *j = run_one(&p, s, sizeof(s) / sizeof(s[0]), MSG2, NULL, &m);

	cr_assert_str_empty(p.error);
	cr_assert_eq(j->out[0].status, Q_RCPT_SENT);
	cr_assert_str_eq(j->out[0].dsn, "2.0.0");
	cr_assert(strstr(j->out[0].text, "queued as X1"));
	cr_assert_eq(j->out[1].status, Q_RCPT_BOUNCED);
	cr_assert_str_eq(j->out[1].dsn, "5.1.1");
	cr_assert(strstr(j->out[1].text, "no such user") && strstr(j->out[1].text, "really"),
	    "multi-line reply kept: %s", j->out[1].text);
	cr_assert_str_eq(j->tls_verified, "no");
	cr_assert(strncmp(j->tls_version, "TLSv1.", 6) == 0);
	free_job(j);
	q_msg_free(m);
}

Test(session, body_is_dot_stuffed_with_crlf_on_the_wire)
{
	static const step_t s[] = {
		GREET_TO_TLS("250 peer\r\n"),
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<ok@", "250 ok\r\n", 0 },
		{ "RCPT TO:<gone@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ NULL, "250 done\r\n", ACT_BODY },
	};
	peer_t p;
	q_msg_t *m;
	eng_job_t *j = run_one(&p, s, sizeof(s) / sizeof(s[0]), MSG2, NULL, &m);
	const char *want = "Subject: t\r\n\r\n..starts with a dot\r\nline two\r\n.\r\n";

	cr_assert_str_empty(p.error);
	cr_assert_eq(p.bodylen, strlen(want));
	cr_assert(memcmp(p.body, want, p.bodylen) == 0, "body: %.*s", (int)p.bodylen, p.body);
	cr_assert_eq(j->out[0].status, Q_RCPT_SENT);
	cr_assert_eq(j->out[1].status, Q_RCPT_SENT);
	free_job(j);
	q_msg_free(m);
}

Test(session, pre_tls_capabilities_are_discarded)
{
	/* Before TLS the peer claims SIZE 10 (the message is bigger); after
	 * TLS it says nothing of SIZE.  Only the second EHLO counts. */
	static const step_t s[] = {
		{ NULL, "220 peer ESMTP\r\n", 0 },
		{ "EHLO", "250-peer\r\n250-SIZE 10\r\n250 STARTTLS\r\n", 0 },
		{ "STARTTLS", "220 go\r\n", ACT_STARTTLS },
		{ "EHLO", "250 peer\r\n", 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<ok@", "250 ok\r\n", 0 },
		{ "RCPT TO:<gone@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ NULL, "250 done\r\n", ACT_BODY },
	};
	peer_t p;
	q_msg_t *m;
	eng_job_t *j = run_one(&p, s, sizeof(s) / sizeof(s[0]), MSG2, NULL, &m);

	cr_assert_str_empty(p.error);
	cr_assert_eq(j->out[0].status, Q_RCPT_SENT);
	free_job(j);
	q_msg_free(m);
}

Test(session, message_over_peer_size_limit_bounces_5_3_4_without_mail_from)
{
	static const step_t s[] = {
		GREET_TO_TLS("250-peer\r\n250 SIZE 20\r\n"),
	};
	peer_t p;
	q_msg_t *m;
	eng_job_t *j = run_one(&p, s, sizeof(s) / sizeof(s[0]), MSG2, NULL, &m);

	cr_assert_str_empty(p.error);
	cr_assert_eq(j->out[0].status, Q_RCPT_BOUNCED);
	cr_assert_str_eq(j->out[0].dsn, "5.3.4");
	cr_assert_eq(j->out[1].status, Q_RCPT_BOUNCED);
	cr_assert_null(memmem(p.transcript, p.tlen, "MAIL FROM", 9), "MAIL was sent");
	free_job(j);
	q_msg_free(m);
}

Test(session, without_pipelining_no_data_when_no_recipient_accepted)
{
	static const step_t s[] = {
		GREET_TO_TLS("250 peer\r\n"),
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<ok@", "450 4.2.0 busy\r\n", 0 },
		{ "RCPT TO:<gone@", "550 5.1.1 unknown\r\n", 0 },
	};
	peer_t p;
	q_msg_t *m;
	eng_job_t *j = run_one(&p, s, sizeof(s) / sizeof(s[0]), MSG2, NULL, &m);

	cr_assert_str_empty(p.error);
	cr_assert_eq(j->out[0].status, Q_RCPT_DEFERRED);
	cr_assert_str_eq(j->out[0].dsn, "4.2.0");
	cr_assert_eq(j->out[1].status, Q_RCPT_BOUNCED);
	cr_assert_null(memmem(p.transcript, p.tlen, "DATA", 4), "DATA was sent");
	free_job(j);
	q_msg_free(m);
}

Test(session, rejected_mail_from_applies_to_every_recipient)
{
	static const step_t s[] = {
		GREET_TO_TLS("250 peer\r\n"),
		{ "MAIL FROM:", "451 4.3.0 try later\r\n", 0 },
	};
	peer_t p;
	q_msg_t *m;
	eng_job_t *j = run_one(&p, s, sizeof(s) / sizeof(s[0]), MSG2, NULL, &m);

	cr_assert_str_empty(p.error);
	cr_assert_eq(j->out[0].status, Q_RCPT_DEFERRED);
	cr_assert_eq(j->out[1].status, Q_RCPT_DEFERRED);
	cr_assert_str_eq(j->out[1].dsn, "4.3.0");
	cr_assert_null(memmem(p.transcript, p.tlen, "RCPT TO", 7), "RCPT after failed MAIL");
	free_job(j);
	q_msg_free(m);
}

Test(session, pipelined_354_with_nobody_accepted_sends_an_empty_message)
{
	static const step_t s[] = {
		GREET_TO_TLS("250-peer\r\n250 PIPELINING\r\n"),
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<ok@", "550 5.1.1 no\r\n", 0 },
		{ "RCPT TO:<gone@", "550 5.1.1 no\r\n", 0 },
		{ "DATA", "354 go anyway\r\n", 0 },
		{ NULL, "554 5.5.1 no valid recipients\r\n", ACT_BODY },
	};
	peer_t p;
	q_msg_t *m;
	eng_job_t *j = run_one(&p, s, sizeof(s) / sizeof(s[0]), MSG2, NULL, &m);

	cr_assert_str_empty(p.error);
	cr_assert_eq(p.bodylen, 3, "only the terminator: %.*s", (int)p.bodylen, p.body);
	cr_assert_eq(j->out[0].status, Q_RCPT_BOUNCED);
	cr_assert_eq(j->out[1].status, Q_RCPT_BOUNCED);
	free_job(j);
	q_msg_free(m);
}

Test(session, lost_connection_mid_data_defers_not_loses)
{
	static const step_t s[] = {
		GREET_TO_TLS("250 peer\r\n"),
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:<ok@", "250 ok\r\n", 0 },
		{ "RCPT TO:<gone@", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", ACT_CLOSE },
	};
	peer_t p;
	q_msg_t *m;
	eng_job_t *j = run_one(&p, s, sizeof(s) / sizeof(s[0]), MSG2, NULL, &m);

	cr_assert_eq(j->out[0].status, Q_RCPT_DEFERRED);
	cr_assert_str_eq(j->out[0].dsn, "4.4.2");
	cr_assert(strstr(j->out[0].text, "lost connection"), "%s", j->out[0].text);
	cr_assert_eq(j->out[1].status, Q_RCPT_DEFERRED);
	free_job(j);
	q_msg_free(m);
}

Test(session, second_message_reuses_the_session_after_rset)
{
	static const step_t s[] = {
		GREET_TO_TLS("250-peer\r\n250 PIPELINING\r\n"),
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ NULL, "250 first\r\n", ACT_BODY },
		{ "RSET", "250 reset\r\n", 0 },
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ NULL, "250 second\r\n", ACT_BODY },
	};
	peer_t p;
	eng_job_t *j1, *j2;
	q_msg_t *m1, *m2;

	run_two(&p, s, sizeof(s) / sizeof(s[0]), 1, -1, NULL, 0, &j1, &j2, &m1, &m2);

	cr_assert_str_empty(p.error);
	cr_assert_eq(j1->out[0].status, Q_RCPT_SENT);
	cr_assert(strstr(j1->out[0].text, "first"));
	cr_assert_eq(j2->out[0].status, Q_RCPT_SENT);
	cr_assert(strstr(j2->out[0].text, "second"), "%s", j2->out[0].text);
	free_job(j1);
	free_job(j2);
	q_msg_free(m1);
	q_msg_free(m2);
}

Test(session, failed_resumed_handshake_is_retried_once_without_the_session)
{
	/* Connection 1 delivers and leaves a TLS 1.3 ticket in the cache;
	 * connection 2 offers it and the server drops the handshake;
	 * connection 3 (same address, full handshake) delivers. */
	static const step_t s[] = {
		GREET_TO_TLS("250 peer\r\n"),
		{ "MAIL FROM:", "250 ok\r\n", 0 },
		{ "RCPT TO:", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ NULL, "250 delivered\r\n", ACT_BODY },
	};
	peer_t p;
	eng_job_t *j1, *j2;
	q_msg_t *m1, *m2;

	/* 200 ms: the first session says QUIT and closes (one message each) */
	run_two(&p, s, sizeof(s) / sizeof(s[0]), 3, 1, "SEALPOST_MSGS_PER_CONNECTION=1", 200000,
	    &j1, &j2, &m1, &m2);

	cr_assert_eq(j1->out[0].status, Q_RCPT_SENT);
	cr_assert_eq(j2->out[0].status, Q_RCPT_SENT, "%s %s", j2->out[0].dsn, j2->out[0].text);
	cr_assert_eq(p.accepted, 3, "connections: %d", p.accepted);
	cr_assert_eq(j2->tls_resumed, 0, "the retry is a full handshake");
	free_job(j1);
	free_job(j2);
	q_msg_free(m1);
	q_msg_free(m2);
}
