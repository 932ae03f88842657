/*
 * tls/tls_internal.h - functions shared between the files of tls/ and its
 * unit tests; not part of the module's contract (tls/tls.h is).
 */
#ifndef SP_TLS_INTERNAL_H
#define SP_TLS_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tls/tls.h"

/* One cached client session: a private copy, never the live one */
struct tls_sess {
	char	key[900];		/* tls_cache_key() */
	WOLFSSL_SESSION *sess;
	time_t	expires;
	char	verified[8];		/* verdict of the full handshake */
	uint64_t serial;		/* which save this is: drops name it */
	struct tls_sess *hnext;		/* hash chain */
	struct tls_sess *older, *newer;	/* eviction order */
};

/* A client WOLFSSL_CTX with one policy's extra trust anchors (ca=FILE) */
struct tls_extra {
	char	ca_file[4096];
	WOLFSSL_CTX *wctx;
	struct tls_extra *next;
};

struct tls_ctx {
	WOLFSSL_CTX *wctx;
	int	server;
	/* client settings kept to build per-policy contexts later */
	char	ca_file[4096], ca_dir[4096], cert[4096], key[4096], ciphers[1024];
	int	min_version;
	pthread_mutex_t lock;		/* guards everything below */
	struct tls_extra *extras;
	struct tls_sess **buckets;
	size_t	nbuckets, nsess, max_sess;
	unsigned lifetime;
	struct tls_sess *oldest, *newest;
	uint64_t next_serial;
	tls_stats_t stats;
};

/* ctx.c: session cache, used by conn.c */
void tls_cache_key(char *out, size_t outlen, const char *host, uint16_t port,
		   const tls_policy_t *pol, const char *domain);
/* tls_cache_apply: 1 and the entry's serial in *serial when a session was set */
int tls_cache_apply(tls_ctx_t *ctx, const char *key, WOLFSSL *ssl, char *verified,
		    size_t vlen, uint64_t *serial);
void tls_cache_save(tls_ctx_t *ctx, const char *key, WOLFSSL *ssl, const char *verified);
/* tls_cache_drop: forget the entry for key only if it is still save `serial` */
void tls_cache_drop(tls_ctx_t *ctx, const char *key, uint64_t serial);
void tls_stats_count(tls_ctx_t *ctx, int ok, int resumed);
WOLFSSL_CTX *tls_ctx_for_policy(tls_ctx_t *ctx, const tls_policy_t *pol, char *err,
				size_t errlen);
/* conn.c: memory-buffer I/O callbacks and the verify callback */
int tls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg);
int tls_io_send(WOLFSSL *ssl, char *buf, int sz, void *arg);
int tls_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st);

/* tls_name_match - 1 when certificate DNS name `pattern` covers `host`
 * under RFC 6125 rules (case-insensitive, one wildcard as the whole
 * left-most label, never matching a dot or an empty label), else 0 */
int tls_name_match(const char *pattern, const char *host);

/* tls_is_ip_literal - 1 when s is a numeric IPv4 or IPv6 address */
int tls_is_ip_literal(const char *s);

#endif
