/*
 * tls/tls.h - TLS over memory buffers with wolfSSL: contexts, policy,
 * verification, session and certificate caches.
 *
 * No sockets here.  The caller (the engine's ring, or a test with canned
 * bytes) moves ciphertext: bytes read from the peer go in with
 * tls_conn_input(), bytes to send come out of tls_conn_output().  wolfSSL's
 * recv callback serves the input buffer and says WANT_READ when it is empty
 * (CONN_CLOSE after tls_conn_input_eof()); its send callback appends to the
 * output buffer.  wolfSSL error codes never leave this module: a failure is
 * a status plus a reason string (tls_conn_error()).
 *
 * A tls_ctx_t is built once (one per role) and then shared read-only by all
 * threads; the session cache and the verdict cache inside it are guarded.
 */
#ifndef SP_TLS_TLS_H
#define SP_TLS_TLS_H

#include <stddef.h>
#include <stdint.h>
#include "common/config.h"
#include "common/status.h"

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/* A per-domain policy line: DOMAIN LEVEL [match=a:b] [fingerprint=sha256:HEX,...] [ca=FILE] */
#define TLS_MAX_MATCH 8
#define TLS_MAX_PINS 8
typedef struct tls_policy {
	char	domain[256];		/* "example.com", or ".example.com" for subdomains */
	enum sp_tls_level level;
	char	match[TLS_MAX_MATCH][256];	/* secure: names to accept besides the domain */
	size_t	nmatch;
	uint8_t	pins[TLS_MAX_PINS][32];	/* fingerprint: SHA-256 of cert DER or SPKI DER */
	size_t	npins;
	char	ca_file[4096];		/* extra trust anchors for this domain, "" if none */
} tls_policy_t;

typedef struct tls_policy_table tls_policy_table_t;

/* tls_policy_load - parse a policy file; -1 with "FILE:LINE: reason" in err */
int tls_policy_load(const char *path, tls_policy_table_t **out, char *err, size_t errlen);
/* tls_policy_parse_line - one line (no newline); 1 parsed, 0 blank/comment, -1 err */
int tls_policy_parse_line(const char *line, tls_policy_t *out, char *err, size_t errlen);
/* tls_policy_lookup - policy for a recipient domain; the default level
 * (from cfg) when no line matches.  Borrowed from the table or `dflt`. */
const tls_policy_t *tls_policy_lookup(const tls_policy_table_t *t, const char *domain,
				      const tls_policy_t *dflt);
void tls_policy_free(tls_policy_table_t *t);

/* tls_ctx_new_client - our client context from the configuration (CA store,
 * client certificate, min version, ciphers, session cache bounds).
 * NULL with a reason naming the file or setting in err. */
tls_ctx_t *tls_ctx_new_client(const sp_config_t *cfg, char *err, size_t errlen);
/* tls_ctx_new_server - a server context (for the bench sink and tests);
 * client_ca non-NULL: require and verify a client certificate. */
tls_ctx_t *tls_ctx_new_server(const char *cert_file, const char *key_file,
			      const char *client_ca, int min_version, char *err, size_t errlen);
void tls_ctx_free(tls_ctx_t *ctx);

/* tls_conn_new - a client connection to MX `host` (SNI, name check) at
 * `port` for recipient `domain`, under policy `pol` (borrowed, must outlive
 * the connection).  Picks a cached session for host:port if one is fresh. */
tls_conn_t *tls_conn_new_client(tls_ctx_t *ctx, const tls_policy_t *pol,
				const char *host, uint16_t port, const char *domain);
tls_conn_t *tls_conn_new_server(tls_ctx_t *ctx);
void tls_conn_free(tls_conn_t *c);

/* Ciphertext in: copy bytes read from the socket; or write straight into
 * the input buffer (tls_conn_input_space, then tls_conn_input_commit). */
void tls_conn_input(tls_conn_t *c, const void *buf, size_t len);
void *tls_conn_input_space(tls_conn_t *c, size_t *room);
void tls_conn_input_commit(tls_conn_t *c, size_t n);
void tls_conn_input_eof(tls_conn_t *c);

/* Ciphertext out: pointer to pending bytes (borrowed until the next call
 * on c), then say how many were sent. */
size_t tls_conn_output(tls_conn_t *c, const void **p);
void tls_conn_output_done(tls_conn_t *c, size_t n);

/* tls_conn_handshake - SP_OK when established and verified, SP_AGAIN when
 * it needs input (or output to drain), SP_ERROR with tls_conn_error(). */
int tls_conn_handshake(tls_conn_t *c);
/* tls_conn_read - plaintext out: SP_OK (*got > 0), SP_AGAIN, SP_DONE (peer
 * closed), SP_ERROR. */
int tls_conn_read(tls_conn_t *c, void *buf, size_t len, size_t *got);
/* tls_conn_write - plaintext in: SP_OK (*put bytes taken, all of them unless
 * output is full), SP_ERROR. */
int tls_conn_write(tls_conn_t *c, const void *buf, size_t len, size_t *put);
/* tls_conn_shutdown - queue close_notify */
void tls_conn_shutdown(tls_conn_t *c);

/* tls_thread_cleanup - call at the end of every thread that ran TLS
 * connections: frees wolfSSL's per-thread caches (else leaked at exit) */
void tls_thread_cleanup(void);

/* tls_conn_offered_session - 1 when this (client) connection offered a
 * cached session.  When such a handshake fails the entry is already
 * dropped from the cache, so one retry on a new connection is a full
 * handshake. */
int tls_conn_offered_session(const tls_conn_t *c);

/* tls_conn_error - why the last SP_ERROR happened ("certificate name
 * mismatch: mx.example.org not in [a.example.net]"); borrowed */
const char *tls_conn_error(const tls_conn_t *c);

typedef struct tls_info {
	const char *version;	/* "TLSv1.3" */
	const char *cipher;	/* "TLS_AES_128_GCM_SHA256" */
	const char *verified;	/* "yes", "no" (encrypt level) or "pinned" */
	int	resumed;	/* 1 when the session was resumed */
} tls_info_t;
void tls_conn_info(const tls_conn_t *c, tls_info_t *info);

/* Counters since start (all threads): full and resumed handshakes */
typedef struct tls_stats {
	uint64_t full, resumed, failed, verdict_hits;
} tls_stats_t;
void tls_ctx_stats(const tls_ctx_t *ctx, tls_stats_t *out);

#endif
