/*
 * engine/eng_internal.h - what the engine's own files share: jobs, the
 * hand-off queues between the queue manager and the workers, the worker
 * and session types.  Not for use outside engine/.
 *
 * Threads: the queue manager (qmgr.c, the main thread) owns the spool and
 * every q_msg_t.  It cuts due recipients into jobs (one message, one
 * domain, at most SEALPOST_RCPTS_PER_TRANSACTION recipients) and hands them
 * to workers round-robin.  A worker (worker.c) owns its io_uring, its
 * c-ares resolver and its sessions (session.c); it reads the job's message
 * (read-only while the job is out) and writes only the job's result fields.
 * A finished job goes back to the queue manager, which records outcomes,
 * logs one line per recipient and decides what happens next.
 */
#ifndef SP_ENGINE_ENG_INTERNAL_H
#define SP_ENGINE_ENG_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <liburing.h>
#include "common/config.h"
#include "dns/dns.h"
#include "queue/queue.h"
#include "tls/tls.h"

#define ENG_TEXT_MAX 512	/* kept reply/reason text per recipient */

/* One recipient's outcome in one attempt: a delivery failure is data. */
typedef struct eng_outcome {
	enum q_rcpt_status status;	/* SENT, DEFERRED or BOUNCED; PENDING = not tried */
	char	dsn[12];		/* enhanced status code */
	char	text[ENG_TEXT_MAX];	/* the reply, or our reason */
} eng_outcome_t;

typedef struct eng_msg eng_msg_t;	/* qmgr's record of a message in memory */

typedef struct eng_job {
	struct eng_job *next;
	eng_msg_t *owner;		/* qmgr only */
	const q_msg_t *msg;		/* read-only for the worker */
	char	domain[256];
	size_t	nrcpt;
	size_t	*rcpt;			/* indices into msg->rcpt */
	eng_outcome_t *out;		/* one per job recipient, written by the worker */
	int	body_8bit;		/* the message has bytes >= 0x80 (BODY=8BITMIME) */
	/* session facts for the log, written by the worker */
	char	relay[320];		/* host[ip]:port, "" if none reached */
	char	tls_version[16];
	char	tls_cipher[64];
	char	tls_verified[8];
	int	tls_resumed;
	int	attempted;		/* 0: returned untouched (shutdown) */
	int	conn_failed;		/* no host could be used (connect, TLS): counts
					 * towards suspending the destination */
} eng_job_t;

/* A mutex-guarded FIFO of jobs plus an eventfd to wake the consumer. */
typedef struct eng_jobq {
	pthread_mutex_t lock;
	eng_job_t *head, *tail;
	int	efd;
} eng_jobq_t;

int eng_jobq_init(eng_jobq_t *q);
void eng_jobq_destroy(eng_jobq_t *q);
void eng_jobq_push(eng_jobq_t *q, eng_job_t *job);
eng_job_t *eng_jobq_take_all(eng_jobq_t *q);	/* whole list, FIFO order */

/* A TLS generation: context + policy, replaced as a whole on SIGHUP. */
typedef struct eng_tls_gen {
	tls_ctx_t *ctx;
	tls_policy_table_t *policy;	/* may be NULL */
	tls_policy_t dflt;		/* SEALPOST_TLS_LEVEL for unlisted domains */
	int	refs;			/* atomic */
} eng_tls_gen_t;

/* Shared by the qmgr and the workers. */
typedef struct eng_shared {
	const sp_config_t *cfg;
	pthread_mutex_t gen_lock;
	eng_tls_gen_t *gen;		/* current TLS generation (tlsgen.c) */
	eng_jobq_t done;		/* workers -> qmgr */
} eng_shared_t;

/* tlsgen.c */
eng_tls_gen_t *eng_tls_gen_new(const sp_config_t *cfg, char *err, size_t errlen);
void eng_tls_publish(eng_shared_t *sh, eng_tls_gen_t *g);
eng_tls_gen_t *eng_tls_acquire(eng_shared_t *sh);
void eng_tls_release(eng_tls_gen_t *g);

typedef struct eng_worker eng_worker_t;

/* worker.c */
eng_worker_t *eng_worker_start(eng_shared_t *sh, unsigned index, char *err, size_t errlen);
void eng_worker_submit(eng_worker_t *w, eng_job_t *job);
void eng_worker_stop(eng_worker_t *w);	/* ask to finish in-flight work and exit */
void eng_worker_join(eng_worker_t *w);	/* wait and free */

/* eng_now_ms - CLOCK_MONOTONIC milliseconds */
int64_t eng_now_ms(void);

#endif
