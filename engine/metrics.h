/*
 * engine/metrics.h - Prometheus metrics: lock-free counters bumped by the
 * engine's threads, served as text exposition (version 0.0.4) over HTTP on
 * SEALPOST_METRICS_LISTEN by a thread of its own with its own io_uring.
 *
 * Counting never blocks and never allocates: every eng_metrics_* update is
 * a relaxed C11 atomic add on a global struct, callable from any thread,
 * whether or not the HTTP endpoint runs (off by default).  The one
 * exception is eng_metrics_connections(), which takes a short mutex over a
 * 64-slot table (once per connection opened or closed, far cheaper than the
 * TCP and TLS handshakes it counts).
 *
 * Label sets are fixed so that cardinality stays bounded whatever peers
 * send: tls_version TLSv1.2|TLSv1.3|other, verified yes|no|pinned|other,
 * TLS failure reason no_starttls|starttls_refused|handshake|verify|
 * injection|other, and at most ENG_METRICS_DEST_SLOTS destinations (the
 * rest are counted under destination="other").  "other" series appear only
 * once non-zero.
 */
#ifndef SP_ENGINE_METRICS_H
#define SP_ENGINE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "common/config.h"
#include "queue/queue.h"

#define ENG_METRICS_DEST_SLOTS	64	/* named destinations in sealpost_connections_active */
#define ENG_METRICS_MAX_CLIENTS	16	/* concurrent HTTP clients; more wait in the backlog */
#define ENG_METRICS_MAX_REQUEST	8192	/* request head bytes; beyond: 431 and close */
#define ENG_METRICS_CLIENT_TIMEOUT 5	/* seconds a client may take, start to end */

/* eng_metrics_start - serve GET /metrics on cfg->metrics_listen ("ip:port",
 * port 0 picks a free one); an empty setting does nothing and returns 0.
 * -1 with a reason naming SEALPOST_METRICS_LISTEN in err (bind failure,
 * bad address, io_uring or thread creation failure).  Call once, from the
 * main thread; the serving thread blocks every signal. */
int eng_metrics_start(const sp_config_t *cfg, char *err, size_t errlen);
/* eng_metrics_stop - stop serving, close clients, join the thread; safe to
 * call when not started.  Counters keep their values. */
void eng_metrics_stop(void);
/* eng_metrics_port - the port actually listened on, 0 when not serving */
uint16_t eng_metrics_port(void);

/* eng_metrics_rcpt - one recipient attempt's outcome (SENT, DEFERRED or
 * BOUNCED; PENDING is ignored): sealpost_recipients_total{status} */
void eng_metrics_rcpt(enum q_rcpt_status st);
/* eng_metrics_message_done - a message left the queue, every recipient
 * final: sealpost_messages_total{outcome="bounced"} if any recipient
 * bounced, else {outcome="delivered"} */
void eng_metrics_message_done(int bounced_any);
/* eng_metrics_delivery - one transaction with at least one recipient
 * accepted: sealpost_deliveries_total{tls_version,verified} and
 * sealpost_delivery_latency_seconds (spool arrival to the final 250).
 * tls_version and verified may be NULL or anything (mapped to "other"). */
void eng_metrics_delivery(const char *tls_version, const char *verified, double latency_s);
/* eng_metrics_handshake - a completed TLS handshake:
 * sealpost_tls_handshakes_total{kind="full"|"resumed"} */
void eng_metrics_handshake(int resumed);
/* eng_metrics_tls_failure - a host refused for TLS reasons; reason_class
 * is one of "no_starttls", "starttls_refused", "handshake", "verify",
 * "injection" (anything else, or NULL, counts as "other") */
void eng_metrics_tls_failure(const char *reason_class);
/* eng_metrics_dns - add deltas: lookups asked and those answered from cache */
void eng_metrics_dns(uint64_t lookups, uint64_t hits);
/* eng_metrics_queue - gauges, replaced on each call: messages being
 * delivered, deferred (waiting for their next attempt), waiting in new/;
 * oldest_arrival is the unix time of the oldest queued message, 0 if none
 * (exported as an age computed at scrape time) */
void eng_metrics_queue(uint64_t active, uint64_t deferred, uint64_t new_files,
		       int64_t oldest_arrival);
/* eng_metrics_connections - delta (+1 open, -1 closed) of active SMTP
 * connections to destination dest (a domain; borrowed, copied if kept) */
void eng_metrics_connections(const char *dest, int delta);

/* eng_metrics_render - the exposition text as it would be served; malloc'd,
 * caller frees; NULL when out of memory.  *len gets its length. */
char *eng_metrics_render(size_t *len);

#endif
