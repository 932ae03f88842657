/*
 * queue/queue.h - the spool: file format, pickup, per-recipient state,
 * retry schedule, queue commands.
 *
 * Layout under the spool root (see queue/README.md for the full design and
 * the fsync discipline):
 *	tmp/	writers create files here, write, fsync
 *	new/	writers rename() complete files here; the engine claims them
 *	msg/	claimed messages, immutable, named by queue id
 *	state/	per-message state (per-recipient outcomes), small, replaced atomically
 *	corrupt/ input the engine could not parse, each with NAME.why beside it
 *
 * Every function returning int returns 0 (Q_OK) on success or a negative
 * q_status; a reason is written into the caller's why/err buffer.  Nothing
 * here logs: callers (the engine, the commands) do.
 */
#ifndef SP_QUEUE_QUEUE_H
#define SP_QUEUE_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "common/config.h"

#define Q_ID_LEN	24		/* queue id, NUL included */
#define Q_MAX_RCPTS	1000		/* recipients per spool file */
#define Q_MAX_LINE	2048		/* envelope line, terminator excluded */
#define Q_MAX_ADDR	512		/* address between < > */
#define Q_MAX_ENVELOPE	(256 * 1024)	/* whole envelope block */
#define Q_MAX_FILE	(64 * 1024 * 1024) /* whole spool file */

enum q_status {
	Q_OK = 0,
	Q_ERROR = -1,		/* I/O or resource trouble: retry later, nothing lost */
	Q_CORRUPT = -2,		/* unparseable input: moved to corrupt/ with a .why */
	Q_GONE = -3,		/* the file vanished (claimed by someone else, removed) */
};

enum q_rcpt_status {
	Q_RCPT_PENDING = 0,	/* not yet tried */
	Q_RCPT_DEFERRED,	/* tried, temporary failure; next_attempt says when */
	Q_RCPT_SENT,		/* final: delivered */
	Q_RCPT_BOUNCED,		/* final: permanent failure (or lifetime over) */
};

/* RFC 3461 NOTIFY bits; none set means "not given" (default FAILURE,DELAY) */
#define Q_NOTIFY_NEVER		0x1
#define Q_NOTIFY_SUCCESS	0x2
#define Q_NOTIFY_FAILURE	0x4
#define Q_NOTIFY_DELAY		0x8

enum q_ret { Q_RET_NONE = 0, Q_RET_HDRS, Q_RET_FULL };

typedef struct q_rcpt {
	char	*addr;		/* local@domain without <>, as given */
	char	*domain;	/* lower-cased domain part (own allocation) */
	unsigned notify;	/* Q_NOTIFY_* */
	char	*orcpt;		/* ORCPT value ("rfc822;a@b"), NULL if absent */
	/* state, persisted in state/ID */
	enum q_rcpt_status status;
	unsigned attempts;
	int64_t	next_attempt;	/* unix seconds; 0 = due now */
	char	dsn[12];	/* last enhanced status code, "" if none */
	char	*last_error;	/* last reply or reason text, NULL if none */
	char	*relay;		/* last relay "host[ip]:port", NULL if none */
	int	reported;	/* 1 once a DSN for the last failure is queued */
} q_rcpt_t;

typedef struct q_msg {
	char	id[Q_ID_LEN];
	char	*sender;	/* "" for the null sender <> */
	enum q_ret ret;		/* RET= */
	char	*envid;		/* ENVID= or NULL */
	int64_t	arrival;	/* unix seconds the message entered the queue */
	int	warned;		/* delay warning sent */
	size_t	nrcpt;
	q_rcpt_t *rcpt;
	char	*data;		/* the whole spool file (owned) */
	size_t	len;
	size_t	body_off;	/* offset of the RFC 5322 message in data */
} q_msg_t;

/* q_parse - parse a spool file held in memory; fills msg (envelope fields
 * and body_off; data/len are NOT taken over: msg->data stays NULL).
 * Returns Q_OK or Q_CORRUPT with a precise reason in why. */
int q_parse(const char *data, size_t len, q_msg_t *msg, char *why, size_t whylen);

/* q_msg_free - free a message and everything it owns; NULL is fine */
void q_msg_free(q_msg_t *msg);

typedef struct q_spool q_spool_t;

/* q_spool_open - open (creating the folders if needed) the spool at root */
int q_spool_open(q_spool_t **out, const char *root, char *err, size_t errlen);
void q_spool_close(q_spool_t *sp);
/* q_spool_dir - absolute path of a subfolder ("new", "msg", ...); borrowed */
const char *q_spool_dir(const q_spool_t *sp, const char *sub);

/* q_scan_new - call cb for every file name in new/ (no dot files) */
int q_scan_new(q_spool_t *sp, void (*cb)(void *arg, const char *name), void *arg);

/* q_claim - take new/NAME into the queue: read, parse, give it an id and
 * move it to msg/ID.  On Q_OK *out is the loaded message (caller frees).
 * Q_CORRUPT: moved to corrupt/ with NAME.why; Q_GONE: vanished; Q_ERROR:
 * left in new/ (retry later).  why says what happened in every case. */
int q_claim(q_spool_t *sp, const char *name, q_msg_t **out, char *why, size_t whylen);

/* q_scan_queue - call cb for every queued message id (msg/), for restart */
int q_scan_queue(q_spool_t *sp, void (*cb)(void *arg, const char *id), void *arg);

/* q_load - read msg/ID and its state/ID into *out (caller frees) */
int q_load(q_spool_t *sp, const char *id, q_msg_t **out, char *why, size_t whylen);

/* q_load_state - read only the per-recipient state of ID, without the
 * message content (msg->data NULL): cheap, for start-up and `queue`. */
int q_load_state(q_spool_t *sp, const char *id, q_msg_t **out, char *why, size_t whylen);

/* q_record - persist the state of msg (state/ID, atomic replace + fsync) */
int q_record(q_spool_t *sp, const q_msg_t *msg, char *why, size_t whylen);

/* q_done - every recipient is final: remove the message and its state */
int q_done(q_spool_t *sp, const q_msg_t *msg, char *why, size_t whylen);

/* q_msg_final - 1 when every recipient has a final status */
int q_msg_final(const q_msg_t *msg);

/* q_msg_next_attempt - earliest next_attempt among non-final recipients */
int64_t q_msg_next_attempt(const q_msg_t *msg);

/* q_rcpt_update - record one attempt's outcome on a recipient (copies text) */
void q_rcpt_update(q_rcpt_t *r, enum q_rcpt_status status, const char *dsn,
		   const char *text, const char *relay, int64_t next_attempt);

/* q_retry_delay - seconds until the next attempt after `attempts` tries:
 * retry_min doubling up to retry_max, with jitter in [-10%, +10%) from rnd */
unsigned q_retry_delay(const sp_config_t *cfg, unsigned attempts, uint32_t rnd);

/* q_submit - write one message into new/ atomically (tmp/, fsync, rename,
 * fsync new/).  sender "" is <>.  message is the RFC 5322 text. */
int q_submit(q_spool_t *sp, const char *sender, const char *const *rcpts, size_t nrcpt,
	     const char *message, size_t len, char id_out[Q_ID_LEN], char *err, size_t errlen);

/* q_flush - make every deferred message due now and poke a running engine */
int q_flush(q_spool_t *sp, char *err, size_t errlen);
/* name of the file in the spool root a running engine watches for flush */
#define Q_FLUSH_FILE "flush"

/* Commands (return a sysexits.h code; print to stdout/stderr) */
int q_cmd_submit(const sp_config_t *cfg, int argc, char **argv);
int q_cmd_queue(const sp_config_t *cfg, int argc, char **argv);
int q_cmd_flush(const sp_config_t *cfg, int argc, char **argv);

/* Delivery status notifications (queue/dsn.c) */
enum q_dsn_action { Q_DSN_FAILED, Q_DSN_DELAYED, Q_DSN_DELIVERED };

/* q_dsn_wanted - does recipient r want a DSN for this action (RFC 3461
 * NOTIFY: NEVER none; not given = FAILURE,DELAY; SUCCESS only when asked)?
 * Never for a message whose sender is <> (never bounce a bounce). */
int q_dsn_wanted(const q_msg_t *msg, const q_rcpt_t *r, enum q_dsn_action action);

/* q_dsn_build - a complete spool file (envelope "MAIL FROM:<>" + "RCPT TO:<sender>"
 * + blank line + RFC 3464 multipart/report message) reporting `action` for
 * the recipients msg->rcpt[idx[0..n-1]].  Uses each recipient's dsn, last_error,
 * relay, attempts; msg->data/body_off for the returned content (data NULL:
 * no third part): RET=HDRS (or RET not given) -> the headers only
 * (text/rfc822-headers); RET=FULL on a failure -> message/rfc822 with the
 * full message unless it exceeds max_full bytes, then headers only plus a
 * note.  reporting_mta: our host name (cfg->helo_name). now: unix time.
 * LF line ends.  *out is malloc'd (caller frees). Q_OK or Q_ERROR (err set;
 * also for a null sender). */
int q_dsn_build(const q_msg_t *msg, const size_t *idx, size_t n, enum q_dsn_action action,
		const char *reporting_mta, int64_t now, size_t max_full,
		char **out, size_t *outlen, char *err, size_t errlen);
/* q_dsn_build_until - q_dsn_build, also stating when attempts end
 * (retry_until, unix time: arrival + queue lifetime; 0 = not stated): a
 * delayed report then says "we keep trying until DATE" and carries
 * Will-Retry-Until.  q_dsn_build is this with retry_until 0. */
int q_dsn_build_until(const q_msg_t *msg, const size_t *idx, size_t n,
		      enum q_dsn_action action, const char *reporting_mta, int64_t now,
		      int64_t retry_until, size_t max_full, char **out, size_t *outlen,
		      char *err, size_t errlen);

/* q_spool_put - write a complete spool file (text) into new/ atomically
 * (tmp/, fsync, rename, fsync new/) and return its id (as q_submit).
 * Q_CORRUPT (nothing written) when text does not parse as a spool file. */
int q_spool_put(q_spool_t *sp, const char *text, size_t len, char id_out[Q_ID_LEN],
		char *err, size_t errlen);

#endif
