/*
 * engine/worker_int.h - the worker thread and its SMTP sessions: shared by
 * worker.c (ring loop, destinations, timers, DNS glue) and session.c (the
 * SMTP client state machine and its socket/TLS I/O).  Not for use outside
 * engine/.
 */
#ifndef SP_ENGINE_WORKER_INT_H
#define SP_ENGINE_WORKER_INT_H

#include <liburing.h>
#include <pthread.h>
#include "engine/eng_internal.h"
#include "engine/smtp_proto.h"

/*
 * user_data of every SQE: a pointer to an eng_op_t (8-byte aligned, low
 * bits 0), or a tagged value for worker-level operations.
 */
#define ENG_UD_TAG_MASK		7ULL
#define ENG_UD_OP		0ULL	/* (eng_op_t *) */
#define ENG_UD_DNS		1ULL	/* (slot << 32 | gen) << 3 | 1 */
#define ENG_UD_WAKE		2ULL	/* the job inbox eventfd read */
#define ENG_UD_IGNORE		3ULL	/* cancel requests, poll removals */

enum eng_op_kind { ENG_OP_CONNECT = 1, ENG_OP_RECV, ENG_OP_SEND };

typedef struct eng_session eng_session_t;

typedef struct eng_op {
	enum eng_op_kind kind;
	int	inflight;
	eng_session_t *s;
} __attribute__((aligned(8))) eng_op_t;

/* A destination (recipient domain) as one worker sees it. */
typedef struct eng_dest {
	struct eng_dest *hnext;
	char	domain[256];
	eng_job_t *qhead, *qtail;	/* jobs waiting for a session */
	unsigned nsessions;		/* open or opening */
	eng_session_t *idle;		/* idle sessions, ready for reuse */
	struct eng_dest *next_starved;	/* on w->starved: waits for a free connection */
	int	starved;
} eng_dest_t;

/*
 * SMTP session states.  Legal transitions:
 *	RESOLVING -> CONNECTING (addresses known) | DONE (DNS failed the job)
 *	CONNECTING -> GREETING | CONNECTING (next address) | DONE
 *	GREETING -> EHLO -> STARTTLS -> HANDSHAKE -> EHLO_TLS -> TRANSACTION
 *	  (any of these may fail the host: -> CONNECTING with the next host,
 *	   or DONE when none is left)
 *	TRANSACTION -> IDLE (job done, none waiting) | TRANSACTION (next job)
 *	            | QUIT (connection message limit or stop)
 *	IDLE -> TRANSACTION (a job arrived) | QUIT (idle timeout, stop)
 *	QUIT -> DONE;  any state -> DONE on a lost connection or timeout.
 * DONE means: waiting for in-flight operations to finish, then freed.
 */
enum smtp_state {
	SMTP_RESOLVING,
	SMTP_CONNECTING,
	SMTP_GREETING,
	SMTP_EHLO,
	SMTP_STARTTLS,
	SMTP_HANDSHAKE,
	SMTP_EHLO_TLS,
	SMTP_TRANSACTION,
	SMTP_IDLE,
	SMTP_QUIT,
	SMTP_DONE,
	SMTP_NSTATES
};

/* The commands of one transaction, in the order their replies come back. */
enum smtp_cmd { SMTP_CMD_RSET, SMTP_CMD_MAIL, SMTP_CMD_RCPT, SMTP_CMD_DATA, SMTP_CMD_DOT };

#define ENG_RBUF	16384
#define ENG_PBUF	(2 * SMTP_LINE_MAX)

struct eng_session {
	eng_worker_t *w;
	eng_dest_t *dest;
	eng_session_t *next_idle;
	unsigned long id;
	enum smtp_state state;
	int	fd;
	eng_op_t op_connect, op_recv, op_send;
	int	inflight;		/* SQEs not yet completed */
	int	eof;			/* peer closed */

	/* where we connect */
	dns_result_t dns;
	size_t	host_i, addr_i;
	const tls_policy_t *pol;
	char	host[256];		/* current host name */
	char	relay[320];		/* host[ip]:port */
	char	last_dsn[12];		/* last host failure, for the job when all fail */
	char	last_why[ENG_TEXT_MAX];
	int	host_failed;		/* draining ops before trying the next host */
	int	resume_retried;		/* a failed resumed handshake was retried */

	/* TLS */
	eng_tls_gen_t *gen;		/* referenced for the session's life */
	tls_conn_t *tls;
	int	tls_on;

	/* input: raw bytes land in rbuf, plaintext lines accumulate in pbuf */
	char	rbuf[ENG_RBUF];
	char	pbuf[ENG_PBUF];
	size_t	plen;
	smtp_reply_parser_t rp;
	smtp_caps_t caps;

	/* output: obuf collects, sbuf is in flight (at most one send) */
	char	*obuf, *sbuf;
	size_t	olen, ocap, slen, scap, soff;

	/* the transaction */
	eng_job_t *job;
	enum smtp_cmd cmds[Q_MAX_RCPTS + 4];
	size_t	ncmds, nsent, nacked;
	size_t	rcpt_sent, rcpt_next;	/* RCPT commands written / replies seen */
	int	mail_ok;
	size_t	accepted;
	int	in_body;		/* streaming the message */
	size_t	body_pos;
	smtp_dot_t dot;
	unsigned msgs_done;

	/* timer heap */
	int64_t	deadline;		/* CLOCK_MONOTONIC ms, 0 = none */
	size_t	heap_i;			/* index + 1 in the heap, 0 = not in it */
};

struct eng_worker {
	eng_shared_t *sh;
	const sp_config_t *cfg;
	unsigned index;
	pthread_t thread;
	struct io_uring ring;
	eng_jobq_t inbox;
	uint64_t wake_buf;
	int	stopping;	/* set by eng_worker_stop from another thread: __atomic only */
	dns_resolver_t *dns;

	/* c-ares sockets watched through the ring */
	struct eng_dns_watch {
		int	fd;		/* -1: slot free */
		uint32_t gen;
		int	mask;		/* POLLIN/POLLOUT wanted */
		int	armed;		/* a poll with this gen is in flight */
	} watch[16];

	/* destinations */
	eng_dest_t **dest_tab;
	size_t	dest_tab_size, ndest;
	unsigned dest_limit;		/* sessions per destination in this worker */
	unsigned conn_limit;		/* sessions in this worker */
	unsigned nsessions;
	/* destinations with jobs waiting only because the worker is at
	 * conn_limit, served first when a connection closes (FIFO) */
	eng_dest_t *starved, *starved_tail;

	/* timer heap of sessions ordered by deadline */
	eng_session_t **heap;
	size_t	nheap, heap_cap;
	unsigned long next_session_id;
	uint64_t dns_lookups_seen, dns_hits_seen;	/* already added to the metrics */
};

/* worker.c services for session.c */
struct io_uring_sqe *eng_get_sqe(eng_worker_t *w);
void eng_timer_set(eng_session_t *s, int64_t deadline_ms);
void eng_dest_schedule(eng_worker_t *w, eng_dest_t *d);
void eng_dest_schedule_starved(eng_worker_t *w);
eng_job_t *eng_dest_pop(eng_dest_t *d);
void eng_job_finish(eng_worker_t *w, eng_job_t *job);

/* session.c */
eng_session_t *eng_session_new(eng_worker_t *w, eng_dest_t *d);
void eng_session_start(eng_session_t *s, eng_job_t *job);
void eng_session_take_job(eng_session_t *s, eng_job_t *job);
void eng_session_complete(eng_session_t *s, eng_op_t *op, int res);
void eng_session_timeout(eng_session_t *s);
void eng_session_quit(eng_session_t *s);
const char *smtp_state_name(enum smtp_state st);

#endif
