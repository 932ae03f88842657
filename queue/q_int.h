/*
 * queue/q_int.h - private to the queue module: helpers shared between
 * parse.c, spool.c, retry.c and cmd.c.  Not part of the public contract;
 * other modules use queue/queue.h only.
 */
#ifndef SP_QUEUE_Q_INT_H
#define SP_QUEUE_Q_INT_H

#include <stddef.h>
#include <stdint.h>
#include "queue/queue.h"

/* q_addr_check - validate local@domain (no <>); 0, or -1 with a reason
 * ("address has no domain part") in why.  The same rules as q_parse. */
int q_addr_check(const char *addr, size_t len, char *why, size_t whylen);

/* q_parse_envelope - like q_parse but stops after the empty line and does
 * not need the message (data may be a prefix of the file) */
int q_parse_envelope(const char *data, size_t len, q_msg_t *msg, char *why, size_t whylen);

/* q_msg_clear - free what msg owns and zero it, msg itself stays */
void q_msg_clear(q_msg_t *msg);

/* q_id_valid - 1 when s is a queue id this module generates */
int q_id_valid(const char *s);

/* q_id_make - a new unique, time-sortable queue id */
void q_id_make(char id[Q_ID_LEN]);

/* q_flush_count - q_flush, also saying how many messages were made due */
int q_flush_count(q_spool_t *sp, unsigned *made_due, char *err, size_t errlen);

/* q_load_new - parse the envelope of new/NAME without claiming it (for the
 * queue listing); msg->id is set to NAME when it fits, else "" */
int q_load_new(q_spool_t *sp, const char *name, q_msg_t **out, char *why, size_t whylen);

/* q_utf8_len - length (2..4) of the valid UTF-8 sequence at p, 0 if invalid */
size_t q_utf8_len(const unsigned char *p, size_t n);

/* q_rcpt_status_name - "pending", "deferred", "sent", "bounced" */
const char *q_rcpt_status_name(enum q_rcpt_status s);

#endif
