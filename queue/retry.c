/*
 * queue/retry.c - pure functions on per-recipient state and the retry
 * schedule: q_msg_final(), q_msg_next_attempt(), q_rcpt_update(),
 * q_retry_delay(), q_rcpt_status_name().
 *
 * Nothing here does I/O; q_rcpt_update() copies the texts it is given (the
 * recipient owns its last_error and relay; an allocation failure leaves the
 * old text NULL rather than failing the update: the status is what matters).
 */
#include <stdlib.h>
#include <string.h>

#include "queue/q_int.h"

/* q_msg_final - 1 when every recipient has a final status */
int
q_msg_final(const q_msg_t *msg)
{
	size_t i;

	for (i = 0; i < msg->nrcpt; i++)
		if (msg->rcpt[i].status != Q_RCPT_SENT && msg->rcpt[i].status != Q_RCPT_BOUNCED)
			return 0;
	return 1;
}

/* q_msg_next_attempt - earliest next_attempt among non-final recipients;
 * INT64_MAX when every recipient is final */
int64_t
q_msg_next_attempt(const q_msg_t *msg)
{
	int64_t t = INT64_MAX;
	size_t i;

	for (i = 0; i < msg->nrcpt; i++) {
		const q_rcpt_t *r = &msg->rcpt[i];

		if (r->status == Q_RCPT_SENT || r->status == Q_RCPT_BOUNCED)
			continue;
		if (r->next_attempt < t)
			t = r->next_attempt;
	}
	return t;
}

/* q_rcpt_update - record one attempt's outcome (copies dsn, text, relay);
 * counts the attempt and re-arms `reported` for the new outcome */
void
q_rcpt_update(q_rcpt_t *r, enum q_rcpt_status status, const char *dsn,
	      const char *text, const char *relay, int64_t next_attempt)
{
	r->status = status;
	r->attempts++;
	r->next_attempt = next_attempt;
	r->reported = 0;
	if (dsn != NULL) {
		strncpy(r->dsn, dsn, sizeof(r->dsn) - 1);
		r->dsn[sizeof(r->dsn) - 1] = '\0';
	} else {
		r->dsn[0] = '\0';
	}
	free(r->last_error);
	r->last_error = text != NULL ? strdup(text) : NULL;
	free(r->relay);
	r->relay = relay != NULL ? strdup(relay) : NULL;
}

/* q_retry_delay - retry_min * 2^(attempts-1), capped at retry_max, then
 * jitter in [-10%, +10%) from rnd, never below 1 s; 0 attempts: 0 */
unsigned
q_retry_delay(const sp_config_t *cfg, unsigned attempts, uint32_t rnd)
{
	uint64_t d, max, span, out;
	unsigned i;

	if (attempts == 0)
		return 0;
	d = cfg->retry_min ? cfg->retry_min : 1;
	max = cfg->retry_max >= d ? cfg->retry_max : d;
	for (i = 1; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	/* span is 20% of d; rnd scales it: out in [d - d/10, d - d/10 + span) */
	span = d / 5;
	out = d - d / 10 + ((span * rnd) >> 32);
	if (out < 1)
		out = 1;
	if (out > UINT32_MAX)
		out = UINT32_MAX;
	return (unsigned)out;
}

/* q_rcpt_status_name - the status word used in state files and listings */
const char *
q_rcpt_status_name(enum q_rcpt_status s)
{
	switch (s) {
	case Q_RCPT_PENDING:	return "pending";
	case Q_RCPT_DEFERRED:	return "deferred";
	case Q_RCPT_SENT:	return "sent";
	case Q_RCPT_BOUNCED:	return "bounced";
	}
	return "pending";
}
